//! Apply and readiness against the in-memory backend, faults injected: the
//! logic above the seam without Docker. The real engine is in tests/*.rs.

use super::apply::Applier;
use super::plan::{self, Action, Reason, Scope};
use super::steps::{self, Memory};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, WorkspaceRef};
use crate::base::error::ErrorCode;
use crate::model::config;
use crate::model::desired::{Desired, DesiredWorkspace};
use crate::model::repo::RepoContext;
use crate::model::state;
use std::collections::BTreeMap;
use std::path::Path;

pub(super) const CFG: &str = r#"
[services.db]
image = "postgres"
ports = [5432]
volumes = { data = "/data" }
ready_timeout = "1s"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: RepoContext,
    desired: Desired,
    backend: MemoryBackend,
}

fn fixture(cfg: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("w");
    std::fs::create_dir_all(root.join(".jj/repo")).unwrap();
    let ctx = RepoContext {
        workspace_root: root.clone(),
        store: root.join(".jj/repo"),
        repo_id: "r".into(),
    };
    let config = config::parse(cfg, Path::new("aether.toml")).unwrap();
    let mut desired = Desired::default();
    desired.roots.insert(root.clone(), "w".into());
    desired
        .workspaces
        .insert("w".into(), DesiredWorkspace { root, config });
    Fixture {
        _dir: dir,
        ctx,
        desired,
        backend: MemoryBackend::default(),
    }
}

impl Fixture {
    fn owner(&self) -> WorkspaceRef<'_> {
        WorkspaceRef {
            name: "w",
            root: &self.desired.workspaces["w"].root,
        }
    }

    /// One convergence of workspace `w`, as `converge_workspace` does it
    /// minus `.env`: observe, plan, resolve, apply.
    async fn pass(
        &self,
    ) -> (
        Vec<Action>,
        crate::base::error::Result<BTreeMap<u16, u16>>,
        Vec<String>,
    ) {
        let applier = Applier::new(&self.backend, &self.ctx, false);
        let observed = match self.backend.observe(None).await {
            Ok(o) => o,
            Err(e) => return (vec![], Err(e.into()), vec![]),
        };
        let scope = Scope::workspace("w", Some(self.owner().root));
        let actions = plan::plan(&self.desired, &observed, &scope);
        let mine = plan::scoped(&self.desired, &observed, &scope);
        let memory = Memory::from([("w".to_string(), state::load(&self.ctx, "w").ports)]);
        let steps = steps::resolve(
            actions.clone(),
            &self.desired,
            &mine,
            &memory,
            &self.backend,
        );
        let result = applier
            .apply("w", self.desired.workspaces.get("w"), &steps, &mine)
            .await
            .map(|a| a.ports.get("db").cloned().unwrap_or_default());
        let warnings = applier.warnings.lock().unwrap().clone();
        (actions, result, warnings)
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    crate::base::runtime::block_on(f)
}

#[test]
fn a_fresh_workspace_converges_and_a_second_pass_does_nothing() {
    let f = fixture(CFG);
    run(async {
        let (actions, ports, _) = f.pass().await;
        assert_eq!(actions.len(), 3, "{actions:?}");
        let ports = ports.unwrap();
        let db = f.backend.container("c-w-db").expect("created");
        assert_eq!(db.ports, ports);
        assert_eq!(state::load(&f.ctx, "w").ports["db"], ports, "recorded");
        let (again, result, _) = f.pass().await;
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(result.unwrap(), ports, "the recorded ports stay");
    });
}

#[test]
fn a_taken_sticky_port_is_picked_again_with_a_warning() {
    let f = fixture(CFG);
    run(async {
        let first = f.pass().await.1.unwrap();
        let old = first[&5432];
        f.backend.remove_container("c-w-db", None).await.unwrap();
        f.backend.faults.lock().unwrap().taken_ports.insert(old);
        let (actions, ports, warnings) = f.pass().await;
        assert!(matches!(
            actions[..],
            [Action::CreateContainer {
                reason: Reason::Missing,
                ..
            }]
        ));
        let now = ports.unwrap()[&5432];
        assert_ne!(now, old);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("host port {old} was taken, now {now}"))),
            "{warnings:?}"
        );
    });
}

#[test]
fn the_engine_lost_mid_pass_is_an_unreachable_error_and_the_next_pass_finishes() {
    let f = fixture(CFG);
    run(async {
        // observe, ensure_network, ensure_volume, ensure_image succeed; the create does not.
        f.backend.faults.lock().unwrap().reachable_calls = Some(4);
        let (_, result, _) = f.pass().await;
        let err = result.unwrap_err();
        assert_eq!(err.code, ErrorCode::DockerUnreachable, "{err:?}");
        assert!(f.backend.container("c-w-db").is_none());
        f.backend.set_reachable(true);
        f.backend.faults.lock().unwrap().reachable_calls = None;
        let (actions, result, _) = f.pass().await;
        assert!(result.is_ok(), "{result:?}");
        assert!(
            actions
                .iter()
                .all(|a| matches!(a, Action::CreateContainer { .. })),
            "network and volume were already made: {actions:?}"
        );
    });
}

#[test]
fn a_name_held_by_someone_else_is_reported_and_never_touched() {
    let f = fixture(CFG);
    f.backend
        .faults
        .lock()
        .unwrap()
        .foreign_names
        .insert("c-w-db".into());
    run(async {
        let err = f.pass().await.1.unwrap_err();
        assert!(
            err.message
                .contains("does not carry this repo's Aether labels"),
            "{err:?}"
        );
        assert!(
            !f.backend
                .log()
                .iter()
                .any(|c| c == "remove_container c-w-db"),
            "{:?}",
            f.backend.log()
        );
    });
}

#[test]
fn a_twin_network_found_at_create_is_removed_and_the_create_retried() {
    let f = fixture(CFG);
    run(async {
        f.pass().await.1.unwrap();
        f.backend.remove_container("c-w-db", None).await.unwrap();
        // A create the engine finished for a killed process, after the
        // pass observed: the planner cannot have seen it.
        let keep = f.backend.observe(None).await.unwrap().networks[0]
            .id
            .clone();
        let observed_before = f.backend.observe(None).await.unwrap();
        let twin = f.backend.add_network(f.owner());
        let applier = Applier::new(&f.backend, &f.ctx, false);
        let scope = Scope::workspace("w", Some(f.owner().root));
        let actions = plan::plan(&f.desired, &observed_before, &scope);
        let steps = steps::resolve(
            actions,
            &f.desired,
            &observed_before,
            &Memory::new(),
            &f.backend,
        );
        applier
            .apply("w", f.desired.workspaces.get("w"), &steps, &observed_before)
            .await
            .unwrap();
        let log = f.backend.log();
        assert!(log.contains(&format!("remove_network {twin}")), "{log:?}");
        assert!(!log.contains(&format!("remove_network {keep}")), "{log:?}");
        assert!(f.backend.container("c-w-db").is_some());
    });
}

#[test]
fn a_service_that_dies_while_starting_is_service_exited_with_its_logs() {
    let f = fixture(CFG);
    f.backend.faults.lock().unwrap().dies.insert("db".into(), 3);
    run(async {
        let err = f.pass().await.1.unwrap_err();
        assert_eq!(err.code, ErrorCode::ServiceExited);
        assert!(err.message.contains("exited with code 3"), "{err:?}");
        assert_eq!(err.details["logs"], "last words of c-w-db");
    });
}

#[test]
fn a_service_that_never_serves_times_out() {
    let f = fixture(CFG);
    f.backend
        .faults
        .lock()
        .unwrap()
        .never_serves
        .insert("db".into());
    run(async {
        let err = f.pass().await.1.unwrap_err();
        assert_eq!(err.code, ErrorCode::ReadinessTimeout, "{err:?}");
    });
}

#[test]
fn a_missing_image_fails_before_any_container_is_made() {
    let f = fixture(&CFG.replace("\"postgres\"", "\"missing/pg\""));
    run(async {
        let err = f.pass().await.1.unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageNotFound);
        assert!(f.backend.container("c-w-db").is_none());
    });
}

#[test]
fn a_forgotten_workspace_loses_everything_and_its_state() {
    let mut f = fixture(CFG);
    run(async {
        f.pass().await.1.unwrap();
        assert!(!state::load(&f.ctx, "w").ports.is_empty());
    });
    let root = f.desired.workspaces.remove("w").unwrap().root;
    f.desired.roots.clear();
    run(async {
        let applier = Applier::new(&f.backend, &f.ctx, false);
        let observed = f.backend.observe(None).await.unwrap();
        let scope = Scope::workspace("w", Some(&root));
        let actions = plan::plan(&f.desired, &observed, &scope);
        let steps = steps::resolve(actions, &f.desired, &observed, &Memory::new(), &f.backend);
        applier.apply("w", None, &steps, &observed).await.unwrap();
        let left = f.backend.observe(None).await.unwrap();
        assert!(
            left.containers.is_empty() && left.networks.is_empty() && left.volumes.is_empty(),
            "{left:?}"
        );
        assert!(state::load(&f.ctx, "w").ports.is_empty());
    });
}

#[test]
fn a_network_the_plan_keeps_is_taken_from_the_observation_not_asked_for() {
    let f = fixture(CFG);
    run(async {
        let (_, first, _) = f.pass().await;
        first.unwrap();
        assert!(
            f.backend.log().iter().any(|c| c == "ensure_network w"),
            "a missing network is ensured: {:?}",
            f.backend.log()
        );
        f.backend.kill("c-w-db", 1);
        let calls = f.backend.log().len();
        let (actions, again, _) = f.pass().await;
        again.unwrap();
        assert!(!actions.is_empty(), "the exited container is acted on");
        let later = &f.backend.log()[calls..];
        assert!(
            !later.iter().any(|c| c.starts_with("ensure_network")),
            "the observed network is used as it is: {later:?}"
        );
    });
}
