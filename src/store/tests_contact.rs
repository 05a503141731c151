//! The contact-centre tables against a real SQLite file.

use super::tests::{cleanup, temp_db_path};
use super::*;
use crate::acd::{AcdConfig, AgentId, AGENT_REALM};
use crate::sip::registrar::Credentials;

fn agent(id: u32, ext: &str) -> AgentRow {
    AgentRow {
        id,
        name: "王丽".into(),
        extension: ext.into(),
        skills: [("billing".to_string(), 8u8)].into_iter().collect(),
        queues: vec!["billing".into()],
        ..AgentRow::default()
    }
}

#[test]
fn agents_round_trip_through_a_reopened_database() {
    let path = temp_db_path("agents");
    {
        let db = Db::open(&path).unwrap();
        db.upsert_agent(&agent(8002, "8002")).unwrap();
        db.upsert_agent(&agent(8001, "8001")).unwrap();
        let mut changed = agent(8002, "8012");
        changed.skills.insert("mobile".into(), 5);
        changed.queues.push("mobile".into());
        db.upsert_agent(&changed).unwrap();
    }
    let db = Db::open(&path).unwrap();
    let all = db.agents().unwrap();
    assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [8001, 8002]);
    let a = db.agent(8002).unwrap().unwrap();
    assert_eq!(a.extension, "8012");
    assert_eq!(a.skills.get("mobile"), Some(&5));
    assert_eq!(a.queues, ["billing", "mobile"]);
    let rec = a.record();
    assert_eq!(rec.id, AgentId(8002));
    assert_eq!(rec.queues[1].as_str(), "mobile");
    assert!(db.remove_agent(8002).unwrap());
    assert!(!db.remove_agent(8002).unwrap());
    assert!(db.agent(8002).unwrap().is_none());
    cleanup(&path);
}

#[test]
fn bad_agents_are_refused_with_what_to_write() {
    let path = temp_db_path("agents-bad");
    let db = Db::open(&path).unwrap();
    db.upsert_agent(&agent(8001, "8001")).unwrap();

    let e = db.upsert_agent(&agent(8002, "8001")).unwrap_err();
    assert!(
        matches!(e, StoreError::DuplicateExtension { agent: 8001, .. }),
        "{e}"
    );
    let e = db.insert_agent(&agent(8001, "8009")).unwrap_err();
    assert!(matches!(e, StoreError::AgentExists(8001)), "{e}");

    let mut letters = agent(8003, "80a3");
    assert!(db
        .upsert_agent(&letters)
        .unwrap_err()
        .to_string()
        .contains("digits"));
    letters.extension = "8003".into();
    letters.skills.insert("billing".into(), 11);
    let e = db.upsert_agent(&letters).unwrap_err().to_string();
    assert!(e.contains("1 (novice) to 10"), "{e}");
    letters.skills.insert("billing".into(), 0);
    assert!(db.upsert_agent(&letters).is_err());
    letters.skills.insert("billing".into(), 10);
    letters.queues.clear();
    assert!(db
        .upsert_agent(&letters)
        .unwrap_err()
        .to_string()
        .contains("queue"));
    letters.queues = vec!["billing".into()];
    letters.name = "  ".into();
    assert!(db
        .upsert_agent(&letters)
        .unwrap_err()
        .to_string()
        .contains("name"));
    // None of the refused rows got in.
    assert_eq!(db.agents().unwrap().len(), 1);
    cleanup(&path);
}

#[test]
fn passwords_are_stored_as_ha1s_for_the_agent_realm_only() {
    let path = temp_db_path("agents-pw");
    let db = Db::open(&path).unwrap();
    db.upsert_agent(&agent(8001, "8001")).unwrap();
    assert!(db.agent(8001).unwrap().unwrap().credentials().is_none());
    assert!(db.set_agent_password(8001, "s3cret-pw").unwrap());
    assert!(!db.set_agent_password(9999, "s3cret-pw").unwrap());
    let e = db.set_agent_password(8001, "ab").unwrap_err().to_string();
    assert!(!e.contains("ab\""), "{e}");

    let row = db.agent(8001).unwrap().unwrap();
    let want = Credentials::from_password("8001", AGENT_REALM, "s3cret-pw");
    assert_eq!(row.credentials(), Some(want));
    assert!(!format!("{row:?}").contains(row.ha1_md5.as_deref().unwrap()));
    // The password itself is nowhere in the file.
    drop(db);
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        assert!(!b.windows(9).any(|w| w == b"s3cret-pw"));
    }
    cleanup(&path);
}

#[test]
fn seeding_fills_an_empty_directory_once_with_lab_passwords() {
    let path = temp_db_path("agents-seed");
    let db = Db::open(&path).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
    let (cfg, records) = AcdConfig::load(&dir).unwrap();
    let n = db.seed_agents(&records, &cfg.lab_passwords).unwrap();
    assert_eq!(n, records.len());
    let row = db.agent(8001).unwrap().unwrap();
    let pw = cfg.lab_passwords.get(AgentId(8001)).unwrap();
    assert_eq!(
        row.credentials(),
        Some(Credentials::from_password("8001", AGENT_REALM, pw))
    );
    // The operator removes an agent; a restart must not bring it back.
    db.remove_agent(8001).unwrap();
    assert_eq!(db.seed_agents(&records, &cfg.lab_passwords).unwrap(), 0);
    assert!(db.agent(8001).unwrap().is_none());
    cleanup(&path);
}

#[test]
fn contexts_keep_the_newest_version() {
    let path = temp_db_path("contexts");
    let db = Db::open(&path).unwrap();
    db.put_context("ctx-1", 2, "call-a", r#"{"v":2}"#).unwrap();
    db.put_context("ctx-1", 1, "call-a", r#"{"v":1}"#).unwrap();
    assert_eq!(db.context("ctx-1").unwrap(), Some((2, r#"{"v":2}"#.into())));
    db.put_context("ctx-1", 3, "call-a", r#"{"v":3}"#).unwrap();
    assert_eq!(db.context("ctx-1").unwrap().unwrap().0, 3);
    assert_eq!(db.context("nope").unwrap(), None);
    assert!(db.put_context("a/b", 1, "c", "{}").is_err());
    cleanup(&path);
}

#[test]
fn supervision_surveys_and_recordings_are_kept() {
    let path = temp_db_path("quality");
    let db = Db::open(&path).unwrap();
    db.log_supervision("call-a", "9001", "whisper", Some(8001))
        .unwrap();
    db.log_supervision("call-b", "9001", "listen", None)
        .unwrap();
    assert!(db.log_supervision("call-a", "9001", "shout", None).is_err());
    let log = db.supervision_log(Some("call-a")).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].mode.as_str(), log[0].agent),
        ("whisper", Some(8001))
    );
    assert_eq!(db.supervision_log(None).unwrap().len(), 2);

    db.insert_survey("call-a", Some(8001), "billing", 5)
        .unwrap();
    db.insert_survey("call-b", Some(8002), "billing", 2)
        .unwrap();
    assert!(db.insert_survey("call-c", None, "billing", 6).is_err());
    assert!(db.insert_survey("call-c", None, "billing", 0).is_err());
    let s = db.surveys(Some(8001), 10).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].score, 5);
    assert_eq!(db.surveys(None, 10).unwrap().len(), 2);

    let rec = RecordingRow {
        id: 0,
        call_id: "call-a".into(),
        agent: Some(8001),
        path: "recordings/call-a.wav".into(),
        started_at: "2026-11-24T12:00:00.000Z".into(),
        duration_ms: 61_000,
        masked_ms: 4_000,
        masked_segments: vec![[12_000, 16_000]],
    };
    let id = db.insert_recording(&rec).unwrap();
    let got = db.recording(id).unwrap().unwrap();
    assert_eq!(got, RecordingRow { id, ..rec });
    assert_eq!(db.recordings().unwrap().len(), 1);
    assert!(db.recording(id + 1).unwrap().is_none());
    cleanup(&path);
}

#[test]
fn retention_deletes_old_recordings_with_their_files_and_old_contexts_only() {
    use std::time::{Duration, SystemTime};
    let path = temp_db_path("retention");
    let db = Db::open(&path).unwrap();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let rec_dir = db.dir().join("recordings");
    std::fs::create_dir_all(&rec_dir).unwrap();
    let add = |name: &str, age_days: u32, with_file: bool| {
        let rel = format!("recordings/{name}.wav");
        if with_file {
            std::fs::write(db.dir().join(&rel), b"RIFF").unwrap();
        }
        db.insert_recording(&RecordingRow {
            id: 0,
            call_id: name.into(),
            agent: Some(8001),
            path: rel,
            started_at: rfc3339_utc(now - day * age_days),
            duration_ms: 1000,
            masked_ms: 0,
            masked_segments: vec![],
        })
        .unwrap()
    };
    add("old", 100, true);
    add("gone", 95, false);
    add("fresh", 10, true);
    add("escape", 200, false);
    // A row pointing outside the data folder is never followed.
    db.conn()
        .unwrap()
        .execute(
            "UPDATE recordings SET path = '../../etc/passwd' WHERE call_id = 'escape'",
            [],
        )
        .unwrap();
    db.put_context("ctx-old", 3, "call-old", "{}").unwrap();
    db.put_context("ctx-new", 1, "call-new", "{}").unwrap();
    db.conn()
        .unwrap()
        .execute(
            "UPDATE contexts SET updated_at = ?1 WHERE id = 'ctx-old'",
            [rfc3339_utc(now - day * 40)],
        )
        .unwrap();

    // Nothing configured: nothing goes.
    assert_eq!(
        db.prune(now, &crate::config::Retention::default()).unwrap(),
        Pruned::default()
    );
    let keep = crate::config::Retention {
        recordings_days: Some(90),
        contexts_days: Some(30),
    };
    let done = db.prune(now, &keep).unwrap();
    assert_eq!(
        done,
        Pruned {
            recordings: 2,
            contexts: 1
        }
    );
    let left: Vec<String> = db
        .recordings()
        .unwrap()
        .into_iter()
        .map(|r| r.call_id)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"fresh".to_string()) && left.contains(&"escape".to_string()));
    assert!(
        !rec_dir.join("old.wav").exists(),
        "the expired file is deleted"
    );
    assert!(rec_dir.join("fresh.wav").exists());
    assert!(db.context("ctx-old").unwrap().is_none());
    assert!(db.context("ctx-new").unwrap().is_some());
    // A second pass finds nothing more.
    assert_eq!(db.prune(now, &keep).unwrap().recordings, 0);
    cleanup(&path);
}
