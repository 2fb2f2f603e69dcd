//! `ajj exec SERVICE -- CMD…`: a command in one of the workspace's running
//! containers, through the backend seam (so it works wherever the engine
//! is). Interactive by default: stdin attached, output streamed, a TTY when
//! this terminal is one. `--json` captures instead, within stated limits.

use crate::backend::docker::DockerBackend;
use crate::backend::{Backend, ServiceState};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::{self, print_json, CommandHelper};
use crate::model::config;
use crate::reconcile::report::SCHEMA_VERSION;
use futures_util::StreamExt;
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use tokio::io::AsyncWriteExt;

/// What `--json` keeps of each of stdout and stderr; the rest is read and
/// dropped, and `stdout_truncated` / `stderr_truncated` say so.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// Run a command in a service's running container
///
/// Runs the command without a shell in the container of SERVICE of the
/// current workspace, with stdin attached, and exits with its exit code.
/// It gets a TTY when stdin and stdout are terminals (-T refuses one, -t
/// forces one). Works on a remote backend.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The service, as named in aether.toml
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::commands::completions::service_names))]
    pub service: String,
    /// The command and its arguments (write them after `--`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
    /// Give the command a TTY even when this is not a terminal
    #[arg(short = 't', long, conflicts_with_all = ["no_tty", "json"])]
    pub tty: bool,
    /// Never give the command a TTY
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Capture instead: one JSON object on stdout with exit_code, stdout and
    /// stderr (at most 1 MiB each; `*_truncated` flags a cut). Stdin is not
    /// attached
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let workspace = helper.workspace_here(&ctx)?;
    let config = config::load_from_root(&ctx.workspace_root)?;
    commands::declared_services(&config, &workspace, std::slice::from_ref(&args.service))?;
    let tty = !args.json
        && !args.no_tty
        && (args.tty || (std::io::stdin().is_terminal() && std::io::stdout().is_terminal()));
    crate::base::runtime::block_on(async {
        let spec = helper.workspace_backend(&ctx, &workspace)?;
        let backend = helper.connect(&ctx, &spec).await?;
        let observed = backend.containers_at(&ctx.workspace_root).await?;
        let container = observed
            .iter()
            .find(|c| c.service == args.service && c.state == ServiceState::Running)
            .ok_or_else(|| {
                CommandError::new(
                    ErrorCode::ServiceNotRunning,
                    format!("{workspace}/{} has no running container", args.service),
                )
                .hint("`ajj status` shows its state; `ajj reconcile` starts it")
                .detail("service", &args.service)
            })?;
        if args.json {
            let output = backend
                .exec(&container.name, &args.command, OUTPUT_LIMIT)
                .await?;
            print_json(&json!({
                "schema_version": SCHEMA_VERSION,
                "workspace": workspace,
                "service": args.service,
                "exit_code": output.exit_code,
                "stdout": String::from_utf8_lossy(&output.stdout),
                "stderr": String::from_utf8_lossy(&output.stderr),
                "stdout_truncated": output.stdout_truncated,
                "stderr_truncated": output.stderr_truncated,
                "limit_bytes": OUTPUT_LIMIT,
            }));
            return Ok(exit_status(output.exit_code));
        }
        attached(&backend, &container.name, &args.command, tty).await
    })
}

/// A command's exit code as ours: -1 (unknown) and codes past 255 as 255.
fn exit_status(code: Option<i64>) -> i32 {
    code.map_or(255, |c| c.clamp(0, 255)) as i32
}

/// Runs the command with this process's stdin, stdout and stderr.
async fn attached(
    backend: &DockerBackend,
    container: &str,
    argv: &[String],
    tty: bool,
) -> Result<i32> {
    let size = tty.then(terminal_size);
    let session = backend.exec_attached(container, argv, size).await?;
    // Raw after the start, so an error above prints on a sane terminal;
    // restored when this returns, whichever way.
    let _raw = tty.then(RawMode::enter).flatten();

    // Stdin is read on a thread of its own: a blocking read cannot be
    // cancelled, and the process exits without waiting for it.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut input = session.input;
    let pump = async move {
        while let Some(chunk) = rx.recv().await {
            if input.write_all(&chunk).await.is_err() || input.flush().await.is_err() {
                break;
            }
        }
        // End of our stdin: close the command's.
        let _ = input.shutdown().await;
        std::future::pending::<()>().await
    };
    let resize = async {
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return std::future::pending().await;
        };
        while winch.recv().await.is_some() {
            if tty {
                let _ = backend.exec_resize(&session.id, terminal_size()).await;
            }
        }
        std::future::pending::<()>().await
    };
    let mut output = session.output;
    let copy_out = async {
        while let Some(chunk) = output.next().await {
            let (to_stderr, bytes) = chunk?;
            // A closed stdout (`| head`) drops the rest, as a pipe would.
            let _ = if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(&bytes).and_then(|_| err.flush())
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes).and_then(|_| out.flush())
            };
        }
        Ok::<_, CommandError>(())
    };
    tokio::select! {
        r = copy_out => r?,
        _ = pump => unreachable!("the pump never ends"),
        _ = resize => unreachable!("resizing never ends"),
    }
    // The output ends as the command exits; its code may lag a moment.
    for _ in 0..50 {
        if let Some(code) = backend.exec_exit_code(&session.id).await? {
            return Ok(exit_status(Some(code)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(exit_status(None))
}

/// This terminal's (columns, rows), or 80×24 when it has none.
fn terminal_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ fills a winsize; a zeroed one is a valid start.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    for fd in [1, 0, 2] {
        // SAFETY: ioctl with TIOCGWINSZ writes at most one winsize.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return (ws.ws_col, ws.ws_row);
        }
    }
    (80, 24)
}

/// The terminal on stdin in raw mode (keys go to the container's TTY as
/// typed, Ctrl-C included), restored on drop.
struct RawMode(libc::termios);

impl RawMode {
    fn enter() -> Option<RawMode> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: tcgetattr fills the termios on success; we only use it then.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}
