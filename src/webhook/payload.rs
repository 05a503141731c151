//! The JSON bodies receivers get (documented in the README): an envelope with the event's
//! id (the receiver's de-duplication key: a retry or a resend carries the same one), type
//! and time, and the row it tells of under `data`.

use crate::store::{EventSource, OutboxRow};
use serde_json::{json, Value};

/// The body for `row`, from the row its event tells of.
pub fn body(row: &OutboxRow, source: &EventSource) -> String {
    json!({
        "id": row.id.to_string(),
        "type": row.event,
        "created_at": row.created_at,
        "data": data(source),
    })
    .to_string()
}

fn data(source: &EventSource) -> Value {
    match source {
        EventSource::Cdr(c) => json!({
            "call_id": c.call_id,
            "profile": c.profile,
            "caller": c.caller,
            "called": c.called,
            "started_at": c.started_at,
            "answered_at": c.answered_at,
            "ended_at": c.ended_at,
            "duration_ms": c.duration_ms,
            "hangup_cause": c.hangup_cause,
            "sip_code": c.sip_code,
            "lang": c.lang,
            "ivr_path": c.ivr_path.split('>').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            // Stored as JSON with sensitive values already masked: passed on as it is.
            "inputs": serde_json::from_str::<Value>(&c.inputs).unwrap_or(Value::Array(vec![])),
            "outcome": c.outcome,
            "reason": c.reason,
            "queue": c.queue,
            "agent": c.agent,
            "wait_ms": c.wait_ms,
            "hold_ms": c.hold_ms,
            "talk_ms": c.talk_ms,
            "context_id": c.context_id,
        }),
        EventSource::WrapUp(w) => json!({
            "call_id": w.call_id,
            "agent": w.agent,
            "code": w.code,
            "note": w.note,
            "registered_at": w.at,
        }),
        EventSource::Survey(s) => json!({
            "call_id": s.call_id,
            "agent": s.agent,
            "queue": s.queue,
            "score": s.score,
            "scored_at": s.at,
        }),
        EventSource::Topup(t) => json!({
            "key": t.key,
            "msisdn": t.msisdn,
            "call_id": t.call_id,
            "card_last4": t.card_last4,
            "result": t.state,
            "outcome": t.outcome,
            "amount_fen": t.amount_fen,
            "balance_fen": t.balance_fen,
            "settled_at": crate::store::rfc3339_utc(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.settled_at.max(0) as u64)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Cdr, SettledTopup, WrapUpRow};

    fn row(event: &str) -> OutboxRow {
        OutboxRow {
            id: 42,
            endpoint: "crm".into(),
            event: event.into(),
            source: "7".into(),
            created_at: "2026-12-07T10:00:00.000Z".into(),
            body: None,
            attempts: 0,
        }
    }

    #[test]
    fn a_call_ended_body_carries_the_cdr_with_its_path_and_masked_inputs() {
        let cdr = Cdr {
            call_id: "abc@gw".into(),
            caller: "13800138000".into(),
            ivr_path: "main>bill>balance".into(),
            inputs: r#"[{"node":"pin","value":"******"}]"#.into(),
            outcome: "bill_played".into(),
            agent: Some(8001),
            ..Cdr::default()
        };
        let v: Value =
            serde_json::from_str(&body(&row("call.ended"), &EventSource::Cdr(Box::new(cdr))))
                .unwrap();
        assert_eq!(v["id"], "42");
        assert_eq!(v["type"], "call.ended");
        assert_eq!(v["data"]["ivr_path"], json!(["main", "bill", "balance"]));
        assert_eq!(v["data"]["inputs"][0]["value"], "******");
        assert_eq!(v["data"]["agent"], 8001);
        assert_eq!(v["data"]["outcome"], "bill_played");
    }

    #[test]
    fn demand_and_top_up_bodies() {
        let w = WrapUpRow {
            call_id: "abc@gw".into(),
            agent: 8001,
            code: "complaint".into(),
            note: "line noisy".into(),
            demand: true,
            at: "2026-12-07T10:05:00Z".into(),
        };
        let v: Value =
            serde_json::from_str(&body(&row("demand.registered"), &EventSource::WrapUp(w)))
                .unwrap();
        assert_eq!(v["data"]["code"], "complaint");
        assert_eq!(v["data"]["agent"], 8001);
        let t = SettledTopup {
            key: "k1".into(),
            msisdn: "13800138000".into(),
            call_id: "abc@gw".into(),
            card_last4: "1234".into(),
            state: "credited".into(),
            outcome: Some("credited".into()),
            amount_fen: Some(5000),
            balance_fen: Some(12345),
            settled_at: 1_765_101_600,
        };
        let v: Value =
            serde_json::from_str(&body(&row("topup.settled"), &EventSource::Topup(t))).unwrap();
        assert_eq!(v["data"]["amount_fen"], 5000);
        assert_eq!(v["data"]["result"], "credited");
        assert_eq!(v["data"]["settled_at"], "2025-12-07T10:00:00.000Z");
        assert!(!v.to_string().contains("sealed"), "no card secret field");
    }
}
