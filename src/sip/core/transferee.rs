//! The peer asks us to transfer (RFC 3515 REFER): an agent's phone pressing its transfer key
//! sends the caller elsewhere. We accept with 202, the engine decides, and one NOTIFY
//! (Event: refer, a message/sipfrag status line, the implicit subscription terminated)
//! reports how it went.

use std::time::Instant;

use super::{wire, CallKey, Nict, Req, SipCore, SipEvent};

impl SipCore {
    pub(super) fn on_refer(&mut self, now: Instant, call: CallKey, req: Req) {
        let answered = self.calls.get(&call).is_some_and(|c| c.answered);
        if !answered {
            // RFC 3515 2.4.2: REFER belongs to a confirmed dialog here (nothing to transfer yet).
            self.reply(now, &req, 403, "Forbidden", &[], None);
            return;
        }
        let targets: Vec<&str> = req.msg.all("refer-to").collect();
        let target = match targets.as_slice() {
            [one] => wire::parse_name_addr(one).ok().map(|n| n.uri),
            _ => None,
        };
        let Some(target) = target.filter(|t| t.starts_with("sip:") || t.starts_with("sips:"))
        else {
            // RFC 3515 2.4.1: exactly one Refer-To, a URI we can act on.
            self.reply(now, &req, 400, "Bad Refer-To", &[], None);
            return;
        };
        if self.calls.get(&call).is_some_and(|c| c.notify.is_some()) {
            // The previous REFER's NOTIFY is still in flight.
            self.reply(
                now,
                &req,
                491,
                "Request Pending",
                &[("Retry-After", "1".into())],
                None,
            );
            return;
        }
        self.reply(now, &req, 202, "Accepted", &[], None);
        self.events.push_back(SipEvent::Referred { call, target });
    }

    /// How the transfer the peer asked for went, as a final status (200 done, 404 no such
    /// target, 603 declined...). Send it before ending the call: the NOTIFY is in-dialog.
    pub fn refer_outcome(&mut self, now: Instant, call: CallKey, code: u16, reason: &str) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.bye.is_some() || c.notify.is_some() {
            return;
        }
        let contact = self.contact_for(call);
        let extra = vec![
            ("Event".into(), "refer".into()),
            (
                "Subscription-State".into(),
                "terminated;reason=noresource".into(),
            ),
            ("Contact".into(), contact),
            ("Content-Type".into(), "message/sipfrag;version=2.0".into()),
        ];
        let body = format!("SIP/2.0 {code} {reason}\r\n");
        let Some((branch, data)) = self.dialog_request(call, "NOTIFY", extra, body.as_bytes())
        else {
            return;
        };
        self.start_nict(now, call, Nict::Notify, branch, data);
    }
}
