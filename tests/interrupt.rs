//! Interrupted adds and forgets, as a terminal and a crash interrupt them:
//! SIGINT (Ctrl-C) and SIGTERM to the whole process group at varied
//! moments leave a complete workspace or nothing; after `kill -9` the same
//! command run again succeeds. Under jj 0.45.1 and 0.46.0 alike (the test
//! command runs this suite under both), in repos made by `jj git init`,
//! which are colocated.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A web service with a volume, so that every kind of object is made.
fn config() -> String {
    busybox_web("volumes = { data = \"/data\" }")
}

/// `ajj <args>` in a process group of its own, as a shell runs a
/// foreground job: a signal to the group reaches ajj and every jj it runs,
/// as the terminal's Ctrl-C does.
fn spawn_job(repo: &TestRepo, args: &[&str]) -> Child {
    repo.ajj_cmd(&repo.main, args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal_group(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the child's own process group.
    unsafe { libc::kill(-(child.id() as i32), sig) };
}

fn labelled(repo: &TestRepo, name: &str) -> Vec<String> {
    ["container", "volume", "network"]
        .iter()
        .flat_map(|k| repo.docker_names(k, &format!("label=dev.aether.workspace={name}")))
        .collect()
}

/// Nothing of workspace `name` is left: not in jj, no directory, no
/// object, no Git worktree entry, no record of a pending add.
fn assert_nothing(repo: &TestRepo, name: &str, trial: &str) {
    assert!(
        !repo.workspace_names().contains(&name.to_string()),
        "{trial}: jj still lists {name}"
    );
    assert!(
        !repo.ws(name).exists(),
        "{trial}: {name}'s directory is left"
    );
    assert_eq!(
        labelled(repo, name),
        Vec::<String>::new(),
        "{trial}: objects left"
    );
    assert_eq!(
        git_worktrees(repo),
        Vec::<String>::new(),
        "{trial}: worktree left"
    );
    // Records only: a `kill -9` mid-write may leave the temp file of an
    // atomic write, which is never read as a record.
    let adds = repo.main.join(".jj/repo/aether/adds");
    let pending: Vec<String> = std::fs::read_dir(&adds)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        pending,
        Vec::<String>::new(),
        "{trial}: a pending-add record is left"
    );
}

/// Workspace `name` is complete: listed, checked out, its service running
/// and answering on the port its `.env` names.
fn assert_whole(repo: &TestRepo, name: &str, trial: &str) {
    assert!(
        repo.workspace_names().contains(&name.to_string()),
        "{trial}: jj does not list {name}"
    );
    assert!(
        repo.ws(name).join("aether.toml").is_file(),
        "{trial}: {name} is not checked out"
    );
    let env = dotenv(&repo.ws(name).join(".env"));
    let port = env
        .get("WEB_PORT")
        .unwrap_or_else(|| panic!("{trial}: .env lacks WEB_PORT: {env:?}"));
    assert!(
        curl(&format!("http://127.0.0.1:{port}/")).is_some(),
        "{trial}: web does not answer on {port}"
    );
}

fn wait_output(child: Child) -> (Option<i32>, Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn ctrl_c_at_any_moment_of_an_add_leaves_a_whole_workspace_or_nothing() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&config()));
    // The moments spread over one whole add, however fast this machine is.
    let started = std::time::Instant::now();
    repo.add("timing");
    let whole_add = started.elapsed();
    repo.ajj(&["workspace", "forget", "timing"]).success();
    let (mut undone, mut whole) = (0, 0);
    for i in 0..14u32 {
        let name = format!("c{i}");
        let at = whole_add * i / 13;
        let trial = format!(
            "SIGINT at {}ms of {}ms",
            at.as_millis(),
            whole_add.as_millis()
        );
        let dest = format!("../{name}");
        let child = spawn_job(&repo, &["workspace", "add", &dest, "--json"]);
        std::thread::sleep(at);
        signal_group(&child, libc::SIGINT);
        let (code, signal, stdout) = wait_output(child);
        if signal == Some(libc::SIGINT) {
            // Came before ajj listened, which it does before it starts
            // anything: nothing may be left.
            assert_nothing(&repo, &name, &trial);
            let _ = std::fs::remove_dir_all(repo.ws(&name));
            continue;
        }
        match code {
            Some(0) => {
                whole += 1;
                assert_whole(&repo, &name, &trial);
            }
            Some(130) => {
                let v: serde_json::Value = serde_json::from_str(stdout.trim())
                    .unwrap_or_else(|e| panic!("{trial}: no JSON ({e}): {stdout}"));
                assert_eq!(v["error"]["code"], "INTERRUPTED", "{trial}: {v}");
                assert_eq!(v["error"]["details"]["signal"], "SIGINT", "{trial}: {v}");
                match v["error"]["details"]["outcome"].as_str() {
                    Some("undone") => {
                        undone += 1;
                        assert_nothing(&repo, &name, &trial);
                        // The same add again succeeds.
                        repo.ajj(&["workspace", "add", &dest, "--json"]).success();
                    }
                    Some("completed") => whole += 1,
                    other => panic!("{trial}: outcome {other:?}"),
                }
                assert_whole(&repo, &name, &trial);
            }
            other => panic!("{trial}: exit {other:?}: {stdout}"),
        }
        repo.ajj(&["workspace", "forget", &name]).success();
        std::fs::remove_dir_all(repo.ws(&name)).unwrap();
    }
    eprintln!("SIGINT trials: {undone} undone, {whole} complete");
    assert!(undone >= 7, "only {undone} signals came while the add ran");

    // SIGTERM, as a supervisor sends it: the same, with the shell's 143.
    let child = spawn_job(&repo, &["workspace", "add", "../t", "--json"]);
    std::thread::sleep(whole_add / 2);
    signal_group(&child, libc::SIGTERM);
    let (code, _, stdout) = wait_output(child);
    assert_eq!(code, Some(143), "{stdout}");
    assert!(stdout.contains("\"SIGTERM\""), "{stdout}");
    assert_nothing(&repo, "t", "SIGTERM half-way");
}

#[test]
fn after_kill_9_the_same_add_run_again_succeeds() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&config()));
    let mut hits = 0;
    for i in 0..12u64 {
        let name = format!("k{i}");
        let trial = format!("kill -9 at {}ms", i * 25);
        let dest = format!("../{name}");
        // Only ajj is killed, as the OOM killer or `kill -9 <pid>` does:
        // a jj it started runs on.
        let mut child = repo
            .ajj_cmd(&repo.main, &["workspace", "add", &dest, "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(i * 25));
        let hit = child.try_wait().unwrap().is_none();
        if hit {
            child.kill().unwrap();
            hits += 1;
        }
        child.wait().unwrap();
        // Let an orphaned jj finish, as the user would before retrying.
        eventually("the orphaned jj ends", 10, || {
            processes_mentioning(&repo.ws(&name).display().to_string()).is_empty()
        });
        if hit {
            let again = repo.ajj(&["workspace", "add", &dest, "--json"]);
            // The one window where this is right: the first add had
            // finished everything but its exit.
            let finished_before =
                again.error_code() == "JJ_FAILED" && repo.ws(&name).join(".env").is_file();
            if !finished_before {
                again.success();
            }
        }
        assert_whole(&repo, &name, &trial);
        repo.ajj(&["workspace", "forget", &name]).success();
        std::fs::remove_dir_all(repo.ws(&name)).unwrap();
        assert_nothing(&repo, &name, &format!("{trial}, then forget"));
    }
    assert!(hits >= 8, "only {hits} kills hit a running ajj");
}

#[test]
fn after_kill_9_the_same_forget_run_again_finishes() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&config()));
    let mut hits = 0;
    for i in 0..10u64 {
        let name = format!("f{i}");
        repo.add(&name);
        let mut child = repo
            .ajj_cmd(&repo.main, &["workspace", "forget", &name, "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(i * 20));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            hits += 1;
        }
        child.wait().unwrap();
        eventually("the orphaned jj ends", 10, || {
            processes_mentioning("workspace forget").is_empty()
        });
        let listed = repo.workspace_names().contains(&name);
        let left = labelled(&repo, &name);
        if listed || !left.is_empty() {
            let v = repo
                .ajj(&["workspace", "forget", &name, "--json"])
                .success()
                .json();
            assert_eq!(v["forgotten"][0]["name"], name.as_str(), "{v}");
        }
        assert!(!repo.workspace_names().contains(&name));
        assert_eq!(labelled(&repo, &name), Vec::<String>::new(), "f{i}");
        std::fs::remove_dir_all(repo.ws(&name)).unwrap();
    }
    assert!(hits >= 4, "only {hits} kills hit a running forget");
}

#[test]
fn a_refused_add_keeps_the_users_files_and_says_why() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&config()));
    // A directory of the user's: jj refuses it, and Aether must not
    // "clear" it as if it were a half-made workspace.
    let mine = repo.ws("mine");
    std::fs::create_dir_all(mine.join("notes")).unwrap();
    std::fs::write(mine.join("notes/todo.txt"), "keep me").unwrap();
    let out = repo
        .ajj(&["workspace", "add", "../mine", "--json"])
        .failure();
    assert_eq!(out.error_code(), "JJ_FAILED");
    let hint = out.json()["error"]["hint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(hint.contains("is not empty"), "{hint}");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes/todo.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(labelled(&repo, "mine"), Vec::<String>::new());

    // A name that exists: the hint names the way out.
    repo.add("x");
    let out = repo
        .ajj(&["workspace", "add", "../y", "--name", "x", "--json"])
        .failure();
    assert_eq!(out.error_code(), "JJ_FAILED");
    let v = out.json();
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("ajj workspace forget x"),
        "{v}"
    );
    assert!(!repo.ws("y").exists(), "the refused destination was made");
    assert_whole(&repo, "x", "after a refused add of its name");
}
