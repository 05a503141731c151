use super::*;
use crate::ivr::script::fixtures;

const DEFAULT: &str = include_str!("../../../prompts/menus.toml");

fn load(text: &str) -> Result<MenuSet, MenuError> {
    MenuSet::from_toml_str("menus.toml", text)
}

#[track_caller]
fn err_of(text: &str) -> MenuError {
    match load(text) {
        Ok(_) => panic!("expected a validation error"),
        Err(e) => e,
    }
}

/// The default file with one line replaced, so each error test changes only what it names.
#[track_caller]
fn default_with(from: &str, to: &str) -> String {
    assert!(
        DEFAULT.contains(from),
        "fixture line {from:?} not in menus.toml"
    );
    DEFAULT.replacen(from, to, 1)
}

#[test]
fn default_tree_loads_with_hotline_shape() {
    let m = load(DEFAULT).unwrap();
    assert_eq!(m.settings.entry, "welcome");
    assert_eq!(m.settings.top, "main");
    let Some(Node::Menu(main)) = m.node("main") else {
        panic!("main is a menu")
    };
    assert_eq!(
        main.keys[&'1'],
        Action::Goto {
            node: "bill".into(),
            pass_digit: false
        }
    );
    assert_eq!(
        main.keys[&'0'],
        Action::Goto {
            node: "describe".into(),
            pass_digit: false
        }
    );
    assert!(matches!(
        m.node("describe"),
        Some(Node::Reason {
            then: Action::Agent,
            ..
        })
    ));
    assert_eq!(main.keys[&'9'], Action::Repeat);
    assert_eq!(main.keys[&'*'], Action::Back);
    assert_eq!(main.timers.first_digit, Duration::from_secs(5));
    assert_eq!(main.timers.inter_digit, Duration::from_secs(3));
    assert_eq!((main.timers.max_failures, main.timers.max_timeouts), (3, 3));
    let Some(Node::Collect(pin)) = m.node("bill_pin") else {
        panic!("bill_pin is a collect")
    };
    assert!(pin.sensitive);
    assert_eq!(
        (pin.min_digits, pin.max_digits, pin.terminator),
        (6, 6, Some('#'))
    );
    let Some(Node::Topup(t)) = m.node("topup") else {
        panic!("topup is a topup node")
    };
    let Some(Node::Collect(card)) = m.node(&t.card) else {
        panic!("the card is a collect")
    };
    assert!(card.sensitive);
    assert_eq!((card.min_digits, card.max_digits), (18, 18));
}

/// Every prompt the menus and the say functions can ask for exists in each language's script.
#[test]
fn every_referenced_prompt_exists_in_both_scripts() {
    let m = load(DEFAULT).unwrap();
    for (lang, script) in [("zh", fixtures::zh()), ("en", fixtures::en())] {
        let names = all_prompt_names(&m, lang);
        assert!(names.contains("main_menu") && names.contains("bill_balance"));
        let missing: Vec<_> = names.iter().filter(|n| !script.contains_key(*n)).collect();
        assert!(missing.is_empty(), "{lang} script lacks {missing:?}");
    }
    // The pinned English prompt counts only for English.
    assert!(m.prompt_names("en").contains("press2_english"));
    assert!(!m.prompt_names("zh").contains("press2_english"));
}

#[test]
fn bad_key_is_named_with_fix() {
    let e = err_of(&default_with(
        r#"keys."9" = { action = "repeat" }"#,
        r#"keys."12" = { action = "repeat" }"#,
    ));
    assert_eq!(e.key, "menus.main.keys.12");
    assert!(e.fix.contains("0-9 * # A-D"), "{e}");
    assert!(
        e.to_string().starts_with("menus.toml: menus.main.keys.12:"),
        "{e}"
    );
}

#[test]
fn unknown_goto_target_lists_known_nodes() {
    let e = err_of(&default_with(
        r#"keys."1" = { action = "goto", node = "bill" }"#,
        r#"keys."1" = { action = "goto", node = "bil" }"#,
    ));
    assert_eq!(e.key, "menus.main.keys.1.node");
    assert!(
        e.problem.contains("'bil'") && e.fix.contains("bill_phone"),
        "{e}"
    );
}

#[test]
fn unknown_action_and_misplaced_fields() {
    let e = err_of(&default_with(
        r#"keys."0" = { action = "agent" }"#,
        r#"keys."0" = { action = "operator" }"#,
    ));
    assert_eq!(e.key, "menus.bill.keys.0.action");
    assert!(e.fix.contains("goto, back, top"), "{e}");

    let e = err_of(&default_with(
        r#"keys."0" = { action = "agent" }"#,
        r#"keys."0" = { action = "agent", node = "main" }"#,
    ));
    assert_eq!(e.key, "menus.bill.keys.0.node");

    let e = err_of(&default_with(
        r#"keys."2" = { action = "lang", lang = "en""#,
        r#"keys."2" = { action = "lang", lang = "fr""#,
    ));
    assert_eq!(e.key, "menus.welcome.keys.2.lang");
}

#[test]
fn kind_errors() {
    let e = err_of(&default_with(r#"kind = "topup""#, r#"kind = "top_up""#));
    assert_eq!(e.key, "menus.topup.kind");
    assert!(e.fix.contains("topup_soon"));

    let e = err_of(&default_with(
        "[menus.topup]\nkind = \"topup\"",
        "[menus.topup]\nkind = \"topup\"\nmin_digits = 3",
    ));
    assert_eq!(e.key, "menus.topup.min_digits");
    assert!(e.problem.contains("does not apply"), "{e}");
}

#[test]
fn collect_checks() {
    let e = err_of(&default_with(
        r#"regex = "[0-9]{6}""#,
        r#"regex = "[0-9{6}""#,
    ));
    assert_eq!(e.key, "menus.bill_pin.regex");

    let e = err_of(&default_with("min_digits = 6", "min_digits = 7"));
    assert_eq!(e.key, "menus.bill_pin.min_digits");

    let e = err_of(&default_with("sensitive = true\n", ""));
    assert_eq!(e.key, "menus.bill_pin.sensitive");
    assert!(e.fix.contains("sensitive = true"));

    let e = err_of(&default_with(
        "terminator = \"#\"\nregex = \"1",
        "terminator = \"##\"\nregex = \"1",
    ));
    assert_eq!(e.key, "menus.bill_phone.terminator");
}

#[test]
fn limits_and_prompt_names() {
    let e = err_of(&default_with(
        "max_failures = 3\nmax_timeouts",
        "max_failures = 0\nmax_timeouts",
    ));
    assert_eq!(e.key, "settings.max_failures");
    let e = err_of(&default_with(
        "first_digit_timeout_ms = 1500",
        "first_digit_timeout_ms = 5",
    ));
    assert_eq!(e.key, "menus.welcome.first_digit_timeout_ms");
    let e = err_of(&default_with(
        r#"greet_long = ["main_menu"]"#,
        r#"greet_long = ["Main Menu"]"#,
    ));
    assert_eq!(e.key, "menus.main.greet_long[0]");
    let e = err_of(&default_with(
        r#"greet_long = ["main_menu"]"#,
        r#"greet_long = []"#,
    ));
    assert_eq!(e.key, "menus.main.greet_long");
    let e = err_of(&default_with(
        r#""en:press2_english""#,
        r#""fr:press2_english""#,
    ));
    assert_eq!(e.key, "menus.welcome.greet_long[1]");
}

#[test]
fn settings_must_point_at_existing_menus() {
    let e = err_of(&default_with(r#"top = "main""#, r#"top = "bill""#));
    assert_eq!(e.key, "settings.top");
    let e = err_of(&default_with(r#"entry = "welcome""#, r#"entry = "hello""#));
    assert_eq!(e.key, "settings.entry");
}

#[test]
fn toml_errors_name_the_file_and_line() {
    let e = err_of(&default_with(
        "[menus.main]\nkind = \"menu\"",
        "[menus.main]\nkind = \"menu\"\ngreeting = [\"x\"]",
    ));
    assert_eq!(e.file, "menus.toml");
    assert!(e.key.starts_with("line "), "{e}");
    assert!(e.problem.contains("greeting"), "{e}");
}

#[test]
fn load_reports_missing_file() {
    let e = MenuSet::load(Path::new("/nonexistent/menus.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/menus.toml"), "{e}");
}

#[test]
fn check_prompts_reports_the_missing_ones() {
    let m = load(DEFAULT).unwrap();
    let has = |lang: &str, name: &str| {
        let script = if lang == "en" {
            fixtures::en()
        } else {
            fixtures::zh()
        };
        script.contains_key(name)
    };
    assert_eq!(check_prompts(&m, "menus.toml", has), Ok(()));
    let e = check_prompts(&m, "menus.toml", |lang, name| {
        has(lang, name) && !(lang == "en" && name == "cur_fen")
    })
    .unwrap_err();
    assert_eq!(e.key, "prompts/en/cur_fen");
    assert!(e.fix.contains("prompts/en/script.toml"), "{e}");
}
