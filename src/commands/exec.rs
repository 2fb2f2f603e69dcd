//! `ajj exec SERVICE -- CMD…`: a command in one of the workspace's running
//! containers, through the backend seam (so it works wherever the engine
//! is). Output is collected and then written; stdin is not attached.

use crate::backend::{Backend, ServiceState};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::{self, print_json, CommandHelper};
use crate::model::{config, jj};
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::json;
use std::io::Write;

/// Run a command in a service's running container
///
/// Runs the command without a shell in the container of SERVICE of the
/// current workspace and exits with its exit code. Its stdout and stderr are
/// written once it ends; stdin is not attached.
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
    /// Print one JSON object on stdout: exit_code, stdout, stderr
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let entries = jj::list_workspaces(&ctx.workspace_root)?;
    let workspace = commands::current_workspace(&ctx, &entries)?;
    let config = config::load_from_root(&ctx.workspace_root)?;
    if !config.services.contains_key(&args.service) {
        return Err(CommandError::new(
            ErrorCode::ServiceNotFound,
            format!(
                "aether.toml of {workspace} declares no service {:?}",
                args.service
            ),
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
        .detail("service", &args.service));
    }
    let output = crate::base::runtime::block_on(async {
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
        Ok::<_, CommandError>(backend.exec(&container.name, &args.command).await?)
    })?;
    let code = output.exit_code.unwrap_or(-1);
    if args.json {
        print_json(&json!({
            "schema_version": SCHEMA_VERSION,
            "workspace": workspace,
            "service": args.service,
            "exit_code": output.exit_code,
            "stdout": String::from_utf8_lossy(&output.stdout),
            "stderr": String::from_utf8_lossy(&output.stderr),
        }));
    } else {
        let _ = std::io::stdout().write_all(&output.stdout);
        let _ = std::io::stderr().write_all(&output.stderr);
    }
    Ok(code.clamp(0, 255) as i32)
}
