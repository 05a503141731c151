//! Masking numbers in what callers said, before it is kept anywhere (the reason, the
//! transcript on the agent's screen, the decision to keep the audio).
//!
//! Callers read out card numbers, phone numbers and PINs, and recognisers write them as
//! ASCII digits, as Chinese numerals (一三八…, 幺 and 两 included, 壹贰叁… on forms) or as
//! English words ("one three eight", "oh", "double"). All count as digits. Digits separated
//! only by spaces, commas or hyphens are one number ("138 0013 8000" said in groups); a
//! number of more than three digits becomes one `*` per digit, shorter ones stay as said.
//! Place-value numerals (一百三十八) are amounts, not digit strings, and stay.

/// A number longer than this many digits is masked.
const KEEP_DIGITS: usize = 3;

enum Token {
    /// How many digits it stands for.
    Digit(usize),
    /// "double" / "triple": the next digit counts that many times.
    Repeat(usize),
    Separator,
    Other,
}

/// Callers read out card numbers and PINs; what is kept holds at most three digits in a row.
pub fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The number being read, as written, and how many digits it holds so far.
    let mut run = String::new();
    let mut digits = 0usize;
    let mut repeat = 1usize;
    let flush = |run: &mut String, digits: &mut usize, out: &mut String| {
        if *digits > KEEP_DIGITS {
            out.extend(std::iter::repeat_n('*', *digits));
        } else {
            out.push_str(run);
        }
        run.clear();
        *digits = 0;
    };
    let mut rest = text;
    while !rest.is_empty() {
        let (token, len) = token(rest);
        let piece = &rest[..len];
        rest = &rest[len..];
        match token {
            Token::Digit(n) => {
                run.push_str(piece);
                digits += n * repeat;
                repeat = 1;
            }
            Token::Repeat(n) => {
                run.push_str(piece);
                repeat = n;
            }
            // Spacing inside or right after a number goes with it.
            Token::Separator if !run.is_empty() => run.push_str(piece),
            Token::Separator | Token::Other => {
                flush(&mut run, &mut digits, &mut out);
                repeat = 1;
                out.push_str(piece);
            }
        }
    }
    flush(&mut run, &mut digits, &mut out);
    out
}

/// The token `s` starts with and its length in bytes.
fn token(s: &str) -> (Token, usize) {
    let c = s.chars().next().unwrap_or(' ');
    if c.is_ascii_alphabetic() {
        let len = s
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(s.len());
        let word = s[..len].to_ascii_lowercase();
        let t = match word.as_str() {
            "zero" | "oh" | "one" | "two" | "three" | "four" | "five" | "six" | "seven"
            | "eight" | "nine" => Token::Digit(1),
            "double" => Token::Repeat(2),
            "triple" => Token::Repeat(3),
            _ => Token::Other,
        };
        return (t, len);
    }
    let t = if c.is_ascii_digit()
        || ('０'..='９').contains(&c)
        || "零〇一二三四五六七八九幺两拐壹贰叁肆伍陆柒捌玖".contains(c)
    {
        Token::Digit(1)
    } else if matches!(c, ' ' | ',' | '，' | '、' | '-') {
        Token::Separator
    } else {
        Token::Other
    };
    (t, c.len_utf8())
}

#[cfg(test)]
mod tests;
