//! `ajj untrust`: the shell hooks stop loading this workspace's own variables.

use crate::base::error::Result;
use crate::commands::CommandHelper;
use crate::commands::{print_json, trust::root_here};
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::json;

/// Withdraw `ajj trust` for this workspace
///
/// The shell hooks go back to loading only what Aether generated for the
/// services; your lines of .env and [env] wait for `ajj trust` again, and
/// so does what its Compose files ask of the host.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let root = root_here(helper)?;
    let removed = match crate::model::trust::Records::user() {
        Some(records) => records.remove_trust(&root)?,
        None => false,
    };
    // The host grants of its Compose stack go too: its next pass refuses them.
    let removed = crate::model::grants::forget(&root) | removed;
    if args.json {
        print_json(&json!({
            "schema_version": SCHEMA_VERSION,
            "workspace_root": root.display().to_string(),
            "removed": removed,
        }));
    } else if removed {
        println!("{}: no longer trusted", root.display());
    } else {
        println!("{}: was not trusted", root.display());
    }
    Ok(0)
}
