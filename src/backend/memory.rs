//! An in-memory backend for unit tests only: the seam's contracts kept in a
//! few maps, with faults to inject (the engine going away mid-pass, a port
//! taken, a name held by someone else, twin networks, a service that dies).
//! Integration tests use the real engine; this is for the logic above the
//! seam (apply, readiness, the watcher's decisions) without Docker.

use super::{
    Backend, BackendError, BackendEvent, ContainerRequest, EventKind, ExecOutput, ExecSession,
    Fault, LiveStatus, LogLine, LogQuery, LogStream, Naming, Observed, ObservedContainer,
    ObservedObject, Result, ServiceState, WorkspaceRef,
};
use futures_util::stream::{LocalBoxStream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Faults to inject; each is read on every call.
#[derive(Debug, Default)]
pub struct Faults {
    /// Calls that succeed before the engine becomes unreachable.
    pub reachable_calls: Option<usize>,
    /// Host ports someone else holds: a create binding one fails PortTaken.
    pub taken_ports: BTreeSet<u16>,
    /// Container names held by objects that are not this repo's.
    pub foreign_names: BTreeSet<String>,
    /// Services (by name) that exit with this code as soon as they start.
    pub dies: BTreeMap<String, i64>,
    /// Services that run but never serve their ports.
    pub never_serves: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct World {
    containers: BTreeMap<String, ObservedContainer>,
    networks: Vec<ObservedObject>,
    volumes: BTreeMap<String, ObservedObject>,
    next_id: usize,
    calls: usize,
    /// Every call made, in order (`create c-w-db`, `remove_network n1`).
    log: Vec<String>,
}

pub struct MemoryBackend {
    world: Mutex<World>,
    pub faults: Mutex<Faults>,
    events_tx: UnboundedSender<BackendEvent>,
    events_rx: Mutex<Option<UnboundedReceiver<BackendEvent>>>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        let (events_tx, rx) = unbounded_channel();
        MemoryBackend {
            world: Mutex::new(World::default()),
            faults: Mutex::new(Faults::default()),
            events_tx,
            events_rx: Mutex::new(Some(rx)),
        }
    }
}

impl MemoryBackend {
    /// Counts a call, failing it when the engine is "gone".
    fn call(&self, what: String) -> Result<()> {
        let mut w = self.world.lock().unwrap();
        w.calls += 1;
        let limit = self.faults.lock().unwrap().reachable_calls;
        if limit.is_some_and(|n| w.calls > n) {
            return Err(BackendError::new(
                Fault::Unreachable,
                "the in-memory engine is unreachable",
            ));
        }
        w.log.push(what);
        Ok(())
    }

    fn fresh_id(&self) -> String {
        let mut w = self.world.lock().unwrap();
        w.next_id += 1;
        format!("id{}", w.next_id)
    }

    /// The calls made so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.world.lock().unwrap().log.clone()
    }

    pub fn container(&self, name: &str) -> Option<ObservedContainer> {
        self.world.lock().unwrap().containers.get(name).cloned()
    }

    /// Adds a network of `ws` as a killed create would leave it: a twin.
    pub fn add_network(&self, ws: WorkspaceRef<'_>) -> String {
        let id = self.fresh_id();
        self.world.lock().unwrap().networks.push(ObservedObject {
            id: id.clone(),
            name: self.network_name(ws),
            created: format!("2026-01-01T00:00:{:02}Z", id.len()),
            workspace: ws.name.into(),
            root: Some(ws.root.to_path_buf()),
            ..Default::default()
        });
        id
    }

    /// Stops a running container with `code`, as a crash would, and says so
    /// on the event stream.
    pub fn kill(&self, name: &str, code: i64) {
        let mut w = self.world.lock().unwrap();
        if let Some(c) = w.containers.get_mut(name) {
            c.state = ServiceState::Exited;
            let _ = self.events_tx.send(BackendEvent {
                workspace: c.workspace.clone(),
                service: c.service.clone(),
                container: c.name.clone(),
                kind: EventKind::Died {
                    exit_code: Some(code),
                },
            });
        }
    }

    /// Makes the engine unreachable from now on, or reachable again.
    pub fn set_reachable(&self, reachable: bool) {
        let calls = self.world.lock().unwrap().calls;
        self.faults.lock().unwrap().reachable_calls = (!reachable).then_some(calls);
    }
}

impl Naming for MemoryBackend {
    fn container_name(&self, ws: WorkspaceRef<'_>, service: &str) -> String {
        format!("c-{}-{service}", ws.name)
    }
    fn network_name(&self, ws: WorkspaceRef<'_>) -> String {
        format!("n-{}", ws.name)
    }
    fn volume_name(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> String {
        format!("v-{}-{service}-{volume}", ws.name)
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn id(&self) -> String {
        "memory".into()
    }
    fn client_host(&self) -> &str {
        "127.0.0.1"
    }

    async fn serving(&self, live: &LiveStatus, container_port: u16, _client: u16) -> bool {
        let w = self.world.lock().unwrap();
        let never = &self.faults.lock().unwrap().never_serves;
        w.containers.values().any(|c| {
            c.published == live.published
                && c.ports.contains_key(&container_port)
                && !never.contains(&c.service)
        })
    }

    async fn ping(&self) -> Result<()> {
        self.call("ping".into())
    }

    async fn engine_version(&self) -> Result<String> {
        self.call("version".into())?;
        Ok("in-memory engine".into())
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        self.call(format!("image_present {image}"))?;
        Ok(!image.starts_with("missing/"))
    }

    async fn observe(&self, workspace: Option<&str>) -> Result<Observed> {
        self.call("observe".into())?;
        let w = self.world.lock().unwrap();
        let mine = |label: &str| workspace.is_none_or(|ws| ws == label);
        Ok(Observed {
            containers: w
                .containers
                .values()
                .filter(|c| mine(&c.workspace))
                .cloned()
                .collect(),
            networks: w
                .networks
                .iter()
                .filter(|n| mine(&n.workspace))
                .cloned()
                .collect(),
            volumes: w
                .volumes
                .values()
                .filter(|v| mine(&v.workspace))
                .cloned()
                .collect(),
        })
    }

    async fn observe_for(&self, name: &str, root: Option<&Path>) -> Result<Observed> {
        self.call(format!("observe_for {name}"))?;
        let w = self.world.lock().unwrap();
        let mine = |label: &str, r: Option<&PathBuf>| {
            label == name || (root.is_some() && r.map(PathBuf::as_path) == root)
        };
        Ok(Observed {
            containers: w
                .containers
                .values()
                .filter(|c| mine(&c.workspace, c.root.as_ref()))
                .cloned()
                .collect(),
            networks: w
                .networks
                .iter()
                .filter(|n| mine(&n.workspace, n.root.as_ref()))
                .cloned()
                .collect(),
            volumes: w
                .volumes
                .values()
                .filter(|v| mine(&v.workspace, v.root.as_ref()))
                .cloned()
                .collect(),
        })
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        self.call(format!("ensure_image {image}"))?;
        match image.starts_with("missing/") {
            true => Err(BackendError::new(
                Fault::ImageMissing,
                format!("image `{image}` not found"),
            )),
            false => Ok(()),
        }
    }

    async fn build_image(
        &self,
        spec: &crate::model::compose::build::BuildSpec,
        log: &dyn Fn(&str),
    ) -> Result<()> {
        self.call(format!("build_image {}", spec.tag))?;
        log("Step 1/1 : FROM scratch");
        Ok(())
    }

    async fn built_images(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.call("built_images".into())?;
        Ok(Vec::new())
    }

    async fn remove_image(&self, id: &str) -> Result<()> {
        self.call(format!("remove_image {id}"))?;
        Ok(())
    }

    async fn ensure_network(&self, ws: WorkspaceRef<'_>, _services: usize) -> Result<String> {
        self.call(format!("ensure_network {}", ws.name))?;
        let existing = self
            .world
            .lock()
            .unwrap()
            .networks
            .iter()
            .find(|n| n.workspace == ws.name)
            .map(|n| n.id.clone());
        Ok(existing.unwrap_or_else(|| self.add_network(ws)))
    }

    async fn ensure_volume(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> Result<()> {
        let name = self.volume_name(ws, service, volume);
        self.call(format!("ensure_volume {name}"))?;
        self.world
            .lock()
            .unwrap()
            .volumes
            .entry(name.clone())
            .or_insert(ObservedObject {
                id: name.clone(),
                name,
                workspace: ws.name.into(),
                service: service.into(),
                volume: volume.into(),
                root: Some(ws.root.to_path_buf()),
                ..Default::default()
            });
        Ok(())
    }

    async fn create_and_start(&self, req: &ContainerRequest) -> Result<()> {
        let name = self.container_name(req.owner(), &req.service);
        self.call(format!("create {name}"))?;
        let faults = self.faults.lock().unwrap();
        if faults.foreign_names.contains(&name) {
            return Err(BackendError::new(
                Fault::Conflict,
                format!(
                    "a container named {name} exists but does not carry this repo's Aether labels"
                ),
            ));
        }
        if let Some(p) = req.ports.values().find(|p| faults.taken_ports.contains(p)) {
            return Err(BackendError::new(
                Fault::PortTaken,
                format!("port {p} is already allocated"),
            ));
        }
        let dies = faults.dies.get(&req.service).copied();
        drop(faults);
        let mut w = self.world.lock().unwrap();
        let twins = w
            .networks
            .iter()
            .filter(|n| n.workspace == req.workspace)
            .count();
        if twins > 1 {
            return Err(BackendError::new(
                Fault::Conflict,
                format!("network {} is ambiguous", req.network_id),
            ));
        }
        w.next_id += 1;
        let id = format!("id{}", w.next_id);
        w.containers.insert(
            name.clone(),
            ObservedContainer {
                id,
                name: name.clone(),
                workspace: req.workspace.clone(),
                service: req.service.clone(),
                config_hash: req.spec.config_hash(),
                config_fields: req.spec.field_digests(),
                state: match dies {
                    Some(_) => ServiceState::Exited,
                    None => ServiceState::Running,
                },
                health: req.spec.healthcheck.as_ref().map(|_| "healthy".into()),
                exit_code: None,
                ports: req.ports.clone(),
                published: req.ports.clone(),
                networks: vec![req.network_id.clone()],
                root: Some(req.root.clone()),
            },
        );
        Ok(())
    }

    async fn start(&self, container: &str) -> Result<()> {
        self.call(format!("start {container}"))?;
        let taken = self.faults.lock().unwrap().taken_ports.clone();
        let mut w = self.world.lock().unwrap();
        let Some(c) = w.containers.get_mut(container) else {
            return Err(BackendError::new(
                Fault::NotFound,
                format!("no container {container}"),
            ));
        };
        if c.ports.values().any(|p| taken.contains(p)) {
            return Err(BackendError::new(
                Fault::PortTaken,
                "port is already allocated",
            ));
        }
        c.state = ServiceState::Running;
        Ok(())
    }

    async fn remove_container(&self, container: &str, _grace: Option<Duration>) -> Result<()> {
        self.call(format!("remove_container {container}"))?;
        if let Some(c) = self.world.lock().unwrap().containers.remove(container) {
            let _ = self.events_tx.send(BackendEvent {
                workspace: c.workspace,
                service: c.service,
                container: c.name,
                kind: EventKind::Removed,
            });
        }
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.call(format!("remove_volume {name}"))?;
        self.world.lock().unwrap().volumes.remove(name);
        Ok(())
    }

    async fn remove_network(&self, id: &str) -> Result<()> {
        self.call(format!("remove_network {id}"))?;
        self.world.lock().unwrap().networks.retain(|n| n.id != id);
        Ok(())
    }

    async fn containers_at(&self, root: &Path) -> Result<Vec<ObservedContainer>> {
        self.call("containers_at".into())?;
        let w = self.world.lock().unwrap();
        Ok(w.containers
            .values()
            .filter(|c| c.root.as_deref() == Some(root))
            .cloned()
            .collect())
    }

    async fn live_status(&self, container: &str) -> Result<LiveStatus> {
        self.call(format!("live_status {container}"))?;
        let w = self.world.lock().unwrap();
        let Some(c) = w.containers.get(container) else {
            return Err(BackendError::new(
                Fault::NotFound,
                format!("no container {container}"),
            ));
        };
        let dies = self.faults.lock().unwrap().dies.get(&c.service).copied();
        Ok(LiveStatus {
            state: c.state,
            health: c.health.clone(),
            exit_code: dies,
            direct_ip: None,
            published: c.published.clone(),
        })
    }

    async fn logs_tail(&self, container: &str, _lines: usize) -> String {
        format!("last words of {container}\n")
    }

    async fn exec(&self, container: &str, argv: &[String], limit: usize) -> Result<ExecOutput> {
        self.call(format!("exec {container} {}", argv.join(" ")))?;
        if !self
            .world
            .lock()
            .unwrap()
            .containers
            .contains_key(container)
        {
            return Err(BackendError::new(
                Fault::NotFound,
                format!("no container {container}"),
            ));
        }
        let mut out = ExecOutput {
            exit_code: Some(0),
            ..Default::default()
        };
        out.push(false, argv.join(" ").as_bytes(), limit);
        Ok(out)
    }

    async fn exec_attached(
        &self,
        container: &str,
        _argv: &[String],
        _tty: Option<(u16, u16)>,
    ) -> Result<ExecSession> {
        Err(BackendError::new(
            Fault::Failed,
            format!("the in-memory backend attaches to nothing ({container})"),
        ))
    }

    async fn exec_resize(&self, _exec_id: &str, _size: (u16, u16)) -> Result<()> {
        Ok(())
    }

    async fn exec_exit_code(&self, _exec_id: &str) -> Result<Option<i64>> {
        Ok(Some(0))
    }

    fn logs(&self, container: &str, _query: LogQuery) -> LocalBoxStream<'_, Result<LogLine>> {
        let line = LogLine {
            stream: LogStream::Stdout,
            ts: "1970-01-01T00:00:00Z".into(),
            nanos: 0,
            line: format!("last words of {container}"),
        };
        futures_util::stream::iter([Ok(line)]).boxed_local()
    }

    fn events(&self) -> LocalBoxStream<'_, Result<BackendEvent>> {
        match self.events_rx.lock().unwrap().take() {
            Some(rx) => tokio_stream_from(rx).map(Ok).boxed_local(),
            None => futures_util::stream::empty().boxed_local(),
        }
    }
}

fn tokio_stream_from(
    mut rx: UnboundedReceiver<BackendEvent>,
) -> impl futures_util::Stream<Item = BackendEvent> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
