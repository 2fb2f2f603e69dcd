//! The reconciler: desired (jj workspaces × aether.toml) against observed
//! (labelled backend objects) → a plan → apply. See ARCHITECTURE.md.

pub mod apply;
#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod pass_tests;
pub mod plan;
pub mod progress;
pub mod report;
pub mod steps;

use crate::backend::{Backend, Observed};
use crate::base::error::{CommandError, Result};
use crate::model::context::{self, PortMap};
use crate::model::desired::{self, Desired, DesiredWorkspace, MissingRoot, Retention};
use crate::model::envfile;
use crate::model::jj::{self, JjAt, Workspaces};
use crate::model::repo::{self, RepoContext};
use crate::model::state;
use apply::Applier;
use futures_util::future::join_all;
use futures_util::StreamExt;
use plan::{Action, Scope};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use steps::{Memory, Step};

/// A workspace after a pass over it.
pub struct Settled {
    pub actions: Vec<Step>,
    pub ports: PortMap,
    pub own_ports: context::OwnPorts,
    /// The backend's objects of this workspace after the actions ran.
    pub observed: Observed,
    pub env_written: bool,
}

/// Converges one workspace. The caller holds its lock. Observes afresh
/// (unless handed an observation made under the lock), plans, applies,
/// writes `.env`. `desired` is the whole desired state, so that objects are
/// told apart by owner; the workspace is gone when it is not in
/// `desired.workspaces`. `root` is where it lives or lived.
/// `ajj workspace add/forget` call this directly.
pub async fn converge_workspace<B: Backend>(
    applier: &Applier<'_, B>,
    desired: &Desired,
    name: &str,
    root: Option<&Path>,
    observed: Option<Observed>,
) -> Result<Settled> {
    applier.check_backend(name)?;
    if let Some(ws) = desired.workspaces.get(name) {
        for w in &ws.config.warnings {
            applier.warn_once(w);
        }
    }
    let observed = match observed {
        Some(o) => o,
        None => applier.backend.observe_for(name, root).await?,
    };
    let scope = Scope::workspace(name, root);
    let actions = plan::plan(desired, &observed, &scope);
    let mine = plan::scoped(desired, &observed, &scope);
    let actions = resolve(applier, desired, &mine, actions);
    settle(
        applier,
        (name, root),
        desired.workspaces.get(name),
        actions,
        mine,
        scope,
        desired,
    )
    .await
}

async fn settle<B: Backend>(
    applier: &Applier<'_, B>,
    (name, root): (&str, Option<&Path>),
    desired: Option<&DesiredWorkspace>,
    actions: Vec<Step>,
    observed: Observed,
    scope: Scope,
    all: &Desired,
) -> Result<Settled> {
    let applied = applier.apply(name, desired, &actions, &observed).await?;
    let observed = if actions.is_empty() {
        observed
    } else {
        // By its root too only when something of it carries another name
        // (a rename whose volumes keep their labels): apply made the rest
        // under this name, and each listing is a round trip on a remote host.
        let renamed = observed.containers.iter().any(|c| c.workspace != name)
            || observed
                .networks
                .iter()
                .chain(&observed.volumes)
                .any(|o| o.workspace != name);
        let root = root.filter(|_| renamed);
        plan::scoped(all, &applier.backend.observe_for(name, root).await?, &scope)
    };
    if desired.is_some() && applier.backend.forwards_ports() {
        // For `ajj run`, which forwards to these without asking the remote
        // host first (see `commands::tunnel`).
        let remote = observed
            .containers
            .iter()
            .filter(|c| !c.published.is_empty())
            .map(|c| (c.service.clone(), c.published.clone()))
            .collect();
        state::record_remote_ports(applier.ctx, name, remote)?;
    }
    let mut env_written = false;
    if let Some(d) = desired {
        let vars = context::variables(
            &d.config,
            name,
            applier.backend.client_host(),
            &applied.ports,
            &applied.own_ports,
        )?;
        env_written =
            if d.config.services.is_empty() && d.config.env.is_empty() && d.config.ports.is_empty()
            {
                if let Some(records) = crate::model::trust::Records::user() {
                    records.forget_generated(&d.root);
                }
                envfile::clear(&d.root)?
            } else {
                let written = envfile::write(&d.root, &vars)?;
                // What the shell hooks may load without trust: recorded where
                // no revision can write (see trust.rs).
                // Without a state directory (no HOME) there is nothing to
                // record, and the hooks load no generated variable: safe.
                let generated = crate::model::trust::Generated::new(&d.root, &d.config, &vars);
                let recorded =
                    crate::model::trust::Records::user().map(|r| r.record_generated(&generated));
                if let Some(Err(e)) = recorded {
                    tracing::warn!(
                        "cannot record {}'s variables for the shell hooks: {}",
                        name,
                        e.message
                    );
                }
                written
            };
    }
    Ok(Settled {
        actions,
        ports: applied.ports,
        own_ports: applied.own_ports,
        observed,
        env_written,
    })
}

pub struct PassReport {
    pub actions: Vec<Step>,
    pub errors: Vec<(String, CommandError)>,
    pub env_written: Vec<String>,
    /// How long each workspace that had work took.
    pub durations: BTreeMap<String, std::time::Duration>,
    /// Where the live workspaces are: the watcher watches these.
    pub roots: Vec<std::path::PathBuf>,
    /// When the next kept volume's window ends (seconds since the epoch):
    /// the watcher runs a pass then.
    pub next_expiry: Option<u64>,
}

/// The earliest end of a retention window still to come, counting the
/// volumes this pass kept and not those it removed.
fn next_expiry(retention: &Retention, actions: &[Step]) -> Option<u64> {
    let removed: BTreeSet<&str> = actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveVolume { volume, .. } | Action::ReclaimVolume { volume, .. } => {
                Some(volume.as_str())
            }
            _ => None,
        })
        .collect();
    let kept = retention
        .kept
        .keys()
        .filter(|v| !removed.contains(v.as_str()))
        .filter_map(|v| retention.until(v));
    let new = actions.iter().filter_map(|s| match s.action {
        Action::KeepVolume { until, .. } => Some(until),
        _ => None,
    });
    kept.chain(new).filter(|u| *u > retention.now).min()
}

/// One full, level-triggered pass over every workspace of the repo.
pub async fn reconcile_all<B: Backend>(
    applier: &Applier<'_, B>,
    options: &PassOptions,
) -> Result<PassReport> {
    let dry_run = options.dry_run;
    let ctx = applier.ctx;
    let mut early_errors = Vec::new();
    if !dry_run {
        early_errors = finish_abandoned_adds(applier).await;
    }
    let mut entries = applier.jj.list()?;
    recall_roots(ctx, &mut entries);
    if !dry_run {
        prune_dead_worktrees(ctx, &entries);
    }
    let (mut desired, mut errors) =
        desired::build(&entries, || options.missing_root(applier.jj.as_ref()));
    errors.extend(early_errors);
    if !dry_run {
        for (name, ws) in &desired.workspaces {
            for w in &ws.config.warnings {
                applier.warn_once(&format!("{name}: {w}"));
            }
        }
    }
    let observed = applier.backend.observe(None).await?;
    desired.retention = retention(ctx, applier.jj.as_ref(), &desired, &observed)?;
    let actions = plan::plan(&desired, &observed, &Scope::All);
    if dry_run {
        let actions = resolve(applier, &desired, &observed, actions);
        return Ok(PassReport {
            next_expiry: next_expiry(&desired.retention, &actions),
            actions,
            errors,
            env_written: vec![],
            durations: BTreeMap::new(),
            roots: desired.roots.keys().cloned().collect(),
        });
    }

    let mut by_ws: BTreeMap<String, Vec<Action>> = BTreeMap::new();
    for a in &actions {
        by_ws
            .entry(a.workspace().to_string())
            .or_default()
            .push(a.clone());
    }
    let names: BTreeSet<String> = desired
        .workspaces
        .keys()
        .chain(by_ws.keys())
        .filter(|n| !options.hold.contains(*n))
        .cloned()
        .collect();
    // Workspaces with work run a few at a time (the engine is the
    // bottleneck: see `parallelism`); each keeps its own order and
    // readiness inside, and one's failure is its own. Those with nothing to
    // do only check their `.env`, all at once.
    let (busy, idle): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| by_ws.get(n).is_some_and(|p| !p.is_empty()));
    let job = |name: String| {
        let planned = by_ws.get(&name).cloned().unwrap_or_default();
        let desired = &desired;
        let observed = &observed;
        async move {
            let started = std::time::Instant::now();
            let outcome = if planned.is_empty() {
                refresh(applier, desired, &name, observed).await
            } else {
                act(applier, options, &name, &planned, desired).await
            };
            (name, outcome, started.elapsed())
        }
    };
    let busy = futures_util::stream::iter(busy.into_iter().map(job))
        .buffer_unordered(parallelism())
        .collect::<Vec<_>>();
    let (mut outcomes, idle) =
        futures_util::future::join(busy, join_all(idle.into_iter().map(job))).await;
    outcomes.extend(idle);
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut done = Vec::new();
    let mut env_written = Vec::new();
    let mut durations = BTreeMap::new();
    for (name, outcome, took) in outcomes {
        match outcome {
            Ok(Some(s)) => {
                if s.env_written {
                    env_written.push(name.clone());
                }
                if !s.actions.is_empty() {
                    durations.insert(name.clone(), took);
                }
                done.extend(s.actions);
            }
            Ok(None) => {}
            Err(e) => errors.push((name, e)),
        }
    }
    collect_built_images(applier, &desired).await;
    Ok(PassReport {
        next_expiry: next_expiry(&desired.retention, &done),
        actions: done,
        errors,
        env_written,
        durations,
        roots: desired.roots.keys().cloned().collect(),
    })
}

/// How many workspaces with work a pass carries out at once:
/// `$AETHER_PARALLEL`, else `DEFAULT_PARALLEL`.
pub const PARALLEL_ENV: &str = "AETHER_PARALLEL";
/// Measured on 2 cores with Docker 20.10 (bench/NOTES.md, "The fleet
/// section"): 40 new environments of one service, 1 at a time 15.1 s with
/// the CPU 48 % busy, 2: 9.0 s, 8: 8.0 s with it 95 % busy. The engine's own
/// work (networks, iptables, runc) is the bottleneck; more at once only
/// queues inside it.
pub const DEFAULT_PARALLEL: usize = 8;

fn parallelism() -> usize {
    std::env::var(PARALLEL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PARALLEL)
}

/// Images this repo built that no workspace's config names any more (an
/// edited context gives a new tag; a forgotten workspace needs none). One
/// still used by a container is kept by the engine. Only in repos that
/// ever built, so a pass elsewhere costs no extra call.
async fn collect_built_images<B: Backend>(applier: &Applier<'_, B>, desired: &Desired) {
    if !apply::ever_built(applier.ctx) || !desired.untouchable.is_empty() {
        return;
    }
    let used: BTreeSet<&str> = desired
        .workspaces
        .values()
        .flat_map(|w| w.config.services.values())
        .map(|s| s.spec.image.as_str())
        .collect();
    let Ok(images) = applier.backend.built_images().await else {
        return;
    };
    for (id, tags) in images {
        if tags.iter().any(|t| used.contains(t.as_str())) {
            continue;
        }
        let shown = tags.first().cloned().unwrap_or_else(|| id.clone());
        match applier.backend.remove_image(&id).await {
            Ok(()) => applier
                .progress
                .line(&format!("Removed image {shown}, which no workspace uses")),
            Err(e) => applier.warn_once(&format!(
                "could not remove image {shown}: {}",
                e.error.message
            )),
        }
    }
}

/// Adds that died part-way (their record is there, their lock is free): a
/// half-made workspace is cleared, so that its objects are collected by
/// this very pass and the same add can run again; a checked-out one is
/// left to the pass to provision (and to `ajj workspace add` to resume).
/// jj is called directly: this is about what jj itself left behind.
async fn finish_abandoned_adds<B: Backend>(
    applier: &Applier<'_, B>,
) -> Vec<(String, CommandError)> {
    use crate::model::pending_add::{self, Phase};
    let ctx = applier.ctx;
    let mut errors = Vec::new();
    for p in pending_add::all(ctx) {
        let Ok(Some(_lock)) = repo::try_lock_workspace(ctx, &p.workspace) else {
            continue; // its add is still running
        };
        match p.phase {
            Phase::Started => match pending_add::clear_half_made(&ctx.workspace_root, &p) {
                Ok(_) => {
                    applier.progress.line(&format!(
                        "Cleared the half-made workspace {} that an interrupted add left at {}",
                        p.workspace,
                        p.destination.display()
                    ));
                    if p.network_requested {
                        network_landed(applier.backend, &p.workspace).await;
                    }
                    pending_add::remove(ctx, &p.workspace);
                }
                Err(e) => errors.push((
                    p.workspace.clone(),
                    e.hint(format!(
                        "an interrupted add left {} half-made: `jj workspace forget {}` and remove that directory",
                        p.destination.display(),
                        p.workspace
                    )),
                )),
            },
            Phase::CheckedOut => {
                let listed = jj::list_workspaces(&ctx.workspace_root).unwrap_or_default();
                if !listed.iter().any(|e| e.name == p.workspace && e.root.is_some()) {
                    pending_add::remove(ctx, &p.workspace);
                }
            }
        }
    }
    errors
}

/// A workspace directory deleted behind jj's back (`rm -rf`) leaves, in a
/// colocated repo under jj 0.46, a Git worktree entry pointing nowhere,
/// which neither jj's forget nor Aether's removal takes away. It is pruned
/// as `git worktree prune` would, one entry, and only once the directory
/// is really gone.
fn prune_dead_worktrees(ctx: &RepoContext, entries: &[jj::WorkspaceEntry]) {
    for e in entries {
        if let (None, Some(root)) = (&e.root, &e.recorded_root) {
            if !root.exists() {
                crate::model::pending_add::prune_worktree(&ctx.workspace_root, root);
            }
        }
    }
}

/// Waits, 3 s at most, until the network a dead add requested is there to
/// be collected: the engine finishes a create whose client died, which
/// takes a few hundred milliseconds here. Not there by then, the request
/// never reached the engine.
async fn network_landed<B: Backend>(backend: &B, workspace: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        match backend.observe(Some(workspace)).await {
            Ok(o) if !o.networks.is_empty() => return,
            Err(_) => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// The plan's actions resolved into steps, with what Aether remembers of
/// the workspaces they touch.
fn resolve<B: Backend>(
    applier: &Applier<'_, B>,
    desired: &Desired,
    observed: &Observed,
    actions: Vec<Action>,
) -> Vec<Step> {
    let mut memory = Memory::new();
    for a in &actions {
        let mut names = vec![a.workspace()];
        if let Action::AdoptWorkspace { from, .. } = a {
            names.push(from);
        }
        for name in names {
            if !memory.contains_key(name) {
                memory.insert(name.to_string(), state::load(applier.ctx, name).ports);
            }
        }
    }
    steps::resolve(actions, desired, observed, &memory, applier.backend)
}

/// The retention of a full pass. The setting costs a jj call, so it is read
/// only when some volume belongs to no live workspace or data is kept
/// already: a pass over converged workspaces reads one small file more.
fn retention(
    ctx: &RepoContext,
    jj: &dyn Workspaces,
    desired: &Desired,
    observed: &Observed,
) -> Result<Retention> {
    let mut r = Retention {
        kept: state::load_kept(ctx),
        now: Retention::clock(),
        ..Default::default()
    };
    let gone = observed
        .volumes
        .iter()
        .any(|v| !plan::place_volume_with(desired, &r, v).live);
    if gone || !r.kept.is_empty() {
        r.window = retention_window(jj)?;
    }
    Ok(r)
}

/// `aether.keep-forgotten-data`, zero when unset.
pub fn retention_window(jj: &dyn Workspaces) -> Result<std::time::Duration> {
    match jj.setting(desired::KEEP_DATA_KEY)? {
        Some(text) => Retention::parse_window(&text),
        None => Ok(std::time::Duration::ZERO),
    }
}

/// What `ajj workspace forget` plans with: the setting, always (it is
/// about to remove data), and the workspaces to `--purge`.
pub fn retention_for_forget(ctx: &RepoContext, purge: BTreeSet<String>) -> Result<Retention> {
    Ok(Retention {
        window: retention_window(&JjAt(ctx.workspace_root.clone()))?,
        kept: state::load_kept(ctx),
        now: Retention::clock(),
        purge,
    })
}

/// A workspace with nothing to do still gets its `.env` checked, but only if
/// nobody else is working on it: whoever holds the lock will write it.
async fn refresh<B: Backend>(
    applier: &Applier<'_, B>,
    desired: &Desired,
    name: &str,
    observed: &Observed,
) -> Result<Option<Settled>> {
    let Some(_lock) = repo::try_lock_workspace(applier.ctx, name)? else {
        return Ok(None);
    };
    applier.check_backend(name)?;
    let ws = desired.workspaces.get(name);
    let scope = Scope::workspace(name, ws.map(|w| w.root.as_path()));
    let mine = plan::scoped(desired, observed, &scope);
    let root = ws.map(|w| w.root.as_path());
    settle(applier, (name, root), ws, vec![], mine, scope, desired)
        .await
        .map(Some)
}

/// A workspace with work: lock, then decide again from fresh observations,
/// because another `ajj` may have changed it since the pass began.
async fn act<B: Backend>(
    applier: &Applier<'_, B>,
    options: &PassOptions,
    name: &str,
    planned: &[Action],
    desired: &Desired,
) -> Result<Option<Settled>> {
    let _lock = lock(applier.ctx, name).await?;
    let fresh;
    let collects = planned.iter().any(|a| {
        matches!(
            a,
            Action::RemoveContainer { .. }
                | Action::RemoveNetwork { .. }
                | Action::RemoveVolume { .. }
                | Action::KeepVolume { .. }
        )
    });
    let desired = if collects {
        // About to remove something: ask jj once more under the lock, so a
        // `workspace add` or rename that finished meanwhile is not undone.
        let mut entries = applier.jj.list()?;
        recall_roots(applier.ctx, &mut entries);
        let (mut now, _) = desired::build(&entries, || options.missing_root(applier.jj.as_ref()));
        if now.untouchable.contains(name) {
            return Ok(None);
        }
        now.retention = desired.retention.clone();
        fresh = now;
        &fresh
    } else {
        desired
    };
    let root = desired
        .workspaces
        .get(name)
        .map(|w| w.root.clone())
        .or_else(|| {
            desired
                .roots
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(r, _)| r.clone())
        });
    converge_workspace(applier, desired, name, root.as_deref(), None)
        .await
        .map(Some)
}

/// Fills in roots jj no longer records, and remembers the ones it does.
/// After `jj workspace forget` + `jj undo`, jj lists the workspace again but
/// without its root; if the directory Aether last saw is still a workspace
/// of this repo, it is that workspace's root.
pub fn recall_roots(ctx: &RepoContext, entries: &mut [jj::WorkspaceEntry]) {
    let mut ledger = state::load_roots(ctx);
    let mut changed = false;
    for e in entries.iter_mut() {
        match &e.recorded_root {
            Some(root) => {
                if ledger.get(&e.name) != Some(root) {
                    ledger.insert(e.name.clone(), root.clone());
                    changed = true;
                }
            }
            None => {
                let Some(root) = ledger.get(&e.name) else {
                    continue;
                };
                if !root.exists() {
                    // jj lists no root for a deleted directory either: it is
                    // a missing root, and the policy decides.
                    e.recorded_root = Some(root.clone());
                    continue;
                }
                let ours = RepoContext::discover(root)
                    .is_ok_and(|c| c.store == ctx.store && &c.workspace_root == root);
                if ours {
                    e.recorded_root = Some(root.clone());
                    e.root = Some(root.clone());
                }
            }
        }
    }
    let before = ledger.len();
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    ledger.retain(|name, root| listed.contains(name.as_str()) || root.is_dir());
    if changed || ledger.len() != before {
        // Best effort: losing the ledger only loses this recovery.
        let _ = state::save_roots(ctx, &ledger);
    }
}

/// How a full pass runs.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub dry_run: bool,
    /// Overrides the repo's `aether.on-missing-root` setting.
    pub missing_root: Option<MissingRoot>,
    /// Workspaces left alone this pass (the watcher's crash-loop backoff).
    pub hold: BTreeSet<String>,
}

impl PassOptions {
    fn missing_root(&self, jj: &dyn Workspaces) -> Result<MissingRoot> {
        match self.missing_root {
            Some(p) => Ok(p),
            None => match jj.setting(desired::MISSING_ROOT_KEY)? {
                Some(text) => MissingRoot::parse(&text),
                None => Ok(MissingRoot::default()),
            },
        }
    }
}

/// Blocks on the workspace lock off the async thread.
pub async fn lock(ctx: &RepoContext, name: &str) -> Result<repo::WorkspaceLock> {
    let ctx = ctx.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || repo::lock_workspace(&ctx, &name))
        .await
        .map_err(|e| {
            CommandError::new(
                crate::base::error::ErrorCode::Internal,
                format!("lock task failed: {e}"),
            )
        })?
}
