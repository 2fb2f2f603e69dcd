//! Full passes (`reconcile_all`, what each `ajj watch` pass runs) against
//! the in-memory backend and a fixed list of workspaces in place of jj: the
//! watcher's hold, a lost engine, a gone workspace, the retention window.

use super::apply::Applier;
use super::plan::Action;
use super::{reconcile_all, PassOptions};
use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::base::error::{ErrorCode, Result};
use crate::model::jj::{WorkspaceEntry, Workspaces};
use crate::model::repo::RepoContext;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::apply_tests::CFG;

/// jj as a list the test edits, and settings.
#[derive(Default)]
struct FakeJj {
    entries: RefCell<Vec<WorkspaceEntry>>,
    settings: BTreeMap<String, String>,
}

impl Workspaces for &FakeJj {
    fn list(&self) -> Result<Vec<WorkspaceEntry>> {
        Ok(self.entries.borrow().clone())
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.settings.get(key).cloned())
    }
}

struct Repo {
    dir: tempfile::TempDir,
    ctx: RepoContext,
}

/// A store and one directory per workspace, each with its aether.toml. The
/// user's state directory is a temporary one for the whole test binary, so
/// the records a pass writes never reach the real home.
fn repo(names: &[&str]) -> (Repo, FakeJj) {
    static STATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| tempfile::tempdir().unwrap());
    std::env::set_var("XDG_STATE_HOME", state.path());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("default/.jj/repo");
    std::fs::create_dir_all(&store).unwrap();
    let ctx = RepoContext {
        workspace_root: dir.path().join("default"),
        store,
        repo_id: "r".into(),
    };
    let jj = FakeJj::default();
    let repo = Repo { dir, ctx };
    for n in names {
        jj.entries.borrow_mut().push(repo.workspace(n));
    }
    (repo, jj)
}

impl Repo {
    fn root(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn workspace(&self, name: &str) -> WorkspaceEntry {
        let root = self.root(name);
        std::fs::create_dir_all(root.join(".jj")).unwrap();
        std::fs::write(root.join("aether.toml"), CFG).unwrap();
        WorkspaceEntry {
            name: name.into(),
            root: Some(root.clone()),
            recorded_root: Some(root),
        }
    }
}

async fn pass(
    repo: &Repo,
    jj: &FakeJj,
    backend: &MemoryBackend,
    hold: &[&str],
) -> Result<super::PassReport> {
    let mut applier = Applier::new(backend, &repo.ctx, false);
    applier.jj = Box::new(jj);
    let options = PassOptions {
        hold: hold.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    reconcile_all(&applier, &options).await
}

async fn containers(backend: &MemoryBackend) -> BTreeSet<String> {
    backend
        .observe(None)
        .await
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn a_pass_converges_every_workspace_but_the_held_ones() {
    let (repo, jj) = repo(&["a", "b"]);
    let backend = MemoryBackend::default();
    crate::base::runtime::block_on(async {
        let report = pass(&repo, &jj, &backend, &["b"]).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            containers(&backend).await,
            BTreeSet::from(["c-a-db".into()])
        );
        assert!(report.actions.iter().all(|s| s.action.workspace() == "a"));
        assert!(repo.root("a").join(".env").exists());
        // The hold released: b converges; a has nothing left to do.
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        assert!(report.actions.iter().all(|s| s.action.workspace() == "b"));
        assert_eq!(containers(&backend).await.len(), 2);
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        assert!(report.actions.is_empty(), "a second pass does nothing");
    });
}

#[test]
fn a_lost_engine_fails_the_pass_and_the_next_one_finishes() {
    let (repo, jj) = repo(&["a"]);
    let backend = MemoryBackend::default();
    crate::base::runtime::block_on(async {
        backend.set_reachable(false);
        let err = pass(&repo, &jj, &backend, &[]).await.err().unwrap();
        assert_eq!(err.code, ErrorCode::DockerUnreachable);
        backend.set_reachable(true);
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        assert!(report.errors.is_empty());
        assert_eq!(containers(&backend).await.len(), 1);
    });
}

#[test]
fn a_workspace_jj_no_longer_lists_loses_everything_and_others_nothing() {
    let (repo, jj) = repo(&["a", "b"]);
    let backend = MemoryBackend::default();
    crate::base::runtime::block_on(async {
        pass(&repo, &jj, &backend, &[]).await.unwrap();
        jj.entries.borrow_mut().retain(|e| e.name != "b");
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        let gone: Vec<_> = report
            .actions
            .iter()
            .filter(|s| s.action.workspace() == "b")
            .collect();
        assert_eq!(gone.len(), 3, "container, volume, network: {gone:?}");
        assert_eq!(
            containers(&backend).await,
            BTreeSet::from(["c-a-db".into()])
        );
        let left = backend.observe(None).await.unwrap();
        assert_eq!(left.volumes.len(), 1);
        assert_eq!(left.networks.len(), 1);
    });
}

#[test]
fn with_a_window_a_gone_workspace_keeps_its_volume_and_gets_it_back() {
    let (repo, mut jj) = repo(&["a"]);
    jj.settings
        .insert(crate::model::desired::KEEP_DATA_KEY.into(), "1h".into());
    let backend = MemoryBackend::default();
    crate::base::runtime::block_on(async {
        pass(&repo, &jj, &backend, &[]).await.unwrap();
        let a = jj.entries.borrow_mut().pop().unwrap();
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        assert!(report
            .actions
            .iter()
            .any(|s| matches!(s.action, Action::KeepVolume { .. })));
        assert!(report.next_expiry.is_some(), "the watcher is told when");
        assert!(containers(&backend).await.is_empty());
        assert_eq!(backend.observe(None).await.unwrap().volumes.len(), 1);
        // Listed again at its root (an undo): the volume is taken back.
        jj.entries.borrow_mut().push(a);
        let report = pass(&repo, &jj, &backend, &[]).await.unwrap();
        assert!(report
            .actions
            .iter()
            .any(|s| matches!(s.action, Action::ReclaimVolume { .. })));
        assert_eq!(report.next_expiry, None);
        let db = backend.container("c-a-db").unwrap();
        assert_eq!(db.root.as_deref(), Some(repo.root("a").as_path()));
    });
}
