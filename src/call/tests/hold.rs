//! Hold on virtual time: the agent's phone holds by re-INVITE (sendonly / inactive) and
//! resumes (sendrecv), or the API holds for a browser agent. Held: the caller hears the
//! music, not the agent; the agent hears nothing; resumed: both ways again. The CDR keeps
//! the hold and talk time, the recording marks the hold. And the wrap-up's engine side.

use super::agents::*;
use super::rig::*;
use crate::acd::AgentId;
use crate::call::HoldBy;
use crate::context::WrapUpNote;
use std::time::Duration;

fn moh_heard(rig: &Rig, call: crate::call::CallRef, from: std::time::Instant) -> bool {
    let heard: Vec<u8> = rig
        .sent(call)
        .filter(|s| s.at >= from)
        .flat_map(|s| crate::media::rtp::parse(&s.data).unwrap().payload.to_vec())
        .collect();
    count(&heard, &clip("zh", "moh")[..800]) >= 1
}

#[test]
fn a_phone_hold_plays_music_to_the_caller_silences_the_agent_and_resume_reconnects() {
    let (mut rig, mut phone, _caller, call, leg, invite) = bridged_call();
    let agent = [(leg, phone.rtp, 1000.0)];
    let mark = rig.now;
    let heard = converse(&mut rig, &agent, 1000);
    let caller = decoded(&rig, call, mark + Duration::from_millis(200));
    assert!(
        hears(&caller, 1000.0) && hears(&heard[0], 440.0),
        "talking before the hold"
    );

    for direction in ["sendonly", "inactive"] {
        let held_at = rig.now;
        phone.reinvite(&mut rig, &invite, direction);
        let ok = rig
            .last_response(200, "INVITE")
            .expect("the hold is accepted");
        let want = if direction == "sendonly" {
            "a=recvonly"
        } else {
            "a=inactive"
        };
        assert!(body(&ok).contains(want), "{direction}: {ok}");
        let heard = converse(&mut rig, &agent, 2000);
        let caller = decoded(&rig, call, held_at + Duration::from_millis(200));
        assert!(
            moh_heard(&rig, call, held_at),
            "{direction}: the caller hears the music"
        );
        assert!(
            !hears(&caller, 1000.0),
            "{direction}: the caller does not hear the agent"
        );
        assert!(
            !hears(&heard[0], 440.0),
            "{direction}: the agent hears nothing"
        );
        assert!(
            rig.agent_events
                .iter()
                .any(|e| e["type"] == "hold" && e["on"] == true),
            "the desk is told"
        );

        let resumed_at = rig.now;
        phone.reinvite(&mut rig, &invite, "sendrecv");
        let heard = converse(&mut rig, &agent, 1500);
        let caller = decoded(&rig, call, resumed_at + Duration::from_millis(300));
        assert!(
            hears(&caller, 1000.0),
            "{direction}: resumed, the caller hears the agent"
        );
        assert!(
            hears(&heard[0], 440.0),
            "{direction}: resumed, the agent hears the caller"
        );
        assert!(
            !moh_heard(&rig, call, resumed_at + Duration::from_millis(300)),
            "no music after resume"
        );
    }

    phone.bye(&mut rig, &invite);
    rig.advance(Duration::from_secs(40));
    let cdr = rig.cdr();
    let hold = cdr.hold_ms.expect("hold time in the CDR");
    assert!(
        (3_900..=4_200).contains(&hold),
        "two holds of ~2 s: {hold} ms"
    );
    let talk = cdr.talk_ms.expect("talk time in the CDR");
    assert!(
        (3_900..=4_400).contains(&talk),
        "1 + 1.5 + 1.5 s of talk: {talk} ms"
    );
    let held = rig
        .recordings
        .iter()
        .find_map(|e| match e {
            crate::call::RecordEvent::End { held, .. } => Some(held.clone()),
            _ => None,
        })
        .expect("the call was recorded");
    assert_eq!(held.len(), 2, "the recording marks both holds: {held:?}");
    let held_ms: u64 = held.iter().map(|s| s.end_ms - s.start_ms).sum();
    assert!((3_900..=4_200).contains(&held_ms), "{held_ms}");
}

#[test]
fn an_api_hold_does_the_same_for_a_browser_agent() {
    let (mut rig, phone, _caller, call, leg, _invite) = bridged_call();
    let agent = [(leg, phone.rtp, 1000.0)];
    converse(&mut rig, &agent, 600);
    let held_at = rig.now;
    rig.engine
        .set_hold(held_at, call, true, HoldBy::Api)
        .unwrap();
    rig.engine
        .set_hold(held_at, call, true, HoldBy::Api)
        .unwrap();
    let heard = converse(&mut rig, &agent, 2000);
    let caller = decoded(&rig, call, held_at + Duration::from_millis(200));
    assert!(moh_heard(&rig, call, held_at), "the caller hears the music");
    assert!(!hears(&caller, 1000.0), "not the agent");
    assert!(!heard[0].is_empty(), "the agent's leg stays up (silence)");
    assert!(!hears(&heard[0], 440.0), "the agent hears nothing");
    let resumed_at = rig.now;
    rig.engine
        .set_hold(resumed_at, call, false, HoldBy::Api)
        .unwrap();
    let heard = converse(&mut rig, &agent, 1500);
    let caller = decoded(&rig, call, resumed_at + Duration::from_millis(300));
    assert!(
        hears(&caller, 1000.0) && hears(&heard[0], 440.0),
        "both ways again"
    );
    assert!(
        rig.engine
            .set_hold(resumed_at, crate::call::CallRef(999), true, HoldBy::Api)
            .is_err(),
        "no such call"
    );
}

#[test]
fn a_wrap_up_names_a_call_the_agent_answered_and_ready_ends_wrap_up_time() {
    let (mut rig, mut phone, _caller, call, leg, invite) = bridged_call();
    converse(&mut rig, &[(leg, phone.rtp, 1000.0)], 400);
    let number = call.0.to_string();
    let found = rig
        .engine
        .agent_call(8001, &number)
        .expect("8001 answered it");
    assert!(found.live);
    assert!(
        rig.engine.agent_call(8002, &number).is_none(),
        "8002 did not"
    );
    assert_eq!(
        rig.engine
            .agent_call(8001, &found.context_id)
            .map(|c| c.call_id),
        Some(found.call_id.clone()),
        "named by its context id (X-Context-Id)"
    );
    let codes = rig.engine.wrap_up_codes();
    assert!(codes.iter().any(|(c, _)| c == "bill_query"), "{codes:?}");

    // During the call: into the live context, a new version.
    let before = rig.contexts.last().map(|c| c.1).unwrap_or(0);
    let note = WrapUpNote {
        code: "bill_query".into(),
        label: "话费查询 bill query".into(),
        note: "查询上月话费".into(),
        demand: true,
    };
    let now = rig.now;
    let done = rig
        .engine
        .apply_wrap_up(now, 8001, &found.call_id, note, false);
    rig.pump();
    assert_eq!(done.context_version, Some(before + 1));
    let (_, v, json) = rig.contexts.last().unwrap();
    assert_eq!(*v, before + 1);
    let ctx: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(ctx["wrap_up"]["code"], "bill_query");
    assert_eq!(ctx["wrap_up"]["demand"], true);

    phone.bye(&mut rig, &invite);
    let state = |rig: &Rig| {
        rig.engine
            .acd()
            .unwrap()
            .agent(AgentId(8001))
            .unwrap()
            .state
            .name()
    };
    assert_eq!(state(&rig), "wrap-up");
    let after = rig.engine.agent_call(8001, &number).unwrap();
    let now = rig.now;
    let note = WrapUpNote {
        code: "complaint".into(),
        label: "投诉 complaint".into(),
        note: String::new(),
        demand: false,
    };
    let done = rig
        .engine
        .apply_wrap_up(now, 8001, &after.call_id, note, true);
    assert_eq!(done.state, Some("ready"), "ready: true ends wrap-up time");
    assert_eq!(state(&rig), "ready");
}
