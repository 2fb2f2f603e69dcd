//! `ajj workspace add`: `jj workspace add`, then the workspace's environment.

use crate::backend::{Backend, Naming, Observed, ObservedObject, WorkspaceRef};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::config::{self, Config};
use crate::model::desired::{Desired, DesiredWorkspace};
use crate::model::envfile;
use crate::model::jj;
use crate::model::repo::RepoContext;
use crate::reconcile::progress::Progress;
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

/// Where the new workspace goes, worked out before jj runs.
struct Target {
    cwd: PathBuf,
    dest: PathBuf,
    name: String,
    dest_existed: bool,
    /// Where the root will be once jj has made it: objects are labelled with it.
    predicted_root: PathBuf,
}

impl Target {
    fn resolve(args: &Args) -> Result<Target> {
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
        let predicted_root = dest
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .zip(dest.file_name())
            .map(|(parent, leaf)| parent.join(leaf))
            .unwrap_or_else(|| dest.clone());
        Ok(Target {
            cwd,
            dest,
            name,
            dest_existed,
            predicted_root,
        })
    }

    fn predicted(&self) -> WorkspaceRef<'_> {
        WorkspaceRef {
            name: &self.name,
            root: &self.predicted_root,
        }
    }
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let target = Target::resolve(&args)?;
    let _lock = crate::model::repo::lock_workspace(&ctx, &target.name)?;
    crate::base::runtime::block_on(add_and_provision(helper, &ctx, &args, &target))
}

async fn add_and_provision(
    helper: &CommandHelper,
    ctx: &RepoContext,
    args: &Args,
    target: &Target,
) -> Result<i32> {
    // Docker first: if it is down, fail before jj changes anything.
    let backend = helper.backend(ctx).await?;
    let mut observed = backend.observe(None).await?;
    let added = add_beside_network(helper, ctx, args, target, &backend, &observed).await;
    if let Some(id) = &added.network_id {
        // Apply must not create it twice: engines before 25 accept duplicate names.
        observed.networks.push(ObservedObject {
            id: id.clone(),
            name: backend.network_name(target.predicted()),
            workspace: target.name.clone(),
            root: Some(target.predicted_root.clone()),
            ..Default::default()
        });
    }
    let network_id = added.network_id.as_deref();
    if let Err(e) = added.jj {
        undo_network(&backend, network_id).await;
        return Err(e);
    }

    // jj succeeded, so the workspace exists under the name and path we
    // gave it: no need to ask jj again.
    let root = target.dest.canonicalize().map_err(|e| {
        CommandError::io(
            format!(
                "jj added the workspace but {} is unreadable",
                target.dest.display()
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
            rollback(
                &ctx.workspace_root,
                &target.name,
                &root,
                target.dest_existed,
            );
            undo_network(&backend, network_id).await;
            return Err(rolled_back(e, &target.name));
        }
    };
    if (config.services.is_empty() || root != target.predicted_root) && network_id.is_some() {
        undo_network(&backend, network_id).await;
        observed
            .networks
            .retain(|n| Some(n.id.as_str()) != network_id);
    }
    let all = desired_with_new(ctx, added.others?, &target.name, &root, config);
    provision(&backend, ctx, args, &all, &target.name, &root, observed).await
}

/// What came back from `jj workspace add` and what ran beside it.
struct Added {
    jj: Result<()>,
    /// The other workspaces, listed while jj ran.
    others: Result<Vec<jj::WorkspaceEntry>>,
    /// The network made on speculation, if it was.
    network_id: Option<String>,
}

/// Runs `jj workspace add`, lists the other workspaces and, on
/// speculation, creates the new workspace's network, all at once.
async fn add_beside_network(
    helper: &CommandHelper,
    ctx: &RepoContext,
    args: &Args,
    target: &Target,
    backend: &impl Backend,
    observed: &Observed,
) -> Added {
    let speculate = should_speculate(ctx, target, observed);
    let jj_args = jj_add_args(helper, args, target);
    let json = args.json;
    let cwd = target.cwd.clone();
    let jj_add =
        tokio::task::spawn_blocking(move || jj::run_visible(&jj_args, &cwd, json, "workspace add"));
    // The other workspaces' roots tell their objects from this one's
    // (one may carry this name from before a rename).
    let list_root = ctx.workspace_root.clone();
    let others = tokio::task::spawn_blocking(move || jj::list_workspaces(&list_root));
    let early_network = async {
        match speculate {
            true => backend.ensure_network(target.predicted()).await.ok(),
            false => None,
        }
    };
    let (added, others, network_id) = tokio::join!(jj_add, others, early_network);
    Added {
        jj: joined(added),
        others: joined(others),
        network_id,
    }
}

/// Creating the network takes as long as jj does, and needs no config:
/// start it now if this workspace declares services (the new one most
/// likely does too), and take it back if that guess was wrong.
fn should_speculate(ctx: &RepoContext, target: &Target, observed: &Observed) -> bool {
    !observed.networks.iter().any(|n| {
        n.workspace == target.name && n.root.as_deref() == Some(target.predicted_root.as_path())
    }) && config::load_from_root(&ctx.workspace_root).is_ok_and(|c| !c.services.is_empty())
}

fn jj_add_args(helper: &CommandHelper, args: &Args, target: &Target) -> Vec<OsString> {
    let mut jj_args: Vec<OsString> = Vec::new();
    if let Some(r) = helper.repository() {
        jj_args.extend(["-R".into(), r.as_os_str().to_owned()]);
    }
    jj_args.extend([
        "workspace".into(),
        "add".into(),
        target.dest.clone().into_os_string(),
        "--name".into(),
        target.name.clone().into(),
    ]);
    for r in &args.revision {
        jj_args.extend(["-r".into(), r.into()]);
    }
    if let Some(mode) = &args.sparse_patterns {
        jj_args.extend(["--sparse-patterns".into(), mode.into()]);
    }
    jj_args
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| CommandError::new(ErrorCode::Internal, format!("jj task failed: {e}")))
        .and_then(|r| r)
}

async fn undo_network(backend: &impl Backend, network_id: Option<&str>) {
    if let Some(id) = network_id {
        let _ = backend.remove_network(id).await;
    }
}

fn rolled_back(e: CommandError, name: &str) -> CommandError {
    let fix = match e.code {
        ErrorCode::ConfigInvalid => {
            "fix aether.toml in the revision you add the workspace from".into()
        }
        _ => e.hint.clone().unwrap_or_default(),
    };
    e.detail("rolled_back", true).hint(format!(
        "{fix}, then run `ajj workspace add` again (the jj workspace {name:?} was forgotten again)"
    ))
}

/// Every workspace shallowly, and the new one with its config.
fn desired_with_new(
    ctx: &RepoContext,
    mut others: Vec<jj::WorkspaceEntry>,
    name: &str,
    root: &Path,
    config: Config,
) -> Desired {
    others.push(jj::WorkspaceEntry {
        name: name.to_string(),
        root: Some(root.to_path_buf()),
        recorded_root: Some(root.to_path_buf()),
    });
    reconcile::recall_roots(ctx, &mut others);
    let mut all = Desired::shallow(&others);
    // Data kept from a forget at this root is this workspace's again.
    all.retention.kept = crate::model::state::load_kept(ctx);
    all.roots.insert(root.to_path_buf(), name.to_string());
    all.workspaces.insert(
        name.to_string(),
        DesiredWorkspace {
            root: root.to_path_buf(),
            config,
        },
    );
    all
}

async fn provision(
    backend: &impl Backend,
    ctx: &RepoContext,
    args: &Args,
    all: &Desired,
    name: &str,
    root: &Path,
    observed: Observed,
) -> Result<i32> {
    let desired = &all.workspaces[name];
    let mut applier = Applier::new(backend, ctx, true);
    if args.json {
        // Progress still goes to stderr, as plain lines: nothing is drawn
        // for a program reading the JSON.
        applier.progress = Progress::Lines;
    }
    let settled = reconcile::converge_workspace(&applier, all, name, Some(root), Some(observed))
        .await
        .map_err(|e| {
            let hint = e.hint.clone().map(|h| format!("{h}; ")).unwrap_or_default();
            e.hint(format!("{hint}the jj workspace exists: once fixed, run `ajj reconcile` to finish its environment"))
        })?;

    let mut warnings = applier.warnings.lock().unwrap().clone();
    if !desired.config.services.is_empty() && !envfile::is_ignored(root) {
        let w = format!(
            "{} is not ignored, so jj will snapshot your service credentials into a commit; add `.env` to .gitignore (`ajj init` does it)",
            root.join(envfile::FILE_NAME).display()
        );
        eprintln!("warning: {w}");
        warnings.push(w);
    }
    let r = report::workspace_report(
        name,
        root,
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
