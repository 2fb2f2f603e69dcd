//! Aether's private per-workspace state inside the repo store: the sticky
//! host ports. Labels on containers mirror it, but a container can be
//! removed behind our back; this file is what keeps `.env` valid then.
//! Written only under the workspace lock, always atomically.

use crate::base::error::Result;
use crate::base::fs::write_atomic;
use crate::model::backend_spec::BackendSpec;
use crate::model::repo::{workspace_key, RepoContext};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceState {
    pub workspace: String,
    /// service → container port → host port
    #[serde(default)]
    pub ports: BTreeMap<String, BTreeMap<u16, u16>>,
    /// The backend holding the environment (`Backend::id`); absent in
    /// state written before remote backends, which was always local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// On a backend that forwards ports: service → container port → the
    /// port published on the remote host, as the last pass observed it.
    /// `ajj run` forwards to these at once and checks them meanwhile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_ports: BTreeMap<String, BTreeMap<u16, u16>>,
    /// `[ports]` name → the local port reserved for it (also held in the
    /// user's port ledger, so that no other workspace takes it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub own_ports: BTreeMap<String, u16>,
}

fn dir(ctx: &RepoContext) -> PathBuf {
    ctx.state_dir().join("workspaces")
}

fn path(ctx: &RepoContext, workspace: &str) -> PathBuf {
    dir(ctx).join(format!("{}.json", workspace_key(&ctx.repo_id, workspace)))
}

/// A missing or unreadable file is an empty state: ports are then picked
/// afresh, which costs a `.env` rewrite but never correctness.
pub fn load(ctx: &RepoContext, workspace: &str) -> WorkspaceState {
    std::fs::read(path(ctx, workspace))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<WorkspaceState>(&bytes).ok())
        .filter(|s| s.workspace == workspace)
        .unwrap_or_else(|| WorkspaceState {
            workspace: workspace.to_string(),
            ..Default::default()
        })
}

/// Whether Aether holds state for `workspace`: its environment was made and
/// not yet wholly removed (the last step of a removal deletes the file).
pub fn exists(ctx: &RepoContext, workspace: &str) -> bool {
    path(ctx, workspace).is_file()
}

pub fn save(ctx: &RepoContext, state: &WorkspaceState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    write_atomic(&path(ctx, &state.workspace), &bytes, 0o600)
}

/// Records where the workspace's services are published on the remote
/// host, if that changed and the workspace still has state. The caller
/// holds the workspace lock.
pub fn record_remote_ports(
    ctx: &RepoContext,
    workspace: &str,
    remote: BTreeMap<String, BTreeMap<u16, u16>>,
) -> Result<()> {
    if !exists(ctx, workspace) {
        return Ok(());
    }
    let mut saved = load(ctx, workspace);
    if saved.remote_ports == remote {
        return Ok(());
    }
    saved.remote_ports = remote;
    save(ctx, &saved)
}

pub fn remove(ctx: &RepoContext, workspace: &str) {
    let _ = std::fs::remove_file(path(ctx, workspace));
}

/// Host ports recorded for every workspace of the repo, so that a fresh pick
/// does not take a port a stopped sibling will want back.
pub fn all_reserved_ports(ctx: &RepoContext) -> HashSet<u16> {
    let Ok(entries) = std::fs::read_dir(dir(ctx)) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<WorkspaceState>(&b).ok())
        .flat_map(|s| {
            let own = s.own_ports.into_values();
            s.ports
                .into_values()
                .flat_map(|m| m.into_values())
                .chain(own)
        })
        .collect()
}

fn roots_path(ctx: &RepoContext) -> PathBuf {
    ctx.state_dir().join("roots.json")
}

/// The last root seen for each workspace name. `jj workspace forget` drops
/// the root from jj's records and `jj undo` does not restore it, so this is
/// how an undone forget finds its directory again.
pub fn load_roots(ctx: &RepoContext) -> BTreeMap<String, PathBuf> {
    std::fs::read(roots_path(ctx))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save_roots(ctx: &RepoContext, roots: &BTreeMap<String, PathBuf>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(roots).expect("roots serialise");
    write_atomic(&roots_path(ctx), &bytes, 0o600)
}

fn kept_path(ctx: &RepoContext) -> PathBuf {
    ctx.state_dir().join("kept.json")
}

/// Volumes of gone workspaces kept for the retention window: volume → when
/// it was kept (seconds since the epoch). Docker cannot relabel a volume,
/// so the time lives here, beside the sticky ports.
pub fn load_kept(ctx: &RepoContext) -> BTreeMap<String, u64> {
    std::fs::read(kept_path(ctx))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Changes the kept ledger under a lock of its own: workspaces' passes run
/// in parallel, in one process and in several.
pub fn update_kept(
    ctx: &RepoContext,
    change: impl FnOnce(&mut BTreeMap<String, u64>),
) -> Result<()> {
    let dir = ctx.state_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| crate::base::error::CommandError::io(dir.display(), e))?;
    let lock_path = dir.join("kept.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| crate::base::error::CommandError::io(lock_path.display(), e))?;
    lock.lock()
        .map_err(|e| crate::base::error::CommandError::io(lock_path.display(), e))?;
    let mut kept = load_kept(ctx);
    let before = kept.clone();
    change(&mut kept);
    if kept != before {
        let bytes = serde_json::to_vec_pretty(&kept).expect("kept ledger serialises");
        write_atomic(&kept_path(ctx), &bytes, 0o600)?;
    }
    Ok(())
}

/// The backend new environments go to: the override (`--backend`,
/// `$AETHER_BACKEND`), else the `[backend]` of this workspace's aether.toml,
/// else local Docker. An aether.toml that does not parse counts as local
/// here; its own error is reported per workspace, and an environment
/// recorded on another backend is refused (BACKEND_MISMATCH), never
/// duplicated.
pub fn desired_backend(ctx: &RepoContext, over: Option<BackendSpec>) -> BackendSpec {
    over.unwrap_or_else(|| {
        crate::model::config::load_from_root(&ctx.workspace_root)
            .ok()
            .and_then(|c| c.backend)
            .unwrap_or_default()
    })
}

/// The backend holding `workspace`'s environment: the override, else the
/// one recorded when it was provisioned, else [`desired_backend`].
pub fn workspace_backend(
    ctx: &RepoContext,
    workspace: &str,
    over: Option<BackendSpec>,
) -> Result<BackendSpec> {
    if let Some(spec) = over {
        return Ok(spec);
    }
    let desired = desired_backend(ctx, None);
    match load(ctx, workspace).backend {
        Some(id) if id != desired.id() => BackendSpec::from_id(&id),
        _ => Ok(desired),
    }
}
