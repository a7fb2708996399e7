//! HTTP/1.1 server side, parsed directly with `httparse` on a [`Stream`](crate::tls::Stream):
//! monoio's `TcpStream`, or TLS over it (the handshake is done before the connection starts).
//!
//! One read buffer per connection; every complete request in it is parsed and answered, and
//! the answers go out in one write. Head and body sizes are bounded (431 / 413, then the
//! connection closes), as are idle time and the time a slow client may take to send a request.
//! `Expect: 100-continue`, chunked request bodies, HTTP/1.0 and `Connection: close` are handled
//! here so that handlers only ever see a complete request.
//!
//! Each core accepts on its own [`Listener`] (connection caps, drain on shutdown).
//!
//! Must not import `api`, `replication` or `storage` (`tls` is below it): a handler is anything
//! implementing [`Handler`], and what serves a connection is a [`Service`].

mod admission;
mod chunked;
mod conn;
mod listener;
mod parse;
pub mod probe;
mod response;

pub use admission::{Admission, Admitted, ConnSlot, IdlePool, Refused, Registered, UpgradedGuard};
pub use chunked::{ChunkStatus, ChunkedDecoder};
pub use conn::{
    serve_connection, serve_connection_with_timeouts, serve_pooled_connection, ConnLimits,
    ConnTimeouts, Upgraded,
};
pub use listener::{Listener, ListenerConfig, Open, OpenCount, RefusalLog, Service};
pub use parse::{
    header_slots, parse_request, BodyKind, Header, HeaderSlots, ParseError, Parsed, RequestHead,
};
pub use response::{encode_response, format_http_date, DateCache, HTTP_DATE_LEN};

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The request methods mostdb routes on; anything else is `Other` (405 on known paths).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// A complete request as a handler sees it: the body is fully read (and de-chunked).
pub struct Request<'a> {
    pub method: Method,
    /// The path without the query string, as sent (not percent-decoded).
    pub path: &'a str,
    /// The raw query string after `?`, if any.
    pub query: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
    /// The connection is TLS and its client presented a certificate that verified against
    /// `MOSTDB_TLS_CA` (the peer upgrade needs one under mutual TLS). False on plain TCP.
    pub client_certified: bool,
}

impl<'a> Request<'a> {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The body of a response: a fixed text or bytes built for this answer, or a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    /// Sent as it is made, with `Transfer-Encoding: chunked` (to an HTTP/1.0 client: as it
    /// comes, then the connection closes).
    Stream(Streamed),
}

impl Body {
    /// The bytes of a fixed body (none for a stream).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Static(b) => b,
            Body::Owned(v) => v,
            Body::Stream(_) => b"",
        }
    }
}

/// What a [`BodySource`] did when asked for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// It appended a piece (perhaps empty); ask again.
    More,
    /// It appended the last piece: the body is complete.
    Done,
    /// It cannot go on: what it appended is sent, and the connection closes without ending
    /// the body, so the client sees it cut short.
    Failed,
}

/// A body made while it is sent: the connection asks for the next piece once the previous one
/// is written (so a slow client slows the source down, and at most one piece is buffered).
/// Runs on the connection's core.
pub trait BodySource {
    fn next<'a>(&'a mut self, out: &'a mut Vec<u8>) -> Pin<Box<dyn Future<Output = Piece> + 'a>>;
}

/// A response's streamed body; the connection takes the source out once.
#[derive(Clone)]
pub struct Streamed(Rc<RefCell<Option<Box<dyn BodySource>>>>);

impl Streamed {
    pub fn new(source: impl BodySource + 'static) -> Streamed {
        Streamed(Rc::new(RefCell::new(Some(Box::new(source)))))
    }

    fn take(&self) -> Option<Box<dyn BodySource>> {
        self.0.borrow_mut().take()
    }
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streamed")
    }
}

impl PartialEq for Streamed {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Streamed {}

/// A response before encoding. The connection adds `Server`, `Date`, `Content-Length` and,
/// when it will close, `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `None` sends no Content-Type (as the original does for OPTIONS).
    pub content_type: Option<&'static str>,
    /// The `Allow` header, for 405 and OPTIONS.
    pub allow: Option<&'static str>,
    /// More header lines, each `Name: value\r\n` (empty for nearly every answer).
    pub headers: &'static str,
    pub body: Body,
    /// `Some`: switch the connection to another protocol. The connection answers
    /// `101 Switching Protocols` (the fields above are ignored), then hands the stream and
    /// the bytes buffered after this request back to its caller ([`Upgraded`]). Boxed so that
    /// ordinary responses stay small.
    pub upgrade: Option<Box<Upgrade>>,
}

/// What a `101 Switching Protocols` answer says beyond `Server` and `Date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The protocol switched to: the value of the `Upgrade` header (e.g. `mostdb-peer/2`);
    /// the connection also sends `Connection: Upgrade`.
    pub protocol: &'static str,
    /// More header lines, each `Name: value\r\n` (the protocol's own handshake fields).
    pub headers: Vec<u8>,
}

pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: Some(CONTENT_TYPE_JSON),
            allow: None,
            headers: "",
            body: Body::Owned(body),
            upgrade: None,
        }
    }

    pub fn json_static(status: u16, body: &'static [u8]) -> Response {
        Response {
            status,
            content_type: Some(CONTENT_TYPE_JSON),
            allow: None,
            headers: "",
            body: Body::Static(body),
            upgrade: None,
        }
    }

    pub fn html(status: u16, body: &'static str) -> Response {
        Response {
            status,
            content_type: Some(CONTENT_TYPE_HTML),
            allow: None,
            headers: "",
            body: Body::Static(body.as_bytes()),
            upgrade: None,
        }
    }

    pub fn text(status: u16, body: &'static str) -> Response {
        Response {
            status,
            content_type: Some(CONTENT_TYPE_TEXT),
            allow: None,
            headers: "",
            body: Body::Static(body.as_bytes()),
            upgrade: None,
        }
    }

    /// The same answer with more header lines (each `Name: value\r\n`).
    pub fn with_headers(mut self, lines: &'static str) -> Response {
        self.headers = lines;
        self
    }

    /// A `200` whose body `source` makes while it is sent.
    pub fn streamed(content_type: &'static str, source: impl BodySource + 'static) -> Response {
        Response {
            status: 200,
            content_type: Some(content_type),
            allow: None,
            headers: "",
            body: Body::Stream(Streamed::new(source)),
            upgrade: None,
        }
    }

    /// A `101 Switching Protocols` answer: the connection switches to `upgrade.protocol`.
    pub fn switching(upgrade: Upgrade) -> Response {
        Response {
            status: 101,
            content_type: None,
            allow: None,
            headers: "",
            body: Body::Static(b""),
            upgrade: Some(Box::new(upgrade)),
        }
    }
}

/// What serves requests on a connection. Runs on the connection's core; need not be `Send`.
pub trait Handler {
    fn call<'a>(&'a self, req: Request<'a>) -> impl Future<Output = Response> + 'a;
}

/// The reason phrase of the status codes mostdb sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
