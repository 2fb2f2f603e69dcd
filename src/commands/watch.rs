//! `ajj watch`: keep every workspace's environment converged, continuously.

use crate::commands;
use crate::error::Result;
use crate::reconcile::desired::MissingRootArg;
use crate::watch::{self, WatchOptions};
use std::path::Path;

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

pub fn run(repo: Option<&Path>, args: Args) -> Result<i32> {
    let ctx = commands::discover(repo)?;
    watch::run(
        ctx,
        WatchOptions {
            json: args.json,
            missing_root: args.missing_root.on_missing_root,
        },
    )
}
