//! Mandarin number and money reading as sequences of unit prompts.
//!
//! Reading rules (what a Mandarin speaker says, not what a character-by-character
//! transliteration gives):
//! - 零 is said once for any run of zeros between two non-zero digits, including across
//!   a 万/亿 boundary (10002 → 一万零二, 100010 → 十万零一十, 1_0000_0001 → 一亿零一),
//!   and never at the end (1000 → 一千).
//! - A leading 1 before 十 is dropped only at the very start (10 → 十, 100000 → 十万);
//!   inside a number it is said (110 → 一百一十, 100010 → 十万零一十).
//! - 两 replaces 二 where a 2 counts a 百, 千, 万 or 亿 (200 → 两百, 2000 → 两千,
//!   2222 → 两千两百二十二, 20000 → 两万, 2_0000_0000 → 两亿); a 2 in the tens or units
//!   place stays 二 (12 → 十二, 22 → 二十二, 120 → 一百二十, 12_0000 → 十二万).
//! - Money: an amount that is exactly 2 of a unit uses 两 before the unit (两元, 两角,
//!   两分); 12 元 stays 十二元. No 角 or 分 → 整 (一百二十八元整); 角 = 0 with 分 → 零
//!   (一万零二元零五分); no 元 part → no 零元 (0.80 → 八角); zero → 零元; negative
//!   amounts are read with a leading 负 (-12.30 → 负十二元三角). The bill flow does not
//!   use 负: it says 您已欠费 followed by the absolute amount.
//! - Digit strings (phone, card, account numbers) are read one by one with 幺 for 1.

pub const DIGITS: [&str; 10] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
];
pub const LIANG: &str = "num_liang";
pub const YAO: &str = "num_yao";
pub const SHI: &str = "num_shi";
pub const BAI: &str = "num_bai";
pub const QIAN: &str = "num_qian";
pub const WAN: &str = "num_wan";
/// 亿 (10^8), not 一.
pub const YI: &str = "num_yi";
pub const NEG: &str = "neg";
pub const YUAN: &str = "cur_yuan";
pub const JIAO: &str = "cur_jiao";
pub const FEN: &str = "cur_fen";
pub const ZHENG: &str = "cur_zheng";
const ZERO: &str = "num_0";

/// Every prompt name this module can emit.
pub fn prompt_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = DIGITS.to_vec();
    v.extend([
        LIANG, YAO, SHI, BAI, QIAN, WAN, YI, NEG, YUAN, JIAO, FEN, ZHENG,
    ]);
    v
}

/// Reads an integer (any i64; 万亿 and 亿亿 come out naturally).
pub fn say_int_zh(n: i64) -> Vec<&'static str> {
    let mut out = Vec::new();
    if n < 0 {
        out.push(NEG);
    }
    read_u64(n.unsigned_abs(), true, &mut out);
    out
}

/// Reads an amount of money in fen.
pub fn say_money_zh(fen: i64) -> Vec<&'static str> {
    let mut out = Vec::new();
    if fen == 0 {
        out.extend([ZERO, YUAN]);
        return out;
    }
    if fen < 0 {
        out.push(NEG);
    }
    let abs = fen.unsigned_abs();
    let (yuan, jiao, fen) = (abs / 100, (abs / 10 % 10) as usize, (abs % 10) as usize);
    if yuan > 0 {
        if yuan == 2 {
            out.push(LIANG);
        } else {
            read_u64(yuan, true, &mut out);
        }
        out.push(YUAN);
    }
    match (jiao, fen) {
        (0, 0) => out.push(ZHENG),
        (j, 0) => out.extend([unit_count(j), JIAO]),
        (0, f) => {
            if yuan > 0 {
                out.push(ZERO);
            }
            out.extend([unit_count(f), FEN]);
        }
        (j, f) => out.extend([unit_count(j), JIAO, unit_count(f), FEN]),
    }
    out
}

/// Reads a digit string one digit at a time (幺 for 1); anything but 0-9 is skipped.
pub fn say_digits_zh(digits: &str) -> Vec<&'static str> {
    digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| if d == 1 { YAO } else { DIGITS[d as usize] })
        .collect()
}

/// A single digit counting a measure word (元/角/分): 2 → 两.
fn unit_count(d: usize) -> &'static str {
    if d == 2 {
        LIANG
    } else {
        DIGITS[d]
    }
}

/// `leading`: this is the first thing said, so 1x → 十x.
fn read_u64(n: u64, leading: bool, out: &mut Vec<&'static str>) {
    const YI_N: u64 = 1_0000_0000;
    const WAN_N: u64 = 1_0000;
    if n == 0 {
        out.push(ZERO);
    } else if n >= YI_N {
        read_big(n / YI_N, n % YI_N, YI_N, YI, leading, out);
    } else if n >= WAN_N {
        read_big(n / WAN_N, n % WAN_N, WAN_N, WAN, leading, out);
    } else {
        read_group(n as usize, leading, out);
    }
}

/// `high` counts `unit` (万 or 亿); `rest` < `base` follows it.
fn read_big(
    high: u64,
    rest: u64,
    base: u64,
    unit: &'static str,
    leading: bool,
    out: &mut Vec<&'static str>,
) {
    if high == 2 {
        out.push(LIANG);
    } else {
        read_u64(high, leading, out);
    }
    out.push(unit);
    if rest == 0 {
        return;
    }
    // A gap of at least one zero digit right after the unit is said as 零.
    if rest < base / 10 {
        out.push(ZERO);
    }
    read_u64(rest, false, out);
}

/// 1..=9999 without 万: 千/百/十/units with 零 for inner gaps.
fn read_group(n: usize, leading: bool, out: &mut Vec<&'static str>) {
    let digits = [n / 1000, n / 100 % 10, n / 10 % 10, n % 10];
    let units = [Some(QIAN), Some(BAI), Some(SHI), None];
    let first = digits.iter().position(|&d| d != 0).unwrap_or(3);
    let mut gap = false;
    for i in first..4 {
        let d = digits[i];
        if d == 0 {
            gap = true;
            continue;
        }
        if gap {
            out.push(ZERO);
            gap = false;
        }
        match (i, d) {
            // 十 at the very start of the number: 10 → 十, 15 → 十五.
            (2, 1) if leading && i == first => {}
            (0 | 1, 2) => out.push(LIANG),
            _ => out.push(DIGITS[d]),
        }
        if let Some(u) = units[i] {
            out.push(u);
        }
    }
}
