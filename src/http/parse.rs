//! Sans-IO parsing of one request head from the front of a byte buffer, with `httparse`:
//! the limits (head size, header count, declared body size) and the framing decisions
//! (keep-alive, Content-Length / chunked, `Expect: 100-continue`). Does no I/O and imports
//! nothing outside `http` and `limits`.

use std::mem::MaybeUninit;

use super::Method;
use crate::limits::{HEADERS_MAX, HEAD_BYTES_MAX};

/// One header as handlers see it: name as sent, raw value with surrounding whitespace removed.
pub type Header<'b> = (&'b str, &'b [u8]);

/// Room for the headers of one request, filled by [`parse_request`]. Uninitialised, so making
/// one per request costs nothing.
pub type HeaderSlots<'b> = [MaybeUninit<Header<'b>>; HEADERS_MAX];

/// Empty [`HeaderSlots`].
pub fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; HEADERS_MAX]
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no Content-Length, or `Content-Length: 0`).
    None,
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// `Transfer-Encoding: chunked`; see [`super::ChunkedDecoder`].
    Chunked,
}

/// A parsed request head. Borrows the buffer (`'b`) and the header slots (`'h`).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'b, 'h> {
    pub method: Method,
    /// The path before any `?`, as sent.
    pub path: &'b str,
    /// What follows the first `?`, if there is one.
    pub query: Option<&'b str>,
    pub headers: &'h [Header<'b>],
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
    pub body: BodyKind,
    /// HTTP/1.1 `Expect: 100-continue`: the client waits for `100 Continue` before the body.
    pub expect_continue: bool,
    /// Bytes of the head, request line to the blank line included; the body starts here.
    pub head_len: usize,
}

/// The outcome of parsing the front of a buffer.
#[derive(Debug)]
pub enum Parsed<'b, 'h> {
    /// The head is not complete yet; read more.
    Incomplete,
    Complete(RequestHead<'b, 'h>),
}

/// Why a request is refused. Every variant closes the connection after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed request: {what}")]
    Malformed { what: &'static str },
    #[error("request head longer than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("more than {limit} headers")]
    TooManyHeaders { limit: usize },
    #[error("chunked trailers longer than {limit} bytes")]
    TrailersTooLarge { limit: usize },
    #[error("body of {declared} bytes, more than the {limit} allowed")]
    BodyTooLarge { declared: usize, limit: usize },
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
}

impl ParseError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Malformed { .. } => 400,
            ParseError::HeadTooLarge { .. }
            | ParseError::TooManyHeaders { .. }
            | ParseError::TrailersTooLarge { .. } => 431,
            ParseError::BodyTooLarge { .. } => 413,
            ParseError::UnsupportedTransferCoding => 501,
        }
    }
}

/// Parses the request head at the front of `buf`. Bodies declared longer than
/// `body_bytes_max` are refused here, before any of the body is read.
pub fn parse_request<'b, 'h>(
    buf: &'b [u8],
    slots: &'h mut HeaderSlots<'b>,
    body_bytes_max: usize,
) -> Result<Parsed<'b, 'h>, ParseError> {
    let mut raw = [const { MaybeUninit::<httparse::Header<'b>>::uninit() }; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) if n <= HEAD_BYTES_MAX => n,
        Ok(httparse::Status::Partial) if buf.len() < HEAD_BYTES_MAX => {
            return Ok(Parsed::Incomplete)
        }
        Ok(_) => {
            return Err(ParseError::HeadTooLarge {
                limit: HEAD_BYTES_MAX,
            })
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ParseError::TooManyHeaders { limit: HEADERS_MAX })
        }
        Err(e) => return Err(malformed(e)),
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(ParseError::Malformed {
            what: "incomplete request line",
        });
    };
    let n = req.headers.len();
    for (slot, h) in slots.iter_mut().zip(req.headers.iter()) {
        slot.write((h.name, h.value.trim_ascii()));
    }
    // SAFETY: the loop above initialised the first `n` slots (httparse returns at most
    // HEADERS_MAX headers, the length of `slots`), and MaybeUninit<T> has T's layout.
    let headers: &'h [Header<'b>] =
        unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<Header<'b>>(), n) };
    let framing = Framing::from_headers(headers, minor_version, body_bytes_max)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Ok(Parsed::Complete(RequestHead {
        method: Method::from_bytes(method.as_bytes()),
        path,
        query,
        headers,
        minor_version,
        keep_alive: framing.keep_alive,
        body: framing.body,
        expect_continue: framing.expect_continue,
        head_len,
    }))
}

fn malformed(e: httparse::Error) -> ParseError {
    let what = match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid request line (method or path)",
        httparse::Error::Version => "unsupported HTTP version",
        httparse::Error::Status | httparse::Error::TooManyHeaders => "invalid request",
    };
    ParseError::Malformed { what }
}

/// What the headers decide about the connection and the body.
struct Framing {
    keep_alive: bool,
    body: BodyKind,
    expect_continue: bool,
}

/// Transfer-Encoding as seen across all its header lines.
#[derive(Default)]
struct TransferCodings {
    /// Header lines seen, empty ones included: an empty `Transfer-Encoding` is no coding at
    /// all, but it is still a framing header, and a request carrying one is refused.
    lines: usize,
    count: usize,
    last_is_chunked: bool,
}

impl Framing {
    fn from_headers(
        headers: &[Header<'_>],
        minor_version: u8,
        body_bytes_max: usize,
    ) -> Result<Framing, ParseError> {
        let mut length: Option<usize> = None;
        let mut codings = TransferCodings::default();
        let mut close = false;
        let mut expect_continue = false;
        for &(name, value) in headers {
            // Dispatch on length first: most headers are none of these.
            match name.len() {
                14 if name.eq_ignore_ascii_case("content-length") => {
                    let n = parse_content_length(value)?;
                    if length.is_some_and(|prev| prev != n) {
                        return Err(ParseError::Malformed {
                            what: "differing Content-Length headers",
                        });
                    }
                    length = Some(n);
                }
                17 if name.eq_ignore_ascii_case("transfer-encoding") => {
                    codings.add(value);
                }
                10 if name.eq_ignore_ascii_case("connection") => {
                    close |= has_token(value, b"close");
                }
                6 if name.eq_ignore_ascii_case("expect") => {
                    expect_continue = value.eq_ignore_ascii_case(b"100-continue");
                }
                _ => {}
            }
        }
        let body = body_kind(length, &codings, body_bytes_max)?;
        Ok(Framing {
            // HTTP/1.0 always closes, as the original does (no 1.0 keep-alive).
            keep_alive: minor_version == 1 && !close,
            body,
            // A 1.0 client does not wait for 100 Continue (RFC 9110 §10.1.1).
            expect_continue: minor_version == 1 && expect_continue && body != BodyKind::None,
        })
    }
}

impl TransferCodings {
    fn add(&mut self, value: &[u8]) {
        self.lines += 1;
        for coding in value.split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                continue;
            }
            self.count += 1;
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        }
    }
}

/// RFC 9112 §6.1 and §6.3: both framings at once is a smuggling attempt (400); a coding list
/// that does not end in chunked leaves the length unknown (400); other codings before
/// chunked are valid but unsupported (501).
fn body_kind(
    length: Option<usize>,
    codings: &TransferCodings,
    body_bytes_max: usize,
) -> Result<BodyKind, ParseError> {
    if codings.lines > 0 {
        if length.is_some() {
            return Err(ParseError::Malformed {
                what: "both Content-Length and Transfer-Encoding",
            });
        }
        if codings.count == 0 {
            return Err(ParseError::Malformed {
                what: "empty Transfer-Encoding",
            });
        }
        if !codings.last_is_chunked {
            return Err(ParseError::Malformed {
                what: "Transfer-Encoding does not end in chunked",
            });
        }
        if codings.count > 1 {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        return Ok(BodyKind::Chunked);
    }
    match length {
        Some(n) if n > body_bytes_max => Err(ParseError::BodyTooLarge {
            declared: n,
            limit: body_bytes_max,
        }),
        None | Some(0) => Ok(BodyKind::None),
        Some(n) => Ok(BodyKind::Length(n)),
    }
}

/// Decimal digits only (no sign, no list). Values past `usize` saturate, to be refused as too
/// large rather than as malformed.
fn parse_content_length(value: &[u8]) -> Result<usize, ParseError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Malformed {
            what: "Content-Length is not a decimal number",
        });
    }
    Ok(value.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
