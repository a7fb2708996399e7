//! Encoding responses into a connection's output buffer, and the core-local cache of the
//! `Date` header. No I/O; imports nothing outside `http`.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{reason, Body, Response};

/// Length of an RFC 1123 date such as `Tue, 24 Nov 2026 19:38:16 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// Room for the fixed header lines beyond the body, the date and the type; reserving it once
/// keeps the encoding to at most one reallocation.
const HEAD_RESERVE_BYTES: usize = 160;

/// Appends one response to `out`, exactly as
/// `HTTP/1.1 {status} {reason}\r\nServer: mostdb\r\nDate: {date}\r\n[Content-Type: {ct}\r\n]`
/// `Content-Length: {n}\r\n[Allow: {allow}\r\n][Connection: close\r\n]{headers}\r\n{body}`.
/// The status line says HTTP/1.1 even to a 1.0 client, as the original does. `head_only`
/// (a HEAD request) keeps the Content-Length of the body but leaves the body out. A streamed
/// body gets `Transfer-Encoding: chunked` instead of a length.
pub fn encode_response(
    out: &mut Vec<u8>,
    resp: &Response,
    date: &[u8],
    close: bool,
    head_only: bool,
) {
    encode_head_and_body(out, resp, date, close, head_only, true);
}

/// [`encode_response`], saying for a streamed body whether it is sent chunked (a 1.1 client)
/// or not (a 1.0 client: no length, the connection closes after it). A streamed body itself
/// is not encoded here: the connection sends it.
pub fn encode_head_and_body(
    out: &mut Vec<u8>,
    resp: &Response,
    date: &[u8],
    close: bool,
    head_only: bool,
    chunked: bool,
) {
    let body = resp.body.as_bytes();
    let reason = reason(resp.status);
    let ct_len = resp.content_type.map_or(0, str::len);
    let allow_len = resp.allow.map_or(0, str::len) + resp.headers.len();
    let body_len = if head_only { 0 } else { body.len() };
    out.reserve(HEAD_RESERVE_BYTES + reason.len() + date.len() + ct_len + allow_len + body_len);

    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nServer: mostdb\r\nDate: ");
    out.extend_from_slice(date);
    if let Some(ct) = resp.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ct.as_bytes());
    }
    match (&resp.body, chunked) {
        (Body::Stream(_), true) => out.extend_from_slice(b"\r\nTransfer-Encoding: chunked"),
        // An HTTP/1.0 client: the body ends when the connection does.
        (Body::Stream(_), false) => {}
        _ => {
            out.extend_from_slice(b"\r\nContent-Length: ");
            push_decimal(out, body.len() as u64);
        }
    }
    if let Some(allow) = resp.allow {
        out.extend_from_slice(b"\r\nAllow: ");
        out.extend_from_slice(allow.as_bytes());
    }
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(resp.headers.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends `n` in decimal without allocating.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The `Date` header value, formatted at most once per second. Core-local (not `Sync`): each
/// core keeps its own, so reading it takes no lock.
#[derive(Debug)]
pub struct DateCache {
    /// The second `text` was formatted for; `u64::MAX` before the first use.
    second: Cell<u64>,
    text: Cell<[u8; HTTP_DATE_LEN]>,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    pub fn new() -> Self {
        DateCache {
            second: Cell::new(u64::MAX),
            text: Cell::new([0; HTTP_DATE_LEN]),
        }
    }

    /// The current date, e.g. `Tue, 24 Nov 2026 19:38:16 GMT`. A clock before 1970 reads as 1970.
    pub fn get(&self) -> [u8; HTTP_DATE_LEN] {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.at(now)
    }

    /// The date for `unix_seconds`, reformatting only when the second changed.
    pub fn at(&self, unix_seconds: u64) -> [u8; HTTP_DATE_LEN] {
        if self.second.get() != unix_seconds {
            self.text.set(format_http_date(unix_seconds));
            self.second.set(unix_seconds);
        }
        self.text.get()
    }
}

const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const SECONDS_PER_DAY: u64 = 86_400;
/// Years past 9999 do not fit the four digits of the format; they are shown as 9999.
const YEAR_SHOWN_MAX: u64 = 9999;

/// Formats seconds since 1970 as an RFC 1123 date in GMT (`Thu, 01 Jan 1970 00:00:00 GMT`).
pub fn format_http_date(unix_seconds: u64) -> [u8; HTTP_DATE_LEN] {
    let days = unix_seconds / SECONDS_PER_DAY;
    let secs_of_day = unix_seconds % SECONDS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(WEEKDAYS[(days % 7) as usize]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let year = year.min(YEAR_SHOWN_MAX);
    put2(&mut out[12..14], year / 100);
    put2(&mut out[14..16], year % 100);
    put2(&mut out[17..19], secs_of_day / 3600);
    put2(&mut out[20..22], secs_of_day / 60 % 60);
    put2(&mut out[23..25], secs_of_day % 60);
    out
}

fn put2(dst: &mut [u8], v: u64) {
    dst[0] = b'0' + (v / 10 % 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) in the proleptic Gregorian calendar.
/// Howard Hinnant's `civil_from_days`, for non-negative day counts: it counts in 400-year eras
/// of 146,097 days starting on 0000-03-01, so leap days fall at the end of each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Body, CONTENT_TYPE_JSON};

    fn encode(resp: &Response, close: bool, head_only: bool) -> String {
        let mut out = b"previous".to_vec();
        encode_response(
            &mut out,
            resp,
            b"Tue, 24 Nov 2026 19:38:16 GMT",
            close,
            head_only,
        );
        assert!(
            out.starts_with(b"previous"),
            "appends, keeps what was there"
        );
        String::from_utf8(out[8..].to_vec()).unwrap()
    }

    #[test]
    fn json_ok() {
        let resp = Response::json_static(200, br#"{"code":200,"success":true}"#);
        assert_eq!(
            encode(&resp, false, false),
            "HTTP/1.1 200 OK\r\nServer: mostdb\r\nDate: Tue, 24 Nov 2026 19:38:16 GMT\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"code\":200,\"success\":true}"
        );
    }

    #[test]
    fn allow_close_and_no_content_type() {
        let resp = Response {
            status: 200,
            content_type: None,
            allow: Some("POST, OPTIONS"),
            headers: "",
            body: Body::Static(b""),
            upgrade: None,
        };
        assert_eq!(
            encode(&resp, true, false),
            "HTTP/1.1 200 OK\r\nServer: mostdb\r\nDate: Tue, 24 Nov 2026 19:38:16 GMT\r\nContent-Length: 0\r\nAllow: POST, OPTIONS\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn head_keeps_length_drops_body() {
        let resp = Response {
            status: 405,
            content_type: Some("text/plain; charset=utf-8"),
            allow: Some("POST, OPTIONS"),
            headers: "",
            body: Body::Owned(b"Method Not Allowed".to_vec()),
            upgrade: None,
        };
        assert_eq!(
            encode(&resp, false, true),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: mostdb\r\nDate: Tue, 24 Nov 2026 19:38:16 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\nAllow: POST, OPTIONS\r\n\r\n"
        );
    }

    #[test]
    fn large_length_and_unusual_status() {
        let body = vec![b'x'; 1_048_639];
        let resp = Response::json(599, body);
        let text = encode(&resp, false, false);
        assert!(text.starts_with("HTTP/1.1 599 Unknown\r\n"));
        assert!(text
            .contains("\r\nContent-Type: application/json\r\nContent-Length: 1048639\r\n\r\nxxx"));
        assert_eq!(resp.content_type, Some(CONTENT_TYPE_JSON));
    }

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    fn date(secs: u64) -> String {
        String::from_utf8(format_http_date(secs).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        // Values checked with `date -u -d @N '+%a, %d %b %Y %H:%M:%S GMT'`.
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(1_795_549_096), "Tue, 24 Nov 2026 19:38:16 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT"); // 400-year leap
        assert_eq!(date(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(date(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(date(1_704_067_199), "Sun, 31 Dec 2023 23:59:59 GMT");
        assert_eq!(date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT"); // 2100: no leap day
        assert_eq!(date(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(date(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
        assert_eq!(date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_day_for_five_centuries_is_consecutive() {
        // Walk day by day from 1970 to 2470 and check each date follows the previous one:
        // catches any month-length or leap-year slip that the fixed samples miss.
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for d in 1..(500 * 366) {
            let (y, m, day) = civil_from_days(d);
            let (py, pm, pd) = prev;
            let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
            let month_len = match pm {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if pd < month_len {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, day), want, "day {d}");
            prev = (y, m, day);
        }
    }

    #[test]
    fn cache_reformats_only_when_the_second_changes() {
        let cache = DateCache::new();
        assert_eq!(&cache.at(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&cache.at(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&cache.at(61), b"Thu, 01 Jan 1970 00:01:01 GMT");
        let now = cache.get();
        assert!(now.ends_with(b" GMT"));
        assert!(now[12..14] >= b"20"[..], "year {:?}", &now[12..16]);
    }
}
