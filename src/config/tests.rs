//! Unit tests of `config`: every setting's default, good values and each bad value's message;
//! lists, the misspelt alias, flags over the environment, warnings, help and version.

use super::*;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Settings, Vec<String>) {
    match parse(strings(args), pairs(env)) {
        Ok(Command::Run(settings, warnings)) => (*settings, warnings),
        other => panic!("expected Run for {args:?} {env:?}, got {other:?}"),
    }
}

fn settings(args: &[&str], env: &[(&str, &str)]) -> Settings {
    run(args, env).0
}

fn error(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
    match parse(strings(args), pairs(env)) {
        Err(error) => error,
        other => panic!("expected an error for {args:?} {env:?}, got {other:?}"),
    }
}

/// The message for one environment variable's bad value.
fn env_message(name: &str, value: &str) -> String {
    let message = error(&[], &[(name, value)]).to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[test]
fn defaults_are_the_originals() {
    let (settings, warnings) = run(&[], &[]);
    assert_eq!(settings.store_root, PathBuf::from("/opt/mostdb"));
    assert_eq!(settings.host, "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(settings.port, 5379);
    assert_eq!(settings.server_url, None);
    assert!(settings.cluster_urls.is_empty());
    assert_eq!(settings.context_path, "/mostdb");
    assert_eq!(settings.log_level, LogLevel::Info);
    assert!(!settings.api_key_enable);
    assert_eq!(settings.api_key_name, "X-MOSTDB-AUTH");
    assert_eq!(settings.api_key_value, "mostdb");
    assert_eq!(settings.threads, default_threads());
    assert_eq!(settings.sync, SyncMode::Os);
    assert_eq!(settings.max_value_bytes, limits::VALUE_BYTES_MAX_DEFAULT);
    assert_eq!(
        settings.body_bytes_max(),
        limits::VALUE_BYTES_MAX_DEFAULT + limits::BODY_OVERHEAD_BYTES
    );
    assert_eq!(settings.max_connections, limits::CONNECTIONS_MAX_DEFAULT);
    assert_eq!(
        settings.max_connections_per_source,
        limits::CONNECTIONS_PER_SOURCE_MAX_DEFAULT
    );
    assert_eq!(
        settings.disk_reserve_bytes,
        limits::DISK_RESERVE_BYTES_DEFAULT
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(Settings::default(), settings);
}

#[test]
fn hardening_settings_take_their_forms() {
    let s = settings(
        &[],
        &[
            ("MOSTDB_DISK_RESERVE_BYTES", "1GiB"),
            ("MOSTDB_MAX_CONNECTIONS", "100"),
            ("MOSTDB_MAX_CONNECTIONS_PER_SOURCE", "10"),
        ],
    );
    assert_eq!(s.disk_reserve_bytes, 1 << 30);
    assert_eq!((s.max_connections, s.max_connections_per_source), (100, 10));
    assert_eq!(
        settings(&[], &[("MOSTDB_DISK_RESERVE_BYTES", "0")]).disk_reserve_bytes,
        0
    );
    for (name, bad) in [
        ("MOSTDB_DISK_RESERVE_BYTES", "lots"),
        ("MOSTDB_MAX_CONNECTIONS", "0"),
        ("MOSTDB_MAX_CONNECTIONS_PER_SOURCE", "-1"),
    ] {
        assert!(env_message(name, bad).starts_with(name), "{name}={bad}");
    }
}

#[test]
fn default_threads_is_the_cores_within_bounds_and_one_on_a_small_machine() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(default_threads(), threads_for(cores));
    assert!((1..=limits::THREADS_MAX).contains(&default_threads()));
    assert_eq!(threads_for(1), 1);
    assert_eq!(threads_for(2), 1);
    assert_eq!(threads_for(3), 3);
    assert_eq!(threads_for(8), 8);
    assert_eq!(threads_for(100_000), limits::THREADS_MAX);
}

#[test]
fn empty_env_values_count_as_unset() {
    let s = settings(
        &[],
        &[
            ("MOSTDB_SERVER_PORT", ""),
            ("MOSTDB_STORE_ROOT", "  "),
            ("MOSTDB_LOG_LEVEL", ""),
        ],
    );
    assert_eq!(s.port, 5379);
    assert_eq!(s.store_root, PathBuf::from("/opt/mostdb"));
    assert_eq!(s.log_level, LogLevel::Info);
}

#[test]
fn store_root() {
    assert_eq!(
        settings(&[], &[("MOSTDB_STORE_ROOT", " /data/db ")]).store_root,
        PathBuf::from("/data/db")
    );
    assert_eq!(
        settings(&[], &[("MOSTDB_STORE_ROOT", "rel/dir")]).store_root,
        PathBuf::from("rel/dir")
    );
    assert_eq!(
        error(&["--store-root="], &[]).to_string(),
        r#"--store-root="": expected a directory path"#
    );
}

#[test]
fn port() {
    assert_eq!(settings(&[], &[("MOSTDB_SERVER_PORT", "1")]).port, 1);
    assert_eq!(
        settings(&[], &[("MOSTDB_SERVER_PORT", "65535")]).port,
        65535
    );
    assert_eq!(
        env_message("MOSTDB_SERVER_PORT", "abc"),
        r#"MOSTDB_SERVER_PORT="abc": expected a port number 1-65535, or 0 for any free port"#
    );
    assert_eq!(settings(&[], &[("MOSTDB_SERVER_PORT", "0")]).port, 0);
    for bad in ["00", "65536", "-1", "+80", "80 80", "5379x"] {
        let message = env_message("MOSTDB_SERVER_PORT", bad);
        assert!(
            message.ends_with("expected a port number 1-65535, or 0 for any free port"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn host() {
    assert_eq!(
        settings(&[], &[("MOSTDB_HOST", "127.0.0.11")]).host,
        "127.0.0.11".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        settings(&[], &[("MOSTDB_HOST", "::1")]).host,
        "::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        settings(&[], &[("MOSTDB_HOST", "[::]")]).host,
        "::".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        env_message("MOSTDB_HOST", "localhost"),
        r#"MOSTDB_HOST="localhost": expected an IP address to listen on, such as 0.0.0.0, 127.0.0.1 or ::"#
    );
    env_message("MOSTDB_HOST", "1.2.3");
}

#[test]
fn server_url() {
    let s = settings(&[], &[("MOSTDB_SERVER_URL", "http://127.0.0.1:5381/")]);
    assert_eq!(s.server_url.as_deref(), Some("http://127.0.0.1:5381/"));
    assert_eq!(
        env_message("MOSTDB_SERVER_URL", "127.0.0.1:5381"),
        r#"MOSTDB_SERVER_URL="127.0.0.1:5381": expected a URL like http://host:port (must start with http://)"#
    );
    assert!(env_message("MOSTDB_SERVER_URL", "http://a").contains("missing :port"));
    // An explicitly empty flag clears a value from the environment.
    let s = settings(
        &["--server-url", ""],
        &[("MOSTDB_SERVER_URL", "http://a:1")],
    );
    assert_eq!(s.server_url, None);
}

#[test]
fn cluster_urls_split_on_semicolons_and_commas() {
    let expected = strings(&[
        "http://10.0.0.1:5379",
        "http://10.0.0.2:5379/",
        "http://node-3:5379",
    ]);
    for list in [
        "http://10.0.0.1:5379;http://10.0.0.2:5379/;http://node-3:5379",
        "http://10.0.0.1:5379,http://10.0.0.2:5379/,http://node-3:5379",
        " http://10.0.0.1:5379 ; ;http://10.0.0.2:5379/,, http://node-3:5379 ;",
    ] {
        assert_eq!(
            settings(&[], &[("MOSTDB_CLUSTER_URLS", list)]).cluster_urls,
            expected,
            "{list}"
        );
    }
    let s = settings(
        &[],
        &[(
            "MOSTDB_CLUSTER_URLS",
            "HTTP://[::1]:5379;http://mostdb_2:5379",
        )],
    );
    assert_eq!(
        s.cluster_urls,
        strings(&["HTTP://[::1]:5379", "http://mostdb_2:5379"])
    );
    assert!(settings(&[], &[("MOSTDB_CLUSTER_URLS", " ; , ")])
        .cluster_urls
        .is_empty());
}

#[test]
fn cluster_urls_name_the_bad_item() {
    assert_eq!(
        env_message("MOSTDB_CLUSTER_URLS", "http://a:1;https://b:2"),
        r#"MOSTDB_CLUSTER_URLS="http://a:1;https://b:2": item 2 "https://b:2" is not a URL like http://host:port (write http://; with MOSTDB_TLS_CERT set, peers are dialled over TLS)"#
    );
    let cases = [
        ("http://a:1,b:2", 2, "must start with http://"),
        ("http://a", 1, "missing :port"),
        ("http://a:1;http://b:0", 2, "bad port"),
        ("http://a:1;http://b:65536", 2, "bad port"),
        ("http://a:1/mostdb", 1, "no path after host:port"),
        ("http://a:1?x", 1, "no path after host:port"),
        ("http://a b:1", 1, "bad host"),
        ("http://:1", 1, "bad host"),
        ("http://a..b:1", 1, "bad host"),
        ("http://::1:5379", 1, "an IPv6 host must be in brackets"),
        ("http://[::1:5379", 1, "unclosed ["),
        ("http://[zz]:1", 1, "bad IPv6 address"),
        ("http://[::1]", 1, "missing :port"),
    ];
    for (list, index, problem) in cases {
        match error(&[], &[("MOSTDB_CLUSTER_URLS", list)]) {
            ConfigError::InvalidItem {
                index: got,
                problem: message,
                ..
            } => {
                assert_eq!(got, index, "{list}");
                assert!(message.contains(problem), "{list}: {message}");
            }
            other => panic!("{list}: {other:?}"),
        }
    }
}

#[test]
fn cluster_urls_must_not_repeat_a_node() {
    assert_eq!(
        env_message("MOSTDB_CLUSTER_URLS", "http://a:1;http://b:2;HTTP://A:1/"),
        r#"MOSTDB_CLUSTER_URLS="http://a:1;http://b:2;HTTP://A:1/": item 3 "HTTP://A:1/" repeats item 1"#
    );
}

#[test]
fn context_path_is_normalised() {
    let cases = [
        ("/kv", "/kv"),
        ("/kv/", "/kv"),
        ("//a//b/", "/a/b"),
        ("/", ""),
        ("/v1/mostdb", "/v1/mostdb"),
    ];
    for (given, expected) in cases {
        assert_eq!(
            settings(&[], &[("MOSTDB_CONTEXT_PATH", given)]).context_path,
            expected,
            "{given}"
        );
    }
    let expected = "expected a path starting with / such as /mostdb, of letters, digits and \
                    -._~!$&'()*+,;=:@ (no spaces, ? or #), without . or .. segments";
    assert_eq!(
        env_message("MOSTDB_CONTEXT_PATH", "kv"),
        format!(r#"MOSTDB_CONTEXT_PATH="kv": {expected}"#)
    );
    for bad in ["/a b", "/a?x", "/a#x", "/%20", "/../x", "/a/.", "/é"] {
        assert!(
            env_message("MOSTDB_CONTEXT_PATH", bad).ends_with(expected),
            "{bad}"
        );
    }
}

#[test]
fn log_level() {
    let cases = [
        ("TRACE", LogLevel::Trace),
        ("debug", LogLevel::Debug),
        ("Info", LogLevel::Info),
        ("WARN", LogLevel::Warn),
        ("warning", LogLevel::Warn),
        ("ERROR", LogLevel::Error),
        ("fatal", LogLevel::Error),
    ];
    for (given, expected) in cases {
        assert_eq!(
            settings(&[], &[("MOSTDB_LOG_LEVEL", given)]).log_level,
            expected,
            "{given}"
        );
        assert_eq!(LogLevel::from_name(given), Some(expected));
    }
    assert_eq!(
        env_message("MOSTDB_LOG_LEVEL", "verbose"),
        r#"MOSTDB_LOG_LEVEL="verbose": expected one of TRACE, DEBUG, INFO, WARN, ERROR (any case)"#
    );
    assert_eq!(LogLevel::from_name("verbose"), None);
}

#[test]
fn log_level_filter_strings() {
    let levels = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];
    let names: Vec<&str> = levels.iter().map(LogLevel::as_filter_str).collect();
    assert_eq!(names, ["trace", "debug", "info", "warn", "error"]);
}

#[test]
fn api_key_enable() {
    for (given, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("False", false),
        ("0", false),
    ] {
        let s = settings(
            &[],
            &[
                ("MOSTDB_API_KEY_ENABLE", given),
                ("MOSTDB_API_KEY_VALUE", "s3cret"),
            ],
        );
        assert_eq!(s.api_key_enable, expected, "{given}");
    }
    assert_eq!(
        env_message("MOSTDB_API_KEY_ENABLE", "yes"),
        r#"MOSTDB_API_KEY_ENABLE="yes": expected true or false (or 1 or 0)"#
    );
}

#[test]
fn api_key_name() {
    assert_eq!(
        settings(&[], &[("MOSTDB_API_KEY_NAME", "X-Api-Key")]).api_key_name,
        "X-Api-Key"
    );
    for bad in ["X Key", "X:Key", "Content-Length", "host", "X-Ké"] {
        let message = env_message("MOSTDB_API_KEY_NAME", bad);
        assert!(
            message.contains("expected a header name"),
            "{bad}: {message}"
        );
    }
    assert!(error(&["--api-key-name="], &[])
        .to_string()
        .starts_with(r#"--api-key-name="": expected a header name"#));
}

#[test]
fn api_key_value_and_the_vaule_alias() {
    assert_eq!(
        settings(&[], &[("MOSTDB_API_KEY_VALUE", "s3cret")]).api_key_value,
        "s3cret"
    );
    assert_eq!(
        settings(&[], &[("MOSTDB_API_KEY_VAULE", "s3cret")]).api_key_value,
        "s3cret"
    );
    let both_same = [
        ("MOSTDB_API_KEY_VALUE", "s3cret"),
        ("MOSTDB_API_KEY_VAULE", "s3cret"),
    ];
    assert_eq!(settings(&[], &both_same).api_key_value, "s3cret");
    let both_differ = [
        ("MOSTDB_API_KEY_VAULE", "old"),
        ("MOSTDB_API_KEY_VALUE", "new"),
    ];
    assert_eq!(
        error(&[], &both_differ).to_string(),
        "MOSTDB_API_KEY_VALUE and MOSTDB_API_KEY_VAULE are both set and differ: set only MOSTDB_API_KEY_VALUE"
    );
    // The flag wins over both names, so their disagreement no longer matters.
    assert_eq!(
        settings(&["--api-key-value", "flag"], &both_differ).api_key_value,
        "flag"
    );
    // The alias is a known name: no warning.
    assert!(run(&[], &[("MOSTDB_API_KEY_VAULE", "s3cret")]).1.is_empty());
}

#[test]
fn a_bad_api_key_value_is_not_repeated() {
    let message = env_message("MOSTDB_API_KEY_VALUE", "sec\u{7}ret");
    assert_eq!(
        message,
        "MOSTDB_API_KEY_VALUE (value not shown): expected a non-empty key of visible ASCII characters"
    );
    assert!(!error(&["--api-key-value=pässword"], &[])
        .to_string()
        .contains("pässword"));
}

#[test]
fn the_well_known_api_key_gives_a_warning_when_enabled() {
    let (_, warnings) = run(&[], &[("MOSTDB_API_KEY_ENABLE", "true")]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("well-known default \"mostdb\""),
        "{}",
        warnings[0]
    );
    assert!(run(
        &[],
        &[
            ("MOSTDB_API_KEY_ENABLE", "true"),
            ("MOSTDB_API_KEY_VALUE", "s3cret")
        ]
    )
    .1
    .is_empty());
    assert!(run(&[], &[("MOSTDB_API_KEY_ENABLE", "false")]).1.is_empty());
}

#[test]
fn threads() {
    assert_eq!(settings(&[], &[("MOSTDB_THREADS", "1")]).threads, 1);
    let max = limits::THREADS_MAX.to_string();
    assert_eq!(
        settings(&[], &[("MOSTDB_THREADS", max.as_str())]).threads,
        limits::THREADS_MAX
    );
    let too_many = (limits::THREADS_MAX + 1).to_string();
    for bad in ["0", too_many.as_str(), "many", "-2"] {
        assert_eq!(
            env_message("MOSTDB_THREADS", bad),
            format!(
                "MOSTDB_THREADS={bad:?}: expected a number of threads from 1 to {}",
                limits::THREADS_MAX
            )
        );
    }
}

#[test]
fn sync_mode() {
    assert_eq!(settings(&[], &[("MOSTDB_SYNC", "os")]).sync, SyncMode::Os);
    assert_eq!(
        settings(&[], &[("MOSTDB_SYNC", "ALWAYS")]).sync,
        SyncMode::Always
    );
    assert_eq!(
        settings(&[], &[("MOSTDB_SYNC", "Always")]).sync.as_str(),
        "always"
    );
    assert_eq!(
        env_message("MOSTDB_SYNC", "fsync"),
        r#"MOSTDB_SYNC="fsync": expected os or always"#
    );
}

#[test]
fn max_value_bytes_takes_sizes_with_suffixes() {
    let cases = [
        ("16777216", 16 << 20),
        ("16MiB", 16 << 20),
        ("16M", 16 << 20),
        ("16mib", 16 << 20),
        ("512KiB", 512 << 10),
        ("512 K", 512 << 10),
        ("1KiB", 1024),
        ("1024b", 1024),
        ("512MiB", 512 << 20),
        ("500MB", 500_000_000),
        ("10kb", 10_000),
    ];
    for (given, expected) in cases {
        assert_eq!(
            settings(&[], &[("MOSTDB_MAX_VALUE_BYTES", given)]).max_value_bytes,
            expected,
            "{given}"
        );
    }
    let s = settings(&["--max-value-bytes", "1MiB"], &[]);
    assert_eq!(s.body_bytes_max(), (1 << 20) + limits::BODY_OVERHEAD_BYTES);
}

#[test]
fn max_value_bytes_rejects_bad_sizes() {
    let expected = format!(
        "expected a size from {} to {} bytes, e.g. 16MiB, 512KiB or 16777216",
        limits::VALUE_BYTES_MAX_LOWEST,
        limits::VALUE_BYTES_MAX_HIGHEST
    );
    assert_eq!(
        env_message("MOSTDB_MAX_VALUE_BYTES", "abc"),
        format!(r#"MOSTDB_MAX_VALUE_BYTES="abc": {expected}"#)
    );
    for bad in [
        "1023",
        "513MiB",
        "1GB",
        "1G",
        "16XB",
        "MiB",
        "-1",
        "1.5M",
        "99999999999999999999G",
        "18446744073709551615G",
    ] {
        assert!(
            env_message("MOSTDB_MAX_VALUE_BYTES", bad).ends_with(&expected),
            "{bad}"
        );
    }
}

#[test]
fn every_flag_sets_its_setting_and_wins_over_the_env() {
    let env = [
        ("MOSTDB_STORE_ROOT", "/env"),
        ("MOSTDB_SERVER_PORT", "1111"),
        ("MOSTDB_HOST", "10.0.0.1"),
        ("MOSTDB_LOG_LEVEL", "ERROR"),
        ("MOSTDB_API_KEY_VALUE", "env-key"),
    ];
    let args = [
        "--store-root",
        "/flag",
        "--port=2222",
        "--host",
        "127.0.0.1",
        "--server-url=http://127.0.0.1:2222",
        "--cluster-urls",
        "http://127.0.0.1:2222,http://127.0.0.2:2222",
        "--context-path=/kv/",
        "--log-level",
        "debug",
        "--threads",
        "3",
        "--sync=always",
        "--max-value-bytes",
        "2MiB",
        "--api-key-enable",
        "1",
        "--api-key-name",
        "X-Key",
        "--api-key-value=a=b",
    ];
    let s = settings(&args, &env);
    assert_eq!(s.store_root, PathBuf::from("/flag"));
    assert_eq!(s.port, 2222);
    assert_eq!(s.host, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(s.server_url.as_deref(), Some("http://127.0.0.1:2222"));
    assert_eq!(
        s.cluster_urls,
        strings(&["http://127.0.0.1:2222", "http://127.0.0.2:2222"])
    );
    assert_eq!(s.context_path, "/kv");
    assert_eq!(s.log_level, LogLevel::Debug);
    assert_eq!(s.threads, 3);
    assert_eq!(s.sync, SyncMode::Always);
    assert_eq!(s.max_value_bytes, 2 << 20);
    assert!(s.api_key_enable);
    assert_eq!(s.api_key_name, "X-Key");
    assert_eq!(s.api_key_value, "a=b");
}

#[test]
fn flag_spellings() {
    assert_eq!(settings(&["--server-port", "80"], &[]).port, 80);
    assert_eq!(
        settings(&["--port", "80", "--port=81"], &[]).port,
        81,
        "the last one wins"
    );
    assert_eq!(
        error(&["--port", "abc"], &[]).to_string(),
        r#"--port="abc": expected a port number 1-65535, or 0 for any free port"#
    );
}

#[test]
fn flag_errors() {
    let message = |args: &[&str]| error(args, &[]).to_string();
    assert_eq!(
        message(&["--port"]),
        "--port needs a value, as `--port VALUE` or `--port=VALUE`"
    );
    assert_eq!(
        message(&["--port", "--host", "::"]),
        "--port needs a value, as `--port VALUE` or `--port=VALUE`"
    );
    assert_eq!(
        message(&["--prot", "1"]),
        r#"unknown flag "--prot" (did you mean --port?); see --help"#
    );
    assert_eq!(
        message(&["-threads=2"]),
        r#"unknown flag "-threads" (did you mean --threads?); see --help"#
    );
    assert_eq!(
        message(&["--bogus-thing"]),
        r#"unknown flag "--bogus-thing"; see --help"#
    );
    assert_eq!(
        message(&["stop"]),
        r#"unexpected argument "stop" (no daemon mode: run mostdb under a service manager); see --help"#
    );
    assert_eq!(
        message(&["5379"]),
        r#"unexpected argument "5379"; see --help"#
    );
}

#[test]
fn unknown_env_names_give_warnings() {
    let env = [
        ("MOSTDB_SERVER_PROT", "1"),
        ("mostdb_threads", "2"),
        ("MOSTDB_FOO", "x"),
        ("MOSTDB_API_KEY_VALEU", "k"),
        ("GLC_ENABLE", "false"),
        ("PATH", "/bin"),
    ];
    let (settings, warnings) = run(&[], &env);
    assert_eq!(
        warnings,
        [
            "unknown setting MOSTDB_SERVER_PROT ignored (did you mean MOSTDB_SERVER_PORT?)",
            "unknown setting mostdb_threads ignored (did you mean MOSTDB_THREADS?)",
            "unknown setting MOSTDB_FOO ignored",
            "unknown setting MOSTDB_API_KEY_VALEU ignored (did you mean MOSTDB_API_KEY_VALUE?)",
        ]
    );
    assert_eq!(settings.port, 5379, "an unknown name sets nothing");
}

#[test]
fn help_lists_every_setting() {
    for flag in ["--help", "-h"] {
        let Ok(Command::Help(text)) = parse(strings(&[flag]), Vec::new()) else {
            panic!("{flag} gives no help");
        };
        for spec in &SETTINGS {
            assert!(text.contains(spec.env), "{} missing", spec.env);
            for flag in spec.flags {
                assert!(text.contains(flag), "{flag} missing");
            }
            if let Some(default) = spec.default.filter(|d| !d.is_empty()) {
                assert!(
                    text.contains(&format!("default {default}")),
                    "default of {} missing",
                    spec.env
                );
            }
        }
        assert!(text.contains("MOSTDB_API_KEY_VAULE"));
        // The help states the size bounds in words: they must be the ones enforced.
        assert!(text.contains("from 1KiB to 512MiB"));
        assert_eq!(
            (
                limits::VALUE_BYTES_MAX_LOWEST,
                limits::VALUE_BYTES_MAX_HIGHEST
            ),
            (1 << 10, 512 << 20)
        );
        assert!(text.contains(&format!("the number of cores ({} here)", default_threads())));
    }
}

#[test]
fn help_and_version_win_over_bad_values() {
    let bad_env = pairs(&[("MOSTDB_SERVER_PORT", "abc")]);
    assert!(matches!(
        parse(strings(&["--port", "x", "--help"]), bad_env.clone()),
        Ok(Command::Help(_))
    ));
    assert!(matches!(
        parse(strings(&["version"]), bad_env),
        Ok(Command::Version(_))
    ));
}

#[test]
fn version_spellings() {
    let expected = format!(
        "mostdb {} (commit {COMMIT}, built {BUILD_DATE})",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(BUILD_DATE.len(), "2026-11-30".len());
    for spelling in ["--version", "-v", "-version", "version", "-V"] {
        match parse(strings(&[spelling]), Vec::new()) {
            Ok(Command::Version(text)) => assert_eq!(text, expected, "{spelling}"),
            other => panic!("{spelling}: {other:?}"),
        }
    }
}

#[test]
fn messages_stay_on_one_line() {
    let message = env_message("MOSTDB_SERVER_PORT", "53\n79");
    assert_eq!(
        message,
        r#"MOSTDB_SERVER_PORT="53\n79": expected a port number 1-65535, or 0 for any free port"#
    );
}

#[test]
fn edit_distance_counts_typos() {
    assert_eq!(values::edit_distance("PORT", "PORT"), 0);
    assert_eq!(values::edit_distance("PROT", "PORT"), 1);
    assert_eq!(values::edit_distance("PRT", "PORT"), 1);
    assert_eq!(values::edit_distance("FOO", "HOST"), 3);
    assert_eq!(values::edit_distance("", "AB"), 2);
}

#[test]
fn max_clock_skew_has_its_default_and_bounds() {
    let s = settings(&[], &[]);
    assert_eq!(
        s.max_clock_skew_ms,
        crate::limits::MAX_CLOCK_SKEW_MS_DEFAULT
    );
    let s = settings(&["--max-clock-skew-ms", "5000"], &[]);
    assert_eq!(s.max_clock_skew_ms, 5_000);
    let s = settings(&[], &[("MOSTDB_MAX_CLOCK_SKEW_MS", "86400000")]);
    assert_eq!(s.max_clock_skew_ms, 86_400_000);
    for bad in ["4999", "86400001", "-1", "1m"] {
        assert_eq!(
            env_message("MOSTDB_MAX_CLOCK_SKEW_MS", bad),
            format!(r#"MOSTDB_MAX_CLOCK_SKEW_MS="{bad}": expected milliseconds, 5000-86400000"#)
        );
    }
}

#[test]
fn cluster_settings_have_defaults_and_bounds() {
    let s = settings(&[], &[]);
    assert_eq!((s.timeout_ms, s.write_mode), (1500, WriteMode::Fast));
    assert_eq!((s.cluster_id.as_str(), s.cluster_epoch), ("mostdb", 1));
    assert_eq!(s.cluster_secret, "", "no key, no secret: an open cluster");
    let s = settings(
        &["--write-mode", "SAFE"],
        &[
            ("MOSTDB_TIMEOUT_MS", "250"),
            ("MOSTDB_CLUSTER_ID", "prod-1"),
            ("MOSTDB_CLUSTER_EPOCH", "7"),
        ],
    );
    assert_eq!((s.timeout_ms, s.write_mode), (250, WriteMode::Safe));
    assert_eq!((s.cluster_id.as_str(), s.cluster_epoch), ("prod-1", 7));
    assert_eq!(
        env_message("MOSTDB_TIMEOUT_MS", "10"),
        r#"MOSTDB_TIMEOUT_MS="10": expected milliseconds, 50-60000"#
    );
    assert!(env_message("MOSTDB_WRITE_MODE", "quick").contains("fast or safe"));
    assert!(env_message("MOSTDB_CLUSTER_ID", "a b").contains("letters, digits"));
    assert!(env_message("MOSTDB_CLUSTER_EPOCH", "0").contains("1 or more"));
}

#[test]
fn cluster_secret_is_given_never_derived_from_the_api_key() {
    let s = settings(&[], &[("MOSTDB_CLUSTER_SECRET", "s3cret")]);
    assert_eq!(s.cluster_secret, "s3cret");
    let key = [
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_VALUE", "k1"),
    ];
    assert_eq!(
        settings(&[], &key).cluster_secret,
        "",
        "clients are not peers"
    );
    let both = settings(&[], &[key[0], key[1], ("MOSTDB_CLUSTER_SECRET", "s3cret")]);
    assert_eq!(both.cluster_secret, "s3cret");
    let message = error(&[], &[("MOSTDB_CLUSTER_SECRET", "bad\u{7}")]).to_string();
    assert!(
        message.starts_with("MOSTDB_CLUSTER_SECRET") && !message.contains('\u{7}'),
        "{message}"
    );
}

#[test]
fn test_switches_are_settings_from_the_environment_only() {
    let (s, warnings) = run(
        &[],
        &[("MOSTDB_ANTI_ENTROPY", "off"), ("MOSTDB_HINTS", " 0 ")],
    );
    assert!(warnings.is_empty(), "not unknown settings: {warnings:?}");
    let want = TestSwitches {
        anti_entropy: false,
        hints: false,
        recovery: true,
    };
    assert_eq!(s.test_switches, want);
    assert_eq!(
        s.test_switches.off(),
        ["MOSTDB_ANTI_ENTROPY", "MOSTDB_HINTS"]
    );
    assert_eq!(settings(&[], &[]).test_switches, TestSwitches::default());
    let on = settings(&[], &[("MOSTDB_RECOVERY", "on"), ("MOSTDB_HINTS", "")]);
    assert_eq!(
        on.test_switches,
        TestSwitches::default(),
        "only off/0/false switch off"
    );
    let off = settings(&[], &[("MOSTDB_RECOVERY", "false")]);
    assert!(!off.test_switches.recovery);
    assert!(matches!(
        parse(strings(&["--hints", "off"]), pairs(&[])),
        Err(ConfigError::UnknownFlag { .. })
    ));
}

#[test]
fn tls_is_off_by_default_and_on_with_a_certificate_and_its_key() {
    let s = settings(&[], &[]);
    assert_eq!((s.tls_cert, s.tls_key, s.tls_ca), (None, None, None));
    assert!(!settings(&[], &[]).tls());
    let s = settings(
        &["--tls-cert", "/c.pem", "--tls-key=/k.pem"],
        &[("MOSTDB_TLS_CERT", "/env.pem")],
    );
    assert_eq!(s.tls_cert, Some(PathBuf::from("/c.pem")));
    assert_eq!(s.tls_key, Some(PathBuf::from("/k.pem")));
    assert!(s.tls() && !s.mtls());
    let env = [
        ("MOSTDB_TLS_CERT", "/c.pem"),
        ("MOSTDB_TLS_KEY", "/k.pem"),
        ("MOSTDB_TLS_CA", "/ca.pem"),
        ("MOSTDB_CLUSTER_URLS", "http://a:1;http://b:1;http://c:1"),
    ];
    let s = settings(&[], &env);
    assert_eq!(s.tls_ca, Some(PathBuf::from("/ca.pem")));
    assert!(s.tls() && s.mtls());
}

#[test]
fn tls_settings_that_need_each_other_are_refused() {
    let message = env_message("MOSTDB_TLS_CERT", "/c.pem");
    assert!(
        message.starts_with(r#"MOSTDB_TLS_CERT="/c.pem": expected MOSTDB_TLS_KEY"#),
        "{message}"
    );
    let message = env_message("MOSTDB_TLS_KEY", "/k.pem");
    assert!(
        message.starts_with(r#"MOSTDB_TLS_KEY="/k.pem": expected MOSTDB_TLS_CERT"#),
        "{message}"
    );
    let message = env_message("MOSTDB_TLS_CA", "/ca.pem");
    assert!(
        message.starts_with(r#"MOSTDB_TLS_CA="/ca.pem": expected MOSTDB_TLS_CERT"#),
        "{message}"
    );
    // Peers are dialled over TLS: their certificates need a CA to be checked against.
    let env = [
        ("MOSTDB_TLS_CERT", "/c.pem"),
        ("MOSTDB_TLS_KEY", "/k.pem"),
        ("MOSTDB_CLUSTER_URLS", "http://a:1;http://b:1"),
    ];
    let message = error(&[], &env).to_string();
    assert!(message.contains("MOSTDB_TLS_CA"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn the_audit_log_is_off_by_default_and_hashes_keys_only_with_a_secret() {
    let s = settings(&[], &[]);
    assert_eq!(
        (
            s.audit_log,
            s.audit_keys_hashed,
            s.audit_strict,
            s.audit_max_bytes
        ),
        (None, false, false, limits::AUDIT_FILE_BYTES_DEFAULT)
    );
    let s = settings(
        &["--audit-log", "/var/log/mostdb/audit.log"],
        &[
            ("MOSTDB_AUDIT_KEYS", "HASH"),
            ("MOSTDB_CLUSTER_SECRET", "s3cret"),
            ("MOSTDB_AUDIT_STRICT", "true"),
            ("MOSTDB_AUDIT_MAX_BYTES", "1MiB"),
        ],
    );
    assert_eq!(
        s.audit_log,
        Some(PathBuf::from("/var/log/mostdb/audit.log"))
    );
    assert!(s.audit_keys_hashed && s.audit_strict);
    assert_eq!(s.audit_max_bytes, 1024 * 1024);
    let message = error(&[], &[("MOSTDB_AUDIT_KEYS", "hash")]).to_string();
    assert!(message.contains("MOSTDB_CLUSTER_SECRET"), "{message}");
    assert!(env_message("MOSTDB_AUDIT_KEYS", "sha1").contains("clear or hash"));
    assert!(env_message("MOSTDB_AUDIT_MAX_BYTES", "1KiB").contains("64KiB"));
}
