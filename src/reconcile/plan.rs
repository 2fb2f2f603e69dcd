//! The plan: a pure function of (desired, observed). No I/O here, so every
//! rule is unit-tested without Docker. Level-triggered: the plan depends on
//! the whole state, never on what woke the reconciler.

use super::desired::Desired;
use crate::backend::{Observed, ObservedContainer, ObservedObject, RunState};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only this workspace's objects are planned; others are left alone.
    Workspace(String),
}

impl Scope {
    fn includes(&self, ws: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Workspace(w) => w == ws,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Declared but not present.
    Missing,
    /// Present with another config hash.
    Drifted,
    /// Present but not running.
    Stopped,
    /// The workspace is forgotten or its directory is gone.
    WorkspaceGone,
    /// The service is no longer in the workspace's aether.toml.
    ServiceRemoved,
    /// A second container for one service, or a second network for one
    /// workspace (e.g. a create still in flight when a process was killed).
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateNetwork {
        workspace: String,
    },
    CreateVolume {
        workspace: String,
        service: String,
        volume: String,
    },
    CreateContainer {
        workspace: String,
        service: String,
        reason: Reason,
    },
    /// Stop, remove and create again; volumes and the host ports are kept.
    RecreateContainer {
        workspace: String,
        service: String,
        container: String,
        reason: Reason,
    },
    StartContainer {
        workspace: String,
        service: String,
        container: String,
        reason: Reason,
    },
    RemoveContainer {
        workspace: String,
        service: String,
        container: String,
        reason: Reason,
    },
    RemoveVolume {
        workspace: String,
        volume: String,
        reason: Reason,
    },
    RemoveNetwork {
        workspace: String,
        network: String,
        reason: Reason,
    },
}

impl Action {
    pub fn workspace(&self) -> &str {
        match self {
            Action::CreateNetwork { workspace }
            | Action::CreateVolume { workspace, .. }
            | Action::CreateContainer { workspace, .. }
            | Action::RecreateContainer { workspace, .. }
            | Action::StartContainer { workspace, .. }
            | Action::RemoveContainer { workspace, .. }
            | Action::RemoveVolume { workspace, .. }
            | Action::RemoveNetwork { workspace, .. } => workspace,
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Action::CreateNetwork { workspace } => format!("create network of {workspace}"),
            Action::CreateVolume {
                workspace,
                service,
                volume,
            } => {
                format!("create volume {workspace}/{service}/{volume}")
            }
            Action::CreateContainer {
                workspace, service, ..
            } => format!("create {workspace}/{service}"),
            Action::RecreateContainer {
                workspace,
                service,
                reason,
                ..
            } => {
                format!("recreate {workspace}/{service} ({})", reason_text(*reason))
            }
            Action::StartContainer {
                workspace, service, ..
            } => format!("start {workspace}/{service}"),
            Action::RemoveContainer {
                workspace,
                service,
                reason,
                ..
            } => {
                format!("remove {workspace}/{service} ({})", reason_text(*reason))
            }
            Action::RemoveVolume { volume, reason, .. } => {
                format!("remove volume {volume} ({})", reason_text(*reason))
            }
            Action::RemoveNetwork {
                network, reason, ..
            } => {
                format!("remove network {network} ({})", reason_text(*reason))
            }
        }
    }
}

fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::Missing => "missing",
        Reason::Drifted => "config changed",
        Reason::Stopped => "stopped",
        Reason::WorkspaceGone => "workspace gone",
        Reason::ServiceRemoved => "service removed from aether.toml",
        Reason::Duplicate => "duplicate",
    }
}

/// Prefers the container to keep: running over stopped, current config over drifted.
fn rank(c: &ObservedContainer, hash: &str) -> (bool, bool, String) {
    (
        c.config_hash != hash,
        c.state != RunState::Running,
        c.name.clone(),
    )
}

pub fn plan(desired: &Desired, observed: &Observed, scope: &Scope) -> Vec<Action> {
    let mut actions = Vec::new();
    let in_scope = |ws: &str| scope.includes(ws) && !desired.untouchable.contains(ws);

    let mut by_service: BTreeMap<(&str, &str), Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        if !in_scope(&c.workspace) {
            continue;
        }
        match desired.workspaces.get(&c.workspace) {
            None => actions.push(Action::RemoveContainer {
                workspace: c.workspace.clone(),
                service: c.service.clone(),
                container: c.name.clone(),
                reason: Reason::WorkspaceGone,
            }),
            Some(ws) if !ws.config.services.contains_key(&c.service) => {
                actions.push(Action::RemoveContainer {
                    workspace: c.workspace.clone(),
                    service: c.service.clone(),
                    container: c.name.clone(),
                    reason: Reason::ServiceRemoved,
                })
            }
            Some(_) => by_service
                .entry((&c.workspace, &c.service))
                .or_default()
                .push(c),
        }
    }

    for (ws_name, ws) in &desired.workspaces {
        if !in_scope(ws_name) || ws.config.services.is_empty() {
            continue;
        }
        let mut nets: Vec<&ObservedObject> = observed
            .networks
            .iter()
            .filter(|n| &n.workspace == ws_name)
            .collect();
        if nets.is_empty() {
            actions.push(Action::CreateNetwork {
                workspace: ws_name.clone(),
            });
        }
        // Keep the network the containers use (then the oldest); the rest go.
        let attached = |n: &ObservedObject| {
            observed
                .containers
                .iter()
                .filter(|c| c.networks.contains(&n.id))
                .count()
        };
        nets.sort_by_key(|n| (Reverse(attached(n)), n.created.clone(), n.id.clone()));
        for extra in nets.iter().skip(1) {
            actions.push(Action::RemoveNetwork {
                workspace: ws_name.clone(),
                network: extra.id.clone(),
                reason: Reason::Duplicate,
            });
        }
        for (svc_name, svc) in &ws.config.services {
            for volume in svc.spec.volumes.keys() {
                let exists = observed.volumes.iter().any(|v| {
                    &v.workspace == ws_name && &v.service == svc_name && &v.volume == volume
                });
                if !exists {
                    actions.push(Action::CreateVolume {
                        workspace: ws_name.clone(),
                        service: svc_name.clone(),
                        volume: volume.clone(),
                    });
                }
            }
            let hash = svc.spec.config_hash();
            let mut present = by_service
                .remove(&(ws_name.as_str(), svc_name.as_str()))
                .unwrap_or_default();
            present.sort_by_key(|c| rank(c, &hash));
            let mut present = present.into_iter();
            match present.next() {
                None => actions.push(Action::CreateContainer {
                    workspace: ws_name.clone(),
                    service: svc_name.clone(),
                    reason: Reason::Missing,
                }),
                Some(c) if c.config_hash != hash || matches!(c.state, RunState::Dead) => actions
                    .push(Action::RecreateContainer {
                        workspace: ws_name.clone(),
                        service: svc_name.clone(),
                        container: c.name.clone(),
                        reason: if c.config_hash != hash {
                            Reason::Drifted
                        } else {
                            Reason::Stopped
                        },
                    }),
                Some(c) if matches!(c.state, RunState::Created | RunState::Exited) => {
                    actions.push(Action::StartContainer {
                        workspace: ws_name.clone(),
                        service: svc_name.clone(),
                        container: c.name.clone(),
                        reason: Reason::Stopped,
                    })
                }
                // Running, restarting (Docker's own backoff), paused (the user's choice).
                Some(_) => {}
            }
            for extra in present {
                actions.push(Action::RemoveContainer {
                    workspace: ws_name.clone(),
                    service: svc_name.clone(),
                    container: extra.name.clone(),
                    reason: Reason::Duplicate,
                });
            }
        }
    }

    // Volumes of a removed service stay until the workspace goes: dropping a
    // line from aether.toml by mistake must not cost the user their data.
    let gone = |ws: &str| in_scope(ws) && !desired.workspaces.contains_key(ws);
    let mut seen = BTreeSet::new();
    for v in &observed.volumes {
        if gone(&v.workspace) && seen.insert(v.name.clone()) {
            actions.push(Action::RemoveVolume {
                workspace: v.workspace.clone(),
                volume: v.name.clone(),
                reason: Reason::WorkspaceGone,
            });
        }
    }
    for n in &observed.networks {
        if gone(&n.workspace) && seen.insert(n.id.clone()) {
            actions.push(Action::RemoveNetwork {
                workspace: n.workspace.clone(),
                network: n.id.clone(),
                reason: Reason::WorkspaceGone,
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ObservedObject;
    use crate::config;
    use crate::reconcile::desired::DesiredWorkspace;
    use std::path::{Path, PathBuf};

    const CFG: &str = r#"
[services.db]
image = "postgres"
ports = [5432]
volumes = { data = "/data" }
[services.cache]
image = "redis"
ports = [6379]
"#;

    fn desired(names: &[&str], cfg: &str) -> Desired {
        let config = config::parse(cfg, Path::new("aether.toml")).unwrap();
        Desired {
            workspaces: names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        DesiredWorkspace {
                            root: PathBuf::from("/x"),
                            config: config.clone(),
                        },
                    )
                })
                .collect(),
            untouchable: BTreeSet::new(),
        }
    }

    fn container(ws: &str, svc: &str, d: &Desired, state: RunState) -> ObservedContainer {
        let hash = d
            .workspaces
            .get(ws)
            .and_then(|w| w.config.services.get(svc))
            .map(|s| s.spec.config_hash());
        ObservedContainer {
            id: format!("id-{ws}-{svc}"),
            name: format!("c-{ws}-{svc}"),
            workspace: ws.into(),
            service: svc.into(),
            config_hash: hash.unwrap_or_else(|| "old".into()),
            state,
            health: None,
            ports: BTreeMap::from([(1, 2)]),
            networks: vec![format!("net-{ws}")],
        }
    }

    fn converged(d: &Desired) -> Observed {
        let mut o = Observed::default();
        for (ws, w) in &d.workspaces {
            o.networks.push(ObservedObject {
                id: format!("net-{ws}"),
                name: format!("n-{ws}"),
                created: "2026-01-01T00:00:00Z".into(),
                workspace: ws.clone(),
                ..Default::default()
            });
            for (svc, s) in &w.config.services {
                o.containers.push(container(ws, svc, d, RunState::Running));
                for vol in s.spec.volumes.keys() {
                    o.volumes.push(ObservedObject {
                        name: format!("v-{ws}-{svc}-{vol}"),
                        workspace: ws.clone(),
                        service: svc.clone(),
                        volume: vol.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        o
    }

    #[test]
    fn empty_to_full() {
        let d = desired(&["a"], CFG);
        let p = plan(&d, &Observed::default(), &Scope::All);
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::CreateContainer { .. }))
                .count(),
            2
        );
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::CreateNetwork { .. }))
                .count(),
            1
        );
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::CreateVolume { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn converged_state_is_a_no_op() {
        let d = desired(&["a", "b"], CFG);
        assert_eq!(plan(&d, &converged(&d), &Scope::All), vec![]);
    }

    #[test]
    fn drift_recreates_only_that_service() {
        let d = desired(&["a"], CFG);
        let mut o = converged(&d);
        o.containers
            .iter_mut()
            .find(|c| c.service == "db")
            .unwrap()
            .config_hash = "stale".into();
        let p = plan(&d, &o, &Scope::All);
        assert_eq!(
            p,
            vec![Action::RecreateContainer {
                workspace: "a".into(),
                service: "db".into(),
                container: "c-a-db".into(),
                reason: Reason::Drifted
            }]
        );
    }

    #[test]
    fn stopped_is_started_and_dead_recreated() {
        let d = desired(&["a"], CFG);
        let mut o = converged(&d);
        o.containers[0].state = RunState::Exited;
        o.containers[1].state = RunState::Dead;
        let p = plan(&d, &o, &Scope::All);
        assert!(p.iter().any(|a| matches!(a, Action::StartContainer { .. })));
        assert!(p.iter().any(|a| matches!(
            a,
            Action::RecreateContainer {
                reason: Reason::Stopped,
                ..
            }
        )));
    }

    #[test]
    fn gone_workspace_is_collected_completely() {
        let d = desired(&["a", "b"], CFG);
        let o = converged(&d);
        let d2 = desired(&["a"], CFG);
        let p = plan(&d2, &o, &Scope::All);
        assert!(p.iter().all(|a| a.workspace() == "b"));
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::RemoveContainer { .. }))
                .count(),
            2
        );
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::RemoveVolume { .. }))
                .count(),
            1
        );
        assert_eq!(
            p.iter()
                .filter(|a| matches!(a, Action::RemoveNetwork { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn scope_and_untouchable_are_hands_off() {
        let d = desired(&["a", "b"], CFG);
        let o = converged(&d);
        let only_a = desired(&["a"], CFG);
        assert_eq!(plan(&only_a, &o, &Scope::Workspace("a".into())), vec![]);
        let mut broken = desired(&["a"], CFG);
        broken.untouchable.insert("b".into());
        assert_eq!(plan(&broken, &o, &Scope::All), vec![]);
    }

    #[test]
    fn removed_service_keeps_volume_and_duplicates_go() {
        let d = desired(&["a"], CFG);
        let mut o = converged(&d);
        let mut dup = container("a", "cache", &d, RunState::Exited);
        dup.name = "c-a-cache-2".into();
        o.containers.push(dup);
        let only_cache = desired(
            &["a"],
            "[services.cache]\nimage = \"redis\"\nports = [6379]\n",
        );
        let p = plan(&only_cache, &o, &Scope::All);
        assert!(p.contains(&Action::RemoveContainer {
            workspace: "a".into(),
            service: "db".into(),
            container: "c-a-db".into(),
            reason: Reason::ServiceRemoved
        }));
        assert!(p.contains(&Action::RemoveContainer {
            workspace: "a".into(),
            service: "cache".into(),
            container: "c-a-cache-2".into(),
            reason: Reason::Duplicate
        }));
        assert!(!p.iter().any(|a| matches!(a, Action::RemoveVolume { .. })));
    }

    #[test]
    fn a_duplicate_network_goes_and_the_one_in_use_stays() {
        let d = desired(&["a"], CFG);
        let mut o = converged(&d);
        // An older twin nobody uses, as a killed process's late create leaves.
        o.networks.push(ObservedObject {
            id: "twin".into(),
            name: "n-a".into(),
            created: "2025-01-01T00:00:00Z".into(),
            workspace: "a".into(),
            ..Default::default()
        });
        let p = plan(&d, &o, &Scope::All);
        assert_eq!(
            p,
            vec![Action::RemoveNetwork {
                workspace: "a".into(),
                network: "twin".into(),
                reason: Reason::Duplicate
            }]
        );
        // With no container attached anywhere, the oldest stays.
        o.containers.clear();
        let p = plan(&d, &o, &Scope::All);
        assert!(p.contains(&Action::RemoveNetwork {
            workspace: "a".into(),
            network: "net-a".into(),
            reason: Reason::Duplicate
        }));
    }

    #[test]
    fn empty_config_creates_nothing() {
        let d = desired(&["a"], "");
        assert_eq!(plan(&d, &Observed::default(), &Scope::All), vec![]);
    }
}
