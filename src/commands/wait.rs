//! `ajj wait`: blocks until the workspace's services are ready, by the same
//! readiness `workspace add` waits for (the backend's `wait_ready`). Made for
//! scripts and agents that ran a plain `jj workspace add` while `ajj watch`
//! provisions: the environment may not exist yet when this starts.

use crate::backend::docker::DockerBackend;
use crate::backend::readiness::Target;
use crate::backend::{Backend, ObservedContainer, ServiceState};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::{self, print_json, CommandHelper};
use crate::model::config::Config;
use crate::model::{config, envfile};
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the environment is looked for while it does not exist yet.
const LOOK_AGAIN: Duration = Duration::from_millis(250);
/// Added to the longest `ready_timeout` for the default `--timeout`: time
/// for a watcher to notice the workspace and create its containers.
const PROVISIONING: Duration = Duration::from_secs(60);

/// Wait until the workspace's services are ready
///
/// Blocks until every service (or those named) of the current workspace
/// serves, by the same readiness `ajj workspace add` uses, and `.env` names
/// its ports. For scripts and agents that ran a plain `jj workspace add`
/// while `ajj watch` provisions. Exits 0 when ready; READINESS_TIMEOUT or
/// SERVICE_EXITED otherwise; WORKSPACE_NOT_FOUND when no environment
/// appears within the timeout.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these services (default: every service in aether.toml)
    #[arg(value_name = "SERVICE",
          add = clap_complete::ArgValueCompleter::new(crate::commands::completions::service_names))]
    pub services: Vec<String>,
    /// Give up after this long (`90s`, `5m`). Default: the longest
    /// `ready_timeout` of the services plus 60s for provisioning
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let workspace = helper.workspace_here(&ctx)?;
    let config = config::load_from_root(&ctx.workspace_root)?;
    let services = commands::declared_services(&config, &workspace, &args.services)?;
    let timeout = match &args.timeout {
        Some(text) => commands::parse_duration_flag("--timeout", text)?,
        None => default_timeout(&config, &services),
    };
    let started = Instant::now();
    let ready = crate::base::runtime::block_on(async {
        let spec = helper.workspace_backend(&ctx, &workspace)?;
        let backend = helper.connect(&ctx, &spec).await?;
        let deadline = started + timeout;
        let mut ready = Vec::new();
        let mut expected = Vec::new();
        for service in &services {
            let container = appear(
                &backend,
                &ctx.workspace_root,
                &workspace,
                service,
                deadline,
                timeout,
            )
            .await?;
            let target = Target {
                workspace: &workspace,
                service,
                container: &container.name,
                ports: container.ports.iter().map(|(c, h)| (*c, *h)).collect(),
                healthcheck: config.services[service].spec.healthcheck.is_some(),
                completes: config.services[service].completes,
                may_exit: config.services[service].may_exit(),
                timeout: deadline.saturating_duration_since(Instant::now()),
            };
            backend.wait_ready(&target).await?;
            let svc = &config.services[service];
            for name in config::generated_var_names(svc) {
                expected.push((name, None));
            }
            if let Some(port) = svc.spec.ports.first().and_then(|p| container.ports.get(p)) {
                let name = format!("{}_PORT", config::var_prefix(service));
                expected.push((name, Some(port.to_string())));
            }
            ready.push(json!({
                "service": service,
                "container": container.name,
                "ports": container.ports,
            }));
        }
        // A watcher writes `.env` after readiness: wait for it too, so that
        // `ajj run` right after this sees the ports.
        wait_for_env(
            &ctx.workspace_root,
            &workspace,
            &expected,
            deadline,
            timeout,
        )
        .await?;
        Ok::<_, CommandError>(ready)
    })?;
    let waited_ms = started.elapsed().as_millis() as u64;
    if args.json {
        print_json(&json!({
            "schema_version": SCHEMA_VERSION,
            "workspace": workspace,
            "ready": true,
            "waited_ms": waited_ms,
            "services": ready,
        }));
    } else {
        eprintln!(
            "{workspace}: {} ready ({:.1}s)",
            services.join(", "),
            waited_ms as f64 / 1000.0
        );
    }
    Ok(0)
}

fn default_timeout(config: &Config, services: &[String]) -> Duration {
    services
        .iter()
        .map(|s| config.services[s].ready_timeout)
        .max()
        .unwrap_or_default()
        + PROVISIONING
}

/// The service's container, once one exists (a running one preferred).
async fn appear(
    backend: &DockerBackend,
    root: &Path,
    workspace: &str,
    service: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<ObservedContainer> {
    loop {
        let observed = backend.containers_at(root).await?;
        let mut of_service = observed.iter().filter(|c| c.service == service);
        if let Some(c) = of_service
            .clone()
            .find(|c| c.state == ServiceState::Running)
            .or_else(|| of_service.next())
        {
            return Ok(c.clone());
        }
        if Instant::now() >= deadline {
            return Err(if observed.is_empty() {
                CommandError::new(
                    ErrorCode::WorkspaceNotFound,
                    format!(
                        "no environment appeared for {workspace} within {}",
                        humantime::format_duration(timeout)
                    ),
                )
                .hint("is `ajj watch` running? `ajj reconcile` provisions it now")
                .detail("workspace", workspace)
            } else {
                CommandError::new(
                    ErrorCode::ReadinessTimeout,
                    format!(
                        "{workspace}/{service} has no container after {}",
                        humantime::format_duration(timeout)
                    ),
                )
                .hint("`ajj status` shows its state; `ajj reconcile` creates it")
                .detail("workspace", workspace)
                .detail("service", service)
                .detail("timeout_secs", timeout.as_secs())
            });
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// Waits until `.env` holds the variables of every service waited for, with
/// the ports of the containers now there (not a previous environment's).
async fn wait_for_env(
    root: &Path,
    workspace: &str,
    expected: &[(String, Option<String>)],
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    loop {
        let written = envfile::read_all(root)?;
        let has = |(name, value): &(String, Option<String>)| {
            written
                .iter()
                .any(|(k, v)| k == name && value.as_ref().is_none_or(|want| want == v))
        };
        if expected.iter().all(has) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CommandError::new(
                ErrorCode::ReadinessTimeout,
                format!(
                    "{workspace}: the services are ready but .env does not name them after {}",
                    humantime::format_duration(timeout)
                ),
            )
            .hint("`ajj reconcile` writes .env")
            .detail("workspace", workspace));
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}
