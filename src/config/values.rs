//! Parsers of single setting values: each takes the text (already trimmed) and returns the
//! value or what was expected instead, for `ConfigError`. Imports only `crate::limits` and std.

use super::{LogFormat, LogLevel, SyncMode, WriteMode};
use crate::limits;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

pub(super) fn store_root(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("a directory path".to_string());
    }
    Ok(PathBuf::from(text))
}

/// A file path, or none when empty.
pub(super) fn file_path(text: &str) -> Result<Option<PathBuf>, String> {
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// An IP address; an IPv6 one may be written in brackets, as in URLs.
pub(super) fn host(text: &str) -> Result<IpAddr, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map_err(|_| "an IP address to listen on, such as 0.0.0.0, 127.0.0.1 or ::".to_string())
}

/// The port to listen on; 0 asks for any free one (a URL's port is never 0: `parse_port`).
pub(super) fn port(text: &str) -> Result<u16, String> {
    let any = text == "0";
    let port = if any { Some(0) } else { parse_port(text) };
    port.ok_or_else(|| "a port number 1-65535, or 0 for any free port".to_string())
}

/// The Redis port: empty for none.
pub(super) fn optional_port(text: &str) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_port(text)
        .map(Some)
        .ok_or_else(|| "a port number 1-65535, or empty for none".to_string())
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

pub(super) fn threads(text: &str) -> Result<usize, String> {
    let expected = || format!("a number of threads from 1 to {}", limits::THREADS_MAX);
    let threads = text.parse::<usize>().map_err(|_| expected())?;
    if !(1..=limits::THREADS_MAX).contains(&threads) {
        return Err(expected());
    }
    Ok(threads)
}

pub(super) fn log_level(text: &str) -> Result<LogLevel, String> {
    match text.to_ascii_uppercase().as_str() {
        "TRACE" => Ok(LogLevel::Trace),
        "DEBUG" => Ok(LogLevel::Debug),
        "INFO" => Ok(LogLevel::Info),
        "WARN" | "WARNING" => Ok(LogLevel::Warn),
        // The original has a FATAL level; we log nothing more severe than errors.
        "ERROR" | "FATAL" => Ok(LogLevel::Error),
        _ => Err("one of TRACE, DEBUG, INFO, WARN, ERROR (any case)".to_string()),
    }
}

pub(super) fn sync_mode(text: &str) -> Result<SyncMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "os" => Ok(SyncMode::Os),
        "always" => Ok(SyncMode::Always),
        _ => Err("os or always".to_string()),
    }
}

pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("true or false (or 1 or 0)".to_string()),
    }
}

/// Headers the HTTP layer itself interprets: carrying the key in one would break framing.
const HEADERS_RESERVED: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
];

/// A header name: an RFC 9110 token, and not one of the headers that frame a request.
pub(super) fn header_name(text: &str) -> Result<String, String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let expected = || {
        "a header name (letters, digits and !#$%&'*+-.^_`|~), not one of Host, \
                       Content-Length, Transfer-Encoding, Connection, Upgrade, Expect"
            .to_string()
    };
    if text.is_empty() || !text.bytes().all(is_tchar) {
        return Err(expected());
    }
    if HEADERS_RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(text))
    {
        return Err(expected());
    }
    Ok(text.to_string())
}

/// A header value a client can send: visible ASCII and inner spaces (the ends are trimmed
/// by every HTTP parser, so they are trimmed here too, before this is called).
pub(super) fn api_key_value(text: &str) -> Result<String, String> {
    let allowed = |b: u8| b == b' ' || b.is_ascii_graphic();
    if text.is_empty() || !text.bytes().all(allowed) {
        return Err("a non-empty key of visible ASCII characters".to_string());
    }
    Ok(text.to_string())
}

pub(super) fn server_url(text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match peer_url_problem(text) {
        None => Ok(Some(text.to_string())),
        Some(problem) => Err(format!("{URL_EXPECTED} ({problem})")),
    }
}

const URL_EXPECTED: &str = "a URL like http://host:port";

/// The list split on `;` (the original's separator) or `,`, items trimmed, empty ones
/// dropped, each kept as given. On a bad item: its number (from 1), the item, the problem.
pub(super) fn url_list(text: &str) -> Result<Vec<String>, (usize, String, String)> {
    let items: Vec<&str> = text
        .split([';', ','])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    for (index, item) in items.iter().enumerate() {
        if let Some(problem) = peer_url_problem(item) {
            return Err((
                index + 1,
                item.to_string(),
                format!("is not {URL_EXPECTED} ({problem})"),
            ));
        }
        // A node listed twice would count twice toward a majority.
        let key = url_identity(item);
        if let Some(first) = items[..index]
            .iter()
            .position(|other| url_identity(other) == key)
        {
            return Err((
                index + 1,
                item.to_string(),
                format!("repeats item {}", first + 1),
            ));
        }
    }
    Ok(items.into_iter().map(str::to_string).collect())
}

/// What makes two URLs name the same node: case of scheme and host and a trailing `/` do not.
fn url_identity(url: &str) -> String {
    url.strip_suffix('/').unwrap_or(url).to_ascii_lowercase()
}

/// Why `url` is not `http://host:port[/]`, or `None` when it is.
fn peer_url_problem(url: &str) -> Option<&'static str> {
    const SCHEME: &str = "http://";
    let Some(rest) = strip_prefix_ignore_case(url, SCHEME) else {
        return Some(if url.to_ascii_lowercase().starts_with("https://") {
            "write http://; with MOSTDB_TLS_CERT set, peers are dialled over TLS"
        } else {
            "must start with http://"
        });
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Some("no path after host:port");
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Some("unclosed [ in the host");
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Some("bad IPv6 address");
        }
        match after.strip_prefix(':') {
            Some(port) => (inside, port),
            None => return Some("missing :port"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, port),
            Some(_) => return Some("an IPv6 host must be in brackets"),
            None => return Some("missing :port"),
        }
    };
    if !host.contains(':') && !is_host_name(host) {
        return Some("bad host");
    }
    if parse_port(port).is_none() {
        return Some("bad port, expected 1-65535");
    }
    None
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A DNS name or an IPv4 address; `_` is allowed for container names such as `mostdb_1`.
fn is_host_name(host: &str) -> bool {
    const HOST_NAME_BYTES_MAX: usize = 253;
    const LABEL_BYTES_MAX: usize = 63;
    let label_ok = |label: &str| {
        (1..=LABEL_BYTES_MAX).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    host.len() <= HOST_NAME_BYTES_MAX && host.split('.').all(label_ok)
}

/// A route prefix, normalised to `/a/b` (no trailing or repeated `/`; `/` alone becomes `""`).
pub(super) fn context_path(text: &str) -> Result<String, String> {
    // RFC 3986 path characters, minus `%`: the router compares raw bytes, undecoded.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(c);
    let expected = || {
        "a path starting with / such as /mostdb, of letters, digits and -._~!$&'()*+,;=:@ \
         (no spaces, ? or #), without . or .. segments"
            .to_string()
    };
    if !text.starts_with('/') || !text.chars().all(allowed) {
        return Err(expected());
    }
    let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(expected());
    }
    Ok(segments.iter().map(|s| format!("/{s}")).collect())
}

/// A size in bytes: plain, or with a suffix (any case, optional space before it):
/// K/KiB, M/MiB, G/GiB multiply by powers of 1024, KB/MB/GB by powers of 1000.
pub(super) fn value_bytes_max(text: &str) -> Result<usize, String> {
    let expected = || {
        format!(
            "a size from {} to {} bytes, e.g. 16MiB, 512KiB or 16777216",
            limits::VALUE_BYTES_MAX_LOWEST,
            limits::VALUE_BYTES_MAX_HIGHEST
        )
    };
    let bytes = parse_size(text).ok_or_else(expected)?;
    let range = limits::VALUE_BYTES_MAX_LOWEST as u64..=limits::VALUE_BYTES_MAX_HIGHEST as u64;
    if !range.contains(&bytes) {
        return Err(expected());
    }
    usize::try_from(bytes).map_err(|_| expected())
}

fn parse_size(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    if number.is_empty() {
        return None;
    }
    let multiplier: u64 = match suffix.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// Edit distance with adjacent transpositions (optimal string alignment) over bytes: the
/// names compared here are ASCII. For "did you mean".
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // distances[i][j]: between the first i bytes of a and the first j bytes of b.
    let mut distances = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in distances.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in distances[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = distances[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution
                .min(distances[i - 1][j] + 1)
                .min(distances[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(distances[i - 2][j - 2] + 1);
            }
            distances[i][j] = best;
        }
    }
    distances[a.len()][b.len()]
}

/// Largest `MOSTDB_DISK_RESERVE_BYTES`: a typo guard (a reserve beyond a pebibyte is no reserve).
const DISK_RESERVE_BYTES_HIGHEST: u64 = 1 << 50;

pub(super) fn disk_reserve_bytes(text: &str) -> Result<u64, String> {
    parse_size(text)
        .filter(|bytes| *bytes <= DISK_RESERVE_BYTES_HIGHEST)
        .ok_or_else(|| "a size in bytes or with a suffix, e.g. 16MiB, 1GiB or 0".to_string())
}

/// Most client connections a node may be told to hold (each is a file descriptor).
const CONNECTIONS_HIGHEST: usize = 1 << 20;

pub(super) fn connections_max(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| (1..=CONNECTIONS_HIGHEST).contains(n))
        .ok_or_else(|| format!("a number of connections from 1 to {CONNECTIONS_HIGHEST}"))
}

/// Lowest and highest `MOSTDB_TIMEOUT_MS`: below 50 ms a loaded loopback misses deadlines;
/// above a minute a client would rather retry.
const TIMEOUT_MS_LOWEST: u64 = 50;
const TIMEOUT_MS_HIGHEST: u64 = 60_000;

pub(super) fn timeout_ms(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|ms| (TIMEOUT_MS_LOWEST..=TIMEOUT_MS_HIGHEST).contains(ms))
        .ok_or_else(|| format!("milliseconds, {TIMEOUT_MS_LOWEST}-{TIMEOUT_MS_HIGHEST}"))
}

pub(super) fn max_clock_skew_ms(text: &str) -> Result<u64, String> {
    use crate::limits::{MAX_CLOCK_SKEW_MS_HIGHEST, MAX_CLOCK_SKEW_MS_LOWEST};
    text.parse::<u64>()
        .ok()
        .filter(|ms| (MAX_CLOCK_SKEW_MS_LOWEST..=MAX_CLOCK_SKEW_MS_HIGHEST).contains(ms))
        .ok_or_else(|| {
            format!("milliseconds, {MAX_CLOCK_SKEW_MS_LOWEST}-{MAX_CLOCK_SKEW_MS_HIGHEST}")
        })
}

pub(super) fn write_mode(text: &str) -> Result<WriteMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "fast" => Ok(WriteMode::Fast),
        "safe" => Ok(WriteMode::Safe),
        _ => Err("fast or safe".to_string()),
    }
}

/// Most bytes in a cluster id (it travels in every peer handshake).
const CLUSTER_ID_BYTES_MAX: usize = 64;

pub(super) fn cluster_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= CLUSTER_ID_BYTES_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "1-{CLUSTER_ID_BYTES_MAX} letters, digits, '-', '_' or '.'"
        ))
    }
}

pub(super) fn cluster_epoch(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|epoch| *epoch >= 1)
        .ok_or_else(|| "a whole number, 1 or more".to_string())
}

/// `clear` or `hash`: whether audit records carry keys hashed.
pub(super) fn audit_keys(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "clear" => Ok(false),
        "hash" => Ok(true),
        _ => Err("clear or hash".to_string()),
    }
}

/// The smallest audit file worth rotating at, and the largest.
const AUDIT_MAX_BYTES_LOWEST: u64 = 64 * 1024;
const AUDIT_MAX_BYTES_HIGHEST: u64 = 1 << 40;

pub(super) fn audit_max_bytes(text: &str) -> Result<u64, String> {
    parse_size(text)
        .filter(|b| (AUDIT_MAX_BYTES_LOWEST..=AUDIT_MAX_BYTES_HIGHEST).contains(b))
        .ok_or_else(|| "a size from 64KiB to 1TiB, e.g. 64MiB".to_string())
}

pub(super) fn log_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("text or json".to_string()),
    }
}

pub(super) fn anti_entropy_interval_ms(text: &str) -> Result<u64, String> {
    use crate::limits::{ANTI_ENTROPY_INTERVAL_MAX_MS, ANTI_ENTROPY_INTERVAL_MIN_MS};
    let range = ANTI_ENTROPY_INTERVAL_MIN_MS..=ANTI_ENTROPY_INTERVAL_MAX_MS;
    text.parse::<u64>()
        .ok()
        .filter(|ms| range.contains(ms))
        .ok_or_else(|| {
            format!("milliseconds, {ANTI_ENTROPY_INTERVAL_MIN_MS}-{ANTI_ENTROPY_INTERVAL_MAX_MS}")
        })
}
