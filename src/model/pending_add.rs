//! The record of an `ajj workspace add` under way, written before jj runs.
//!
//! `jj workspace add` is not atomic: killed (or sent a terminal's Ctrl-C)
//! part-way, it leaves a directory holding only `.jj` (or, on 0.46 in a
//! colocated repo, only `.git` and a Git worktree entry), recorded by jj or
//! not. Such a workspace blocks its own retry. The directory's contents
//! cannot tell a half-made workspace from a user's, so add writes this
//! record first, under the workspace's lock, and removes it only once the
//! workspace is complete or wholly undone. A record whose lock is free
//! belongs to an add that died: the next add of that name, or the next
//! pass, finishes or clears it (see [`clear_half_made`]).

use crate::base::error::{CommandError, Result};
use crate::base::fs::write_atomic;
use crate::model::jj;
use crate::model::repo::{workspace_key, RepoContext};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// jj was (or was about to be) started: what it left may be half-made.
    Started,
    /// jj returned success: the checkout is complete; only the environment
    /// may be missing, which a pass provisions.
    CheckedOut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAdd {
    pub workspace: String,
    /// The destination as add resolved it (absolute, not yet existing).
    pub destination: PathBuf,
    /// The destination existed (empty) before jj ran: clearing empties it
    /// rather than removing it.
    pub destination_existed: bool,
    pub phase: Phase,
    /// The workspace's network was requested beside jj. An engine finishes
    /// a create whose client died, maybe after the next pass has looked:
    /// that pass waits for it to land before it collects.
    #[serde(default)]
    pub network_requested: bool,
    pub pid: u32,
    /// Seconds since the epoch.
    pub started: u64,
}

fn dir(ctx: &RepoContext) -> PathBuf {
    ctx.state_dir().join("adds")
}

fn path(ctx: &RepoContext, workspace: &str) -> PathBuf {
    dir(ctx).join(format!("{}.json", workspace_key(&ctx.repo_id, workspace)))
}

impl PendingAdd {
    pub fn new(workspace: &str, destination: &Path, destination_existed: bool) -> Self {
        PendingAdd {
            workspace: workspace.to_string(),
            destination: destination.to_path_buf(),
            destination_existed,
            phase: Phase::Started,
            network_requested: false,
            pid: std::process::id(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Written atomically; the caller holds the workspace's lock.
    pub fn save(&self, ctx: &RepoContext) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("pending add serialises");
        write_atomic(&path(ctx, &self.workspace), &bytes, 0o600)
    }
}

/// The record of `workspace`, if an add of it is under way or died.
pub fn load(ctx: &RepoContext, workspace: &str) -> Option<PendingAdd> {
    std::fs::read(path(ctx, workspace))
        .ok()
        .and_then(|b| serde_json::from_slice::<PendingAdd>(&b).ok())
        .filter(|p| p.workspace == workspace)
}

/// Every record of the repo.
pub fn all(ctx: &RepoContext) -> Vec<PendingAdd> {
    let Ok(entries) = std::fs::read_dir(dir(ctx)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<PendingAdd>(&b).ok())
        .collect()
}

pub fn remove(ctx: &RepoContext, workspace: &str) {
    let _ = std::fs::remove_file(path(ctx, workspace));
}

/// What clearing a half-made workspace did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Cleared {
    /// jj had recorded the workspace, and forgot it again.
    pub forgot: bool,
    /// The directory jj made was removed (or emptied, if it existed).
    pub removed_directory: bool,
    /// A Git worktree entry pointing at the destination was pruned.
    pub pruned_worktree: bool,
}

/// Undoes whatever `jj workspace add` of `pending` got to: forgets the jj
/// workspace if jj recorded it at that destination, removes the directory
/// (empties it if it existed before), and prunes a Git worktree entry that
/// points into it. The caller holds the workspace's lock, and knows from
/// the record that this directory is the add's own.
pub fn clear_half_made(repo_root: &Path, pending: &PendingAdd) -> Result<Cleared> {
    let mut cleared = Cleared::default();
    let dest = &pending.destination;
    let listed = jj::list_workspaces(repo_root)?;
    let recorded_here = listed.iter().any(|e| {
        e.name == pending.workspace
            && e.recorded_root
                .as_deref()
                .is_some_and(|r| same_path(r, dest))
    });
    if recorded_here {
        jj::forget_quietly(repo_root, &pending.workspace)?;
        cleared.forgot = true;
    }
    cleared.pruned_worktree = prune_worktree(repo_root, dest);
    if dest.exists() {
        let removed = if pending.destination_existed {
            empty_dir(dest)
        } else {
            std::fs::remove_dir_all(dest)
        };
        removed.map_err(|e| CommandError::io(format!("removing {}", dest.display()), e))?;
        cleared.removed_directory = true;
    }
    Ok(cleared)
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || a.canonicalize().ok() == b.canonicalize().ok() && a.exists()
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Removes the entry of `.git/worktrees/` whose `gitdir` points at
/// `dest/.git`, as `git worktree prune` would once the directory is gone,
/// but only that one: the user's other worktrees are not ours to touch.
/// A pass calls it for a workspace whose directory was deleted (jj 0.46
/// leaves the entry of a colocated workspace behind, even after forget).
pub fn prune_worktree(repo_root: &Path, dest: &Path) -> bool {
    RepoContext::discover(repo_root)
        .ok()
        .and_then(|ctx| ctx.git_dir())
        .is_some_and(|git| prune_entries(&git, dest))
}

fn prune_entries(git: &Path, dest: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(git.join("worktrees")) else {
        return false;
    };
    let wanted = dest.join(".git");
    let mut pruned = false;
    for entry in entries.flatten() {
        let Ok(pointer) = std::fs::read_to_string(entry.path().join("gitdir")) else {
            continue;
        };
        if Path::new(pointer.trim()) == wanted && std::fs::remove_dir_all(entry.path()).is_ok() {
            pruned = true;
        }
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_only_the_entry_pointing_at_the_destination() {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path().join("worktrees");
        for (name, target) in [("x", "/w/x/.git"), ("y", "/w/y/.git")] {
            std::fs::create_dir_all(wt.join(name)).unwrap();
            std::fs::write(wt.join(name).join("gitdir"), format!("{target}\n")).unwrap();
        }
        assert!(!prune_entries(tmp.path(), Path::new("/w/z")));
        assert!(prune_entries(tmp.path(), Path::new("/w/x")));
        assert!(!wt.join("x").exists());
        assert!(wt.join("y").exists());
    }

    #[test]
    fn empties_a_directory_without_removing_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".jj/repo")).unwrap();
        std::fs::write(tmp.path().join(".git"), "gitdir: /x").unwrap();
        empty_dir(tmp.path()).unwrap();
        assert!(tmp.path().is_dir());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
