//! The backend seam. The reconciler speaks only this interface; local Docker
//! implements it today, remote Docker over SSH and a Kubernetes namespace are
//! meant to implement it next. A backend stores the identity of every object
//! it creates in labels (see [`labels`]) so that observing is a pure read.

pub mod connect;
pub mod docker;
pub mod engine;
pub mod error;
#[cfg(test)]
pub mod memory;
pub mod meta;
pub mod ports;
pub mod readiness;
pub mod ssh;
pub mod subnets;

use crate::model::config::ServiceSpec;
pub use error::{BackendError, Fault, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A workspace as a backend names and labels its objects: by name and root.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceRef<'a> {
    pub name: &'a str,
    pub root: &'a Path,
}

pub mod labels {
    pub const REPO: &str = "dev.aether.repo";
    pub const WORKSPACE: &str = "dev.aether.workspace";
    pub const SERVICE: &str = "dev.aether.service";
    pub const CONFIG_HASH: &str = "dev.aether.config-hash";
    /// `{"image":"…","env.GREETING":"…"}`: a digest per field of the spec, so
    /// a drift names the fields that changed (`ServiceSpec::field_digests`).
    pub const CONFIG_FIELDS: &str = "dev.aether.config-fields";
    /// `5432=49152,8080=49153`: the published ports, readable from a list call.
    pub const PORTS: &str = "dev.aether.ports";
    pub const VOLUME: &str = "dev.aether.volume";
    /// The workspace root the object was made for: a renamed workspace keeps
    /// its root, so its objects are found again under the new name.
    pub const ROOT: &str = "dev.aether.root";
    /// The workspace's name, on objects whose `workspace` label could not
    /// hold it (see `meta::workspace_label`).
    pub const WORKSPACE_NAME: &str = "dev.aether.workspace-name";
    /// Comma-separated `key=value` labels added to every object (CI sweeping).
    pub const EXTRA_ENV: &str = "AETHER_EXTRA_LABELS";
}

/// A service's state in words every backend can say. Docker's container
/// states map one to one; a Kubernetes backend would map a pod's container
/// state: waiting (ContainerCreating) → `Created`, running → `Running`,
/// waiting (CrashLoopBackOff) → `Restarting`, terminated → `Exited` (the
/// exit code is in [`LiveStatus`]), a pod being deleted → `Removing`.
/// `Paused` and `Dead` have no Kubernetes counterpart. An absent service is
/// no observed object at all (reported as `missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Made, never started (or not yet).
    Created,
    Running,
    /// The engine is restarting it after an exit (its own backoff).
    Restarting,
    /// Paused by the user.
    Paused,
    /// Stopped, with an exit code.
    Exited,
    /// Failed beyond restarting (a removal that went wrong).
    Dead,
    Removing,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub workspace: String,
    pub service: String,
    pub config_hash: String,
    /// Field → digest, from the config-fields label; empty on containers
    /// made before Aether recorded it.
    pub config_fields: BTreeMap<String, String>,
    pub state: ServiceState,
    /// `healthy`, `unhealthy`, `starting`, or `None` without a healthcheck.
    pub health: Option<String>,
    /// How an exited container ended, when the listing says.
    pub exit_code: Option<i64>,
    /// container port → the port clients use (`.env`), from the ports label.
    pub ports: BTreeMap<u16, u16>,
    /// container port → the port the engine published on its own host's
    /// 127.0.0.1. Equal to `ports` locally; on a remote host the engine
    /// picks it, and `ajj run` forwards `ports` to it.
    pub published: BTreeMap<u16, u16>,
    /// IDs of the networks it is attached to.
    pub networks: Vec<String>,
    /// The root label; `None` on objects made before Aether recorded it.
    pub root: Option<PathBuf>,
}

/// A network or volume. `service` and `volume` are empty for networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedObject {
    /// The engine's id (for volumes, the name). Names can repeat: engines
    /// before 25 accept two networks of one name.
    pub id: String,
    pub name: String,
    /// Creation time, RFC 3339.
    pub created: String,
    pub workspace: String,
    pub service: String,
    pub volume: String,
    pub root: Option<PathBuf>,
}

/// Everything of one repo that a backend holds, found by label.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<ObservedObject>,
    pub volumes: Vec<ObservedObject>,
}

impl Observed {
    /// Both observations, each object once (by id).
    pub fn union(mut self, other: Observed) -> Observed {
        let mut seen: std::collections::HashSet<String> = self
            .containers
            .iter()
            .map(|c| c.id.clone())
            .chain(self.networks.iter().map(|n| n.id.clone()))
            .chain(self.volumes.iter().map(|v| format!("volume:{}", v.id)))
            .collect();
        for c in other.containers {
            if seen.insert(c.id.clone()) {
                self.containers.push(c);
            }
        }
        for n in other.networks {
            if seen.insert(n.id.clone()) {
                self.networks.push(n);
            }
        }
        for v in other.volumes {
            if seen.insert(format!("volume:{}", v.id)) {
                self.volumes.push(v);
            }
        }
        self
    }
}

/// What the reconciler asks a backend to run.
#[derive(Debug, Clone)]
pub struct ContainerRequest {
    pub workspace: String,
    pub root: PathBuf,
    pub service: String,
    pub spec: ServiceSpec,
    /// container port → host port
    pub ports: BTreeMap<u16, u16>,
    /// The workspace network's id, from `ensure_network`.
    pub network_id: String,
    /// Volume name in aether.toml → the backend's volume. A renamed
    /// workspace's volumes keep their old names, so this is not derived.
    pub volumes: BTreeMap<String, String>,
}

impl ContainerRequest {
    pub fn owner(&self) -> WorkspaceRef<'_> {
        WorkspaceRef {
            name: &self.workspace,
            root: &self.root,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LiveStatus {
    pub state: ServiceState,
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    /// The container's own address, when this machine can route to it
    /// (local Docker on Linux). Readiness then connects past the proxy.
    pub direct_ip: Option<std::net::IpAddr>,
    /// container port → port published on the engine's host.
    pub published: BTreeMap<u16, u16>,
}

/// What a command run in a container printed, and how it ended. Each
/// stream keeps at most the limit asked for; what went past it is counted
/// and flagged, never silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

impl ExecOutput {
    /// Appends to one stream, keeping at most `limit` bytes of it.
    pub fn push(&mut self, stderr: bool, bytes: &[u8], limit: usize) {
        let (buf, cut) = if stderr {
            (&mut self.stderr, &mut self.stderr_truncated)
        } else {
            (&mut self.stdout, &mut self.stdout_truncated)
        };
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
        *cut |= bytes.len() > room;
    }
}

/// A command started in a container with its stdin attached, streaming
/// its output as it comes ([`Backend::exec_attached`]).
pub struct ExecSession {
    /// The backend's handle on the running command (resize, exit code).
    pub id: String,
    /// (is stderr, bytes); with a TTY everything arrives as stdout.
    pub output: futures_util::stream::BoxStream<'static, Result<(bool, Vec<u8>)>>,
    /// The command's stdin; shutting it down closes the command's stdin.
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// Which of a container's log lines to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogQuery {
    /// Only the last N lines (every line when `None`).
    pub tail: Option<usize>,
    /// Only lines written at or after this Unix time (seconds).
    pub since: Option<i64>,
    /// Keep the stream open for new lines until the container stops.
    pub follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line a container wrote, stamped by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// When the engine received it, RFC 3339 UTC with nanoseconds.
    pub ts: String,
    /// The same instant in nanoseconds since the Unix epoch, for ordering.
    pub nanos: i128,
    pub line: String,
}

/// Something that happened to one of the repo's containers, pushed by the
/// backend. The watcher only uses it as a reason to run a pass (and to
/// notice crash loops); the pass itself re-reads everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEvent {
    pub workspace: String,
    pub service: String,
    pub container: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Died { exit_code: Option<i64> },
    Removed,
}

/// How a client port on this machine reaches a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortModel {
    /// The engine binds the client port itself, on this machine's
    /// 127.0.0.1 (local Docker).
    Published,
    /// The client port is reserved here and forwarded to the port the
    /// engine published on its own host's 127.0.0.1 (Docker over SSH).
    ForwardedToHost,
    /// The client port is reserved here and forwarded to a cluster
    /// Service's port (Kubernetes).
    #[allow(dead_code)] // the Kubernetes backend's, which is not built yet
    ForwardedToService,
}

/// One forward: 127.0.0.1:`local` here → the port `remote` where the
/// backend serves it (the engine's published port on a remote host; a
/// Service port in a cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// What it reaches, for messages: `db`, or `web:443` for a second port.
    pub name: String,
    pub local: u16,
    pub remote: u16,
}

/// Open forwards; they close when this is closed or dropped with the process.
pub trait Forwarding {
    /// Whether the connection under the forwards was lost while they were open.
    fn lost(&self) -> bool;
    /// Stops listening now; connections in flight finish on their own.
    fn close(&self);
}

/// How a backend names objects: pure, so the planner decides every name.
pub trait Naming {
    /// The name the backend gives a service's container.
    fn container_name(&self, ws: WorkspaceRef<'_>, service: &str) -> String;
    /// The name of a workspace's isolation unit (a Docker network; a
    /// Kubernetes namespace).
    fn network_name(&self, ws: WorkspaceRef<'_>) -> String;
    /// The name of a new volume; existing ones keep theirs.
    fn volume_name(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> String;
}

/// How workspace networks stand on an engine (`ajj doctor`).
#[derive(Debug, Clone, Default)]
pub struct Isolation {
    /// The blocks of the ranges Aether allocates from: `None` when the
    /// engine chooses (`AETHER_NETWORK_POOL=engine`).
    pub census: Option<subnets::Census>,
    /// Those ranges, named for a person.
    pub ranges: String,
    /// This repo's workspace networks that a host route overlaps: (workspace, subnet, route).
    pub conflicts: Vec<(String, String, String)>,
}

/// Implemented by each place Aether can run services.
#[allow(async_fn_in_trait)]
pub trait Backend: Naming {
    /// Stable name reported as `backend` in JSON.
    fn kind(&self) -> &'static str;
    /// Which engine this is (`docker-local`, `ssh://user@host:port`):
    /// recorded with each workspace, so that a command aimed at another
    /// backend never takes its environment for missing.
    fn id(&self) -> String;
    /// The remote host, for backends that have one.
    fn remote_host(&self) -> Option<String> {
        None
    }
    /// Host that clients use to reach published ports.
    fn client_host(&self) -> &str;
    /// How clients reach the services' ports.
    fn port_model(&self) -> PortModel {
        PortModel::Published
    }
    /// True when client ports are only reserved here (in the user's ledger)
    /// and forwarded while `ajj run` or `ajj tunnel` runs.
    fn forwards_ports(&self) -> bool {
        self.port_model() != PortModel::Published
    }
    /// Whether something serves `container_port` of a running container,
    /// whose clients use `client_port`. Readiness polls this.
    async fn serving(&self, live: &LiveStatus, container_port: u16, client_port: u16) -> bool;
    /// Whether the engine answers. `Unreachable` tells the watcher to wait
    /// and reconnect; any other answer means it is there.
    async fn ping(&self) -> Result<()>;
    /// The engine and its version, for `ajj doctor`.
    async fn engine_version(&self) -> Result<String>;
    /// Whether an image is here already (no pull).
    async fn image_present(&self, image: &str) -> Result<bool>;
    /// How the isolation units stand (free and total address blocks,
    /// networks a host route now overlaps): `None` where there is no such
    /// limit (a cluster's namespaces).
    async fn isolation_capacity(&self) -> Result<Option<Isolation>> {
        Ok(None)
    }
    /// All objects of the repo, or of one workspace: one list per object kind.
    async fn observe(&self, workspace: Option<&str>) -> Result<Observed>;
    /// What converging one workspace may act on: the objects labelled with
    /// its name, and those made for its root (a rename leaves the old name
    /// on them). The plan scopes what it is given again, so more is
    /// harmless; the point is not listing every workspace's objects once
    /// per workspace in a pass that creates many.
    async fn observe_for(&self, name: &str, root: Option<&Path>) -> Result<Observed>;
    async fn ensure_image(&self, image: &str) -> Result<()>;
    /// Builds `spec` into `spec.tag` where the containers run (the context
    /// goes to the engine), labelled as this repo's; each line of the
    /// builder's output goes to `log`. A failure is `IMAGE_BUILD_FAILED`
    /// with the step and the last lines; the engine keeps no half image.
    async fn build_image(
        &self,
        spec: &crate::model::compose::build::BuildSpec,
        log: &dyn Fn(&str),
    ) -> Result<()>;
    /// The images this repo built: (id, tags).
    async fn built_images(&self) -> Result<Vec<(String, Vec<String>)>>;
    /// Removes an image; one still used by a container stays (no error).
    async fn remove_image(&self, id: &str) -> Result<()>;
    /// The workspace's network, created if missing, with room for
    /// `services` containers; returns its id.
    async fn ensure_network(&self, ws: WorkspaceRef<'_>, services: usize) -> Result<String>;
    async fn ensure_volume(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> Result<()>;
    /// Creates and starts the container; when it fails, nothing is left
    /// behind. `PortTaken`: pick another port. `Conflict`: the workspace's
    /// network resolves to twins (see `plan::network_twins`). A container of
    /// this repo's workspace and service already holding the name (a create
    /// finished for a process killed since) is replaced; anyone else's is a
    /// `Conflict` and never touched.
    async fn create_and_start(&self, req: &ContainerRequest) -> Result<()>;
    /// `NotFound`: it vanished since it was observed. `PortTaken`: someone
    /// took its port while it was stopped.
    async fn start(&self, container: &str) -> Result<()>;
    /// Stops gracefully within `grace` (kills at once when `None`) and removes.
    async fn remove_container(&self, container: &str, grace: Option<Duration>) -> Result<()>;
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// Removes a network by id (or by name when unambiguous).
    async fn remove_network(&self, id: &str) -> Result<()>;
    /// The containers made for the workspace at `root`, by its root label:
    /// what `ajj run` and `ajj tunnel` forward to.
    async fn containers_at(&self, root: &Path) -> Result<Vec<ObservedContainer>>;
    /// Listens on each `local` port here and carries connections to
    /// `remote`, until closed. `on_lost` runs once, from another thread, if
    /// the connection under them dies. `None` on backends that publish
    /// client ports here themselves.
    fn open_forwards(
        &self,
        _forwards: &[Forward],
        _on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<Option<Box<dyn Forwarding>>> {
        Ok(None)
    }
    /// Requests made to the engine so far (`AETHER_LOG=debug` reports them).
    fn api_calls(&self) -> usize {
        0
    }
    /// A hint: an isolation unit is likely to be made soon (an add is
    /// starting). A backend may begin reading, in the background, what
    /// choosing its addresses needs, so that the creation does not wait
    /// for it (on a remote host, the host's routes cost an SSH session).
    /// Changes nothing; the default does nothing.
    fn expect_new_isolation(&self) {}
    async fn live_status(&self, container: &str) -> Result<LiveStatus>;
    /// Waits until the service really serves (its healthcheck, else every
    /// port held open by a listener), or fails with SERVICE_EXITED or
    /// READINESS_TIMEOUT. What "serves" means is the backend's to say, so
    /// readiness is behind the seam; the default polls `live_status` and
    /// `serving`.
    async fn wait_ready(&self, target: &readiness::Target<'_>) -> crate::base::error::Result<()>
    where
        Self: Sized,
    {
        readiness::wait_ready(self, target).await
    }
    /// The last `lines` lines a container wrote (stdout and stderr), or
    /// empty when they cannot be read: for messages, never for decisions.
    async fn logs_tail(&self, container: &str, lines: usize) -> String;
    /// Runs `argv` in a running container without a shell and collects its
    /// output (at most `limit` bytes of each stream) and exit code
    /// (`NotFound` when the container is gone).
    async fn exec(&self, container: &str, argv: &[String], limit: usize) -> Result<ExecOutput>;
    /// Starts `argv` with its stdin attached, on a TTY of `size` (columns,
    /// rows) when given; its output streams as it comes.
    async fn exec_attached(
        &self,
        container: &str,
        argv: &[String],
        tty: Option<(u16, u16)>,
    ) -> Result<ExecSession>;
    /// Tells an attached command's TTY its new size (columns, rows).
    async fn exec_resize(&self, exec_id: &str, size: (u16, u16)) -> Result<()>;
    /// The exit code of an attached command that has ended.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>>;
    /// A container's log lines, in the order it wrote them. With
    /// `follow`, the stream ends when the container stops.
    fn logs(
        &self,
        container: &str,
        query: LogQuery,
    ) -> futures_util::stream::LocalBoxStream<'_, Result<LogLine>>;
    /// The repo's container events, as they happen. Ends (or yields an
    /// error) when the connection to the backend is lost.
    fn events(&self) -> futures_util::stream::LocalBoxStream<'_, Result<BackendEvent>>;
}

/// Parses the ports label: `5432=49152,80=49153`.
pub fn parse_ports_label(text: &str) -> BTreeMap<u16, u16> {
    text.split(',')
        .filter_map(|pair| {
            let (c, h) = pair.split_once('=')?;
            Some((c.trim().parse().ok()?, h.trim().parse().ok()?))
        })
        .collect()
}

pub fn format_ports_label(ports: &BTreeMap<u16, u16>) -> String {
    ports
        .iter()
        .map(|(c, h)| format!("{c}={h}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Extra labels from `$AETHER_EXTRA_LABELS`, never overriding Aether's own.
pub fn extra_labels() -> Vec<(String, String)> {
    std::env::var(labels::EXTRA_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && !k.starts_with("dev.aether."))
                .then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The Docker container name of a workspace's service (what
/// `Naming::container_name` gives on the Docker backends), for commands
/// that show names without connecting (`ajj services`).
pub fn docker_container_name(repo_id: &str, workspace: &str, root: &Path, service: &str) -> String {
    format!(
        "aether-{}-{service}",
        crate::model::repo::object_key(repo_id, workspace, root)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_label_round_trips() {
        let ports = BTreeMap::from([(5432, 49152), (80, 1080)]);
        assert_eq!(parse_ports_label(&format_ports_label(&ports)), ports);
        assert!(parse_ports_label("").is_empty());
        assert_eq!(parse_ports_label("1=2,junk,3=x").len(), 1);
    }
}
