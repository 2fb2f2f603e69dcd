//! Crash recovery: `kill -9` of `ajj` at varied moments, then one
//! `ajj reconcile` must converge with nothing leaked and no torn `.env`.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills `ajj <args>` with SIGKILL after `delay`, then waits for any jj it
/// had started to finish (the kernel does not kill children with the parent).
/// Returns whether the kill hit a running `ajj`: one that had already
/// finished is a trial of nothing.
fn kill_after(repo: &TestRepo, args: &[&str], delay: Duration) -> bool {
    let mut child = repo
        .ajj_cmd(&repo.main, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    if running {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let killed = status.signal() == Some(libc::SIGKILL);
    assert_eq!(killed, running, "{args:?}: {status:?}");
    wait_for_orphaned_jj(repo);
    killed
}

/// Waits until no `jj` runs inside the test's directories (found by their
/// working directory, which is the repo or a workspace), and fails loudly
/// if one is still there after 10 s.
fn wait_for_orphaned_jj(repo: &TestRepo) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let busy: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "jj")
            })
            .filter(|e| {
                std::fs::read_link(e.path().join("cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&repo.base))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jj processes {busy:?} still run 10 s after their ajj was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every live workspace has exactly the one running service its own
/// aether.toml declares and a `.env`
/// that agrees with it; nothing of any other workspace remains; no temp
/// file is left where jj would snapshot it.
fn assert_converged(repo: &TestRepo, trial: &str) {
    let live: BTreeSet<String> = repo
        .workspace_names()
        .into_iter()
        .filter(|n| n == "default" || repo.ws(n).is_dir())
        .collect();
    let mut seen = BTreeSet::new();
    for kind in ["container", "volume", "network"] {
        for name in repo.docker_names(kind, "label=dev.aether.workspace") {
            let fmt = match kind {
                "container" => "{{index .Config.Labels \"dev.aether.workspace\"}}",
                _ => "{{index .Labels \"dev.aether.workspace\"}}",
            };
            let out = Command::new("docker")
                .args([kind, "inspect", "-f", fmt, &name])
                .output()
                .unwrap();
            let ws = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                live.contains(&ws),
                "{trial}: {kind} {name} of gone workspace {ws:?} leaked"
            );
            if kind == "container" {
                assert!(seen.insert(ws.clone()), "{trial}: two containers for {ws}");
            }
        }
    }
    for ws in &live {
        let root = if ws == "default" {
            repo.main.clone()
        } else {
            repo.ws(ws)
        };
        let containers =
            repo.docker_names("container", &format!("label=dev.aether.workspace={ws}"));
        if !root.join("aether.toml").exists() {
            // jj itself was killed before it checked files out: no config, no services.
            assert!(
                containers.is_empty(),
                "{trial}: {ws} has no config but {containers:?}"
            );
            continue;
        }
        assert_eq!(containers.len(), 1, "{trial}: {ws} has {containers:?}");
        let running = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", &containers[0]])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&running.stdout).trim(),
            "true",
            "{trial}: {ws} not running"
        );
        let vars = dotenv(&root.join(".env"));
        let port = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{index .Config.Labels \"dev.aether.ports\"}}",
                &containers[0],
            ])
            .output()
            .unwrap();
        assert_eq!(
            format!("8080={}", vars["WEB_PORT"]),
            String::from_utf8_lossy(&port.stdout).trim(),
            "{trial}: {ws} .env"
        );
        // Temp files are made in `.jj/` (never snapshotted) next to the root.
        for dir in [root.clone(), root.join(".jj")] {
            let strays: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".aether-tmp"))
                .collect();
            assert!(
                strays.is_empty(),
                "{trial}: temp files {strays:?} in {}",
                dir.display()
            );
        }
    }
}

/// Forgets a trial's workspace (if jj still knows it) and its directory,
/// so trials do not pile up networks: Docker's default pools hold ~30.
fn clean_up(repo: &TestRepo, name: &str) {
    if repo.workspace_names().iter().any(|n| n == name) {
        repo.ajj(&["workspace", "forget", name]).success();
    }
    let _ = std::fs::remove_dir_all(repo.ws(name));
    assert_converged(repo, &format!("after cleaning up {name}"));
}

#[test]
fn kill_9_at_any_point_then_reconcile_converges() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let (mut trials, mut kills) = (0, 0);
    // add, killed at 20 moments from "before jj ran" to "waiting for readiness".
    for i in 0..20u64 {
        let name = format!("a{i}");
        kills += kill_after(
            &repo,
            &["workspace", "add", &format!("../{name}")],
            Duration::from_millis(i * 15),
        ) as u32;
        repo.ajj(&["reconcile"]).success();
        assert_converged(&repo, &format!("add killed at {}ms", i * 15));
        clean_up(&repo, &name);
        trials += 1;
    }
    // forget, killed at 12 moments: before or after jj forgot, mid-removal.
    for i in 0..12u64 {
        let name = format!("f{i}");
        repo.add(&name);
        kills += kill_after(
            &repo,
            &["workspace", "forget", &name],
            Duration::from_millis(i * 15),
        ) as u32;
        repo.ajj(&["reconcile"]).success();
        assert_converged(&repo, &format!("forget killed at {}ms", i * 15));
        clean_up(&repo, &name);
        trials += 1;
    }
    // reconcile itself, killed while it collects a deleted directory.
    for i in 0..8u64 {
        let name = format!("r{i}");
        repo.add(&name);
        std::fs::remove_dir_all(repo.ws(&name)).unwrap();
        kills += kill_after(&repo, &["reconcile"], Duration::from_millis(i * 20)) as u32;
        repo.ajj(&["reconcile"]).success();
        assert_converged(&repo, &format!("reconcile killed at {}ms", i * 20));
        clean_up(&repo, &name);
        trials += 1;
    }
    // A trial whose ajj had already finished tested nothing: most must hit.
    eprintln!("crash-recovery trials: {trials}, kills that hit a running ajj: {kills}, leaks: 0");
    assert!(
        kills >= 30,
        "only {kills} of {trials} kills hit a running ajj"
    );
}

#[test]
fn concurrent_add_and_forget_of_one_workspace_stay_consistent() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    for round in 0..4 {
        let add = repo
            .ajj_cmd(&repo.main, &["workspace", "add", "../race", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round * 30));
        let forget = repo.ajj(&["workspace", "forget", "race", "--json"]);
        let add = add.wait_with_output().unwrap();
        // Either order is fine; what is not fine is a leak or an unexplained
        // error. Each printed exactly one JSON object and exited 0, or 1 with
        // one of the errors the race explains.
        let add_stdout = String::from_utf8_lossy(&add.stdout).into_owned();
        for (what, status, out) in [
            ("forget", forget.status, &forget.stdout),
            ("add", add.status, &add_stdout),
        ] {
            let v: serde_json::Value = serde_json::from_str(out.trim())
                .unwrap_or_else(|e| panic!("round {round}: {what} printed no JSON ({e}): {out}"));
            match status.code() {
                Some(0) => assert!(v.get("error").is_none(), "round {round}: {what}: {v}"),
                Some(1) => {
                    let code = v["error"]["code"].as_str().unwrap_or_default();
                    assert!(
                        ["WORKSPACE_NOT_FOUND", "JJ_FAILED"].contains(&code),
                        "round {round}: {what}: {v}"
                    );
                }
                other => panic!("round {round}: {what} exited {other:?}: {v}"),
            }
        }
        repo.ajj(&["reconcile"]).success();
        assert_converged(&repo, &format!("race round {round}"));
        if repo.workspace_names().contains(&"race".to_string()) {
            repo.ajj(&["workspace", "forget", "race"]).success();
        }
        let _ = std::fs::remove_dir_all(repo.ws("race"));
    }
}

#[test]
fn a_twin_network_from_a_late_create_is_repaired() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo.add("w");
    let ws = "label=dev.aether.workspace=w";
    let net = repo.docker_names("network", ws).pop().unwrap();
    // What a killed `ajj`'s create, finished by dockerd afterwards, leaves:
    // a second network of the same name and labels (engines < 25 allow it).
    // The docker CLI refuses a duplicate name; the API of these engines does not.
    let body = serde_json::json!({
        "Name": net,
        "Labels": {
            "dev.aether.repo": repo.repo_id(),
            "dev.aether.workspace": "w",
            TEST_LABEL: std::process::id().to_string(),
        }
    });
    let host = real_docker_host();
    let socket = host.strip_prefix("unix://").expect("a Unix socket");
    let created = Command::new("curl")
        .args([
            "-sf",
            "--unix-socket",
            socket,
            "-H",
            "Content-Type: application/json",
        ])
        .args([
            "-d",
            &body.to_string(),
            "http://docker/v1.41/networks/create",
        ])
        .output()
        .unwrap();
    let podman = Command::new("docker")
        .args([
            "version",
            "--format",
            "{{.Server.Os}} {{range .Server.Components}}{{.Name}} {{end}}",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("Podman"))
        .unwrap_or(false);
    if podman && !created.status.success() {
        // Podman refuses a second network of one name: the fault cannot
        // happen there.
        eprintln!("skipped: this engine refuses duplicate network names");
        return;
    }
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(repo.docker_names("network", ws).len(), 2);

    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(pass["actions"].to_string().contains("duplicate"), "{pass}");
    assert_eq!(repo.docker_names("network", ws).len(), 1);
    let port = out["resources"]["web"]["external_port"].as_u64().unwrap();
    assert!(
        curl(&format!("http://127.0.0.1:{port}/")).is_some(),
        "the service kept its network"
    );

    // A recreated service joins the surviving network without ambiguity.
    let web = out["resources"]["web"]["container"].as_str().unwrap();
    assert!(Command::new("docker")
        .args(["rm", "-f", web])
        .output()
        .unwrap()
        .status
        .success());
    repo.ajj(&["reconcile"]).success();
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());
}
