//! `SCAN` and `KEYS` over the majority listing (DESIGN §11), and the glob patterns of `MATCH`.
//!
//! A listing's cursor is a key; client libraries parse SCAN cursors as integers, so the node
//! keeps a bounded table from numbers to where each scan stopped ([`ScanCursors`], shared by
//! the cores: a client's next call may land on any). A forgotten cursor (older than
//! [`RESP_SCAN_CURSOR_TTL_MS`], pushed out by newer ones, or another node's) starts the scan
//! over: SCAN's guarantees allow repeats, not gaps. A pattern's literal prefix (before its
//! first `*`, `?`, `[` or `\`) bounds the listing; the rest filters its keys.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{arity, integer, said, Failure, RedisCommands, SYNTAX};
use crate::api::list::ListRequest;
use crate::api::{Api, ApiError};
use crate::limits::{
    LIST_LIMIT_MAX, RESP_KEYS_MAX, RESP_SCAN_CURSORS_MAX, RESP_SCAN_CURSOR_TTL_MS,
};
use crate::replication::listing::KeyRange;
use crate::replication::OpError;
use crate::resp::{Reply, Step};

type Done = Result<Step, Failure>;

/// The longest `MATCH` or `KEYS` pattern: matching costs up to its length times a key's.
const PATTERN_BYTES_MAX: usize = 128;
const PATTERN_TOO_LONG: &str = "ERR a pattern is at most 128 bytes";

/// `SCAN`'s default `COUNT`.
const SCAN_COUNT_DEFAULT: usize = 10;

/// Where unfinished scans stopped, by cursor number.
#[derive(Default)]
pub struct ScanCursors {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    stops: HashMap<u64, Stop>,
    /// Cursor numbers, oldest first.
    order: VecDeque<u64>,
}

struct Stop {
    pattern: Vec<u8>,
    after: Vec<u8>,
    at: Instant,
}

impl ScanCursors {
    /// A cursor for a scan of `pattern` that stopped after `after`.
    fn remember(&self, pattern: &[u8], after: Vec<u8>) -> u64 {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        while table.order.len() >= RESP_SCAN_CURSORS_MAX {
            if let Some(old) = table.order.pop_front() {
                table.stops.remove(&old);
            }
        }
        // Never 0 (the end), and not guessable as the next one.
        table.next = table.next.wrapping_add(0x9E37_79B9_7F4A_7C15) | 1;
        let cursor = table.next >> 1;
        table.stops.insert(
            cursor,
            Stop {
                pattern: pattern.to_vec(),
                after,
                at: Instant::now(),
            },
        );
        table.order.push_back(cursor);
        cursor
    }

    /// Where the scan of `pattern` at `cursor` goes on after (`None`: from the start).
    fn resume(&self, cursor: u64, pattern: &[u8]) -> Option<Vec<u8>> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let stop = table.stops.remove(&cursor)?;
        let fresh = stop.at.elapsed() < Duration::from_millis(RESP_SCAN_CURSOR_TTL_MS);
        (fresh && stop.pattern == pattern).then_some(stop.after)
    }
}

/// Runs `SCAN` or `KEYS` (`None`: neither).
pub(super) async fn run(
    commands: &RedisCommands,
    name: &[u8],
    args: &[&[u8]],
    reply: &mut Reply<'_>,
) -> Option<Done> {
    match name {
        b"SCAN" => Some(scan(commands, args, reply).await),
        b"KEYS" => Some(keys(&commands.api, args, reply).await),
        _ => None,
    }
}

async fn scan(commands: &RedisCommands, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, cursor, options @ ..] = args else {
        return Err(arity(b"scan"));
    };
    let cursor = u64::try_from(integer(cursor)?).map_err(|_| said("ERR invalid cursor"))?;
    let (mut pattern, mut count) = (b"*".to_vec(), SCAN_COUNT_DEFAULT);
    let mut i = 0;
    while i < options.len() {
        let value = options.get(i + 1).ok_or(said(SYNTAX))?;
        match options[i].to_ascii_uppercase().as_slice() {
            b"MATCH" if value.len() > PATTERN_BYTES_MAX => return Err(said(PATTERN_TOO_LONG)),
            b"MATCH" => pattern = value.to_vec(),
            b"COUNT" => {
                count = usize::try_from(integer(value)?)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(said(SYNTAX))?
                    .min(LIST_LIMIT_MAX)
            }
            // Every key is a string.
            b"TYPE" if value.eq_ignore_ascii_case(b"string") => {}
            b"TYPE" => count = 0,
            _ => return Err(said(SYNTAX)),
        }
        i += 2;
    }
    let after = match cursor {
        0 => None,
        n => commands.cursors.resume(n, &pattern),
    };
    let (keys, more) = match count {
        0 => (Vec::new(), None),
        count => list(&commands.api, &pattern, after, count).await?,
    };
    let next = match more {
        Some(after) => commands.cursors.remember(&pattern, after),
        None => 0,
    };
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(keys.len());
    for key in &keys {
        reply.bulk(key);
    }
    Ok(Step::Continue)
}

/// `KEYS pattern`: every matching key, from a majority listing, at most [`RESP_KEYS_MAX`].
async fn keys(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, pattern] = args else {
        return Err(arity(b"keys"));
    };
    if pattern.len() > PATTERN_BYTES_MAX {
        return Err(said(PATTERN_TOO_LONG));
    }
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let (page, more) = list(api, pattern, after, LIST_LIMIT_MAX).await?;
        keys.extend(page);
        if keys.len() > RESP_KEYS_MAX {
            return Err(said(format!(
                "ERR more than {RESP_KEYS_MAX} keys match: use SCAN"
            )));
        }
        match more {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    reply.array(keys.len());
    for key in &keys {
        reply.bulk(key);
    }
    Ok(Step::Continue)
}

/// One page of a majority listing of the pattern's prefix (after `after`), filtered by the
/// pattern; and the key to go on after, if there is more.
async fn list(
    api: &Api,
    pattern: &[u8],
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<(Vec<Vec<u8>>, Option<Vec<u8>>), Failure> {
    let prefix = literal_prefix(pattern);
    let mut range = KeyRange::prefix(prefix);
    if let Some(after) = after.filter(|a| *a >= range.lower) {
        range = range.after(&after);
    }
    let request = ListRequest {
        range,
        limit,
        keys_only: true,
        local: false,
        watch: false,
    };
    let (items, more) = api.list_majority(&request).await.map_err(|err| match err {
        ApiError::NotMost { indeterminate } => Failure::Op(OpError::NotMost { indeterminate }),
        ApiError::Busy => said("TRYAGAIN too many listings at once on this node, nothing tried"),
        _ => said("ERR the listing failed on this node"),
    })?;
    let keys = items
        .into_iter()
        .map(|item| item.key)
        .filter(|key| glob(pattern, key))
        .collect();
    Ok((keys, more))
}

/// The part of a glob pattern before its first special character.
fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Whether `text` matches the glob `pattern` as Redis's `stringmatchlen` does: `*`, `?`,
/// `[abc]`, `[^a]`, `[a-z]`, `\x`. Iterative with one backtrack point: linear-ish, no
/// recursion for a hostile pattern to exploit.
pub(super) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pattern[p..], text[t]) {
                        if matched {
                            p += len;
                            t += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                literal => {
                    if literal == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether `byte` is in the class at the start of `pattern` (`[…]`), and the class's length;
/// `None` for an unterminated class (then `[` is a literal that did not match).
fn class(pattern: &[u8], byte: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        let c = *pattern.get(i)?;
        match c {
            b']' => return Some((matched != negate, i + 1)),
            b'\\' => {
                matched |= *pattern.get(i + 1)? == byte;
                i += 2;
            }
            _ if pattern.get(i + 1) == Some(&b'-')
                && pattern.get(i + 2).is_some_and(|&e| e != b']') =>
            {
                let (a, b) = (c.min(pattern[i + 2]), c.max(pattern[i + 2]));
                matched |= (a..=b).contains(&byte);
                i += 3;
            }
            _ => {
                matched |= c == byte;
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_redis_does() {
        for (pattern, text, want) in [
            ("*", "anything", true),
            ("user:*", "user:1", true),
            ("user:*", "users", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("*a*b", "xxaxxb", true),
            ("*a*b", "xxaxxbc", false),
            ("a[b", "a[b", false),
            ("", "", true),
        ] {
            assert_eq!(
                glob(pattern.as_bytes(), text.as_bytes()),
                want,
                "{pattern} {text}"
            );
        }
        assert_eq!(literal_prefix(b"user:*:x"), b"user:");
        assert_eq!(literal_prefix(b"plain"), b"plain");
    }

    #[test]
    fn cursors_resume_once_and_only_for_their_pattern() {
        let cursors = ScanCursors::default();
        let c = cursors.remember(b"a*", b"a5".to_vec());
        assert_ne!(c, 0);
        assert_eq!(cursors.resume(c, b"b*"), None);
        let c = cursors.remember(b"a*", b"a5".to_vec());
        assert_eq!(cursors.resume(c, b"a*"), Some(b"a5".to_vec()));
        assert_eq!(cursors.resume(c, b"a*"), None, "used up");
        for n in 0..RESP_SCAN_CURSORS_MAX + 10 {
            cursors.remember(b"*", vec![n as u8]);
        }
        assert!(cursors.table.lock().unwrap().order.len() <= RESP_SCAN_CURSORS_MAX);
    }
}
