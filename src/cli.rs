//! Command-line definitions and the routing rule between Aether and jj.

use crate::base::error::Result;
use crate::commands::{
    completions, doctor, env, exec, hooks, init, logs, man, mcp, reconcile, run, schema, services,
    status, trust, tunnel, untrust, wait, watch, workspace, CommandHelper,
};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// jj, with an isolated container environment for every workspace.
///
/// `ajj` is a superset of jj: the commands below are Aether's, and every
/// other command (`ajj log`, `ajj st`, `ajj git push`, ...) runs jj itself.
#[derive(Parser, Debug)]
#[command(
    name = "ajj",
    version,
    after_help = "Every other command is passed to jj unchanged: see `jj help`."
)]
pub struct Cli {
    /// Path to a jj workspace to operate on, as jj's -R (default: the current directory)
    #[arg(short = 'R', long = "repository", global = true, value_name = "PATH",
          add = clap_complete::ArgValueCompleter::new(crate::commands::completions::workspace_roots))]
    pub repository: Option<PathBuf>,

    /// Where environments run: `docker` (local) or `ssh://user@host:port`
    /// (Docker on that host). Default: $AETHER_BACKEND, else [backend] in aether.toml
    #[arg(long, global = true, value_name = "BACKEND")]
    pub backend: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Add or forget workspaces together with their environments
    ///
    /// `add` and `forget` are jj's, with the workspace's environment made or
    /// removed with it. jj's other workspace commands (`list`, `rename`,
    /// `root`, `update-stale`, …) run jj itself; `ajj watch` or the next
    /// `ajj reconcile` follows what they change.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    Run(run::Args),
    Exec(exec::Args),
    Logs(logs::Args),
    Wait(wait::Args),
    Mcp(mcp::Args),
    Status(status::Args),
    Services(services::Args),
    Reconcile(reconcile::Args),
    Init(init::Args),
    Watch(watch::Args),
    Env(env::Args),
    /// Shell hooks and jj aliases: print one, or install them
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    Man(man::Args),
    Doctor(doctor::Args),
    Schema(schema::Args),
    Completions(completions::Args),
    Tunnel(tunnel::Args),
    Trust(trust::Args),
    Untrust(untrust::Args),
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    Add(workspace::add::Args),
    Forget(workspace::forget::Args),
}

impl Cli {
    /// Builds the [`CommandHelper`] once and runs the command with it.
    pub fn run(self) -> Result<i32> {
        let helper = CommandHelper::new(self.repository, self.backend);
        let h = &helper;
        match self.command {
            Command::Workspace(WorkspaceCommand::Add(args)) => workspace::add::run(h, args),
            Command::Workspace(WorkspaceCommand::Forget(args)) => workspace::forget::run(h, args),
            Command::Run(args) => run::run(h, args),
            Command::Exec(args) => exec::run(h, args),
            Command::Logs(args) => logs::run(h, args),
            Command::Wait(args) => wait::run(h, args),
            Command::Mcp(args) => mcp::run(h, args),
            Command::Status(args) => status::run(h, args),
            Command::Services(args) => services::run(h, args),
            Command::Reconcile(args) => reconcile::run(h, args),
            Command::Init(args) => init::run(h, args),
            Command::Watch(args) => watch::run(h, args),
            Command::Env(args) => env::run(h, args),
            Command::Hooks(cmd) => hooks::run(cmd),
            Command::Man(args) => man::run(args, <Cli as clap::CommandFactory>::command()),
            Command::Doctor(args) => doctor::run(h, args),
            Command::Schema(args) => schema::run(args),
            Command::Completions(args) => completions::run(args),
            Command::Tunnel(args) => tunnel::run(h, args),
            Command::Trust(args) => trust::run(h, args),
            Command::Untrust(args) => untrust::run(h, args),
        }
    }
}

/// jj's global options that take a value, so routing can skip past them.
const JJ_OPTIONS_WITH_VALUE: &[&str] = &[
    "-R",
    "--repository",
    "--at-op",
    "--at-operation",
    "--color",
    "--config",
    "--config-toml",
    "--config-file",
    "--backend",
];

/// Whether argv (without argv[0]) names one of Aether's commands. Pure and
/// allocation-light: it runs before every pass-through exec.
pub fn routes_to_aether(args: &[OsString]) -> bool {
    let mut positionals = Vec::with_capacity(2);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else {
            return false;
        };
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') {
            if positionals.is_empty() && matches!(arg, "-h" | "--help" | "-V" | "--version") {
                return true;
            }
            // Aether's `workspace` help says what it adds to jj's.
            if positionals == ["workspace"] && matches!(arg, "-h" | "--help") {
                return true;
            }
            if JJ_OPTIONS_WITH_VALUE.contains(&arg) {
                iter.next();
            }
            continue;
        }
        positionals.push(arg);
        if positionals.len() == 2 || !matches!(positionals[0], "workspace") {
            break;
        }
    }
    matches!(
        positionals.as_slice(),
        [
            "run"
                | "exec"
                | "logs"
                | "wait"
                | "mcp"
                | "status"
                | "reconcile"
                | "init"
                | "watch"
                | "env"
                | "hooks"
                | "tunnel"
                | "trust"
                | "services"
                | "untrust"
                | "man"
                | "doctor"
                | "schema"
                | "completions",
            ..
        ] | ["workspace", "add" | "forget"]
    )
}

/// `--json` anywhere before `--` (after it, the arguments belong to `ajj run`'s command).
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(line: &str) -> bool {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        routes_to_aether(&args)
    }

    #[test]
    fn routing() {
        assert!(routes("workspace add ../x"));
        assert!(routes("-R /r workspace forget a"));
        assert!(routes("workspace --json add ../x"));
        assert!(routes("run -- cargo test"));
        assert!(routes("exec db -- psql"));
        assert!(routes("logs -f db"));
        assert!(routes("wait --timeout 5s"));
        assert!(routes("mcp"));
        assert!(routes("workspace --help"));
        assert!(!routes("workspace list --help"));
        assert!(routes("man /tmp/man"));
        assert!(routes("status --json"));
        assert!(routes("reconcile --dry-run"));
        assert!(routes("tunnel --json"));
        assert!(routes("trust --show"));
        assert!(routes("untrust"));
        assert!(routes("--backend ssh://h status"));
        assert!(routes("--help"));
        assert!(!routes(""));
        assert!(!routes("log"));
        assert!(!routes("st"));
        assert!(!routes("log --help"));
        assert!(!routes("workspace list"));
        assert!(!routes("workspace"));
        assert!(!routes("--color never log"));
        assert!(!routes("git push"));
        assert!(!routes("-R workspace log"));
    }

    #[test]
    fn json_flag_stops_at_double_dash() {
        let a = |s: &str| s.split_whitespace().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&a("status --json")));
        assert!(!wants_json(&a("run -- tool --json")));
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
