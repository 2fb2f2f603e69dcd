//! One module per command, as in jj's `cli/src/commands/`.

pub mod env;
pub mod hooks;
pub mod init;
pub mod passthrough;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod watch;
pub mod workspace;

use crate::backend::docker::DockerBackend;
use crate::cli::{Cli, Command, WorkspaceCommand};
use crate::error::{CommandError, ErrorCode, Result};
use crate::repo::RepoContext;
use std::future::Future;
use std::path::{Path, PathBuf};

pub fn run(cli: Cli) -> Result<i32> {
    let repo = cli.repository.as_deref();
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

pub async fn backend(ctx: &RepoContext) -> Result<DockerBackend> {
    DockerBackend::connect(&ctx.repo_id).await
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
