//! What wakes the watcher from the filesystem. The notify callback only
//! sends into the channel; deciding whether an event matters happens in the
//! loop ([`classify`]), which is pure and unit-tested.
//!
//! Watched, all non-recursively (a handful of inotify watches per
//! workspace, whatever the size of the checkouts):
//! - the store's `op_heads/heads/`: rewritten by every jj operation, so
//!   `jj workspace add/forget/rename` and `jj op undo` all land here;
//! - the store's `workspace_store/`: where jj records workspace roots;
//! - each workspace root: its `aether.toml` and `.env` (edited, deleted);
//! - each root's parent: the root itself deleted or moved away.

use super::Wake;
use crate::base::error::{CommandError, Result};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Why a filesystem event woke the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    JjOperation,
    Config,
    EnvFile,
    WorkspaceDir,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::JjOperation => "jj_operation",
            Cause::Config => "config",
            Cause::EnvFile => "env_file",
            Cause::WorkspaceDir => "workspace_dir",
        }
    }
}

pub struct FsTriggers {
    watcher: RecommendedWatcher,
    store: PathBuf,
    roots: BTreeSet<PathBuf>,
    /// Watched directories → how many roots need them (parents are shared).
    dirs: BTreeMap<PathBuf, usize>,
}

impl FsTriggers {
    pub fn new(store: &Path, tx: UnboundedSender<Wake>) -> Result<Self> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                let _ = tx.send(Wake::Fs(event));
            }
        })
        .map_err(|e| notify_error("starting the file watcher", e))?;
        let mut me = FsTriggers {
            watcher,
            store: store.to_path_buf(),
            roots: BTreeSet::new(),
            dirs: BTreeMap::new(),
        };
        for dir in [
            store.join("op_heads").join("heads"),
            store.join("workspace_store"),
        ] {
            me.watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| notify_error(&format!("watching {}", dir.display()), e))?;
        }
        Ok(me)
    }

    /// Follows the live roots. Returns whether a root was added: it may
    /// have changed before its watch existed, so the caller runs one more pass.
    pub fn sync(&mut self, roots: &[PathBuf]) -> bool {
        let want: BTreeSet<PathBuf> = roots.iter().filter(|r| r.is_dir()).cloned().collect();
        let gone: Vec<PathBuf> = self.roots.difference(&want).cloned().collect();
        let new: Vec<PathBuf> = want.difference(&self.roots).cloned().collect();
        for root in &gone {
            for dir in watched_dirs(root) {
                self.release(&dir);
            }
        }
        for root in &new {
            for dir in watched_dirs(root) {
                self.acquire(&dir);
            }
        }
        self.roots = want;
        !new.is_empty()
    }

    fn acquire(&mut self, dir: &Path) {
        let count = self.dirs.entry(dir.to_path_buf()).or_insert(0);
        if *count == 0 {
            // A directory that vanished meanwhile is simply not watched: the
            // next pass notices the workspace is gone.
            let _ = self.watcher.watch(dir, RecursiveMode::NonRecursive);
        }
        *count += 1;
    }

    fn release(&mut self, dir: &Path) {
        if let Some(count) = self.dirs.get_mut(dir) {
            *count -= 1;
            if *count == 0 {
                self.dirs.remove(dir);
                let _ = self.watcher.unwatch(dir);
            }
        }
    }

    pub fn classify(&self, event: &notify::Event) -> Option<Cause> {
        classify(event, &self.store, &self.roots)
    }
}

fn watched_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(root.parent().map(Path::to_path_buf));
    dirs
}

/// Whether an event should start a pass, and why.
pub fn classify(event: &notify::Event, store: &Path, roots: &BTreeSet<PathBuf>) -> Option<Cause> {
    if matches!(event.kind, EventKind::Access(_)) {
        return None;
    }
    let op_heads = store.join("op_heads");
    let workspace_store = store.join("workspace_store");
    event.paths.iter().find_map(|path| {
        if path.starts_with(&op_heads) || path.starts_with(&workspace_store) {
            return Some(Cause::JjOperation);
        }
        if roots.contains(path) {
            return Some(Cause::WorkspaceDir);
        }
        let parent = path.parent()?;
        if !roots.contains(parent) {
            return None;
        }
        match path.file_name()?.to_str()? {
            crate::model::config::FILE_NAME => Some(Cause::Config),
            crate::model::envfile::FILE_NAME => Some(Cause::EnvFile),
            _ => None,
        }
    })
}

fn notify_error(what: &str, e: notify::Error) -> CommandError {
    CommandError::new(crate::base::error::ErrorCode::Io, format!("{what}: {e}")).hint(
        "on Linux, raise fs.inotify.max_user_watches / max_user_instances if they are exhausted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind, RemoveKind};

    fn ev(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_jj_operations_configs_env_files_and_roots_matter() {
        let store = Path::new("/r/main/.jj/repo");
        let roots = BTreeSet::from([PathBuf::from("/r/main"), PathBuf::from("/r/ws1")]);
        let c = |kind, path| classify(&ev(kind, path), store, &roots);
        let create = EventKind::Create(CreateKind::File);
        let modify = EventKind::Modify(ModifyKind::Any);
        assert_eq!(
            c(create, "/r/main/.jj/repo/op_heads/heads/abc"),
            Some(Cause::JjOperation)
        );
        assert_eq!(
            c(modify, "/r/main/.jj/repo/workspace_store/index"),
            Some(Cause::JjOperation)
        );
        assert_eq!(c(modify, "/r/ws1/aether.toml"), Some(Cause::Config));
        assert_eq!(
            c(EventKind::Remove(RemoveKind::File), "/r/ws1/.env"),
            Some(Cause::EnvFile)
        );
        assert_eq!(
            c(EventKind::Remove(RemoveKind::Folder), "/r/ws1"),
            Some(Cause::WorkspaceDir)
        );
        // Source edits, siblings of roots, files deeper down: ignored.
        assert_eq!(c(modify, "/r/ws1/main.rs"), None);
        assert_eq!(c(create, "/r/other"), None);
        assert_eq!(c(modify, "/r/ws1/sub/aether.toml"), None);
        assert_eq!(
            c(EventKind::Access(AccessKind::Any), "/r/ws1/aether.toml"),
            None
        );
    }

    #[test]
    fn causes_have_their_documented_names() {
        let names: Vec<&str> = [
            Cause::JjOperation,
            Cause::Config,
            Cause::EnvFile,
            Cause::WorkspaceDir,
        ]
        .iter()
        .map(|c| c.as_str())
        .collect();
        assert_eq!(
            names,
            ["jj_operation", "config", "env_file", "workspace_dir"]
        );
    }

    /// Real inotify watches: roots come and go, parents are shared, and an
    /// edit of a watched root's aether.toml arrives and is classified.
    #[test]
    fn sync_follows_the_live_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let store = base.join("main/.jj/repo");
        std::fs::create_dir_all(store.join("op_heads/heads")).unwrap();
        std::fs::create_dir_all(store.join("workspace_store")).unwrap();
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = FsTriggers::new(&store, tx).unwrap();
        assert!(t.sync(&[a.clone(), b.clone()]), "new roots");
        assert!(!t.sync(&[a.clone(), b.clone()]), "nothing new");
        // a, b, and their shared parent.
        assert_eq!(t.dirs.len(), 3);
        assert_eq!(t.dirs[&base], 2);
        assert!(!t.sync(std::slice::from_ref(&a)), "a root went");
        assert_eq!(t.dirs.len(), 2);
        assert_eq!(t.dirs[&base], 1);
        // A root that is not a directory (deleted) is not watched.
        assert!(!t.sync(&[a.clone(), base.join("gone")]));
        assert_eq!(t.roots, BTreeSet::from([a.clone()]));

        std::fs::write(a.join("aether.toml"), "").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut cause = None;
        while cause.is_none() && std::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(Wake::Fs(event)) => cause = t.classify(&event),
                Ok(_) => {}
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        assert_eq!(cause, Some(Cause::Config));
        assert!(!t.sync(&[]));
        assert!(t.dirs.is_empty());
    }
}
