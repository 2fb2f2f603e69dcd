//! `ajj workspace forget`: `jj workspace forget`, then every container,
//! volume and network of those workspaces, at once.

use crate::backend::Backend;
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::CommandHelper;
use crate::commands::{self, print_json};
use crate::model::desired::{Desired, Retention};
use crate::model::envfile;
use crate::model::jj;
use crate::model::repo::RepoContext;
use crate::reconcile::plan::{rfc3339, Action};
use crate::reconcile::report::SCHEMA_VERSION;
use crate::reconcile::{self, apply::Applier, Settled};
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Forget workspaces and remove their containers, volumes and network
///
/// The workspace directories stay on disk, as with `jj workspace forget`;
/// Aether's block is removed from their .env. With the jj setting
/// `aether.keep-forgotten-data` above zero (e.g. `7d`), volumes are kept
/// for that long instead, so that `jj undo` brings the data back.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names of the workspaces to forget (default: the current one)
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::commands::completions::workspace_names))]
    pub workspaces: Vec<String>,
    /// Delete the volumes now, whatever `aether.keep-forgotten-data` says
    #[arg(long)]
    pub purge: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let mut entries = jj::list_workspaces(&ctx.workspace_root)?;
    let mut unfinished = Vec::new();
    // Remembered first: a `jj undo` of this forget finds the root again.
    reconcile::recall_roots(&ctx, &mut entries);
    // A forget that died after jj forgot left state behind: run again, it
    // finishes the removal. jj no longer lists such a workspace, so it is
    // taken from Aether's own records.
    let ledger = crate::model::state::load_roots(&ctx);
    for name in &args.workspaces {
        if !entries.iter().any(|e| &e.name == name) && crate::model::state::exists(&ctx, name) {
            let root = ledger.get(name).cloned();
            entries.push(jj::WorkspaceEntry {
                name: name.clone(),
                root: root.clone().filter(|r| r.is_dir()),
                recorded_root: root,
            });
            unfinished.push(name.clone());
        }
    }
    let names = chosen_workspaces(&ctx, &entries, &args)?;
    // Sorted, so two forgets of overlapping sets cannot deadlock.
    let _locks = names
        .iter()
        .map(|n| crate::model::repo::lock_workspace(&ctx, n))
        .collect::<Result<Vec<_>>>()?;
    // Read before jj forgets anything: a bad setting must stop the forget.
    let purge = match args.purge {
        true => names.iter().cloned().collect(),
        false => Default::default(),
    };
    let retention = reconcile::retention_for_forget(&ctx, purge)?;
    crate::base::runtime::block_on(forget_and_remove(
        helper,
        &ctx,
        &entries,
        &names,
        &unfinished,
        retention,
        args.json,
    ))
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
    unfinished: &[String],
    retention: Retention,
    json: bool,
) -> Result<i32> {
    // Docker first: forgetting in jj but leaving containers would be half a job.
    // Where the environments are, which may not be where new ones go.
    let spec = helper.workspace_backend(ctx, &names[0])?;
    let backend = helper.connect(ctx, &spec).await?;
    let to_jj: Vec<&String> = names.iter().filter(|n| !unfinished.contains(n)).collect();
    if !to_jj.is_empty() {
        let mut jj_args: Vec<OsString> = vec!["workspace".into(), "forget".into()];
        jj_args.extend(to_jj.into_iter().map(OsString::from));
        jj::run_visible(
            &jj_args,
            &ctx.workspace_root,
            json,
            "workspace forget",
            true,
        )?;
    }
    for name in names {
        // An add of it that died is moot now.
        crate::model::pending_add::remove(ctx, name);
    }

    let applier = Applier::new(&backend, ctx, !json);
    let results = remove_environments(&applier, entries, names, retention).await;
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
                    print_forgotten(name, &settled);
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
    retention: Retention,
) -> Vec<Result<Settled>> {
    let remaining: Vec<_> = entries
        .iter()
        .filter(|e| !names.contains(&e.name))
        .cloned()
        .collect();
    let mut desired = Desired::shallow(&remaining);
    desired.retention = retention;
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

fn print_forgotten(name: &str, settled: &Settled) {
    let kept: Vec<_> = settled
        .actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::KeepVolume { volume, until, .. } => Some((volume, *until)),
            _ => None,
        })
        .collect();
    let removed = settled.actions.len() - kept.len();
    println!("Forgot {name}: removed {removed} object(s)");
    for (volume, until) in kept {
        println!(
            "Kept volume {volume} until {} (`jj undo` brings it back; `ajj workspace forget --purge` does not keep)",
            rfc3339(until)
        );
    }
}

/// What became of each volume: `deleted`, or `kept_until`.
fn data_json(settled: &Settled) -> Vec<serde_json::Value> {
    settled
        .actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveVolume { volume, .. } => {
                Some(json!({ "volume": volume, "deleted": true }))
            }
            Action::KeepVolume { volume, until, .. } => {
                Some(json!({ "volume": volume, "deleted": false, "kept_until": rfc3339(*until) }))
            }
            _ => None,
        })
        .collect()
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
        },
        "data": data_json(settled),
    })
}
