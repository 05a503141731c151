use super::*;

fn err(queues: &str, agents: &str) -> String {
    AcdConfig::from_toml(
        Path::new("sip-profiles/queues.toml"),
        queues,
        Some((Path::new("sip-profiles/agents.toml"), agents)),
    )
    .expect_err("the configuration must be refused")
    .to_string()
}

#[test]
fn the_shipped_files_load_with_every_service_line() {
    let (cfg, agents) = AcdConfig::from_toml(
        Path::new("queues.toml"),
        SHIPPED_QUEUES,
        Some((Path::new("agents.toml"), SHIPPED_AGENTS)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = cfg.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "话费",
            "终端",
            "移动业务",
            "长途",
            "宽带",
            "短信",
            "增值业务",
            "网络故障",
            "高级客服",
            "应答线 answer line"
        ],
        "in the file's order"
    );
    let front: Vec<&str> = cfg
        .queues
        .iter()
        .filter(|q| q.front_line)
        .map(|q| q.id.as_str())
        .collect();
    assert_eq!(front, ["front-line"], "one answer-line queue");
    assert!(
        cfg.queues.iter().all(|q| q.survey),
        "every shipped queue asks for a rating"
    );
    let billing = cfg.queue(&q("billing")).unwrap();
    assert_eq!(billing.strategy, Strategy::LongestIdle);
    assert_eq!(billing.overflow_to, Some(q("senior")));
    assert_eq!(billing.max_wait, Some(s(600)));
    assert_eq!(billing.offer_callback_after, Some(s(120)));
    assert_eq!(billing.announce_every, Some(s(30)));
    let internet = cfg.queue(&q("internet")).unwrap();
    assert_eq!(
        (internet.strategy, internet.skill.as_str()),
        (Strategy::SkillLevel, "broadband")
    );
    assert_eq!(internet.wrap_up, s(30));
    assert_eq!(
        cfg.queue(&q("network-faults")).unwrap().strategy,
        Strategy::RingAll
    );
    assert_eq!(
        cfg.queue(&q("long-distance")).unwrap().strategy,
        Strategy::RoundRobin
    );
    assert_eq!(
        cfg.queue(&q("sms")).unwrap().strategy,
        Strategy::FewestCalls
    );
    assert_eq!(cfg.vip, VipPolicy::Strict);
    assert_eq!(cfg.agents.max_missed_rings, 3);
    assert_eq!(
        cfg.agents.reasons.get(&1).map(String::as_str),
        Some("小休 break")
    );
    assert_eq!(agents.len(), 10);
    assert_eq!(agents[0].name, "王丽");
    assert_eq!(agents[0].skills.get("billing"), Some(&8));
    // Every queue has someone to answer it.
    for qc in &cfg.queues {
        assert!(
            agents.iter().any(|a| a.queues.contains(&qc.id)),
            "{} has agents",
            qc.id
        );
    }
}

#[test]
fn the_shipped_hotline_routes_a_call_end_to_end() {
    let mut rig = Rig::shipped();
    for id in [8001, 8002, 8007, 9001] {
        rig.input(Input::Registered { agent: a(id) });
        rig.input(Input::Command {
            agent: a(id),
            command: feature_code("*21").unwrap(),
        });
    }
    let out = rig.enqueue(1, "billing", 0);
    assert_eq!(rings(&out).len(), 1);
    let (_, agent) = rings(&out)[0];
    rig.answer(1, agent);
    assert_eq!(rig.acd.agent_of(c(1)), Some(a(agent)));
}

#[test]
fn a_bad_strategy_names_file_line_key_and_the_choices() {
    let text = "[queue.billing]\nname = \"话费\"\nstrategy = \"fastest\"\n";
    let e = err(text, "");
    assert!(
        e.starts_with("sip-profiles/queues.toml:3: key 'queue.billing.strategy': \"fastest\" is not a strategy; use \"longest-idle\""),
        "{e}"
    );
}

#[test]
fn a_bad_default_is_reported_against_defaults() {
    let text = "[defaults]\nring_timeout_s = 2\n\n[queue.billing]\n";
    let e = err(text, "");
    assert!(
        e.contains("queues.toml:2: key 'defaults.ring_timeout_s': 2 is out of range; use 5-120"),
        "{e}"
    );
}

#[test]
fn the_same_key_in_two_queues_points_at_the_right_line() {
    let text = "[queue.a]\nwrap_up_s = 5\n\n[queue.b]\nwrap_up_s = -1\n";
    let e = err(text, "");
    assert!(
        e.contains("queues.toml:5: key 'queue.b.wrap_up_s': -1 is out of range"),
        "{e}"
    );
}

#[test]
fn unknown_keys_and_syntax_errors_name_their_line() {
    let e = err("[queue.a]\nring_timout_s = 10\n", "");
    assert!(
        e.contains("queues.toml:2: key 'ring_timout_s': unknown field"),
        "{e}"
    );
    assert!(
        e.contains("see the comments in sip-profiles/queues.toml"),
        "{e}"
    );
    let e = err("[queue.a]\nname = \"x\n", "");
    assert!(e.contains("queues.toml:2: key '(syntax)'"), "{e}");
}

#[test]
fn overflow_must_name_a_queue_need_a_max_wait_and_not_loop() {
    let e = err(
        "[queue.a]\nmax_wait_s = 60\noverflow_to = \"zz\"\n\n[queue.b]\n",
        "",
    );
    assert!(
        e.contains(":3: key 'queue.a.overflow_to': no queue 'zz'; use one of: a, b"),
        "{e}"
    );
    let e = err("[queue.a]\noverflow_to = \"b\"\n\n[queue.b]\n", "");
    assert!(
        e.contains(":2: key 'queue.a.overflow_to': is never used without max_wait_s"),
        "{e}"
    );
    let e = err(
        "[queue.a]\nmax_wait_s = 60\noverflow_to = \"b\"\n\n[queue.b]\nmax_wait_s = 60\noverflow_to = \"a\"\n",
        "",
    );
    assert!(
        e.contains(":3: key 'queue.a.overflow_to': overflow loops: a → b → a"),
        "{e}"
    );
}

#[test]
fn a_callback_offer_after_max_wait_is_refused() {
    let e = err(
        "[queue.a]\nmax_wait_s = 60\noffer_callback_after_s = 90\n",
        "",
    );
    assert!(
        e.contains(
            ":3: key 'queue.a.offer_callback_after_s': 90 s is not before max_wait_s (60 s)"
        ),
        "{e}"
    );
}

#[test]
fn vip_weighting_needs_its_weight() {
    let e = err("[vip]\nmode = \"weighted\"\n\n[queue.a]\n", "");
    assert!(
        e.contains(":1: key 'vip.weight_per_level_s': is required with mode = \"weighted\""),
        "{e}"
    );
    let e = err("[vip]\nmode = \"loudest\"\n\n[queue.a]\n", "");
    assert!(
        e.contains(":2: key 'vip.mode': \"loudest\" is not a VIP mode"),
        "{e}"
    );
    let (cfg, _) = AcdConfig::from_toml(
        Path::new("q"),
        "[vip]\nmode = \"weighted\"\nweight_per_level_s = 60\n\n[queue.a]\n",
        None,
    )
    .unwrap();
    assert_eq!(cfg.vip, VipPolicy::Weighted { per_level: s(60) });
}

#[test]
fn defaults_cannot_hold_one_queues_keys_and_ids_are_plain() {
    let e = err("[defaults]\nname = \"x\"\n\n[queue.a]\n", "");
    assert!(
        e.contains(":2: key 'defaults.name': belongs to one queue"),
        "{e}"
    );
    let e = err("[queue.Billing]\n", "");
    assert!(
        e.contains(":1: key 'queue.Billing': a queue id is 1-32 lowercase letters"),
        "{e}"
    );
    let e = err("", "");
    assert!(e.contains("key 'queue': no queue is defined"), "{e}");
}

#[test]
fn agent_errors_name_the_agent_entry_and_the_fix() {
    let queues = "[queue.billing]\n\n[queue.mobile]\n";
    let agent = |body: &str| {
        format!("[[agent]]\nid = 1\nname = \"王丽\"\nextension = \"8001\"\nqueues = [\"billing\"]\n\n[[agent]]\n{body}\n")
    };
    let e = err(
        queues,
        &agent("id = 2\nname = \"刘洋\"\nextension = \"8002\"\nqueues = [\"biling\"]"),
    );
    assert!(
        e.contains("agents.toml:11: key 'agent[1].queues': no queue 'biling' in queues.toml; use some of: billing, mobile"),
        "{e}"
    );
    let e = err(
        queues,
        &agent("id = 1\nname = \"刘洋\"\nextension = \"8002\"\nqueues = [\"billing\"]"),
    );
    assert!(
        e.contains(":8: key 'agent[1].id': 1 is already used"),
        "{e}"
    );
    let e = err(
        queues,
        &agent("id = 2\nname = \"刘洋\"\nextension = \"8001\"\nqueues = [\"billing\"]"),
    );
    assert!(
        e.contains(":10: key 'agent[1].extension': \"8001\" is already agent 1's phone"),
        "{e}"
    );
    let e = err(queues, &agent("id = 2\nname = \"刘洋\"\nextension = \"8002\"\nqueues = [\"billing\"]\nskills = { billing = 11 }"));
    assert!(
        e.contains(
            ":12: key 'agent[1].skills.billing': 11 is out of range; use 1 (novice) to 10 (expert)"
        ),
        "{e}"
    );
    let e = err(
        queues,
        &agent("id = 2\nname = \"刘洋\"\nqueues = [\"billing\"]"),
    );
    assert!(e.contains("key 'extension': missing field"), "{e}");
    let e = err(queues, "max_missed_rings = 0\n");
    assert!(
        e.contains("agents.toml:1: key 'max_missed_rings': 0 is out of range; use 1-20"),
        "{e}"
    );
    let e = err(queues, "[reasons]\n1 = \"break\"\nx = \"meal\"\n");
    assert!(
        e.contains(":3: key 'reasons.x': \"x\" is not a reason code; use 0-99"),
        "{e}"
    );
}

#[test]
fn load_reads_both_files_and_agents_is_optional() {
    let dir = std::env::temp_dir().join(format!("acd-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("queues.toml"), "[queue.a]\n").unwrap();
    let (cfg, agents) = AcdConfig::load(&dir).unwrap();
    assert_eq!((cfg.queues.len(), agents.len()), (1, 0));
    std::fs::write(
        dir.join("agents.toml"),
        "[[agent]]\nid = 7\nname = \"x\"\nextension = \"7\"\nqueues = [\"a\"]\n",
    )
    .unwrap();
    assert_eq!(AcdConfig::load(&dir).unwrap().1.len(), 1);
    std::fs::remove_file(dir.join("queues.toml")).unwrap();
    let e = AcdConfig::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("queues.toml") && e.contains("copy sip-profiles/queues.toml"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_service_level_threshold_defaults_to_20_s_and_a_bad_one_names_its_line() {
    let text = "[defaults]\nservice_level_s = 30\n\n[queue.a]\n\n[queue.b]\nservice_level_s = 10\n";
    let (cfg, _) = AcdConfig::from_toml(Path::new("sip-profiles/queues.toml"), text, None).unwrap();
    let sl: Vec<u64> = cfg
        .queues
        .iter()
        .map(|q| q.service_level.as_secs())
        .collect();
    assert_eq!(sl, [30, 10], "a queue's own value wins over [defaults]");
    let (plain, _) = AcdConfig::from_toml(Path::new("q.toml"), "[queue.a]\n", None).unwrap();
    assert_eq!(plain.queues[0].service_level, Duration::from_secs(20));
    let e = err("[queue.a]\n\n[queue.b]\nservice_level_s = 0\n", "");
    assert!(
        e.contains("queues.toml:4: key 'queue.b.service_level_s': 0 is out of range; use 1-3600"),
        "{e}"
    );
}
