//! Carrying out one workspace's actions. Idempotent: each step tolerates the
//! object already being in its target state, so a pass interrupted anywhere
//! (even by `kill -9`) is finished by the next one.

use super::plan::{self, Action, Reason};
use super::progress::{Phase, Progress};
use super::steps::Step;
use crate::backend::ports;
use crate::backend::readiness::Target;
use crate::backend::{self, Backend, ContainerRequest, Fault, Observed, WorkspaceRef};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::compose::build::BuildSpec;
use crate::model::config::Service;
use crate::model::context::{OwnPorts, PortMap};
use crate::model::desired::DesiredWorkspace;
use crate::model::jj::{JjAt, Workspaces};
use crate::model::repo::RepoContext;
use crate::model::state;
use futures_util::future::{join_all, FutureExt, LocalBoxFuture};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// In the repo's state directory once an image was built for it.
const BUILT_MARKER: &str = "images-built";

/// Whether Aether ever built an image for this repo.
pub fn ever_built(ctx: &RepoContext) -> bool {
    ctx.state_dir().join(BUILT_MARKER).exists()
}

/// Attempts before a port conflict is reported: each failed start re-picks.
const PORT_ATTEMPTS: usize = 12;

pub struct Applier<'a, B: Backend> {
    pub backend: &'a B,
    pub ctx: &'a RepoContext,
    /// Where a pass reads the workspaces and settings: jj itself, except in
    /// unit tests.
    pub jj: Box<dyn Workspaces + 'a>,
    /// Human progress on stderr.
    pub progress: Progress,
    /// Host ports this process has picked or knows to be reserved.
    claimed: Mutex<HashSet<u16>>,
    pub warnings: Mutex<Vec<String>>,
    /// Images this process built (tags), for the report.
    pub built: Mutex<Vec<String>>,
}

/// What a workspace looks like after its actions ran.
pub struct Applied {
    pub ports: PortMap,
    /// `[ports]`: the port reserved for each.
    pub own_ports: OwnPorts,
}

impl<'a, B: Backend> Applier<'a, B> {
    pub fn new(backend: &'a B, ctx: &'a RepoContext, verbose: bool) -> Self {
        Applier {
            backend,
            ctx,
            jj: Box::new(JjAt(ctx.workspace_root.clone())),
            progress: Progress::for_stderr(verbose),
            claimed: Mutex::new(HashSet::new()),
            warnings: Mutex::new(Vec::new()),
            built: Mutex::new(Vec::new()),
        }
    }

    /// Warns about each line once per process (a config's rewrites, read
    /// again by every pass of a watcher).
    pub fn warn_once(&self, line: &str) {
        if !self.warnings.lock().unwrap().iter().any(|w| w == line) {
            self.warn(line.to_string());
        }
    }

    fn say(&self, line: String) {
        self.progress.line(&line);
    }

    fn warn(&self, line: String) {
        self.say(format!("warning: {line}"));
        self.warnings.lock().unwrap().push(line);
    }

    fn claim(&self, port: u16) -> bool {
        self.claimed.lock().unwrap().insert(port)
    }

    /// A new client port for `workspace`. Locally the engine's bind settles
    /// races; a forwarded port is reserved in the user's ledger instead.
    fn pick_port(&self, workspace: &str) -> Result<u16> {
        if self.backend.forwards_ports() {
            let avoid = self.claimed.lock().unwrap().clone();
            let port = ports::reserve(self.ctx, &ports::owner(self.ctx, workspace), &avoid)?;
            self.claim(port);
            return Ok(port);
        }
        for _ in 0..64 {
            if let Some(p) = portpicker::pick_unused_port() {
                // Free now, but perhaps a workspace's own port (`[ports]`),
                // bound only while its server runs.
                if !ports::is_reserved(self.ctx, p) && self.claim(p) {
                    return Ok(p);
                }
            }
        }
        Err(CommandError::new(
            ErrorCode::PortConflict,
            "no free host port could be found on 127.0.0.1",
        )
        .hint("free some ports, or stop other workspaces' services (`ajj workspace forget`)"))
    }

    /// Whether `workspace` may keep its sticky client port.
    fn keep_port(&self, workspace: &str, port: u16) -> Result<bool> {
        self.claim(port);
        if self.backend.forwards_ports() {
            return ports::hold(self.ctx, &ports::owner(self.ctx, workspace), port);
        }
        Ok(true)
    }

    /// Refuses to act on a workspace whose environment another backend holds:
    /// this one would see nothing and provision a second copy.
    pub fn check_backend(&self, workspace: &str) -> Result<()> {
        let saved = state::load(self.ctx, workspace);
        match saved.backend {
            Some(there) if there != self.backend.id() => Err(CommandError::new(
                ErrorCode::BackendMismatch,
                format!(
                    "the environment of workspace {workspace} lives on {there}, not on {}",
                    self.backend.id()
                ),
            )
            .hint(format!(
                "run the command with `--backend {there}`; to move the workspace, `ajj workspace forget` it there first"
            ))
            .detail("workspace", workspace)
            .detail("backend", there)),
            _ => Ok(()),
        }
    }

    /// Carries out `steps` of one workspace. The caller holds its lock and
    /// observed it under that lock. `desired` is `None` when the workspace is
    /// gone. Every decision is in the steps; what is left here is the order
    /// (removals, then what containers need, then containers in parallel,
    /// then what nothing uses any more) and retrying what the engine refused.
    pub async fn apply(
        &self,
        workspace: &str,
        desired: Option<&DesiredWorkspace>,
        steps: &[Step],
        observed: &Observed,
    ) -> Result<Applied> {
        let started = std::time::Instant::now();
        let actions: Vec<&Action> = steps.iter().map(|s| &s.action).collect();
        let saved = self.adopt(workspace, &actions)?;
        let owner = desired.map(|d| WorkspaceRef {
            name: workspace,
            root: &d.root,
        });
        self.claim_known(&actions, observed);
        self.remove_unwanted(&actions).await?;
        let network_id = self.prepare(owner, desired, &actions, observed).await?;
        tracing::debug!(
            workspace,
            ms = started.elapsed().as_millis() as u64,
            "prepared network, volumes, images"
        );
        let new_ports = match (desired, owner) {
            (Some(d), Some(owner)) => self.run_containers(owner, d, steps, &network_id).await?,
            _ => BTreeMap::new(),
        };
        tracing::debug!(
            workspace,
            ms = started.elapsed().as_millis() as u64,
            "containers ready"
        );
        self.collect_garbage(&actions).await?;
        let keeps_data = self.keep_or_reclaim(&actions)?;
        self.record(workspace, desired, observed, new_ports, saved, keeps_data)
    }

    /// Starts the clock of volumes kept for the retention window, and stops
    /// it for those a workspace took back. True when data is kept: the
    /// gone workspace's sticky ports then stay too, for an undo.
    fn keep_or_reclaim(&self, actions: &[&Action]) -> Result<bool> {
        let mut keeps = false;
        let mut changes = Vec::new();
        for a in actions {
            match a {
                Action::KeepVolume {
                    volume, at, until, ..
                } => {
                    keeps = true;
                    self.say(format!(
                        "Keeping volume {volume} until {}",
                        super::plan::rfc3339(*until)
                    ));
                    changes.push((volume, Some(*at)));
                }
                Action::ReclaimVolume { volume, .. } => changes.push((volume, None)),
                _ => {}
            }
        }
        if !changes.is_empty() {
            state::update_kept(self.ctx, |k| {
                for (volume, at) in changes {
                    match at {
                        Some(at) => k.insert(volume.clone(), at),
                        None => k.remove(volume),
                    };
                }
            })?;
        }
        Ok(keeps)
    }

    /// A renamed workspace takes over the state of its old name: the ports
    /// `.env` was written with, the backend, the reserved local ports.
    fn adopt(&self, workspace: &str, actions: &[&Action]) -> Result<state::WorkspaceState> {
        let mut saved = state::load(self.ctx, workspace);
        for a in actions {
            let Action::AdoptWorkspace { from, .. } = a else {
                continue;
            };
            let old = state::load(self.ctx, from);
            for (service, ports) in old.ports {
                saved.ports.entry(service).or_insert(ports);
            }
            if saved.backend.is_none() {
                saved.backend = old.backend;
            }
            state::save(self.ctx, &saved)?;
            state::remove(self.ctx, from);
            for (name, port) in old.own_ports {
                saved.own_ports.entry(name).or_insert(port);
            }
            if self.backend.forwards_ports() {
                ports::rename(
                    self.ctx,
                    &ports::owner(self.ctx, from),
                    &ports::owner(self.ctx, workspace),
                )?;
            }
            ports::rename(
                self.ctx,
                &ports::own_owner(self.ctx, from),
                &ports::own_owner(self.ctx, workspace),
            )?;
            self.say(format!(
                "Adopting the environment of {from}, renamed to {workspace}"
            ));
        }
        Ok(saved)
    }

    /// Only a pass that may pick ports needs to know every reserved one; a
    /// no-op pass over N workspaces stays O(N).
    fn claim_known(&self, actions: &[&Action], observed: &Observed) {
        if !actions.iter().any(|a| starts(a)) {
            return;
        }
        let mut claimed = self.claimed.lock().unwrap();
        claimed.extend(state::all_reserved_ports(self.ctx));
        claimed.extend(
            observed
                .containers
                .iter()
                .flat_map(|c| c.ports.values().copied()),
        );
    }

    /// Unwanted containers go first (GC, undeclared services, duplicates),
    /// then duplicate networks, before containers look for theirs.
    async fn remove_unwanted(&self, actions: &[&Action]) -> Result<()> {
        let removals = actions.iter().filter_map(|a| match a {
            Action::RemoveContainer { container, .. } => Some(container.as_str()),
            _ => None,
        });
        collect(
            join_all(removals.map(|c| async move {
                self.say(format!("Removing container {c}"));
                self.backend.remove_container(c, None).await
            }))
            .await,
        )?;
        collect(
            join_all(actions.iter().filter_map(|a| match a {
                Action::RemoveNetwork {
                    network,
                    reason: Reason::Duplicate,
                    ..
                } => Some(self.backend.remove_network(network)),
                _ => None,
            }))
            .await,
        )?;
        Ok(())
    }

    /// What containers need, concurrently: the network, volumes, images.
    /// Returns the network's id (empty when none is needed).
    async fn prepare(
        &self,
        owner: Option<WorkspaceRef<'_>>,
        desired: Option<&DesiredWorkspace>,
        actions: &[&Action],
        observed: &Observed,
    ) -> Result<String> {
        let needs_network = actions
            .iter()
            .any(|a| starts(a) || matches!(a, Action::CreateNetwork { .. }));
        let known = owner.and_then(|o| known_network(o, actions, observed));
        let network = async {
            match (needs_network, owner) {
                // Observed under the workspace's lock, and kept by the
                // plan: asking the engine again would cost a round trip
                // (a remote one) and learn nothing.
                (true, Some(_)) if known.is_some() => Ok(known.map(str::to_string)),
                (true, Some(owner)) => {
                    let services = desired.map_or(1, |d| d.config.services.len());
                    self.backend.ensure_network(owner, services).await.map(Some)
                }
                _ => Ok(None),
            }
        };
        let mut prep: Vec<LocalBoxFuture<'_, backend::Result<()>>> = Vec::new();
        for a in actions {
            if let (
                Action::CreateVolume {
                    service, volume, ..
                },
                Some(owner),
            ) = (a, owner)
            {
                prep.push(
                    self.backend
                        .ensure_volume(owner, service, volume)
                        .boxed_local(),
                );
            }
        }
        let services: Vec<&Service> = actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateContainer { service, .. }
                | Action::RecreateContainer { service, .. } => {
                    desired.and_then(|d| d.config.services.get(service))
                }
                _ => None,
            })
            .collect();
        let images: BTreeSet<&str> = services
            .iter()
            .filter(|s| s.build.is_none())
            .map(|s| s.spec.image.as_str())
            .collect();
        for image in images {
            prep.push(
                async move {
                    self.progress.phase(image, Phase::Preparing);
                    self.backend.ensure_image(image).await?;
                    self.progress.phase(image, Phase::Prepared);
                    Ok(())
                }
                .boxed_local(),
            );
        }
        let mut builds: BTreeMap<&str, &BuildSpec> = BTreeMap::new();
        for s in &services {
            if let Some(b) = &s.build {
                builds.insert(b.tag.as_str(), b);
            }
        }
        let built = join_all(builds.into_values().map(|b| self.ensure_built(b)));
        let (network_id, prepared, built) = futures_util::join!(network, join_all(prep), built);
        collect(built)?;
        let network_id = network_id?.unwrap_or_default();
        collect(prepared)?;
        Ok(network_id)
    }

    /// The image of a `build:` service: present already (the tag is a hash
    /// of what it is built from), or built once. Builds of one tag are
    /// serialised across processes by a lock in the repo's state directory,
    /// and whoever gets it second finds the image there: eight workspaces
    /// added at once do one build.
    async fn ensure_built(&self, spec: &BuildSpec) -> Result<()> {
        if self.backend.image_present(&spec.tag).await? {
            return Ok(());
        }
        let lock_path = self.ctx.state_dir().join("locks").join(format!(
            "build-{}.lock",
            &spec.digest[..spec.digest.len().min(24)]
        ));
        let _lock = tokio::task::spawn_blocking(move || crate::model::repo::lock_path(&lock_path))
            .await
            .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))??;
        if self.backend.image_present(&spec.tag).await? {
            return Ok(());
        }
        self.progress.phase(&spec.tag, Phase::Building);
        // Marks the repo as one with built images, for their collection.
        let _ = std::fs::write(self.ctx.state_dir().join(BUILT_MARKER), b"");
        let started = std::time::Instant::now();
        let log = |line: &str| self.progress.line(&format!("  {} | {line}", spec.tag));
        self.backend.build_image(spec, &log).await?;
        tracing::debug!(image = %spec.tag, ms = started.elapsed().as_millis() as u64, "built");
        self.progress.phase(&spec.tag, Phase::Prepared);
        self.built.lock().unwrap().push(spec.tag.clone());
        Ok(())
    }

    /// Containers, in parallel but for `depends_on`: a service starts once
    /// what it depends on (in this same pass) is ready, or has completed.
    /// Returns the host ports each service got.
    async fn run_containers(
        &self,
        owner: WorkspaceRef<'_>,
        d: &DesiredWorkspace,
        steps: &[Step],
        network_id: &str,
    ) -> Result<BTreeMap<String, BTreeMap<u16, u16>>> {
        let jobs = steps.iter().filter_map(|step| {
            let (service, old, start_only) = match &step.action {
                Action::CreateContainer { service, .. } => (service, None, false),
                Action::RecreateContainer {
                    service, container, ..
                } => (service, Some(container.as_str()), false),
                Action::StartContainer {
                    service, container, ..
                } => (service, Some(container.as_str()), true),
                _ => return None,
            };
            let svc = d.config.services.get(service)?;
            let sticky: BTreeMap<u16, u16> = step
                .ports
                .iter()
                .filter_map(|(c, h)| Some((*c, (*h)?)))
                .collect();
            let run = Run {
                owner,
                svc,
                network_id,
                volumes: &step.volumes,
            };
            Some((
                service.clone(),
                (run, old, start_only, sticky, svc.depends_on.clone()),
            ))
        });
        let mut todo: BTreeMap<String, _> = jobs.collect();
        // Dependencies first; a cycle cannot reach here (the config refuses it).
        let mut order = Vec::new();
        while !todo.is_empty() {
            let ready: Vec<String> = todo
                .iter()
                .filter(|(_, job)| job.4.keys().all(|d| !todo.contains_key(d)))
                .map(|(n, _)| n.clone())
                .collect();
            let ready = if ready.is_empty() {
                todo.keys().cloned().collect()
            } else {
                ready
            };
            for n in ready {
                let job = todo.remove(&n).expect("listed");
                order.push((n, job));
            }
        }
        type Done<'f> = futures_util::future::Shared<
            LocalBoxFuture<'f, std::result::Result<BTreeMap<u16, u16>, CommandError>>,
        >;
        let mut started: BTreeMap<String, Done<'_>> = BTreeMap::new();
        for (service, (run, old, start_only, sticky, deps)) in order {
            let waits: Vec<(String, Done<'_>)> = deps
                .keys()
                .filter_map(|d| started.get(d).map(|f| (d.clone(), f.clone())))
                .collect();
            let workspace = owner.name;
            let name = service.clone();
            let fut = async move {
                for (dep, done) in waits {
                    if let Err(e) = done.await {
                        return Err(CommandError::new(
                            e.code,
                            format!("{workspace}/{name} was not started: {dep}, which it depends on, failed: {}", e.message),
                        )
                        .hint(e.hint.clone().unwrap_or_default())
                        .detail("service", name.clone())
                        .detail("dependency", dep));
                    }
                }
                self.ensure_service(&run, old, start_only, sticky).await
            }
            .boxed_local()
            .shared();
            started.insert(service, fut);
        }
        let names: Vec<String> = started.keys().cloned().collect();
        let results = join_all(started.into_values()).await;
        Ok(collect(results)?
            .into_iter()
            .zip(names)
            .map(|(p, n)| (n, p))
            .collect())
    }

    /// Volumes and networks once nothing uses them.
    async fn collect_garbage(&self, actions: &[&Action]) -> Result<()> {
        let cleanup =
            actions
                .iter()
                .filter_map(|a| -> Option<LocalBoxFuture<'_, backend::Result<()>>> {
                    match a {
                        Action::RemoveVolume { volume, .. } => Some(
                            async move {
                                self.say(format!("Removing volume {volume}"));
                                self.backend.remove_volume(volume).await?;
                                state::update_kept(self.ctx, |k| {
                                    k.remove(volume);
                                })?;
                                Ok(())
                            }
                            .boxed_local(),
                        ),
                        Action::RemoveNetwork {
                            reason: Reason::Duplicate,
                            ..
                        } => None,
                        Action::RemoveNetwork { network, .. } => Some(
                            async move {
                                self.say(format!("Removing network {network}"));
                                self.backend.remove_network(network).await
                            }
                            .boxed_local(),
                        ),
                        _ => None,
                    }
                });
        collect(join_all(cleanup).await)?;
        Ok(())
    }

    /// Records the ports of every declared service (those just created and
    /// those that were already running) and the backend holding them.
    fn record(
        &self,
        workspace: &str,
        desired: Option<&DesiredWorkspace>,
        observed: &Observed,
        new_ports: BTreeMap<String, BTreeMap<u16, u16>>,
        mut saved: state::WorkspaceState,
        keeps_data: bool,
    ) -> Result<Applied> {
        let Some(d) = desired else {
            let gone = Applied {
                ports: PortMap::new(),
                own_ports: OwnPorts::new(),
            };
            if keeps_data {
                // Its data waits for an undo: so do its ports.
                return Ok(gone);
            }
            if self.backend.forwards_ports() {
                ports::release(
                    self.ctx,
                    &ports::owner(self.ctx, workspace),
                    &HashSet::new(),
                )?;
            }
            if !saved.own_ports.is_empty() {
                ports::release(
                    self.ctx,
                    &ports::own_owner(self.ctx, workspace),
                    &HashSet::new(),
                )?;
            }
            state::remove(self.ctx, workspace);
            return Ok(gone);
        };
        let mut ports = PortMap::new();
        for (name, svc) in &d.config.services {
            let current = new_ports.get(name).cloned().or_else(|| {
                observed
                    .containers
                    .iter()
                    .find(|c| {
                        c.workspace == workspace
                            && &c.service == name
                            && c.config_hash == svc.spec.config_hash()
                    })
                    .map(|c| c.ports.clone())
            });
            if let Some(p) = current.filter(|p| svc.spec.ports.iter().all(|c| p.contains_key(c))) {
                ports.insert(name.clone(), p);
            }
        }
        let own_ports = self.own_ports(workspace, d, &saved)?;
        let backend = (!ports.is_empty()).then(|| self.backend.id());
        if saved.ports != ports
            || saved.own_ports != own_ports
            || (backend.is_some() && saved.backend != backend)
        {
            if self.backend.forwards_ports() {
                let keep = ports.values().flat_map(|p| p.values().copied()).collect();
                ports::release(self.ctx, &ports::owner(self.ctx, workspace), &keep)?;
            }
            saved.ports = ports.clone();
            saved.own_ports = own_ports.clone();
            saved.backend = backend.or(saved.backend);
            state::save(self.ctx, &saved)?;
        }
        Ok(Applied { ports, own_ports })
    }

    /// The ports of `[ports]`: each keeps the one it had (bound or not: its
    /// server may be running on it now), else takes its preferred port when
    /// that is free and nobody reserved it, else any free one; all held in
    /// the user's ledger. Ports no longer declared are released.
    fn own_ports(
        &self,
        workspace: &str,
        d: &DesiredWorkspace,
        saved: &state::WorkspaceState,
    ) -> Result<OwnPorts> {
        if d.config.ports.is_empty() && saved.own_ports.is_empty() {
            return Ok(OwnPorts::new());
        }
        let owner = ports::own_owner(self.ctx, workspace);
        let mut own = OwnPorts::new();
        for (name, spec) in &d.config.ports {
            if let Some(&p) = saved.own_ports.get(name) {
                if ports::hold(self.ctx, &owner, p)? {
                    self.claim(p);
                    own.insert(name.clone(), p);
                    continue;
                }
            }
            let preferred = match spec.preferred {
                Some(p)
                    if !self.claimed.lock().unwrap().contains(&p)
                        && portpicker::is_free_tcp(p)
                        && ports::hold(self.ctx, &owner, p)? =>
                {
                    Some(p)
                }
                Some(p) => {
                    self.warn(format!(
                        "{workspace}: port {name}'s preferred {p} is taken; {} gets another",
                        crate::model::config::own_port_var(name)
                    ));
                    None
                }
                None => None,
            };
            let port = match preferred {
                Some(p) => p,
                None => {
                    let avoid = self.claimed.lock().unwrap().clone();
                    ports::reserve(self.ctx, &owner, &avoid)?
                }
            };
            self.claim(port);
            own.insert(name.clone(), port);
        }
        let keep = own.values().copied().collect();
        ports::release(self.ctx, &owner, &keep)?;
        Ok(own)
    }

    /// Creates, recreates or starts one service and waits until it is ready.
    /// Returns its host ports.
    async fn ensure_service(
        &self,
        run: &Run<'_>,
        old: Option<&str>,
        start_only: bool,
        sticky: BTreeMap<u16, u16>,
    ) -> Result<BTreeMap<u16, u16>> {
        let (workspace, name) = (run.owner.name, run.svc.name.as_str());
        let mut ports = BTreeMap::new();
        for cport in &run.svc.spec.ports {
            let host = match sticky.get(cport) {
                Some(h) if self.keep_port(workspace, *h)? => *h,
                _ => self.pick_port(workspace)?,
            };
            ports.insert(*cport, host);
        }
        let container = match (old, start_only) {
            (Some(old), true) => self.start_or_replace(run, old, &mut ports).await?,
            (old, _) => {
                if let Some(old) = old {
                    self.progress
                        .phase(&format!("{workspace}/{name}"), Phase::Recreating);
                    let grace = Duration::from_secs(run.svc.spec.stop_timeout_secs);
                    self.backend.remove_container(old, Some(grace)).await?;
                } else {
                    self.progress
                        .phase(&format!("{workspace}/{name}"), Phase::Creating);
                }
                self.create_with_retry(run, &mut ports, false).await?
            }
        };
        for (cport, host) in &ports {
            if let Some(prev) = sticky.get(cport).filter(|p| *p != host) {
                self.warn(format!(
                    "{workspace}/{name}: host port {prev} was taken, now {host} (container port {cport}); .env is updated"
                ));
            }
        }
        let target = Target {
            workspace,
            service: name,
            container: &container,
            ports: ports.iter().map(|(c, h)| (*c, *h)).collect(),
            healthcheck: run.svc.spec.healthcheck.is_some(),
            completes: run.svc.completes,
            may_exit: run.svc.may_exit(),
            timeout: run.svc.ready_timeout,
        };
        let started = std::time::Instant::now();
        self.progress
            .phase(&format!("{workspace}/{name}"), Phase::Waiting);
        self.backend.wait_ready(&target).await?;
        tracing::debug!(
            workspace,
            service = name,
            ms = started.elapsed().as_millis() as u64,
            "ready after start"
        );
        self.progress
            .phase(&format!("{workspace}/{name}"), Phase::Ready);
        Ok(ports)
    }

    /// Starts a stopped container; the engine may refuse, and the step is
    /// retried as a create: the container vanished meanwhile, or someone
    /// took its port while it was stopped (then a new port, and `.env`
    /// follows).
    async fn start_or_replace(
        &self,
        run: &Run<'_>,
        old: &str,
        ports: &mut BTreeMap<u16, u16>,
    ) -> Result<String> {
        self.progress.phase(
            &format!("{}/{}", run.owner.name, run.svc.name),
            Phase::Starting,
        );
        match self.backend.start(old).await {
            Ok(()) => Ok(old.to_string()),
            Err(e) if e.is(Fault::NotFound) => self.create_with_retry(run, ports, false).await,
            Err(e) if e.is(Fault::PortTaken) => {
                self.backend.remove_container(old, None).await?;
                self.create_with_retry(run, ports, true).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn create_with_retry(
        &self,
        run: &Run<'_>,
        ports: &mut BTreeMap<u16, u16>,
        mut repick: bool,
    ) -> Result<String> {
        let (owner, svc) = (run.owner, run.svc);
        let workspace = owner.name;
        let mut last = String::new();
        let mut twins_removed = false;
        for _ in 0..PORT_ATTEMPTS {
            if repick {
                // Keep the ports still free, so a partly-stolen set stays as sticky as it can.
                let taken: Vec<u16> = ports
                    .iter()
                    .filter(|(_, h)| !portpicker::is_free_tcp(**h))
                    .map(|(c, _)| *c)
                    .collect();
                let replace: Vec<u16> = if taken.is_empty() {
                    ports.keys().copied().collect()
                } else {
                    taken
                };
                for cport in replace {
                    ports.insert(cport, self.pick_port(workspace)?);
                }
            }
            let req = ContainerRequest {
                workspace: workspace.to_string(),
                root: owner.root.to_path_buf(),
                volumes: run.volumes.clone(),
                service: svc.name.clone(),
                spec: svc.spec.clone(),
                ports: ports.clone(),
                network_id: run.network_id.to_string(),
            };
            match self.backend.create_and_start(&req).await {
                Ok(()) => return Ok(self.backend.container_name(owner, &svc.name)),
                Err(e) if e.is(Fault::PortTaken) => {
                    last = e.error.message;
                    repick = true;
                }
                Err(e) if e.is(Fault::Conflict) && !twins_removed => {
                    // A twin network may have appeared after the pass
                    // looked (a create the engine finished for a process
                    // killed since); the engine then cannot tell which
                    // network the container joins. The planner names the
                    // twins; remove them and try once more.
                    twins_removed = true;
                    if !self.remove_twins(owner, run.network_id).await? {
                        return Err(e.into());
                    }
                }
                Err(e) if e.is(Fault::NotFound) => return Err(CommandError::new(
                    ErrorCode::DockerError,
                    format!(
                        "{workspace}/{}: the container vanished as it was created",
                        svc.name
                    ),
                )
                .hint(
                    "another process is removing Aether's containers; run `ajj reconcile` again",
                )),
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::new(
            ErrorCode::PortConflict,
            format!(
                "{workspace}/{}: every host port tried was taken before Docker could bind it",
                svc.name
            ),
        )
        .hint("another program is grabbing ports quickly; retry, or free ports on 127.0.0.1")
        .detail("last_error", last))
    }
}

impl<B: Backend> Applier<'_, B> {
    /// Removes the networks of `owner` other than `keep`, as the planner
    /// names them. False when there were none (the conflict is elsewhere).
    async fn remove_twins(&self, owner: WorkspaceRef<'_>, keep: &str) -> Result<bool> {
        let observed = self.backend.observe(Some(owner.name)).await?;
        let twins = plan::network_twins(&observed, owner.name, owner.root, keep);
        for id in &twins {
            self.backend.remove_network(id).await?;
        }
        Ok(!twins.is_empty())
    }
}

/// Whether the action starts a container (and so may pick ports).
/// The workspace's network as observed, when the plan keeps it as it is:
/// exactly one of this workspace (by name and root), none to be created,
/// none being removed. Anything else (twins, a rename) is left to
/// `ensure_network`, which asks the engine.
fn known_network<'o>(
    owner: WorkspaceRef<'_>,
    actions: &[&Action],
    observed: &'o Observed,
) -> Option<&'o str> {
    let touched = actions.iter().any(|a| {
        matches!(
            a,
            Action::CreateNetwork { .. } | Action::RemoveNetwork { .. }
        )
    });
    let mut ours = observed
        .networks
        .iter()
        .filter(|n| n.workspace == owner.name && n.root.as_deref() == Some(owner.root));
    match (touched, ours.next(), ours.next()) {
        (false, Some(n), None) if !n.id.is_empty() => Some(n.id.as_str()),
        _ => None,
    }
}

fn starts(a: &Action) -> bool {
    matches!(
        a,
        Action::CreateContainer { .. }
            | Action::RecreateContainer { .. }
            | Action::StartContainer { .. }
    )
}

/// One service to run: where, and with which volumes.
struct Run<'a> {
    owner: WorkspaceRef<'a>,
    svc: &'a Service,
    network_id: &'a str,
    volumes: &'a BTreeMap<String, String>,
}

/// Runs every step to the end, then reports the first failure: a half-done
/// batch is worse than a finished one with one error.
fn collect<T, E: Into<CommandError>>(results: Vec<std::result::Result<T, E>>) -> Result<Vec<T>> {
    let mut ok = Vec::with_capacity(results.len());
    let mut first_err = None;
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) if first_err.is_none() => first_err = Some(e.into()),
            Err(_) => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(ok),
    }
}
