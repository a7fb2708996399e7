//! The dashboard in a real browser: a three-node cluster, node 0's `GET /dashboard` opened in
//! headless Chromium, which runs the page's script (under its Content-Security-Policy) against
//! the node's own endpoints. The rendered DOM must list every member with its state; a
//! screenshot is kept (`target/artifacts/dashboard.png`, or `$DASHBOARD_SCREENSHOT`).
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it); `CHROMIUM` names
//! another binary. Without one the test fails, saying so: a dashboard nobody rendered is not
//! checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{Cluster, ClusterSpec};

/// Virtual time Chromium gives the page to load and finish its first polls.
const RENDER_BUDGET_MS: u64 = 8_000;
/// Real time the browser may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Runs headless Chromium on `url` with `args`; its stdout.
fn browse(url: &str, args: &[String]) -> String {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--virtual-time-budget={RENDER_BUDGET_MS}"));
    command.args(args).arg(url);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (install Debian's chromium): {e}", chromium()));
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(BROWSER_TIMEOUT) {
        Ok(output) => output.expect("chromium output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
    };
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `(member, state)` of every row of the rendered members table.
fn member_rows(dom: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for part in dom.split("<tr data-member=\"").skip(1) {
        let member = part.split('"').next().unwrap_or_default().to_string();
        let state = part
            .split("class=\"state state-")
            .nth(1)
            .and_then(|s| s.split('>').nth(1))
            .and_then(|s| s.split('<').next())
            .unwrap_or_default()
            .to_string();
        rows.push((member, state));
    }
    rows
}

fn screenshot_path() -> PathBuf {
    match std::env::var("DASHBOARD_SCREENSHOT") {
        Ok(path) => PathBuf::from(path),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts/dashboard.png"),
    }
}

#[test]
fn the_dashboard_shows_every_member_with_its_state_in_a_real_browser() {
    let spec = ClusterSpec {
        threads: 1,
        ..ClusterSpec::default()
    };
    let cluster = Cluster::start(&spec);
    cluster.wait_links_up();
    let url = format!("{}/dashboard", cluster.node(0).url());
    let dom = browse(&url, &["--dump-dom".to_string()]);
    let rows = member_rows(&dom);
    assert_eq!(
        rows.len(),
        cluster.size(),
        "one row per member: {rows:?}\n{dom}"
    );
    let selves = rows.iter().filter(|(m, _)| m.is_empty()).count();
    assert_eq!(selves, 0, "every row names its member: {rows:?}");
    for (member, state) in &rows {
        assert!(
            matches!(state.as_str(), "self" | "up"),
            "{member} shown as {state:?} in a healthy cluster"
        );
    }
    assert!(
        dom.contains("majority available"),
        "the summary says the cluster can serve: {dom}"
    );

    let shot = screenshot_path();
    std::fs::create_dir_all(shot.parent().expect("a directory")).expect("artifacts directory");
    let _ = std::fs::remove_file(&shot);
    browse(
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1100".to_string(),
        ],
    );
    let bytes = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        bytes > 10_000,
        "a screenshot of the page at {}",
        shot.display()
    );
}
