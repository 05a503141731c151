use super::*;

fn m() -> IntentMatcher {
    IntentMatcher::builtin()
}

/// The intent kind and digits for `text` at full recogniser confidence, any intent allowed.
fn kind(text: &str) -> Option<IntentKind> {
    m().match_text(text, 1.0, &[]).map(|i| i.kind)
}

fn digits(text: &str) -> Option<String> {
    m().match_text(text, 1.0, &[]).and_then(|i| i.digits)
}

#[test]
fn shipped_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/intents.toml");
    IntentMatcher::load(&path).unwrap();
}

#[test]
fn normalisation() {
    assert_eq!(normalize("查话费。"), "查话费");
    assert_eq!(normalize("ＢＩＬＬ！"), "bill");
    assert_eq!(normalize("  Top-Up,  please "), "top up please");
    assert_eq!(normalize("查話費"), "查话费");
    assert_eq!(normalize("１３８　００１３"), "138 0013");
    assert_eq!(normalize("That's right."), "that's right");
    assert_eq!(normalize("“人工服务”？"), "人工服务");
    assert_eq!(
        units("我的号码是138 0013 8000"),
        ["我", "的", "号", "码", "是", "138", "0013", "8000"]
    );
    assert_eq!(
        units(&normalize("转人工agent")),
        ["转", "人", "工", "agent"]
    );
}

#[test]
fn mandarin_intents() {
    use IntentKind::*;
    for (text, want) in [
        ("查话费", Bill),
        ("话费", Bill),
        ("我想查一下话费。", Bill),
        ("查余额", Bill),
        ("余额", Bill),
        ("查話費", Bill),
        ("花费", Bill),
        ("充值", TopUp),
        ("我要充值", TopUp),
        ("交话费", TopUp),
        ("冲值", TopUp),
        ("人工", Agent),
        ("人工服务", Agent),
        ("转人工", Agent),
        ("客服", Agent),
        ("我要转人工服务！", Agent),
        ("是", Yes),
        ("是的", Yes),
        ("对", Yes),
        ("确认", Yes),
        ("確認", Yes),
        ("不是", No),
        ("不", No),
        ("不对", No),
        ("不是的", No),
        ("不對", No),
        ("再说一遍", Repeat),
        ("请重复一下", Repeat),
        ("返回", Back),
        ("返回上一级", Back),
        ("回到主菜单", Back),
    ] {
        assert_eq!(kind(text), Some(want), "{text}");
    }
}

#[test]
fn english_intents() {
    use IntentKind::*;
    for (text, want) in [
        ("Bill.", Bill),
        ("I want to check my bill.", Bill),
        ("Balance, please", Bill),
        ("What's my balance?", Bill),
        ("Top up.", TopUp),
        ("Top-up", TopUp),
        ("I'd like to recharge my phone", TopUp),
        ("Pay my bill", TopUp),
        ("Agent!", Agent),
        ("Operator", Agent),
        ("Can I speak to a human?", Agent),
        ("Customer service", Agent),
        ("Yes.", Yes),
        ("Yeah", Yes),
        ("That's right.", Yes),
        ("No.", No),
        ("Nope", No),
        ("No, that's wrong", No),
        ("Repeat", Repeat),
        ("Say that again please", Repeat),
        ("Go back", Back),
        ("Main menu", Back),
    ] {
        assert_eq!(kind(text), Some(want), "{text}");
    }
}

#[test]
fn phone_numbers_in_words_and_numerals() {
    for (text, want) in [
        ("幺三八零零幺三八零零零", "13800138000"),
        ("一三八零零一三八零零零", "13800138000"),
        ("一三九 零零一三九 零零零零", "139001390000"),
        ("两零两", "202"),
        ("我的号码是13800138000。", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),
        ("幺三八,零零幺三,八零零零", "13800138000"),
        ("拐拐幺", "771"),
        (
            "one three eight zero zero one three eight zero zero zero",
            "13800138000",
        ),
        (
            "One, three, eight, double oh, one three eight, triple oh.",
            "13800138000",
        ),
        ("My number is 1 3 8 0 0 1 3 8 0 0 0", "13800138000"),
        ("one two three four five six", "123456"),
        ("Seven.", "7"),
        ("九", "9"),
    ] {
        assert_eq!(digits(text).as_deref(), Some(want), "{text}");
        assert_eq!(kind(text), Some(IntentKind::Digits), "{text}");
    }
}

#[test]
fn words_are_not_digits() {
    use IntentKind::*;
    // "to", "for", "one" and 是 are digit words or filler, but these are sentences.
    assert_eq!(kind("I want to talk to someone"), Some(Agent));
    assert_eq!(kind("I want to top up"), Some(TopUp));
    assert_eq!(kind("是的"), Some(Yes));
    assert_eq!(kind("我的话费是多少"), Some(Bill));
    assert_eq!(digits("I want to go for a walk"), None);
}

#[test]
fn the_longer_phrase_wins() {
    use IntentKind::*;
    assert_eq!(kind("不是"), Some(No)); // not 是 (yes)
    assert_eq!(kind("不对"), Some(No)); // not 对 (yes)
    assert_eq!(kind("交话费"), Some(TopUp)); // not 话费 (bill)
    assert_eq!(kind("pay my bill"), Some(TopUp)); // not bill
    assert_eq!(kind("that's wrong"), Some(No));
}

#[test]
fn exact_beats_contained_and_contained_beats_near() {
    let m = m();
    let exact = m.match_text("查话费", 1.0, &[]).unwrap();
    let inside = m.match_text("嗯我想查话费谢谢你啊", 1.0, &[]).unwrap();
    // 灰 (hui) is neither the character nor the sound of 费 (fei).
    let near = m.match_text("查话灰", 1.0, &[]).unwrap();
    assert_eq!(exact.kind, IntentKind::Bill);
    assert_eq!(near.kind, IntentKind::Bill);
    assert!(exact.confidence > inside.confidence, "{exact:?} {inside:?}");
    assert!(inside.confidence > near.confidence, "{inside:?} {near:?}");
    assert!(!exact.confirm && !inside.confirm);
    assert!(near.confirm, "a near miss is confirmed: {near:?}");
    assert_eq!(near.matched, "查话费");
}

#[test]
fn near_misses() {
    use IntentKind::*;
    let m = m();
    for (text, want) in [
        ("check my bil", Bill),
        ("operater", Agent),
        ("recharg", TopUp),
    ] {
        let i = m
            .match_text(text, 1.0, &[])
            .unwrap_or_else(|| panic!("{text}: no match"));
        assert_eq!(i.kind, want, "{text}");
        assert!(i.confirm, "{text}: a near miss asks to confirm: {i:?}");
    }
}

#[test]
fn no_match() {
    for text in [
        "",
        "。。。",
        "今天天气很好",
        "The weather is nice today",
        "我想买一台电脑",
        "pizza",
        "[BLANK_AUDIO]",
        "话",
    ] {
        assert_eq!(m().match_text(text, 1.0, &[]), None, "{text}");
    }
}

#[test]
fn confidence_combines_recogniser_and_match() {
    let m = m();
    let sure = m.match_text("查话费", 0.95, &[]).unwrap();
    let unsure = m.match_text("查话费", 0.3, &[]).unwrap();
    assert!(sure.confidence > 0.9 && !sure.confirm, "{sure:?}");
    assert!(unsure.confidence < 0.6 && unsure.confirm, "{unsure:?}");
    assert!(
        m.match_text("查话费", 0.01, &[]).is_none(),
        "below reject_below"
    );
    // Two intents in one answer: confirm.
    let both = m.match_text("查话费还是充值", 0.9, &[]).unwrap();
    assert!(both.confirm, "{both:?}");
}

#[test]
fn expected_intents_only() {
    use IntentKind::*;
    let m = m();
    // At a yes/no step, a number is not an answer; at a number step, "yes" is not.
    assert_eq!(m.match_text("一三八", 1.0, &[Yes, No]), None);
    assert_eq!(m.match_text("是的", 1.0, &[Digits]), None);
    assert_eq!(
        m.match_text("是的", 1.0, &[Yes, No]).map(|i| i.kind),
        Some(Yes)
    );
    let d = m.match_text("我的号码是幺三八", 1.0, &[Digits]).unwrap();
    assert_eq!(d.digits.as_deref(), Some("138"));
}

#[test]
fn hints_for_the_recogniser() {
    let m = m();
    let zh = m.hints(Lang::Zh, &[IntentKind::Bill, IntentKind::Agent]);
    assert!(
        zh.contains(&"查话费".to_string()) && zh.contains(&"人工".to_string()),
        "{zh:?}"
    );
    let en = m.hints(Lang::En, &[IntentKind::Yes, IntentKind::Digits]);
    assert!(en.contains(&"yes".to_string()), "{en:?}");
    assert!(en.iter().any(|h| h.starts_with("phone number")), "{en:?}");
    assert!(en.len() <= 5);
}

fn err(text: &str) -> String {
    IntentMatcher::from_toml(Path::new("prompts/intents.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn config_errors_name_file_key_and_fix() {
    let base = "[intents.bill]\nzh = [\"查话费\"]\nen = [\"bill\"]\n";
    let full = |extra: &str| -> String {
        let mut s = String::new();
        for k in IntentKind::PHRASED {
            if k != IntentKind::Bill {
                s.push_str(&format!(
                    "[intents.{k}]\nzh = [\"x{k}\"]\nen = [\"y{k}\"]\n"
                ));
            }
        }
        format!("{base}{s}{extra}")
    };
    assert!(IntentMatcher::from_toml(Path::new("t.toml"), &full("")).is_ok());

    let e = err(&full("[intents.bil]\nzh = [\"a\"]\nen = [\"b\"]\n"));
    assert!(e.starts_with("prompts/intents.toml:"), "{e}");
    assert!(
        e.contains("key 'intents.bil'") && e.contains("unknown intent 'bil'"),
        "{e}"
    );
    assert!(e.contains("bill, top_up, agent"), "{e}");

    let e = err(base);
    assert!(
        e.contains("intents.top_up") && e.contains("has no zh phrases"),
        "{e}"
    );

    let e = err("[intents.bill]\nzh = [\"查话费\"]\n");
    assert!(e.contains("has no en phrases"), "{e}");

    let e = err(&full("[matching]\nconfirm_below = 2\n"));
    assert!(
        e.contains("matching.confirm_below") && e.contains("0 to 1"),
        "{e}"
    );
    assert!(e.contains("intents.toml:"), "line number: {e}");

    let e = err(&full(
        "[matching]\nconfirm_below = 0.3\nreject_below = 0.5\n",
    ));
    assert!(
        e.contains("reject_below") && e.contains("above confirm_below"),
        "{e}"
    );

    let e = err(&full("[digits.zh]\n\"x\" = [\"一\"]\n"));
    assert!(
        e.contains("digits.zh.x") && e.contains("\"0\" to \"9\""),
        "{e}"
    );

    let e = err(&full("[digits.zh]\n\"1\" = [\"一\"]\n\"2\" = [\"一\"]\n"));
    assert!(e.contains("already digit 1"), "{e}");

    let e = err(&full("[intents.bill.fr]\n"));
    assert!(e.contains("unknown language 'fr'"), "{e}");

    let e = err("[intents.bill]\nzh = [\"...\"]\nen = [\"bill\"]\n");
    assert!(
        e.contains("intents.bill.zh") && e.contains("no letters or digits"),
        "{e}"
    );

    let e = err("[intents.bill\n");
    assert!(e.contains("(syntax)") && e.contains(":1:"), "{e}");

    let e = err(&full("[menu]\n"));
    assert!(e.contains("'menu'") && e.contains("unknown table"), "{e}");

    let e = IntentMatcher::load(Path::new("/nonexistent/intents.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/intents.toml"), "{e}");
}

#[test]
fn homophones_are_heard_as_meant_without_confirming() {
    use IntentKind::*;
    let m = m();
    for (text, want) in [
        ("转人公", Agent),
        ("仁工", Agent),
        ("查话废", Bill),
        ("冲话费", TopUp),
        ("主菜但", Back),
    ] {
        let i = m
            .match_text(text, 0.9, &[])
            .unwrap_or_else(|| panic!("{text}: no match"));
        assert_eq!(i.kind, want, "{text}");
        assert!(!i.confirm, "{text}: same sound, no need to ask: {i:?}");
    }
    let exact = m.match_text("查话费", 0.9, &[]).unwrap();
    let homophone = m.match_text("查话废", 0.9, &[]).unwrap();
    assert!(
        exact.confidence > homophone.confidence,
        "{exact:?} {homophone:?}"
    );
}

#[test]
fn paying_for_the_bill_is_a_top_up_and_asking_about_it_is_not() {
    use IntentKind::*;
    for (text, want) in [
        ("我要交话费", TopUp),
        ("帮我充一百块钱话费", TopUp),
        ("我想缴一下话费", TopUp),
        ("给我冲一百", TopUp),
        ("还剩多少话费", Bill),
        ("帮我查一下还剩多少钱", Bill),
        ("我话费还够不够", Bill),
        ("话费不够了，我要充值", TopUp),
        ("给我接客服", Agent),
        ("找个人", Agent),
        ("我想跟人说话", Agent),
    ] {
        assert_eq!(kind(text), Some(want), "{text}");
    }
}

#[test]
fn a_negation_is_never_a_yes() {
    let confirm = [IntentKind::Yes, IntentKind::No];
    for text in [
        "不是",
        "不是这样的",
        "不对不对",
        "不，不是",
        "我说的不是这个",
        "没有没有",
        "不需要",
        "不要了",
        "不是的",
    ] {
        let got = m().match_text(text, 0.9, &confirm).map(|i| i.kind);
        assert_eq!(got, Some(IntentKind::No), "{text}");
    }
    for text in ["没错", "没问题", "不错", "对对对", "是的是的"] {
        let got = m().match_text(text, 0.9, &confirm).map(|i| i.kind);
        assert_eq!(got, Some(IntentKind::Yes), "{text}");
    }
}
