//! A customer list (CSV, the number in the first column, a header line allowed) to
//! normalised numbers, with every line that could not be used named.

use std::collections::HashSet;

use super::number::normalise;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// (line number, normalised number), first occurrence only.
    pub numbers: Vec<(usize, String)>,
    /// Lines repeating a number already in the file (after normalising).
    pub duplicates: usize,
    /// (line number, reason).
    pub invalid: Vec<(usize, String)>,
}

pub fn parse_csv(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let first = line
            .trim_start_matches('\u{feff}')
            .split([',', ';', '\t'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if first.is_empty() && line.trim().is_empty() {
            continue;
        }
        match normalise(first) {
            Ok(num) => {
                if seen.insert(num.clone()) {
                    p.numbers.push((n, num));
                } else {
                    p.duplicates += 1;
                }
            }
            // A header names the column: letters, no digits.
            Err(_) if n == 1 && !first.chars().any(|c| c.is_ascii_digit()) => {}
            Err(why) => p.invalid.push((n, why)),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_csv_header_duplicates_and_bad_lines() {
        let p = parse_csv(
            "\u{feff}phone,name\n138 0013 8000,张三\n+8613800138000,dup\n\n12345,bad\n010-66558888\n\"139 1234 5678\",x\n",
        );
        assert_eq!(
            p.numbers,
            vec![
                (2, "13800138000".to_string()),
                (6, "01066558888".to_string()),
                (7, "13912345678".to_string())
            ]
        );
        assert_eq!(p.duplicates, 1);
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].0, 5);
        // Without a header the first line is data and is checked like the others.
        let p = parse_csv("abc\n13800138000\n");
        assert_eq!(p.invalid, vec![]);
        let p = parse_csv("13800138000\nabc\n");
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].0, 2);
    }
}
