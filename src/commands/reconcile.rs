//! `ajj reconcile`: one level-triggered pass over every workspace.

use crate::backend::Backend;
use crate::base::error::Result;
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::desired::MissingRootArg;
use crate::reconcile::report::{self, ActionReport, SCHEMA_VERSION};
use crate::reconcile::{self, apply::Applier, PassOptions};
use serde_json::json;

/// Converge every workspace's environment with its aether.toml, once
///
/// Creates what is missing, recreates what drifted, starts what stopped and
/// removes what belongs to no live workspace. A workspace whose aether.toml
/// does not load is reported and left untouched.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub missing_root: MissingRootArg,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    crate::base::runtime::block_on(async {
        let backend = helper.backend(&ctx).await?;
        let applier = Applier::new(&backend, &ctx, !args.json);
        let options = PassOptions {
            dry_run: args.dry_run,
            missing_root: args.missing_root.on_missing_root,
            ..Default::default()
        };
        let pass = reconcile::reconcile_all(&applier, &options).await?;
        tracing::debug!(
            api_calls = backend.api_calls(),
            "docker api calls this pass"
        );
        let warnings = applier.warnings.lock().unwrap().clone();
        let first_error = pass.errors.first().map(|(_, e)| e.clone());
        if args.json {
            let errors: Vec<_> = pass
                .errors
                .iter()
                .map(|(ws, e)| json!({ "workspace": ws, "error": e.to_json()["error"] }))
                .collect();
            let mut out = json!({
                "schema_version": SCHEMA_VERSION,
                "backend": backend.kind(),
                "dry_run": args.dry_run,
                "actions": pass.actions.iter().map(ActionReport::new).collect::<Vec<_>>(),
                "env_written": pass.env_written,
                "errors": errors,
                "warnings": warnings,
                "images_built": applier.built.lock().unwrap().clone(),
            });
            if let Some(e) = &first_error {
                out["error"] = e.to_json()["error"].clone();
            }
            print_json(&out);
        } else {
            let verb = if args.dry_run { "Would" } else { "Did" };
            if pass.actions.is_empty() {
                println!("Nothing to do: every workspace is converged");
            }
            for a in &pass.actions {
                println!("{verb} {}", report::describe(a));
            }
            for ws in &pass.env_written {
                println!("Wrote .env of {ws}");
            }
            for (ws, e) in &pass.errors {
                eprintln!("error in workspace {ws}:");
                e.report(false);
            }
        }
        Ok(first_error.map_or(0, |e| e.code.exit_code()))
    })
}
