//! `ajj logs`: what the workspace's services wrote, through the backend
//! seam (so it works wherever the engine is), interleaved by the engine's
//! timestamps and prefixed with the service name as Compose does.
//!
//! `--follow` is level-triggered like the reconciler: each service has a
//! cursor (the newest timestamp printed), and whenever its stream ends (the
//! container stopped, restarted or was replaced) the current container is
//! looked up again and read from the cursor on, so nothing is printed twice
//! and a restart does not end the command.

use crate::backend::docker::DockerBackend;
use crate::backend::{Backend, Fault, LogLine, LogQuery, ObservedContainer, ServiceState};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::{self, CommandHelper};
use crate::model::repo::RepoContext;
use crate::model::{config, jj};
use futures_util::StreamExt;
use serde_json::json;
use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a follower whose stream ended looks for the service again,
/// and how often `--follow` checks whether the workspace was forgotten.
const RECHECK: Duration = Duration::from_millis(300);
const GONE_CHECK: Duration = Duration::from_secs(1);

/// Show what the workspace's services wrote
///
/// Every service of the current workspace by default, interleaved in time
/// order, each line prefixed with its service. Works on a remote backend.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these services (default: every service in aether.toml)
    #[arg(value_name = "SERVICE",
          add = clap_complete::ArgValueCompleter::new(crate::commands::completions::service_names))]
    pub services: Vec<String>,
    /// Keep printing new lines, across restarts and recreations, until
    /// Ctrl-C or until the workspace is forgotten (exit 0 either way)
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each service
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since then: a duration ago (`10m`, `1h30m`) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Prefix each line with the engine's timestamp (RFC 3339, UTC)
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// One JSON object per line: service, stream, ts, line
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let workspace = helper.workspace_here(&ctx)?;
    let config = config::load_from_root(&ctx.workspace_root)?;
    let services = commands::declared_services(&config, &workspace, &args.services)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let printer = Printer::new(&args, &services);
    crate::base::runtime::block_on(async {
        let spec = helper.workspace_backend(&ctx, &workspace)?;
        let backend = helper.connect(&ctx, &spec).await?;
        let observed = backend.containers_at(&ctx.workspace_root).await?;

        // What is there now, every service's lines sorted together.
        let mut history = Vec::new();
        let mut missing = Vec::new();
        let mut cursors = Vec::new();
        for service in &services {
            let Some(container) = pick(&observed, service) else {
                missing.push(service.clone());
                cursors.push(None);
                continue;
            };
            let query = LogQuery {
                tail: args.tail,
                since,
                follow: false,
            };
            let lines = read_all(&backend, &container.name, query).await?;
            cursors.push(Some(lines.iter().map(|l| l.nanos).max().unwrap_or(-1)));
            history.extend(lines.into_iter().map(|l| (service.as_str(), l)));
        }
        if !missing.is_empty() {
            if !args.services.is_empty() && !args.follow {
                return Err(no_container(&workspace, &missing[0]));
            }
            if !args.json {
                eprintln!(
                    "warning: no container yet for {} (`ajj status` shows why)",
                    missing.join(", ")
                );
            }
        }
        history.sort_by_key(|(_, l)| l.nanos);
        for (service, line) in &history {
            if !printer.print(service, line) {
                return Ok(0);
            }
        }
        if !args.follow {
            return Ok(0);
        }

        let followers = services.iter().zip(cursors).map(|(service, cursor)| {
            follow(
                &backend,
                &ctx.workspace_root,
                service,
                cursor,
                FirstRead {
                    tail: args.tail,
                    since,
                },
                &printer,
            )
        });
        tokio::select! {
            r = futures_util::future::try_join_all(followers) => r.map(|_| 0),
            r = until_forgotten(&backend, &ctx) => r.map(|_| 0),
            _ = tokio::signal::ctrl_c() => Ok(0),
        }
    })
}

/// What the first read of a service that had no container yet asks for.
#[derive(Clone, Copy)]
struct FirstRead {
    tail: Option<usize>,
    since: Option<i64>,
}

/// Prints one service's new lines for as long as the command runs. Returns
/// only when stdout is closed.
async fn follow(
    backend: &DockerBackend,
    root: &Path,
    service: &str,
    mut cursor: Option<i128>,
    first: FirstRead,
    printer: &Printer,
) -> Result<()> {
    loop {
        let observed = backend.containers_at(root).await?;
        if let Some(container) = pick(&observed, service) {
            let query = match cursor {
                // Seen before: everything after the cursor (the engine's
                // `since` has whole seconds; the cursor drops the overlap).
                Some(nanos) => LogQuery {
                    tail: None,
                    since: (nanos >= 0)
                        .then_some((nanos / 1_000_000_000) as i64)
                        .or(first.since),
                    follow: true,
                },
                None => LogQuery {
                    tail: first.tail,
                    since: first.since,
                    follow: true,
                },
            };
            // Only what was printed before this attach is skipped: within
            // one stream, stdout and stderr lines may come a little out of
            // timestamp order, and each is new.
            let seen = cursor;
            let mut stream = backend.logs(&container.name, query);
            while let Some(item) = stream.next().await {
                let line = match item {
                    Ok(line) => line,
                    // Removed between the lookup and the read: look again.
                    Err(e) if e.fault == Fault::NotFound => break,
                    Err(e) => return Err(e.into()),
                };
                if seen.is_some_and(|c| line.nanos <= c) {
                    continue;
                }
                cursor = Some(cursor.map_or(line.nanos, |c| c.max(line.nanos)));
                if !printer.print(service, &line) {
                    return Ok(());
                }
            }
            cursor.get_or_insert(-1);
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// Resolves when the workspace has no containers left and jj no longer
/// lists it: it was forgotten.
async fn until_forgotten(backend: &DockerBackend, ctx: &RepoContext) -> Result<()> {
    loop {
        tokio::time::sleep(GONE_CHECK).await;
        if !backend.containers_at(&ctx.workspace_root).await?.is_empty() {
            continue;
        }
        // Ask from the default workspace: this one may be what was forgotten.
        let cwd = ctx
            .store
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&ctx.workspace_root);
        let listed = jj::list_workspaces(cwd).map(|entries| {
            entries
                .iter()
                .any(|e| e.root.as_deref() == Some(ctx.workspace_root.as_path()))
        });
        if !matches!(listed, Ok(true)) {
            return Ok(());
        }
    }
}

/// The service's container: the running one when there are several.
fn pick<'a>(observed: &'a [ObservedContainer], service: &str) -> Option<&'a ObservedContainer> {
    let mut of_service = observed.iter().filter(|c| c.service == service);
    let first = of_service.clone().next()?;
    Some(
        of_service
            .find(|c| c.state == ServiceState::Running)
            .unwrap_or(first),
    )
}

async fn read_all(
    backend: &DockerBackend,
    container: &str,
    query: LogQuery,
) -> Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    let mut stream = backend.logs(container, query);
    while let Some(line) = stream.next().await {
        lines.push(line?);
    }
    Ok(lines)
}

fn no_container(workspace: &str, service: &str) -> CommandError {
    CommandError::new(
        ErrorCode::ServiceNotRunning,
        format!("{workspace}/{service} has no container, so no logs"),
    )
    .hint("`ajj status` shows its state; `ajj reconcile` creates it; --follow waits for it")
    .detail("service", service)
}

/// `--since`: a duration ago, or an RFC 3339 time; as Unix seconds.
fn parse_since(text: &str) -> Result<i64> {
    let at = match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|_| {
            CommandError::new(
                ErrorCode::Usage,
                format!("--since {text:?} is neither a duration nor an RFC 3339 time"),
            )
            .hint("write 10m, 1h30m or 2026-12-04T10:00:00Z")
            .detail("flag", "--since")
        })?,
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

/// Writes lines as Compose does (`db    | …`), or as JSON lines.
struct Printer {
    json: bool,
    timestamps: bool,
    width: usize,
    /// Per service, in the order given: an ANSI colour, when colouring.
    colours: Vec<(String, &'static str)>,
    closed: Cell<bool>,
}

const PALETTE: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Printer {
    fn new(args: &Args, services: &[String]) -> Self {
        let colour = !args.json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Printer {
            json: args.json,
            timestamps: args.timestamps,
            width: services.iter().map(|s| s.len()).max().unwrap_or(0),
            colours: services
                .iter()
                .enumerate()
                .filter(|_| colour)
                .map(|(i, s)| (s.clone(), PALETTE[i % PALETTE.len()]))
                .collect(),
            closed: Cell::new(false),
        }
    }

    /// False once stdout is closed (`ajj logs | head`): time to stop.
    fn print(&self, service: &str, line: &LogLine) -> bool {
        if self.closed.get() {
            return false;
        }
        let text = if self.json {
            json!({"service": service, "stream": line.stream, "ts": line.ts, "line": line.line})
                .to_string()
        } else {
            let prefix = format!("{service:<w$} |", w = self.width);
            let prefix = match self.colours.iter().find(|(s, _)| s == service) {
                Some((_, c)) => format!("\x1b[{c}m{prefix}\x1b[0m"),
                None => prefix,
            };
            match self.timestamps {
                true => format!("{prefix} {} {}", line.ts, line.line),
                false => format!("{prefix} {}", line.line),
            }
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            self.closed.set(true);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let ago = parse_since("10m").unwrap();
        assert!((now - 600 - ago).abs() <= 1);
        assert_eq!(parse_since("2026-12-04T10:00:00Z").unwrap(), 1_796_378_400);
        assert_eq!(parse_since("yesterday").unwrap_err().code, ErrorCode::Usage);
    }
}
