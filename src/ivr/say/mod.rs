//! Saying values: numbers, money (fen) and digit strings as prompt-name sequences
//! that the player concatenates. Each language's rules are documented in its file.

pub mod en;
pub mod zh;

pub use en::{say_digits_en, say_int_en, say_money_en};
pub use zh::{say_digits_zh, say_int_zh, say_money_zh};

/// The languages with number-reading rules; anything else is read as Mandarin,
/// the hotline's default.
fn is_en(lang: &str) -> bool {
    lang == "en"
}

pub fn say_int(lang: &str, n: i64) -> Vec<&'static str> {
    if is_en(lang) {
        say_int_en(n)
    } else {
        say_int_zh(n)
    }
}

pub fn say_money(lang: &str, fen: i64) -> Vec<&'static str> {
    if is_en(lang) {
        say_money_en(fen)
    } else {
        say_money_zh(fen)
    }
}

pub fn say_digits(lang: &str, digits: &str) -> Vec<&'static str> {
    if is_en(lang) {
        say_digits_en(digits)
    } else {
        say_digits_zh(digits)
    }
}

/// Every prompt name the say functions can emit in `lang`.
pub fn prompt_names(lang: &str) -> Vec<&'static str> {
    if is_en(lang) {
        en::prompt_names()
    } else {
        zh::prompt_names()
    }
}

#[cfg(test)]
mod tests;
