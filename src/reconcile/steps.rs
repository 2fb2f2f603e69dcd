//! The plan's actions resolved into steps: each names the object it acts on,
//! the volumes a container mounts, the host port each container port will
//! bind (the sticky one, or a new pick), and for a drift the fields that
//! changed. Pure: apply only carries steps out, and `ajj reconcile --dry-run`
//! shows exactly these.

use super::plan::{place_volume, Action, Reason};
use crate::backend::{Naming, Observed, ObservedContainer, WorkspaceRef};
use crate::model::config::{changed_fields, Service};
use crate::model::context::PortMap;
use crate::model::desired::Desired;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// The backend's name of the object acted on: the container created,
    /// recreated, started or removed; the volume; the network (its id for a
    /// removal, as names can repeat).
    pub object: String,
    /// Container port → the host port it will bind: the sticky one, or
    /// `None` for a new pick. Only for creates, recreates and starts.
    pub ports: BTreeMap<u16, Option<u16>>,
    /// Volume in aether.toml → the backend's volume it mounts.
    pub volumes: BTreeMap<String, String>,
    /// For a drift, the spec fields that changed (`image`, `env.GREETING`);
    /// `None` when the old container predates the record of its fields.
    pub changed: Option<Vec<String>>,
}

/// What Aether remembers of each workspace: the client ports `.env` was
/// written with, by service (`state.rs`).
pub type Memory = BTreeMap<String, PortMap>;

/// Resolves `actions` against the observation they were planned from.
pub fn resolve(
    actions: Vec<Action>,
    desired: &Desired,
    observed: &Observed,
    memory: &Memory,
    names: &dyn Naming,
) -> Vec<Step> {
    let sticky = sticky_ports(&actions, memory);
    actions
        .into_iter()
        .map(|action| {
            let mut step = Step {
                object: String::new(),
                ports: BTreeMap::new(),
                volumes: BTreeMap::new(),
                changed: None,
                action,
            };
            fill(&mut step, desired, observed, &sticky, names);
            step
        })
        .collect()
}

/// The remembered ports of each workspace, with a renamed one's taking over
/// what it had under its old name (the adoption moves them).
fn sticky_ports(actions: &[Action], memory: &Memory) -> Memory {
    let mut sticky = memory.clone();
    for a in actions {
        if let Action::AdoptWorkspace { workspace, from } = a {
            let old = memory.get(from).cloned().unwrap_or_default();
            let mine = sticky.entry(workspace.clone()).or_default();
            for (service, ports) in old {
                mine.entry(service).or_insert(ports);
            }
        }
    }
    sticky
}

fn fill(
    step: &mut Step,
    desired: &Desired,
    observed: &Observed,
    sticky: &Memory,
    names: &dyn Naming,
) {
    let ws = step.action.workspace().to_string();
    let live = desired.workspaces.get(&ws);
    let owner = live.map(|d| WorkspaceRef {
        name: &ws,
        root: &d.root,
    });
    let service = |name: &str| live.and_then(|d| d.config.services.get(name));
    let old = |name: &str| observed.containers.iter().find(|c| c.name == name);
    match &step.action {
        Action::AdoptWorkspace { from, .. } => step.object = from.clone(),
        Action::CreateNetwork { .. } => {
            step.object = owner.map(|o| names.network_name(o)).unwrap_or_default()
        }
        Action::CreateVolume {
            service, volume, ..
        } => {
            step.object = owner
                .map(|o| names.volume_name(o, service, volume))
                .unwrap_or_default()
        }
        Action::CreateContainer { service: name, .. } => {
            if let (Some(svc), Some(o)) = (service(name), owner) {
                step.object = names.container_name(o, name);
                step.ports = ports(svc, None, sticky.get(&ws));
                step.volumes = volume_names(desired, observed, names, o, svc);
            }
        }
        Action::RecreateContainer {
            service: name,
            container,
            ..
        }
        | Action::StartContainer {
            service: name,
            container,
            ..
        } => {
            step.object = container.clone();
            if let (Some(svc), Some(o)) = (service(name), owner) {
                let before = old(container);
                step.ports = ports(svc, before, sticky.get(&ws));
                step.volumes = volume_names(desired, observed, names, o, svc);
                if let Action::RecreateContainer { reason, .. } = step.action {
                    step.object = names.container_name(o, name);
                    step.changed = before
                        .filter(|_| reason == Reason::Drifted)
                        .filter(|c| !c.config_fields.is_empty())
                        .map(|c| changed_fields(&c.config_fields, &svc.spec.field_digests()));
                }
            }
        }
        Action::RemoveContainer { container, .. } => step.object = container.clone(),
        Action::RemoveVolume { volume, .. }
        | Action::KeepVolume { volume, .. }
        | Action::ReclaimVolume { volume, .. } => step.object = volume.clone(),
        Action::RemoveNetwork { network, .. } => step.object = network.clone(),
    }
}

/// The host port each container port binds: the one the container being
/// replaced or started had (what `.env` was written with), else the one
/// remembered (someone removed the container), else a new pick.
fn ports(
    svc: &Service,
    before: Option<&ObservedContainer>,
    remembered: Option<&PortMap>,
) -> BTreeMap<u16, Option<u16>> {
    let sticky = before
        .map(|c| c.ports.clone())
        .filter(|p| !p.is_empty())
        .or_else(|| remembered.and_then(|m| m.get(&svc.name).cloned()))
        .unwrap_or_default();
    svc.spec
        .ports
        .iter()
        .map(|c| (*c, sticky.get(c).copied()))
        .collect()
}

/// The volumes a service mounts: those its workspace already has (a renamed
/// workspace's keep their old names, and with them the data), else new
/// names. Only the workspace's own volumes count, never another's.
fn volume_names(
    desired: &Desired,
    observed: &Observed,
    names: &dyn Naming,
    owner: WorkspaceRef<'_>,
    svc: &Service,
) -> BTreeMap<String, String> {
    let name_of = |service: &str, volume: &str| {
        let mut found: Vec<_> = observed
            .volumes
            .iter()
            .filter(|v| v.service == service && v.volume == volume)
            .filter(|v| {
                let p = place_volume(desired, v);
                p.live && p.home == owner.name
            })
            .collect();
        found.sort_by_key(|v| (v.workspace != owner.name, v.created.clone()));
        found
            .first()
            .map(|v| v.name.clone())
            .unwrap_or_else(|| names.volume_name(owner, service, volume))
    };
    let own = svc
        .spec
        .volumes
        .keys()
        .map(|volume| (volume.clone(), name_of(&svc.name, volume)));
    // Volumes another service owns, keyed `owner/volume`.
    let shared = svc
        .spec
        .extra
        .iter()
        .flat_map(|e| e.shared_volumes.values())
        .filter_map(|key| {
            let (service, volume) = key.split_once('/')?;
            Some((key.clone(), name_of(service, volume)))
        });
    own.chain(shared).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::{ObservedObject, ServiceState};
    use crate::model::config;
    use crate::model::desired::DesiredWorkspace;
    use crate::reconcile::plan::{plan, Scope};
    use crate::reconcile::report::ActionReport;
    use std::path::{Path, PathBuf};

    const CFG: &str = r#"
[services.web]
image = "web"
ports = [80, 443]
env = { GREETING = "hi" }
volumes = { data = "/data" }
"#;

    fn desired(names: &[(&str, &str)], cfg: &str) -> Desired {
        let config = config::parse(cfg, Path::new("aether.toml")).unwrap();
        let mut d = Desired::default();
        for (name, dir) in names {
            let root = PathBuf::from(format!("/w/{dir}"));
            d.roots.insert(root.clone(), name.to_string());
            d.workspaces.insert(
                name.to_string(),
                DesiredWorkspace {
                    root,
                    config: config.clone(),
                },
            );
        }
        d
    }

    fn web(d: &Desired, ws: &str, label: &str, cfg: &str) -> ObservedContainer {
        let old = config::parse(cfg, Path::new("aether.toml")).unwrap();
        let spec = &old.services["web"].spec;
        ObservedContainer {
            id: format!("id-{label}"),
            name: format!("c-{label}-web"),
            workspace: label.into(),
            service: "web".into(),
            config_hash: spec.config_hash(),
            config_fields: spec.field_digests(),
            state: ServiceState::Running,
            health: None,
            exit_code: None,
            ports: BTreeMap::from([(80, 40080), (443, 40443)]),
            published: BTreeMap::from([(80, 40080), (443, 40443)]),
            networks: vec![format!("net-{ws}")],
            root: Some(d.workspaces[ws].root.clone()),
        }
    }

    fn volume(d: &Desired, ws: &str, label: &str, name: &str) -> ObservedObject {
        ObservedObject {
            id: name.into(),
            name: name.into(),
            workspace: label.into(),
            service: "web".into(),
            volume: "data".into(),
            root: d.workspaces.get(ws).map(|w| w.root.clone()),
            ..Default::default()
        }
    }

    fn network(d: &Desired, ws: &str) -> ObservedObject {
        ObservedObject {
            id: format!("net-{ws}"),
            name: format!("n-{ws}"),
            workspace: ws.into(),
            root: Some(d.workspaces[ws].root.clone()),
            ..Default::default()
        }
    }

    fn steps(d: &Desired, o: &Observed, memory: &Memory) -> Vec<Step> {
        resolve(
            plan(d, o, &Scope::All),
            d,
            o,
            memory,
            &MemoryBackend::default(),
        )
    }

    #[test]
    fn a_drift_names_the_changed_fields_and_keeps_ports_and_volumes() {
        let d = desired(&[("w", "w")], CFG);
        let old_cfg = CFG
            .replace("\"hi\"", "\"hello\"")
            .replace("\"web\"", "\"web:1\"");
        let o = Observed {
            containers: vec![web(&d, "w", "w", &old_cfg)],
            networks: vec![network(&d, "w")],
            volumes: vec![volume(&d, "w", "w", "kept-data")],
        };
        let s = steps(&d, &o, &Memory::new());
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(matches!(
            s[0].action,
            Action::RecreateContainer {
                reason: Reason::Drifted,
                ..
            }
        ));
        assert_eq!(s[0].object, "c-w-web");
        assert_eq!(
            s[0].changed,
            Some(vec!["env.GREETING".to_string(), "image".to_string()])
        );
        assert_eq!(
            s[0].ports,
            BTreeMap::from([(80, Some(40080)), (443, Some(40443))])
        );
        assert_eq!(s[0].volumes["data"], "kept-data");
        let json = serde_json::to_value(ActionReport::new(&s[0])).unwrap();
        assert_eq!(
            json["changed"],
            serde_json::json!(["env.GREETING", "image"])
        );
        assert_eq!(json["ports"]["80"], 40080);
        assert_eq!(json["object"], "c-w-web");
    }

    #[test]
    fn a_container_from_before_the_fields_record_reports_changed_as_unknown() {
        let d = desired(&[("w", "w")], CFG);
        let mut c = web(&d, "w", "w", &CFG.replace("\"hi\"", "\"x\""));
        c.config_fields.clear();
        let o = Observed {
            containers: vec![c],
            networks: vec![network(&d, "w")],
            volumes: vec![volume(&d, "w", "w", "v")],
        };
        let s = steps(&d, &o, &Memory::new());
        assert_eq!(s[0].changed, None);
        let json = serde_json::to_value(ActionReport::new(&s[0])).unwrap();
        assert!(json["changed"].is_null() && json.get("changed").is_some());
    }

    #[test]
    fn a_removed_container_comes_back_on_its_remembered_ports() {
        let d = desired(&[("w", "w")], CFG);
        let o = Observed {
            containers: vec![],
            networks: vec![network(&d, "w")],
            volumes: vec![volume(&d, "w", "w", "v")],
        };
        let memory = Memory::from([(
            "w".to_string(),
            PortMap::from([("web".to_string(), BTreeMap::from([(80, 41000)]))]),
        )]);
        let s = steps(&d, &o, &memory);
        let create = s
            .iter()
            .find(|s| matches!(s.action, Action::CreateContainer { .. }))
            .unwrap();
        assert_eq!(create.object, "c-w-web");
        // 443 was never recorded: a new pick.
        assert_eq!(
            create.ports,
            BTreeMap::from([(80, Some(41000)), (443, None)])
        );
        let json = serde_json::to_value(ActionReport::new(create)).unwrap();
        assert!(json["ports"]["443"].is_null());
    }

    #[test]
    fn another_workspaces_volume_is_never_mounted() {
        let d = desired(&[("a", "a"), ("b", "b")], CFG);
        let o = Observed {
            containers: vec![web(&d, "a", "a", CFG)],
            networks: vec![network(&d, "a"), network(&d, "b")],
            volumes: vec![volume(&d, "a", "a", "a-data")],
        };
        let s = steps(&d, &o, &Memory::new());
        let create_b = s
            .iter()
            .find(|s| matches!(&s.action, Action::CreateContainer { workspace, .. } if workspace == "b"))
            .unwrap();
        assert_eq!(create_b.volumes["data"], "v-b-web-data");
        let vol_b = s
            .iter()
            .find(
                |s| matches!(&s.action, Action::CreateVolume { workspace, .. } if workspace == "b"),
            )
            .unwrap();
        assert_eq!(vol_b.object, "v-b-web-data");
    }

    #[test]
    fn a_renamed_workspace_keeps_its_volume_and_old_names_ports() {
        // Workspace "old" was renamed to "new" at the same root.
        let d = desired(&[("new", "w")], CFG);
        let mut c = web(&d, "new", "old", CFG);
        c.ports.clear();
        let o = Observed {
            containers: vec![c],
            networks: vec![],
            volumes: vec![volume(&d, "new", "old", "old-data")],
        };
        let memory = Memory::from([(
            "old".to_string(),
            PortMap::from([(
                "web".to_string(),
                BTreeMap::from([(80, 42000), (443, 42443)]),
            )]),
        )]);
        let s = steps(&d, &o, &memory);
        assert!(s
            .iter()
            .any(|s| matches!(&s.action, Action::AdoptWorkspace { from, .. } if from == "old")));
        let recreate = s
            .iter()
            .find(|s| {
                matches!(
                    s.action,
                    Action::RecreateContainer {
                        reason: Reason::Renamed,
                        ..
                    }
                )
            })
            .unwrap();
        assert_eq!(recreate.volumes["data"], "old-data");
        assert_eq!(
            recreate.ports,
            BTreeMap::from([(80, Some(42000)), (443, Some(42443))])
        );
        assert_eq!(recreate.object, "c-new-web");
        assert_eq!(recreate.changed, None, "a rename is not a drift");
    }

    #[test]
    fn the_report_keeps_the_fields_published_before_steps() {
        let d = desired(&[("w", "w")], CFG);
        let s = steps(&d, &Observed::default(), &Memory::new());
        let net = s
            .iter()
            .find(|s| matches!(s.action, Action::CreateNetwork { .. }))
            .unwrap();
        assert_eq!(
            serde_json::to_value(ActionReport::new(net)).unwrap(),
            serde_json::json!({"action": "create_network", "workspace": "w", "object": "n-w"})
        );
        let vol = s
            .iter()
            .find(|s| matches!(s.action, Action::CreateVolume { .. }))
            .unwrap();
        assert_eq!(
            serde_json::to_value(ActionReport::new(vol)).unwrap(),
            serde_json::json!({"action": "create_volume", "workspace": "w", "service": "web",
                               "volume": "data", "object": "v-w-web-data"})
        );
    }
}
