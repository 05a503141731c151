//! Caller-supplied text (the From / P-Asserted-Identity user part, the display name) is
//! data: it never becomes a header line of the agent's INVITE, never reaches the agent's
//! screen or a log line as sent, and the full number is never logged.

use super::agents::{acd_rig, password, Phone};
use super::rig::*;
use crate::call::callback_target;
use crate::caller_id::CallerId;
use std::time::Duration;

/// What reached the agent's side and the logs for one caller who pressed 0.
struct Seen {
    invite: String,
    contexts: String,
    events: String,
    cdr_caller: String,
    logs: String,
}

/// Agent 8001 ready; a caller with this From user, display and extra INVITE headers
/// presses 0, the agent's phone rings, the caller hangs up.
fn ring_agent_for(user: &str, display: &str, headers: &str) -> Seen {
    let ((invite, contexts, events, cdr_caller), logs) = crate::test_logs::capture(|| {
        let mut rig = acd_rig();
        let mut phone = Phone::new("8001", 6001);
        assert_eq!(phone.register(&mut rig, &password("8001")), 200);
        assert_eq!(phone.dial(&mut rig, "*21").0, 603);
        let mut caller = Caller::new(LAB, user);
        caller.call_id = "injection-1@test".into();
        caller.from_display = display.into();
        caller.invite_headers = headers.into();
        let call = rig.answered(&mut caller);
        rig.talk(call, "127.0.0.1:40000".parse().unwrap());
        rig.advance(Duration::from_secs(1));
        rig.press_info(&mut caller, '0');
        rig.advance(play_time(&[&clip("zh", "transferring")]));
        let invites = phone.invites(&rig);
        assert_eq!(invites.len(), 1, "the agent's phone is rung once");
        let invite = invites[0].to_string();
        let bye = caller.request("BYE", "", "");
        rig.send(&caller, &bye);
        rig.advance(Duration::from_millis(100));
        let contexts: Vec<&str> = rig.contexts.iter().map(|c| c.2.as_str()).collect();
        let events: Vec<String> = rig.agent_events.iter().map(|e| e.to_string()).collect();
        (
            invite,
            contexts.join("\n"),
            events.join("\n"),
            rig.cdr().caller.clone(),
        )
    });
    Seen {
        invite,
        contexts,
        events,
        cdr_caller,
        logs,
    }
}

/// The INVITE is one header per CRLF line, none of them the caller's.
fn assert_no_injected_header(invite: &str) {
    let head = invite.split("\r\n\r\n").next().unwrap();
    for line in head.split("\r\n") {
        assert!(
            !line.contains(['\r', '\n']),
            "a header split by CR/LF: {line:?}"
        );
        assert!(
            !line.to_ascii_lowercase().starts_with("x-injected"),
            "injected header: {invite}"
        );
    }
    for word in ["injected", "evil", "zhang"] {
        assert!(
            !head.to_ascii_lowercase().contains(word),
            "caller text {word:?} in the agent's INVITE: {invite}"
        );
    }
}

#[test]
fn a_from_user_with_percent_encoded_crlf_is_an_anonymous_caller_to_the_agent() {
    let seen = ring_agent_for("138%0D%0AX-Injected:%20yes", "", "");
    assert_no_injected_header(&seen.invite);
    let from = header(&seen.invite, "From").unwrap();
    assert!(from.contains("<sip:anonymous@"), "{from}");
    assert_eq!(header(&seen.invite, "X-Caller"), None);
    let stored: serde_json::Value =
        serde_json::from_str(seen.contexts.lines().last().unwrap()).unwrap();
    assert_eq!(stored["caller"], serde_json::Value::Null);
    for (what, text) in [("context", &seen.contexts), ("screen pop", &seen.events)] {
        assert!(!text.contains("Injected"), "{what}: {text}");
    }
    assert!(
        seen.events.contains("\"caller\":\"invalid\""),
        "{}",
        seen.events
    );
    // The operator sees that something odd arrived, escaped. (`:` starts the URI's
    // password, so the user part ends there.)
    assert_eq!(seen.cdr_caller, "invalid:138%0D%0AX-Injected");
    assert!(!seen.logs.contains("Injected"), "{}", seen.logs);
    assert!(seen.logs.contains("caller=invalid"), "{}", seen.logs);
}

#[test]
fn a_pai_with_crlf_or_a_host_in_its_user_part_is_not_trusted_as_a_number() {
    for pai in [
        "<sip:138%0D%0AX-Injected:%20yes@127.0.0.1>",
        "<sip:13800138000%40evil.example@127.0.0.1>",
        "<sip:13800138000%3Btag%3Dx%22%3CX-Injected@127.0.0.1>",
    ] {
        let seen = ring_agent_for(
            "13900139000",
            "",
            &format!("P-Asserted-Identity: {pai}\r\n"),
        );
        assert_no_injected_header(&seen.invite);
        assert_eq!(header(&seen.invite, "X-Caller"), None, "{pai}");
        assert!(!seen.contexts.contains("evil") && !seen.contexts.contains("Injected"));
        assert!(
            seen.cdr_caller.starts_with("invalid:"),
            "{}",
            seen.cdr_caller
        );
        assert!(!seen.cdr_caller.contains(['\r', '\n', '"', '<', ';', '@']));
    }
}

#[test]
fn a_display_name_with_quotes_and_a_host_never_reaches_the_agent_and_the_number_is_masked_in_logs()
{
    let seen = ring_agent_for(
        "%2B8613800138000",
        "\"Zhang \\\"X-Injected: yes\\\" <sip:1@evil.example>;tag=9\" ",
        "",
    );
    assert_no_injected_header(&seen.invite);
    let from = header(&seen.invite, "From").unwrap();
    assert!(
        from.contains("<sip:13800138000@"),
        "the number, normalised: {from}"
    );
    assert_eq!(header(&seen.invite, "X-Caller"), Some("13800138000"));
    let stored: serde_json::Value =
        serde_json::from_str(seen.contexts.lines().last().unwrap()).unwrap();
    assert_eq!(stored["caller"], "13800138000");
    for text in [&seen.contexts, &seen.events] {
        assert!(!text.contains("evil") && !text.contains("Zhang"), "{text}");
    }
    assert_eq!(seen.cdr_caller, "13800138000");
    assert!(!seen.logs.contains("13800138000"), "{}", seen.logs);
    assert!(!seen.logs.contains("evil"), "{}", seen.logs);
    assert!(seen.logs.contains("138****8000"), "{}", seen.logs);
}

#[test]
fn only_a_valid_number_fills_a_callback_uri() {
    let t = "sip:{number}@127.0.0.1:6050";
    let (uri, _) = callback_target(t, &CallerId::from_encoded("+8613800138000")).unwrap();
    assert_eq!(uri, "sip:13800138000@127.0.0.1:6050");
    for raw in [
        "138%0D%0AX-Injected:%201",
        "13800138000@evil.example",
        "13800138000;transport=tcp",
        "13800138000%3Emaddr=evil",
        "anonymous",
    ] {
        assert_eq!(
            callback_target(t, &CallerId::from_encoded(raw)),
            None,
            "{raw}"
        );
    }
}
