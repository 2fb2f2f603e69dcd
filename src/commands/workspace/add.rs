//! `ajj workspace add`: `jj workspace add`, then the workspace's environment.

use crate::backend::{Backend, Naming, Observed, ObservedObject, WorkspaceRef};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::interrupt::{Interrupts, Stop};
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::config::{self, Config};
use crate::model::desired::{Desired, DesiredWorkspace};
use crate::model::envfile;
use crate::model::jj;
use crate::model::pending_add::{self, PendingAdd, Phase};
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
    /// Compose profile(s) to enable in this workspace (instead of
    /// `[compose] profiles` or COMPOSE_PROFILES); kept for its later passes
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profile: Vec<String>,
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
    /// The destination is a directory with something in it (or not a
    /// directory): jj will refuse it, and nothing there is Aether's.
    dest_holds_files: bool,
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
        let dest_holds_files =
            dest_existed && std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_some());
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
            dest_holds_files,
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
    crate::base::runtime::block_on(async {
        // Listening from here on: Ctrl-C no longer kills ajj mid-way; it
        // is answered at the next point where finishing or undoing is whole.
        let mut stops =
            Interrupts::listen().map_err(|e| CommandError::io("cannot listen for signals", e))?;
        add_and_provision(helper, &ctx, &args, &target, &mut stops).await
    })
}

/// How this add begins, given what an earlier one left.
enum Start {
    /// Nothing of an earlier add: run jj.
    Fresh,
    /// An earlier add of this destination got past jj and died: its
    /// checkout is complete, so only the environment is still to come.
    Resume,
}

/// Reads the record of an earlier add of this name (we hold its lock, so
/// that add is dead): a half-made workspace is cleared, a checked-out one
/// at the same destination is resumed.
fn after_earlier_add(ctx: &RepoContext, target: &Target) -> Result<Start> {
    let Some(earlier) = pending_add::load(ctx, &target.name) else {
        return Ok(Start::Fresh);
    };
    let same_place = earlier.destination == target.dest;
    if earlier.phase == Phase::CheckedOut && same_place {
        let listed = jj::list_workspaces(&ctx.workspace_root)?;
        let complete = listed.iter().any(|e| {
            e.name == target.name
                && e.root.is_some()
                && e.recorded_root.as_deref() == target.dest.canonicalize().ok().as_deref()
        });
        if complete {
            eprintln!(
                "Resuming the interrupted add of {}: its checkout is complete",
                target.name
            );
            return Ok(Start::Resume);
        }
    }
    if earlier.phase == Phase::Started {
        let cleared = pending_add::clear_half_made(&ctx.workspace_root, &earlier)?;
        if cleared != Default::default() {
            eprintln!(
                "Cleared what an interrupted add of {} left at {}",
                target.name,
                earlier.destination.display()
            );
        }
    }
    pending_add::remove(ctx, &target.name);
    Ok(Start::Fresh)
}

async fn add_and_provision(
    helper: &CommandHelper,
    ctx: &RepoContext,
    args: &Args,
    target: &Target,
    stops: &mut Interrupts,
) -> Result<i32> {
    // Docker first: if it is down, fail before jj changes anything.
    let backend = helper.backend(ctx).await?;
    let start = after_earlier_add(ctx, target)?;
    if matches!(start, Start::Fresh) {
        // The new network's addresses are chosen while jj runs; what that
        // needs of a remote host is read meanwhile, from now.
        backend.expect_new_isolation();
    }
    let mut observed = backend.observe(None).await?;
    let record = PendingAdd::new(&target.name, &target.dest, target.dest_existed);
    let (others, speculative) = match start {
        Start::Resume => {
            let mut others = jj::list_workspaces(&ctx.workspace_root)?;
            others.retain(|e| e.name != target.name);
            (others, None)
        }
        Start::Fresh => {
            // Written before jj runs: whatever jj leaves, the next add or
            // pass knows it for this add's own. Only for a destination jj
            // may add into (missing, or an empty directory): anything else
            // jj refuses, and clearing must never touch the user's files.
            let speculate = should_speculate(ctx, target, &observed);
            if !target.dest_holds_files {
                PendingAdd {
                    network_requested: speculate.is_some(),
                    ..record.clone()
                }
                .save(ctx)?;
            }
            let added = add_beside_network(helper, ctx, args, target, &backend, speculate).await;
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
                // jj refused before it made anything: out of the terminal's
                // reach, it is not stopped half-way. Nothing to clear, and
                // the destination may be the user's (a non-empty directory
                // jj would not add into).
                pending_add::remove(ctx, &target.name);
                return match stops.arrived() {
                    Some(stop) => Err(interrupted(stop, &target.name, Outcome::Undone)),
                    None => Err(explain_refusal(e, target, added.others.as_deref().ok())),
                };
            }
            PendingAdd {
                phase: Phase::CheckedOut,
                network_requested: speculate.is_some(),
                ..record.clone()
            }
            .save(ctx)?;
            if let Some(stop) = stops.arrived() {
                let _ = pending_add::clear_half_made(&ctx.workspace_root, &record);
                undo_network(&backend, network_id).await;
                pending_add::remove(ctx, &target.name);
                return Err(interrupted(stop, &target.name, Outcome::Undone));
            }
            (added.others?, added.network_id)
        }
    };

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
    let profiles = match args.profile.is_empty() {
        true => Ok(()),
        false => crate::model::compose::record_profiles(&root, &args.profile),
    };
    let config = match check_env_file(&root, args.allow_unignored_env)
        .and(profiles)
        .and_then(|()| config::load_from_root(&root))
    {
        Ok(c) => c,
        Err(e) if e.code == ErrorCode::ConfigUntrusted => {
            // Kept, with nothing started: trust is recorded for this very
            // root, so the user needs it to read and allow what is asked.
            undo_network(&backend, speculative.as_deref()).await;
            pending_add::remove(ctx, &target.name);
            let hint = format!(
                "the jj workspace {name:?} was added with nothing started: read what it asks with `ajj trust --show -R {root}`, allow it with `ajj trust -R {root}`, then run `ajj reconcile`",
                name = target.name,
                root = root.display()
            );
            return Err(e.hint(hint).detail("workspace", target.name.clone()));
        }
        Err(e) => {
            let all = desired_with_new(ctx, others, &target.name, &root, Config::default());
            undo(&backend, ctx, &all, &target.name, &root, &record).await;
            return Err(rolled_back(e, &target.name));
        }
    };
    if let Some(id) = &speculative {
        if config.services.is_empty() || root != target.predicted_root {
            undo_network(&backend, Some(id)).await;
            observed.networks.retain(|n| &n.id != id);
        }
    }
    let all = desired_with_new(ctx, others, &target.name, &root, config);
    let provisioned = tokio::select! {
        r = provision(&backend, ctx, args, &all, &target.name, &root, observed) => r,
        stop = stops.recv() => {
            // Whatever request was in flight is dropped; `undo` looks twice.
            undo(&backend, ctx, &all, &target.name, &root, &record).await;
            return Err(interrupted(stop, &target.name, Outcome::Undone));
        }
    };
    // Complete, or failed with its hint (`ajj reconcile`): either way no
    // longer an add to resume.
    pending_add::remove(ctx, &target.name);
    if let Some(stop) = stops.arrived() {
        return Err(interrupted(stop, &target.name, Outcome::Completed)
            .detail("result", provisioned.as_ref().err().map(|e| e.to_json())));
    }
    let (report, env_written) = provisioned?;
    if args.json {
        print_json(&report);
    } else {
        report::print_human(&report);
        if env_written {
            println!("Wrote {}", report.env_file);
        }
    }
    Ok(0)
}

/// jj's refusal, with what Aether knows about why (from its own facts, not
/// jj's wording) and the exact commands that settle it.
fn explain_refusal(
    e: CommandError,
    target: &Target,
    listed: Option<&[jj::WorkspaceEntry]>,
) -> CommandError {
    if e.code != ErrorCode::JjFailed || e.hint.is_some() {
        return e;
    }
    let name = &target.name;
    let dest = target.dest.display();
    if let Some(existing) = listed.and_then(|l| l.iter().find(|w| &w.name == name)) {
        let at = existing
            .recorded_root
            .as_ref()
            .map(|r| format!(" at {}", r.display()))
            .unwrap_or_default();
        return e
            .hint(format!(
                "a workspace named {name:?} exists{at}: choose another with --name, or remove it first with `ajj workspace forget {name}`"
            ))
            .detail("existing_workspace", name);
    }
    let non_empty = std::fs::read_dir(&target.dest).is_ok_and(|mut d| d.next().is_some());
    if non_empty {
        return e.hint(format!(
            "{dest} is not empty, and no add of Aether's made it; if it is what an interrupted plain `jj workspace add` left, remove it (`rm -rf {dest}`) and run the add again"
        ));
    }
    e
}

/// What an interrupted add did about what it had started.
#[derive(Clone, Copy)]
enum Outcome {
    Undone,
    Completed,
}

fn interrupted(stop: Stop, name: &str, outcome: Outcome) -> CommandError {
    let (word, message, hint) = match outcome {
        Outcome::Undone => (
            "undone",
            format!("{} stopped the add of {name}; it was undone: the jj workspace, its directory and its environment are gone", stop.name()),
            "run the same `ajj workspace add` again",
        ),
        Outcome::Completed => (
            "completed",
            format!("{} came as the add of {name} finished; the workspace is complete", stop.name()),
            "see it with `ajj status`",
        ),
    };
    CommandError::new(ErrorCode::Interrupted, message)
        .hint(hint)
        .detail("signal", stop.name())
        .detail("outcome", word)
        .detail("workspace", name)
}

/// Takes the workspace back: its objects (looked for twice, since a
/// dropped request may still land), its state, its jj workspace and
/// directory, and the record of this add. Best effort: what is left is
/// the next pass's to collect.
async fn undo(
    backend: &impl Backend,
    ctx: &RepoContext,
    all: &Desired,
    name: &str,
    root: &Path,
    record: &PendingAdd,
) {
    let mut without = all.clone();
    without.workspaces.remove(name);
    without.roots.retain(|_, n| n != name);
    let applier = Applier::new(backend, ctx, false);
    for look in 0..2 {
        if look > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let _ = reconcile::converge_workspace(&applier, &without, name, Some(root), None).await;
    }
    let _ = pending_add::clear_half_made(&ctx.workspace_root, record);
    pending_add::remove(ctx, name);
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
    speculate: Option<usize>,
) -> Added {
    let jj_args = jj_add_args(helper, args, target);
    let json = args.json;
    let cwd = target.cwd.clone();
    let jj_add = tokio::task::spawn_blocking(move || {
        jj::run_visible(&jj_args, &cwd, json, "workspace add", true)
    });
    // The other workspaces' roots tell their objects from this one's
    // (one may carry this name from before a rename).
    let list_root = ctx.workspace_root.clone();
    let others = tokio::task::spawn_blocking(move || jj::list_workspaces(&list_root));
    let early_network = async {
        match speculate {
            Some(services) => backend
                .ensure_network(target.predicted(), services)
                .await
                .ok(),
            None => None,
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
/// How many services the new workspace's network is made for ahead of
/// its config (this workspace's count: a new workspace starts from the same
/// files), or `None` when it is not made early.
fn should_speculate(ctx: &RepoContext, target: &Target, observed: &Observed) -> Option<usize> {
    let exists = observed.networks.iter().any(|n| {
        n.workspace == target.name && n.root.as_deref() == Some(target.predicted_root.as_path())
    });
    let services = config::load_from_root(&ctx.workspace_root).map_or(0, |c| c.services.len());
    (!exists && services > 0).then_some(services)
}

fn jj_add_args(helper: &CommandHelper, args: &Args, target: &Target) -> Vec<OsString> {
    let mut jj_args: Vec<OsString> = Vec::new();
    if let Some(r) = helper.repository() {
        jj_args.extend(["-R".into(), r.as_os_str().to_owned()]);
    }
    // A plain workspace, also in a colocated repo: jj 0.46 would make a Git
    // worktree, whose `.git` names a host path that a container mounting
    // the workspace cannot follow, and which needs git >= 2.42 on PATH.
    // README ("Colocated repos") says so; 0.45 takes the setting unchanged.
    jj_args.extend([
        "--config".into(),
        "git.colocate=false".into(),
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
) -> Result<(report::WorkspaceReport, bool)> {
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
        &settled.own_ports,
        backend.kind(),
        backend.client_host(),
        backend.remote_host(),
        warnings,
    );
    let r = report::WorkspaceReport {
        images_built: applier.built.lock().unwrap().clone(),
        ..r
    };
    Ok((r, settled.env_written))
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
