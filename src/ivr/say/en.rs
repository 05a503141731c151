//! English number and money reading as sequences of unit prompts.
//!
//! - Integers in American style without "and": 128 → one hundred twenty-eight
//!   (`n_100`-style prompts do not exist: "hundred" is its own prompt so any
//!   count can precede it), 1_000_000 → one million.
//! - Money: "<yuan> yuan and <fen> fen" where fen is the whole sub-yuan part (0-99):
//!   128.50 → one hundred twenty-eight yuan and fifty fen; 128.00 → one hundred
//!   twenty-eight yuan; 0.80 → eighty fen; 0 → zero yuan. "yuan" and "fen" take no
//!   plural. Chosen over "128 yuan 50" because a bare trailing number is ambiguous
//!   on a phone line (0.05 would be "five").
//! - Negative numbers and amounts: leading "minus".
//! - Digit strings one by one, 0 as "zero".

pub const UNDER_20: [&str; 20] = [
    "n_0", "n_1", "n_2", "n_3", "n_4", "n_5", "n_6", "n_7", "n_8", "n_9", "n_10", "n_11", "n_12",
    "n_13", "n_14", "n_15", "n_16", "n_17", "n_18", "n_19",
];
/// Index = tens digit (2..=9).
pub const TENS: [&str; 10] = [
    "", "", "n_20", "n_30", "n_40", "n_50", "n_60", "n_70", "n_80", "n_90",
];
pub const HUNDRED: &str = "n_hundred";
/// Scale words, index = power of 1000.
pub const SCALES: [&str; 7] = [
    "",
    "n_thousand",
    "n_million",
    "n_billion",
    "n_trillion",
    "n_quadrillion",
    "n_quintillion",
];
pub const MINUS: &str = "n_minus";
pub const YUAN: &str = "cur_yuan";
pub const FEN: &str = "cur_fen";
pub const AND: &str = "cur_and";

/// Every prompt name this module can emit.
pub fn prompt_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = UNDER_20.to_vec();
    v.extend(TENS.iter().filter(|t| !t.is_empty()));
    v.extend(SCALES.iter().filter(|t| !t.is_empty()));
    v.extend([HUNDRED, MINUS, YUAN, FEN, AND]);
    v
}

pub fn say_int_en(n: i64) -> Vec<&'static str> {
    let mut out = Vec::new();
    if n < 0 {
        out.push(MINUS);
    }
    read_u64(n.unsigned_abs(), &mut out);
    out
}

pub fn say_money_en(fen: i64) -> Vec<&'static str> {
    let mut out = Vec::new();
    if fen < 0 {
        out.push(MINUS);
    }
    let abs = fen.unsigned_abs();
    let (yuan, sub) = (abs / 100, abs % 100);
    if yuan > 0 || sub == 0 {
        read_u64(yuan, &mut out);
        out.push(YUAN);
    }
    if sub > 0 {
        if yuan > 0 {
            out.push(AND);
        }
        read_u64(sub, &mut out);
        out.push(FEN);
    }
    out
}

pub fn say_digits_en(digits: &str) -> Vec<&'static str> {
    digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| UNDER_20[d as usize])
        .collect()
}

fn read_u64(n: u64, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push(UNDER_20[0]);
        return;
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push((rest % 1000) as usize);
        rest /= 1000;
    }
    for (scale, &g) in groups.iter().enumerate().rev() {
        if g == 0 {
            continue;
        }
        read_below_1000(g, out);
        if scale > 0 {
            out.push(SCALES[scale]);
        }
    }
}

fn read_below_1000(n: usize, out: &mut Vec<&'static str>) {
    if n >= 100 {
        out.extend([UNDER_20[n / 100], HUNDRED]);
    }
    let r = n % 100;
    if r == 0 {
        return;
    }
    if r < 20 {
        out.push(UNDER_20[r]);
    } else {
        out.push(TENS[r / 10]);
        if r % 10 != 0 {
            out.push(UNDER_20[r % 10]);
        }
    }
}
