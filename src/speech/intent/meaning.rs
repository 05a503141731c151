//! Mandarin requests by meaning: a verb and its object together, not one keyword. Paying
//! *for* 话费 (交 / 缴 / 续 / 买 / 充 + 话费, or an amount) is a top-up even though it says
//! 话费; asking for a person (找个人, 跟人说话, 让工作人员来接) is an agent however it is
//! worded; 再说一遍 and 听不清 both ask for a repeat. Each frame is a few parts that must
//! appear in order, with at most `gap` other units between neighbours; a part is a list of
//! alternatives, matched by sound (see `sound`), or `#amount` for a spoken amount.
//!
//! A frame hit spans its parts, so a keyword inside it ("话费" inside "交五十块话费") is part
//! of the frame and does not count for another intent (the matcher's containment rule).

use super::sound::sounds_like;
use super::{Hit, IntentKind};

struct Frame {
    kind: IntentKind,
    parts: &'static [&'static [&'static str]],
    gap: usize,
}

// 冲 is how recognisers most often write 充 on its own.
const PAY: &[&str] = &["交", "缴", "充", "冲", "续", "买", "付", "存", "加"];
const MONEY: &[&str] = &[
    "电话费",
    "话费",
    "费用",
    "费",
    "钱",
    "值",
    "流量",
    "#amount",
];
const ASK: &[&str] = &[
    "查询", "查", "看看", "看", "问问", "问", "了解", "知道", "算算",
];
const BALANCE: &[&str] = &[
    "话费",
    "余额",
    "账单",
    "账户",
    "账",
    "消费",
    "费用",
    "欠费",
    "多少钱",
    "多少",
];
const STAFF: &[&str] = &[
    "人工",
    "客服",
    "真人",
    "接线员",
    "话务员",
    "工作人员",
    "服务人员",
    "坐席",
    "领导",
    "经理",
    "值班员",
];
const REQUEST: &[&str] = &[
    "转接", "转", "找", "接", "要", "叫", "让", "请", "跟", "和", "同",
];
/// A bare 人 is a person only after these ("找个人", "跟人说话"): "我要" + 人 is too loose.
const REQUEST_PERSON: &[&str] = &["找", "叫", "让", "跟", "和", "同"];
const NEG: &[&str] = &["不", "没", "别"];

const FRAMES: &[Frame] = &[
    Frame {
        kind: IntentKind::TopUp,
        parts: &[PAY, MONEY],
        gap: 4,
    },
    Frame {
        kind: IntentKind::TopUp,
        parts: &[&["给"], &["手机", "号码", "号", "我"], PAY],
        gap: 3,
    },
    Frame {
        kind: IntentKind::Bill,
        parts: &[ASK, BALANCE],
        gap: 6,
    },
    Frame {
        kind: IntentKind::Bill,
        parts: &[
            &["还剩", "还有", "剩下", "剩"],
            &["多少", "钱", "话费", "余额"],
        ],
        gap: 3,
    },
    Frame {
        kind: IntentKind::Bill,
        parts: &[
            &["话费", "余额", "账上", "钱"],
            &["多少", "够不够", "还够", "够吗", "还有", "剩"],
        ],
        gap: 3,
    },
    Frame {
        kind: IntentKind::Bill,
        parts: &[&["欠"], &["费", "钱", "多少", "吗"]],
        gap: 2,
    },
    Frame {
        kind: IntentKind::Bill,
        parts: &[&["花"], &["多少"]],
        gap: 2,
    },
    Frame {
        kind: IntentKind::Agent,
        parts: &[REQUEST, STAFF],
        gap: 4,
    },
    Frame {
        kind: IntentKind::Agent,
        parts: &[REQUEST_PERSON, &["人"]],
        gap: 2,
    },
    Frame {
        kind: IntentKind::Agent,
        parts: &[&["有没有", "有"], &["人"]],
        gap: 1,
    },
    Frame {
        kind: IntentKind::Agent,
        parts: &[&["不想", "不要", "不跟", "不和"], &["机器"]],
        gap: 3,
    },
    Frame {
        kind: IntentKind::Repeat,
        parts: &[&["再", "重新", "重"], &["说", "讲", "来", "播", "念", "听"]],
        gap: 1,
    },
    Frame {
        kind: IntentKind::Repeat,
        parts: &[&["没"], &["听清", "听懂", "听见", "听到", "明白"]],
        gap: 0,
    },
    Frame {
        kind: IntentKind::Repeat,
        parts: &[&["听"], &["不"], &["清", "懂", "见", "到"]],
        gap: 0,
    },
    Frame {
        kind: IntentKind::Repeat,
        parts: &[&["说"], &["什么", "啥"]],
        gap: 0,
    },
    Frame {
        kind: IntentKind::Back,
        parts: &[
            &["返回", "回到", "回", "退回", "退"],
            &["去", "上一级", "上级", "上一步", "主菜单", "菜单", "前面"],
        ],
        gap: 2,
    },
    Frame {
        kind: IntentKind::No,
        parts: &[
            NEG,
            &["是", "对", "要", "用", "需要", "行", "可以", "必要", "正确"],
        ],
        gap: 1,
    },
];

/// Frame hits in `units` (normalised, one unit per CJK character).
pub(super) fn frame_hits(units: &[String], total_chars: usize) -> Vec<Hit> {
    let mut out = vec![];
    for f in FRAMES {
        if let Some(h) = frame_hit(f, units, total_chars) {
            out.push(h);
        }
    }
    out
}

fn frame_hit(f: &Frame, units: &[String], total_chars: usize) -> Option<Hit> {
    for start in 0..units.len() {
        for (first_len, exact) in part_at(f.parts[0], units, start) {
            if let Some((end, exact_rest)) = rest(f, 1, units, start + first_len) {
                let span: usize = units[start..end].iter().map(|u| u.chars().count()).sum();
                let cover = span as f32 / total_chars.max(1) as f32;
                // Sure of the meaning; how much of the answer it explains decides the rest,
                // as for phrases inside an answer.
                let q = 0.8 + 0.2 * cover;
                let quality = if exact && exact_rest { q } else { 0.92 * q };
                return Some(Hit {
                    kind: f.kind,
                    quality,
                    start,
                    end,
                    chars: span,
                    matched: units[start..end].concat(),
                    near: false,
                });
            }
        }
    }
    None
}

/// Matches parts `i..` starting within `gap` units of `from`; returns where the last ends.
fn rest(f: &Frame, i: usize, units: &[String], from: usize) -> Option<(usize, bool)> {
    if i == f.parts.len() {
        return Some((from, true));
    }
    for at in from..=(from + f.gap).min(units.len()) {
        for (len, exact) in part_at(f.parts[i], units, at) {
            if let Some((end, e)) = rest(f, i + 1, units, at + len) {
                return Some((end, exact && e));
            }
        }
    }
    None
}

/// The alternatives of `part` found at `at` (转接线员: 转接 and 转 both, for the next part
/// to choose): their lengths in units and whether each is the very text (not a homophone).
fn part_at(part: &[&str], units: &[String], at: usize) -> Vec<(usize, bool)> {
    let mut out = vec![];
    for alt in part {
        if *alt == "#amount" {
            out.extend(amount_at(units, at).map(|n| (n, true)));
            continue;
        }
        let want: Vec<String> = alt.chars().map(|c| c.to_string()).collect();
        let n = want.len();
        if at + n <= units.len() {
            if let Some(same) = sounds_like(&units[at..at + n], &want) {
                out.push((n, same));
            }
        }
    }
    out
}

/// A spoken or written amount at `at` ("五十", "一百块", "30元", "100块钱"): its length in
/// units, currency word included.
fn amount_at(units: &[String], at: usize) -> Option<usize> {
    const NUM: &str = "零一二两三四五六七八九十百千万";
    let mut i = at;
    while i < units.len()
        && (units[i].chars().all(|c| c.is_ascii_digit())
            || (units[i].chars().count() == 1 && NUM.contains(units[i].as_str())))
    {
        i += 1;
    }
    if i == at {
        return None;
    }
    // A lone 一 is "a" more often than "one" (交一下); an amount has more.
    if i - at == 1 && units[at] == "一" {
        return None;
    }
    for cur in [&["块", "钱"][..], &["块"], &["元"], &["圆"]] {
        let n = cur.len();
        if i + n <= units.len() && units[i..i + n].iter().zip(cur.iter()).all(|(u, c)| u == c) {
            return Some(i + n - at);
        }
    }
    Some(i - at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<IntentKind> {
        let units = super::super::units(&super::super::normalize(text));
        let total = units.iter().map(|u| u.chars().count()).sum();
        frame_hits(&units, total)
            .into_iter()
            .map(|h| h.kind)
            .collect()
    }

    #[test]
    fn paying_for_the_bill_is_a_top_up() {
        for t in [
            "交话费",
            "我想缴一下话费",
            "帮我充一百块钱话费",
            "充五十",
            "续费",
            "我要付话费",
            "冲值",
        ] {
            assert_eq!(kinds(t), [IntentKind::TopUp], "{t}");
        }
    }

    #[test]
    fn asking_about_it_is_a_bill_query() {
        for t in [
            "帮我查一下还剩多少钱",
            "我还有多少钱",
            "查一下余额",
            "我欠费了吗",
        ] {
            assert!(kinds(t).contains(&IntentKind::Bill), "{t}: {:?}", kinds(t));
            assert!(!kinds(t).contains(&IntentKind::TopUp), "{t}");
        }
    }

    #[test]
    fn a_person_however_asked_for() {
        for t in [
            "找个人",
            "我想跟人说话",
            "让你们工作人员来接",
            "转接线员",
            "我不想跟机器说话",
        ] {
            assert!(kinds(t).contains(&IntentKind::Agent), "{t}: {:?}", kinds(t));
        }
        // "我要" + a bare 人 is not a request for one.
        assert!(!kinds("我要交话费给别人").contains(&IntentKind::Agent));
    }

    #[test]
    fn amounts() {
        let u = |s: &str| s.chars().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(amount_at(&u("五十块钱"), 0), Some(4));
        assert_eq!(amount_at(&u("一百元"), 0), Some(3));
        assert_eq!(amount_at(&u("一下"), 0), None);
        assert_eq!(
            amount_at(&["100".to_string(), "块".to_string()], 0),
            Some(2)
        );
    }
}
