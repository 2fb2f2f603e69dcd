//! The MCP tools' arguments, and the `ajj` command line each one runs. Pure:
//! unit-tested without a server. Argument names are a contract (README).

use schemars::JsonSchema;
use serde::Deserialize;
use std::ffi::OsString;

/// A tool that takes no arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceAdd {
    /// Where the new workspace goes: a path, relative to the workspace the
    /// server was started in (e.g. `../feature-x`).
    pub destination: String,
    /// The workspace's name (default: the destination's last component).
    pub name: Option<String>,
    /// The revision(s) to start from, as `jj workspace add -r` takes.
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceForget {
    /// The workspace to forget, by name or path (default: the server's).
    pub workspace: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceOnly {
    /// The workspace, by name or path (default: the server's).
    pub workspace: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The workspace, by name or path (default: the server's).
    pub workspace: Option<String>,
    /// The command and its arguments, run without a shell.
    pub argv: Vec<String>,
    /// Stop it after this many seconds (SIGTERM, then SIGKILL 5s later).
    pub timeout: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// The workspace, by name or path (default: the server's).
    pub workspace: Option<String>,
    /// Only this service (default: every service, interleaved by time).
    pub service: Option<String>,
    /// Only the last N lines of each service (default 200).
    pub tail: Option<usize>,
    /// Only lines since then: a duration ago (`10m`) or an RFC 3339 time.
    pub since: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The workspace, by name or path (default: the server's).
    pub workspace: Option<String>,
    /// The service whose running container runs the command.
    pub service: String,
    /// The command and its arguments, run without a shell.
    pub argv: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// The workspace, by name or path (default: the server's).
    pub workspace: Option<String>,
    /// Only this service (default: every service).
    pub service: Option<String>,
    /// Give up after this many seconds (default: the longest
    /// `ready_timeout` plus 60).
    pub timeout: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconcile {
    /// Print the plan and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The lines `logs` returns when `tail` is not given: enough to see why a
/// service failed, small enough for an agent's context.
pub const DEFAULT_LOG_TAIL: usize = 200;

pub fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

impl WorkspaceAdd {
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = os(&["workspace", "add", "--json"]);
        if let Some(name) = &self.name {
            argv.extend(os(&["--name", name]));
        }
        if let Some(rev) = &self.revision {
            argv.extend(os(&["-r", rev]));
        }
        argv.extend(os(&["--", &self.destination]));
        argv
    }
}

/// `forget` takes a name: a path is resolved to one by the caller.
pub fn forget_argv(name: &str) -> Vec<OsString> {
    os(&["workspace", "forget", "--json", "--", name])
}

/// `forget` of the workspace the command runs in.
pub fn forget_argv_current() -> Vec<OsString> {
    os(&["workspace", "forget", "--json"])
}

impl Run {
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = os(&["run", "--json"]);
        if let Some(t) = self.timeout {
            argv.extend(os(&["--timeout", &format!("{t}s")]));
        }
        argv.push("--".into());
        argv.extend(self.argv.iter().map(OsString::from));
        argv
    }
}

impl Logs {
    pub fn argv(&self) -> Vec<OsString> {
        let tail = self.tail.unwrap_or(DEFAULT_LOG_TAIL).to_string();
        let mut argv = os(&["logs", "--json", "--tail", &tail]);
        if let Some(since) = &self.since {
            argv.extend(os(&["--since", since]));
        }
        if let Some(service) = &self.service {
            argv.extend(os(&["--", service]));
        }
        argv
    }
}

impl Exec {
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = os(&["exec", "--json", "--", &self.service]);
        argv.extend(self.argv.iter().map(OsString::from));
        argv
    }
}

impl Wait {
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = os(&["wait", "--json"]);
        if let Some(t) = self.timeout {
            argv.extend(os(&["--timeout", &format!("{t}s")]));
        }
        if let Some(service) = &self.service {
            argv.extend(os(&["--", service]));
        }
        argv
    }
}

impl Reconcile {
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = os(&["reconcile", "--json"]);
        if self.dry_run {
            argv.push("--dry-run".into());
        }
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(argv: Vec<OsString>) -> String {
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn user_strings_never_become_flags() {
        let add = WorkspaceAdd {
            destination: "--help".into(),
            name: Some("x".into()),
            revision: Some("main".into()),
        };
        assert_eq!(
            line(add.argv()),
            "workspace add --json --name x -r main -- --help"
        );
        let exec = Exec {
            workspace: None,
            service: "-db".into(),
            argv: vec!["psql".into(), "-c".into(), "select 1".into()],
        };
        assert_eq!(line(exec.argv()), "exec --json -- -db psql -c select 1");
        let run = Run {
            workspace: None,
            argv: vec!["--version".into()],
            timeout: Some(3),
        };
        assert_eq!(line(run.argv()), "run --json --timeout 3s -- --version");
        assert_eq!(line(forget_argv("-x")), "workspace forget --json -- -x");
    }

    #[test]
    fn logs_are_bounded_by_default() {
        let logs = Logs {
            workspace: None,
            service: None,
            tail: None,
            since: Some("5m".into()),
        };
        assert_eq!(line(logs.argv()), "logs --json --tail 200 --since 5m");
    }
}
