//! Aether's private per-workspace state inside the repo store: the sticky
//! host ports. Labels on containers mirror it, but a container can be
//! removed behind our back; this file is what keeps `.env` valid then.
//! Written only under the workspace lock, always atomically.

use crate::error::{CommandError, ErrorCode, Result};
use crate::repo::{workspace_key, RepoContext};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

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

pub fn save(ctx: &RepoContext, state: &WorkspaceState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    write_atomic(&path(ctx, &state.workspace), &bytes, 0o600)
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
        .flat_map(|s| s.ports.into_values().flat_map(|m| m.into_values()))
        .collect()
}

/// Aether's directory in the user's state home (`$XDG_STATE_HOME/aether`,
/// else `~/.local/state/aether`): what belongs to the user rather than to a
/// repo, such as the local port ledger and what the user trusts. No
/// revision can write here.
pub fn user_state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .map(|d| d.join("aether"))
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

/// Temp file, fsync, rename: readers see the old file or the new one, never
/// a torn write. In a workspace root the temp file goes into `.jj/` (same
/// filesystem, never snapshotted), so a process killed mid-write leaves no
/// stray file for jj to commit.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let dot_jj = dir.join(".jj");
    let tmp_dir = if dot_jj.is_dir() {
        dot_jj
    } else {
        dir.to_path_buf()
    };
    let fail = |e: std::io::Error| {
        CommandError::new(
            ErrorCode::EnvFile,
            format!("cannot write {}: {e}", path.display()),
        )
        .detail("file", path.display().to_string())
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".aether-tmp-")
        .tempfile_in(&tmp_dir)
        .map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
