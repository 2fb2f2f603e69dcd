//! Progress on a terminal: `workspace add` under a real pseudo-terminal
//! (Python's pty) draws a live line per service on stderr, and stdout is
//! exactly what it is without one.

mod common;

use common::*;
use std::process::Command;

/// Runs `ajj args` in `dir` with stderr on a pseudo-terminal and stdout on
/// a pipe: (stdout, what the terminal received).
fn on_a_terminal(
    repo: &TestRepo,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (String, String) {
    let script = r#"
import os, pty, select, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=slave)
os.close(slave)
seen = b""
while True:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    elif p.poll() is not None:
        break
out = p.stdout.read()
p.wait()
sys.stdout.buffer.write(out + b"\0" + seen)
sys.exit(p.returncode)
"#;
    let mut cmd = Command::new("/usr/bin/python3");
    repo.hermetic(&mut cmd);
    cmd.env("TERM", "xterm")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_ajj"))
        .args(args)
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (stdout, tty) = text.split_once('\0').unwrap();
    (stdout.to_string(), tty.to_string())
}

#[test]
fn add_on_a_terminal_shows_each_service_moving_to_ready_and_leaves_stdout_alone() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let (stdout, tty) = on_a_terminal(&repo, &repo.main, &["workspace", "add", "../live"], &[]);
    assert!(tty.contains("live/web"), "{tty:?}");
    assert!(tty.contains("waiting for readiness"), "{tty:?}");
    assert!(tty.contains("ready"), "{tty:?}");
    assert!(tty.contains('\u{1b}'), "drawn, not printed: {tty:?}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(
        stdout.contains("live/.env") || stdout.contains("Wrote"),
        "{stdout:?}"
    );

    // NO_COLOR: the plain lines, as on a pipe.
    let (_, plain) = on_a_terminal(
        &repo,
        &repo.main,
        &["workspace", "add", "../plain"],
        &[("NO_COLOR", "1")],
    );
    assert!(plain.contains("Creating plain/web"), "{plain:?}");
    assert!(plain.contains("Ready plain/web"), "{plain:?}");
    assert!(!plain.contains("waiting for readiness"), "{plain:?}");

    // --json: nothing drawn (plain lines on stderr), and stdout is the one JSON object.
    let (json, quiet) = on_a_terminal(
        &repo,
        &repo.main,
        &["workspace", "add", "../quiet", "--json"],
        &[],
    );
    assert!(quiet.contains("Ready quiet/web"), "plain lines: {quiet:?}");
    assert!(
        !quiet.contains("waiting for readiness"),
        "nothing drawn: {quiet:?}"
    );
    let parsed: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(parsed["name"], "quiet");
    repo.ajj(&["workspace", "forget", "live", "plain", "quiet"])
        .success();
}
