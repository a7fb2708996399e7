//! Unit tests of the registry (each setting runtime or restart-only, rendered back to text its
//! parser takes), runtime changes (all or nothing), redaction, and the settings file's place
//! under the environment and the flags.

use super::*;
use crate::config::{parse, Command, LogLevel, WriteMode};

fn parsed(args: &[&str], env: &[(&str, String)]) -> Result<Settings, ConfigError> {
    let args = args.iter().map(|a| a.to_string());
    let env = env.iter().map(|(n, v)| (n.to_string(), v.clone()));
    match parse(args, env)? {
        Command::Run(settings, _) => Ok(*settings),
        other => panic!("expected Run, got {other:?}"),
    }
}

fn change(name: &str, value: &str) -> Change {
    Change {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// A settings file in a fresh temporary directory.
fn settings_file(text: &str) -> (std::path::PathBuf, String) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mostdb-config-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mostdb.toml");
    std::fs::write(&path, text).unwrap();
    let shown = path.display().to_string();
    (path, shown)
}

#[test]
fn every_setting_renders_to_text_its_parser_takes_back() {
    let s = Settings {
        cluster_urls: vec!["http://127.0.0.1:1".into(), "http://127.0.0.2:1".into()],
        context_path: String::new(),
        admin_token: "t0ken".into(),
        config_file: Some("/etc/mostdb.toml".into()),
        ..Settings::default()
    };
    let live = Live::new(s.clone());
    // A change that names every runtime setting with its own value changes nothing.
    let same: Vec<Change> = SETTINGS
        .iter()
        .filter(|spec| spec.reload == Reload::Runtime)
        .map(|spec| change(spec.env, &registry::render(&s, spec.key)))
        .collect();
    assert_eq!(live.apply(&same), Ok(vec![]));
    assert_eq!(*live.current(), s);
}

#[test]
fn the_registry_says_what_changes_at_runtime() {
    let runtime: Vec<&str> = SETTINGS
        .iter()
        .filter(|spec| spec.reload == Reload::Runtime)
        .map(|spec| spec.env)
        .collect();
    for name in [
        "MOSTDB_LOG_LEVEL",
        "MOSTDB_API_KEY_ENABLE",
        "MOSTDB_API_KEY_NAME",
        "MOSTDB_API_KEY_VALUE",
        "MOSTDB_TIMEOUT_MS",
        "MOSTDB_WRITE_MODE",
        "MOSTDB_MAX_VALUE_BYTES",
        "MOSTDB_ANTI_ENTROPY_INTERVAL_MS",
        "MOSTDB_ADMIN_TOKEN",
    ] {
        assert!(runtime.contains(&name), "{name} is a runtime setting");
    }
    for name in [
        "MOSTDB_STORE_ROOT",
        "MOSTDB_SERVER_PORT",
        "MOSTDB_HOST",
        "MOSTDB_THREADS",
        "MOSTDB_SYNC",
        "MOSTDB_CLUSTER_URLS",
        "MOSTDB_CLUSTER_ID",
        "MOSTDB_CLUSTER_EPOCH",
        "MOSTDB_CLUSTER_SECRET",
        "MOSTDB_TLS_CERT",
    ] {
        assert!(!runtime.contains(&name), "{name} needs a restart");
    }
}

#[test]
fn changes_apply_all_or_nothing() {
    let live = Live::new(Settings::default());
    let view = live.view();
    let refused = live.apply(&[
        change("MOSTDB_LOG_LEVEL", "debug"),
        change("MOSTDB_SERVER_PORT", "1234"),
    ]);
    match refused {
        Err(ChangeError::RestartRequired { names, .. }) => {
            assert_eq!(names, vec!["MOSTDB_SERVER_PORT".to_string()])
        }
        other => panic!("expected RestartRequired, got {other:?}"),
    }
    let bad = live.apply(&[
        change("MOSTDB_LOG_LEVEL", "debug"),
        change("MOSTDB_TIMEOUT_MS", "7"),
    ]);
    let Err(ChangeError::Invalid(err)) = bad else {
        panic!("expected Invalid, got {bad:?}")
    };
    assert!(
        err.to_string().starts_with("MOSTDB_TIMEOUT_MS=\"7\""),
        "{err}"
    );
    let unknown = live.apply(&[change("MOSTDB_NOPE", "1")]);
    assert_eq!(
        unknown,
        Err(ChangeError::Unknown(vec!["MOSTDB_NOPE".into()]))
    );
    assert_eq!(live.generation(), 0, "nothing applied");
    assert_eq!(view.get().log_level, LogLevel::Info);

    let applied = live.apply(&[
        change("MOSTDB_LOG_LEVEL", "debug"),
        change("MOSTDB_WRITE_MODE", "safe"),
    ]);
    assert_eq!(applied, Ok(vec!["MOSTDB_LOG_LEVEL", "MOSTDB_WRITE_MODE"]));
    assert_eq!(live.generation(), 1);
    let now = view.get();
    assert_eq!(
        (now.log_level, now.write_mode),
        (LogLevel::Debug, WriteMode::Safe)
    );
}

#[test]
fn hooks_run_around_a_change_and_a_failing_one_refuses_it() {
    let live = Live::new(Settings::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    live.on_change(move |old, new| log.lock().unwrap().push((old.timeout_ms, new.timeout_ms)));
    live.before_change(|new| match new.timeout_ms {
        9999 => Err("cannot persist".to_string()),
        _ => Ok(()),
    });
    assert_eq!(
        live.apply(&[change("MOSTDB_TIMEOUT_MS", "9999")]),
        Err(ChangeError::Failed("cannot persist".into()))
    );
    assert!(live.apply(&[change("MOSTDB_TIMEOUT_MS", "3000")]).is_ok());
    assert_eq!(*seen.lock().unwrap(), vec![(1500, 3000)]);
    assert_eq!(live.current().timeout_ms, 3000);
}

#[test]
fn the_value_limit_can_shrink_and_grow_at_runtime() {
    let live = Live::new(Settings::default());
    for size in ["1MiB", "16MiB", "32MiB", "512MiB"] {
        let applied = live.apply(&[change("MOSTDB_MAX_VALUE_BYTES", size)]);
        assert!(applied.is_ok(), "{size}: {applied:?}");
    }
    assert_eq!(live.current().max_value_bytes, 512 * 1024 * 1024);
    let over = live.apply(&[change("MOSTDB_MAX_VALUE_BYTES", "513MiB")]);
    assert!(matches!(over, Err(ChangeError::Invalid(_))), "{over:?}");
}

#[test]
fn secrets_are_redacted_and_empty_ones_shown_empty() {
    let s = Settings {
        api_key_value: "hunter2".into(),
        cluster_secret: "s3cret".into(),
        ..Settings::default()
    };
    let states = describe(&s);
    assert_eq!(states.len(), registry::KEY_COUNT);
    let value = |name: &str| {
        states
            .iter()
            .find(|state| state.name == name)
            .map(|state| state.value.clone())
            .unwrap()
    };
    assert_eq!(value("MOSTDB_API_KEY_VALUE"), REDACTED);
    assert_eq!(value("MOSTDB_CLUSTER_SECRET"), REDACTED);
    assert_eq!(value("MOSTDB_ADMIN_TOKEN"), "");
    assert_eq!(value("MOSTDB_LOG_LEVEL"), "INFO");
    assert_eq!(value("MOSTDB_TIMEOUT_MS"), "1500");
    let shown = format!("{states:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("s3cret"));
}

#[test]
fn the_file_is_under_the_environment_which_is_under_the_flags() {
    let (path, shown) = settings_file(
        "MOSTDB_LOG_LEVEL = \"debug\"\nMOSTDB_TIMEOUT_MS = 2000\n\
         MOSTDB_WRITE_MODE = \"safe\"\nMOSTDB_API_KEY_ENABLE = true\n",
    );
    let file = ("MOSTDB_CONFIG_FILE", shown.clone());
    let s = parsed(&[], std::slice::from_ref(&file)).unwrap();
    assert_eq!(s.log_level, LogLevel::Debug);
    assert_eq!(s.timeout_ms, 2000);
    assert_eq!(s.write_mode, WriteMode::Safe);
    assert!(s.api_key_enable);
    assert_eq!(s.config_file.as_deref(), Some(path.as_path()));
    let env_timeout = ("MOSTDB_TIMEOUT_MS", "3000".to_string());
    let s = parsed(&[], &[file.clone(), env_timeout.clone()]).unwrap();
    assert_eq!((s.timeout_ms, s.log_level), (3000, LogLevel::Debug));
    let s = parsed(&["--timeout-ms", "4000"], &[file, env_timeout]).unwrap();
    assert_eq!(s.timeout_ms, 4000);
    // The flag naming the file works too.
    let s = parsed(&["--config-file", &shown], &[]).unwrap();
    assert_eq!(s.timeout_ms, 2000);
}

#[test]
fn bad_files_are_refused_on_one_line_naming_the_file_or_the_setting() {
    for (text, expect) in [
        ("MOSTDB_TIMEOUT_MS = 7\n", "MOSTDB_TIMEOUT_MS (in "),
        ("MOSTDB_LOG_LEVEL = [1, 2]\n", "expected a string"),
        ("not toml at all [[[\n", "settings file "),
        ("[section]\nMOSTDB_LOG_LEVEL = \"x\"\n", "settings file "),
    ] {
        let (_, shown) = settings_file(text);
        let err = parsed(&[], &[("MOSTDB_CONFIG_FILE", shown)]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expect), "{text:?}: {message}");
        assert!(!message.contains('\n'), "{message}");
    }
    let err = parsed(&[], &[("MOSTDB_CONFIG_FILE", "/nonexistent/x.toml".into())]);
    assert!(matches!(err, Err(ConfigError::File { .. })), "{err:?}");
}

#[test]
fn a_reload_applies_runtime_changes_and_names_the_restart_only_ones() {
    let before = Settings::default();
    let mut after = before.clone();
    after.log_level = LogLevel::Warn;
    after.port = 7777;
    let live = Live::new(before.clone());
    let (applied, ignored) = live.reload(&before, &after).unwrap();
    assert_eq!(applied, vec!["MOSTDB_LOG_LEVEL"]);
    assert_eq!(ignored, vec!["MOSTDB_SERVER_PORT"]);
    assert_eq!(live.current().log_level, LogLevel::Warn);
    assert_eq!(live.current().port, before.port);
}
