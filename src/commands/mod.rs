//! One module per command, as in jj's `cli/src/commands/`.

pub mod env;
pub mod hooks;
pub mod init;
pub mod passthrough;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod trust;
pub mod tunnel;
pub mod untrust;
pub mod watch;
pub mod workspace;

use crate::backend::docker::DockerBackend;
use crate::backend::spec::BackendSpec;
use crate::cli::{Cli, Command, WorkspaceCommand};
use crate::error::{CommandError, ErrorCode, Result};
use crate::repo::RepoContext;
use crate::ssh::Master;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn run(cli: Cli) -> Result<i32> {
    let repo = cli.repository.as_deref();
    set_backend_flag(cli.backend.clone());
    match cli.command {
        Command::Workspace(WorkspaceCommand::Add(args)) => workspace::add::run(repo, args),
        Command::Workspace(WorkspaceCommand::Forget(args)) => workspace::forget::run(repo, args),
        Command::Run(args) => run::run(repo, args),
        Command::Status(args) => status::run(repo, args),
        Command::Reconcile(args) => reconcile::run(repo, args),
        Command::Init(args) => init::run(repo, args),
        Command::Watch(args) => watch::run(repo, args),
        Command::Env(args) => env::run(repo, args),
        Command::Hooks(cmd) => hooks::run(cmd),
        Command::Tunnel(args) => tunnel::run(repo, args),
        Command::Trust(args) => trust::run(repo, args),
        Command::Untrust(args) => untrust::run(repo, args),
    }
}

pub fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| CommandError::io("cannot read the current directory", e))
}

pub fn discover(repo: Option<&Path>) -> Result<RepoContext> {
    let start = match repo {
        Some(p) => p.to_path_buf(),
        None => current_dir()?,
    };
    RepoContext::discover(&start)
}

/// Aether's commands that talk to a backend run on a single-threaded runtime:
/// the work is I/O-bound, and start-up stays cheap.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

static BACKEND_FLAG: OnceLock<Option<String>> = OnceLock::new();

/// Records the global `--backend` flag before a command runs.
pub fn set_backend_flag(flag: Option<String>) {
    let _ = BACKEND_FLAG.set(flag);
}

/// `--backend`, else `$AETHER_BACKEND`.
fn backend_override() -> Result<Option<BackendSpec>> {
    match BACKEND_FLAG.get().and_then(|f| f.as_deref()) {
        Some(flag) => BackendSpec::parse_flag(flag).map(Some),
        None => BackendSpec::from_env(),
    }
}

/// The backend new environments go to: the override, else the `[backend]`
/// of this workspace's aether.toml, else local Docker. An aether.toml that
/// does not parse counts as local here; its own error is reported per
/// workspace, and an environment recorded on another backend is refused
/// (BACKEND_MISMATCH), never duplicated.
pub fn desired_backend(ctx: &RepoContext) -> Result<BackendSpec> {
    if let Some(spec) = backend_override()? {
        return Ok(spec);
    }
    Ok(crate::config::load_from_root(&ctx.workspace_root)
        .ok()
        .and_then(|c| c.backend)
        .unwrap_or_default())
}

/// The backend holding `workspace`'s environment: the override, else the
/// one recorded when it was provisioned, else [`desired_backend`].
pub fn workspace_backend(ctx: &RepoContext, workspace: &str) -> Result<BackendSpec> {
    if let Some(spec) = backend_override()? {
        return Ok(spec);
    }
    let desired = desired_backend(ctx)?;
    match crate::state::load(ctx, workspace).backend {
        Some(id) if id != desired.id() => BackendSpec::from_id(&id),
        _ => Ok(desired),
    }
}

pub async fn connect(ctx: &RepoContext, spec: &BackendSpec) -> Result<DockerBackend> {
    match spec {
        BackendSpec::Local => DockerBackend::connect(&ctx.repo_id).await,
        BackendSpec::Ssh {
            target,
            docker_socket,
            persist,
        } => {
            let persist = match std::env::var(crate::ssh::master::PERSIST_ENV) {
                Ok(text) if !text.is_empty() => humantime::parse_duration(&text).map_err(|e| {
                    CommandError::new(
                        ErrorCode::Usage,
                        format!("invalid {}={text:?}: {e}", crate::ssh::master::PERSIST_ENV),
                    )
                    .hint("write a duration such as 30s or 5m")
                })?,
                _ => persist.unwrap_or(crate::ssh::master::DEFAULT_PERSIST),
            };
            let master = Master::new(&ctx.repo_id, target.clone(), docker_socket.clone(), persist)?;
            DockerBackend::connect_remote(&ctx.repo_id, master).await
        }
    }
}

/// Connects to [`desired_backend`].
pub async fn backend(ctx: &RepoContext) -> Result<DockerBackend> {
    connect(ctx, &desired_backend(ctx)?).await
}

/// The name of the workspace rooted at `ctx.workspace_root`.
pub fn current_workspace(
    ctx: &RepoContext,
    entries: &[crate::jj::WorkspaceEntry],
) -> Result<String> {
    entries
        .iter()
        .find(|e| e.root.as_deref() == Some(ctx.workspace_root.as_path()))
        .map(|e| e.name.clone())
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::WorkspaceNotFound,
                format!(
                    "jj lists no workspace rooted at {}",
                    ctx.workspace_root.display()
                ),
            )
            .hint("this checkout may have been forgotten; `jj workspace list` shows the live ones")
        })
}

pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string(value).expect("serialisable output")
    );
}
