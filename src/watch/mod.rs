//! `ajj watch`: a long-running, level-triggered reconciler.
//!
//! Triggers (jj operations, workspace files, backend events, hold expiry)
//! only say "something may have changed"; each pass recomputes everything
//! from jj and the backend, as `ajj reconcile` does. The loop:
//!
//! ```text
//! connect ─► pass ─► wait for a trigger ─► debounce ─► pass ─► ...
//!    ▲                                                   │ backend lost
//!    └──────────── retry 1 s, 2 s, ... 10 s ◄────────────┘
//! ```
//!
//! Errors come in two kinds, as in watchexec: a per-workspace error (a bad
//! aether.toml, a service that will not start) is reported and survived; a
//! lost backend is reported once and the watcher reconnects.

pub mod backoff;
pub mod log;
pub mod triggers;

use crate::backend::{connect, Backend, BackendEvent, EventKind, Fault};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::backend_spec::BackendSpec;
use crate::model::desired::{self, MissingRoot};
use crate::model::repo::{self, RepoContext};
use crate::model::state;
use crate::reconcile::plan::{Action, Reason};
use crate::reconcile::report::{self, ActionReport};
use crate::reconcile::{self, apply::Applier, PassOptions};
use backoff::CrashLoops;
use futures_util::StreamExt;
use log::{ms, Log};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use triggers::FsTriggers;

/// After the first trigger, wait for this much quiet...
const QUIET: Duration = Duration::from_millis(50);
/// ...but never longer than this, so a jj operation starts a pass within
/// ~200 ms even while events keep coming.
const MAX_DELAY: Duration = Duration::from_millis(200);
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

pub struct WatchOptions {
    pub json: bool,
    /// `--backend` or `$AETHER_BACKEND`, already parsed.
    pub backend: Option<BackendSpec>,
    pub missing_root: Option<MissingRoot>,
}

/// What the loop receives on its channel.
pub enum Wake {
    Fs(notify::Event),
    Signal(&'static str),
}

/// Why a pass runs; reported with it.
#[derive(Debug, Clone)]
struct Trigger {
    /// What woke the watcher first.
    cause: &'static str,
    /// Everything that came in the same burst, the first included.
    causes: BTreeSet<&'static str>,
    first_seen: Instant,
}

impl Trigger {
    fn new(cause: &'static str) -> Trigger {
        Trigger {
            cause,
            causes: BTreeSet::from([cause]),
            first_seen: Instant::now(),
        }
    }

    /// Adds `cause` to the burst being gathered, or starts one.
    fn note(burst: &mut Option<Trigger>, cause: &'static str) {
        match burst {
            Some(t) => {
                t.causes.insert(cause);
            }
            None => *burst = Some(Trigger::new(cause)),
        }
    }
}

pub fn run(ctx: RepoContext, options: WatchOptions) -> Result<i32> {
    let _lock = repo::lock_watcher(&ctx)?;
    crate::base::runtime::block_on(async { Watcher::new(ctx, options)?.run().await })
}

/// The deaths that count toward a crash loop: a death followed by a
/// removal was a removal (often our own), not a crash.
fn strikes<'a>(
    deaths: &'a [BackendEvent],
    removed: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a BackendEvent> {
    deaths.iter().filter(|d| !removed.contains(&d.container))
}

/// The backend's own answer to whether it is gone: `Some` when it is.
async fn lost<B: Backend>(backend: &B) -> Option<CommandError> {
    match backend.ping().await {
        Err(e) if e.is(Fault::Unreachable) => Some(e.into()),
        _ => None,
    }
}

struct Watcher {
    ctx: RepoContext,
    options: WatchOptions,
    log: Log,
    rx: UnboundedReceiver<Wake>,
    fs: FsTriggers,
    loops: CrashLoops,
    /// When the next kept volume's retention window ends, from the last
    /// pass (seconds since the epoch).
    expiry: Option<u64>,
    /// The last error reported per workspace, so a standing one (a typo in
    /// aether.toml) is reported once, not on every pass.
    standing: BTreeMap<String, String>,
    /// Warnings already reported (a Compose file's rewrites are read
    /// again by every pass, and said once).
    warned: std::collections::BTreeSet<String>,
    stop: Option<&'static str>,
}

enum Outcome {
    Stop,
    BackendLost(CommandError),
}

impl Watcher {
    fn new(ctx: RepoContext, options: WatchOptions) -> Result<Self> {
        let (tx, rx) = unbounded_channel();
        let fs = FsTriggers::new(&ctx.store, tx.clone())?;
        Ok(Watcher {
            log: Log::new(options.json),
            ctx,
            options,
            rx,
            fs,
            loops: match std::env::var(backoff::MAX_HOLD_ENV) {
                Ok(text) if !text.is_empty() => {
                    CrashLoops::with_max_hold(humantime::parse_duration(&text).map_err(|e| {
                        CommandError::new(
                            ErrorCode::Usage,
                            format!("invalid {}={text:?}: {e}", backoff::MAX_HOLD_ENV),
                        )
                        .hint("write a duration such as 30s or 5m")
                    })?)
                }
                _ => CrashLoops::default(),
            },
            expiry: None,
            standing: BTreeMap::new(),
            warned: Default::default(),
            stop: None,
        })
        .inspect(|_| spawn_signal_forwarder(tx))
    }

    async fn run(mut self) -> Result<i32> {
        self.log.emit(
            "watching",
            json!({ "repo": self.ctx.store.display().to_string(), "pid": std::process::id() }),
            || {
                format!(
                    "watching {} (pid {})",
                    self.ctx.store.display(),
                    std::process::id()
                )
            },
        );
        let mut delay = RECONNECT_FIRST;
        let mut down = false;
        let mut first = Trigger::new("start");
        loop {
            // The spec is read again on every connect: an edited [backend]
            // takes effect at the next reconnect, as it would for a command.
            let spec = state::desired_backend(&self.ctx, self.options.backend.clone());
            match connect::connect(&self.ctx, &spec).await {
                Ok(backend) => {
                    if down {
                        self.log.emit("backend_reconnected", json!({}), || {
                            "the backend is reachable again: reconciling".into()
                        });
                        first = Trigger::new("reconnect");
                    }
                    delay = RECONNECT_FIRST;
                    match self.connected(&backend, first.clone()).await {
                        Outcome::Stop => break,
                        Outcome::BackendLost(e) => {
                            self.report_down(&e);
                            down = true;
                        }
                    }
                }
                Err(e) => {
                    if !down {
                        self.report_down(&e);
                        down = true;
                    }
                    if self.sleep_or_stop(delay).await {
                        break;
                    }
                    delay = (delay * 2).min(RECONNECT_MAX);
                }
            }
            if self.stop.is_some() {
                break;
            }
        }
        let signal = self.stop.unwrap_or("");
        self.log.emit("stopped", json!({ "signal": signal }), || {
            format!("stopped ({signal})")
        });
        Ok(0)
    }

    fn report_down(&self, e: &CommandError) {
        self.log.error(None, e);
        self.log.emit(
            "backend_unreachable",
            json!({ "retry_max_ms": ms(RECONNECT_MAX) }),
            || "waiting for the backend; environments are left as they are".into(),
        );
    }

    /// Waits `delay`, draining triggers (a pass follows the reconnect
    /// anyway). True when a signal asks to stop.
    async fn sleep_or_stop(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                wake = self.rx.recv() => match wake {
                    Some(Wake::Signal(s)) => {
                        self.stop = Some(s);
                        return true;
                    }
                    None => {
                        self.stop = Some("channel closed");
                        return true;
                    }
                    Some(Wake::Fs(_)) => {}
                },
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// Passes and waits while the backend is reachable.
    async fn connected<B: Backend>(&mut self, backend: &B, first: Trigger) -> Outcome {
        let mut events = backend.events();
        // Events that came while a pass ran, in order; `None` is the end
        // of the stream.
        let mut early: VecDeque<Option<crate::backend::Result<BackendEvent>>> = VecDeque::new();
        let mut next = Some(first);
        loop {
            if let Some(trigger) = next.take() {
                // The stream is polled while the pass runs: its request goes
                // out with the pass's observation, not after it, so that a
                // change made between the two is not missed (at a distance,
                // that gap is the whole pass plus a round trip).
                let passed = {
                    let pass = self.pass(backend, &trigger);
                    tokio::pin!(pass);
                    let mut ended = false;
                    loop {
                        tokio::select! {
                            r = &mut pass => break r,
                            ev = events.next(), if !ended => {
                                ended = ev.is_none();
                                early.push_back(ev);
                            }
                        }
                    }
                };
                match passed {
                    Ok(again) if again => {
                        // New roots are watched from now on; what changed in
                        // them before that is picked up by one more pass.
                        next = Some(Trigger::new("new_workspace"));
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => match lost(backend).await {
                        Some(_) => return Outcome::BackendLost(e),
                        None => self.log.error(None, &e),
                    },
                }
            }
            if self.stop.is_some() {
                return Outcome::Stop;
            }
            // Wait for the first trigger, then gather the burst.
            let release = self
                .loops
                .next_release(Instant::now())
                .map(tokio::time::Instant::from_std);
            let expiry = self.expiry.map(|at| {
                let wait = at.saturating_sub(desired::Retention::clock());
                tokio::time::Instant::now() + Duration::from_secs(wait)
            });
            let mut trigger: Option<Trigger> = None;
            let mut deaths: Vec<BackendEvent> = Vec::new();
            let mut removed: BTreeSet<String> = BTreeSet::new();
            let mut deadline: Option<tokio::time::Instant> = None;
            loop {
                let quiet = deadline.map(|d| d.min(tokio::time::Instant::now() + QUIET));
                tokio::select! {
                    wake = self.rx.recv() => match wake {
                        Some(Wake::Signal(s)) => { self.stop = Some(s); return Outcome::Stop; }
                        None => { self.stop = Some("channel closed"); return Outcome::Stop; }
                        Some(Wake::Fs(event)) => {
                            if let Some(cause) = self.fs.classify(&event) {
                                Trigger::note(&mut trigger, cause.as_str());
                            }
                        }
                    },
                    event = async {
                        match early.pop_front() {
                            Some(ev) => ev,
                            None => events.next().await,
                        }
                    } => match event {
                        Some(Ok(ev)) => {
                            match ev.kind {
                                EventKind::Removed => { removed.insert(ev.container.clone()); }
                                EventKind::Died { .. } => deaths.push(ev),
                            }
                            Trigger::note(&mut trigger, "backend_event");
                        }
                        Some(Err(e)) => return Outcome::BackendLost(e.into()),
                        None => return Outcome::BackendLost(CommandError::new(
                            ErrorCode::DockerUnreachable,
                            "the backend closed its event stream",
                        )),
                    },
                    _ = async { tokio::time::sleep_until(release.expect("guarded")).await }, if release.is_some() && trigger.is_none() => {
                        trigger = Some(Trigger::new("hold_expired"));
                    },
                    _ = async { tokio::time::sleep_until(expiry.expect("guarded")).await }, if expiry.is_some() && trigger.is_none() => {
                        trigger = Some(Trigger::new("data_expired"));
                    },
                    _ = async { tokio::time::sleep_until(quiet.expect("guarded")).await }, if quiet.is_some() => break,
                }
                if trigger.is_some() && deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + MAX_DELAY);
                }
            }
            for death in strikes(&deaths, &removed) {
                self.strike(backend, death).await;
            }
            next = trigger;
        }
    }

    async fn strike<B: Backend>(&mut self, backend: &B, death: &BackendEvent) {
        let EventKind::Died { exit_code } = death.kind else {
            return;
        };
        if let Some(hold) = self.loops.strike(&death.workspace, Instant::now()) {
            let logs = backend.logs_tail(&death.container, 5).await;
            self.log.emit(
                "crash_loop",
                json!({
                    "workspace": death.workspace,
                    "service": death.service,
                    "exit_code": exit_code,
                    "hold_ms": ms(hold),
                    "logs": logs,
                }),
                || {
                    format!(
                        "crash loop: {}/{} keeps exiting (last exit code {}); leaving {} alone for {}\n{}",
                        death.workspace,
                        death.service,
                        exit_code.map_or("?".into(), |c| c.to_string()),
                        death.workspace,
                        humantime::format_duration(hold),
                        logs.trim_end()
                    )
                },
            );
        }
    }

    /// The pass's actions, `.env` writes and warnings, as events.
    fn log_outcome(&self, report: &reconcile::PassReport, warnings: &[String]) {
        for step in &report.actions {
            let ws = step.action.workspace();
            let fields = serde_json::to_value(ActionReport::new(step)).unwrap_or_default();
            let mut fields = fields.as_object().cloned().unwrap_or_default();
            fields.insert(
                "duration_ms".into(),
                report.durations.get(ws).map(|d| ms(*d)).into(),
            );
            self.log
                .emit("action", serde_json::Value::Object(fields), || {
                    report::describe(step)
                });
        }
        for ws in &report.env_written {
            self.log
                .emit("env_written", json!({ "workspace": ws }), || {
                    format!("wrote .env of {ws}")
                });
        }
        for w in warnings {
            self.log.emit("warning", json!({ "message": w }), || {
                format!("warning: {w}")
            });
        }
    }

    /// Reports each workspace's error once while it stands, and
    /// `recovered` when it is gone; a service that would not start is a
    /// crash-loop strike. Returns the failing workspaces.
    async fn log_errors<B: Backend>(
        &mut self,
        backend: &B,
        report: &reconcile::PassReport,
    ) -> BTreeSet<String> {
        let mut failing = BTreeSet::new();
        for (ws, e) in &report.errors {
            failing.insert(ws.clone());
            let key = format!("{}: {}", e.code.as_str(), e.message);
            if self.standing.get(ws) != Some(&key) {
                self.log.error(Some(ws), e);
                self.standing.insert(ws.clone(), key);
            }
            if matches!(
                e.code,
                ErrorCode::ServiceExited | ErrorCode::ReadinessTimeout
            ) {
                let detail = |k: &str| {
                    e.details
                        .get(k)
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let death = BackendEvent {
                    workspace: ws.clone(),
                    service: detail("service"),
                    container: detail("container"),
                    kind: EventKind::Died { exit_code: None },
                };
                self.strike(backend, &death).await;
            }
        }
        let recovered: Vec<String> = self
            .standing
            .keys()
            .filter(|ws| !failing.contains(*ws))
            .cloned()
            .collect();
        for ws in recovered {
            self.standing.remove(&ws);
            self.log.emit("recovered", json!({ "workspace": ws }), || {
                format!("{ws} is converged again")
            });
        }
        failing
    }

    /// One full pass. Returns whether a new workspace root began to be watched.
    async fn pass<B: Backend>(&mut self, backend: &B, trigger: &Trigger) -> Result<bool> {
        let now = Instant::now();
        let hold = self.loops.held(now);
        let latency = now.duration_since(trigger.first_seen);
        self.log.emit(
            "pass_started",
            json!({ "cause": trigger.cause, "causes": trigger.causes, "latency_ms": ms(latency), "held": hold }),
            || format!("pass ({}, {} ms after it)", trigger.cause, ms(latency)),
        );
        let applier = Applier::new(backend, &self.ctx, false);
        let options = PassOptions {
            dry_run: false,
            missing_root: self.options.missing_root,
            hold,
        };
        let report = reconcile::reconcile_all(&applier, &options).await?;
        self.expiry = report.next_expiry;
        let took = now.elapsed();
        let warnings: Vec<String> = applier
            .warnings
            .lock()
            .unwrap()
            .iter()
            .filter(|w| self.warned.insert((*w).clone()))
            .cloned()
            .collect();
        drop(applier);
        self.log_outcome(&report, &warnings);
        if !report.errors.is_empty() {
            // Failures may all be one lost backend: ask it, rather than
            // read the errors.
            if let Some(e) = lost(backend).await {
                return Err(e);
            }
        }
        let failing = self.log_errors(backend, &report).await;
        let now = Instant::now();
        for ws in report.durations.keys() {
            if !failing.contains(ws) {
                self.loops.settled(ws, now);
            }
        }
        let restarted = report
            .actions
            .iter()
            .filter(|s| restarts(&s.action))
            .count();
        self.log.emit(
            "pass_finished",
            json!({
                "duration_ms": ms(took),
                "actions": report.actions.len(),
                "restarted": restarted,
                "errors": report.errors.len(),
            }),
            || {
                format!(
                    "pass done in {} ms: {} action(s), {} error(s)",
                    ms(took),
                    report.actions.len(),
                    report.errors.len()
                )
            },
        );
        Ok(self.fs.sync(&report.roots))
    }
}

/// An action that brings back something that was running before.
fn restarts(a: &Action) -> bool {
    matches!(
        a,
        Action::StartContainer { .. }
            | Action::RecreateContainer {
                reason: Reason::Stopped,
                ..
            }
    )
}

/// SIGINT and SIGTERM become a message: the loop finishes the pass it is in
/// and exits 0.
fn spawn_signal_forwarder(tx: tokio::sync::mpsc::UnboundedSender<Wake>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = tx.send(Wake::Signal(name));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::{ContainerRequest, Naming, WorkspaceRef};
    use crate::model::config;
    use std::path::Path;

    fn request(b: &MemoryBackend, root: &Path, service: &str) -> ContainerRequest {
        let cfg = format!("[services.{service}]\nimage = \"x\"\nports = [80]\n");
        let config = config::parse(&cfg, Path::new("aether.toml")).unwrap();
        let ws = WorkspaceRef { name: "w", root };
        ContainerRequest {
            workspace: "w".into(),
            root: root.into(),
            service: service.into(),
            spec: config.services[service].spec.clone(),
            ports: BTreeMap::from([(80, 40000)]),
            network_id: b.network_name(ws),
            volumes: BTreeMap::new(),
        }
    }

    #[test]
    fn the_backend_is_lost_only_when_it_says_unreachable() {
        let b = MemoryBackend::default();
        crate::base::runtime::block_on(async {
            assert!(lost(&b).await.is_none());
            b.set_reachable(false);
            let e = lost(&b).await.expect("lost");
            assert_eq!(e.code, ErrorCode::DockerUnreachable);
            b.set_reachable(true);
            assert!(lost(&b).await.is_none());
        });
    }

    #[test]
    fn a_crash_is_a_strike_and_a_removal_is_not() {
        let b = MemoryBackend::default();
        let root = Path::new("/w");
        crate::base::runtime::block_on(async {
            b.create_and_start(&request(&b, root, "db")).await.unwrap();
            b.create_and_start(&request(&b, root, "web")).await.unwrap();
            let mut events = b.events();
            b.kill("c-w-db", 1);
            b.kill("c-w-web", 1);
            b.remove_container("c-w-web", None).await.unwrap();
            let (mut deaths, mut removed) = (Vec::new(), BTreeSet::new());
            for _ in 0..3 {
                let ev = events.next().await.unwrap().unwrap();
                match ev.kind {
                    EventKind::Removed => {
                        removed.insert(ev.container.clone());
                    }
                    EventKind::Died { .. } => deaths.push(ev),
                }
            }
            let struck: Vec<_> = strikes(&deaths, &removed)
                .map(|d| d.service.as_str())
                .collect();
            assert_eq!(struck, ["db"]);
            // Three strikes of db within the window hold the workspace.
            let mut loops = CrashLoops::default();
            let now = Instant::now();
            let held = (0..3).filter_map(|_| loops.strike("w", now)).count();
            assert_eq!(held, 1, "the third strike holds");
            assert!(loops.held(now).contains("w"));
        });
    }
}
