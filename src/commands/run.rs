//! `ajj run -- cmd args…`: the command, with the workspace's `.env` laid over
//! the inherited environment. No shell. Locally no runtime and no Docker
//! connection either: the variables are already in `.env`, so this costs a
//! file read. On a remote backend it opens the forwards first (one Docker
//! list call over the warm SSH master) and they close when it exits.

use crate::backend::ssh::forward;
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::tunnel;
use crate::commands::CommandHelper;
use crate::model::envfile;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Run a command with the workspace's variables loaded
///
/// Reads the workspace's .env (Aether's block and your own lines), runs the
/// command without a shell, forwards SIGINT and SIGTERM to it and exits with
/// its exit code (128+N if it was killed by signal N). On a remote backend,
/// the services' local ports are forwarded to the remote host while the
/// command runs, and only then.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Capture instead: one JSON object on stdout with exit_code, stdout
    /// and stderr (at most 1 MiB each; `*_truncated` flags a cut). Stdin is
    /// not attached
    #[arg(long)]
    pub json: bool,
    /// Stop the command after this long (`30s`, `5m`): SIGTERM, then
    /// SIGKILL 5s later; exits 124, as timeout(1) does
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The command and its arguments (write them after `--`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

static CHILD: AtomicI32 = AtomicI32::new(0);

/// Forwards a signal that another process sent us. One that came from the
/// terminal (Ctrl-C) already reached the child, which shares our process
/// group; sending it again would make it look like a double Ctrl-C.
extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let child = CHILD.load(Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_kernel = unsafe { (*info).si_code } == libc::SI_KERNEL;
    if child > 0 && !from_kernel {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

fn install_forwarding() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: a zeroed sigaction with a valid handler and SA_SIGINFO is well-formed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| crate::commands::parse_duration_flag("--timeout", t))
        .transpose()?;
    let start = helper.start_dir()?;
    let root = crate::model::repo::workspace_root(&start).ok_or_else(|| {
        CommandError::new(
            ErrorCode::NotInWorkspace,
            format!("{} is not inside a jj workspace", start.display()),
        )
        .hint("cd into a workspace made by `ajj workspace add`, or pass -R <path>")
    })?;
    // Every line: the user chose to run this command here (README, "Trust").
    // Only the hooks' own controls are left out, so that a `.env` cannot
    // steer what the hook of a shell started here loads or restores.
    let mut vars = envfile::read_all(&root)?;
    vars.retain(|(k, _)| {
        k != crate::commands::env::STATE_VAR && k != crate::model::trust::ALLOW_VAR
    });
    if vars.is_empty() && !root.join(envfile::FILE_NAME).exists() {
        eprintln!(
            "warning: {} has no .env; run `ajj reconcile` to write it",
            root.display()
        );
    }

    // Forwards come up before the command starts and go when it ends (or
    // when ajj dies: they are this process's own sockets).
    let opened = match crate::model::repo::RepoContext::discover(&root) {
        Ok(ctx) => tunnel::open(helper, &ctx, &root, || {
            forward::master_died("the master exited while the command ran").report(false);
        })?,
        Err(_) => None,
    };
    if let Some(o) = &opened {
        tunnel::warn_missing(o);
    }

    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut cmd = Command::new(program);
    cmd.args(rest).envs(vars);
    if args.json {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    install_forwarding();
    let mut child = cmd.spawn().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::PermissionDenied {
            126
        } else {
            127
        };
        let mut err = CommandError::new(
            ErrorCode::CommandNotFound,
            format!("cannot run {}: {e}", program.to_string_lossy()),
        )
        .hint("check the command name and PATH")
        .detail("command", program.to_string_lossy());
        if code == 126 {
            err = err.detail("exit_code", 126);
        }
        err
    })?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(after) = timeout {
        stop_after(child.id() as i32, after, timed_out.clone());
    }
    let captured = args.json.then(|| {
        let limit = crate::commands::exec::OUTPUT_LIMIT;
        let out = capture(child.stdout.take().expect("piped"), limit);
        let err = capture(child.stderr.take().expect("piped"), limit);
        (out, err)
    });
    let status = child
        .wait()
        .map_err(|e| CommandError::io("waiting for the command", e))?;
    // Reaped: the timer must not signal a pid that may be reused.
    CHILD.store(0, Ordering::SeqCst);
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let timed_out = timed_out.load(Ordering::SeqCst);
    if let Some((out, err)) = captured {
        let (stdout, stdout_truncated) = out.join().unwrap_or_default();
        let (stderr, stderr_truncated) = err.join().unwrap_or_default();
        crate::commands::print_json(&serde_json::json!({
            "schema_version": crate::reconcile::report::SCHEMA_VERSION,
            "exit_code": code,
            "stdout": String::from_utf8_lossy(&stdout),
            "stderr": String::from_utf8_lossy(&stderr),
            "stdout_truncated": stdout_truncated,
            "stderr_truncated": stderr_truncated,
            "limit_bytes": crate::commands::exec::OUTPUT_LIMIT,
            "timed_out": timed_out,
        }));
    }
    let code = if timed_out { 124 } else { code };
    if let Some(o) = &opened {
        o.forwarder.close();
        // Reported when it happened; a command that still succeeded must
        // not hide that it ran without its services for a while.
        if o.forwarder.lost() && code == 0 {
            return Ok(ErrorCode::SshMasterDied.exit_code());
        }
    }
    Ok(code)
}

/// SIGTERM to the command after `after`, SIGKILL 5s later, unless it ended.
fn stop_after(pid: i32, after: Duration, fired: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        for (sig, then) in [
            (libc::SIGTERM, Duration::from_secs(5)),
            (libc::SIGKILL, Duration::ZERO),
        ] {
            if CHILD.load(Ordering::SeqCst) != pid {
                return;
            }
            fired.store(true, Ordering::SeqCst);
            // SAFETY: kill has no memory effects; the pid is our unreaped child.
            unsafe { libc::kill(pid, sig) };
            std::thread::sleep(then);
        }
    });
}

/// Reads a pipe to its end on a thread, keeping at most `limit` bytes.
fn capture(
    mut pipe: impl Read + Send + 'static,
    limit: usize,
) -> std::thread::JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut cut = false;
        let mut buf = [0u8; 16384];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = limit.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            cut |= n > room;
        }
        (kept, cut)
    })
}
