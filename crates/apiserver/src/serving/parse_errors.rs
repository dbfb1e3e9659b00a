//! Status bodies for the answers hyper gives on its own.
//!
//! hyper answers a request head it cannot parse before any service sees the request: 400
//! (malformed), 414 (URI too long) or 431 (head too large), with an empty body, and then closes
//! the connection. It has no hook to change that answer. Go's net/http (kube-apiserver's server)
//! gives a short plain-text body there; clients of a Kubernetes API read a `Status`, and kubectl
//! prints its message. [`StatusBodies`] sits between hyper and the socket and swaps exactly
//! those answers for the same status with a `Status` body.
//!
//! It recognises them by shape: a write that is a whole HTTP/1.1 response head with one of
//! those three codes, `content-length: 0`, and no header but `date` and `connection`. pernode's
//! own handlers never answer those codes without a `Status` body (and a content type), so
//! nothing else matches. After a protocol switch (101) the connection carries the upgraded
//! protocol's bytes, which pass untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// `io` with hyper's automatic error answers given `Status` bodies.
pub(crate) struct StatusBodies<IO> {
    io: IO,
    /// The answer being written instead of hyper's, and the length of hyper's write it stands
    /// for (reported once the whole replacement is written).
    replacing: Option<(Bytes, usize)>,
    /// The connection switched protocols: nothing more is HTTP/1.
    upgraded: bool,
}

impl<IO> StatusBodies<IO> {
    pub(crate) fn new(io: IO) -> StatusBodies<IO> {
        StatusBodies {
            io,
            replacing: None,
            upgraded: false,
        }
    }

    /// Looks at the start of a write: a protocol switch, or one of hyper's own answers to
    /// replace.
    fn inspect(&mut self, write: &[u8]) {
        if self.replacing.is_some() || self.upgraded {
            return;
        }
        match classify(write) {
            Head::Upgrade => self.upgraded = true,
            Head::Automatic(code) => self.replacing = Some((replacement(code), write.len())),
            Head::Other => {}
        }
    }
}

/// What a write is.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// A `101 Switching Protocols` head.
    Upgrade,
    /// A head hyper writes by itself for a request it could not parse.
    Automatic(u16),
    Other,
}

fn classify(write: &[u8]) -> Head {
    let Some(rest) = write.strip_prefix(b"HTTP/1.1 ") else {
        return Head::Other;
    };
    let code = match rest.get(..4) {
        Some(b"101 ") => return Head::Upgrade,
        Some(b"400 ") => 400,
        Some(b"414 ") => 414,
        Some(b"431 ") => 431,
        _ => return Head::Other,
    };
    // The whole write is one head: a status line, header lines, an empty line.
    let Some(head) = write.strip_suffix(b"\r\n\r\n") else {
        return Head::Other;
    };
    let mut lines = head.split(|&b| b == b'\n').skip(1);
    let mut empty_body = false;
    for line in &mut lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Head::Other;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            if value != b"0" {
                return Head::Other;
            }
            empty_body = true;
        } else if !name.eq_ignore_ascii_case(b"date") && !name.eq_ignore_ascii_case(b"connection") {
            return Head::Other;
        }
    }
    if empty_body {
        Head::Automatic(code)
    } else {
        Head::Other
    }
}

/// The answer for `code`: its status line, a `Status` body, and a close.
fn replacement(code: u16) -> Bytes {
    let (phrase, reason, message) = match code {
        414 => ("URI Too Long", "", "the request URI is too long"),
        431 => (
            "Request Header Fields Too Large",
            "",
            "the request's header fields are too large",
        ),
        _ => (
            "Bad Request",
            "BadRequest",
            "the request is not well-formed HTTP",
        ),
    };
    let body = ApiError::from_parts(code, reason, message.to_string())
        .to_status()
        .to_string();
    Bytes::from(format!(
        "HTTP/1.1 {code} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl<IO: AsyncWrite + Unpin> StatusBodies<IO> {
    /// Writes the rest of the replacement; then reports hyper's write as done.
    fn poll_replacing(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        let (rest, stands_for) = self.replacing.as_mut()?;
        while rest.has_remaining() {
            match Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => rest.advance(n),
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(Poll::Pending),
            }
        }
        let written = *stands_for;
        self.replacing = None;
        Some(Poll::Ready(Ok(written)))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for StatusBodies<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.inspect(buf);
        if let Some(poll) = this.poll_replacing(cx) {
            return poll;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper queues a head as one buffer; an automatic answer has nothing after it.
        let mut written = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(first), None) = (written.next(), written.next()) {
            this.inspect(first);
        } else if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            // A head with a body is never replaced, but may switch protocols.
            if classify_start(first) == Head::Upgrade {
                this.upgraded = true;
            }
        }
        if let Some(poll) = this.poll_replacing(cx) {
            return poll;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(poll) = this.poll_replacing(cx) {
            ready!(poll)?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(poll) = this.poll_replacing(cx) {
            ready!(poll)?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// [`classify`] of a write that may continue past its head: only a protocol switch matters.
fn classify_start(write: &[u8]) -> Head {
    if write.starts_with(b"HTTP/1.1 101 ") {
        Head::Upgrade
    } else {
        Head::Other
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for StatusBodies<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_own_answers_are_recognised() {
        let date = "date: Mon, 07 Dec 2026 10:00:00 GMT\r\n";
        for (code, phrase) in [
            (400, "Bad Request"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
        ] {
            let head = format!("HTTP/1.1 {code} {phrase}\r\ncontent-length: 0\r\n{date}\r\n");
            assert_eq!(classify(head.as_bytes()), Head::Automatic(code), "{head}");
            let closing = format!(
                "HTTP/1.1 {code} {phrase}\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n"
            );
            assert_eq!(classify(closing.as_bytes()), Head::Automatic(code));
        }
        for other in [
            // pernode's own 400s carry a Status.
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n{date}\r\n"
            ),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 112\r\n{date}\r\n"),
            // Other codes, a head followed by more, a body that merely looks like a head.
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n{date}\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n{date}\r\n{{}}"),
            "log line: HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_string(),
        ] {
            assert_eq!(classify(other.as_bytes()), Head::Other, "{other}");
        }
        assert_eq!(
            classify(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"),
            Head::Upgrade
        );
    }

    #[test]
    fn the_replacement_is_a_status_with_the_same_code() {
        let answer = replacement(431);
        let text = std::str::from_utf8(&answer).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let status: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 431);
        assert_eq!(status["status"], "Failure");
    }
}
