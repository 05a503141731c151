//! Characters that sound alike. A recogniser that hears "huafei" may write 话费 or 花费,
//! "chongzhi" 充值 or 冲值, "rengong" 人工 or 仁工: the caller said the right thing and the
//! text is one homophone off. Two characters sound alike when their usual readings are the
//! same, tones ignored (callers' tones are the first thing a telephone line and an accent
//! blur). Only words of two or more characters with one of them right are heard this way: a
//! single character has too many homophones (付 / 服 / 父) to stand for itself.

use pinyin::ToPinyinMulti;

/// Whether units `a` and `b` (single CJK characters, or Latin words / numerals) may be the
/// same spoken syllable.
pub(super) fn alike(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Some(ca), Some(cb)) = (single(a), single(b)) else {
        return false;
    };
    // The first reading is the usual one; rare ones (还 as fú) would make false friends.
    let (Some(ra), Some(rb)) = (ca.to_pinyin_multi(), cb.to_pinyin_multi()) else {
        return false;
    };
    ra.get(0).plain() == rb.get(0).plain()
}

fn single(u: &str) -> Option<char> {
    let mut cs = u.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Units `got` sound like `want`, position by position. Returns None when they do not,
/// Some(true) when every unit is the very same, Some(false) when one or more only sound alike.
pub(super) fn sounds_like(got: &[String], want: &[String]) -> Option<bool> {
    if got.len() != want.len() {
        return None;
    }
    if got == want {
        return Some(true);
    }
    if want.len() < 2 || !got.iter().zip(want).any(|(g, w)| g == w) {
        return None;
    }
    let mut same = true;
    for (g, w) in got.iter().zip(want) {
        if g != w {
            if !alike(g, w) {
                return None;
            }
            same = false;
        }
    }
    Some(same)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<String> {
        s.chars().map(|c| c.to_string()).collect()
    }

    #[test]
    fn homophones_recognisers_write_sound_alike() {
        for (a, b) in [
            ("话费", "花费"),
            ("充值", "冲值"),
            ("人工", "仁工"),
            ("人工", "人宫"),
            ("交费", "缴费"),
        ] {
            assert_eq!(sounds_like(&u(a), &u(b)), Some(false), "{a} / {b}");
        }
        assert_eq!(sounds_like(&u("话费"), &u("话费")), Some(true));
    }

    #[test]
    fn different_sounds_do_not() {
        for (a, b) in [
            ("话费", "回来"),
            ("是", "不"),
            ("人工", "人们"),
            ("充值", "冲"),
            ("付", "服"),
            ("仁宫", "人工"),
        ] {
            assert_eq!(sounds_like(&u(a), &u(b)), None, "{a} / {b}");
        }
        assert!(!alike("bill", "pill"));
    }
}
