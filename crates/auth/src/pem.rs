//! PEM blocks read as Go's `encoding/pem.Decode` reads them, because upstream's checks of
//! CertificateSigningRequests are worded in its terms: the first block of the text (anything
//! before it skipped, a malformed one passed over for the next), its type, its headers and its
//! base64 body. `CERTIFICATE REQUEST` and `CERTIFICATE` blocks are what the API checks
//! ([`crate::csr`]).

use base64::Engine;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What follows `-----BEGIN ` (`CERTIFICATE REQUEST`).
    pub kind: String,
    /// `Key: value` header lines before the body (`Proc-Type: ...`); usually none.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub bytes: Vec<u8>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

/// The first PEM block of `data` and what follows it, or `None` when there is none, as Go's
/// `pem.Decode`.
pub fn decode(data: &[u8]) -> Option<(Block, &[u8])> {
    let mut rest = data;
    loop {
        // A block starts at the beginning of the text or of a line.
        rest = if rest.starts_with(BEGIN) {
            &rest[BEGIN.len()..]
        } else {
            let at = find(rest, b"\n-----BEGIN ")?;
            &rest[at + 1 + BEGIN.len()..]
        };
        let (type_line, after_type) = line(rest);
        rest = after_type;
        let Some(kind) = type_line.strip_suffix(DASHES) else {
            continue;
        };
        let (headers, body) = headers(rest);
        // Without headers the END line may follow at once (an empty body).
        let (body_end, trailer_at) = if headers.is_empty() && body.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            match find(body, END) {
                Some(at) => (at, at + END.len()),
                None => continue,
            }
        };
        // `-----END <type>-----`, then nothing but whitespace on that line.
        let Some(trailer) = body.get(trailer_at..) else {
            continue;
        };
        let Some(after_end) = trailer
            .strip_prefix(kind)
            .and_then(|t| t.strip_prefix(DASHES))
        else {
            continue;
        };
        let (end_line_rest, following) = line(after_end);
        if !end_line_rest.is_empty() {
            continue;
        }
        let encoded: Vec<u8> = body[..body_end]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&encoded) else {
            continue;
        };
        let block = Block {
            kind: String::from_utf8_lossy(kind).into_owned(),
            headers,
            bytes,
        };
        return Some((block, following));
    }
}

/// The header lines at the start of `rest` (each with a colon), and what follows them.
fn headers(mut rest: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut headers = Vec::new();
    while !rest.is_empty() {
        let (text, next) = line(rest);
        let Some(colon) = text.iter().position(|b| *b == b':') else {
            break;
        };
        let trim = |s: &[u8]| String::from_utf8_lossy(s).trim().to_string();
        headers.push((trim(&text[..colon]), trim(&text[colon + 1..])));
        rest = next;
    }
    (headers, rest)
}

/// Go's `getLine`: the line (without `\r\n` and trailing blanks) and what follows it.
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    let (mut text, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &data[data.len()..]),
    };
    if let Some(without_cr) = text.strip_suffix(b"\r") {
        text = without_cr;
    }
    while let Some((last, init)) = text.split_last() {
        if *last != b' ' && *last != b'\t' {
            break;
        }
        text = init;
    }
    (text, rest)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `pem.EncodeToMemory` of a block without headers: 64 base64 characters a line.
pub fn encode(kind: &str, bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {kind}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_decode_as_go_decodes_them() {
        let text = encode("CERTIFICATE REQUEST", b"hello world");
        let (block, rest) = decode(text.as_bytes()).expect("a block");
        assert_eq!(block.kind, "CERTIFICATE REQUEST");
        assert_eq!(block.bytes, b"hello world");
        assert!(block.headers.is_empty());
        assert!(rest.is_empty());
        // Text before the block is skipped; what follows is left.
        let padded = format!("junk\n{text}more");
        let (block, rest) = decode(padded.as_bytes()).expect("a block");
        assert_eq!(block.bytes, b"hello world");
        assert_eq!(rest, b"more");
        // CRLF line ends, trailing blanks and headers.
        let crlf =
            "-----BEGIN X-----  \r\nProc-Type: 4,ENCRYPTED\r\n\r\naGk=\r\n-----END X-----\r\n";
        let (block, _) = decode(crlf.as_bytes()).expect("a block");
        assert_eq!(block.headers, [("Proc-Type".into(), "4,ENCRYPTED".into())]);
        assert_eq!(block.bytes, b"hi");
        // An empty body.
        let (block, _) = decode(b"-----BEGIN E-----\n-----END E-----\n").expect("a block");
        assert!(block.bytes.is_empty());
    }

    #[test]
    fn malformed_blocks_are_passed_over() {
        assert_eq!(decode(b"no pem at all"), None);
        assert_eq!(decode(b""), None);
        // A mismatched END, bad base64, a missing END: no block.
        assert_eq!(decode(b"-----BEGIN A-----\naGk=\n-----END B-----\n"), None);
        assert_eq!(decode(b"-----BEGIN A-----\n!!!!\n-----END A-----\n"), None);
        assert_eq!(decode(b"-----BEGIN A-----\naGk=\n"), None);
        // Not at the start of a line: not a block.
        assert_eq!(decode(b"x-----BEGIN A-----\naGk=\n-----END A-----\n"), None);
        // A bad block followed by a good one: the good one.
        let two = format!(
            "-----BEGIN A-----\n!!\n-----END A-----\n{}",
            encode("B", b"ok")
        );
        let (block, _) = decode(two.as_bytes()).expect("the second block");
        assert_eq!(
            (block.kind.as_str(), block.bytes.as_slice()),
            ("B", &b"ok"[..])
        );
    }
}
