//! The command-line client in the one binary (consul-style subcommands; `mostdb` with no
//! arguments stays the server):
//!
//! ```text
//! mostdb kv get KEY
//! mostdb kv set KEY VALUE [--ttl-ms N]
//! mostdb kv del KEY
//! mostdb kv cas KEY (--absent | --present | --expect V | --expect-version V) (VALUE | --delete) [--ttl-ms N]
//! mostdb kv list [PREFIX] [--limit N] [--keys-only] [--local]
//! mostdb kv watch KEY [--version V] [--wait-ms N]
//! mostdb kv watch --prefix P [--cursor C] [--wait-ms N] [--once]
//! mostdb cluster
//! mostdb backup FILE
//! mostdb restore FILE
//! ```
//!
//! Every command takes `--url URL` (default `MOSTDB_URL`, else `http://127.0.0.1:5379`) and
//! `--json` (print the node's answers as they are, one per line); the API key, the context
//! path and TLS come from the same `MOSTDB_*` settings as the server's. Exit codes tell the
//! outcomes apart for scripts: see [`Exit`].
//!
//! Must not import `api`, `replication`, `storage` or `server`.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Settings;
use crate::http::probe::{self, ProbeRequest};
use crate::tls::{Tls, TlsDialer};

/// The URL when neither `--url` nor `MOSTDB_URL` names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:5379";
/// How long the client waits for a node (connect, write, read).
const CLIENT_TIMEOUT_MS: u64 = 30_000;
/// The most of one answer the client reads.
const CLIENT_ANSWER_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Bytes of export lines one restore request carries (about: whole lines).
const RESTORE_BATCH_BYTES: usize = 256 * 1024;
/// Pages `kv list` follows at most (a listing that never ends is a bug, not a wait).
const LIST_PAGES_MAX: usize = 1_000_000;

/// How a command ended, as its exit status.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: the node could not be reached, refused (Unauthorized, Busy, …) or answered oddly.
    Failed = 1,
    /// 2: a bad command line.
    Usage = 2,
    /// 3: the key does not exist.
    NotFound = 3,
    /// 4: a CAS found another state (CompareFailed).
    CompareFailed = 4,
    /// 5: NotMost, definite: nothing was applied.
    NotMost = 5,
    /// 6: NotMost, indeterminate: the change may take effect.
    Indeterminate = 6,
}

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
struct Cli {
    url: Option<String>,
    json: bool,
    command: Cmd,
}

#[derive(Debug, PartialEq, Eq)]
enum Cmd {
    Get(String),
    Set(String, String, Option<u64>),
    Del(String),
    Cas {
        key: String,
        expect: Value,
        change: Option<String>,
        ttl_ms: Option<u64>,
    },
    List {
        prefix: String,
        limit: Option<u32>,
        keys_only: bool,
        local: bool,
    },
    Watch {
        key: String,
        version: Option<String>,
        wait_ms: Option<u64>,
    },
    /// Follows the changes under a prefix (one answer with `once`).
    WatchPrefix {
        prefix: String,
        cursor: Option<String>,
        wait_ms: Option<u64>,
        once: bool,
    },
    Cluster,
    Backup(String),
    Restore(String),
}

/// Runs the client; what to print is printed, the exit status returned.
pub fn run(args: Vec<String>, settings: &Settings, env_url: Option<String>) -> Exit {
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(usage) => {
            eprintln!("mostdb: {usage}");
            return Exit::Usage;
        }
    };
    let url = cli
        .url
        .clone()
        .or(env_url)
        .unwrap_or(DEFAULT_URL.to_string());
    let client = match Client::new(url, settings) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("mostdb: {err}");
            return Exit::Failed;
        }
    };
    match client.run(&cli) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("mostdb: {err}");
            Exit::Failed
        }
    }
}

const USAGE: &str = "usage: mostdb kv get KEY | kv set KEY VALUE [--ttl-ms N] | kv del KEY | \
     kv cas KEY (--absent|--present|--expect V|--expect-version V) (VALUE|--delete) [--ttl-ms N] | \
     kv list [PREFIX] [--limit N] [--keys-only] [--local] | kv watch KEY [--version V] \
     [--wait-ms N] | kv watch --prefix P [--cursor C] [--wait-ms N] [--once] | cluster | backup FILE | restore FILE; each with [--url URL] [--json]";

fn parse(args: Vec<String>) -> Result<Cli, String> {
    let mut words = Vec::new();
    let (mut url, mut json, mut ttl_ms, mut limit) = (None, false, None, None);
    let (mut keys_only, mut local, mut delete) = (false, false, false);
    let mut expect = None;
    let (mut version, mut wait_ms) = (None, None);
    let (mut prefix, mut cursor, mut once) = (None, None, false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value("--url")?),
            "--json" => json = true,
            "--ttl-ms" => ttl_ms = Some(number(&value("--ttl-ms")?)?),
            "--limit" => limit = Some(number(&value("--limit")?)? as u32),
            "--keys-only" => keys_only = true,
            "--version" => version = Some(value("--version")?),
            "--wait-ms" => wait_ms = Some(number(&value("--wait-ms")?)?),
            "--local" => local = true,
            "--prefix" => prefix = Some(value("--prefix")?),
            "--cursor" => cursor = Some(value("--cursor")?),
            "--once" => once = true,
            "--delete" => delete = true,
            "--absent" => expect = Some(json!({"absent": true})),
            "--present" => expect = Some(json!({"present": true})),
            "--expect" => expect = Some(json!({"value": value("--expect")?})),
            "--expect-version" => expect = Some(json!({"version": value("--expect-version")?})),
            "--help" | "-h" => return Err(USAGE.to_string()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}; {USAGE}")),
            _ => words.push(arg),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let command = match (words.as_slice(), expect) {
        (["kv", "get", key], None) => Cmd::Get(key.to_string()),
        (["kv", "set", key, value], None) => Cmd::Set(key.to_string(), value.to_string(), ttl_ms),
        (["kv", "del", key], None) => Cmd::Del(key.to_string()),
        (["kv", "cas", key, rest @ ..], Some(expect)) => Cmd::Cas {
            key: key.to_string(),
            expect,
            change: cas_change(rest, delete)?,
            ttl_ms,
        },
        (["kv", "cas", ..], None) => return Err(format!("kv cas needs an expectation; {USAGE}")),
        (["kv", "list", rest @ ..], None) if rest.len() <= 1 => Cmd::List {
            prefix: rest.first().unwrap_or(&"").to_string(),
            limit,
            keys_only,
            local,
        },
        (["kv", "watch"], None) if prefix.is_some() => Cmd::WatchPrefix {
            prefix: prefix.unwrap_or_default(),
            cursor,
            wait_ms,
            once,
        },
        (["kv", "watch", key], None) => Cmd::Watch {
            key: key.to_string(),
            version,
            wait_ms,
        },
        (["cluster"], None) => Cmd::Cluster,
        (["backup", file], None) => Cmd::Backup(file.to_string()),
        (["restore", file], None) => Cmd::Restore(file.to_string()),
        _ => return Err(USAGE.to_string()),
    };
    Ok(Cli { url, json, command })
}

/// What `kv cas` sets: its VALUE, or nothing with `--delete`.
fn cas_change(rest: &[&str], delete: bool) -> Result<Option<String>, String> {
    match (rest, delete) {
        ([value], false) => Ok(Some(value.to_string())),
        ([], true) => Ok(None),
        _ => Err(format!("kv cas takes a VALUE or --delete; {USAGE}")),
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

/// A node to talk to.
struct Client {
    url: String,
    context: String,
    headers: Vec<String>,
    tls: Option<TlsDialer>,
}

impl Client {
    fn new(url: String, settings: &Settings) -> Result<Client, String> {
        let tls = match url.strip_prefix("https://") {
            None => None,
            Some(_) => match Tls::from_settings(settings).map(|t| t.and_then(|t| t.dialer())) {
                Ok(Some(dialer)) => Some(dialer),
                Ok(None) => return Err("an https URL needs MOSTDB_TLS_CA".to_string()),
                Err(err) => return Err(err.to_string()),
            },
        };
        let url = match url.strip_prefix("https://") {
            Some(rest) => format!("http://{rest}"),
            None => url,
        };
        let mut headers = match settings.api_key_enable {
            true => vec![format!(
                "{}: {}",
                settings.api_key_name, settings.api_key_value
            )],
            false => Vec::new(),
        };
        if !settings.admin_token.is_empty() {
            headers.push(format!("Authorization: Bearer {}", settings.admin_token));
        }
        Ok(Client {
            url,
            context: settings.context_path.clone(),
            headers,
            tls,
        })
    }

    /// One request; the answer's JSON.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = self.call_raw(method, path, body.as_bytes())?;
        serde_json::from_str(&text)
            .map_err(|_| format!("{}{path} answered {status}: {text}", self.url))
    }

    /// One request; the answer's status and text.
    fn call_raw(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let request = ProbeRequest {
            url: &self.url,
            method,
            path,
            headers: self.headers.clone(),
            body,
            tls: self.tls.clone(),
            timeout: Duration::from_millis(CLIENT_TIMEOUT_MS),
            answer_bytes_max: CLIENT_ANSWER_BYTES_MAX,
        };
        probe::probe(&request).map_err(|e| format!("{}: {e}", self.url))
    }

    /// `mostdb backup FILE`: every page of `/admin/export` into `file` (record lines only).
    fn backup(&self, file: &str) -> Result<Exit, String> {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(file).map_err(|e| format!("{file}: {e}"))?,
        );
        let (mut cursor, mut records) = (None::<String>, 0u64);
        let progress = stderr_is_terminal();
        loop {
            let mut path = "/admin/export?limit=1000".to_string();
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, text) = self.call_raw("GET", &path, b"")?;
            if status != 200 {
                return Err(format!("{path} answered {status}: {text}"));
            }
            let mut next = None;
            for line in text.lines() {
                let parsed: Value = serde_json::from_str(line)
                    .map_err(|_| format!("{path} answered a line that is not JSON: {line}"))?;
                if parsed.get("key").is_some() {
                    writeln!(out, "{line}").map_err(|e| format!("{file}: {e}"))?;
                    records += 1;
                } else if let Some(failure) = parsed.get("message") {
                    eprintln!("mostdb: the export failed: {failure}");
                    return Ok(exit_of(&parsed));
                } else if parsed["more"] == true {
                    next = parsed["cursor"].as_str().map(str::to_string);
                }
            }
            if progress {
                eprint!("\r{records} records");
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        out.flush().map_err(|e| format!("{file}: {e}"))?;
        if progress {
            eprintln!();
        }
        eprintln!("{records} records written to {file}");
        Ok(Exit::Ok)
    }

    /// `mostdb restore FILE`: the lines of `file` to `/admin/import`, in batches.
    fn restore(&self, file: &str) -> Result<Exit, String> {
        let text = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        let (mut imported, mut kept, mut failed) = (0u64, 0u64, 0u64);
        let progress = stderr_is_terminal();
        let mut batch: Vec<u8> = Vec::new();
        let mut lines = text.split(|&b| b == b'\n').peekable();
        while lines.peek().is_some() {
            batch.clear();
            while let Some(line) = lines.next_if(|_| batch.len() < RESTORE_BATCH_BYTES) {
                batch.extend_from_slice(line);
                batch.push(b'\n');
            }
            let (status, reply) = self.call_raw("POST", "/admin/import", &batch)?;
            let parsed: Value = serde_json::from_str(&reply)
                .map_err(|_| format!("/admin/import answered {status}: {reply}"))?;
            imported += parsed["result"]["imported"].as_u64().unwrap_or(0);
            kept += parsed["result"]["kept"].as_u64().unwrap_or(0);
            failed += parsed["result"]["failed"].as_u64().unwrap_or(0);
            if parsed["code"] != 200 && parsed["result"]["failed"].is_null() {
                report(&parsed);
                return Ok(Exit::Failed);
            }
            if progress {
                eprint!("\r{imported} records");
            }
        }
        if progress {
            eprintln!();
        }
        eprintln!(
            "{imported} records restored from {file}, {kept} kept (newer there, or expired), \
             {failed} failed"
        );
        Ok(if failed == 0 { Exit::Ok } else { Exit::NotMost })
    }

    fn run(&self, cli: &Cli) -> Result<Exit, String> {
        let ctx = &self.context;
        let (answer, show): (Value, fn(&Value)) = match &cli.command {
            Cmd::Get(key) => (
                self.call("POST", &format!("{ctx}/get"), Some(json!({"key": key})))?,
                |a| println!("{}", a["result"]["value"].as_str().unwrap_or_default()),
            ),
            Cmd::Set(key, value, ttl_ms) => {
                let mut body = json!({"key": key, "value": value});
                if let Some(ttl) = ttl_ms {
                    body["ttl_ms"] = json!(ttl);
                }
                (
                    self.call("POST", &format!("{ctx}/set"), Some(body))?,
                    |_| {},
                )
            }
            Cmd::Del(key) => (
                self.call("POST", &format!("{ctx}/del"), Some(json!({"key": key})))?,
                |_| {},
            ),
            Cmd::Cas {
                key,
                expect,
                change,
                ttl_ms,
            } => (
                self.call(
                    "POST",
                    &format!("{ctx}/cas"),
                    Some(cas_body(key, expect, change.as_deref(), *ttl_ms)),
                )?,
                |a| println!("{}", a["result"]["version"].as_str().unwrap_or_default()),
            ),
            Cmd::List {
                prefix,
                limit,
                keys_only,
                local,
            } => return self.list(cli, prefix, *limit, *keys_only, *local),
            Cmd::Watch {
                key,
                version,
                wait_ms,
            } => (self.watch(key, version.as_deref(), *wait_ms)?, show_watch),
            Cmd::WatchPrefix {
                prefix,
                cursor,
                wait_ms,
                once,
            } => return self.watch_prefix(cli, prefix, cursor.clone(), *wait_ms, *once),
            Cmd::Backup(file) => return self.backup(file),
            Cmd::Restore(file) => return self.restore(file),
            Cmd::Cluster => (self.call("GET", "/cluster", None)?, |a| {
                print_cluster(&a["result"])
            }),
        };
        let exit = exit_of(&answer);
        if cli.json {
            println!("{answer}");
        } else if exit == Exit::Ok {
            show(&answer);
        } else {
            report(&answer);
        }
        Ok(exit)
    }

    /// One watch: its answer.
    fn watch(
        &self,
        key: &str,
        version: Option<&str>,
        wait_ms: Option<u64>,
    ) -> Result<Value, String> {
        let mut query = format!("key={}", percent_encode(key));
        if let Some(version) = version {
            query.push_str(&format!("&version={}", percent_encode(version)));
        }
        if let Some(ms) = wait_ms {
            query.push_str(&format!("&wait_ms={ms}"));
        }
        self.call("GET", &format!("{}/watch?{query}", self.context), None)
    }

    /// The changes under `prefix`, printed as they come: `version<TAB>key<TAB>value` or
    /// `version<TAB>key<TAB>deleted`; a cursor the node cannot vouch for says `resync` on stderr
    /// (list again) and goes on from the fresh one. With `once`, one answer, then the cursor
    /// to go on from on stderr.
    fn watch_prefix(
        &self,
        cli: &Cli,
        prefix: &str,
        mut cursor: Option<String>,
        wait_ms: Option<u64>,
        once: bool,
    ) -> Result<Exit, String> {
        loop {
            let mut query = format!("prefix={}", percent_encode(prefix));
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={}", percent_encode(cursor)));
            }
            if let Some(ms) = wait_ms {
                query.push_str(&format!("&wait_ms={ms}"));
            }
            let answer = match self.page(cli, &format!("{}/watch?{query}", self.context))? {
                Ok(answer) => answer,
                Err(exit) => return Ok(exit),
            };
            let result = &answer["result"];
            if !cli.json {
                if result["resync"] == true {
                    eprintln!(
                        "resync: the node cannot vouch for the cursor; list the prefix again"
                    );
                }
                for change in result["changes"].as_array().into_iter().flatten() {
                    let text = |f: &str| change[f].as_str().unwrap_or_default().to_string();
                    let value = match change["deleted"] == true {
                        true => "deleted".to_string(),
                        false => text("value"),
                    };
                    println!("{}\t{}\t{value}", text("version"), text("key"));
                }
                let _ = std::io::stdout().flush();
            }
            cursor = result["cursor"].as_str().map(str::to_string);
            if once {
                if !cli.json {
                    eprintln!("cursor {}", cursor.unwrap_or_default());
                }
                return Ok(Exit::Ok);
            }
        }
    }

    /// One `GET` of a command that follows pages (a listing, a prefix watch): the answer, printed
    /// as it is with `--json`; a failure reported, as its exit status.
    fn page(&self, cli: &Cli, path: &str) -> Result<Result<Value, Exit>, String> {
        let answer = self.call("GET", path, None)?;
        let exit = exit_of(&answer);
        if cli.json {
            println!("{answer}");
        } else if exit != Exit::Ok {
            report(&answer);
        }
        Ok(match exit {
            Exit::Ok => Ok(answer),
            failed => Err(failed),
        })
    }

    /// Every page of a listing, printed as it comes: `key<TAB>value` (or the key alone).
    fn list(
        &self,
        cli: &Cli,
        prefix: &str,
        limit: Option<u32>,
        keys_only: bool,
        local: bool,
    ) -> Result<Exit, String> {
        let mut query = format!("prefix={}", percent_encode(prefix));
        if let Some(limit) = limit {
            query.push_str(&format!("&limit={limit}"));
        }
        if keys_only {
            query.push_str("&keys_only=true");
        }
        if local {
            query.push_str("&consistency=local");
        }
        let mut cursor: Option<String> = None;
        for _ in 0..LIST_PAGES_MAX {
            let mut path = format!("{}/list?{query}", self.context);
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let answer = match self.page(cli, &path)? {
                Ok(answer) => answer,
                Err(exit) => return Ok(exit),
            };
            let result = &answer["result"];
            if !cli.json {
                for item in result["items"].as_array().into_iter().flatten() {
                    let key = item["key"].as_str().unwrap_or_default();
                    match item["value"].as_str() {
                        Some(value) if !keys_only => println!("{key}\t{value}"),
                        _ => println!("{key}"),
                    }
                }
            }
            match (result["more"].as_bool(), result["cursor"].as_str()) {
                (Some(true), Some(next)) => cursor = Some(next.to_string()),
                _ => return Ok(Exit::Ok),
            }
        }
        Err("the listing did not end".to_string())
    }
}

/// A CAS request's body.
fn cas_body(key: &str, expect: &Value, change: Option<&str>, ttl_ms: Option<u64>) -> Value {
    let mut body = json!({"key": key, "expect": expect});
    match change {
        Some(value) => body["value"] = json!(value),
        None => body["delete"] = json!(true),
    }
    if let Some(ttl) = ttl_ms {
        body["ttl_ms"] = json!(ttl);
    }
    body
}

/// A watch's answer: `version<TAB>value`, or `version<TAB>unchanged`.
fn show_watch(answer: &Value) {
    let result = &answer["result"];
    let version = result["version"].as_str().unwrap_or_default();
    match result["changed"].as_bool() {
        Some(true) => println!(
            "{version}\t{}",
            result["value"].as_str().unwrap_or_default()
        ),
        _ => println!("{version}\tunchanged"),
    }
}

/// Whether stderr is a terminal (progress lines only there).
fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// The exit status an answer's envelope means.
fn exit_of(answer: &Value) -> Exit {
    match (answer["code"].as_u64(), answer["message"].as_str()) {
        (Some(200), _) => Exit::Ok,
        (_, Some("NotFound")) => Exit::NotFound,
        (_, Some("CompareFailed")) => Exit::CompareFailed,
        (_, Some("NotMost")) if answer["indeterminate"] == true => Exit::Indeterminate,
        (_, Some("NotMost")) => Exit::NotMost,
        _ => Exit::Failed,
    }
}

/// A failure, in one line on stderr.
fn report(answer: &Value) {
    let message = answer["message"].as_str().unwrap_or("failed");
    match (answer.get("detail"), answer.get("result")) {
        (Some(detail), _) => eprintln!("{message}: {}", detail.as_str().unwrap_or_default()),
        (None, Some(result)) => eprintln!("{message}: {result}"),
        _ => eprintln!("{message}"),
    }
}

/// The member table of `GET /cluster`'s result.
fn print_cluster(result: &Value) {
    println!(
        "members {}  quorum {}  up {}",
        result["members"], result["quorum"], result["up"]
    );
    println!(
        "{:<40} {:<12} {:<10} {:<18} {:>8}",
        "URL", "STATE", "LINK", "NODE", "RTT_MS"
    );
    for node in result["nodes"].as_array().into_iter().flatten() {
        let text = |name: &str| node[name].as_str().unwrap_or("-").to_string();
        let link = match node["self"].as_bool() {
            Some(true) => "self".to_string(),
            _ => text("link"),
        };
        let rtt = node["rtt_us"]
            .as_f64()
            .map_or("-".to_string(), |us| format!("{:.2}", us / 1_000.0));
        println!(
            "{:<40} {:<12} {:<10} {:<18} {:>8}",
            text("url"),
            text("state"),
            link,
            text("node_id"),
            rtt
        );
    }
}

/// `text` for a query parameter: unreserved characters as they are, the rest `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn commands_parse_with_their_flags_anywhere() {
        assert_eq!(
            parse(args("kv set a b --ttl-ms 500 --url http://h:1")).expect("parses"),
            Cli {
                url: Some("http://h:1".into()),
                json: false,
                command: Cmd::Set("a".into(), "b".into(), Some(500)),
            }
        );
        assert_eq!(
            parse(args("--json kv cas k --absent v"))
                .expect("parses")
                .command,
            Cmd::Cas {
                key: "k".into(),
                expect: json!({"absent": true}),
                change: Some("v".into()),
                ttl_ms: None,
            }
        );
        assert_eq!(
            parse(args("kv cas k --expect-version 00ff --delete"))
                .expect("parses")
                .command,
            Cmd::Cas {
                key: "k".into(),
                expect: json!({"version": "00ff"}),
                change: None,
                ttl_ms: None,
            }
        );
        assert_eq!(
            parse(args("kv list p/ --limit 5 --keys-only"))
                .expect("parses")
                .command,
            Cmd::List {
                prefix: "p/".into(),
                limit: Some(5),
                keys_only: true,
                local: false,
            }
        );
        for bad in [
            "kv",
            "kv get",
            "kv get a b",
            "kv cas k v",
            "kv cas k --absent",
            "kv set a b --ttl-ms x",
            "kv get a --wat",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn envelopes_map_to_exit_statuses() {
        let cases = [
            (json!({"code":200,"success":true}), Exit::Ok),
            (
                json!({"code":500,"message":"NotFound","success":false}),
                Exit::NotFound,
            ),
            (
                json!({"code":409,"message":"CompareFailed","success":false}),
                Exit::CompareFailed,
            ),
            (
                json!({"code":500,"message":"NotMost","success":false}),
                Exit::NotMost,
            ),
            (
                json!({"code":500,"message":"NotMost","success":false,"indeterminate":true}),
                Exit::Indeterminate,
            ),
            (
                json!({"code":401,"message":"Unauthorized","success":false}),
                Exit::Failed,
            ),
        ];
        for (answer, exit) in cases {
            assert_eq!(exit_of(&answer), exit, "{answer}");
        }
        assert_eq!(percent_encode("a/b c%"), "a%2Fb%20c%25");
    }
}
