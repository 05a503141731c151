//! The CDR's `ended_in`: where the caller was when they hung up, which the reports need to
//! count abandonment in the menus, in line and while an agent's phone rang apart.

use super::agents::{acd_rig, bridged_call, caller_waiting_for_8001, password, Phone};
use super::rig::*;
use std::time::Duration;

fn caller_hangs_up(rig: &mut Rig, caller: &mut Caller) {
    let bye = caller.request("BYE", "", "");
    rig.send(caller, &bye);
}

#[test]
fn a_caller_leaving_in_the_menus_ended_in_the_ivr() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let _call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    caller_hangs_up(&mut rig, &mut caller);
    assert_eq!(rig.cdr().ended_in.as_deref(), Some("ivr"));
    assert_eq!(rig.cdr().agent, None);
}

#[test]
fn a_caller_leaving_while_the_agent_rings_ended_in_ringing() {
    let (mut rig, phone, mut caller, _call) = caller_waiting_for_8001();
    rig.advance(play_time(&[&clip("zh", "transferring")]));
    assert_eq!(phone.invites(&rig).len(), 1, "the agent's phone rings");
    caller_hangs_up(&mut rig, &mut caller);
    let cdr = rig.cdr();
    assert_eq!(cdr.ended_in.as_deref(), Some("ringing"));
    assert_eq!(cdr.queue.as_deref(), Some("billing"));
    assert_eq!(cdr.agent, None, "nobody answered");
}

#[test]
fn a_caller_hanging_up_on_the_agent_ended_with_the_agent() {
    let (mut rig, _phone, mut caller, _call, _leg, _invite) = bridged_call();
    rig.advance(Duration::from_secs(2));
    caller_hangs_up(&mut rig, &mut caller);
    let cdr = rig.cdr();
    assert_eq!(cdr.ended_in.as_deref(), Some("agent"));
    assert_eq!(cdr.agent, Some(8001));
    assert_eq!(
        cdr.agent_ended_at.as_deref(),
        Some(cdr.ended_at.as_str()),
        "the agent was there until the caller left"
    );
    assert_eq!(cdr.transfers, Some(0));
}

#[test]
fn a_caller_leaving_in_line_with_no_phone_ringing_ended_in_the_queue() {
    let mut rig = acd_rig();
    let mut phone = Phone::new("8001", 6001);
    assert_eq!(phone.register(&mut rig, &password("8001")), 200);
    // Logged in but not ready: the caller queues and nobody is rung.
    assert_eq!(phone.dial(&mut rig, "*21").0, 603);
    assert_eq!(phone.dial(&mut rig, "*22").0, 603);
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, "127.0.0.1:40000".parse().unwrap());
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    rig.advance(play_time(&[&clip("zh", "transferring")]) + Duration::from_secs(5));
    assert!(
        phone.invites(&rig).is_empty(),
        "a not-ready agent is not rung"
    );
    caller_hangs_up(&mut rig, &mut caller);
    let cdr = rig.cdr();
    assert_eq!(cdr.ended_in.as_deref(), Some("queue"));
    assert_eq!(cdr.queue.as_deref(), Some("billing"));
    assert_eq!(cdr.agent, None);
}
