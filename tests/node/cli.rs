//! The command-line client on the real binary (`mostdb kv …`, `mostdb cluster`): against a
//! node started with an API key, every subcommand's output and exit status, the key taken from
//! the environment, `MOSTDB_URL`, and `--json`.

use std::process::{Command, Output};

use crate::support::*;

const KEY_ENV: [(&str, &str); 3] = [
    ("MOSTDB_API_KEY_ENABLE", "true"),
    ("MOSTDB_API_KEY_NAME", "X-MOSTDB-AUTH"),
    ("MOSTDB_API_KEY_VALUE", "cli-secret"),
];

/// `mostdb ARGS` with `env` (and nothing else of this process's `MOSTDB_*`).
fn mostdb(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command.args(args);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MOSTDB_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run mostdb")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_subcommand_answers_with_its_output_and_exit_status() {
    let node = Node::start_with(&KEY_ENV);
    let url = node.url();
    let mut env = KEY_ENV.to_vec();
    env.push(("MOSTDB_URL", url.as_str()));
    let run = |args: &[&str]| mostdb(&env, args);
    let status = |out: &Output| out.status.code().expect("exit status");

    let set = run(&["kv", "set", "user/1", "héllo \"x\""]);
    assert_eq!(status(&set), 0, "{set:?}");
    let get = run(&["kv", "get", "user/1"]);
    assert_eq!(
        (status(&get), stdout(&get)),
        (0, "héllo \"x\"\n".to_string())
    );
    assert_eq!(status(&run(&["kv", "get", "missing"])), 3, "not found");

    // CAS: create-if-absent, then a compare that fails, then one by version.
    let created = run(&["kv", "cas", "lock", "--absent", "me"]);
    assert_eq!(status(&created), 0, "{created:?}");
    let version = stdout(&created).trim().to_string();
    assert_eq!(version.len(), 32, "{version}");
    let taken = run(&["kv", "cas", "lock", "--absent", "you"]);
    assert_eq!(status(&taken), 4, "{taken:?}");
    assert!(String::from_utf8_lossy(&taken.stderr).contains("CompareFailed"));
    let released = run(&[
        "kv",
        "cas",
        "lock",
        "--expect-version",
        &version,
        "--delete",
    ]);
    assert_eq!(status(&released), 0, "{released:?}");
    assert_eq!(status(&run(&["kv", "get", "lock"])), 3);

    // A listing across pages, values and keys only.
    for i in 2..=5 {
        let value = format!("v{i}");
        assert_eq!(
            status(&run(&["kv", "set", &format!("user/{i}"), &value])),
            0
        );
    }
    let listed = run(&["kv", "list", "user/", "--limit", "2"]);
    assert_eq!(status(&listed), 0, "{listed:?}");
    let lines: Vec<String> = stdout(&listed).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[1], "user/2\tv2");
    let keys = run(&["kv", "list", "user/", "--keys-only"]);
    assert_eq!(stdout(&keys).lines().nth(4), Some("user/5"));
    assert_eq!(status(&run(&["kv", "del", "user/5"])), 0);
    assert_eq!(stdout(&run(&["kv", "list", "user/"])).lines().count(), 4);

    // A watch: unchanged at its deadline, then the change it waits for.
    let quiet = run(&["kv", "watch", "user/1", "--wait-ms", "200"]);
    assert_eq!(status(&quiet), 0, "{quiet:?}");
    let (version, word) = stdout(&quiet)
        .trim()
        .split_once('\t')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .expect("version and word");
    assert_eq!(word, "unchanged");
    assert_eq!(status(&run(&["kv", "set", "user/1", "next"])), 0);
    let changed = run(&["kv", "watch", "user/1", "--version", &version]);
    assert!(stdout(&changed).trim().ends_with("\tnext"), "{changed:?}");

    // A prefix watch from a cursor: one answer with --once, the cursor on stderr.
    let first = run(&[
        "kv",
        "watch",
        "--prefix",
        "user/",
        "--once",
        "--wait-ms",
        "1",
    ]);
    assert_eq!(status(&first), 0, "{first:?}");
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    let cursor = stderr
        .trim()
        .strip_prefix("cursor ")
        .expect("the cursor on stderr");
    assert_eq!(status(&run(&["kv", "set", "user/9", "nine"])), 0);
    assert_eq!(status(&run(&["kv", "del", "user/2"])), 0);
    let followed = run(&[
        "kv", "watch", "--prefix", "user/", "--cursor", cursor, "--once",
    ]);
    let lines: Vec<String> = stdout(&followed).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{followed:?}");
    assert!(lines[0].ends_with("\tuser/9\tnine"), "{lines:?}");
    assert!(lines[1].ends_with("\tuser/2\tdeleted"), "{lines:?}");

    // --json prints the node's answer; a TTL goes through.
    let json = run(&["kv", "set", "t", "v", "--ttl-ms", "60000", "--json"]);
    assert_eq!(stdout(&json).trim(), OK);
    let cluster = run(&["cluster"]);
    assert_eq!(status(&cluster), 0, "{cluster:?}");
    assert!(
        stdout(&cluster).contains("quorum 1"),
        "{}",
        stdout(&cluster)
    );

    // --url wins over MOSTDB_URL; a wrong key is refused (1); a bad command line is 2.
    let unreachable = mostdb(&env, &["kv", "get", "x", "--url", "http://127.0.0.1:9"]);
    assert_eq!(status(&unreachable), 1);
    let mut wrong = env.clone();
    wrong[2] = ("MOSTDB_API_KEY_VALUE", "nope");
    let refused = mostdb(&wrong, &["kv", "get", "user/1"]);
    assert_eq!(status(&refused), 1);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthorized"));
    assert_eq!(status(&run(&["kv", "frob"])), 2);
}
