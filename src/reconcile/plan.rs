//! The plan: a pure function of (desired, observed). No I/O here, so every
//! rule is unit-tested without Docker. Level-triggered: the plan depends on
//! the whole state, never on what woke the reconciler.

use crate::backend::{Observed, ObservedContainer, ObservedObject, ServiceState};
use crate::model::config::Service;
use crate::model::desired::{Desired, Retention};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only this workspace's objects are planned; others are left alone.
    /// `root` also claims gone objects made for that root (a workspace
    /// renamed and then forgotten before a pass saw the rename).
    Workspace {
        name: String,
        root: Option<PathBuf>,
    },
}

impl Scope {
    pub fn workspace(name: &str, root: Option<&Path>) -> Self {
        Scope::Workspace {
            name: name.to_string(),
            root: root.map(Path::to_path_buf),
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
    /// Made under the workspace's previous name (`jj workspace rename`).
    Renamed,
    /// Kept after its workspace went, and its window is over.
    Expired,
}

/// What to do and why: the planner's own vocabulary, free to change. What
/// users read is `report::ActionReport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A renamed workspace takes over what it had under its old name: its
    /// volumes (data) and sticky ports stay; containers and network are
    /// recreated under the new name.
    AdoptWorkspace {
        workspace: String,
        from: String,
    },
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
    /// A gone workspace's volume stays, detached, for the retention window
    /// (`aether.keep-forgotten-data`): from `at` until `until` (seconds
    /// since the epoch).
    KeepVolume {
        workspace: String,
        volume: String,
        at: u64,
        until: u64,
    },
    /// A kept volume whose workspace is live again at its root (`jj undo`):
    /// it is that workspace's data again, no longer on a clock.
    ReclaimVolume {
        workspace: String,
        volume: String,
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
            | Action::AdoptWorkspace { workspace, .. }
            | Action::CreateVolume { workspace, .. }
            | Action::CreateContainer { workspace, .. }
            | Action::RecreateContainer { workspace, .. }
            | Action::StartContainer { workspace, .. }
            | Action::RemoveContainer { workspace, .. }
            | Action::RemoveVolume { workspace, .. }
            | Action::KeepVolume { workspace, .. }
            | Action::ReclaimVolume { workspace, .. }
            | Action::RemoveNetwork { workspace, .. } => workspace,
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Action::AdoptWorkspace { workspace, from } => {
                format!("adopt the environment of {from} (renamed to {workspace}): volumes and ports kept")
            }
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
            Action::KeepVolume { volume, until, .. } => {
                format!("keep volume {volume} until {}", rfc3339(*until))
            }
            Action::ReclaimVolume { workspace, volume } => {
                format!("take back kept volume {volume} for {workspace}")
            }
            Action::RemoveNetwork {
                network, reason, ..
            } => {
                let short = network.get(..12).unwrap_or(network);
                format!("remove network {short} ({})", reason_text(*reason))
            }
        }
    }
}

/// Seconds since the epoch as RFC 3339, in UTC.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::Missing => "missing",
        Reason::Drifted => "config changed",
        Reason::Stopped => "stopped",
        Reason::WorkspaceGone => "workspace gone",
        Reason::ServiceRemoved => "service removed from aether.toml",
        Reason::Duplicate => "duplicate",
        Reason::Renamed => "workspace renamed",
        Reason::Expired => "kept data expired",
    }
}

/// Prefers the container to keep: one made under the current name, running
/// over stopped, current config over drifted.
fn rank(c: &ObservedContainer, home: &str, hash: &str) -> (bool, bool, bool, String) {
    (
        c.workspace != home,
        c.config_hash != hash,
        c.state != ServiceState::Running,
        c.name.clone(),
    )
}

/// Where an object is planned: under the live workspace that owns it, or,
/// when its workspace is gone, under its label.
pub(super) struct Placement<'a> {
    pub home: &'a str,
    pub live: bool,
}

pub(super) fn place<'a>(
    desired: &'a Desired,
    label: &'a str,
    root: Option<&Path>,
) -> Placement<'a> {
    match desired.owner(label, root) {
        Some(home) => Placement { home, live: true },
        None => Placement {
            home: label,
            live: false,
        },
    }
}

fn in_scope(desired: &Desired, scope: &Scope, p: &Placement, root: Option<&Path>) -> bool {
    let scoped = match scope {
        Scope::All => true,
        Scope::Workspace { name, root: own } => {
            p.home == name || (!p.live && own.is_some() && root == own.as_deref())
        }
    };
    scoped && !desired.untouchable.contains(p.home)
}

/// The objects a scoped convergence may act on; everything for `Scope::All`.
pub fn scoped(desired: &Desired, observed: &Observed, scope: &Scope) -> Observed {
    let keep = |label: &str, root: Option<&Path>| {
        in_scope(desired, scope, &place(desired, label, root), root)
    };
    Observed {
        containers: observed
            .containers
            .iter()
            .filter(|c| keep(&c.workspace, c.root.as_deref()))
            .cloned()
            .collect(),
        networks: observed
            .networks
            .iter()
            .filter(|n| keep(&n.workspace, n.root.as_deref()))
            .cloned()
            .collect(),
        volumes: observed
            .volumes
            .iter()
            .filter(|v| {
                let p = place_volume(desired, v);
                in_scope(desired, scope, &p, v.root.as_deref())
            })
            .cloned()
            .collect(),
    }
}

pub fn plan(desired: &Desired, observed: &Observed, scope: &Scope) -> Vec<Action> {
    let observed = scoped(desired, observed, scope);
    let mut actions = adoptions(desired, &observed);
    let gone_home = gone_homes(desired, &observed);
    let gone = |p: &Placement, root: Option<&Path>| -> String {
        root.and_then(|r| gone_home.get(r))
            .map_or(p.home, String::as_str)
            .to_string()
    };
    let mut by_service: BTreeMap<(&str, &str), Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        let p = place(desired, &c.workspace, c.root.as_deref());
        match desired.workspaces.get(p.home).filter(|_| p.live) {
            None => actions.push(Action::RemoveContainer {
                workspace: gone(&p, c.root.as_deref()),
                service: c.service.clone(),
                container: c.name.clone(),
                reason: Reason::WorkspaceGone,
            }),
            Some(ws) if !ws.config.services.contains_key(&c.service) => {
                actions.push(Action::RemoveContainer {
                    workspace: p.home.to_string(),
                    service: c.service.clone(),
                    container: c.name.clone(),
                    reason: Reason::ServiceRemoved,
                })
            }
            Some(_) => by_service.entry((p.home, &c.service)).or_default().push(c),
        }
    }
    for (ws_name, ws) in &desired.workspaces {
        if !observed_any_scope(scope, ws_name) || ws.config.services.is_empty() {
            continue;
        }
        actions.extend(plan_network(desired, &observed, ws_name));
        for (svc_name, svc) in &ws.config.services {
            actions.extend(plan_volumes(desired, &observed, ws_name, svc_name, svc));
            let present = by_service
                .remove(&(ws_name.as_str(), svc_name.as_str()))
                .unwrap_or_default();
            actions.extend(plan_service(ws_name, svc_name, svc, present));
        }
    }
    // Volumes of a removed service stay until the workspace goes: dropping a
    // line from aether.toml by mistake must not cost the user their data.
    let mut seen = BTreeSet::new();
    for v in &observed.volumes {
        let p = place_volume(desired, v);
        if !seen.insert(v.name.clone()) {
            continue;
        }
        if !p.live {
            let workspace = gone(&p, v.root.as_deref());
            actions.extend(gone_volume(&desired.retention, workspace, v));
        } else if desired.retention.kept.contains_key(&v.name) {
            actions.push(Action::ReclaimVolume {
                workspace: p.home.to_string(),
                volume: v.name.clone(),
            });
        }
    }
    for n in &observed.networks {
        let p = place(desired, &n.workspace, n.root.as_deref());
        if !p.live && seen.insert(n.id.clone()) {
            actions.push(Action::RemoveNetwork {
                workspace: gone(&p, n.root.as_deref()),
                network: n.id.clone(),
                reason: Reason::WorkspaceGone,
            });
        }
    }
    actions
}

/// A gone workspace's volume: removed with it (no window, or `--purge`),
/// else kept until its window ends, then removed.
fn gone_volume(r: &Retention, workspace: String, v: &ObservedObject) -> Option<Action> {
    let remove = |reason| Action::RemoveVolume {
        workspace: workspace.clone(),
        volume: v.name.clone(),
        reason,
    };
    if r.window.is_zero() || r.purge.contains(&workspace) || r.purge.contains(&v.workspace) {
        return Some(remove(Reason::WorkspaceGone));
    }
    match r.until(&v.name) {
        None => Some(Action::KeepVolume {
            workspace: workspace.clone(),
            volume: v.name.clone(),
            at: r.now,
            until: r.now.saturating_add(r.window.as_secs()),
        }),
        Some(until) if until <= r.now => Some(remove(Reason::Expired)),
        Some(_) => None,
    }
}

/// Where a volume belongs. Kept data goes back only to a workspace at its
/// own root (an undo), never to a new workspace that took the name.
pub(super) fn place_volume<'a>(desired: &'a Desired, v: &'a ObservedObject) -> Placement<'a> {
    place_volume_with(desired, &desired.retention, v)
}

pub(super) fn place_volume_with<'a>(
    desired: &'a Desired,
    retention: &Retention,
    v: &'a ObservedObject,
) -> Placement<'a> {
    let p = place(desired, &v.workspace, v.root.as_deref());
    let elsewhere = retention.kept.contains_key(&v.name)
        && v.root
            .as_ref()
            .is_some_and(|r| !desired.roots.contains_key(r));
    match p.live && elsewhere {
        true => Placement {
            home: &v.workspace,
            live: false,
        },
        false => p,
    }
}

/// Objects found under another name at a live workspace's root: a rename.
fn adoptions(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut renames = BTreeSet::new();
    for (label, root) in labels(observed) {
        let p = place(desired, label, root);
        if p.live && p.home != label && desired.workspaces.contains_key(p.home) {
            renames.insert((p.home.to_string(), label.clone()));
        }
    }
    renames
        .into_iter()
        .map(|(workspace, from)| Action::AdoptWorkspace { workspace, from })
        .collect()
}

/// The workspace's network: made when missing, replaced after a rename (its
/// name says the old workspace, once the containers have moved off it), and
/// twins removed, keeping the one containers use (then the oldest).
fn plan_network(desired: &Desired, observed: &Observed, ws_name: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    let nets: Vec<&ObservedObject> = observed
        .networks
        .iter()
        .filter(|n| {
            let p = place(desired, &n.workspace, n.root.as_deref());
            p.live && p.home == ws_name
        })
        .collect();
    let (mut nets, renamed): (Vec<_>, Vec<_>) =
        nets.into_iter().partition(|n| n.workspace == ws_name);
    for n in renamed {
        actions.push(Action::RemoveNetwork {
            workspace: ws_name.to_string(),
            network: n.id.clone(),
            reason: Reason::Renamed,
        });
    }
    if nets.is_empty() {
        actions.push(Action::CreateNetwork {
            workspace: ws_name.to_string(),
        });
    }
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
            workspace: ws_name.to_string(),
            network: extra.id.clone(),
            reason: Reason::Duplicate,
        });
    }
    actions
}

/// The service's volumes that its workspace does not have yet.
fn plan_volumes(
    desired: &Desired,
    observed: &Observed,
    ws_name: &str,
    svc_name: &str,
    svc: &Service,
) -> Vec<Action> {
    svc.spec
        .volumes
        .keys()
        .filter(|volume| {
            !observed.volumes.iter().any(|v| {
                let p = place_volume(desired, v);
                p.live && p.home == ws_name && v.service == svc_name && &v.volume == *volume
            })
        })
        .map(|volume| Action::CreateVolume {
            workspace: ws_name.to_string(),
            service: svc_name.to_string(),
            volume: volume.clone(),
        })
        .collect()
}

/// One service's container: the best one present is kept, started or
/// recreated (and why); the others are duplicates.
fn plan_service(
    ws_name: &str,
    svc_name: &str,
    svc: &Service,
    mut present: Vec<&ObservedContainer>,
) -> Vec<Action> {
    let hash = svc.spec.config_hash();
    let (workspace, service) = (ws_name.to_string(), svc_name.to_string());
    present.sort_by_key(|c| rank(c, ws_name, &hash));
    let mut present = present.into_iter();
    let mut actions = Vec::new();
    match present.next() {
        None => actions.push(Action::CreateContainer {
            workspace: workspace.clone(),
            service: service.clone(),
            reason: Reason::Missing,
        }),
        Some(c)
            if c.workspace != ws_name
                || c.config_hash != hash
                || matches!(c.state, ServiceState::Dead) =>
        {
            actions.push(Action::RecreateContainer {
                workspace: workspace.clone(),
                service: service.clone(),
                container: c.name.clone(),
                reason: if c.workspace != ws_name {
                    Reason::Renamed
                } else if c.config_hash != hash {
                    Reason::Drifted
                } else {
                    Reason::Stopped
                },
            })
        }
        // A one-shot job that completed stays as it ended (Compose's
        // `service_completed_successfully`); a failed one runs again. A
        // service whose restart policy is "no" is never started again.
        Some(c)
            if svc.completes
                && c.state == ServiceState::Exited
                && c.exit_code.is_none_or(|code| code == 0) => {}
        Some(c)
            if !svc.completes
                && c.state == ServiceState::Exited
                && svc.spec.extra.as_ref().and_then(|e| e.restart.as_deref()) == Some("no") => {}
        Some(c) if matches!(c.state, ServiceState::Created | ServiceState::Exited) => {
            actions.push(Action::StartContainer {
                workspace: workspace.clone(),
                service: service.clone(),
                container: c.name.clone(),
                reason: Reason::Stopped,
            })
        }
        // Running, restarting (the engine's own backoff), paused (the user's choice).
        Some(_) => {}
    }
    for extra in present {
        actions.push(Action::RemoveContainer {
            workspace: workspace.clone(),
            service: service.clone(),
            container: extra.name.clone(),
            reason: Reason::Duplicate,
        });
    }
    actions
}

/// Every observed object's workspace label and root: containers first.
fn labels(observed: &Observed) -> impl Iterator<Item = (&String, Option<&Path>)> {
    observed
        .containers
        .iter()
        .map(|c| (&c.workspace, c.root.as_deref()))
        .chain(
            observed
                .networks
                .iter()
                .chain(&observed.volumes)
                .map(|o| (&o.workspace, o.root.as_deref())),
        )
}

/// One name per root for the objects of a gone workspace. After a rename
/// its volumes still carry the old name and its containers the new one;
/// acted on under two names, they would be removed by two concurrent jobs,
/// and a volume could go before the container that holds it (seen as
/// "volume is in use" when a renamed workspace was forgotten). Containers'
/// names win: they are the newest.
fn gone_homes(desired: &Desired, observed: &Observed) -> BTreeMap<PathBuf, String> {
    let mut homes = BTreeMap::new();
    for (label, root) in labels(observed) {
        if let Some(root) = root.filter(|r| !place(desired, label, Some(r)).live) {
            homes
                .entry(root.to_path_buf())
                .or_insert_with(|| label.clone());
        }
    }
    homes
}

/// The networks of the workspace `name` at `root` other than `keep`: the
/// twins an engine before 25 lets a killed create leave behind, found after
/// the pass observed.
pub fn network_twins(observed: &Observed, name: &str, root: &Path, keep: &str) -> Vec<String> {
    observed
        .networks
        .iter()
        .filter(|n| n.workspace == name && n.root.as_deref().is_none_or(|r| r == root))
        .filter(|n| n.id != keep)
        .map(|n| n.id.clone())
        .collect()
}

fn observed_any_scope(scope: &Scope, ws: &str) -> bool {
    match scope {
        Scope::All => true,
        Scope::Workspace { name, .. } => name == ws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ObservedObject;
    use crate::model::config;
    use crate::model::desired::DesiredWorkspace;
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

    fn root(ws: &str) -> PathBuf {
        PathBuf::from(format!("/w/{ws}"))
    }

    /// Workspaces as `name` or `name@dir` (a workspace living at /w/dir).
    fn desired(names: &[&str], cfg: &str) -> Desired {
        let config = config::parse(cfg, Path::new("aether.toml")).unwrap();
        let mut d = Desired::default();
        for n in names {
            let (name, dir) = n.split_once('@').unwrap_or((n, n));
            d.roots.insert(root(dir), name.to_string());
            d.workspaces.insert(
                name.to_string(),
                DesiredWorkspace {
                    root: root(dir),
                    config: config.clone(),
                },
            );
        }
        d
    }

    fn container(ws: &str, svc: &str, d: &Desired, state: ServiceState) -> ObservedContainer {
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
            config_fields: BTreeMap::new(),
            state,
            health: None,
            exit_code: None,
            ports: BTreeMap::from([(1, 2)]),
            published: BTreeMap::from([(1, 2)]),
            networks: vec![format!("net-{ws}")],
            root: d.workspaces.get(ws).map(|w| w.root.clone()),
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
                root: Some(w.root.clone()),
                ..Default::default()
            });
            for (svc, s) in &w.config.services {
                o.containers
                    .push(container(ws, svc, d, ServiceState::Running));
                for vol in s.spec.volumes.keys() {
                    o.volumes.push(ObservedObject {
                        name: format!("v-{ws}-{svc}-{vol}"),
                        workspace: ws.clone(),
                        service: svc.clone(),
                        volume: vol.clone(),
                        root: Some(w.root.clone()),
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
        o.containers[0].state = ServiceState::Exited;
        o.containers[1].state = ServiceState::Dead;
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
        assert_eq!(
            plan(&only_a, &o, &Scope::workspace("a", Some(&root("a")))),
            vec![]
        );
        let mut broken = desired(&["a"], CFG);
        broken.untouchable.insert("b".into());
        assert_eq!(plan(&broken, &o, &Scope::All), vec![]);
    }

    #[test]
    fn removed_service_keeps_volume_and_duplicates_go() {
        let d = desired(&["a"], CFG);
        let mut o = converged(&d);
        let mut dup = container("a", "cache", &d, ServiceState::Exited);
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

    /// Of two containers for one service, the one kept is made under the
    /// current name, then running, then of the current config, then the
    /// first by name; the names are chosen so that name order alone would
    /// keep the wrong one.
    #[test]
    fn of_two_containers_the_better_one_is_kept() {
        let d = desired(&["a"], CFG);
        let good = || {
            let mut c = container("a", "cache", &d, ServiceState::Running);
            c.name = "z-good".into();
            c
        };
        let renamed = {
            let mut c = good();
            c.workspace = "old".into();
            c
        };
        let stopped = {
            let mut c = good();
            c.state = ServiceState::Exited;
            c
        };
        let drifted = {
            let mut c = good();
            c.config_hash = "old".into();
            c
        };
        for (mut worse, what) in [
            (renamed, "renamed"),
            (stopped, "stopped"),
            (drifted, "drifted"),
        ] {
            worse.name = "a-worse".into();
            let mut o = converged(&d);
            o.containers.retain(|c| c.service != "cache");
            o.containers.push(worse);
            o.containers.push(good());
            let p = plan(&d, &o, &Scope::All);
            let touched: Vec<&Action> = p
                .iter()
                .filter(|a| !matches!(a, Action::AdoptWorkspace { .. }))
                .collect();
            assert_eq!(
                touched,
                [&Action::RemoveContainer {
                    workspace: "a".into(),
                    service: "cache".into(),
                    container: "a-worse".into(),
                    reason: Reason::Duplicate
                }],
                "{what}"
            );
        }
        // Equal in every way: the first by name stays, whatever the order seen.
        let mut o = converged(&d);
        o.containers.retain(|c| c.service != "cache");
        let mut second = good();
        second.name = "y-second".into();
        o.containers.push(good());
        o.containers.push(second);
        assert_eq!(
            plan(&d, &o, &Scope::All),
            [Action::RemoveContainer {
                workspace: "a".into(),
                service: "cache".into(),
                container: "z-good".into(),
                reason: Reason::Duplicate
            }]
        );
    }

    #[test]
    fn a_scoped_plan_creates_only_for_its_workspace() {
        let d = desired(&["a", "b"], CFG);
        let p = plan(
            &d,
            &Observed::default(),
            &Scope::workspace("a", Some(&root("a"))),
        );
        assert!(!p.is_empty());
        assert!(p.iter().all(|a| a.workspace() == "a"), "{p:?}");
    }

    #[test]
    fn every_action_says_what_it_does() {
        let a = |s: &str| s.to_string();
        let cases = [
            (
                Action::AdoptWorkspace {
                    workspace: a("b"),
                    from: a("a"),
                },
                "adopt the environment of a (renamed to b): volumes and ports kept",
            ),
            (
                Action::CreateNetwork { workspace: a("w") },
                "create network of w",
            ),
            (
                Action::CreateVolume {
                    workspace: a("w"),
                    service: a("db"),
                    volume: a("data"),
                },
                "create volume w/db/data",
            ),
            (
                Action::CreateContainer {
                    workspace: a("w"),
                    service: a("db"),
                    reason: Reason::Missing,
                },
                "create w/db",
            ),
            (
                Action::RecreateContainer {
                    workspace: a("w"),
                    service: a("db"),
                    container: a("c"),
                    reason: Reason::Drifted,
                },
                "recreate w/db (config changed)",
            ),
            (
                Action::StartContainer {
                    workspace: a("w"),
                    service: a("db"),
                    container: a("c"),
                    reason: Reason::Stopped,
                },
                "start w/db",
            ),
            (
                Action::RemoveContainer {
                    workspace: a("w"),
                    service: a("db"),
                    container: a("c"),
                    reason: Reason::ServiceRemoved,
                },
                "remove w/db (service removed from aether.toml)",
            ),
            (
                Action::RemoveVolume {
                    workspace: a("w"),
                    volume: a("v"),
                    reason: Reason::WorkspaceGone,
                },
                "remove volume v (workspace gone)",
            ),
            (
                Action::RemoveNetwork {
                    workspace: a("w"),
                    network: a("0123456789abcdef"),
                    reason: Reason::Duplicate,
                },
                "remove network 0123456789ab (duplicate)",
            ),
            (
                Action::RemoveNetwork {
                    workspace: a("w"),
                    network: a("short"),
                    reason: Reason::Renamed,
                },
                "remove network short (workspace renamed)",
            ),
        ];
        for (action, text) in cases {
            assert_eq!(action.describe(), text);
        }
        for (reason, text) in [(Reason::Missing, "missing"), (Reason::Stopped, "stopped")] {
            assert_eq!(reason_text(reason), text);
        }
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
    fn a_rename_keeps_volumes_and_moves_the_rest() {
        let before = desired(&["a"], CFG);
        let o = converged(&before);
        let after = desired(&["b@a"], CFG);
        let p = plan(&after, &o, &Scope::All);
        assert!(p.contains(&Action::AdoptWorkspace {
            workspace: "b".into(),
            from: "a".into()
        }));
        assert!(p.contains(&Action::RecreateContainer {
            workspace: "b".into(),
            service: "db".into(),
            container: "c-a-db".into(),
            reason: Reason::Renamed
        }));
        assert!(p.contains(&Action::RemoveNetwork {
            workspace: "b".into(),
            network: "net-a".into(),
            reason: Reason::Renamed
        }));
        assert!(p.contains(&Action::CreateNetwork {
            workspace: "b".into()
        }));
        assert!(!p
            .iter()
            .any(|a| matches!(a, Action::CreateVolume { .. } | Action::RemoveVolume { .. })));
        // The same holds when only the renamed workspace is converged.
        let scoped = plan(&after, &o, &Scope::workspace("b", Some(&root("a"))));
        assert_eq!(scoped, p);
    }

    #[test]
    fn a_new_workspace_with_a_renamed_ones_old_name_takes_nothing() {
        let before = desired(&["a"], CFG);
        let o = converged(&before);
        let after = desired(&["b@a", "a@a2"], CFG);
        for scope in [Scope::All, Scope::workspace("a", Some(&root("a2")))] {
            let p = plan(&after, &o, &scope);
            assert!(!p.iter().any(|a| matches!(a, Action::RemoveVolume { .. })));
            let for_a: Vec<_> = p.iter().filter(|a| a.workspace() == "a").collect();
            assert!(for_a.iter().all(|a| matches!(
                a,
                Action::CreateContainer { .. }
                    | Action::CreateNetwork { .. }
                    | Action::CreateVolume { .. }
            )));
            assert_eq!(for_a.len(), 4, "{for_a:?}");
        }
    }

    #[test]
    fn forgetting_a_renamed_workspace_removes_what_it_had_under_either_name() {
        let before = desired(&["a"], CFG);
        let o = converged(&before);
        // `jj workspace rename a b` then `ajj workspace forget b`, no pass between.
        let p = plan(
            &Desired::default(),
            &o,
            &Scope::workspace("b", Some(&root("a"))),
        );
        assert_eq!(
            p.iter()
                .filter(|a| matches!(
                    a,
                    Action::RemoveContainer { .. }
                        | Action::RemoveVolume { .. }
                        | Action::RemoveNetwork { .. }
                ))
                .count(),
            4
        );
    }

    #[test]
    fn a_gone_workspaces_objects_under_two_names_go_in_one_job() {
        // After `jj workspace rename a b` and a pass, the containers and the
        // network say b, the kept volumes still say a; then b is forgotten.
        let mut o = converged(&desired(&["a"], CFG));
        for c in &mut o.containers {
            c.workspace = "b".into();
        }
        for n in &mut o.networks {
            n.workspace = "b".into();
        }
        assert!(o.volumes.iter().all(|v| v.workspace == "a"));
        let p = plan(&Desired::default(), &o, &Scope::All);
        assert_eq!(p.len(), 4, "{p:?}");
        // One name, so one job removes them, containers before volumes.
        assert!(p.iter().all(|a| a.workspace() == "b"), "{p:?}");
    }

    #[test]
    fn a_missing_directory_follows_the_policy() {
        use crate::model::desired::{build, MissingRoot};
        use crate::model::jj::WorkspaceEntry;
        let entries = [WorkspaceEntry {
            name: "a".into(),
            root: None,
            recorded_root: Some(root("a")),
        }];
        let o = converged(&desired(&["a"], CFG));
        let (keep, _) = build(&entries, || Ok(MissingRoot::Keep));
        assert!(keep.untouchable.contains("a"));
        assert_eq!(plan(&keep, &o, &Scope::All), vec![]);
        let (remove, _) = build(&entries, || Ok(MissingRoot::Remove));
        assert_eq!(plan(&remove, &o, &Scope::All).len(), 4);
        // A policy that cannot be read deletes nothing.
        let (unreadable, errors) = build(&entries, || MissingRoot::parse("sometimes"));
        assert_eq!(errors.len(), 1);
        assert_eq!(plan(&unreadable, &o, &Scope::All), vec![]);
    }

    #[test]
    fn empty_config_creates_nothing() {
        let d = desired(&["a"], "");
        assert_eq!(plan(&d, &Observed::default(), &Scope::All), vec![]);
    }

    fn retention(window_secs: u64, kept: &[(&str, u64)], now: u64) -> Retention {
        Retention {
            window: std::time::Duration::from_secs(window_secs),
            kept: kept.iter().map(|(v, at)| (v.to_string(), *at)).collect(),
            now,
            purge: BTreeSet::new(),
        }
    }

    fn volume_actions(p: &[Action]) -> Vec<&Action> {
        p.iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::RemoveVolume { .. }
                        | Action::KeepVolume { .. }
                        | Action::ReclaimVolume { .. }
                        | Action::CreateVolume { .. }
                )
            })
            .collect()
    }

    #[test]
    fn a_window_keeps_a_gone_workspaces_volume_then_expires_it() {
        let o = converged(&desired(&["a"], CFG));
        let mut gone = desired(&[], CFG);
        gone.retention = retention(60, &[], 1000);
        let p = plan(&gone, &o, &Scope::All);
        assert_eq!(
            volume_actions(&p),
            [&Action::KeepVolume {
                workspace: "a".into(),
                volume: "v-a-db-data".into(),
                at: 1000,
                until: 1060
            }]
        );
        // Containers and network still go at once.
        assert!(p
            .iter()
            .any(|a| matches!(a, Action::RemoveContainer { .. })));
        assert!(p.iter().any(|a| matches!(a, Action::RemoveNetwork { .. })));
        // Kept and within the window: nothing; at its end: removed.
        gone.retention = retention(60, &[("v-a-db-data", 1000)], 1059);
        assert!(volume_actions(&plan(&gone, &o, &Scope::All)).is_empty());
        gone.retention = retention(60, &[("v-a-db-data", 1000)], 1060);
        assert_eq!(
            volume_actions(&plan(&gone, &o, &Scope::All)),
            [&Action::RemoveVolume {
                workspace: "a".into(),
                volume: "v-a-db-data".into(),
                reason: Reason::Expired
            }]
        );
        // No window (any more), or --purge: removed at once.
        gone.retention = retention(0, &[("v-a-db-data", 1000)], 1001);
        assert!(matches!(
            volume_actions(&plan(&gone, &o, &Scope::All))[..],
            [Action::RemoveVolume {
                reason: Reason::WorkspaceGone,
                ..
            }]
        ));
        gone.retention = retention(60, &[], 1000);
        gone.retention.purge.insert("a".into());
        assert!(matches!(
            volume_actions(&plan(&gone, &o, &Scope::All))[..],
            [Action::RemoveVolume {
                reason: Reason::WorkspaceGone,
                ..
            }]
        ));
    }

    #[test]
    fn kept_data_goes_back_to_its_root_only() {
        let o = converged(&desired(&["a"], CFG));
        let mut o_gone = o.clone();
        o_gone.containers.clear();
        o_gone.networks.clear();
        // Undo: "a" lives again at its root and takes its volume back.
        let mut back = desired(&["a"], CFG);
        back.retention = retention(60, &[("v-a-db-data", 1000)], 1010);
        let p = plan(&back, &o_gone, &Scope::All);
        assert_eq!(
            volume_actions(&p),
            [&Action::ReclaimVolume {
                workspace: "a".into(),
                volume: "v-a-db-data".into()
            }]
        );
        // A new "a" elsewhere: the kept volume is not its data.
        let mut elsewhere = desired(&["a@other"], CFG);
        elsewhere.retention = retention(60, &[("v-a-db-data", 1000)], 1010);
        let p = plan(&elsewhere, &o_gone, &Scope::All);
        assert_eq!(
            volume_actions(&p),
            [&Action::CreateVolume {
                workspace: "a".into(),
                service: "db".into(),
                volume: "data".into()
            }],
            "a volume of its own, the kept one left on its clock"
        );
    }
}
