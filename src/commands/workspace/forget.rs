//! `ajj workspace forget`: `jj workspace forget`, then every container,
//! volume and network of those workspaces, at once.

use crate::backend::Backend;
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::CommandHelper;
use crate::commands::{self, print_json};
use crate::model::desired::Desired;
use crate::model::envfile;
use crate::model::jj;
use crate::model::repo::RepoContext;
use crate::reconcile::report::SCHEMA_VERSION;
use crate::reconcile::{self, apply::Applier, plan::Action, Settled};
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Forget workspaces and remove their containers, volumes and network
///
/// The workspace directories stay on disk, as with `jj workspace forget`;
/// Aether's block is removed from their .env.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names of the workspaces to forget (default: the current one)
    pub workspaces: Vec<String>,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let mut entries = jj::list_workspaces(&ctx.workspace_root)?;
    // Remembered first: a `jj undo` of this forget finds the root again.
    reconcile::recall_roots(&ctx, &mut entries);
    let names = chosen_workspaces(&ctx, &entries, &args)?;
    // Sorted, so two forgets of overlapping sets cannot deadlock.
    let _locks = names
        .iter()
        .map(|n| crate::model::repo::lock_workspace(&ctx, n))
        .collect::<Result<Vec<_>>>()?;
    crate::base::runtime::block_on(forget_and_remove(helper, &ctx, &entries, &names, args.json))
}

/// The named workspaces (else the current one), sorted and deduplicated,
/// each known to jj.
fn chosen_workspaces(
    ctx: &RepoContext,
    entries: &[jj::WorkspaceEntry],
    args: &Args,
) -> Result<Vec<String>> {
    let mut names = if args.workspaces.is_empty() {
        vec![commands::current_workspace(ctx, entries)?]
    } else {
        args.workspaces.clone()
    };
    names.sort();
    names.dedup();
    for n in &names {
        if !entries.iter().any(|e| &e.name == n) {
            let known: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            return Err(CommandError::new(
                ErrorCode::WorkspaceNotFound,
                format!("no workspace named {n:?}"),
            )
            .hint(format!("known workspaces: {}", known.join(", ")))
            .detail("workspace", n));
        }
    }
    Ok(names)
}

async fn forget_and_remove(
    helper: &CommandHelper,
    ctx: &RepoContext,
    entries: &[jj::WorkspaceEntry],
    names: &[String],
    json: bool,
) -> Result<i32> {
    // Docker first: forgetting in jj but leaving containers would be half a job.
    // Where the environments are, which may not be where new ones go.
    let spec = helper.workspace_backend(ctx, &names[0])?;
    let backend = helper.connect(ctx, &spec).await?;
    let mut jj_args: Vec<OsString> = vec!["workspace".into(), "forget".into()];
    jj_args.extend(names.iter().map(OsString::from));
    jj::run_visible(&jj_args, &ctx.workspace_root, json, "workspace forget")?;

    let applier = Applier::new(&backend, ctx, !json);
    let results = remove_environments(&applier, entries, names).await;
    let mut forgotten = Vec::new();
    let mut first_error = None;
    for (name, result) in names.iter().zip(results) {
        let root = entries
            .iter()
            .find(|e| &e.name == name)
            .and_then(|e| e.root.clone());
        if let Some(root) = &root {
            if let Err(e) = clear_generated_env(root) {
                first_error.get_or_insert(e);
            }
        }
        match result {
            Ok(settled) => {
                forgotten.push(forgotten_json(name, root, &settled));
                if !json {
                    println!("Forgot {name}: removed {} object(s)", settled.actions.len());
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.hint(
            "jj has forgotten the workspace; run `ajj reconcile` to finish removing its resources",
        ));
    }
    if json {
        print_json(
            &json!({ "schema_version": SCHEMA_VERSION, "backend": backend.kind(), "forgotten": forgotten }),
        );
    }
    Ok(0)
}

/// Converges each forgotten workspace to nothing, all at once; one result
/// per name, in order.
async fn remove_environments<B: Backend>(
    applier: &Applier<'_, B>,
    entries: &[jj::WorkspaceEntry],
    names: &[String],
) -> Vec<Result<Settled>> {
    let remaining: Vec<_> = entries
        .iter()
        .filter(|e| !names.contains(&e.name))
        .cloned()
        .collect();
    let desired = Desired::shallow(&remaining);
    let root_of = |n: &String| {
        entries
            .iter()
            .find(|e| &e.name == n)
            .and_then(|e| e.recorded_root.clone())
    };
    let roots: Vec<_> = names.iter().map(root_of).collect();
    let jobs = names.iter().zip(&roots).map(|(n, root)| {
        reconcile::converge_workspace(applier, &desired, n, root.as_deref(), None)
    });
    futures_util::future::join_all(jobs).await
}

/// The directory stays, but its variables would now point nowhere.
fn clear_generated_env(root: &Path) -> Result<()> {
    if let Some(records) = crate::model::trust::Records::user() {
        records.forget_generated(root);
    }
    envfile::clear(root).map(|_| ())
}

fn forgotten_json(name: &str, root: Option<PathBuf>, settled: &Settled) -> serde_json::Value {
    let removed = |f: fn(&Action) -> Option<&String>| {
        settled
            .actions
            .iter()
            .filter_map(|s| f(&s.action))
            .cloned()
            .collect::<Vec<_>>()
    };
    json!({
        "name": name,
        "workspace_root": root.map(|r| r.display().to_string()),
        "removed": {
            "containers": removed(|a| match a { Action::RemoveContainer { container, .. } => Some(container), _ => None }),
            "volumes": removed(|a| match a { Action::RemoveVolume { volume, .. } => Some(volume), _ => None }),
            "networks": removed(|a| match a { Action::RemoveNetwork { network, .. } => Some(network), _ => None }),
        }
    })
}
