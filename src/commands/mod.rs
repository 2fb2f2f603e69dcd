//! One module per command, as in jj's `cli/src/commands/`.

pub mod completions;
pub mod doctor;
pub mod env;
pub mod exec;
pub mod helper;
pub mod hooks;
pub mod init;
pub mod man;
pub mod passthrough;
pub mod reconcile;
pub mod run;
pub mod schema;
pub mod status;
pub mod trust;
pub mod tunnel;
pub mod untrust;
pub mod watch;
pub mod workspace;

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::repo::RepoContext;
pub use helper::CommandHelper;

/// The name of the workspace rooted at `ctx.workspace_root`.
pub fn current_workspace(
    ctx: &RepoContext,
    entries: &[crate::model::jj::WorkspaceEntry],
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
