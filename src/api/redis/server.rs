//! The connection and server commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`,
//! `RESET`, `CLIENT`, `COMMAND`, `INFO`, `CONFIG GET`, `DBSIZE`. None reaches the quorum.

use super::{arity, integer, said, shown, Failure, RedisCommands, SYNTAX};
use crate::resp::{Protocol, Reply, Session, Step};

type Done = Result<Step, Failure>;

/// The Redis version mostdb answers as (the command set it follows).
const REDIS_VERSION: &str = "7.2.0";

/// What `COMMAND` tells clients: name, arity (negative: at least), flags, first key, last
/// key, step.
type Entry = (&'static str, i64, &'static [&'static str], i64, i64, i64);
const TABLE: &[Entry] = &[
    ("get", 2, &["readonly", "fast"], 1, 1, 1),
    ("set", -3, &["write", "denyoom"], 1, 1, 1),
    ("setnx", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("setex", 4, &["write", "denyoom"], 1, 1, 1),
    ("psetex", 4, &["write", "denyoom"], 1, 1, 1),
    ("getset", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("getdel", 2, &["write", "fast"], 1, 1, 1),
    ("del", -2, &["write"], 1, -1, 1),
    ("unlink", -2, &["write", "fast"], 1, -1, 1),
    ("exists", -2, &["readonly", "fast"], 1, -1, 1),
    ("mget", -2, &["readonly", "fast"], 1, -1, 1),
    ("mset", -3, &["write", "denyoom"], 1, -1, 2),
    ("incr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("decr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("incrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("decrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("expire", -3, &["write", "fast"], 1, 1, 1),
    ("pexpire", -3, &["write", "fast"], 1, 1, 1),
    ("ttl", 2, &["readonly", "fast"], 1, 1, 1),
    ("pttl", 2, &["readonly", "fast"], 1, 1, 1),
    ("persist", 2, &["write", "fast"], 1, 1, 1),
    ("scan", -2, &["readonly"], 0, 0, 0),
    ("keys", 2, &["readonly"], 0, 0, 0),
    ("dbsize", 1, &["readonly", "fast"], 0, 0, 0),
    ("ping", -1, &["fast"], 0, 0, 0),
    ("echo", 2, &["fast"], 0, 0, 0),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
    (
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
    ("select", 2, &["loading", "stale", "fast"], 0, 0, 0),
    (
        "quit",
        -1,
        &["loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
    (
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
    ("client", -2, &["loading", "stale"], 0, 0, 0),
    ("command", -1, &["loading", "stale"], 0, 0, 0),
    ("info", -1, &["loading", "stale"], 0, 0, 0),
    ("config", -2, &["admin", "loading", "stale"], 0, 0, 0),
];

/// Whether `name` may run before `AUTH` when the API key is on.
pub(super) fn before_auth(name: &[u8]) -> bool {
    matches!(name, b"AUTH" | b"HELLO" | b"QUIT" | b"RESET")
}

/// Runs `name` if it is a server command (`None`: not one).
pub(super) async fn run(
    commands: &RedisCommands,
    session: &mut Session,
    name: &[u8],
    args: &[&[u8]],
    reply: &mut Reply<'_>,
) -> Option<Done> {
    Some(match name {
        b"PING" => ping(args, reply),
        b"ECHO" => match args {
            [_, text] => {
                reply.bulk(text);
                Ok(Step::Continue)
            }
            _ => Err(arity(b"echo")),
        },
        b"HELLO" => hello(commands, session, args, reply),
        b"AUTH" => auth(commands, session, args, reply),
        b"SELECT" => select(args, reply),
        b"QUIT" => {
            reply.ok();
            Ok(Step::Close)
        }
        b"RESET" => {
            *session = Session::new(session.id);
            reply.protocol = Protocol::Resp2;
            reply.simple("RESET");
            Ok(Step::Continue)
        }
        b"CLIENT" => client(session, args, reply),
        b"COMMAND" => command(args, reply),
        b"INFO" => info(commands, args, reply),
        b"CONFIG" => config(commands, args, reply),
        b"DBSIZE" => {
            reply.int(commands.api.replication.approximate_keys() as i64);
            Ok(Step::Continue)
        }
        _ => return None,
    })
}

fn select(args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let [_, db] = args else {
        return Err(arity(b"select"));
    };
    if integer(db)? != 0 {
        return Err(said("ERR DB index is out of range"));
    }
    reply.ok();
    Ok(Step::Continue)
}

fn ping(args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    match args {
        [_] => reply.simple("PONG"),
        [_, text] => reply.bulk(text),
        _ => return Err(arity(b"ping")),
    }
    Ok(Step::Continue)
}

/// `HELLO [2|3 [AUTH user pass] [SETNAME name]]`: switches the protocol, answers the server's
/// description.
fn hello(
    commands: &RedisCommands,
    session: &mut Session,
    args: &[&[u8]],
    reply: &mut Reply<'_>,
) -> Done {
    let mut protocol = session.protocol;
    let mut rest = &args[1..];
    if let [version, more @ ..] = rest {
        protocol = match integer(version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            _ => return Err(said("NOPROTO unsupported protocol version")),
        };
        rest = more;
    }
    let mut name = None;
    while let [option, more @ ..] = rest {
        match (option.to_ascii_uppercase().as_slice(), more) {
            (b"AUTH", [user, password, tail @ ..]) => {
                check_password(commands, session, Some(user), password)?;
                rest = tail;
            }
            (b"SETNAME", [n, tail @ ..]) => {
                name = Some(n.to_vec());
                rest = tail;
            }
            _ => return Err(said(SYNTAX)),
        }
    }
    if !session.authenticated && commands.api.resp_key_required() {
        return Err(said("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if name.is_some() {
        session.name = name;
    }
    session.protocol = protocol;
    reply.protocol = protocol;
    reply.map(8);
    reply.bulk(b"server");
    reply.bulk(b"mostdb");
    reply.bulk(b"version");
    reply.bulk(REDIS_VERSION.as_bytes());
    reply.bulk(b"mostdb_version");
    reply.bulk(env!("CARGO_PKG_VERSION").as_bytes());
    reply.bulk(b"proto");
    reply.int(if protocol == Protocol::Resp3 { 3 } else { 2 });
    reply.bulk(b"id");
    reply.int(session.id as i64);
    reply.bulk(b"mode");
    reply.bulk(b"standalone");
    reply.bulk(b"role");
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(Step::Continue)
}

/// `AUTH [user] password`: the password is the API key; the user, if given, is `default`.
fn auth(
    commands: &RedisCommands,
    session: &mut Session,
    args: &[&[u8]],
    reply: &mut Reply<'_>,
) -> Done {
    match args {
        [_, password] => check_password(commands, session, None, password)?,
        [_, user, password] => check_password(commands, session, Some(user), password)?,
        _ => return Err(arity(b"auth")),
    }
    reply.ok();
    Ok(Step::Continue)
}

fn check_password(
    commands: &RedisCommands,
    session: &mut Session,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), Failure> {
    if !commands.api.resp_key_required() {
        return Err(said("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let user_ok = user.is_none_or(|u| u == b"default");
    if !(commands.api.resp_key_matches(password) && user_ok) {
        session.authenticated = false;
        return Err(said(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ));
    }
    session.authenticated = true;
    Ok(())
}

fn client(session: &mut Session, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let Some(sub) = args.get(1) else {
        return Err(arity(b"client"));
    };
    match (sub.to_ascii_uppercase().as_slice(), &args[2..]) {
        (b"ID", []) => reply.int(session.id as i64),
        (b"SETNAME", [name]) => {
            if name.iter().any(|&b| b <= b' ' || b == 0x7f) {
                return Err(said(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            session.name = (!name.is_empty()).then(|| name.to_vec());
            reply.ok();
        }
        (b"GETNAME", []) => reply.bulk_or_null(session.name.as_deref()),
        (b"SETINFO", [_, _]) | (b"NO-EVICT", [_]) | (b"NO-TOUCH", [_]) => reply.ok(),
        (b"INFO", []) => {
            let name = session.name.as_deref().map(String::from_utf8_lossy);
            let resp = if session.protocol == Protocol::Resp3 {
                3
            } else {
                2
            };
            reply.text(&format!(
                "id={} name={} db=0 resp={resp}\n",
                session.id,
                name.unwrap_or_default()
            ));
        }
        (sub, _) => {
            return Err(said(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                shown(sub).to_lowercase()
            )))
        }
    }
    Ok(Step::Continue)
}

fn command(args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    match (sub.as_deref(), &args[args.len().min(2)..]) {
        (None, _) => {
            reply.array(TABLE.len());
            for entry in TABLE {
                command_entry(reply, entry);
            }
        }
        (Some(b"COUNT"), []) => reply.int(TABLE.len() as i64),
        (Some(b"LIST"), []) => {
            reply.array(TABLE.len());
            for (name, ..) in TABLE {
                reply.bulk(name.as_bytes());
            }
        }
        (Some(b"INFO"), names) => {
            reply.array(names.len());
            for name in names {
                let lower = String::from_utf8_lossy(name).to_lowercase();
                match TABLE.iter().find(|(n, ..)| *n == lower) {
                    Some(entry) => command_entry(reply, entry),
                    None => reply.null(),
                }
            }
        }
        // No documentation: redis-cli then uses its own.
        (Some(b"DOCS"), _) => reply.map(0),
        (Some(sub), _) => {
            return Err(said(format!(
                "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                shown(sub).to_lowercase()
            )))
        }
    }
    Ok(Step::Continue)
}

fn command_entry(
    reply: &mut Reply<'_>,
    (name, arity, flags, first, last, step): &(&str, i64, &[&str], i64, i64, i64),
) {
    reply.array(10);
    reply.bulk(name.as_bytes());
    reply.int(*arity);
    reply.array(flags.len());
    for flag in *flags {
        reply.simple(flag);
    }
    reply.int(*first);
    reply.int(*last);
    reply.int(*step);
    for _ in 0..4 {
        reply.array(0);
    }
}

fn info(commands: &RedisCommands, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let api = &commands.api;
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let want = |section: &str| all || wanted.iter().any(|w| w == section);
    let mut text = String::new();
    if want("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nmostdb_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            commands.port,
        ));
    }
    if want("clients") {
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\n\r\n",
            crate::resp::connected_clients()
        ));
    }
    if want("replication") {
        text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    if want("keyspace") {
        let keys = api.replication.approximate_keys();
        text.push_str(&format!(
            "# Keyspace\r\ndb0:keys={keys},expires=0,avg_ttl=0\r\n\r\n"
        ));
    }
    if want("mostdb") {
        let cluster = &api.cluster;
        text.push_str(&format!(
            "# Mostdb\r\nnode_id:{:016x}\r\nmembers:{}\r\nquorum:{}\r\nvoting:{}\r\nkeys_note:approximate (deleted keys count until compaction)\r\n\r\n",
            cluster.node_id,
            cluster.members.len(),
            cluster.quorum,
            u8::from(api.replication.votes()),
        ));
    }
    reply.text(text.trim_end_matches("\r\n\r\n").trim_end());
    Ok(Step::Continue)
}

/// `CONFIG GET pattern…`: what redis-benchmark and clients ask for; `CONFIG SET` is refused
/// (runtime settings are `PUT /admin/config`, with the admin token).
fn config(commands: &RedisCommands, args: &[&[u8]], reply: &mut Reply<'_>) -> Done {
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    match sub.as_deref() {
        Some(b"GET") if args.len() > 2 => {}
        Some(b"GET") => return Err(arity(b"config|get")),
        Some(b"SET") | Some(b"RESETSTAT") | Some(b"REWRITE") => {
            return Err(said(
                "ERR mostdb changes settings with PUT /admin/config (admin token), not CONFIG",
            ))
        }
        _ => return Err(said("ERR unknown CONFIG subcommand. Try CONFIG GET.")),
    }
    let sync_always = commands.api.sync_always();
    let params: [(&str, String); 8] = [
        ("save", String::new()),
        ("appendonly", "yes".to_string()),
        (
            "appendfsync",
            if sync_always { "always" } else { "no" }.to_string(),
        ),
        ("databases", "1".to_string()),
        ("maxmemory", "0".to_string()),
        ("port", commands.port.to_string()),
        ("timeout", "0".to_string()),
        (
            "proto-max-bulk-len",
            commands.api.max_value_bytes().to_string(),
        ),
    ];
    let matched: Vec<&(&str, String)> = params
        .iter()
        .filter(|(name, _)| {
            args[2..]
                .iter()
                .any(|p| super::scan::glob(p, name.as_bytes()))
        })
        .collect();
    reply.map(matched.len());
    for (name, value) in matched {
        reply.bulk(name.as_bytes());
        reply.bulk(value.as_bytes());
    }
    Ok(Step::Continue)
}
