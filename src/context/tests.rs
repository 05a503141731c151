use super::*;
use crate::billing::Refusal;

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

use crate::hex::percent_decode;

/// A call that went through the bill menu, typed a PIN, spoke, topped up and queued.
fn full() -> CallContext {
    let mut c = CallContext::new(
        new_context_id("boot7", 42),
        "a84b4c76e66710@pc33",
        "13800138000".into(),
        "zh",
    );
    let path: Vec<String> = ["welcome", "main", "bill", "pin", "main", "agent"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let inputs = vec![
        ("main".to_string(), "1".to_string()),
        ("pin".to_string(), "******".to_string()),
        (
            "problem".to_string(),
            "said:topup 充值卡 1234 5678 没有到账 utterances/a-1.wav".to_string(),
        ),
    ];
    c.record_ivr(&path, &inputs, Some("充值卡号1234567890没有到账"), "zh");
    c.record_verified("service_pin", "2026-11-24T18:50:00Z");
    c.record_account("13800138000", 2);
    c.record_bill(&Statement {
        balance_fen: 12850,
        month_to_date_fen: 3620,
        last_month_fen: 8900,
    });
    c.record_topup(&RedeemOutcome::Credited {
        amount_fen: 5000,
        balance_fen: 17850,
    });
    c.record_topup(&RedeemOutcome::Refused(Refusal::CardUsed));
    c.record_outcome("bill", "bill_played");
    c.update(|c| {
        c.queue = Some("billing".into());
        c.wait_seconds = Some(37);
        c.calls_today = 3;
        c.agent = Some(8001);
    });
    c
}

#[test]
fn uui_header_round_trips_to_the_payload() {
    let c = full();
    let h = c.sip_headers("http://10.0.0.5:8080/api/v1/contexts/x");
    let uui = header(&h, "User-to-User").unwrap();
    assert!(
        uui.ends_with(";encoding=hex;purpose=isdn-uui;content=isdn-uui"),
        "{uui}"
    );
    let bytes = parse_uui(uui).unwrap();
    assert_eq!(bytes, c.uui_payload());
    assert_eq!(bytes[0], 0x04, "IA5 protocol discriminator first");
    let s = UuiSummary::parse(&bytes).unwrap();
    assert_eq!(
        s,
        UuiSummary {
            id: c.id.clone(),
            version: c.version,
            verified: true,
            vip_level: 2,
            lang: "zh".into(),
            queue: Some("billing".into()),
        }
    );
}

#[test]
fn parse_uui_follows_rfc_7433_parameters() {
    let data = "04637478";
    // No parameters: isdn-uui and hex are the defaults; case and quotes do not matter.
    assert_eq!(parse_uui(data).unwrap(), vec![0x04, 0x63, 0x74, 0x78]);
    assert_eq!(
        parse_uui("\"04637478\"; Encoding=HEX ;PURPOSE=\"isdn-uui\"").unwrap(),
        vec![0x04, 0x63, 0x74, 0x78]
    );
    assert_eq!(
        parse_uui("0102;purpose=vendor-x").unwrap_err(),
        UuiError::Purpose("vendor-x".into())
    );
    assert_eq!(
        parse_uui("abc;encoding=ascii").unwrap_err(),
        UuiError::Encoding("ascii".into())
    );
    assert_eq!(
        parse_uui("0102;content=other").unwrap_err(),
        UuiError::Content("other".into())
    );
    assert_eq!(
        parse_uui("0g12;encoding=hex").unwrap_err(),
        UuiError::BadHex
    );
    // A sign is not a hex digit ("+a" would otherwise read as 0x0a).
    assert_eq!(parse_uui("+a+b").unwrap_err(), UuiError::BadHex);
    assert_eq!(parse_uui(" ;encoding=hex").unwrap_err(), UuiError::Empty);
    assert_eq!(
        parse_uui(&"00".repeat(130)).unwrap_err(),
        UuiError::TooLong(130)
    );
    // Several values: the isdn-uui one is taken.
    assert_eq!(
        parse_uui("ffff;purpose=vendor-x, 0001;purpose=isdn-uui").unwrap(),
        vec![0, 1]
    );
    // Someone else's UUI is not mistaken for ours.
    assert_eq!(UuiSummary::parse(&[0x00, 0x12, 0x34]), None);
    assert_eq!(UuiSummary::parse(b"\x04ver=1;vf=0"), None);
    // A signed escape is kept as it is, not decoded.
    let s = UuiSummary::parse(b"\x04ctx=a%+1b").unwrap();
    assert_eq!(s.id, "a%+1b");
}

#[test]
fn json_round_trip_keeps_everything() {
    let c = full();
    let json = c.to_json();
    assert_eq!(CallContext::from_json(&json).unwrap(), c);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["caller"], "13800138000", "the agent gets the full number");
    assert_eq!(v["bills"][0]["balance_fen"], 12850);
    assert_eq!(v["topups"][0]["outcome"], "credited");
    assert_eq!(v["topups"][1]["outcome"], "refused_card_used");
    assert_eq!(v["verified"]["method"], "service_pin");
    assert_eq!(v["self_service"][0]["outcome"], "bill_played");
}

#[test]
fn sensitive_digits_never_show() {
    let c = full();
    let json = c.to_json();
    // The PIN entry holds only the IVR's mask.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["inputs"][1]["node"], "pin");
    assert_eq!(v["inputs"][1]["value"], "******");
    // Card digits the caller read out are masked in the transcript and the reason.
    assert!(!json.contains("1234"), "{json}");
    assert!(!json.contains("5678"), "{json}");
    assert_eq!(c.transcript.len(), 1);
    assert_eq!(c.transcript[0].intent, "topup");
    assert_eq!(c.transcript[0].text, "充值卡 ********没有到账");
    assert_eq!(c.transcript[0].audio.as_deref(), Some("utterances/a-1.wav"));
    assert_eq!(c.reason.as_deref(), Some("充值卡号**********没有到账"));
    // Logs: the caller's and the account's numbers masked, entries not shown.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("13800138000"), "{dbg}");
    assert!(dbg.contains("138****8000"), "{dbg}");
    assert!(
        !dbg.contains("******\""),
        "inputs are counted, not shown: {dbg}"
    );
    assert!(!dbg.contains("没有到账"), "{dbg}");
    // Headers do not carry the card digits either.
    for (n, v) in c.sip_headers("http://h/c") {
        if n == "User-to-User" {
            continue; // hex: digit runs in it mean nothing
        }
        assert!(!percent_decode(&v).contains("1234"), "{n}: {v}");
    }
}

#[test]
fn header_values_are_sip_safe_and_carry_chinese_encoded() {
    let mut c = full();
    c.update(|c| {
        c.reason = Some("我的话费不对，请查一下\r\nX-Evil: 1".into());
        c.queue = Some("账单 queue".into());
    });
    let h = c.sip_headers("http://10.0.0.5:8080/api/v1/contexts/a b\r\n<x>");
    for (n, v) in &h {
        assert!(
            v.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{n}: {v:?} is not visible ASCII"
        );
    }
    let reason = header(&h, "X-Reason").unwrap();
    assert_eq!(
        percent_decode(reason),
        "我的话费不对，请查一下\r\nX-Evil: 1"
    );
    assert_eq!(percent_decode(header(&h, "X-Queue").unwrap()), "账单 queue");
    assert_eq!(
        header(&h, "Call-Info").unwrap(),
        "<http://10.0.0.5:8080/api/v1/contexts/a%20b%0D%0A%3Cx%3E>;purpose=info"
    );
    assert_eq!(
        header(&h, "X-IVR-Path").unwrap(),
        "welcome>main>bill>pin>main>agent"
    );
    assert_eq!(header(&h, "X-Caller").unwrap(), "13800138000");
    assert_eq!(header(&h, "X-Verified").unwrap(), "service_pin");
    assert_eq!(header(&h, "X-Account").unwrap(), "13800138000");
    assert_eq!(header(&h, "X-VIP").unwrap(), "2");
    assert_eq!(header(&h, "X-Lang").unwrap(), "zh");
    assert_eq!(header(&h, "X-Wait-Seconds").unwrap(), "37");
    assert_eq!(header(&h, "X-Calls-Today").unwrap(), "3");
    assert_eq!(header(&h, "X-Context-Id").unwrap(), c.id);
    assert_eq!(
        header(&h, "X-Context-Version").unwrap(),
        c.version.to_string()
    );

    // A long Chinese reason is cut on a character boundary, not mid-escape.
    c.update(|c| c.reason = Some("话".repeat(200)));
    let h = c.sip_headers("http://h/c");
    let r = header(&h, "X-Reason").unwrap();
    assert!(r.len() <= 300, "{}", r.len());
    let back = percent_decode(r);
    assert!(!back.is_empty() && back.chars().all(|ch| ch == '话'));
}

#[test]
fn unverified_anonymous_caller_headers() {
    let c = CallContext::new(new_context_id("b", 1), "cid", CallerId::withheld(), "en");
    let h = c.sip_headers("http://h/c");
    assert_eq!(header(&h, "X-Verified"), Some("no"));
    assert_eq!(header(&h, "X-Caller"), None);
    assert_eq!(header(&h, "X-Queue"), None);
    assert_eq!(header(&h, "X-Reason"), None);
    let s = UuiSummary::parse(&parse_uui(header(&h, "User-to-User").unwrap()).unwrap());
    assert_eq!(s.map(|s| (s.verified, s.queue)), Some((false, None)));
}

#[test]
fn uui_stays_within_the_isdn_bound() {
    let mut c = full();
    c.update(|c| c.queue = Some("billing-".repeat(40)));
    let p = c.uui_payload();
    assert!(p.len() <= UUI_MAX, "{}", p.len());
    let s = UuiSummary::parse(&p).unwrap();
    assert_eq!(s.id, c.id, "the id survives; the queue is cut");
    let q = s.queue.unwrap();
    assert!(
        !q.is_empty() && "billing-".repeat(40).starts_with(&q),
        "{q}"
    );

    // Even an absurd id and a Chinese queue name stay within the bound and valid text.
    c.id = new_context_id(&"x".repeat(300), u64::MAX);
    c.queue = Some("话费".repeat(50));
    let p = c.uui_payload();
    assert!(p.len() <= UUI_MAX, "{}", p.len());
    assert!(std::str::from_utf8(&p[1..]).unwrap().is_ascii());
    assert_eq!(UuiSummary::parse(&p).unwrap().version, c.version);
    assert_eq!(parse_uui(&crate::hex::encode(&p)).unwrap(), p);
}

#[test]
fn record_ivr_reports_changes_and_update_bumps() {
    let mut c = CallContext::new("c1".into(), "cid", "13900139000".into(), "zh");
    let path = vec!["welcome".to_string(), "main".to_string()];
    let inputs = vec![("main".to_string(), "2".to_string())];
    assert!(c.record_ivr(&path, &inputs, None, "zh"));
    assert!(!c.record_ivr(&path, &inputs, None, "zh"), "nothing new");
    assert!(c.record_ivr(&path, &inputs, None, "en"), "language changed");
    assert!(c.record_ivr(&path, &inputs, Some("bill"), "en"));
    assert_eq!(c.version, 1, "record_* leave the version to the engine");

    assert!(c.record_outcome("bill", "bill_played"));
    assert!(!c.record_outcome("bill", "bill_played"));
    assert!(!c.record_outcome("welcome", "abandoned"));
    assert!(c.record_verified("service_pin", "t"));
    assert!(!c.record_verified("service_pin", "t2"));
    assert!(c.record_account("13900139000", 0));
    assert!(!c.record_account("13900139000", 0));

    let v = c.version;
    assert!(!c.update(|c| c.calls_today = 0));
    assert_eq!(c.version, v);
    assert!(c.update(|c| c.wait_seconds = Some(5)));
    assert_eq!(c.version, v + 1);
    c.bump();
    assert_eq!(c.version, v + 2);
}

#[test]
fn context_ids_are_unique_and_url_safe() {
    let ids = [
        new_context_id("a.b", 1),
        new_context_id("a_b", 1),
        new_context_id("a_2Eb", 1),
        new_context_id("a.b", 2),
        new_context_id("a.b", 36),
        new_context_id("启动", 0),
    ];
    for (i, a) in ids.iter().enumerate() {
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{a}"
        );
        for b in &ids[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(new_context_id("b1", 36), "b1-10");
}
