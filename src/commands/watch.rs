//! `ajj watch`: keep every workspace's environment converged, continuously.

use crate::base::error::Result;
use crate::commands::CommandHelper;
use crate::model::desired::MissingRootArg;
use crate::watch::{self, WatchOptions};

/// Follow jj and the backend, and keep every environment converged
///
/// Runs a reconcile pass whenever a jj operation happens (so plain `jj
/// workspace add/forget/rename` and `jj op undo` are followed), a workspace's
/// aether.toml or .env changes, a workspace directory is deleted, or one of
/// the repo's containers dies or is removed. Each pass recomputes everything,
/// as `ajj reconcile` does. One watcher per repo; SIGINT or SIGTERM finishes
/// the current pass and exits 0.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub missing_root: MissingRootArg,
    /// One JSON event per line on stdout instead of log lines on stderr
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    watch::run(
        ctx,
        WatchOptions {
            json: args.json,
            backend: helper.backend_override()?,
            missing_root: args.missing_root.on_missing_root,
        },
    )
}
