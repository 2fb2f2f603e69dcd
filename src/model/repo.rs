//! Finds the jj workspace and repo store from a directory, derives the repo's
//! stable id, and owns Aether's private state directory inside the store.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::hex::hex;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RepoContext {
    /// Root of the workspace the command was started in.
    pub workspace_root: PathBuf,
    /// The shared repo store (`<default workspace>/.jj/repo`), canonical.
    pub store: PathBuf,
    /// Stable id of the store: the value of the `dev.aether.repo` label.
    pub repo_id: String,
}

impl RepoContext {
    /// Walks up from `start` to the nearest directory holding `.jj/`.
    pub fn discover(start: &Path) -> Result<Self> {
        let start = start
            .canonicalize()
            .map_err(|e| CommandError::io(format!("cannot resolve {}", start.display()), e))?;
        let root = start
            .ancestors()
            .find(|dir| dir.join(".jj").is_dir())
            .ok_or_else(|| {
                CommandError::new(
                    ErrorCode::NotInWorkspace,
                    format!("{} is not inside a jj workspace", start.display()),
                )
                .hint("cd into a jj workspace, pass -R <path>, or create one with `jj git init`")
            })?
            .to_path_buf();
        let store = resolve_store(&root)?;
        let repo_id = hex(&Sha256::digest(store.as_os_str().as_encoded_bytes()))[..12].to_string();
        Ok(RepoContext {
            workspace_root: root,
            store,
            repo_id,
        })
    }

    pub fn state_dir(&self) -> PathBuf {
        self.store.join("aether")
    }

    /// The Git repository behind the store, as `store/git_target` names it
    /// (`store/git` inside, or `.git` beside `.jj` when colocated).
    pub fn git_dir(&self) -> Option<PathBuf> {
        let target = std::fs::read_to_string(self.store.join("store/git_target")).ok()?;
        let target = PathBuf::from(target.trim());
        let dir = if target.is_absolute() {
            target
        } else {
            self.store.join("store").join(target)
        };
        dir.canonicalize().ok()
    }

    /// Colocated: the Git directory is the `.git` beside a workspace's `.jj`.
    pub fn is_colocated(&self) -> bool {
        self.git_dir().is_some_and(|g| {
            g.file_name().is_some_and(|n| n == ".git")
                && g.parent().is_some_and(|p| p.join(".jj").is_dir())
        })
    }
}

/// `.jj/repo` is the store itself in the default workspace and a file holding
/// its path (relative to `.jj/`) in every other workspace.
fn resolve_store(root: &Path) -> Result<PathBuf> {
    let dot_jj = root.join(".jj");
    let repo = dot_jj.join("repo");
    let store = if repo.is_file() {
        let text =
            std::fs::read_to_string(&repo).map_err(|e| CommandError::io(repo.display(), e))?;
        let p = PathBuf::from(text.trim());
        if p.is_absolute() {
            p
        } else {
            dot_jj.join(p)
        }
    } else {
        repo
    };
    store.canonicalize().map_err(|e| {
        CommandError::new(ErrorCode::NotInWorkspace, format!("the repo store of {} is unreadable: {e}", root.display()))
            .hint("is this workspace's repository deleted? `jj workspace list` from the main checkout tells")
    })
}

/// A short, filesystem- and Docker-safe key for a workspace name; names may
/// hold any character, so a hash keeps `a/b` and `a-b` apart.
pub fn workspace_key(repo_id: &str, workspace: &str) -> String {
    let digest = Sha256::digest(format!("{repo_id}\0{workspace}").as_bytes());
    let mut slug: String = workspace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(32)
        .collect();
    if slug.is_empty() {
        slug.push('w');
    }
    format!("{slug}-{}", &hex(&digest)[..8])
}

/// The key of a workspace's backend objects: also hashes the root, so a new
/// workspace that reuses a name never collides with the objects a renamed
/// one still carries under that name.
pub fn object_key(repo_id: &str, workspace: &str, root: &Path) -> String {
    let key = workspace_key(repo_id, workspace);
    let (slug, _) = key.rsplit_once('-').unwrap_or((&key, ""));
    let mut bytes = format!("{repo_id}\0{workspace}\0").into_bytes();
    bytes.extend_from_slice(root.as_os_str().as_encoded_bytes());
    format!("{slug}-{}", &hex(&Sha256::digest(&bytes))[..8])
}

/// An exclusive, advisory, per-workspace lock held for the lifetime of the
/// value. Every process that changes a workspace's resources takes it, so
/// concurrent `ajj` calls on one workspace serialise and on different
/// workspaces run in parallel. The kernel drops it if the process dies.
pub struct WorkspaceLock {
    _file: File,
}

/// The nearest directory at or above `start` holding `.jj/`.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(".jj").is_dir())
        .map(Path::to_path_buf)
}

pub fn lock_workspace(ctx: &RepoContext, workspace: &str) -> Result<WorkspaceLock> {
    let (file, path) = lock_file(ctx, workspace)?;
    file.lock()
        .map_err(|e| CommandError::io(format!("locking {}", path.display()), e))?;
    Ok(WorkspaceLock { _file: file })
}

/// `None` when another process holds the lock: it is working on the
/// workspace and will leave it converged.
pub fn try_lock_workspace(ctx: &RepoContext, workspace: &str) -> Result<Option<WorkspaceLock>> {
    let (file, path) = lock_file(ctx, workspace)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(WorkspaceLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(CommandError::io(format!("locking {}", path.display()), e))
        }
    }
}

/// An exclusive lock on the file at `path` (made if missing), waited for:
/// the lock of one piece of work, such as building one image, that
/// processes take turns at. Blocking: call it off the async runtime.
pub fn lock_path(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CommandError::io(dir.display(), e))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| CommandError::io(path.display(), e))?;
    file.lock()
        .map_err(|e| CommandError::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}

/// Held by the one `ajj watch` of a repo for its lifetime. The file holds
/// the holder's pid, so a second watcher can say who is in the way.
pub struct WatcherLock {
    _file: File,
}

/// The pid of the `ajj watch` of this repo, if one runs: its lock is held.
/// Read-only: the lock is only tried, and let go at once.
pub fn watcher_pid(ctx: &RepoContext) -> Option<u32> {
    use std::io::Read;
    let mut file = File::open(ctx.state_dir().join("watch.lock")).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            file.read_to_string(&mut holder).ok()?;
            holder.trim().parse().ok()
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

pub fn lock_watcher(ctx: &RepoContext) -> Result<WatcherLock> {
    use std::io::{Read, Seek, Write};
    let dir = ctx.state_dir();
    std::fs::create_dir_all(&dir).map_err(|e| CommandError::io(dir.display(), e))?;
    let path = dir.join("watch.lock");
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| CommandError::io(path.display(), e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(CommandError::new(
                ErrorCode::WatcherRunning,
                format!(
                    "another `ajj watch` (pid {}) already watches this repo",
                    if holder.is_empty() { "unknown" } else { holder }
                ),
            )
            .hint("one watcher per repo is enough: it follows every workspace; stop that one first to restart it")
            .detail("pid", holder.parse::<u32>().ok())
            .detail("lock_file", path.display().to_string()));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CommandError::io(format!("locking {}", path.display()), e))
        }
    }
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())
    };
    write(&mut file).map_err(|e| CommandError::io(path.display(), e))?;
    Ok(WatcherLock { _file: file })
}

fn lock_file(ctx: &RepoContext, workspace: &str) -> Result<(File, PathBuf)> {
    let dir = ctx.state_dir().join("locks");
    std::fs::create_dir_all(&dir).map_err(|e| CommandError::io(dir.display(), e))?;
    let path = dir.join(format!("{}.lock", workspace_key(&ctx.repo_id, workspace)));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CommandError::io(path.display(), e))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_and_distinct() {
        let a = workspace_key("r", "feat/a");
        let b = workspace_key("r", "feat-a");
        assert_ne!(a, b);
        assert!(a.starts_with("feat-a-"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(workspace_key("r", "///").starts_with("w-"));
        assert_ne!(workspace_key("r1", "x"), workspace_key("r2", "x"));
    }
}
