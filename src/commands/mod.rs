//! One module per command, as in jj's `cli/src/commands/`.

pub mod completions;
pub mod doctor;
pub mod env;
pub mod exec;
pub mod helper;
pub mod hooks;
pub mod init;
pub mod logs;
pub mod man;
pub mod mcp;
pub mod passthrough;
pub mod reconcile;
pub mod run;
pub mod schema;
pub mod services;
pub mod status;
pub mod trust;
pub mod tunnel;
pub mod untrust;
pub mod wait;
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

/// The services a command names, checked against the workspace's
/// aether.toml; every declared one when none is named.
pub fn declared_services(
    config: &crate::model::config::Config,
    workspace: &str,
    named: &[String],
) -> Result<Vec<String>> {
    if named.is_empty() {
        return Ok(config.services.keys().cloned().collect());
    }
    for name in named {
        if !config.services.contains_key(name) {
            return Err(CommandError::new(
                ErrorCode::ServiceNotFound,
                format!("aether.toml of {workspace} declares no service {name:?}"),
            )
            .hint(format!(
                "declared: {}",
                config
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .detail("service", name));
        }
    }
    let mut names = named.to_vec();
    names.dedup();
    Ok(names)
}

/// A duration (`30s`, `5m`, `1h30m`) for a flag, or a USAGE error naming it.
pub fn parse_duration_flag(flag: &str, text: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(text).map_err(|e| {
        CommandError::new(
            ErrorCode::Usage,
            format!("{flag} {text:?} is not a duration: {e}"),
        )
        .hint("write it as 30s, 5m or 1h30m")
        .detail("flag", flag)
    })
}

pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string(value).expect("serialisable output")
    );
}
