//! `CommandHelper`: what every command needs from the parsed command line,
//! built once by `cli.rs` and handed to the command, as jj's `CommandHelper`
//! is. The wiring lives here: which repo and which backend. Output mode is each command's own `--json`.
//! Nothing global: a command sees only this value and its own arguments.

use crate::backend::{self, docker::DockerBackend};
use crate::base::error::{CommandError, Result};
use crate::model::backend_spec::BackendSpec;
use crate::model::repo::RepoContext;
use crate::model::state;
use std::path::{Path, PathBuf};

pub struct CommandHelper {
    /// `-R`: the workspace to operate on, else the current directory.
    repository: Option<PathBuf>,
    /// `--backend`, unparsed: only commands that reach a backend read it, so
    /// a bad value fails those and nothing else.
    backend_flag: Option<String>,
}

impl CommandHelper {
    pub fn new(repository: Option<PathBuf>, backend_flag: Option<String>) -> Self {
        CommandHelper {
            repository,
            backend_flag,
        }
    }

    /// `-R` as given, for commands that pass it on to jj.
    pub fn repository(&self) -> Option<&Path> {
        self.repository.as_deref()
    }

    /// `-R`, else the current directory.
    pub fn start_dir(&self) -> Result<PathBuf> {
        match &self.repository {
            Some(p) => Ok(p.clone()),
            None => std::env::current_dir()
                .map_err(|e| CommandError::io("cannot read the current directory", e)),
        }
    }

    /// The repo and workspace at [`Self::start_dir`].
    pub fn discover(&self) -> Result<RepoContext> {
        RepoContext::discover(&self.start_dir()?)
    }

    /// The name of the workspace at `ctx.workspace_root`: from Aether's
    /// roots ledger when a pass has recorded it (no jj process: `logs`,
    /// `exec` and `wait` then cost what their Docker calls cost), else
    /// from `jj workspace list`. The containers, found by root label, are
    /// the authority for what runs there either way.
    pub fn workspace_here(&self, ctx: &RepoContext) -> Result<String> {
        let recorded = state::load_roots(ctx)
            .into_iter()
            .find(|(_, root)| root == &ctx.workspace_root)
            .map(|(name, _)| name);
        match recorded {
            Some(name) => Ok(name),
            None => {
                let entries = crate::model::jj::list_workspaces(&ctx.workspace_root)?;
                crate::commands::current_workspace(ctx, &entries)
            }
        }
    }

    /// `--backend`, else `$AETHER_BACKEND`.
    pub fn backend_override(&self) -> Result<Option<BackendSpec>> {
        match self.backend_flag.as_deref() {
            Some(flag) => BackendSpec::parse_flag(flag).map(Some),
            None => BackendSpec::from_env(),
        }
    }

    /// The backend new environments of this repo go to.
    pub fn desired_backend(&self, ctx: &RepoContext) -> Result<BackendSpec> {
        Ok(state::desired_backend(ctx, self.backend_override()?))
    }

    /// The backend holding `workspace`'s environment.
    pub fn workspace_backend(&self, ctx: &RepoContext, workspace: &str) -> Result<BackendSpec> {
        state::workspace_backend(ctx, workspace, self.backend_override()?)
    }

    /// Connects to [`Self::desired_backend`].
    pub async fn backend(&self, ctx: &RepoContext) -> Result<DockerBackend> {
        backend::connect::connect(ctx, &self.desired_backend(ctx)?).await
    }

    pub async fn connect(&self, ctx: &RepoContext, spec: &BackendSpec) -> Result<DockerBackend> {
        backend::connect::connect(ctx, spec).await
    }
}
