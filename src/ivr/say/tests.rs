// Mandarin readings group digits by 万 (10^4), so do the literals.
#![allow(clippy::inconsistent_digit_grouping)]

use super::*;
use crate::ivr::script::{fixtures, Script};

/// Renders prompt names back to the text the caller hears, through the real script,
/// so a wrong unit text (e.g. num_yi = "一") fails too.
fn render(script: &Script, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            script
                .get(*n)
                .unwrap_or_else(|| panic!("prompt {n} missing from script"))
                .as_str()
        })
        .collect()
}

fn zh_text(names: Vec<&str>) -> String {
    render(fixtures::zh(), &names)
}

/// English words joined by spaces, with the hyphen of "twenty-eight".
fn en_text(names: Vec<&str>) -> String {
    let script = fixtures::en();
    let mut s = String::new();
    for (i, n) in names.iter().enumerate() {
        let w = script
            .get(*n)
            .unwrap_or_else(|| panic!("prompt {n} missing from en script"));
        if i > 0 {
            let tens_then_unit =
                en::TENS.contains(&names[i - 1]) && en::UNDER_20[1..10].contains(n);
            s.push(if tens_then_unit { '-' } else { ' ' });
        }
        s.push_str(w);
    }
    s
}

#[test]
fn zh_small_integers() {
    let cases = [
        (0, "零"),
        (1, "一"),
        (2, "二"),
        (9, "九"),
        (10, "十"),
        (11, "十一"),
        (12, "十二"),
        (19, "十九"),
        (20, "二十"),
        (22, "二十二"),
        (99, "九十九"),
        (100, "一百"),
        (101, "一百零一"),
        (110, "一百一十"),
        (111, "一百一十一"),
        (120, "一百二十"),
        (200, "两百"),
        (202, "两百零二"),
        (220, "两百二十"),
        (999, "九百九十九"),
    ];
    for (n, want) in cases {
        assert_eq!(zh_text(say_int_zh(n)), want, "{n}");
    }
}

#[test]
fn zh_thousands_and_zero_rules() {
    let cases = [
        (1000, "一千"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (1020, "一千零二十"),
        (1100, "一千一百"),
        (1200, "一千两百"),
        (2000, "两千"),
        (2002, "两千零二"),
        (2222, "两千两百二十二"),
        (9999, "九千九百九十九"),
        (10000, "一万"),
        (10002, "一万零二"),
        (10010, "一万零一十"),
        (10100, "一万零一百"),
        (11000, "一万一千"),
        (12000, "一万两千"),
        (20000, "两万"),
        (22000, "两万两千"),
        (100000, "十万"),
        (100010, "十万零一十"),
        (120000, "十二万"),
        (220000, "二十二万"),
        (1_000_000, "一百万"),
        (2_000_000, "两百万"),
        (10_000_000, "一千万"),
        (10_000_001, "一千万零一"),
        (10_010_000, "一千零一万"),
    ];
    for (n, want) in cases {
        assert_eq!(zh_text(say_int_zh(n)), want, "{n}");
    }
}

#[test]
fn zh_yi_and_wan_yi() {
    let cases = [
        (1_0000_0000, "一亿"),
        (1_0000_0001, "一亿零一"),
        (2_0000_0000, "两亿"),
        (10_0000_0000, "十亿"),
        (12_0000_0000, "十二亿"),
        (1_0010_0000, "一亿零一十万"),
        (1_0100_0000, "一亿零一百万"),
        (1_1000_0000, "一亿一千万"),
        (1_0000_1000, "一亿零一千"),
        (1_2000_0100, "一亿两千万零一百"),
        (1_0000_0000_0000, "一万亿"),
        (2_0000_0000_0000, "两万亿"),
        (1_0001_0000_0000, "一万零一亿"),
        (
            9999_9999_9999,
            "九千九百九十九亿九千九百九十九万九千九百九十九",
        ),
        (-15, "负十五"),
        (-2, "负二"),
    ];
    for (n, want) in cases {
        assert_eq!(zh_text(say_int_zh(n)), want, "{n}");
    }
}

#[test]
fn zh_money() {
    let cases = [
        (0, "零元"),
        (1, "一分"),
        (2, "两分"),
        (5, "五分"),
        (20, "两角"),
        (80, "八角"),
        (85, "八角五分"),
        (100, "一元整"),
        (105, "一元零五分"),
        (200, "两元整"),
        (220, "两元两角"),
        (1200, "十二元整"),
        (2200, "二十二元整"),
        (12850, "一百二十八元五角"),
        (12800, "一百二十八元整"),
        (3620, "三十六元两角"),
        (8900, "八十九元整"),
        (20000, "两百元整"),
        (102000, "一千零二十元整"),
        (1000205, "一万零二元零五分"),
        (-1230, "负十二元三角"),
        (-5, "负五分"),
        (1_0000_0001_00, "一亿零一元整"),
    ];
    for (fen, want) in cases {
        assert_eq!(zh_text(say_money_zh(fen)), want, "{fen} fen");
    }
}

#[test]
fn zh_digits_use_yao() {
    assert_eq!(
        zh_text(say_digits_zh("13800138000")),
        "幺三八零零幺三八零零零"
    );
    assert_eq!(zh_text(say_digits_zh("2046")), "二零四六");
    assert_eq!(zh_text(say_digits_zh("1-2 3")), "幺二三");
    assert!(say_digits_zh("").is_empty());
}

#[test]
fn en_integers() {
    let cases = [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (28, "twenty-eight"),
        (100, "one hundred"), (101, "one hundred one"), (128, "one hundred twenty-eight"),
        (1000, "one thousand"), (1020, "one thousand twenty"), (10002, "ten thousand two"),
        (100010, "one hundred thousand ten"), (1_000_000, "one million"),
        (1_000_001, "one million one"), (200_000_000, "two hundred million"),
        (9999_9999_9999, "nine hundred ninety-nine billion nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred ninety-nine"),
        (-12, "minus twelve"),
    ];
    for (n, want) in cases {
        assert_eq!(en_text(say_int_en(n)), want, "{n}");
    }
}

#[test]
fn en_money() {
    let cases = [
        (0, "zero yuan"),
        (5, "five fen"),
        (80, "eighty fen"),
        (100, "one yuan"),
        (200, "two yuan"),
        (12850, "one hundred twenty-eight yuan and fifty fen"),
        (12800, "one hundred twenty-eight yuan"),
        (1000205, "ten thousand two yuan and five fen"),
        (-1230, "minus twelve yuan and thirty fen"),
    ];
    for (fen, want) in cases {
        assert_eq!(en_text(say_money_en(fen)), want, "{fen} fen");
    }
}

#[test]
fn en_digits() {
    assert_eq!(
        en_text(say_digits_en("13800138000")),
        "one three eight zero zero one three eight zero zero zero"
    );
}

#[test]
fn dispatch_by_language() {
    assert_eq!(say_money("en", 200), say_money_en(200));
    assert_eq!(say_money("zh", 200), say_money_zh(200));
    assert_eq!(say_int("zh", 12), say_int_zh(12));
    assert_eq!(say_digits("en", "10"), say_digits_en("10"));
}

/// Every name emitted over a wide sweep exists in the language's script and is
/// listed by `prompt_names` (which check-config uses).
#[test]
fn every_emitted_prompt_exists_in_script() {
    let (zh_s, en_s) = (fixtures::zh(), fixtures::en());
    let (zh_names, en_names) = (zh::prompt_names(), en::prompt_names());
    let mut values: Vec<i64> = (-1000..=20_000).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        values.push((x % 10_000_0000_0000) as i64 * if x & 1 == 0 { 1 } else { -1 });
    }
    values.extend([i64::MAX, i64::MIN, i64::MIN + 1]);
    for v in values {
        for name in say_int_zh(v)
            .into_iter()
            .chain(say_money_zh(v))
            .chain(say_digits_zh(&v.to_string()))
        {
            assert!(
                zh_s.contains_key(name) && zh_names.contains(&name),
                "zh {name} for {v}"
            );
        }
        for name in say_int_en(v)
            .into_iter()
            .chain(say_money_en(v))
            .chain(say_digits_en(&v.to_string()))
        {
            assert!(
                en_s.contains_key(name) && en_names.contains(&name),
                "en {name} for {v}"
            );
        }
    }
}

/// Structural Mandarin properties over a sweep: no doubled 零, never ends in 零
/// (except zero itself), and 零 never directly follows a unit-less start.
#[test]
fn zh_zero_never_doubled_or_trailing() {
    for n in (1..=120_000).chain((0..2000).map(|k| k * 5_0000_1 + 1_0000_0000)) {
        let t = zh_text(say_int_zh(n));
        assert!(!t.contains("零零"), "{n} → {t}");
        assert!(!t.ends_with('零'), "{n} → {t}");
        assert!(!t.starts_with('零'), "{n} → {t}");
    }
}
