//! The JSON shapes agents read. Fields may be added; none may be renamed.

use super::plan::{Action, Reason};
use super::steps::Step;
use crate::backend::{Observed, ServiceState};
use crate::model::config::Config;
use crate::model::context::{self, OwnPorts, PortMap};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct WorkspaceReport {
    pub schema_version: u32,
    pub name: String,
    pub workspace_root: String,
    pub backend: String,
    /// `ssh://user@host:port` for a remote backend, else null.
    pub remote_host: Option<String>,
    pub env_file: String,
    pub resources: BTreeMap<String, Resource>,
    pub variables: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Images this command built (`build:` services), by tag.
    pub images_built: Vec<String>,
    /// `[ports]`: name → the port of 127.0.0.1 reserved for it.
    pub ports: BTreeMap<String, u16>,
}

#[derive(Debug, Serialize)]
pub struct Resource {
    pub service: String,
    pub image: String,
    /// `running`, `exited`, `created`, `restarting`, `paused`, `dead`, or `missing`.
    pub state: String,
    pub health: Option<String>,
    /// False when the container was made from an older aether.toml.
    pub config_current: bool,
    pub container: Option<String>,
    pub host: String,
    pub internal_port: Option<u16>,
    pub external_port: Option<u16>,
    /// Every published port: container port → host port.
    pub ports: BTreeMap<String, u16>,
    /// On a remote backend, the port the engine published on the remote's
    /// 127.0.0.1 (forwarded from `external_port` while `ajj run` runs); null locally.
    pub remote_port: Option<u16>,
    /// Container port → port on the remote host; empty locally.
    pub remote_ports: BTreeMap<String, u16>,
    pub connection_string: Option<String>,
}

pub fn state_name(s: ServiceState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| "unknown".into())
}

#[allow(clippy::too_many_arguments)]
pub fn workspace_report(
    name: &str,
    root: &Path,
    config: &Config,
    observed: &Observed,
    ports: &PortMap,
    own: &OwnPorts,
    backend: &str,
    host: &str,
    remote_host: Option<String>,
    warnings: Vec<String>,
) -> WorkspaceReport {
    // A live container's label says what it really publishes; recorded
    // ports cover a service whose container is missing.
    let mut live_ports = PortMap::new();
    for svc_name in config.services.keys() {
        let container = observed
            .containers
            .iter()
            .find(|c| c.workspace == name && &c.service == svc_name);
        let known = container
            .map(|c| c.ports.clone())
            .filter(|p| !p.is_empty())
            .or_else(|| ports.get(svc_name).cloned());
        if let Some(p) = known {
            live_ports.insert(svc_name.clone(), p);
        }
    }
    let mut resources = BTreeMap::new();
    for (svc_name, svc) in &config.services {
        let container = observed
            .containers
            .iter()
            .find(|c| c.workspace == name && &c.service == svc_name);
        let svc_ports = live_ports.get(svc_name).cloned().unwrap_or_default();
        let internal = svc.spec.ports.first().copied();
        let remote_ports: BTreeMap<u16, u16> = match (&remote_host, container) {
            (Some(_), Some(c)) => c.published.clone(),
            _ => BTreeMap::new(),
        };
        resources.insert(
            svc_name.clone(),
            Resource {
                service: svc_name.clone(),
                image: svc.spec.image.clone(),
                state: container.map_or_else(|| "missing".to_string(), |c| state_name(c.state)),
                health: container.and_then(|c| c.health.clone()),
                config_current: container.is_some_and(|c| c.config_hash == svc.spec.config_hash()),
                container: container.map(|c| c.name.clone()),
                host: host.to_string(),
                internal_port: internal,
                external_port: internal.and_then(|p| svc_ports.get(&p).copied()),
                ports: svc_ports.iter().map(|(c, h)| (c.to_string(), *h)).collect(),
                remote_port: internal.and_then(|p| remote_ports.get(&p).copied()),
                remote_ports: remote_ports
                    .iter()
                    .map(|(c, h)| (c.to_string(), *h))
                    .collect(),
                connection_string: context::connection_string(svc, host, &svc_ports, name),
            },
        );
    }
    let variables = context::variables(config, name, host, &live_ports, own).unwrap_or_default();
    let own: OwnPorts = own
        .iter()
        .filter(|(n, _)| config.ports.contains_key(*n))
        .map(|(n, p)| (n.clone(), *p))
        .collect();
    WorkspaceReport {
        schema_version: SCHEMA_VERSION,
        name: name.to_string(),
        workspace_root: root.display().to_string(),
        backend: backend.to_string(),
        remote_host,
        env_file: root
            .join(crate::model::envfile::FILE_NAME)
            .display()
            .to_string(),
        resources,
        variables,
        warnings,
        images_built: Vec::new(),
        ports: own,
    }
}

/// The human rendering of a workspace report.
pub fn print_human(r: &WorkspaceReport) {
    match &r.remote_host {
        Some(host) => println!("{} ({} {host}) {}", r.name, r.backend, r.workspace_root),
        None => println!("{} ({}) {}", r.name, r.backend, r.workspace_root),
    }
    if r.resources.is_empty() && r.ports.is_empty() {
        println!("  no services declared (aether.toml)");
    }
    for (name, port) in &r.ports {
        println!(
            "  {:<12} {:<10} 127.0.0.1:{port} ({})",
            name,
            "port",
            crate::model::config::own_port_var(name)
        );
    }
    for res in r.resources.values() {
        let health = res
            .health
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let drift = if res.config_current || res.state == "missing" {
            ""
        } else {
            " [config changed]"
        };
        let ports: Vec<String> = res
            .ports
            .iter()
            .map(|(c, h)| match res.remote_ports.get(c) {
                Some(r) => format!("{}:{h}=>remote:{r}->{c}", res.host),
                None => format!("{}:{h}->{c}", res.host),
            })
            .collect();
        println!(
            "  {:<12} {:<10}{health}{drift} {}",
            res.service,
            res.state,
            ports.join(" ")
        );
        if let Some(url) = &res.connection_string {
            println!("  {:<12} {url}", "");
        }
    }
    if !r.resources.is_empty() && r.resources.values().all(|res| res.state == "missing") {
        println!(
            "  no environment yet: `ajj reconcile` creates it (new workspaces get theirs from `ajj workspace add`)"
        );
    }
}

/// One action as `ajj reconcile --json` (`--dry-run` included) and the
/// `action` events of `ajj watch --json` report it. A published shape, kept
/// apart from the planner's own types so that renaming one of those never
/// changes it. Fields absent for an action are left out.
#[derive(Debug, Serialize, PartialEq)]
pub struct ActionReport<'a> {
    /// `adopt_workspace`, `create_network`, `create_volume`,
    /// `create_container`, `recreate_container`, `start_container`,
    /// `remove_container`, `remove_volume`, `keep_volume`, `reclaim_volume`,
    /// `remove_network`.
    pub action: &'static str,
    pub workspace: &'a str,
    /// The old name of a renamed workspace (`adopt_workspace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a str>,
    /// The container acted on: the one replaced, started or removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a str>,
    /// The volume's name in aether.toml (`create_volume`), or the backend's
    /// volume (`remove_volume`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<&'a str>,
    /// The network's id (`remove_network`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<&'a str>,
    /// `missing`, `drifted`, `stopped`, `workspace_gone`, `service_removed`,
    /// `duplicate`, `renamed`, `expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The backend's name of what the action makes or acts on: the new
    /// container of a create or recreate, the volume, the network.
    pub object: &'a str,
    /// Container port → the host port it will bind: the sticky one, or null
    /// for a new pick (creates, recreates and starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeMap<String, Option<u16>>>,
    /// Volume in aether.toml → the backend's volume mounted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<&'a BTreeMap<String, String>>,
    /// For a `drifted` recreate: the fields of the service that changed
    /// (`image`, `env.GREETING`, `volumes.data`, `healthcheck` …); null when
    /// the old container predates the record of its fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Option<&'a Vec<String>>>,
    /// For `keep_volume`: when the retention window ends (RFC 3339, UTC);
    /// the volume is deleted by the first pass after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<String>,
}

impl<'a> ActionReport<'a> {
    pub fn new(step: &'a Step) -> Self {
        let (action, names) = names(&step.action);
        let starts = matches!(
            step.action,
            Action::CreateContainer { .. }
                | Action::RecreateContainer { .. }
                | Action::StartContainer { .. }
        );
        let drifted = matches!(
            step.action,
            Action::RecreateContainer {
                reason: Reason::Drifted,
                ..
            }
        );
        ActionReport {
            action,
            workspace: step.action.workspace(),
            from: names.from,
            service: names.service,
            container: names.container,
            volume: names.volume,
            network: names.network,
            reason: names.reason,
            object: &step.object,
            ports: starts.then(|| {
                step.ports
                    .iter()
                    .map(|(c, h)| (c.to_string(), *h))
                    .collect()
            }),
            volumes: (starts && !step.volumes.is_empty()).then_some(&step.volumes),
            changed: drifted.then_some(step.changed.as_ref()),
            kept_until: match step.action {
                Action::KeepVolume { until, .. } => Some(super::plan::rfc3339(until)),
                _ => None,
            },
        }
    }
}

/// The names an action carries, each where the report has a field for it.
#[derive(Default)]
struct Names<'a> {
    from: Option<&'a str>,
    service: Option<&'a str>,
    container: Option<&'a str>,
    volume: Option<&'a str>,
    network: Option<&'a str>,
    reason: Option<Reason>,
}

fn names(action: &Action) -> (&'static str, Names<'_>) {
    let mut n = Names::default();
    let kind = match action {
        Action::AdoptWorkspace { from, .. } => {
            n.from = Some(from.as_str());
            "adopt_workspace"
        }
        Action::CreateNetwork { .. } => "create_network",
        Action::CreateVolume {
            service, volume, ..
        } => {
            (n.service, n.volume) = (Some(service.as_str()), Some(volume.as_str()));
            "create_volume"
        }
        Action::CreateContainer {
            service, reason, ..
        } => {
            (n.service, n.reason) = (Some(service.as_str()), Some(*reason));
            "create_container"
        }
        Action::RecreateContainer {
            service,
            container,
            reason,
            ..
        }
        | Action::StartContainer {
            service,
            container,
            reason,
            ..
        }
        | Action::RemoveContainer {
            service,
            container,
            reason,
            ..
        } => {
            (n.service, n.container, n.reason) = (
                Some(service.as_str()),
                Some(container.as_str()),
                Some(*reason),
            );
            match action {
                Action::RecreateContainer { .. } => "recreate_container",
                Action::StartContainer { .. } => "start_container",
                _ => "remove_container",
            }
        }
        Action::RemoveVolume { volume, reason, .. } => {
            (n.volume, n.reason) = (Some(volume.as_str()), Some(*reason));
            "remove_volume"
        }
        Action::KeepVolume { volume, .. } => {
            n.volume = Some(volume.as_str());
            "keep_volume"
        }
        Action::ReclaimVolume { volume, .. } => {
            n.volume = Some(volume.as_str());
            "reclaim_volume"
        }
        Action::RemoveNetwork {
            network, reason, ..
        } => {
            (n.network, n.reason) = (Some(network.as_str()), Some(*reason));
            "remove_network"
        }
    };
    (kind, n)
}

/// One line for humans: the action, and for a drift what changed.
pub fn describe(step: &Step) -> String {
    let line = step.action.describe();
    match &step.changed {
        Some(fields) if !fields.is_empty() => format!("{line}: {}", fields.join(", ")),
        _ => line,
    }
}
