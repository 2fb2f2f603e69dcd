//! Docker Engine backend, through bollard: the local engine, or one on a
//! remote host whose socket an SSH ControlMaster forwards to a local unix
//! socket (see `crate::backend::ssh`). The two differ only where noted: the remote
//! engine picks the host ports it publishes (on its own 127.0.0.1), and
//! clients reach them through forwards from ports reserved here.

use super::meta;
use super::{
    labels, parse_ports_label, Backend, BackendEvent, ContainerRequest, EventKind, LiveStatus,
    Observed, ObservedContainer, ObservedObject, ServiceState, WorkspaceRef,
};
use super::{subnets, Isolation};
use super::{BackendError, ExecOutput, ExecSession, Fault, LogLine, LogQuery, LogStream, Result};
use crate::backend::engine::{Engine, Quirk};
use crate::backend::readiness;
use crate::backend::ssh::forward::Forwarder;
use crate::backend::ssh::{mux, Master};
use crate::backend::{Forward, Forwarding, Naming, PortModel};
use crate::base::error::{CommandError, ErrorCode, Result as CmdResult};
use crate::model::compose::build::{BuildSpec, BUILT_LABEL};
use crate::model::repo::object_key;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, EndpointSettings,
    HealthConfig, HealthStatusEnum, HostConfig, Ipam, IpamConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Docker 20.10's API. Pinned rather than negotiated: negotiation costs a
/// round trip on every command, and every newer engine still speaks 1.41.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};
const TIMEOUT_SECS: u64 = 120;

pub struct DockerBackend {
    docker: Docker,
    repo_id: String,
    /// Where the engine is (`DOCKER_HOST`), for error messages.
    docker_host: String,
    /// Where clients reach published ports.
    host: String,
    /// API calls made, reported at debug level: the scale benchmark counts them.
    calls: AtomicUsize,
    /// The SSH master, for an engine on another host.
    remote: Option<Master>,
    /// Docker or Podman, from the `/version` the connection made anyway.
    engine: Engine,
    /// Network blocks this process is creating now (see `create_network`).
    claimed_blocks: std::sync::Mutex<Vec<subnets::Cidr>>,
    /// The engine's subnets as last listed, and when: a pass creating many
    /// networks lists them once, not once per network (see
    /// `engine_subnets`).
    known_subnets: std::sync::Mutex<Option<(std::time::Instant, Vec<subnets::Cidr>)>>,
    /// Images seen present, and when: named by a container the engine
    /// listed, found by an inspection, or pulled. `ensure_image` asks no
    /// further within `PRESENT_IMAGE_TTL`; a create that finds one gone
    /// after all inspects (and pulls) then, and tries again.
    present_images: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// The remote host's routes and `daemon.json`, read in the background
    /// since `expect_new_isolation` (see `host_addressing`).
    prefetched_addressing: std::sync::Mutex<Option<Prefetch>>,
}

type Prefetch = (
    std::time::Instant,
    tokio::task::JoinHandle<(String, String)>,
);

/// How long an image seen present is taken as present without asking.
const PRESENT_IMAGE_TTL: Duration = Duration::from_secs(30);
/// How old a prefetched reading of the host's addressing may be when used.
const PREFETCH_TTL: Duration = Duration::from_secs(10);

/// How long a listing of the engine's subnets is reused. Staleness is safe
/// both ways: a network made since by someone else is refused by the engine
/// (and the list is read again), one removed since only skips a free block.
const KNOWN_SUBNETS_TTL: Duration = Duration::from_secs(5);

/// Who holds a container name that a create found taken.
enum NameHolder {
    Ours,
    Foreign,
    InFlight,
}

impl DockerBackend {
    /// Connects and agrees on an API version with one `/version` call:
    /// 1.41 wherever the engine still accepts it (the most tested), else the
    /// oldest the engine accepts (Docker 29 refuses anything below 1.44).
    pub async fn connect(repo_id: &str) -> CmdResult<Self> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let mut backend = DockerBackend {
            docker: client(&host, &API_VERSION, false)?,
            repo_id: repo_id.to_string(),
            docker_host: host.clone(),
            host: "127.0.0.1".into(),
            calls: AtomicUsize::new(1),
            remote: None,
            engine: Engine::Docker {
                version: String::new(),
            },
            claimed_blocks: Default::default(),
            known_subnets: Default::default(),
            present_images: Default::default(),
            prefetched_addressing: Default::default(),
        };
        backend.negotiate().await?;
        Ok(backend)
    }

    /// Docker on another host: starts (or reuses) the repo's SSH master and
    /// talks to the engine through the socket it forwards.
    pub async fn connect_remote(repo_id: &str, master: Master) -> CmdResult<Self> {
        let m = master.clone();
        tokio::task::spawn_blocking(move || m.ensure())
            .await
            .map_err(|e| {
                CommandError::new(ErrorCode::Internal, format!("ssh task failed: {e}"))
            })??;
        let socket = format!("unix://{}", master.docker_socket.display());
        let mut backend = DockerBackend {
            docker: client(&socket, &API_VERSION, true)?,
            repo_id: repo_id.to_string(),
            docker_host: master.target.to_string(),
            host: "127.0.0.1".into(),
            calls: AtomicUsize::new(1),
            remote: Some(master),
            engine: Engine::Docker {
                version: String::new(),
            },
            claimed_blocks: Default::default(),
            known_subnets: Default::default(),
            present_images: Default::default(),
            prefetched_addressing: Default::default(),
        };
        if let Err(e) = backend.negotiate().await {
            if e.code != ErrorCode::DockerUnreachable {
                return Err(e);
            }
            let m = backend.remote.clone().expect("remote");
            let cause = e.message.clone();
            let diagnosis = tokio::task::spawn_blocking(move || m.diagnose_docker(&cause))
                .await
                .map_err(|e| {
                    CommandError::new(ErrorCode::Internal, format!("ssh task failed: {e}"))
                })?;
            return Err(diagnosis);
        }
        Ok(backend)
    }

    async fn negotiate(&mut self) -> CmdResult<()> {
        let host = match &self.remote {
            Some(m) => format!("unix://{}", m.docker_socket.display()),
            None => self.docker_host.clone(),
        };
        let pooled = self.remote.is_some();
        let backend = self;
        if let Some(memo) = backend.remote.as_ref().and_then(|m| m.remembered()) {
            if let Some((engine, api)) = Engine::from_memo(&memo) {
                backend.engine = engine;
                if let Some((major_version, minor_version)) = api {
                    backend.docker = client(
                        &host,
                        &ClientVersion {
                            major_version,
                            minor_version,
                        },
                        pooled,
                    )?;
                }
                return Ok(());
            }
        }
        match backend.docker.version().await {
            Ok(v) => {
                backend.engine = Engine::from_version(&v);
                if let Some(m) = &backend.remote {
                    m.remember(backend.engine.memo(None));
                }
                Ok(())
            }
            Err(BollardError::DockerResponseServerError { message, .. })
                if refusal(&message) == Some(Refusal::ApiTooOld) =>
            {
                let minimum = minimum_api_version(&message).ok_or_else(|| {
                    CommandError::new(
                        ErrorCode::DockerError,
                        format!("the Docker Engine refused API 1.41: {message}"),
                    )
                })?;
                backend.docker = client(&host, &minimum, pooled)?;
                if let Some(m) = &backend.remote {
                    m.remember(
                        backend
                            .engine
                            .memo(Some((minimum.major_version, minimum.minor_version))),
                    );
                }
                Ok(())
            }
            Err(e) => Err(unreachable_error(&backend.docker_host, &e)),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Health from an inspection of each running container, for an engine
    /// whose container list leaves it out; all at once.
    async fn fill_health(&self, containers: &mut [ObservedContainer]) {
        let jobs = containers.iter().map(|c| async move {
            if c.state != ServiceState::Running || c.health.is_some() {
                return c.health.clone();
            }
            self.count();
            let info = self.inspect(&c.id).await.ok()?;
            let health = info.state?.health?.status?;
            match health {
                HealthStatusEnum::HEALTHY => Some("healthy".into()),
                HealthStatusEnum::UNHEALTHY => Some("unhealthy".into()),
                HealthStatusEnum::STARTING => Some("starting".into()),
                _ => None,
            }
        });
        let found = futures_util::future::join_all(jobs).await;
        for (c, health) in containers.iter_mut().zip(found) {
            c.health = health;
        }
    }

    /// One `GET` on the engine's Unix socket, for the few requests bollard
    /// cannot make or decode (Podman's own endpoints, Podman's states):
    /// HTTP/1.0, so the answer is never chunked. `None` when the engine is
    /// not reached over a socket, or the exchange fails.
    async fn raw_get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = match &self.remote {
            Some(m) => m.docker_socket.clone(),
            None => std::path::PathBuf::from(self.docker_host.strip_prefix("unix://")?),
        };
        let talk = async {
            let mut stream = tokio::net::UnixStream::connect(&socket).await.ok()?;
            let request = format!("GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.ok()?;
            Some(answer)
        };
        self.count();
        let answer = tokio::time::timeout(Duration::from_secs(TIMEOUT_SECS), talk)
            .await
            .ok()??;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }

    /// A container name or id, safe in a request path.
    fn path_id(container: &str) -> String {
        container
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect()
    }

    /// Podman's own endpoint runs the check once, records the result and
    /// answers `{"Status": …}`.
    async fn libpod_healthcheck(&self, container: &str) -> Option<String> {
        let id = Self::path_id(container);
        let (status, body) = self
            .raw_get(&format!("/v4.0.0/libpod/containers/{id}/healthcheck"))
            .await?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        v["Status"].as_str().map(str::to_string)
    }

    /// Every container matching `filters`, stopped ones too. Read raw on an
    /// engine that lists states Docker's API does not have (see
    /// [`Self::inspect`]).
    async fn list_containers(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> std::result::Result<Vec<bollard::models::ContainerSummary>, BollardError> {
        if self.engine.has(Quirk::StoppedState) {
            let query = percent_encode(&serde_json::to_string(filters).unwrap_or_default());
            let path = format!("/v1.41/containers/json?all=1&filters={query}");
            if let Some((200, body)) = self.raw_get(&path).await {
                let body = body.replace("\"State\":\"stopped\"", "\"State\":\"exited\"");
                if let Ok(list) = serde_json::from_str(body.trim()) {
                    return Ok(list);
                }
            }
        }
        self.docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(filters)
                    .build(),
            ))
            .await
    }

    /// Inspects a container. On an engine that reports states Docker's
    /// API does not have ([`Quirk::StoppedState`]), the answer is read
    /// raw and that state named as Docker names it before decoding.
    async fn inspect(
        &self,
        container: &str,
    ) -> std::result::Result<bollard::models::ContainerInspectResponse, BollardError> {
        if self.engine.has(Quirk::StoppedState) {
            let id = Self::path_id(container);
            if let Some((200, body)) = self.raw_get(&format!("/v1.41/containers/{id}/json")).await {
                let body = body.replace("\"Status\":\"stopped\"", "\"Status\":\"exited\"");
                if let Ok(info) = serde_json::from_str(body.trim()) {
                    return Ok(info);
                }
            }
        }
        self.count();
        self.docker.inspect_container(container, None).await
    }

    /// Runs a container's healthcheck test once, as the engine's own
    /// scheduler would (see [`Quirk::HealthchecksNeedSystemd`]): true when
    /// it passes. `CMD` runs its argv, `CMD-SHELL` its text with `sh -c`.
    async fn run_healthcheck(&self, container: &str, test: Option<Vec<String>>) -> bool {
        // Podman's own endpoint runs the check and records the result, so
        // that later inspections (and `podman ps`) see it too.
        if let Some(status) = self.libpod_healthcheck(container).await {
            return status == "healthy";
        }
        let argv = match test.as_deref() {
            Some([kind, argv @ ..]) if kind == "CMD" && !argv.is_empty() => argv.to_vec(),
            Some([kind, text]) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), text.clone()]
            }
            _ => return false,
        };
        let run = self.exec(container, &argv, 4096);
        matches!(
            tokio::time::timeout(Duration::from_secs(5), run).await,
            Ok(Ok(out)) if out.exit_code == Some(0)
        )
    }

    fn key(&self, ws: WorkspaceRef<'_>) -> String {
        object_key(&self.repo_id, ws.name, ws.root)
    }

    fn base_labels(&self, ws: WorkspaceRef<'_>) -> HashMap<String, String> {
        docker_labels(&meta::workspace(&self.repo_id, ws))
    }

    fn filters(&self, workspace: Option<&str>) -> HashMap<String, Vec<String>> {
        let mut label = vec![format!("{}={}", labels::REPO, self.repo_id)];
        if let Some(ws) = workspace {
            label.push(format!(
                "{}={}",
                labels::WORKSPACE,
                meta::workspace_label(ws)
            ));
        }
        HashMap::from([("label".to_string(), label)])
    }

    /// An engine error, by kind: the HTTP status where the engine gives
    /// one, the text only where it gives nothing else ([`refusal`]).
    fn api_error(&self, context: &str, err: BollardError) -> BackendError {
        match err {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => {
                let fault = match (status_code, refusal(&message)) {
                    (_, Some(Refusal::PortTaken)) => Fault::PortTaken,
                    (_, Some(Refusal::Ambiguous)) => Fault::Conflict,
                    (404, _) => Fault::NotFound,
                    (409, _) => Fault::Conflict,
                    _ => Fault::Failed,
                };
                let error = CommandError::new(fault.code(), format!("{context}: {message}"))
                    .detail("status", status_code);
                BackendError::with(fault, error)
            }
            other => {
                if let Some(m) = &self.remote {
                    m.forget_remembered();
                }
                BackendError::with(
                    Fault::Unreachable,
                    unreachable_error(&self.docker_host, &other),
                )
            }
        }
    }
}

/// A client for `host`. `pooled`: keep connections open between requests
/// (HTTP keep-alive), as Docker's own CLI does. bollard turns pooling off
/// for unix sockets, where a connection costs microseconds; but the socket
/// the SSH master forwards opens an SSH channel for each connection, one
/// round trip before the request's own. Pooled, a remote command pays that
/// once per concurrent request, not once per request. An idle connection
/// the engine closed is noticed by hyper, which opens another.
fn client(host: &str, version: &ClientVersion, pooled: bool) -> CmdResult<Docker> {
    if let Some(path) = host.strip_prefix("unix://") {
        if pooled {
            return pooled_unix(path, version).map_err(|e| unreachable_error(host, &e));
        }
        Docker::connect_with_unix(path, TIMEOUT_SECS, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, TIMEOUT_SECS, version)
    } else {
        return Err(CommandError::new(
            ErrorCode::DockerUnreachable,
            format!("unsupported DOCKER_HOST {host:?}"),
        )
        .hint("use unix:///path/to/docker.sock or tcp://host:port"));
    }
    .map_err(|e| unreachable_error(host, &e))
}

/// bollard over hyper's pooling client on a unix socket (see [`client`]).
/// The URI carries the socket path hex-encoded, as hyperlocal reads it.
fn pooled_unix(path: &str, version: &ClientVersion) -> std::result::Result<Docker, BollardError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    if !Path::new(path).exists() {
        return Err(BollardError::SocketNotFoundError(path.to_string()));
    }
    let client = std::sync::Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(hyperlocal::UnixConnector),
    );
    let address = format!("unix://{}", crate::base::hex::hex(path.as_bytes()));
    Docker::connect_with_custom_transport(
        move |req: bollard::BollardRequest| {
            let client = std::sync::Arc::clone(&client);
            Box::pin(async move {
                client
                    .request(req)
                    .await
                    .map_err(|err| BollardError::HyperLegacyError { err })
            })
        },
        Some(address),
        TIMEOUT_SECS,
        version,
    )
}

/// "client version 1.41 is too old. Minimum supported API version is 1.44, …" → 1.44
fn minimum_api_version(message: &str) -> Option<ClientVersion> {
    let rest = &message[message.find("Minimum supported API version is ")? + 33..];
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (major, minor) = version.trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

fn unreachable_error(host: &str, err: &BollardError) -> CommandError {
    CommandError::new(
        ErrorCode::DockerUnreachable,
        format!("cannot reach the Docker Engine at {host}: {err}"),
    )
    .hint("start Docker (`systemctl start docker`), or point DOCKER_HOST at a running engine")
    .detail("docker_host", host)
}

fn status_code(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// What an engine's refusal means, where the engine says it only in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The API version is below the engine's minimum.
    ApiTooOld,
    /// A host port is taken.
    PortTaken,
    /// A network name resolves to more than one network.
    Ambiguous,
    /// A requested subnet overlaps another network's.
    SubnetOverlaps,
    /// The default address pools have no subnet left.
    PoolExhausted,
}

/// The one place engine messages are read. Each text was seen on Docker
/// Engine 20.10 (API 1.41) and is still sent by 27; the status code alone
/// (500, or 400 for the API version) does not tell these apart.
fn refusal(message: &str) -> Option<Refusal> {
    let says = |text: &str| message.contains(text);
    if says("too old") {
        Some(Refusal::ApiTooOld)
    } else if says("port is already allocated") || says("address already in use") {
        Some(Refusal::PortTaken)
    } else if says("is ambiguous") {
        Some(Refusal::Ambiguous)
    } else if says("non-overlapping IPv4 address pool") {
        Some(Refusal::PoolExhausted)
    } else if says("overlaps") || says("is already used on the host") {
        // Docker: "Pool overlaps with other one on this address space";
        // Podman 4.3: "subnet … is already used on the host or by another config".
        Some(Refusal::SubnetOverlaps)
    } else {
        None
    }
}

/// The list API of engine 20.10 has no health field; the status text has it.
fn health_from_status(status: &str) -> Option<String> {
    if status.contains("(healthy)") {
        Some("healthy".into())
    } else if status.contains("(unhealthy)") {
        Some("unhealthy".into())
    } else if status.contains("(health: starting)") {
        Some("starting".into())
    } else {
        None
    }
}

/// The exit code in a listing's status, `Exited (3) 2 minutes ago`, as
/// Docker 20.10 and Podman 4.3 write it; `None` when it says none.
fn exit_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// Docker has labels only: both halves of the metadata go there.
fn docker_labels(meta: &meta::ObjectMeta) -> HashMap<String, String> {
    meta.flattened()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn root_label(value: Option<&String>) -> Option<std::path::PathBuf> {
    value
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// Whether `labels` carry every `key=value` of `wanted`: ownership checked
/// on the answer, whatever the engine did with the filters.
fn labels_match(wanted: &[String], labels: Option<&HashMap<String, String>>) -> bool {
    wanted.iter().all(|f| {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        labels.and_then(|l| l.get(k)).is_some_and(|have| have == v)
    })
}

/// A query value with everything but unreserved characters escaped.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn observed_container(c: bollard::models::ContainerSummary) -> ObservedContainer {
    let labels = c.labels.unwrap_or_default();
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let state = match c.state {
        Some(ContainerSummaryStateEnum::CREATED) => ServiceState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => ServiceState::Running,
        Some(ContainerSummaryStateEnum::RESTARTING) => ServiceState::Restarting,
        Some(ContainerSummaryStateEnum::PAUSED) => ServiceState::Paused,
        Some(ContainerSummaryStateEnum::EXITED) => ServiceState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => ServiceState::Dead,
        Some(ContainerSummaryStateEnum::REMOVING) => ServiceState::Removing,
        _ => ServiceState::Unknown,
    };
    ObservedContainer {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        workspace: meta::workspace_of(|k| labels.get(k).cloned()),
        service: get(labels::SERVICE),
        config_hash: get(labels::CONFIG_HASH),
        config_fields: serde_json::from_str(&get(labels::CONFIG_FIELDS)).unwrap_or_default(),
        state,
        health: c.status.as_deref().and_then(health_from_status),
        exit_code: c.status.as_deref().and_then(exit_from_status),
        ports: parse_ports_label(&get(labels::PORTS)),
        published: c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.private_port, p.public_port?)))
            .collect(),
        networks: c
            .network_settings
            .and_then(|n| n.networks)
            .map(|nets| nets.into_values().filter_map(|e| e.network_id).collect())
            .unwrap_or_default(),
        root: root_label(labels.get(labels::ROOT)),
    }
}

fn nanos(ms: u64) -> i64 {
    (ms as i64).saturating_mul(1_000_000)
}

impl DockerBackend {
    /// Whether the container called `name` is this repo's, for this
    /// workspace and service: only then may Aether replace it.
    /// Inspects the holder of a name that a create found taken.
    async fn name_holder(&self, name: &str, req: &ContainerRequest) -> NameHolder {
        self.count();
        let info = match self.inspect(name).await {
            Ok(info) => info,
            // The engine reserves a name before the container exists and
            // frees it after it is gone: a 409 then a 404 is a create or a
            // removal still in flight (seen on Docker 20.10 when a killed
            // `ajj` left one behind).
            Err(e) if status_code(&e) == Some(404) => return NameHolder::InFlight,
            Err(_) => return NameHolder::Foreign,
        };
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let is = |k: &str, v: &str| labels.get(k).map(String::as_str) == Some(v);
        if is(labels::REPO, &self.repo_id)
            && meta::workspace_of(|k| labels.get(k).cloned()) == req.workspace
            && is(labels::ROOT, &req.root.display().to_string())
            && is(labels::SERVICE, &req.service)
        {
            NameHolder::Ours
        } else {
            NameHolder::Foreign
        }
    }

    /// The workspace's networks, found by label: names can repeat.
    async fn workspace_networks(
        &self,
        ws: WorkspaceRef<'_>,
    ) -> Result<Vec<bollard::models::Network>> {
        self.count();
        let mut filters = self.filters(Some(ws.name));
        filters
            .get_mut("label")
            .expect("label filter")
            .push(format!("{}={}", labels::ROOT, ws.root.display()));
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        self.docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| self.api_error("listing networks", e))
    }

    /// The create request of a service's container: its image, command,
    /// environment, ports on 127.0.0.1, volumes, healthcheck and metadata.
    fn container_body(&self, req: &ContainerRequest) -> ContainerCreateBody {
        let network = req.network_id.clone();
        let spec = &req.spec;
        let labels = docker_labels(&meta::container(&self.repo_id, req));
        let port_bindings = req
            .ports
            .iter()
            .map(|(c, h)| {
                // A remote engine picks a free port on its own host; the
                // client port is only reserved here.
                let host_port = match self.remote {
                    Some(_) => String::new(),
                    None => h.to_string(),
                };
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host_port),
                };
                (format!("{c}/tcp"), Some(vec![binding]))
            })
            .collect();
        let extra = spec.extra.as_deref().cloned().unwrap_or_default();
        let binds = spec
            .volumes
            .iter()
            .map(|(v, target)| {
                let volume = req
                    .volumes
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| self.volume_name(req.owner(), &req.service, v));
                format!("{volume}:{target}")
            })
            .chain(extra.shared_volumes.iter().filter_map(|(target, key)| {
                // Named by the owner's volume, resolved with the steps.
                Some(format!("{}:{target}", req.volumes.get(key)?))
            }))
            .chain(extra.binds.iter().cloned())
            .collect();
        let healthcheck = spec.healthcheck.as_ref().map(|hc| HealthConfig {
            test: Some(
                std::iter::once("CMD".to_string())
                    .chain(hc.command.iter().cloned())
                    .collect(),
            ),
            interval: Some(nanos(hc.interval_ms)),
            timeout: Some(nanos(hc.timeout_ms)),
            retries: Some(hc.retries as i64),
            start_period: Some(nanos(hc.start_period_ms)),
            start_interval: None,
        });
        // The file's labels first: Aether's own (ownership) always win.
        let labels = extra
            .labels
            .clone()
            .into_iter()
            .chain(labels)
            .collect::<HashMap<_, _>>();
        let (restart, retries) = restart_policy(extra.restart.as_deref());
        let aliases = std::iter::once(req.service.clone())
            .chain(extra.aliases.iter().cloned())
            .collect();
        let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            entrypoint: extra.entrypoint.clone(),
            working_dir: extra.working_dir.clone(),
            user: extra.user.clone(),
            hostname: extra.hostname.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: Some(req.ports.keys().map(|c| format!("{c}/tcp")).collect()),
            labels: Some(labels),
            healthcheck,
            stop_timeout: Some(spec.stop_timeout_secs as i64),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                binds: Some(binds),
                network_mode: Some(network.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: retries,
                }),
                shm_size: extra.shm_size,
                extra_hosts: some_vec(&extra.extra_hosts),
                init: extra.init,
                tmpfs: (!extra.tmpfs.is_empty()).then(|| {
                    extra
                        .tmpfs
                        .iter()
                        .map(|t| match t.split_once(':') {
                            Some((path, opts)) => (path.to_string(), opts.to_string()),
                            None => (t.clone(), String::new()),
                        })
                        .collect()
                }),
                cap_drop: some_vec(&extra.cap_drop),
                privileged: extra.privileged.then_some(true),
                cap_add: some_vec(&extra.cap_add),
                devices: (!extra.devices.is_empty())
                    .then(|| extra.devices.iter().map(|d| device_mapping(d)).collect()),
                security_opt: some_vec(&extra.security_opt),
                pid_mode: extra.pid.clone(),
                userns_mode: extra.userns_mode.clone(),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network,
                    EndpointSettings {
                        aliases: Some(aliases),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    /// Creates the container under `name`. A name conflict with a
    /// container of ours that the observation did not see (a create the
    /// engine finished for a process killed since) is replaced; one still in
    /// flight is waited for, briefly; anyone else's is a `Conflict`.
    async fn create(
        &self,
        name: &str,
        req: &ContainerRequest,
        body: ContainerCreateBody,
    ) -> Result<()> {
        let spec = &req.spec;
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.count();
        let mut created = self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await;
        for _ in 0..20 {
            if !matches!(&created, Err(e) if status_code(e) == Some(409)) {
                break;
            }
            match self.name_holder(name, req).await {
                NameHolder::Foreign => break,
                NameHolder::Ours => self.remove_container(name, None).await?,
                NameHolder::InFlight => tokio::time::sleep(Duration::from_millis(100)).await,
            }
            self.count();
            created = self
                .docker
                .create_container(Some(options.clone()), body.clone())
                .await;
        }
        if matches!(&created, Err(e) if status_code(e) == Some(404)) {
            // The image was taken as present from an earlier sighting
            // (see `present_images`) and is gone: ask, pull if need be,
            // and create again, as `docker run` does.
            self.forget_present(&spec.image);
            self.ensure_image(&spec.image).await?;
            self.count();
            created = self
                .docker
                .create_container(Some(options.clone()), body.clone())
                .await;
        }
        if let Err(e) = created {
            return Err(match status_code(&e) {
                Some(404) => BackendError::with(
                    Fault::ImageMissing,
                    CommandError::new(ErrorCode::ImageNotFound, format!("image `{}` not found", spec.image))
                        .detail("image", &spec.image),
                ),
                Some(409) => BackendError::with(
                    Fault::Conflict,
                    CommandError::new(
                        ErrorCode::DockerError,
                        format!("a container named {name} exists but does not carry this repo's Aether labels"),
                    )
                    .hint(format!("Aether never touches it; remove or rename it yourself (`docker rm {name}`)"))
                    .detail("container", name),
                ),
                _ => self.api_error(&format!("creating container {name}"), e),
            });
        }
        Ok(())
    }

    /// This repo's objects carrying every label of `filters`.
    async fn observe_labelled(&self, filters: HashMap<String, Vec<String>>) -> Result<Observed> {
        let mut attempt = 0;
        let (containers, networks, volumes) = loop {
            let containers = self.list_containers(&filters);
            let networks = self.docker.list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ));
            let volumes = self.docker.list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ));
            let (c, n, v) = tokio::join!(containers, networks, volumes);
            self.calls.fetch_add(3, Ordering::Relaxed);
            // Reading is idempotent: a listing that raced a container's
            // exit is asked again (see the quirk).
            let raced = [c.as_ref().err(), n.as_ref().err(), v.as_ref().err()]
                .into_iter()
                .flatten()
                .any(|e| status_code(e) == Some(500));
            if raced && attempt < 3 && self.engine.has(Quirk::ListingRacesExitingContainers) {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            break (c, n, v);
        };
        let containers = containers.map_err(|e| self.api_error("listing containers", e))?;
        let networks = networks.map_err(|e| self.api_error("listing networks", e))?;
        let volumes = volumes.map_err(|e| self.api_error("listing volumes", e))?;

        // The filters asked for this repo's (and workspace's) objects, but
        // ownership is checked here again: Podman 4.3.1 ORs label filters
        // when it lists volumes, and returns other repos' objects.
        let wanted = filters.get("label").cloned().unwrap_or_default();
        let owned = |labels: Option<&HashMap<String, String>>| labels_match(&wanted, labels);
        let containers: Vec<_> = containers
            .into_iter()
            .filter(|c| owned(c.labels.as_ref()))
            .collect();
        // A listing names a container's image by the reference it was made
        // from while that still resolves (by id once it is gone).
        self.seen_present(
            containers
                .iter()
                .filter_map(|c| c.image.as_deref())
                .filter(|i| !i.starts_with("sha256:")),
        );
        let mut observed = Observed {
            containers: containers.into_iter().map(observed_container).collect(),
            ..Default::default()
        };
        if self.engine.has(Quirk::ListOmitsHealth) {
            self.fill_health(&mut observed.containers).await;
        }
        let networks = networks.into_iter().filter(|n| owned(n.labels.as_ref()));
        let volumes = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| owned(Some(&v.labels)));
        for n in networks {
            let label = |k: &str| n.labels.as_ref().and_then(|l| l.get(k));
            let workspace = meta::workspace_of(|k| label(k).cloned());
            let root = root_label(label(labels::ROOT));
            observed.networks.push(ObservedObject {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                created: n.created.map(|c| c.to_string()).unwrap_or_default(),
                workspace,
                root,
                ..Default::default()
            });
        }
        for v in volumes {
            let get = |k: &str| v.labels.get(k).cloned().unwrap_or_default();
            observed.volumes.push(ObservedObject {
                id: v.name.clone(),
                created: v.created_at.map(|c| c.to_string()).unwrap_or_default(),
                workspace: meta::workspace_of(|k| v.labels.get(k).cloned()),
                service: get(labels::SERVICE),
                volume: get(labels::VOLUME),
                root: root_label(v.labels.get(labels::ROOT)),
                name: v.name,
            });
        }
        Ok(observed)
    }

    /// What a new workspace network's block must not overlap: every
    /// network's subnets (listed now), and the routes and `daemon.json`
    /// pools of the engine's host (read at each allocation: a VPN may have
    /// come up since).
    async fn taken_addresses(&self, relist: bool) -> Result<subnets::Taken> {
        let (networks, (routes, daemon)) =
            tokio::join!(self.engine_subnets(relist), self.host_addressing());
        Ok(subnets::Taken {
            networks: networks?,
            routes: subnets::parse_routes(&routes),
            pools: subnets::daemon_pools(&daemon),
        })
    }

    /// Every network's subnets on the engine: the last listing if it is
    /// younger than `KNOWN_SUBNETS_TTL` and `relist` is not asked, else a
    /// new one.
    async fn engine_subnets(&self, relist: bool) -> Result<Vec<subnets::Cidr>> {
        if !relist {
            let known = self.known_subnets.lock().expect("known subnets");
            if let Some((at, list)) = &*known {
                if at.elapsed() < KNOWN_SUBNETS_TTL {
                    return Ok(list.clone());
                }
            }
        }
        let list: Vec<_> = self
            .all_subnets()
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        *self.known_subnets.lock().expect("known subnets") =
            Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    fn remember_subnet(&self, block: subnets::Cidr) {
        if let Some((_, list)) = &mut *self.known_subnets.lock().expect("known subnets") {
            list.push(block);
        }
    }

    /// `/proc/net/route` and `daemon.json` of the engine's host: read here
    /// for a local engine, over the master for a remote one.
    async fn host_addressing(&self) -> (String, String) {
        match &self.remote {
            None => (
                std::fs::read_to_string("/proc/net/route").unwrap_or_default(),
                std::fs::read_to_string("/etc/docker/daemon.json").unwrap_or_default(),
            ),
            Some(m) => {
                let prefetched = self.prefetched_addressing.lock().expect("prefetch").take();
                let task = match prefetched {
                    Some((at, task)) if at.elapsed() < PREFETCH_TTL => task,
                    stale => {
                        if let Some((_, task)) = stale {
                            task.abort();
                        }
                        let m = m.clone();
                        tokio::task::spawn_blocking(move || m.host_addressing())
                    }
                };
                task.await.unwrap_or_default()
            }
        }
    }

    fn seen_present<'i>(&self, images: impl Iterator<Item = &'i str>) {
        let now = std::time::Instant::now();
        let mut present = self.present_images.lock().expect("present images");
        for image in images {
            present.insert(image.to_string(), now);
        }
    }

    fn known_present(&self, image: &str) -> bool {
        self.present_images
            .lock()
            .expect("present images")
            .get(image)
            .is_some_and(|at| at.elapsed() < PRESENT_IMAGE_TTL)
    }

    fn forget_present(&self, image: &str) {
        self.present_images
            .lock()
            .expect("present images")
            .remove(image);
    }

    /// Creates the workspace's network on a block of its own, starting
    /// from `taken` (see [`Self::taken_addresses`]). Concurrent
    /// creators need no lock: the engine refuses a subnet that overlaps
    /// another network's, and the refused one moves on to the next free
    /// block. Within this process, blocks being created are skipped too, so
    /// a pass creating many networks at once does not race itself.
    async fn create_network(
        &self,
        ws: WorkspaceRef<'_>,
        name: &str,
        services: usize,
        policy: subnets::Policy,
        mut taken: subnets::Taken,
    ) -> Result<String> {
        let ranges = policy.ranges();
        let prefix = subnets::prefix_for(services);
        // The listing may be a few seconds old: read afresh once, at the
        // first refusal or before saying nothing is free.
        let mut relisted = false;
        for _ in 0..64 {
            let block = {
                let mut claimed = self.claimed_blocks.lock().expect("claimed blocks");
                let next = subnets::candidates(&ranges, prefix, &taken, &claimed).next();
                if let Some(b) = next {
                    claimed.push(b);
                }
                next
            };
            let Some(block) = block else {
                if relisted {
                    break;
                }
                relisted = true;
                taken = self.taken_addresses(true).await?;
                continue;
            };
            let created = self.create_network_on(ws, name, Some(block)).await;
            self.claimed_blocks
                .lock()
                .expect("claimed blocks")
                .retain(|b| *b != block);
            match created {
                Err(e) if e.fault == Fault::Conflict => {
                    if !relisted {
                        relisted = true;
                        taken = self.taken_addresses(true).await?;
                    }
                    taken.networks.push(block);
                }
                Ok(id) => {
                    self.remember_subnet(block);
                    return Ok(id);
                }
                other => return other,
            }
        }
        let census = subnets::census(&ranges, prefix, &taken);
        Err(BackendError::from(
            CommandError::new(
                ErrorCode::NetworkPoolExhausted,
                format!(
                    "no free /{prefix} block is left for network {name} in {}: {census}",
                    policy.describe()
                ),
            )
            .hint(format!(
                "forget unused workspaces (`ajj status --all`), or set {}= to a larger range of your own, e.g. 10.203.0.0/16",
                subnets::ENV
            ))
            .detail("free", census.free)
            .detail("total", census.total)
            .detail("overlapping_networks", census.by_networks)
            .detail("overlapping_routes", census.by_routes)
            .detail("overlapping_pools", census.by_pools),
        ))
    }

    /// One create: on `block`, or where the engine chooses. A block that
    /// overlaps another network is a `Conflict`.
    async fn create_network_on(
        &self,
        ws: WorkspaceRef<'_>,
        name: &str,
        block: Option<subnets::Cidr>,
    ) -> Result<String> {
        self.count();
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(self.base_labels(ws)),
            ipam: block.map(|s| Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(s.to_string()),
                    gateway: Some(subnets::gateway(s)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(r) => Ok(r.id),
            Err(BollardError::DockerResponseServerError { message, .. })
                if block.is_some() && refusal(&message) == Some(Refusal::SubnetOverlaps) =>
            {
                Err(BackendError::with(
                    Fault::Conflict,
                    CommandError::new(ErrorCode::DockerError, message),
                ))
            }
            Err(BollardError::DockerResponseServerError { message, .. })
                if refusal(&message) == Some(Refusal::PoolExhausted) =>
            {
                Err(BackendError::from(
                    CommandError::new(
                        ErrorCode::NetworkPoolExhausted,
                        format!("the engine has no address range left for network {name}: {message}"),
                    )
                    .hint(format!(
                        "{}=engine leaves the choice to the engine, whose default pools hold about 30 networks; \
                         unset it and Aether gives each workspace a /27 of those same ranges",
                        subnets::ENV
                    )),
                ))
            }
            Err(e) => Err(self.api_error(&format!("creating network {name}"), e)),
        }
    }

    /// Every network's subnets on the engine, whoever made them: (name, subnet).
    async fn all_subnets(&self) -> Result<Vec<(String, subnets::Cidr)>> {
        self.count();
        let all = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(|e| self.api_error("listing networks", e))?;
        Ok(all
            .into_iter()
            .flat_map(|n| {
                let name = n.name.unwrap_or_default();
                n.ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(move |c| Some((name.clone(), subnets::Cidr::parse(&c.subnet?)?)))
            })
            .collect())
    }

    async fn wait_gone(&self, container: &str) -> Result<()> {
        for _ in 0..100 {
            self.count();
            match self.inspect(container).await {
                Err(e) if status_code(&e) == Some(404) => return Ok(()),
                Err(e) => return Err(self.api_error(&format!("inspecting {container}"), e)),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(CommandError::new(
            ErrorCode::DockerError,
            format!("{container} is still being removed after 10s"),
        )
        .hint("check `docker ps -a`; run `ajj reconcile` again once the engine has finished")
        .into())
    }
}

impl Naming for DockerBackend {
    fn network_name(&self, ws: WorkspaceRef<'_>) -> String {
        format!("aether-{}", self.key(ws))
    }

    fn container_name(&self, ws: WorkspaceRef<'_>, service: &str) -> String {
        super::docker_container_name(&self.repo_id, ws.name, ws.root, service)
    }

    fn volume_name(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> String {
        format!("aether-{}-{service}-{volume}", self.key(ws))
    }
}

impl Backend for DockerBackend {
    /// The containers made for the workspace at `root`, in one list call:
    /// what `ajj run` forwards to.
    async fn containers_at(&self, root: &std::path::Path) -> Result<Vec<ObservedContainer>> {
        let mut filters = self.filters(None);
        filters
            .get_mut("label")
            .expect("label filter")
            .push(format!("{}={}", labels::ROOT, root.display()));
        self.count();
        let list = self
            .list_containers(&filters)
            .await
            .map_err(|e| self.api_error("listing containers", e))?;
        let wanted = filters.remove("label").unwrap_or_default();
        Ok(list
            .into_iter()
            .filter(|c| labels_match(&wanted, c.labels.as_ref()))
            .map(observed_container)
            .collect())
    }

    fn open_forwards(
        &self,
        forwards: &[Forward],
        on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<Option<Box<dyn Forwarding>>> {
        let Some(master) = &self.remote else {
            return Ok(None);
        };
        let forwarder = Forwarder::open(&master.control, forwards, on_lost)?;
        Ok(Some(Box::new(forwarder)))
    }

    fn api_calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    fn expect_new_isolation(&self) {
        let Some(m) = &self.remote else {
            return; // local files: read when needed, in microseconds
        };
        if subnets::Policy::from_env().ok() == Some(subnets::Policy::Engine) {
            return;
        }
        let m = m.clone();
        let task = tokio::task::spawn_blocking(move || m.host_addressing());
        let old = self
            .prefetched_addressing
            .lock()
            .expect("prefetch")
            .replace((std::time::Instant::now(), task));
        if let Some((_, old)) = old {
            old.abort();
        }
    }

    fn kind(&self) -> &'static str {
        match self.remote {
            Some(_) => "docker-remote",
            None => "docker-local",
        }
    }

    fn id(&self) -> String {
        match &self.remote {
            // The same rule as the spec's: `workspace_backend` parses it back.
            Some(m) => crate::model::backend_spec::ssh_id(&m.target, &m.remote_socket),
            None => "docker-local".into(),
        }
    }

    fn remote_host(&self) -> Option<String> {
        self.remote.as_ref().map(|m| m.target.to_string())
    }

    fn port_model(&self) -> PortModel {
        match self.remote {
            Some(_) => PortModel::ForwardedToHost,
            None => PortModel::Published,
        }
    }

    async fn serving(&self, live: &LiveStatus, container_port: u16, client_port: u16) -> bool {
        let Some(master) = &self.remote else {
            if let Some(ip) = live.direct_ip {
                if let Some(up) = readiness::probe_direct(ip, container_port).await {
                    return up;
                }
            }
            return readiness::probe(&self.host, client_port).await;
        };
        // Through the master to the engine's published port on its host,
        // with the same held-open test as locally (Docker's proxy accepts
        // there too). Nothing listens on the client port meanwhile.
        let Some(&published) = live.published.get(&container_port) else {
            return false;
        };
        let control = master.control.clone();
        let channel = tokio::task::spawn_blocking(move || {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            let held = mux::stdio_forward(&control, "127.0.0.1", published, theirs.as_raw_fd())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            ours.set_nonblocking(true)?;
            Ok::<_, std::io::Error>((ours, held))
        })
        .await;
        let Ok(Ok((ours, _held))) = channel else {
            return false;
        };
        match tokio::net::UnixStream::from_std(ours) {
            Ok(stream) => readiness::held_open(stream).await,
            Err(_) => false,
        }
    }

    fn client_host(&self) -> &str {
        &self.host
    }

    async fn engine_version(&self) -> Result<String> {
        self.count();
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| self.api_error("reading the engine's version", e))?;
        Ok(format!(
            "{} (API {}, talking {}) at {}",
            Engine::from_version(&v).describe(),
            v.api_version.unwrap_or_default(),
            self.docker.client_version(),
            self.docker_host
        ))
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        self.count();
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.api_error(&format!("inspecting image {image}"), e)),
        }
    }

    async fn isolation_capacity(&self) -> Result<Option<Isolation>> {
        let policy = subnets::Policy::from_env()?;
        let (all, (routes, daemon)) = tokio::join!(self.all_subnets(), self.host_addressing());
        let all = all?;
        let taken = subnets::Taken {
            networks: all.iter().map(|(_, c)| *c).collect(),
            routes: subnets::parse_routes(&routes),
            pools: subnets::daemon_pools(&daemon),
        };
        // This repo's networks that a route of the host overlaps now.
        let ours = self.observe(None).await?;
        let conflicts = ours
            .networks
            .iter()
            .flat_map(|n| {
                all.iter()
                    .filter(move |(name, _)| *name == n.name)
                    .map(move |(_, subnet)| (n.workspace.clone(), subnet))
            })
            .flat_map(|(workspace, subnet)| {
                subnets::conflicting_routes(subnet, &taken.routes, &taken.networks)
                    .into_iter()
                    .map(move |route| (workspace.clone(), subnet.to_string(), route.to_string()))
            })
            .collect();
        let census = match policy {
            subnets::Policy::Engine => None,
            _ => Some(subnets::census(
                &policy.ranges(),
                subnets::BLOCK_PREFIX,
                &taken,
            )),
        };
        Ok(Some(Isolation {
            census,
            ranges: policy.describe(),
            conflicts,
        }))
    }

    async fn ping(&self) -> Result<()> {
        self.count();
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| self.api_error("pinging the engine", e))
    }

    async fn observe(&self, workspace: Option<&str>) -> Result<Observed> {
        self.observe_labelled(self.filters(workspace)).await
    }

    /// Two filtered listings at once, by the workspace's name and by its
    /// root: O(its own objects), where listing the whole repo would make a
    /// pass creating n environments cost O(n²) on the engine.
    async fn observe_for(&self, name: &str, root: Option<&Path>) -> Result<Observed> {
        let by_name = self.observe_labelled(self.filters(Some(name)));
        let Some(root) = root else {
            return by_name.await;
        };
        let mut filters = self.filters(None);
        filters
            .get_mut("label")
            .expect("the repo label")
            .push(format!("{}={}", labels::ROOT, root.display()));
        let (a, b) = tokio::join!(by_name, self.observe_labelled(filters));
        Ok(a?.union(b?))
    }

    async fn build_image(&self, spec: &BuildSpec, log: &dyn Fn(&str)) -> Result<()> {
        let tar = spec.context_tar().map_err(|e| {
            BackendError::new(Fault::Failed, format!("cannot pack the build context: {e}"))
        })?;
        let labels = HashMap::from([
            (labels::REPO.to_string(), self.repo_id.clone()),
            (BUILT_LABEL.to_string(), spec.digest.clone()),
        ]);
        let options = BuildImageOptions {
            dockerfile: spec.dockerfile.clone(),
            t: Some(spec.tag.clone()),
            buildargs: (!spec.args.is_empty()).then(|| spec.args.clone().into_iter().collect()),
            labels: Some(labels),
            target: spec.target.clone().unwrap_or_default(),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        self.count();
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(bytes::Bytes::from(tar))),
        );
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut step = String::new();
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            if line.starts_with("Step ") || line.starts_with("STEP ") {
                                step = line.to_string();
                            }
                            log(line);
                            tail.push_back(line.to_string());
                            if tail.len() > 20 {
                                tail.pop_front();
                            }
                        }
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(detail);
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    failure = Some(error);
                    break;
                }
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    failure = Some(message);
                    break;
                }
                Err(other) => {
                    return Err(BackendError::with(
                        Fault::Unreachable,
                        unreachable_error(&self.docker_host, &other),
                    ))
                }
            }
        }
        let Some(failure) = failure else {
            return Ok(());
        };
        let tail: Vec<String> = tail.into_iter().collect();
        Err(BackendError::with(
            Fault::Failed,
            CommandError::new(
                ErrorCode::ImageBuildFailed,
                format!(
                    "building {} failed{}: {}",
                    spec.tag,
                    if step.is_empty() {
                        String::new()
                    } else {
                        format!(" at {step}")
                    },
                    failure.trim()
                ),
            )
            .hint(format!(
                "fix the Dockerfile or the context in {}; `docker build {}` shows the whole output",
                spec.context.display(),
                spec.context.display()
            ))
            .detail("image", spec.tag.clone())
            .detail("step", step)
            .detail("logs", tail),
        ))
    }

    async fn built_images(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.count();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", labels::REPO, self.repo_id),
                BUILT_LABEL.to_string(),
            ],
        )]);
        let images = self
            .docker
            .list_images(Some(
                bollard::query_parameters::ListImagesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| self.api_error("listing built images", e))?;
        // Ownership is checked on the answer, whatever the engine did with the filter.
        Ok(images
            .into_iter()
            .filter(|i| i.labels.get(labels::REPO) == Some(&self.repo_id))
            .filter(|i| i.labels.contains_key(BUILT_LABEL))
            .map(|i| (i.id, i.repo_tags))
            .collect())
    }

    async fn remove_image(&self, id: &str) -> Result<()> {
        self.count();
        match self
            .docker
            .remove_image(
                id,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(status_code(&e), Some(404) | Some(409)) => Ok(()),
            Err(e) => Err(self.api_error(&format!("removing image {id}"), e)),
        }
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        if self.known_present(image) {
            return Ok(());
        }
        self.count();
        match self.docker.inspect_image(image).await {
            Ok(_) => {
                self.seen_present(std::iter::once(image));
                return Ok(());
            }
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(self.api_error(&format!("inspecting image {image}"), e)),
        }
        // Only a missing image is pulled, so everything works offline.
        self.count();
        let mut stream = self.docker.create_image(
            Some(
                CreateImageOptionsBuilder::default()
                    .from_image(image)
                    .build(),
            ),
            None,
            None,
        );
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(detail);
                    }
                }
                Err(e) => {
                    failure = Some(match e {
                        BollardError::DockerResponseServerError { message, .. } => message,
                        // Podman 4.3.1 reports a failed pull inside the stream.
                        BollardError::DockerStreamError { error } => error,
                        other => {
                            return Err(BackendError::with(
                                Fault::Unreachable,
                                unreachable_error(&self.docker_host, &other),
                            ))
                        }
                    });
                    break;
                }
            }
        }
        match failure {
            None => {
                self.seen_present(std::iter::once(image));
                Ok(())
            }
            Some(reason) => Err(BackendError::with(Fault::ImageMissing, CommandError::new(
                ErrorCode::ImageNotFound,
                format!("image `{image}` is not present locally and could not be pulled"),
            )
            .hint("build, load or import the image (`docker build`, `docker load`, `docker import`), or fix `image` in aether.toml")
            .detail("image", image)
            .detail("pull_error", reason))),
        }
    }

    async fn ensure_network(&self, ws: WorkspaceRef<'_>, services: usize) -> Result<String> {
        let name = self.network_name(ws);
        // Found by label, not by name: engines before 25 accept a second
        // network of the same name (a create still in flight from a killed
        // process can make one), and a name lookup is then ambiguous.
        // What a new block must avoid is read at the same time, not after:
        // the caller asks mostly when the network is missing, and on a
        // remote host each is a round trip or more (the host's routes are an
        // ssh session). Left unused when the network exists.
        let policy = subnets::Policy::from_env()?;
        let taken = async {
            match policy {
                subnets::Policy::Engine => None,
                _ => Some(self.taken_addresses(false).await),
            }
        };
        let (existing, taken) = tokio::join!(self.workspace_networks(ws), taken);
        if let Some(oldest) = existing?
            .into_iter()
            .filter_map(|n| Some((n.created.map(|c| c.to_string()).unwrap_or_default(), n.id?)))
            .min()
        {
            return Ok(oldest.1);
        }
        match taken {
            None => self.create_network_on(ws, &name, None).await,
            Some(taken) => {
                self.create_network(ws, &name, services, policy, taken?)
                    .await
            }
        }
    }

    async fn ensure_volume(&self, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> Result<()> {
        self.count();
        let name = self.volume_name(ws, service, volume);
        let req = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(docker_labels(&meta::volume(
                &self.repo_id,
                ws,
                service,
                volume,
            ))),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|e| self.api_error(&format!("creating volume {name}"), e))
    }

    async fn create_and_start(&self, req: &ContainerRequest) -> Result<()> {
        let name = self.container_name(req.owner(), &req.service);
        self.create(&name, req, self.container_body(req)).await?;
        let t = std::time::Instant::now();
        let started = self.start(&name).await;
        tracing::debug!(container = %name, ms = t.elapsed().as_millis() as u64, "start");
        if let Err(err) = started {
            // Leave nothing behind: the caller retries with other ports, or
            // after removing twin networks, or reports the error; a
            // created-but-dead container would only confuse the next pass.
            let _ = self.remove_container(&name, None).await;
            return Err(err);
        }
        Ok(())
    }

    async fn start(&self, container: &str) -> Result<()> {
        self.count();
        match self.docker.start_container(container, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(self.api_error(&format!("starting {container}"), e)),
        }
    }

    async fn remove_container(&self, container: &str, grace: Option<Duration>) -> Result<()> {
        if grace.is_none() && self.engine.has(Quirk::ForcedRemovalWaitsForStopTimeout) {
            // Killed at once, as Docker's forced removal does by itself.
            // Best effort: a container that is not running is refused (409
            // on Docker, 500 on Podman 4.3.1), a gone one is 404; the
            // removal below says what really went wrong, if anything.
            self.count();
            let _ = self
                .docker
                .kill_container(
                    container,
                    None::<bollard::query_parameters::KillContainerOptions>,
                )
                .await;
        }
        if let Some(grace) = grace {
            self.count();
            let opts = StopContainerOptionsBuilder::default()
                .t(grace.as_secs() as i32)
                .build();
            match self.docker.stop_container(container, Some(opts)).await {
                Ok(()) => {}
                Err(e) if matches!(status_code(&e), Some(304) | Some(404)) => {}
                Err(e) => return Err(self.api_error(&format!("stopping {container}"), e)),
            }
        }
        self.count();
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        match self.docker.remove_container(container, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            // Another process (perhaps one killed since) started removing it:
            // done only once it is gone, or its network cannot go next.
            Err(e) if status_code(&e) == Some(409) => self.wait_gone(container).await,
            Err(e) => Err(self.api_error(&format!("removing {container}"), e)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.count();
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.api_error(&format!("removing volume {name}"), e)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        // `name` is an id when it comes from an observation.
        // The engine detaches a removed container's endpoint a moment after
        // the removal returns; give it that moment before calling it an error.
        let mut attempts = 0;
        loop {
            self.count();
            match self.docker.remove_network(name).await {
                Ok(()) => return Ok(()),
                Err(e) if status_code(&e) == Some(404) => return Ok(()),
                Err(e) if status_code(&e) == Some(403) && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(self.api_error(&format!("removing network {name}"), e)),
            }
        }
    }

    async fn live_status(&self, container: &str) -> Result<LiveStatus> {
        let info = self
            .inspect(container)
            .await
            .map_err(|e| self.api_error(&format!("inspecting {container}"), e))?;
        let settings = info.network_settings.unwrap_or_default();
        let published = settings
            .ports
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, bindings)| {
                let cport = key.split('/').next()?.parse().ok()?;
                let host = bindings?
                    .into_iter()
                    .find_map(|b| b.host_port?.parse().ok())?;
                Some((cport, host))
            })
            .collect();
        // A remote container's own address is not routable from here.
        let direct_ip = Some(settings)
            .filter(|_| self.remote.is_none())
            .and_then(|n| n.networks)
            .and_then(|nets| {
                nets.into_values()
                    .find_map(|e| e.ip_address.filter(|ip| !ip.is_empty()))
            })
            .and_then(|ip| ip.parse().ok());
        let state = info.state.unwrap_or_default();
        let run = match state.status {
            Some(ContainerStateStatusEnum::CREATED) => ServiceState::Created,
            Some(ContainerStateStatusEnum::RUNNING) => ServiceState::Running,
            Some(ContainerStateStatusEnum::RESTARTING) => ServiceState::Restarting,
            Some(ContainerStateStatusEnum::PAUSED) => ServiceState::Paused,
            Some(ContainerStateStatusEnum::EXITED) => ServiceState::Exited,
            Some(ContainerStateStatusEnum::DEAD) => ServiceState::Dead,
            Some(ContainerStateStatusEnum::REMOVING) => ServiceState::Removing,
            _ => ServiceState::Unknown,
        };
        let mut health = state.health.and_then(|h| h.status).and_then(|s| match s {
            HealthStatusEnum::HEALTHY => Some("healthy".to_string()),
            HealthStatusEnum::UNHEALTHY => Some("unhealthy".to_string()),
            HealthStatusEnum::STARTING => Some("starting".to_string()),
            _ => None,
        });
        if health.as_deref() == Some("starting")
            && run == ServiceState::Running
            && self.engine.has(Quirk::HealthchecksNeedSystemd)
        {
            let test = info.config.and_then(|c| c.healthcheck).and_then(|h| h.test);
            if self.run_healthcheck(container, test).await {
                health = Some("healthy".to_string());
            }
        }
        Ok(LiveStatus {
            state: run,
            health,
            exit_code: state.exit_code,
            direct_ip,
            published,
        })
    }

    fn events(&self) -> futures_util::stream::LocalBoxStream<'_, Result<BackendEvent>> {
        let mut filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={}", labels::REPO, self.repo_id)],
            ),
        ]);
        if !self.engine.has(Quirk::EventFilterByActionBroken) {
            filters.insert(
                "event".to_string(),
                vec!["die".to_string(), "destroy".to_string()],
            );
        }
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.count();
        self.docker
            .events(Some(options))
            .filter_map(|item| async move {
                let message = match item {
                    Ok(m) => m,
                    Err(e) => {
                        return Some(Err(BackendError::with(
                            Fault::Unreachable,
                            unreachable_error("the event stream", &e),
                        )))
                    }
                };
                let actor = message.actor.unwrap_or_default();
                let attrs = actor.attributes.unwrap_or_default();
                let get = |k: &str| attrs.get(k).cloned().unwrap_or_default();
                let kind = match message.action.as_deref() {
                    Some("die") => EventKind::Died {
                        exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
                    },
                    // "remove" is Podman's word for Docker's "destroy".
                    Some("destroy") | Some("remove") => EventKind::Removed,
                    _ => return None,
                };
                Some(Ok(BackendEvent {
                    workspace: meta::workspace_of(|k| attrs.get(k).cloned()),
                    service: get(labels::SERVICE),
                    container: get("name"),
                    kind,
                }))
            })
            .boxed_local()
    }

    async fn exec(&self, container: &str, argv: &[String], limit: usize) -> Result<ExecOutput> {
        use bollard::container::LogOutput;
        use bollard::exec::{CreateExecOptions, StartExecResults};
        if argv.is_empty() {
            return Err(BackendError::new(Fault::Failed, "exec needs a command"));
        }
        let context = format!("exec in {container}");
        self.count();
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.api_error(&context, e))?;
        self.count();
        let started = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.api_error(&context, e))?;
        let mut out = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = started {
            // Read to the end even past the limit: the command must not
            // block on a full pipe, and its exit code comes after.
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| self.api_error(&context, e))? {
                    LogOutput::StdErr { message } => out.push(true, &message, limit),
                    other => out.push(false, &other.into_bytes(), limit),
                }
            }
        }
        out.exit_code = self.exec_exit_code(&created.id).await?;
        Ok(out)
    }

    async fn exec_attached(
        &self,
        container: &str,
        argv: &[String],
        tty: Option<(u16, u16)>,
    ) -> Result<ExecSession> {
        use bollard::container::LogOutput;
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        if argv.is_empty() {
            return Err(BackendError::new(Fault::Failed, "exec needs a command"));
        }
        let context = format!("exec in {container}");
        self.count();
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv.to_vec()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty.is_some()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.api_error(&context, e))?;
        self.count();
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: tty.is_some(),
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| self.api_error(&context, e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(BackendError::new(
                Fault::Failed,
                format!("{context}: not attached"),
            ));
        };
        if let Some(size) = tty {
            // The TTY exists once the command started; a failed resize only
            // leaves it at the engine's default size.
            let _ = self.exec_resize(&created.id, size).await;
        }
        let host = self.docker_host.clone();
        let output = output
            .map(move |chunk| match chunk {
                Ok(LogOutput::StdErr { message }) => Ok((true, message.to_vec())),
                Ok(other) => Ok((false, other.into_bytes().to_vec())),
                Err(e) => Err(BackendError::with(
                    Fault::Unreachable,
                    unreachable_error(&host, &e),
                )),
            })
            .boxed();
        Ok(ExecSession {
            id: created.id,
            output,
            input,
        })
    }

    async fn exec_resize(&self, exec_id: &str, (width, height): (u16, u16)) -> Result<()> {
        use bollard::query_parameters::ResizeExecOptionsBuilder;
        self.count();
        self.docker
            .resize_exec(
                exec_id,
                ResizeExecOptionsBuilder::default()
                    .w(width as i32)
                    .h(height as i32)
                    .build(),
            )
            .await
            .map_err(|e| self.api_error("resizing the exec TTY", e))
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        self.count();
        Ok(self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| self.api_error("reading the exit code of an exec", e))?
            .exit_code)
    }

    fn logs(&self, container: &str, query: LogQuery) -> LocalBoxStream<'_, Result<LogLine>> {
        use bollard::container::LogOutput;
        let tail = query
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string());
        let mut options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(query.follow)
            .tail(&tail);
        if let Some(since) = query.since {
            options = options.since(since.clamp(0, i32::MAX as i64) as i32);
        }
        self.count();
        let context = format!("logs of {container}");
        let mut last = (String::new(), 0i128);
        self.docker
            .logs(container, Some(options.build()))
            .map(move |chunk| {
                let (stream, bytes) = match chunk {
                    Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
                    Ok(other) => (LogStream::Stdout, other.into_bytes()),
                    Err(e) => return vec![Err(self.api_error(&context, e))],
                };
                let text = String::from_utf8_lossy(&bytes);
                text.split_terminator('\n')
                    .map(|raw| {
                        let raw = raw.strip_suffix('\r').unwrap_or(raw);
                        // Each entry starts with the engine's timestamp; a
                        // piece without one continues the previous entry.
                        let (ts, line) = match raw.split_once(' ') {
                            Some((ts, line)) => match parse_timestamp(ts) {
                                Some(nanos) => {
                                    last = (ts.to_string(), nanos);
                                    (ts.to_string(), line)
                                }
                                None => (last.0.clone(), raw),
                            },
                            None => match parse_timestamp(raw) {
                                Some(nanos) => {
                                    last = (raw.to_string(), nanos);
                                    (raw.to_string(), "")
                                }
                                None => (last.0.clone(), raw),
                            },
                        };
                        Ok(LogLine {
                            stream,
                            ts,
                            nanos: last.1,
                            line: line.to_string(),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .flat_map(futures_util::stream::iter)
            .boxed_local()
    }

    async fn logs_tail(&self, container: &str, lines: usize) -> String {
        self.count();
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(container, Some(opts));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        out
    }
}

/// An engine timestamp (RFC 3339, up to nanoseconds) as nanoseconds since
/// the epoch.
fn parse_timestamp(ts: &str) -> Option<i128> {
    let t = humantime::parse_rfc3339(ts).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128)
}

/// Compose's `restart` as the engine's policy; none given: `unless-stopped`,
/// Aether's default for a service that should keep running.
fn restart_policy(restart: Option<&str>) -> (RestartPolicyNameEnum, Option<i64>) {
    match restart.map(|r| r.split_once(':').unwrap_or((r, ""))) {
        None | Some(("unless-stopped", _)) => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        Some(("always", _)) => (RestartPolicyNameEnum::ALWAYS, None),
        Some(("on-failure", n)) => (RestartPolicyNameEnum::ON_FAILURE, n.parse().ok()),
        Some(_) => (RestartPolicyNameEnum::NO, None),
    }
}

/// `host[:container[:permissions]]`, Docker's short form of a device.
fn device_mapping(d: &str) -> bollard::models::DeviceMapping {
    let mut parts = d.splitn(3, ':');
    let host = parts.next().unwrap_or_default().to_string();
    let container = parts.next().map_or_else(|| host.clone(), str::to_string);
    let perms = parts.next().unwrap_or("rwm").to_string();
    bollard::models::DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(container),
        cgroup_permissions: Some(perms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_order_by_nanoseconds() {
        let a = parse_timestamp("2026-12-04T11:22:04.1Z").unwrap();
        let b = parse_timestamp("2026-12-04T11:22:04.123456789Z").unwrap();
        assert_eq!(b - a, 23_456_789);
        assert!(parse_timestamp("hello").is_none());
    }

    #[test]
    fn reads_the_minimum_api_version_from_the_refusal() {
        let v = minimum_api_version(
            "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 44));
        assert!(minimum_api_version("something else").is_none());
    }

    #[test]
    fn health_is_read_from_status_text() {
        assert_eq!(
            health_from_status("Up 2 seconds (healthy)").as_deref(),
            Some("healthy")
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            health_from_status("Up 5 minutes (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(health_from_status("Up 5 minutes"), None);
    }
}
