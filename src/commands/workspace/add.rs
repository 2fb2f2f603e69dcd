//! `ajj workspace add`: `jj workspace add`, then the workspace's environment.

use crate::backend::{Backend, Naming, ObservedObject, WorkspaceRef};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::config;
use crate::model::desired::{Desired, DesiredWorkspace};
use crate::model::envfile;
use crate::model::jj;
use crate::reconcile::report;
use crate::reconcile::{self, apply::Applier};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Add a workspace and provision its environment
///
/// Runs `jj workspace add`, starts the services of the new workspace's
/// aether.toml, waits until they are ready and writes their connection
/// details into the workspace's .env.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to create the new workspace
    pub destination: PathBuf,
    /// Name of the workspace (default: the destination's last path component)
    #[arg(long)]
    pub name: Option<String>,
    /// Parent revision(s) of the new working-copy commit (passed to jj)
    #[arg(short = 'r', long = "revision", value_name = "REVSETS")]
    pub revision: Vec<String>,
    /// How to set sparse patterns: copy, full or empty (passed to jj)
    #[arg(long, value_name = "MODE")]
    pub sparse_patterns: Option<String>,
    /// Provision even though the revision carries a `.env` with lines of
    /// its own, which jj will snapshot together with Aether's block
    #[arg(long)]
    pub allow_unignored_env: bool,
    /// Print one JSON object on stdout; progress goes to stderr
    #[arg(long)]
    pub json: bool,
}

/// `a/./b/../c` → `a/c`, without touching the filesystem (the path does not exist yet).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let cwd = std::env::current_dir()
        .map_err(|e| CommandError::io("cannot read the current directory", e))?;
    let dest = normalise(&cwd.join(&args.destination));
    let name = match &args.name {
        Some(n) => n.clone(),
        None => dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                CommandError::new(
                    ErrorCode::Usage,
                    "the destination has no final path component to name the workspace",
                )
                .hint("pass --name")
            })?,
    };
    let dest_existed = dest.exists();
    // Where the root will be once jj has made it: objects are labelled with it.
    let predicted_root = dest
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .zip(dest.file_name())
        .map(|(parent, leaf)| parent.join(leaf))
        .unwrap_or_else(|| dest.clone());

    let _lock = crate::model::repo::lock_workspace(&ctx, &name)?;
    crate::base::runtime::block_on(async {
        // Docker first: if it is down, fail before jj changes anything.
        let backend = helper.backend(&ctx).await?;
        let mut observed = backend.observe(None).await?;
        // Creating the network takes as long as jj does, and needs no config:
        // start it now if this workspace declares services (the new one most
        // likely does too), and take it back if that guess was wrong.
        let speculate =
            !observed.networks.iter().any(|n| {
                n.workspace == name && n.root.as_deref() == Some(predicted_root.as_path())
            }) && config::load_from_root(&ctx.workspace_root).is_ok_and(|c| !c.services.is_empty());
        let mut jj_args: Vec<OsString> = Vec::new();
        if let Some(r) = helper.repository() {
            jj_args.extend(["-R".into(), r.as_os_str().to_owned()]);
        }
        jj_args.extend([
            "workspace".into(),
            "add".into(),
            dest.clone().into_os_string(),
            "--name".into(),
            name.clone().into(),
        ]);
        for r in &args.revision {
            jj_args.extend(["-r".into(), r.into()]);
        }
        if let Some(mode) = &args.sparse_patterns {
            jj_args.extend(["--sparse-patterns".into(), mode.into()]);
        }
        let json = args.json;
        let jj_add = tokio::task::spawn_blocking(move || {
            jj::run_visible(&jj_args, &cwd, json, "workspace add")
        });
        // The other workspaces' roots tell their objects from this one's
        // (one may carry this name from before a rename).
        let list_root = ctx.workspace_root.clone();
        let others = tokio::task::spawn_blocking(move || jj::list_workspaces(&list_root));
        let predicted = WorkspaceRef {
            name: &name,
            root: &predicted_root,
        };
        let early_network = async {
            match speculate {
                true => backend.ensure_network(predicted).await.ok(),
                false => None,
            }
        };
        let (added, others, network_id) = tokio::join!(jj_add, others, early_network);
        if let Some(id) = &network_id {
            // Apply must not create it twice: engines before 25 accept duplicate names.
            observed.networks.push(ObservedObject {
                id: id.clone(),
                name: backend.network_name(predicted),
                workspace: name.clone(),
                root: Some(predicted_root.clone()),
                ..Default::default()
            });
        }
        let undo_network = || async {
            if let Some(id) = &network_id {
                let _ = backend.remove_network(id).await;
            }
        };
        let added = added
            .map_err(|e| CommandError::new(ErrorCode::Internal, format!("jj task failed: {e}")));
        if let Err(e) = added.and_then(|r| r) {
            undo_network().await;
            return Err(e);
        }

        // jj succeeded, so the workspace exists under the name and path we
        // gave it: no need to ask jj again.
        let root = dest.canonicalize().map_err(|e| {
            CommandError::io(
                format!(
                    "jj added the workspace but {} is unreadable",
                    dest.display()
                ),
                e,
            )
        })?;

        // The new workspace's own aether.toml decides. If it is invalid the
        // workspace is undone, so a bad config leaves nothing behind. So
        // does a `.env` the revision carries that Aether must not touch.
        let config = match check_env_file(&root, args.allow_unignored_env)
            .and_then(|()| config::load_from_root(&root))
        {
            Ok(c) => c,
            Err(e) => {
                rollback(&ctx.workspace_root, &name, &root, dest_existed);
                undo_network().await;
                let fix = match e.code {
                    ErrorCode::ConfigInvalid => {
                        "fix aether.toml in the revision you add the workspace from".into()
                    }
                    _ => e.hint.clone().unwrap_or_default(),
                };
                return Err(e.detail("rolled_back", true).hint(format!(
                    "{fix}, then run `ajj workspace add` again (the jj workspace {name:?} was forgotten again)"
                )));
            }
        };
        if (config.services.is_empty() || root != predicted_root) && network_id.is_some() {
            undo_network().await;
            observed
                .networks
                .retain(|n| Some(n.id.as_str()) != network_id.as_deref());
        }
        let mut others = others
            .map_err(|e| CommandError::new(ErrorCode::Internal, format!("jj task failed: {e}")))
            .and_then(|r| r)?;
        others.push(jj::WorkspaceEntry {
            name: name.clone(),
            root: Some(root.clone()),
            recorded_root: Some(root.clone()),
        });
        reconcile::recall_roots(&ctx, &mut others);
        let mut all = Desired::shallow(&others);
        all.roots.insert(root.clone(), name.clone());
        all.workspaces.insert(
            name.clone(),
            DesiredWorkspace {
                root: root.clone(),
                config,
            },
        );
        let desired = &all.workspaces[&name];
        let applier = Applier::new(&backend, &ctx, true);
        let settled = reconcile::converge_workspace(&applier, &all, &name, Some(&root), Some(observed))
            .await
            .map_err(|e| {
                let hint = e.hint.clone().map(|h| format!("{h}; ")).unwrap_or_default();
                e.hint(format!("{hint}the jj workspace exists: once fixed, run `ajj reconcile` to finish its environment"))
            })?;

        let mut warnings = applier.warnings.lock().unwrap().clone();
        if !desired.config.services.is_empty() && !envfile::is_ignored(&root) {
            let w = format!(
                "{} is not ignored, so jj will snapshot your service credentials into a commit; add `.env` to .gitignore (`ajj init` does it)",
                root.join(envfile::FILE_NAME).display()
            );
            eprintln!("warning: {w}");
            warnings.push(w);
        }
        let r = report::workspace_report(
            &name,
            &root,
            &desired.config,
            &settled.observed,
            &settled.ports,
            backend.kind(),
            backend.client_host(),
            backend.remote_host(),
            warnings,
        );
        if args.json {
            print_json(&r);
        } else {
            report::print_human(&r);
            if settled.env_written {
                println!("Wrote {}", r.env_file);
            }
        }
        Ok(0)
    })
}

/// Whatever `.env` exists right after `jj workspace add` was checked out
/// from the revision, so jj tracks it. Aether reads it only as a regular
/// file (a symlink could point at `~/.ssh/id_ed25519`), and does not merge
/// its block into lines of the revision's own unless told to: jj would
/// snapshot the credentials with them, ready for the next push.
fn check_env_file(root: &Path, allow_unignored: bool) -> Result<()> {
    let Some(opened) = envfile::open_regular(root)? else {
        return Ok(());
    };
    let user_text = envfile::splice(&opened.text, None);
    if allow_unignored || user_text.trim().is_empty() {
        return Ok(());
    }
    let path = root.join(envfile::FILE_NAME);
    Err(CommandError::new(
        ErrorCode::EnvNotIgnored,
        format!(
            "the revision carries {} with lines of its own; jj tracks it, so Aether's block (ports, credentials) would be snapshotted into it",
            path.display()
        ),
    )
    .hint(format!(
        "untrack it in the revision (`jj file untrack {0}` with `{0}` in .gitignore, keeping a `{0}.example`), or pass --allow-unignored-env",
        envfile::FILE_NAME
    ))
    .detail("file", path.display().to_string()))
}

/// Undoes a `jj workspace add`: forget it and remove the directory jj made.
fn rollback(repo_root: &Path, name: &str, root: &Path, dest_existed: bool) {
    let _ = jj::command()
        .args(["workspace", "forget", name])
        .current_dir(repo_root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if dest_existed {
        // jj only adds into an empty directory: empty it again.
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let p = entry.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    } else {
        let _ = std::fs::remove_dir_all(root);
    }
}
