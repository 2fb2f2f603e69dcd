//! The remote backend: Docker reached only through a real OpenSSH server on
//! loopback (test-only keys, a non-default port), with real curl and psql.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn remote_repo(sshd: &Sshd, services: &str, backend_extra: &str) -> TestRepo {
    let repo = TestRepo::new(Some(&format!(
        "{}\n{services}",
        sshd.backend_toml(backend_extra)
    )));
    repo.use_sshd(sshd);
    repo
}

/// A remote repo with one busybox workspace `feat`: the repo, the
/// workspace's root and the web service's local port.
fn one_remote_workspace(
    sshd: &Sshd,
    backend_extra: &str,
    env: &[(&str, &str)],
) -> (TestRepo, PathBuf, u16) {
    let repo = remote_repo(sshd, &busybox_web(""), backend_extra);
    for (k, v) in env {
        repo.set_env(k, *v);
    }
    repo.add("feat");
    let ws = repo.ws("feat");
    let local = env_port(&ws, "WEB_PORT");
    (repo, ws, local)
}

/// `ajj run -- <args>` in `ws`, running in the background.
fn spawn_run(
    repo: &TestRepo,
    ws: &Path,
    args: &[&str],
    out: Stdio,
    err: Stdio,
) -> std::process::Child {
    let mut all = vec!["run", "--"];
    all.extend_from_slice(args);
    repo.ajj_cmd(ws, &all)
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap()
}

/// `ajj run` of a curl to the web service, through the forwards.
fn web_via_run(repo: &TestRepo, ws: &Path) -> Run {
    repo.ajj_in(
        ws,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "curl -sf -o /dev/null \"$WEB_URL\"",
        ],
    )
}

/// SIGTERM to the repo's one SSH master.
fn kill_master(repo: &TestRepo) {
    let master = ssh_processes(repo);
    assert_eq!(master.len(), 1, "{master:#?}");
    let pid = master[0].split(':').next().unwrap();
    Command::new("kill").arg(pid).status().unwrap();
}

fn env_port(root: &Path, var: &str) -> u16 {
    dotenv(&root.join(".env"))[var].parse().unwrap()
}

/// The SSH processes of this repo's runtime dir: the master, at most.
fn ssh_processes(repo: &TestRepo) -> Vec<String> {
    processes_mentioning(&repo.runtime_dir().display().to_string())
        .into_iter()
        .filter(|p| {
            p.split_once(": ")
                .is_some_and(|(_, cmd)| cmd.starts_with("ssh "))
        })
        .collect()
}

#[test]
fn remote_environment_is_reached_only_through_forwards() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let repo = remote_repo(
        &sshd,
        &format!("{}\n{}", busybox_web(""), postgres_db()),
        "",
    );

    let added = repo.add("feat");
    assert_eq!(added["backend"], "docker-remote");
    assert_eq!(added["remote_host"], format!("ssh://{}", sshd.host()));
    let web = &added["resources"]["web"];
    let local = web["external_port"].as_u64().unwrap() as u16;
    let remote = web["remote_port"].as_u64().unwrap() as u16;
    assert_ne!(
        local, remote,
        "the local port is reserved here, the remote one is the engine's"
    );
    assert_eq!(web["host"], "127.0.0.1");

    // `.env` is the same shape as locally: 127.0.0.1 and the local port.
    let ws = repo.ws("feat");
    let vars = dotenv(&ws.join(".env"));
    assert_eq!(vars["WEB_HOST"], "127.0.0.1");
    assert_eq!(env_port(&ws, "WEB_PORT"), local);
    assert!(vars["DATABASE_URL"].starts_with("postgres://postgres:pass@127.0.0.1:"));

    // Outside `ajj run` nothing listens on the local ports...
    assert!(!listening(local), "the local port answers outside ajj run");
    // ...inside, curl and psql reach the remote services through them.
    let run = repo
        .ajj_in(
            &ws,
            &[
                "run",
                "--",
                "sh",
                "-c",
                "curl -sf -o /dev/null -w '%{http_code}' \"$WEB_URL\" && psql \"$DATABASE_URL\" -tAc 'select 40 + 2' && exit 7",
            ],
        );
    assert_eq!(
        run.status.code(),
        Some(7),
        "exit code passes through: {}",
        run.stderr
    );
    assert_eq!(
        run.stdout.trim(),
        "20042",
        "curl then psql answered: {}",
        run.stderr
    );
    assert!(!listening(local), "the forward outlived ajj run");

    // Status reports the remote host and both ports.
    let status = repo.ajj_in(&ws, &["status", "--json"]).success().json();
    assert_eq!(status["backend"], "docker-remote");
    assert_eq!(status["remote_host"], added["remote_host"]);
    assert_eq!(status["resources"]["web"]["external_port"], local);
    assert_eq!(status["resources"]["web"]["remote_port"], remote);
    assert_eq!(status["resources"]["db"]["state"], "running");

    // `ajj tunnel` holds the forwards until it is told to stop.
    let mut tunnel = repo
        .ajj_cmd(&ws, &["tunnel", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(tunnel.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let opened: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(opened["forwards"].as_array().unwrap().len(), 2);
    assert!(curl(&format!("http://127.0.0.1:{local}/")).is_some());
    Command::new("kill")
        .args(["-INT", &tunnel.id().to_string()])
        .status()
        .unwrap();
    assert!(tunnel.wait().unwrap().success(), "tunnel exits 0 on SIGINT");
    assert!(!listening(local));

    // A rename (jj renames the workspace it runs in) keeps the environment,
    // its local port and its reservation.
    let ledger_path = repo.base.join("home/.local/state/aether/local-ports.json");
    repo.jj_in(&ws, &["workspace", "rename", "feat2"]).success();
    repo.ajj(&["reconcile"]).success();
    assert_eq!(env_port(&ws, "WEB_PORT"), local);
    // (The pass also provisioned the default workspace: its ports are its own.)
    let owners = |path: &Path| -> Vec<String> {
        let ledger: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut o: Vec<String> = ledger
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .filter(|w| w != "default")
            .collect();
        o.sort();
        o
    };
    assert_eq!(owners(&ledger_path), ["feat2", "feat2"]);
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "after the rename: {}", run.stderr);

    // Forget removes everything on the remote and frees the reservations.
    repo.ajj(&["workspace", "forget", "feat2", "--json"])
        .success();
    for kind in ["container", "volume", "network"] {
        for name in ["feat", "feat2"] {
            assert_eq!(
                repo.docker_names(kind, &format!("label=dev.aether.workspace={name}")),
                Vec::<String>::new()
            );
        }
    }
    assert!(owners(&ledger_path).is_empty(), "reservations are released");
}

#[test]
fn kill_9_of_run_leaves_no_forward_and_the_master_exits_when_idle() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    // aether.toml's `persist` decides, not the suite's default.
    let (repo, ws, local) =
        one_remote_workspace(&sshd, "persist = \"2s\"", &[("AETHER_SSH_PERSIST", "")]);
    let mut run = spawn_run(&repo, &ws, &["sleep", "60"], Stdio::null(), Stdio::null());
    eventually("the forward listens", 10, || listening(local));
    assert!(curl(&format!("http://127.0.0.1:{local}/")).is_some());
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    // The listener was ajj's own socket: gone with it, not a moment later.
    assert!(!listening(local), "a forward outlived kill -9");
    let _ = Command::new("pkill").args(["-f", "^sleep 60$"]).status();

    let left = ssh_processes(&repo);
    assert!(left.len() <= 1, "only the master may remain: {left:#?}");
    assert!(
        left.iter().all(|p| p.contains(" -M ")),
        "not a master: {left:#?}"
    );
    // The master goes by itself once idle (persist = 2s).
    eventually("the idle master exits", 15, || {
        ssh_processes(&repo).is_empty()
    });

    // The next command starts a new master and works again.
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "{}", run.stderr);
}

#[test]
fn master_dying_mid_command_is_reported() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let (repo, ws, local) = one_remote_workspace(&sshd, "", &[]);
    let run = spawn_run(&repo, &ws, &["sleep", "3"], Stdio::piped(), Stdio::piped());
    eventually("the forward listens", 10, || listening(local));
    kill_master(&repo);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[SSH_MASTER_DIED]"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(
        !out.status.success(),
        "a run without its services must not look clean"
    );
    assert!(!listening(local));

    // `ajj tunnel` (which starts a new master) ends with the same error.
    let tunnel = repo
        .ajj_cmd(&ws, &["tunnel"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the tunnel forwards", 10, || listening(local));
    kill_master(&repo);
    let out = tunnel.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[SSH_MASTER_DIED]"), "{stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert!(!listening(local));
}

#[test]
fn runs_share_forwards_and_a_busy_local_port_fails_before_the_command_runs() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let (repo, ws, local) = one_remote_workspace(&sshd, "", &[]);

    // Two `ajj run` in one workspace share the forwards, and either may end first.
    let long = spawn_run(&repo, &ws, &["sleep", "3"], Stdio::null(), Stdio::null());
    eventually("the first run forwards", 10, || listening(local));
    let short = web_via_run(&repo, &ws);
    assert!(
        short.status.success(),
        "a second run in the workspace: {}",
        short.stderr
    );
    assert!(
        curl(&format!("http://127.0.0.1:{local}/")).is_some(),
        "the first run's forward went with the second"
    );
    assert!(long.wait_with_output().unwrap().status.success());
    assert!(!listening(local));

    // Closing connections may hold the port a moment; then a foreign listener takes it.
    let mut squatter = None;
    eventually("the port is free for a squatter", 10, || {
        squatter = std::net::TcpListener::bind(("127.0.0.1", local)).ok();
        squatter.is_some()
    });
    let marker = repo.base.join("ran");
    let run = repo.ajj_in(&ws, &["run", "--", "touch", marker.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("error[LOCAL_PORT_BUSY]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert!(!marker.exists(), "the command ran without its forwards");
    drop(squatter);
    let run = repo.ajj_in(&ws, &["run", "--", "touch", marker.to_str().unwrap()]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(marker.exists());
}

/// Each SSH failure has its code and hint, and leaves no jj workspace behind.
#[test]
fn ssh_failures_have_stable_codes() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let host_pub = std::fs::read_to_string(sshd.dir.join("host_key.pub")).unwrap();
    let stranger_pub = std::fs::read_to_string(sshd.dir.join("stranger_key.pub")).unwrap();
    let trusted = format!("[127.0.0.1]:{} {host_pub}", sshd.client_port());
    let cases: Vec<(&str, String, String, &str)> = vec![
        // (case, ssh config, backend table extra/override, expected code)
        (
            "unreachable",
            sshd.ssh_config.display().to_string(),
            format!(
                "[backend]\nkind = \"docker-ssh\"\nhost = \"{}@127.0.0.1:{}\"\n",
                sshd.user,
                free_port()
            ),
            "SSH_UNREACHABLE",
        ),
        (
            "auth",
            sshd.variant_config("auth", "stranger_key", &trusted)
                .display()
                .to_string(),
            sshd.backend_toml(""),
            "SSH_AUTH_FAILED",
        ),
        (
            "unknown-key",
            sshd.variant_config("unknown", "client_key", "")
                .display()
                .to_string(),
            sshd.backend_toml(""),
            "SSH_HOST_KEY",
        ),
        (
            "changed-key",
            sshd.variant_config(
                "changed",
                "client_key",
                &format!("[127.0.0.1]:{} {stranger_pub}", sshd.client_port()),
            )
            .display()
            .to_string(),
            sshd.backend_toml(""),
            "SSH_HOST_KEY",
        ),
        (
            "no-docker",
            sshd.ssh_config.display().to_string(),
            sshd.backend_toml("docker_socket = \"/nonexistent/docker.sock\""),
            "REMOTE_DOCKER_UNAVAILABLE",
        ),
    ];
    for (case, config, backend, code) in cases {
        let repo = TestRepo::new(Some(&format!("{backend}\n{}", busybox_web(""))));
        repo.use_sshd(&sshd);
        repo.set_env("AETHER_SSH_CONFIG", config);
        let out = repo.ajj(&["workspace", "add", "../x", "--json"]).failure();
        assert_eq!(out.error_code(), code, "{case}: {}", out.stdout);
        // `ajj doctor` names the same failure, with a hint, and changes nothing.
        let doctor = repo.ajj(&["doctor", "--json"]).failure().json();
        let backend = doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "backend")
            .unwrap();
        assert_eq!(backend["code"], code, "{case}: {doctor}");
        assert!(
            backend["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{case}"
        );
        let err = &out.json()["error"];
        assert!(
            err["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{case}: no hint"
        );
        assert_eq!(repo.workspace_names(), ["default"], "{case}: jj changed");
        assert!(!repo.ws("x").exists(), "{case}: a directory was left");
        if case == "changed-key" {
            assert!(
                err["message"].as_str().unwrap().contains("changed"),
                "{err}"
            );
        }
        // The same, as text on stderr, for `ajj status`.
        let status = repo.ajj(&["status"]).failure();
        assert!(
            status.stderr.contains(&format!("error[{code}]")),
            "{case}: {}",
            status.stderr
        );
    }
}

/// `--backend` chooses per command; an environment made on one backend is
/// never mistaken for missing by a command aimed at the other.
#[test]
fn backend_override_and_mismatch() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.use_sshd(&sshd);
    let remote = format!("ssh://{}", sshd.host());
    let added = repo
        .ajj(&[
            "--backend",
            &remote,
            "workspace",
            "add",
            "../feat",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(added["backend"], "docker-remote");
    let ws = repo.ws("feat");
    // `ajj run` and `status` find the backend recorded for the workspace.
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        repo.ajj_in(&ws, &["status", "--json"]).success().json()["backend"],
        "docker-remote"
    );
    // A local pass (on the real local engine) refuses it rather than
    // provisioning a second copy.
    let mut local = repo.ajj_cmd(&repo.main, &["reconcile", "--json"]);
    local.env("DOCKER_HOST", real_docker_host());
    let pass = Run::from(local.output().unwrap(), "ajj", &["reconcile"])
        .failure()
        .json();
    let text = pass.to_string();
    assert!(text.contains("BACKEND_MISMATCH"), "{text}");
    assert_eq!(
        repo.docker_names("container", "label=dev.aether.workspace=feat")
            .len(),
        1
    );
    // Forget goes to where the environment is.
    repo.ajj(&["workspace", "forget", "feat"]).success();
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=feat")
        .is_empty());
    // A bad override is a usage error.
    let bad = repo
        .ajj(&["--backend", "nowhere", "status", "--json"])
        .failure_with(2);
    assert_eq!(bad.error_code(), "USAGE");
    assert_eq!(bad.status.code(), Some(2));
}

/// `ajj watch` on the remote backend: plain jj commands are followed on the
/// remote engine, and a dead master is a lost backend that it reconnects to.
#[test]
fn watch_follows_jj_on_the_remote_and_reconnects_when_the_master_dies() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let repo = remote_repo(&sshd, &busybox_web(""), "");
    let mut w = repo.watch(&[], &[]);
    let ws = repo.ws("feat");

    repo.jj(&["workspace", "add", "../feat"]).success();
    eventually("feat's .env", 30, || {
        ws.join(".env").exists() && dotenv(&ws.join(".env")).contains_key("WEB_PORT")
    });
    let local = env_port(&ws, "WEB_PORT");
    assert!(!listening(local), "the watcher must not forward");
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "{}", run.stderr);

    kill_master(&repo);
    w.wait_for("backend_unreachable", 15, |e| {
        e["event"] == "backend_unreachable"
    });
    w.wait_for("backend_reconnected", 30, |e| {
        e["event"] == "backend_reconnected"
    });
    assert_eq!(ssh_processes(&repo).len(), 1, "a new master");

    // Still converging through the new master: a removed container comes
    // back on the same local port.
    let container = repo.docker_names("container", "label=dev.aether.workspace=feat");
    Command::new("docker")
        .args(["rm", "-f", &container[0]])
        .output()
        .unwrap();
    eventually("the container is recreated", 30, || {
        repo.docker_names("container", "label=dev.aether.workspace=feat")
            .len()
            == 1
            && Command::new("docker")
                .args(["inspect", "-f", "{{.State.Running}}", &container[0]])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    });
    assert_eq!(env_port(&ws, "WEB_PORT"), local);

    repo.jj(&["workspace", "forget", "feat"]).success();
    eventually("feat's objects are gone from the remote", 30, || {
        ["container", "volume", "network"].iter().all(|k| {
            repo.docker_names(k, "label=dev.aether.workspace=feat")
                .is_empty()
        })
    });
}

/// `$AETHER_BACKEND` chooses the backend like `--backend`; a ledger with
/// no local port left is PORT_CONFLICT, with nothing started remotely.
#[test]
fn aether_backend_from_the_environment_and_a_full_port_ledger() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.use_sshd(&sshd);
    repo.set_env("AETHER_BACKEND", format!("ssh://{}", sshd.host()));
    let added = repo.add("viaenv");
    assert_eq!(added["backend"], "docker-remote", "{added}");
    assert_eq!(
        added["remote_host"],
        format!("ssh://{}", sshd.host()),
        "{added}"
    );
    repo.ajj(&["workspace", "forget", "viaenv"]).success();

    // Every local port is someone else's.
    let ledger = repo.base.join("home/.local/state/aether/local-ports.json");
    let full: std::collections::BTreeMap<u16, &str> =
        (1..=u16::MAX).map(|p| (p, "another-repo/ws")).collect();
    std::fs::write(&ledger, serde_json::to_vec(&full).unwrap()).unwrap();
    let out = repo
        .ajj(&["workspace", "add", "../full", "--json"])
        .failure();
    assert_eq!(out.error_code(), "PORT_CONFLICT", "{}", out.stdout);
    assert!(out.json()["error"]["hint"].is_string());
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=full")
        .is_empty());
    // The ledger is the user's: nothing of it was dropped.
    let after: std::collections::BTreeMap<u16, String> =
        serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
    assert_eq!(after.len(), usize::from(u16::MAX));
    std::fs::remove_file(&ledger).unwrap();
}

/// A non-default `docker_socket` (rootless Docker users all have one): the
/// environment is recorded under the same backend id that later commands
/// parse, so run, status and forget reach it (they failed with
/// SSH_UNREACHABLE when the id was written without its separator).
#[test]
fn a_non_default_docker_socket_is_recorded_and_found_again() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    // The same engine under another path of its socket.
    let (repo, ws, local) =
        one_remote_workspace(&sshd, "docker_socket = \"/run/docker.sock\"", &[]);
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "{}", run.stderr);
    let status = repo.ajj_in(&ws, &["status", "--json"]).success().json();
    assert_eq!(status["backend"], "docker-remote");
    assert_eq!(status["resources"]["web"]["external_port"], local);
    repo.ajj(&["workspace", "forget", "feat"]).success();
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=feat")
        .is_empty());
}

/// `ajj exec` goes through the seam, so it reaches a container on the
/// remote host with nothing but the SSH master; `ajj doctor` sees the
/// remote engine through it too.
#[test]
fn exec_reaches_a_container_on_the_remote_host() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let (repo, ws, _) = one_remote_workspace(&sshd, "", &[]);
    let out = repo
        .ajj_in(
            &ws,
            &["exec", "web", "--", "sh", "-c", "echo remote; exit 4"],
        )
        .failure_with(4);
    assert_eq!(out.stdout, "remote\n");
    let doctor = repo.ajj_in(&ws, &["doctor", "--json"]).success().json();
    assert_eq!(doctor["ok"], true, "{doctor}");
    repo.ajj(&["workspace", "forget", "feat"]).success();
}

/// `logs`, `exec` with stdin and `wait` reach the remote host through the
/// seam, with nothing but the SSH master.
#[test]
fn logs_exec_and_wait_work_on_the_remote_host() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let config = format!(
        r#"{}
[services.talk]
image = "{BUSYBOX}"
command = ["sh", "-c", "echo hello from afar; echo to stderr >&2; sleep 600"]
stop_timeout = "1s"
"#,
        busybox_web("")
    );
    let repo = remote_repo(&sshd, &config, "");
    repo.add("feat");
    let ws = repo.ws("feat");
    repo.ajj_in(&ws, &["wait", "--timeout", "30s"]).success();
    let mut lines = Vec::new();
    eventually("both lines in the remote logs", 20, || {
        lines = repo
            .ajj_in(&ws, &["logs", "--json", "talk"])
            .success()
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>();
        lines.len() == 2
    });
    assert!(lines
        .iter()
        .any(|l| l["line"] == "hello from afar" && l["stream"] == "stdout"));
    assert!(lines
        .iter()
        .any(|l| l["line"] == "to stderr" && l["stream"] == "stderr"));
    let mut cat = repo
        .ajj_cmd(&ws, &["exec", "web", "--", "sh", "-c", "cat; exit 6"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        cat.stdin.take().unwrap().write_all(b"over ssh\n").unwrap();
    }
    let out = cat.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over ssh\n");
    repo.ajj(&["workspace", "forget", "feat"]).success();
}

/// The state file of `workspace` (its sticky ports, backend, and the
/// remote ports the last pass saw).
fn state_file(repo: &TestRepo, workspace: &str) -> PathBuf {
    let dir = repo.main.join(".jj/repo/aether/workspaces");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["workspace"] == workspace)
        })
        .unwrap_or_else(|| panic!("no state for {workspace} in {}", dir.display()))
}

/// At a distance (25 ms each way), `ajj run` starts its command without
/// waiting on the remote host: it forwards to the remote ports the last
/// pass recorded, and checks them while the command runs. Shown with the
/// relay holding every byte: the command runs and ends all the same. A
/// record made stale by a recreated container is corrected before the
/// first connection, or, when the container is recreated after that check,
/// at the refused connection, which is retried once.
#[test]
fn run_starts_without_a_round_trip_and_follows_a_moved_container() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start_at(std::time::Duration::from_millis(25));
    let (repo, ws, local) = one_remote_workspace(&sshd, "", &[]);
    // Warm: the master is up, and knows the engine.
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "{}", run.stderr);

    // Nothing gets through the relay; the command still runs, and ends.
    let proxy = sshd.proxy.as_ref().unwrap();
    proxy.hold();
    let started = std::time::Instant::now();
    let mut held = spawn_run(
        &repo,
        &ws,
        &["sh", "-c", "echo started"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let finished = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        held.try_wait().unwrap().is_some()
    });
    proxy.release();
    let out = held.wait_with_output().unwrap();
    assert!(
        finished,
        "ajj run waited on the remote host ({:?})",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");

    // A stale record: the container was recreated (on another remote port)
    // by a pass whose record is then put back as it was.
    let state = state_file(&repo, "feat");
    let recorded = std::fs::read(&state).unwrap();
    let remote_port = |v: &[u8]| -> u64 {
        serde_json::from_slice::<serde_json::Value>(v).unwrap()["remote_ports"]["web"]["8080"]
            .as_u64()
            .unwrap()
    };
    let container = repo.docker_names("container", "label=dev.aether.workspace=feat");
    let recreate = || {
        assert!(Command::new("docker")
            .args(["rm", "-f"])
            .args(&container)
            .env("DOCKER_HOST", real_docker_host())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success());
        repo.ajj(&["reconcile", "--json"]).success();
    };
    recreate();
    let moved = std::fs::read(&state).unwrap();
    assert_ne!(
        remote_port(&recorded),
        remote_port(&moved),
        "a new remote port"
    );
    std::fs::write(&state, &recorded).unwrap();
    let run = web_via_run(&repo, &ws);
    assert!(run.status.success(), "stale record: {}", run.stderr);
    assert_eq!(env_port(&ws, "WEB_PORT"), local);

    // Recreated after the check: the refused connection asks again.
    let mut late = spawn_run(
        &repo,
        &ws,
        &[
            "sh",
            "-c",
            "while [ ! -e moved ]; do sleep 0.1; done; curl -sf -o /dev/null \"$WEB_URL\"",
        ],
        Stdio::null(),
        Stdio::piped(),
    );
    eventually("the forward listens", 10, || listening(local));
    std::thread::sleep(std::time::Duration::from_millis(500));
    recreate();
    std::fs::write(ws.join("moved"), "").unwrap();
    let status = late.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut late.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "recreated after the check: {err}");
}
