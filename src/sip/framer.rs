//! Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3).

use super::wire::parse_content_length;

/// Header sections beyond this mean a broken or hostile peer.
const MAX_HEADER: usize = 64 * 1024;
/// Bodies beyond this are never legitimate for a voice UAS.
const MAX_BODY: usize = 1024 * 1024;

/// Why a stream can no longer be framed; the shell should close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("header section larger than 64 KiB")]
    HeaderTooLarge,
    #[error("Content-Length is not a non-negative integer")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    DuplicateContentLength,
    #[error("Content-Length too large")]
    BodyTooLarge,
}

/// Accumulates stream bytes and yields whole messages; CRLF keep-alives are skipped.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    failed: Option<FramingError>,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// `None` means "need more bytes". After an `Err` the stream is dead: every later
    /// call returns the same error.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, FramingError>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return None;
        }
        let Some(head_end) = find_head_end(&self.buf) else {
            if self.buf.len() > MAX_HEADER {
                return Some(Err(self.fail(FramingError::HeaderTooLarge)));
            }
            return None;
        };
        if head_end > MAX_HEADER {
            return Some(Err(self.fail(FramingError::HeaderTooLarge)));
        }
        let body_len = match content_length(&self.buf[..head_end]) {
            Ok(n) => n,
            Err(e) => return Some(Err(self.fail(e))),
        };
        if body_len > MAX_BODY {
            return Some(Err(self.fail(FramingError::BodyTooLarge)));
        }
        let total = head_end + body_len;
        if self.buf.len() < total {
            return None;
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Some(Ok(msg))
    }

    fn fail(&mut self, e: FramingError) -> FramingError {
        self.buf.clear();
        self.failed = Some(e.clone());
        e
    }
}

/// Offset just past the empty line that ends the header section.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    let mut found: Option<usize> = None;
    for line in text.split('\n') {
        let Some(colon) = line.find(':') else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line[..colon].trim();
        if !(name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")) {
            continue;
        }
        let n = parse_content_length(line[colon + 1..].trim_end_matches('\r'))
            .ok_or(FramingError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FramingError::DuplicateContentLength),
            _ => found = Some(n),
        }
    }
    // RFC 3261 18.3: a stream message without Content-Length has an empty body.
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPT: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn splits_byte_by_byte_and_skips_keepalives() {
        let mut f = StreamFramer::new();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(OPT);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(OPT);
        let mut got = Vec::new();
        for b in stream {
            f.push(&[b]);
            while let Some(m) = f.next_message() {
                got.push(m.unwrap());
            }
        }
        assert_eq!(got, vec![OPT.to_vec(), OPT.to_vec()]);
    }

    #[test]
    fn unrecoverable_framing_is_reported() {
        for (input, err) in [
            (
                &b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n"[..],
                FramingError::BadContentLength,
            ),
            (
                &b"INVITE sip:a@b SIP/2.0\r\nl: 13\r\nContent-Length: 5\r\n\r\n"[..],
                FramingError::DuplicateContentLength,
            ),
            (
                &b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n"[..],
                FramingError::BodyTooLarge,
            ),
        ] {
            let mut f = StreamFramer::new();
            f.push(input);
            assert_eq!(f.next_message(), Some(Err(err.clone())));
            assert_eq!(f.next_message(), Some(Err(err)));
        }
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_HEADER + 10]);
        assert_eq!(f.next_message(), Some(Err(FramingError::HeaderTooLarge)));
    }

    #[test]
    fn waits_for_the_body() {
        let mut f = StreamFramer::new();
        f.push(&OPT[..OPT.len() - 2]);
        assert_eq!(f.next_message(), None);
        f.push(&OPT[OPT.len() - 2..]);
        assert_eq!(f.next_message(), Some(Ok(OPT.to_vec())));
    }
}
