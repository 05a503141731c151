use super::{mask, CallerId};

fn bad(raw: &str) -> CallerId {
    let id = CallerId::from_encoded(raw);
    assert!(
        id.is_invalid(),
        "{raw:?} accepted as {:?}",
        id.full_number()
    );
    assert_eq!(id.full_number(), None);
    assert_eq!(id.to_string(), "invalid");
    assert_eq!(format!("{id:?}"), "\"invalid\"");
    assert_eq!(serde_json::to_string(&id).unwrap(), "null");
    let cdr = id.for_cdr();
    assert!(cdr.starts_with("invalid:"), "{cdr}");
    assert!(
        !cdr.bytes().any(|b| matches!(
            b,
            b'\r' | b'\n' | b'"' | b'<' | b'>' | b';' | b'@' | b' ' | b','
        ) || !b.is_ascii()),
        "{cdr:?} still holds a separator"
    );
    id
}

#[test]
fn every_form_of_one_mobile_is_the_same_number() {
    let want = CallerId::parse("13800138000");
    assert_eq!(want.full_number(), Some("13800138000"));
    for raw in [
        "+8613800138000",
        "008613800138000",
        "8613800138000",
        "%2B8613800138000",
        "+86-138-0013-8000",
    ] {
        assert_eq!(CallerId::from_encoded(raw), want, "{raw}");
    }
}

#[test]
fn other_numbers_are_kept_as_they_are() {
    assert_eq!(
        CallerId::parse("+14155550100").full_number(),
        Some("+14155550100")
    );
    assert_eq!(
        CallerId::parse("01012345678").full_number(),
        Some("01012345678")
    );
    assert_eq!(CallerId::parse("10010").full_number(), Some("10010"));
}

#[test]
fn header_breaking_text_is_invalid_and_never_shown() {
    let id = bad("138%0D%0AX-Evil:%201");
    assert_eq!(id.for_cdr(), "invalid:138%0D%0AX-Evil%3A%201");
    bad("138\r\nX-Evil: 1");
    bad("138\nX");
    bad("138\r");
    bad("%0D%0A");
    bad("138%22");
    bad("138\"");
    bad("13800138000@evil.example");
    bad("13800138000;tag=1");
    bad("<sip:13800138000@evil.example>");
    bad("138 0013 8000");
    bad("1380013800\u{663e}");
    bad("\u{ff11}\u{ff13}\u{ff18}"); // full-width digits
    bad("138%E6%98%BE");
    bad("138%ZZ");
    bad("138%2541"); // a double-encoded escape is not decoded twice
    bad("1+38");
    bad("++138");
    bad("*138#");
    bad("+");
}

#[test]
fn long_strings_are_invalid_and_cut_short_in_the_cdr() {
    let digits = "1".repeat(21);
    bad(&digits);
    assert!(CallerId::parse(&"1".repeat(20)).is_number());
    let huge = format!("138{}", "A".repeat(10_000));
    let id = bad(&huge);
    assert!(id.for_cdr().len() < 80, "{}", id.for_cdr().len());
    assert!(id.for_cdr().ends_with("..."));
}

#[test]
fn withheld_is_neither_number_nor_invalid() {
    for raw in [None, Some(""), Some("anonymous"), Some("Anonymous")] {
        let id = CallerId::from_user(raw);
        assert!(!id.is_number() && !id.is_invalid(), "{raw:?}");
        assert_eq!(id.to_string(), "anonymous");
        assert_eq!(id.for_cdr(), "");
    }
}

#[test]
fn display_and_debug_mask() {
    let id = CallerId::from_encoded("+8613800138000");
    assert_eq!(id.to_string(), "138****8000");
    assert_eq!(format!("{id:?}"), "\"138****8000\"");
    assert_eq!(format!("{:?}", Some(&id)), "Some(\"138****8000\")");
    assert_eq!(CallerId::parse("10010").to_string(), "*0010");
    assert_eq!(mask("1234"), "****");
    assert_eq!(mask("+14155550100"), "+14*****0100");
}

#[test]
fn json_holds_the_number_or_null() {
    let id = CallerId::parse("13800138000");
    let j = serde_json::to_string(&id).unwrap();
    assert_eq!(j, "\"13800138000\"");
    let back: CallerId = serde_json::from_str(&j).unwrap();
    assert_eq!(back, id);
    let back: CallerId = serde_json::from_str("\"138\\r\\nX-Evil: 1\"").unwrap();
    assert!(back.is_invalid());
    let back: CallerId = serde_json::from_str("null").unwrap();
    assert_eq!(back, CallerId::withheld());
}
