//! One OpenSSH ControlMaster per repo and remote host, through the system
//! `ssh`: the user's `~/.ssh/config`, agent and `known_hosts` apply, as with
//! `docker -H ssh://`. It authenticates once; then the remote Docker socket
//! is forwarded to a local unix socket (bollard talks HTTP over it) and
//! every other connection is a channel of the same master (see `mux`).
//!
//! The master outlives the `ajj` that started it by `ControlPersist`, so a
//! warm command costs no handshake, and exits on its own once idle.

use super::mux;
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::ssh_target::SshTarget;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long an idle master waits for the next command.
pub const DEFAULT_PERSIST: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT_SECS: u32 = 10;
/// An ssh_config(5) file used instead of ~/.ssh/config (ssh's -F).
pub const CONFIG_ENV: &str = "AETHER_SSH_CONFIG";
/// Overrides `ControlPersist`, e.g. `30s` (humantime).
pub const PERSIST_ENV: &str = "AETHER_SSH_PERSIST";

#[derive(Debug, Clone)]
pub struct Master {
    pub target: SshTarget,
    /// The Docker Engine's socket on the remote.
    pub remote_socket: String,
    /// The ControlPath.
    pub control: PathBuf,
    /// The local end of the forwarded Docker socket.
    pub docker_socket: PathBuf,
    lock: PathBuf,
    persist: Duration,
}

/// `$XDG_RUNTIME_DIR/aether`, else `/tmp/aether-<uid>`: private (0700 and
/// ours), and short, because a unix socket path must fit in 108 bytes.
fn runtime_dir() -> Result<PathBuf> {
    let uid = unsafe { libc::getuid() };
    // A runtime dir that is set but missing (a stale variable) is ignored, as
    // the XDG spec's fallback rule says.
    let dir = match std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty() && Path::new(d).is_dir())
    {
        Some(d) => PathBuf::from(d).join("aether"),
        None => PathBuf::from(format!("/tmp/aether-{uid}")),
    };
    let fail = |e: std::io::Error| CommandError::io(format!("cannot prepare {}", dir.display()), e);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e)),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(fail)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(CommandError::new(
            ErrorCode::Io,
            format!("{} is not a private directory of this user", dir.display()),
        )
        .hint("remove it, or set XDG_RUNTIME_DIR to a directory only you can use"));
    }
    Ok(dir)
}

impl Master {
    pub fn new(
        repo_id: &str,
        target: SshTarget,
        remote_socket: String,
        persist: Duration,
    ) -> Result<Master> {
        let dir = runtime_dir()?;
        let mut h = Sha256::new();
        h.update(repo_id.as_bytes());
        h.update([0]);
        h.update(target.to_string().as_bytes());
        h.update([0]);
        h.update(remote_socket.as_bytes());
        let key: String = h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Master {
            control: dir.join(format!("{key}.ctl")),
            docker_socket: dir.join(format!("{key}.docker.sock")),
            lock: dir.join(format!("{key}.lock")),
            target,
            remote_socket,
            persist,
        })
    }

    /// `ssh` with the user's config (or `$AETHER_SSH_CONFIG`), never
    /// prompting: agents cannot answer prompts, so a question is an error.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        if let Some(cfg) = std::env::var_os(CONFIG_ENV).filter(|c| !c.is_empty()) {
            cmd.arg("-F").arg(cfg);
        }
        // `ajj tunnel` blocks signals to sigwait for them, and a child
        // inherits the mask: a master started from there would ignore
        // SIGTERM for the rest of its life. Start ssh with none blocked.
        // SAFETY: sigemptyset and sigprocmask are async-signal-safe, as
        // pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Ok(())
            });
        }
        cmd.arg("-S")
            .arg(&self.control)
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"))
            .stdin(Stdio::null());
        cmd
    }

    /// What an earlier command learnt of the remote engine through this
    /// master, kept beside its control socket for as long as the master
    /// lives: a new master makes a new socket (another inode), which voids
    /// it. It saves each later command the `/version` round trip.
    pub fn remembered(&self) -> Option<serde_json::Value> {
        let key = self.identity()?;
        let memo: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.memo()).ok()?).ok()?;
        (memo.get("master")?.as_str()? == key).then(|| memo.get("value").cloned())?
    }

    pub fn remember(&self, value: serde_json::Value) {
        let Some(key) = self.identity() else { return };
        let memo = serde_json::json!({ "master": key, "value": value });
        // A memo: failing to write it costs the next command a round trip.
        let _ = crate::base::fs::write_atomic(&self.memo(), memo.to_string().as_bytes(), 0o600);
    }

    /// Forgets what `remember` kept: the engine stopped answering, so the
    /// next command asks (and diagnoses) again.
    pub fn forget_remembered(&self) {
        let _ = std::fs::remove_file(self.memo());
    }

    fn memo(&self) -> PathBuf {
        self.control.with_extension("engine.json")
    }

    /// The control socket's identity: one per master process.
    fn identity(&self) -> Option<String> {
        let m = std::fs::symlink_metadata(&self.control).ok()?;
        Some(format!(
            "{}:{}:{}.{}",
            m.dev(),
            m.ino(),
            m.ctime(),
            m.ctime_nsec()
        ))
    }

    /// Whether a master of ours answers: its Docker forward accepts.
    pub fn is_up(&self) -> bool {
        UnixStream::connect(&self.docker_socket).is_ok()
    }

    /// Starts the master unless one is up. Serialised by a lock file, so
    /// concurrent commands share one master instead of racing to start two.
    pub fn ensure(&self) -> Result<()> {
        if self.is_up() {
            return Ok(());
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| CommandError::io(format!("cannot open {}", self.lock.display()), e))?;
        lock.lock()
            .map_err(|e| CommandError::io(format!("cannot lock {}", self.lock.display()), e))?;
        if self.is_up() {
            return Ok(());
        }
        if mux::alive(&self.control).is_err() {
            // A master that died leaves its socket; ssh will not replace it.
            let _ = std::fs::remove_file(&self.control);
        } else {
            // A live master without its Docker forward (it was cancelled):
            // close it and start afresh rather than guess its options.
            let _ = self
                .ssh()
                .args(["-O", "exit"])
                .args(self.target.args())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let started = std::time::Instant::now();
        let mut errors = tempfile::tempfile()
            .map_err(|e| CommandError::io("cannot create a temporary file", e))?;
        let status = self
            .ssh()
            .args(["-M", "-f", "-N"])
            .arg("-o")
            .arg(format!("ControlPersist={}", self.persist.as_secs().max(1)))
            .args([
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ])
            .arg("-L")
            .arg(format!(
                "{}:{}",
                self.docker_socket.display(),
                self.remote_socket
            ))
            .args(self.target.args())
            .stdout(Stdio::null())
            // A file, not a pipe: the backgrounded master keeps its stderr,
            // and a pipe would hold our caller's output open until it exits.
            .stderr(errors.try_clone().map_err(|e| CommandError::io("dup", e))?)
            .status()
            .map_err(|e| {
                CommandError::new(ErrorCode::SshUnreachable, format!("cannot run ssh: {e}"))
                    .hint("install the OpenSSH client (`apt-get install openssh-client`)")
            })?;
        let mut text = String::new();
        let _ = errors.rewind();
        let _ = errors.read_to_string(&mut text);
        if !status.success() {
            return Err(classify(&self.target, &text));
        }
        tracing::debug!(ms = started.elapsed().as_millis() as u64, target = %self.target, "ssh master started");
        Ok(())
    }

    /// The remote host's IPv4 routes (`/proc/net/route`) and its Docker
    /// `daemon.json`, in one round trip over the master; either is empty
    /// when unreadable. A new workspace network must overlap neither.
    pub fn host_addressing(&self) -> (String, String) {
        // A fixed command line: nothing typed by anyone reaches the shell.
        let out = self
            .ssh()
            .args(self.target.args())
            .arg("cat /proc/net/route 2>/dev/null; echo @@aether@@; cat /etc/docker/daemon.json 2>/dev/null; true")
            .stderr(Stdio::null())
            .output();
        let text = out
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        match text.split_once("@@aether@@") {
            Some((routes, daemon)) => (routes.to_string(), daemon.to_string()),
            None => (String::new(), String::new()),
        }
    }

    /// Why the remote Docker socket did not answer, asked over the master.
    /// Only called on failure, so the happy path costs no extra round trip.
    pub fn diagnose_docker(&self, cause: &str) -> CommandError {
        // `remote_socket` is validated to plain path characters, so it is
        // safe inside the remote shell's command line.
        let probe = format!(
            "test -S {0} && echo socket; test -r {0} -a -w {0} && echo access; command -v docker >/dev/null && echo cli; true",
            self.remote_socket
        );
        let out = self
            .ssh()
            .args(self.target.args())
            .arg(probe)
            .stderr(Stdio::null())
            .output();
        let said = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let host = self.target.to_string();
        let (message, hint) = if !said.contains("socket") {
            (
                format!(
                    "there is no Docker socket at {} on {host}",
                    self.remote_socket
                ),
                if said.contains("cli") {
                    "the docker CLI is there but the engine is not: start it (`sudo systemctl start docker`), or set `docker_socket` under [backend] in aether.toml".to_string()
                } else {
                    "install and start Docker Engine on the remote host, or set `docker_socket` under [backend] in aether.toml".to_string()
                },
            )
        } else if !said.contains("access") {
            (
                format!("the SSH user may not use the Docker socket {} on {host}", self.remote_socket),
                "add the user to the docker group on the remote (`sudo usermod -aG docker $USER`) and log in again".to_string(),
            )
        } else {
            (
                format!(
                    "the Docker Engine at {} on {host} does not answer",
                    self.remote_socket
                ),
                "check it on the remote host: `docker info`".to_string(),
            )
        };
        CommandError::new(ErrorCode::RemoteDockerUnavailable, message)
            .hint(hint)
            .detail("host", host)
            .detail("docker_socket", &self.remote_socket)
            .detail("cause", cause)
    }
}

/// Maps ssh's complaint (exit status 255) to a stable code and a fix.
pub fn classify(target: &SshTarget, stderr: &str) -> CommandError {
    let host = target.to_string();
    let known_hosts_name = match target.port {
        Some(p) if p != 22 => format!("[{}]:{p}", target.host),
        _ => target.host.clone(),
    };
    let said = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("@@@"))
        .collect::<Vec<_>>()
        .join("\n");
    let has = |needle: &str| stderr.contains(needle);
    let (code, message, hint) = if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("Host key for") && has("has changed")
    {
        (
            ErrorCode::SshHostKey,
            format!("the host key of {host} has changed since it was recorded in known_hosts"),
            format!("if the host was really reinstalled, verify its new key and run `ssh-keygen -R '{known_hosts_name}'`, then connect once with ssh to record it; otherwise someone may be intercepting the connection"),
        )
    } else if has("Host key verification failed")
        || has("No ED25519 host key is known")
        || has("host key is known")
    {
        (
            ErrorCode::SshHostKey,
            format!("the host key of {host} is not in known_hosts"),
            format!("connect once with `ssh {}` and check the fingerprint, or add it with `ssh-keyscan{} {} >> ~/.ssh/known_hosts`", target.args().join(" ").replace("-- ", ""), target.port.map(|p| format!(" -p {p}")).unwrap_or_default(), target.host),
        )
    } else if has("Permission denied") || has("Too many authentication failures") {
        (
            ErrorCode::SshAuthFailed,
            format!("{host} refused every key offered"),
            "load your key into the agent (`ssh-add`), or name it with IdentityFile in ~/.ssh/config; check the user name and the remote's authorized_keys".to_string(),
        )
    } else {
        (
            ErrorCode::SshUnreachable,
            format!("cannot connect to {host}"),
            "check the host name and port, that sshd runs there, and the network; `ssh -v` shows where it stops".to_string(),
        )
    };
    CommandError::new(code, message)
        .hint(hint)
        .detail("host", host)
        .detail("ssh_said", said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(stderr: &str) -> ErrorCode {
        classify(&SshTarget::parse("dev@box:2222").unwrap(), stderr).code
    }

    #[test]
    fn classifies_what_ssh_says() {
        assert_eq!(
            code("ssh: connect to host box port 2222: Connection refused\r\n"),
            ErrorCode::SshUnreachable
        );
        assert_eq!(
            code("ssh: Could not resolve hostname box: Name or service not known"),
            ErrorCode::SshUnreachable
        );
        assert_eq!(
            code("ssh: connect to host 10.0.0.1 port 22: Connection timed out"),
            ErrorCode::SshUnreachable
        );
        assert_eq!(
            code("dev@box: Permission denied (publickey)."),
            ErrorCode::SshAuthFailed
        );
        assert_eq!(code("No ED25519 host key is known for [box]:2222 and you have requested strict checking.\r\nHost key verification failed."), ErrorCode::SshHostKey);
        let changed = "@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@\nHost key verification failed.";
        let err = classify(&SshTarget::parse("dev@box:2222").unwrap(), changed);
        assert_eq!(err.code, ErrorCode::SshHostKey);
        assert!(err.message.contains("changed"));
        assert!(err.hint.unwrap().contains("ssh-keygen -R '[box]:2222'"));
    }
}
