//! Lower-case hex, for hashes and sealed secrets at rest and in digest headers, and the one
//! percent-decoder (URI user parts, header parameters).

pub(crate) fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    // from_str_radix alone would also take a sign: "+a" as 0x0a.
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Undoes %XX escapes (RFC 3986); a cut-off or malformed escape is kept as it is, and bytes
/// that are not UTF-8 after decoding become U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let digit = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (digit(b[i + 1]), digit(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_escapes_decode_and_malformed_ones_stay() {
        use super::percent_decode as d;
        assert_eq!(d("138%0D%0Ax"), "138\r\nx");
        assert_eq!(d("a%2"), "a%2");
        assert_eq!(d("%+f%zz%41"), "%+f%zzA");
        assert_eq!(d("%E4%B8%AD"), "\u{4e2d}");
    }

    #[test]
    fn round_trip_and_bad_input() {
        assert_eq!(super::encode(&[0, 0xab, 0x7f]), "00ab7f");
        assert_eq!(super::decode("00ab7f"), Some(vec![0, 0xab, 0x7f]));
        assert_eq!(super::decode("abc"), None);
        assert_eq!(super::decode("zz"), None);
        assert_eq!(super::decode("+a+b"), None);
    }
}
