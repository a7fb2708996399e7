//! The key commands: reads, blind writes and batches, and the read-modify-write commands as
//! compare-and-set loops (DESIGN §10: each attempt compares the version it read; another
//! writer in between makes it read and try again, [`RESP_CAS_ATTEMPTS_MAX`] times at most).

use super::{arity, cas_failure, integer, key, said, Failure, RedisCommands, NOT_INTEGER, SYNTAX};
use crate::api::Api;
use crate::limits::{
    RESP_CAS_ATTEMPTS_MAX, RESP_READS_IN_FLIGHT, RESP_REPLY_BYTES_MAX, TTL_MS_MAX,
};
use crate::replication::clock;
use crate::replication::coordinator::{CasDone, Change, Expect};
use crate::replication::{Found, OpError};
use crate::resp::{Reply, Step};
use crate::runtime::{join_all, Local};

type Done = Result<Step, Failure>;

/// Runs `name` if it is a key command (`None`: not one).
pub(super) async fn run(
    commands: &RedisCommands,
    name: &[u8],
    args: &[&[u8]],
    reply: &mut Reply<'_>,
) -> Option<Done> {
    let api = &*commands.api;
    let known = matches!(
        name,
        b"GET"
            | b"SET"
            | b"SETNX"
            | b"SETEX"
            | b"PSETEX"
            | b"GETSET"
            | b"GETDEL"
            | b"DEL"
            | b"UNLINK"
            | b"EXISTS"
            | b"MGET"
            | b"MSET"
            | b"INCR"
            | b"DECR"
            | b"INCRBY"
            | b"DECRBY"
            | b"EXPIRE"
            | b"PEXPIRE"
            | b"TTL"
            | b"PTTL"
            | b"PERSIST"
    );
    if !known {
        return None;
    }
    if !api.replication.votes() {
        return Some(Err(said(
            "LOADING mostdb is recovering from its peers, nothing tried",
        )));
    }
    Some(match name {
        b"GET" => get(api, args, reply).await,
        b"SET" => set(api, args, reply).await,
        b"SETNX" => setnx(api, args, reply).await,
        b"SETEX" | b"PSETEX" => setex(api, name, args, reply).await,
        b"GETSET" => getset(api, args, reply).await,
        b"GETDEL" => getdel(api, args, reply).await,
        b"DEL" => del(api, args, reply).await,
        b"UNLINK" => unlink(api, args, reply).await,
        b"EXISTS" => exists(api, args, reply).await,
        b"MGET" => mget(api, args, reply).await,
        b"MSET" => mset(api, args, reply).await,
        b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" => incr(api, name, args, reply).await,
        b"EXPIRE" | b"PEXPIRE" => expire(api, name, args, reply).await,
        b"TTL" | b"PTTL" => ttl(api, name, args, reply).await,
        _ => persist(api, args, reply).await,
    })
}

async fn get(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k] = args else {
        return Err(arity(b"get"));
    };
    let found = api.replication.get(key(k)?).await?;
    reply.bulk_or_null(found.as_ref().map(|f| f.value.as_slice()));
    Ok(Step::Continue)
}

/// How a `SET` stores: its options.
#[derive(Default)]
struct SetOptions {
    /// `NX`: only if absent; `XX`: only if present.
    only_if: Option<Expect>,
    get: bool,
    keep_ttl: bool,
    ttl_ms: Option<u64>,
}

fn set_options(options: &[&[u8]]) -> Result<SetOptions, Failure> {
    let mut set = SetOptions::default();
    let mut i = 0;
    while i < options.len() {
        let word = options[i].to_ascii_uppercase();
        let expiry = match word.as_slice() {
            b"EX" => Some((1_000, false)),
            b"PX" => Some((1, false)),
            b"EXAT" => Some((1_000, true)),
            b"PXAT" => Some((1, true)),
            _ => None,
        };
        if let Some((unit_ms, absolute)) = expiry {
            let n = options.get(i + 1).ok_or(said(SYNTAX))?;
            if set.ttl_ms.is_some() || set.keep_ttl {
                return Err(said(SYNTAX));
            }
            set.ttl_ms = Some(expiry_ms(integer(n)?, unit_ms, absolute, "set")?);
            i += 2;
            continue;
        }
        match word.as_slice() {
            b"NX" | b"XX" if set.only_if.is_some() => return Err(said(SYNTAX)),
            b"NX" => set.only_if = Some(Expect::Absent),
            b"XX" => set.only_if = Some(Expect::Present),
            b"GET" => set.get = true,
            b"KEEPTTL" if set.ttl_ms.is_some() => return Err(said(SYNTAX)),
            b"KEEPTTL" => set.keep_ttl = true,
            _ => return Err(said(SYNTAX)),
        }
        i += 1;
    }
    Ok(set)
}

/// A time to live in ms from `n` units of `unit_ms` (from now, or until that Unix time).
fn expiry_ms(n: i64, unit_ms: u64, absolute: bool, command: &str) -> Result<u64, Failure> {
    let invalid = || said(format!("ERR invalid expire time in '{command}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let ms = (n as u64).checked_mul(unit_ms).ok_or_else(invalid)?;
    let ttl = match absolute {
        // Already past: it expires at once (1 ms, the shortest time to live there is).
        true => ms.saturating_sub(clock::system_ms()).max(1),
        false => ms,
    };
    if ttl > TTL_MS_MAX {
        return Err(invalid());
    }
    Ok(ttl)
}

async fn set(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k, v, options @ ..] = args else {
        return Err(arity(b"set"));
    };
    let (key, value) = (key(k)?, api.resp_value(v)?);
    let options = set_options(options)?;
    match options {
        SetOptions {
            only_if: None,
            get: false,
            keep_ttl: false,
            ttl_ms,
        } => {
            api.replication.set(key, value, ttl_ms).await?;
            reply.ok();
        }
        SetOptions {
            only_if: Some(expect),
            get: false,
            keep_ttl: false,
            ttl_ms,
        } => {
            let change = Change {
                value: Some(value),
                ttl_ms,
            };
            match cas(api, key, expect, change).await? {
                true => reply.ok(),
                false => reply.null(),
            }
        }
        SetOptions {
            only_if,
            get,
            keep_ttl,
            ttl_ms,
        } => {
            let (before, _) = modify(api, &key, |found| {
                let allowed = match only_if {
                    Some(Expect::Absent) => found.is_none(),
                    Some(_) => found.is_some(),
                    None => true,
                };
                let ttl_ms = match keep_ttl {
                    true => kept_ttl(found),
                    false => ttl_ms,
                };
                Ok(allowed.then(|| Change {
                    value: Some(value.clone()),
                    ttl_ms,
                }))
            })
            .await?;
            match (get, before) {
                (true, before) => reply.bulk_or_null(before.as_ref().map(|f| f.value.as_slice())),
                (false, _) => reply.ok(),
            }
        }
    }
    Ok(Step::Continue)
}

async fn setnx(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k, v] = args else {
        return Err(arity(b"setnx"));
    };
    let change = Change {
        value: Some(api.resp_value(v)?),
        ttl_ms: None,
    };
    let stored = cas(api, key(k)?, Expect::Absent, change).await?;
    reply.int(i64::from(stored));
    Ok(Step::Continue)
}

async fn setex(api: &Api, name: &[u8], args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k, n, v] = args else {
        return Err(arity(name));
    };
    let unit_ms = if name == b"SETEX" { 1_000 } else { 1 };
    let command = String::from_utf8_lossy(name).to_lowercase();
    let ttl_ms = expiry_ms(integer(n)?, unit_ms, false, &command)?;
    api.replication
        .set(key(k)?, api.resp_value(v)?, Some(ttl_ms))
        .await?;
    reply.ok();
    Ok(Step::Continue)
}

async fn getset(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k, v] = args else {
        return Err(arity(b"getset"));
    };
    let (key, value) = (key(k)?, api.resp_value(v)?);
    let (before, _) = modify(api, &key, |_| {
        Ok(Some(Change {
            value: Some(value.clone()),
            ttl_ms: None,
        }))
    })
    .await?;
    reply.bulk_or_null(before.as_ref().map(|f| f.value.as_slice()));
    Ok(Step::Continue)
}

async fn getdel(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k] = args else {
        return Err(arity(b"getdel"));
    };
    let (before, _) = modify(api, &key(k)?, |found| {
        Ok(found.map(|_| Change {
            value: None,
            ttl_ms: None,
        }))
    })
    .await?;
    reply.bulk_or_null(before.as_ref().map(|f| f.value.as_slice()));
    Ok(Step::Continue)
}

/// `DEL`: each key deleted with a CAS "if present", so the count is exact.
async fn del(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, keys @ ..] = args else {
        return Err(arity(b"del"));
    };
    if keys.is_empty() {
        return Err(arity(b"del"));
    }
    let keys = keys.iter().map(|k| key(k)).collect::<Result<Vec<_>, _>>()?;
    let deletes: Vec<Local<'_, Result<bool, Failure>>> = keys
        .into_iter()
        .map(|k| {
            let delete = Change {
                value: None,
                ttl_ms: None,
            };
            Box::pin(cas(api, k, Expect::Present, delete)) as Local<'_, _>
        })
        .collect();
    let deleted = all_or_failure(join_all(deletes).await)?;
    reply.int(deleted.iter().filter(|d| **d).count() as i64);
    Ok(Step::Continue)
}

/// `UNLINK`: blind deletes, one round trip; answers the number of keys given (it cannot
/// know which existed).
async fn unlink(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, keys @ ..] = args else {
        return Err(arity(b"unlink"));
    };
    if keys.is_empty() {
        return Err(arity(b"unlink"));
    }
    let keys = keys.iter().map(|k| key(k)).collect::<Result<Vec<_>, _>>()?;
    let count = keys.len() as i64;
    let deletes: Vec<Local<'_, Result<(), Failure>>> = keys
        .into_iter()
        .map(|k| {
            let delete = async move { Ok(api.replication.del(k).await.map(drop)?) };
            Box::pin(delete) as Local<'_, _>
        })
        .collect();
    all_or_failure(join_all(deletes).await)?;
    reply.int(count);
    Ok(Step::Continue)
}

/// Reads every key (quorum reads, [`RESP_READS_IN_FLIGHT`] at once); fails whole if one
/// fails, or once the values read pass [`RESP_REPLY_BYTES_MAX`] (a reply is built whole in
/// memory: 1,023 keys of 16 MiB values would be 16 GiB).
async fn read_all(api: &Api, keys: &[&[u8]]) -> Result<Vec<Option<Found>>, Failure> {
    let keys = keys.iter().map(|k| key(k)).collect::<Result<Vec<_>, _>>()?;
    let (mut found, mut bytes) = (Vec::with_capacity(keys.len()), 0usize);
    for chunk in keys.chunks(RESP_READS_IN_FLIGHT) {
        let reads: Vec<Local<'_, Result<Option<Found>, Failure>>> = chunk
            .iter()
            .map(|k| {
                let read = async move { Ok(api.replication.get(k.clone()).await?) };
                Box::pin(read) as Local<'_, _>
            })
            .collect();
        for value in all_or_failure(join_all(reads).await)? {
            bytes += value.as_ref().map_or(0, |f| f.value.len());
            if bytes > RESP_REPLY_BYTES_MAX {
                return Err(said(format!(
                    "ERR the reply would be over {} MiB: ask for fewer keys",
                    RESP_REPLY_BYTES_MAX >> 20
                )));
            }
            found.push(value);
        }
    }
    Ok(found)
}

async fn exists(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, keys @ ..] = args else {
        return Err(arity(b"exists"));
    };
    if keys.is_empty() {
        return Err(arity(b"exists"));
    }
    let found = read_all(api, keys).await?;
    reply.int(found.iter().filter(|f| f.is_some()).count() as i64);
    Ok(Step::Continue)
}

async fn mget(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, keys @ ..] = args else {
        return Err(arity(b"mget"));
    };
    if keys.is_empty() {
        return Err(arity(b"mget"));
    }
    let found = read_all(api, keys).await?;
    reply.array(found.len());
    for f in &found {
        reply.bulk_or_null(f.as_ref().map(|f| f.value.as_slice()));
    }
    Ok(Step::Continue)
}

/// `MSET`: blind writes at once; not atomic. `OK` only if every one succeeded; otherwise an
/// error that says how many failed (the others are stored).
async fn mset(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, pairs @ ..] = args else {
        return Err(arity(b"mset"));
    };
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(arity(b"mset"));
    }
    let mut writes = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        writes.push((key(pair[0])?, api.resp_value(pair[1])?));
    }
    let sets: Vec<Local<'_, Result<(), Failure>>> = writes
        .into_iter()
        .map(|(k, v)| {
            let set = async move { Ok(api.replication.set(k, v, None).await.map(drop)?) };
            Box::pin(set) as Local<'_, _>
        })
        .collect();
    all_or_failure(join_all(sets).await)?;
    reply.ok();
    Ok(Step::Continue)
}

async fn incr(api: &Api, name: &[u8], args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let (k, delta) = match (name, args) {
        (b"INCR", [_, k]) => (k, 1),
        (b"DECR", [_, k]) => (k, -1),
        (b"INCRBY", [_, k, n]) => (k, integer(n)?),
        (b"DECRBY", [_, k, n]) => (k, integer(n)?.checked_neg().ok_or(said(NOT_INTEGER))?),
        _ => return Err(arity(name)),
    };
    let (_, after) = modify(api, &key(k)?, |found| {
        let now = match found {
            None => 0,
            Some(f) => std::str::from_utf8(&f.value)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(said(NOT_INTEGER))?,
        };
        let next = now
            .checked_add(delta)
            .ok_or(said("ERR increment or decrement would overflow"))?;
        Ok(Some(Change {
            value: Some(next.to_string().into_bytes()),
            ttl_ms: kept_ttl(found),
        }))
    })
    .await?;
    let value = after
        .and_then(|c| c.value)
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok());
    reply.int(value.unwrap_or_default());
    Ok(Step::Continue)
}

async fn expire(api: &Api, name: &[u8], args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k, n, options @ ..] = args else {
        return Err(arity(name));
    };
    let unit_ms: i64 = if name == b"EXPIRE" { 1_000 } else { 1 };
    let ms = integer(n)?.checked_mul(unit_ms).ok_or(said(NOT_INTEGER))?;
    let condition = match options {
        [] => None,
        [word] => Some(word.to_ascii_uppercase()),
        _ => return Err(said(SYNTAX)),
    };
    if condition
        .as_deref()
        .is_some_and(|c| !matches!(c, b"NX" | b"XX" | b"GT" | b"LT"))
    {
        return Err(said(SYNTAX));
    }
    if ms > TTL_MS_MAX as i64 {
        let command = String::from_utf8_lossy(name).to_lowercase();
        return Err(said(format!(
            "ERR invalid expire time in '{command}' command"
        )));
    }
    let (_, after) = modify(api, &key(k)?, |found| {
        let Some(found) = found else { return Ok(None) };
        let current = found.expires.map(|at| clock::ms_left(at, found.read_at));
        let allowed = match condition.as_deref() {
            Some(b"NX") => current.is_none(),
            Some(b"XX") => current.is_some(),
            // No expiry counts as forever.
            Some(b"GT") => current.is_some_and(|c| ms > c as i64),
            Some(b"LT") => current.is_none_or(|c| ms < c as i64),
            _ => true,
        };
        // A time in the past deletes the key, as in Redis.
        Ok(allowed.then(|| Change {
            value: (ms > 0).then(|| found.value.clone()),
            ttl_ms: (ms > 0).then_some(ms as u64),
        }))
    })
    .await?;
    reply.int(i64::from(after.is_some()));
    Ok(Step::Continue)
}

async fn ttl(api: &Api, name: &[u8], args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k] = args else {
        return Err(arity(name));
    };
    let found = api.replication.get(key(k)?).await?;
    let left = match found {
        None => -2,
        Some(Found { expires: None, .. }) => -1,
        Some(Found {
            expires: Some(at),
            read_at,
            ..
        }) => {
            let ms = clock::ms_left(at, read_at) as i64;
            if name == b"TTL" {
                (ms + 500) / 1_000
            } else {
                ms
            }
        }
    };
    reply.int(left);
    Ok(Step::Continue)
}

async fn persist(api: &Api, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, k] = args else {
        return Err(arity(b"persist"));
    };
    let (_, after) = modify(api, &key(k)?, |found| {
        Ok(found.filter(|f| f.expires.is_some()).map(|f| Change {
            value: Some(f.value.clone()),
            ttl_ms: None,
        }))
    })
    .await?;
    reply.int(i64::from(after.is_some()));
    Ok(Step::Continue)
}

/// The time to live a key has left, kept across a change (`KEEPTTL`, `INCR`).
fn kept_ttl(found: Option<&Found>) -> Option<u64> {
    let found = found?;
    Some(clock::ms_left(found.expires?, found.read_at).max(1))
}

/// One CAS: whether it applied (`false`: the compare failed).
async fn cas(api: &Api, key: Vec<u8>, expect: Expect, change: Change) -> Result<bool, Failure> {
    let done = api.replication.cas(key, expect, change).await?;
    if let Some(failure) = cas_failure(&done) {
        return Err(failure);
    }
    Ok(matches!(done, CasDone::Ok { .. }))
}

/// A read-modify-write: reads `key`, asks `change` what to do with what it found (`None`:
/// nothing), and applies that with a CAS on the version read; when another writer got in
/// between, reads and tries again. The value before, and the change applied (`None`: none).
async fn modify(
    api: &Api,
    key: &[u8],
    change: impl Fn(Option<&Found>) -> Result<Option<Change>, Failure>,
) -> Result<(Option<Found>, Option<Change>), Failure> {
    for _ in 0..RESP_CAS_ATTEMPTS_MAX {
        let found = api.replication.get(key.to_vec()).await?;
        let Some(next) = change(found.as_ref())? else {
            return Ok((found, None));
        };
        let expect = match &found {
            Some(f) => Expect::Version(f.version),
            None => Expect::Absent,
        };
        if cas(api, key.to_vec(), expect, next.clone()).await? {
            return Ok((found, Some(next)));
        }
    }
    Err(Failure::Contended)
}

/// Every result, or the failure that tells the most: an unknown outcome before a definite
/// one (any key may then have been applied).
fn all_or_failure<T>(results: Vec<Result<T, Failure>>) -> Result<Vec<T>, Failure> {
    let (count, failed) = (results.len(), results.iter().filter(|r| r.is_err()).count());
    let mut first: Option<Failure> = None;
    let mut ok = Vec::with_capacity(count);
    for result in results {
        match result {
            Ok(value) => ok.push(value),
            Err(failure) => {
                let unknown = |f: &Failure| {
                    matches!(
                        f,
                        Failure::Op(OpError::NotMost {
                            indeterminate: true
                        })
                    )
                };
                if first
                    .as_ref()
                    .is_none_or(|f| !unknown(f) && unknown(&failure))
                {
                    first = Some(failure);
                }
            }
        }
    }
    match first {
        None => Ok(ok),
        // Some applied, some not: say so, with the failure's code.
        Some(failure) if failed < count => Err(partly(failure, failed, count)),
        Some(failure) => Err(failure),
    }
}

/// The error of a command that applied to some keys and failed on others.
fn partly(failure: Failure, failed: usize, count: usize) -> Failure {
    let text = match failure {
        Failure::Said(text) => return Failure::Said(text),
        Failure::Contended => super::op_error(&OpError::NotMost {
            indeterminate: false,
        }),
        Failure::Op(err) => super::op_error(&err),
    };
    let (code, why) = text.split_once(' ').unwrap_or((&text, ""));
    // TRYAGAIN and LOADING promise that nothing was applied: not so here.
    let code = match code {
        "TRYAGAIN" | "LOADING" | "NOSPACE" => "NOTMOST",
        code => code,
    };
    said(format!(
        "{code} {failed} of {count} keys failed ({why}); the others were applied"
    ))
}
