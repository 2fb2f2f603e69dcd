//! Pass-through to jj, `ajj init`, `ajj run`'s process handling.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn unknown_commands_are_jj_byte_for_byte() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    for args in [
        &["log", "-r", "::@", "-T", "commit_id ++ \"\\n\""][..],
        &["st"],
        &["workspace", "list"],
        &["log", "--help"],
        &["--color=never", "log", "-r", "@", "--no-graph"],
    ] {
        let jj = repo.jj(args);
        let ajj = repo.ajj(args);
        assert_eq!(ajj.stdout, jj.stdout, "{args:?}");
        assert_eq!(ajj.stderr, jj.stderr, "{args:?}");
        assert_eq!(ajj.status.code(), jj.status.code(), "{args:?}");
    }
    // Failing jj commands keep jj's exit code.
    let jj = repo.jj(&["no-such-command"]);
    let ajj = repo.ajj(&["no-such-command"]);
    assert_eq!(ajj.status.code(), jj.status.code());
    assert!(!ajj.status.success());

    let help = repo.ajj(&["--help"]).success();
    for cmd in ["workspace", "run", "status", "reconcile", "init", "jj"] {
        assert!(
            help.stdout.contains(cmd),
            "help mentions {cmd}: {}",
            help.stdout
        );
    }
    let add_help = repo.ajj(&["workspace", "add", "--help"]).success();
    assert!(add_help.stdout.contains("--json"));
}

#[test]
fn init_writes_a_valid_starter_and_ignores_env() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    std::fs::remove_file(repo.main.join(".gitignore")).unwrap();
    std::fs::write(repo.main.join(".gitignore"), "target/").unwrap();
    let out = repo.ajj(&["init", "--json"]).success().json();
    assert_eq!(out["wrote_config"], true);
    assert_eq!(out["added_env_to_gitignore"], true);
    assert_eq!(
        std::fs::read_to_string(repo.main.join(".gitignore")).unwrap(),
        "target/\n# Aether writes service credentials here\n.env\n"
    );
    // The starter is valid: reconcile accepts it.
    repo.ajj(&["reconcile"]).success();
    // Running again keeps both files as they are.
    let again = repo.ajj(&["init", "--json"]).success().json();
    assert_eq!(again["wrote_config"], false);
    assert_eq!(again["added_env_to_gitignore"], false);

    // jj really ignores .env now.
    std::fs::write(repo.main.join(".env"), "X=1\n").unwrap();
    let files = repo.jj(&["file", "list"]).success().stdout;
    assert!(!files.lines().any(|l| l == ".env"), "{files}");
}

#[test]
fn add_warns_when_env_would_be_committed() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    std::fs::write(repo.main.join(".gitignore"), "").unwrap();
    repo.jj(&["commit", "-m", "unignore"]).success();
    let out = repo.add("w");
    let warnings = out["warnings"].to_string();
    assert!(
        warnings.contains(".gitignore") && warnings.contains("not ignored"),
        "{out}"
    );
}

#[test]
fn run_forwards_signals_and_reports_them_in_the_exit_code() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let mut child = repo
        .ajj_cmd(
            &repo.main,
            &[
                "run",
                "--",
                "sh",
                "-c",
                "trap 'exit 42' TERM; sleep 30 & wait",
            ],
        )
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child process.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the child's trap ran and its code came back"
    );

    let mut child = repo
        .ajj_cmd(&repo.main, &["run", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 2), "killed by SIGINT → 130");

    // SIGHUP and SIGQUIT reach the command too: its trap decides the code.
    for (sig, name, code) in [(1, "HUP", 41), (3, "QUIT", 43)] {
        let script = format!("trap 'exit {code}' {name}; sleep 30 & wait");
        let mut child = repo
            .ajj_cmd(&repo.main, &["run", "--", "sh", "-c", &script])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc_kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{name} forwarded");
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Every command and group has a summary; `workspace --help` is Aether's
/// and says what it adds to jj's; the manual pages match the commands.
#[test]
fn help_summarises_every_command_and_man_writes_a_page_each() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let help = repo.ajj(&["--help"]).success();
    let listed: Vec<&str> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(listed.len() >= 12, "{}", help.stdout);
    for line in &listed {
        let mut words = line.split_whitespace();
        let (cmd, summary) = (words.next().unwrap(), words.next());
        assert!(summary.is_some(), "`{cmd}` has no summary: {}", help.stdout);
    }
    let ws = repo.ajj(&["workspace", "--help"]).success();
    assert!(ws.stdout.contains("environment"), "{}", ws.stdout);
    assert!(ws.stdout.contains("update-stale"), "{}", ws.stdout);

    let dir = repo.base.join("man");
    let out = repo.ajj(&["man", dir.to_str().unwrap()]).success();
    for page in [
        "ajj.1",
        "ajj-workspace-add.1",
        "ajj-hooks-install.1",
        "ajj-exec.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}: {text}");
        assert!(out.stdout.contains(page));
    }
    let add = std::fs::read_to_string(dir.join("ajj-workspace-add.1")).unwrap();
    assert!(add.contains("provision its environment"), "{add}");
    assert!(add.contains("allow\\-unignored\\-env"), "{add}");
    // man itself reads the page, where it is installed.
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok()
    {
        let rendered = std::process::Command::new("man")
            .args(["-l", dir.join("ajj-workspace-add.1").to_str().unwrap()])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&rendered.stdout).contains("--sparse-patterns"));
    }
}

/// `ajj status` where the environment was never made says how to make it.
#[test]
fn status_without_an_environment_says_how_to_create_it() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo.ajj(&["status"]).success();
    assert!(out.stdout.contains("missing"), "{}", out.stdout);
    assert!(
        out.stdout.contains("`ajj reconcile` creates it"),
        "{}",
        out.stdout
    );
}
