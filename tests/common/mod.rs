//! Shared set-up for integration tests: real `ajj`, real `jj`, the real
//! Docker Engine. Each test gets its own repo in a temp dir, a hermetic
//! environment, and a label on every object it makes so that a killed run
//! is swept by the next one.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod delay;

pub const BUSYBOX: &str = "aether-test/busybox:1";
pub const POSTGRES: &str = "aether-test/postgres:15";
/// PATH with the ajj under test first, as an installed ajj would be.
pub fn path_with_ajj() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_ajj")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs `script` with `program -c` in `dir`, hermetic, with ajj on PATH and
/// `env` set; asserts it succeeds and returns its stdout.
pub fn shell_in(
    repo: &TestRepo,
    dir: &Path,
    program: &str,
    script: &str,
    env: &[(&str, &str)],
) -> String {
    let mut cmd = Command::new(program);
    repo.hermetic(&mut cmd);
    cmd.env("PATH", path_with_ajj())
        .envs(env.iter().copied())
        .args(["-c", script])
        .current_dir(dir);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `DOCKER_HOST` where no engine answers.
pub const DEAD_DOCKER_HOST: &str = "unix:///nonexistent/aether-test-local-docker.sock";

/// The engine the tests run on, as this process reaches it.
pub fn real_docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Label on every Docker object a test makes; its value is the test process id.
pub const TEST_LABEL: &str = "aether-test.pid";

/// `None` (with a message) when Docker or jj is missing, unless
/// `AETHER_REQUIRE_DOCKER=1` makes that a failure.
pub fn env() -> Option<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let docker = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        if !matches!(&docker, Ok(o) if o.status.success()) {
            return Err("no reachable Docker Engine".into());
        }
        if !matches!(Command::new("jj").arg("--version").output(), Ok(o) if o.status.success()) {
            return Err("no `jj` on PATH".into());
        }
        sweep();
        let build = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build.sh"))
            .status()
            .map_err(|e| e.to_string())?;
        if !build.success() {
            return Err("building the test images failed".into());
        }
        Ok(())
    });
    match ready {
        Ok(()) => Some(()),
        Err(why) if std::env::var("AETHER_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("integration tests need Docker and jj: {why}")
        }
        Err(why) => {
            eprintln!(
                "skipping integration test: {why} (set AETHER_REQUIRE_DOCKER=1 to fail instead)"
            );
            None
        }
    }
}

fn pid_alive(pid: &str) -> bool {
    !pid.is_empty() && Path::new("/proc").join(pid).exists()
}

/// Removes objects labelled by test processes that no longer run.
fn sweep() {
    let me = std::process::id().to_string();
    let kinds: [(&[&str], &[&str]); 3] = [
        (&["ps", "-a"], &["rm", "-f"]),
        (&["volume", "ls"], &["volume", "rm", "-f"]),
        (&["network", "ls"], &["network", "rm"]),
    ];
    for (list, rm) in kinds {
        let format = if list[0] == "ps" {
            "{{.ID}} {{.Label \"aether-test.pid\"}}"
        } else {
            "{{.Name}} {{.Label \"aether-test.pid\"}}"
        };
        let out = Command::new("docker")
            .args(list)
            .args([
                "--filter",
                &format!("label={TEST_LABEL}"),
                "--format",
                format,
            ])
            .output()
            .expect("docker");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((id, pid)) = line.split_once(' ') else {
                continue;
            };
            if pid != me && !pid_alive(pid) {
                let _ = Command::new("docker").args(rm).arg(id).output();
            }
        }
    }
}

pub struct TestRepo {
    pub base: PathBuf,
    pub main: PathBuf,
    home: PathBuf,
    /// Variables every command of this repo gets (e.g. the SSH set-up).
    extra_env: std::sync::Mutex<Vec<(String, String)>>,
    _tmp: tempfile::TempDir,
}

impl TestRepo {
    /// A fresh jj repo at `<tmp>/main` whose first commit holds `aether.toml`
    /// (if given) and a `.gitignore` with `.env`.
    pub fn new(config: Option<&str>) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("aether-it-")
            .tempdir()
            .unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let home = base.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let repo = TestRepo {
            main: base.join("main"),
            base,
            home,
            extra_env: Default::default(),
            _tmp: tmp,
        };
        repo.jj_in(&repo.base, &["git", "init", "main"]).success();
        std::fs::write(repo.main.join(".gitignore"), ".env\n").unwrap();
        if let Some(c) = config {
            std::fs::write(repo.main.join("aether.toml"), c).unwrap();
        }
        repo.jj(&["commit", "-m", "initial"]).success();
        repo
    }

    pub fn hermetic(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("JJ_USER", "Test User")
            .env("JJ_EMAIL", "test@example.com")
            .env("JJ_CONFIG", self.home.join("jj-config.toml"))
            .env(
                "AETHER_EXTRA_LABELS",
                format!("{TEST_LABEL}={}", std::process::id()),
            );
        if let Some(h) = std::env::var_os("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", h);
        }
        for (k, v) in self.extra_env.lock().unwrap().iter() {
            cmd.env(k, v);
        }
    }

    /// Sets a variable for every later command of this repo.
    pub fn set_env(&self, key: &str, value: impl Into<String>) {
        let mut env = self.extra_env.lock().unwrap();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.into()));
    }

    /// Where this repo's commands keep runtime files (the SSH sockets).
    pub fn runtime_dir(&self) -> PathBuf {
        self.base.join("run")
    }

    /// Points the repo's commands at `sshd` and a runtime dir of their own.
    pub fn use_sshd(&self, sshd: &Sshd) {
        let run = self.runtime_dir();
        std::fs::create_dir_all(&run).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        self.set_env("XDG_RUNTIME_DIR", run.display().to_string());
        self.set_env("AETHER_SSH_CONFIG", sshd.ssh_config.display().to_string());
        // Masters left by a test go soon after it, not minutes later.
        self.set_env("AETHER_SSH_PERSIST", "3s");
        // The "remote" engine is this machine's too: with the local one out
        // of reach, a call sent to the wrong backend fails instead of passing.
        self.set_env("DOCKER_HOST", DEAD_DOCKER_HOST);
    }

    pub fn jj_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new("jj");
        self.hermetic(&mut cmd);
        cmd.args(args).current_dir(dir);
        Run::from(cmd.output().unwrap(), "jj", args)
    }

    pub fn jj(&self, args: &[&str]) -> Run {
        self.jj_in(&self.main, args)
    }

    /// An `ajj` command in `dir`, ready to adjust and run.
    pub fn ajj_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ajj"));
        self.hermetic(&mut cmd);
        cmd.args(args).current_dir(dir);
        cmd
    }

    pub fn ajj_in(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(self.ajj_cmd(dir, args).output().unwrap(), "ajj", args)
    }

    pub fn ajj(&self, args: &[&str]) -> Run {
        self.ajj_in(&self.main, args)
    }

    pub fn ws(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// `ajj workspace add ../<name> --json`, asserted to succeed.
    pub fn add(&self, name: &str) -> Value {
        self.ajj(&["workspace", "add", &format!("../{name}"), "--json"])
            .success()
            .json()
    }

    pub fn workspace_names(&self) -> Vec<String> {
        let out = self
            .jj(&["workspace", "list", "-T", "name ++ \"\\n\""])
            .success();
        out.stdout.lines().map(String::from).collect()
    }

    /// The `dev.aether.repo` label value: sha256 of the store's path, as ajj computes it.
    pub fn repo_id(&self) -> String {
        use sha2::Digest;
        let store = self.main.join(".jj/repo").canonicalize().unwrap();
        let digest = sha2::Sha256::digest(store.as_os_str().as_encoded_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()[..12]
            .to_string()
    }

    /// Names of this repo's Docker objects of one kind (`container`,
    /// `volume`, `network`) matching a `docker … --filter`.
    pub fn docker_names(&self, kind: &str, filter: &str) -> Vec<String> {
        docker_names(
            kind,
            &[&format!("label=dev.aether.repo={}", self.repo_id()), filter],
        )
    }
}

/// `rm -rf`, as a user types it while `ajj watch` may be writing into the
/// directory (its `.env`): "Directory not empty" is a race with that
/// writer, and the user would type it again.
pub fn rm_rf(path: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir_all(path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("rm -rf {}: {e}", path.display()),
        }
    }
    panic!("rm -rf {}: still not empty after 50 tries", path.display());
}

/// The entries of a colocated repo's `.git/worktrees`: jj 0.46 makes one
/// per plain workspace there, and none may outlive its directory.
pub fn git_worktrees(repo: &TestRepo) -> Vec<String> {
    std::fs::read_dir(repo.main.join(".git/worktrees"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Names of Docker objects of one kind matching every filter. Label
/// filters are checked again on the answer: Podman 4.3.1 ORs them when it
/// lists volumes.
pub fn docker_names(kind: &str, filters: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("docker");
    let format = "{{.Names}}\t{{.Labels}}";
    match kind {
        "container" => cmd.args(["ps", "-a", "--format", format]),
        "volume" => cmd.args(["volume", "ls", "--format", &format.replace("Names", "Name")]),
        _ => cmd.args([
            "network",
            "ls",
            "--format",
            &format.replace("Names", "Name"),
        ]),
    };
    for f in filters {
        cmd.args(["--filter", f]);
    }
    let out = cmd.output().unwrap();
    // An empty list is the answer to "is anything left?": it must come from
    // docker answering, not from docker failing.
    assert!(
        out.status.success(),
        "docker {kind} list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let label_filters: Vec<&str> = filters
        .iter()
        .filter_map(|f| f.strip_prefix("label="))
        .collect();
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, labels) = line.split_once('\t').unwrap_or((line, ""));
            let labels: Vec<&str> = labels.split(',').collect();
            let matches = label_filters.iter().all(|f| {
                if f.contains('=') {
                    labels.contains(f)
                } else {
                    labels.iter().any(|l| l.split('=').next() == Some(*f))
                }
            });
            matches.then(|| name.to_string())
        })
        .collect();
    names.sort();
    names
}

impl Drop for TestRepo {
    fn drop(&mut self) {
        // Best effort: forget every workspace so its objects go with the test.
        let mut cmd = Command::new("jj");
        self.hermetic(&mut cmd);
        cmd.args(["workspace", "list", "-T", "name ++ \"\\n\""])
            .current_dir(&self.main);
        let names: Vec<String> = cmd
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            let mut args = vec!["workspace", "forget"];
            args.extend(names.iter().map(String::as_str));
            let _ = self.ajj_cmd(&self.main, &args).output();
        }
    }
}

pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Run {
    pub fn from(o: Output, program: &str, args: &[&str]) -> Self {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            what: format!("{program} {}", args.join(" ")),
        }
    }

    pub fn success(self) -> Self {
        assert!(
            self.status.success(),
            "`{}` failed ({:?})\nstdout: {}\nstderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Failed with exit status 1, as README promises for every error but
    /// `USAGE` (2) and `COMMAND_NOT_FOUND` (127): a panic (101) or a
    /// signal is not a failure the user was promised.
    pub fn failure(self) -> Self {
        self.failure_with(1)
    }

    /// Failed with exactly this exit status.
    pub fn failure_with(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "`{}` should fail with exit status {code} ({:?})\nstdout: {}\nstderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not one JSON object ({e}): {:?}\nstderr: {}",
                self.what, self.stdout, self.stderr
            )
        })
    }

    /// The error code of a `--json` failure.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Parses a `.env` with dotenvy.
pub fn dotenv(path: &Path) -> BTreeMap<String, String> {
    dotenvy::from_path_iter(path)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

pub fn busybox_web(extra: &str) -> String {
    format!(
        r#"[services.web]
image = "{BUSYBOX}"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
ports = [8080]
stop_timeout = "1s"
connection_string = "http://{{host}}:{{port}}/"
{extra}
"#
    )
}

pub fn postgres_db() -> String {
    format!(
        r#"[services.db]
image = "{POSTGRES}"
ports = [5432]
env = {{ POSTGRES_PASSWORD = "pass" }}
command = ["postgres", "-c", "fsync=off"]
volumes = {{ data = "/var/lib/postgresql/data" }}
healthcheck = {{ command = ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"], interval = "200ms", retries = 100 }}
connection_string = "postgres://postgres:pass@{{host}}:{{port}}/postgres"
stop_timeout = "2s"

[env]
DATABASE_URL = "{{db.url}}"
"#
    )
}

/// Fetches a URL with curl; `None` when it does not answer.
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The id of an existing container; panics when docker cannot inspect it.
pub fn container_id(name: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker inspect {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The actions of a `reconcile --json` result that concern one workspace.
pub fn actions_for<'a>(pass: &'a Value, workspace: &str) -> Vec<&'a Value> {
    pass["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["workspace"] == workspace)
        .collect()
}

/// A running `ajj watch --json`, its events read on a thread.
pub struct WatchProc {
    pub child: std::process::Child,
    events: std::sync::mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
    /// Its stderr, read as it comes: a pipe nobody reads fills up and
    /// blocks the watcher.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl TestRepo {
    /// Starts `ajj watch --json` in the main workspace and waits for its first pass.
    pub fn watch(&self, args: &[&str], env: &[(&str, &str)]) -> WatchProc {
        let mut all = vec!["watch", "--json"];
        all.extend_from_slice(args);
        let mut cmd = self.ajj_cmd(&self.main, &all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let (mut pipe, text) = (child.stderr.take().unwrap(), stderr.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    text.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("watch printed a non-JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut w = WatchProc {
            child,
            events: rx,
            seen: Vec::new(),
            stderr,
        };
        w.wait_for("the first pass", 30, |e| e["event"] == "pass_finished");
        w
    }
}

/// Whether `e` is a pass that `cause` woke, alone or with other triggers of
/// the same burst.
pub fn pass_caused_by(e: &Value, cause: &str) -> bool {
    e["event"] == "pass_started"
        && e["causes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == cause))
}

/// Every field README and ARCHITECTURE.md document for each watch event,
/// checked on every event any test reads.
pub fn check_watch_event(e: &Value) {
    let fields: &[&str] = match e["event"].as_str().unwrap_or_default() {
        "watching" => &["repo", "pid"],
        "pass_started" => &["cause", "causes", "latency_ms", "held"],
        "action" => &["action", "workspace", "duration_ms"],
        "env_written" | "recovered" => &["workspace"],
        "warning" => &["message"],
        "error" => &["workspace", "code", "message", "hint", "details"],
        "crash_loop" => &["workspace", "service", "exit_code", "hold_ms", "logs"],
        "pass_finished" => &["duration_ms", "actions", "errors"],
        "backend_unreachable" | "backend_reconnected" => &[],
        "stopped" => &["signal"],
        other => panic!("an undocumented watch event {other:?}: {e}"),
    };
    let obj = e.as_object().unwrap();
    for f in ["event", "ts"].iter().chain(fields) {
        assert!(obj.contains_key(*f), "watch event lacks `{f}`: {e}");
    }
    let ts = e["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "ts is not an RFC 3339 UTC time: {e}"
    );
}

impl WatchProc {
    /// The next event matching `pred`, within `secs`; panics with every event seen.
    pub fn wait_for(&mut self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    check_watch_event(&e);
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Err(_) => panic!(
                    "watcher: no event for {what} within {secs}s; saw:\n{}",
                    self.seen
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    /// Events that arrived so far, without waiting.
    pub fn drain(&mut self) -> Vec<Value> {
        let new: Vec<Value> = self.events.try_iter().collect();
        new.iter().for_each(check_watch_event);
        self.seen.extend(new.iter().cloned());
        new
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit, at most `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "watcher still running after {secs}s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for WatchProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it holds, or panics after `secs`.
pub fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {secs}s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A real OpenSSH server on 127.0.0.1 at a free, non-default port, with a
/// host key and a client key made for this test only. Docker is "remote"
/// behind it: the same engine, reached only through SSH.
pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    pub user: String,
    /// A client config that trusts this server and offers its key.
    pub ssh_config: PathBuf,
    /// Distance: a delaying relay in front of sshd, which `host` names.
    pub proxy: Option<delay::DelayProxy>,
    child: std::process::Child,
    _tmp: tempfile::TempDir,
}

/// `AETHER_TEST_SSH_DELAY_MS`: every `Sshd` of the run sits behind a relay
/// adding that one-way delay (TESTING.md, "Distance").
pub const SSH_DELAY_ENV: &str = "AETHER_TEST_SSH_DELAY_MS";

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "aether-test", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// A server at the suite's distance (`AETHER_TEST_SSH_DELAY_MS`, else
    /// none).
    pub fn start() -> Sshd {
        let ms = std::env::var(SSH_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Self::start_at(std::time::Duration::from_millis(ms))
    }

    /// A server reached through a relay adding `one_way` each way (none
    /// for zero).
    pub fn start_at(one_way: std::time::Duration) -> Sshd {
        let mut sshd = Self::start_here();
        if !one_way.is_zero() {
            let proxy = delay::DelayProxy::start(sshd.port, one_way);
            // The relay's port is another host to ssh: trust the same key.
            let host_pub = std::fs::read_to_string(sshd.dir.join("host_key.pub")).unwrap();
            let known = sshd.dir.join("known_hosts");
            let mut text = std::fs::read_to_string(&known).unwrap();
            text.push_str(&format!("[127.0.0.1]:{} {host_pub}", proxy.port));
            std::fs::write(&known, text).unwrap();
            sshd.proxy = Some(proxy);
        }
        sshd
    }

    fn start_here() -> Sshd {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("remote tests need OpenSSH's sshd (apt-get install openssh-server)");
        let tmp = tempfile::Builder::new()
            .prefix("aether-sshd-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        keygen(&dir.join("stranger_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        for attempt in 0..5 {
            let port = free_port();
            std::fs::write(
                dir.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                     UsePAM no\nStrictModes no\nPidFile none\nAllowTcpForwarding yes\nAllowStreamLocalForwarding yes\n\
                     MaxSessions 100\nMaxStartups 100\n",
                    d = dir.display()
                ),
            )
            .unwrap();
            let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
            std::fs::write(
                dir.join("known_hosts"),
                format!("[127.0.0.1]:{port} {host_pub}"),
            )
            .unwrap();
            let ssh_config = dir.join("ssh_config");
            std::fs::write(
                &ssh_config,
                Self::client_config(&dir, "client_key", "known_hosts"),
            )
            .unwrap();
            let mut child = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(dir.join("sshd_config"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
                .spawn()
                .unwrap();
            let up = (0..100).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                listening(port)
            });
            if up && child.try_wait().unwrap().is_none() {
                return Sshd {
                    port,
                    dir,
                    user,
                    ssh_config,
                    proxy: None,
                    child,
                    _tmp: tmp,
                };
            }
            // Another process took the port first: pick again.
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("sshd did not start on port {port} (attempt {attempt})");
        }
        panic!(
            "sshd would not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        )
    }

    fn client_config(dir: &Path, key: &str, known_hosts: &str) -> String {
        format!(
            "Host *\n  IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {d}/{known_hosts}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            d = dir.display()
        )
    }

    /// A client config offering another key, or trusting other host keys.
    pub fn variant_config(&self, name: &str, key: &str, known_hosts_text: &str) -> PathBuf {
        let kh = format!("known_hosts_{name}");
        std::fs::write(self.dir.join(&kh), known_hosts_text).unwrap();
        let path = self.dir.join(format!("ssh_config_{name}"));
        std::fs::write(&path, Self::client_config(&self.dir, key, &kh)).unwrap();
        path
    }

    /// `user@127.0.0.1:port`, as aether.toml's `host`.
    pub fn host(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.client_port())
    }

    /// The port clients dial: the relay's when there is one.
    pub fn client_port(&self) -> u16 {
        self.proxy.as_ref().map_or(self.port, |p| p.port)
    }

    /// The `[backend]` of a workspace on this "remote" host: the engine
    /// the tests use (Docker's socket by default, Podman's when
    /// `DOCKER_HOST` names it), reached through SSH.
    pub fn backend_toml(&self, extra: &str) -> String {
        let socket = match real_docker_host().strip_prefix("unix://") {
            Some(path) if path != "/var/run/docker.sock" && !extra.contains("docker_socket") => {
                format!("docker_socket = \"{path}\"\n")
            }
            _ => String::new(),
        };
        format!(
            "[backend]\nkind = \"docker-ssh\"\nhost = \"{}\"\n{socket}{extra}\n",
            self.host()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line mentions `needle` (e.g. a runtime dir).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
