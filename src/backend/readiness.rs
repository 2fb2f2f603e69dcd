//! Waiting until a service really serves. Docker's userland proxy accepts a
//! connection on the host port even when nothing listens in the container,
//! then closes it; so a bare connect proves nothing. A port counts as ready
//! when a connection stays open (or the server speaks first) for a moment.

use crate::backend::{Backend, LiveStatus, ServiceState};
use crate::base::error::{CommandError, ErrorCode, Result};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a proxied connection must survive to prove a listener behind it.
const HOLD: Duration = Duration::from_millis(150);
const POLL: Duration = Duration::from_millis(50);

/// Connects straight to the container: `Some(true)` listening, `Some(false)`
/// refused, `None` when the address cannot be reached from here at all.
pub async fn probe_direct(ip: std::net::IpAddr, port: u16) -> Option<bool> {
    match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(false),
        _ => None,
    }
}

/// Through the published port, past Docker's proxy (see the module docs).
pub async fn probe(host: &str, port: u16) -> bool {
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect((host, port))).await
    else {
        return false;
    };
    held_open(stream).await
}

/// A connection proves a listener when it stays open (a server waiting for
/// its client) or the server speaks first; a proxy with nothing behind it
/// closes at once.
pub async fn held_open(mut stream: impl tokio::io::AsyncRead + Unpin) -> bool {
    let mut buf = [0u8; 1];
    match tokio::time::timeout(HOLD, stream.read(&mut buf)).await {
        Err(_) => true,      // held open: a server waiting for the client
        Ok(Ok(n)) => n > 0,  // spoke first; 0 is the proxy's close
        Ok(Err(_)) => false, // reset
    }
}

pub struct Target<'a> {
    pub workspace: &'a str,
    pub service: &'a str,
    pub container: &'a str,
    /// (container port, host port)
    pub ports: Vec<(u16, u16)>,
    pub healthcheck: bool,
    /// A one-shot job: ready once it exited 0.
    pub completes: bool,
    /// Its restart policy lets it end (`no`, `on-failure`): an exit 0 is
    /// a finished task, not a failure.
    pub may_exit: bool,
    pub timeout: Duration,
}

pub async fn wait_ready<B: Backend>(backend: &B, t: &Target<'_>) -> Result<()> {
    let start = Instant::now();
    loop {
        let asked = Instant::now();
        let live = backend.live_status(t.container).await?;
        // What one question to the engine costs, from here: the confirming
        // question below is asked that long before the probes end.
        let round_trip = asked.elapsed();
        if t.completes {
            match live.state {
                ServiceState::Exited | ServiceState::Dead if live.exit_code == Some(0) => {
                    return Ok(())
                }
                ServiceState::Exited | ServiceState::Dead => {
                    return Err(exited(backend, t, live.exit_code).await)
                }
                _ if start.elapsed() >= t.timeout => {
                    return Err(not_ready(t, "it did not complete in time"))
                }
                _ => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
        }
        if t.may_exit
            && matches!(live.state, ServiceState::Exited | ServiceState::Dead)
            && live.exit_code == Some(0)
        {
            return Ok(());
        }
        // A container that restarts while starting has exited at least once
        // (the restart policy hides it); the proxy in front of a restarting
        // container can even hold connections open, so it must never count.
        if matches!(
            live.state,
            ServiceState::Exited | ServiceState::Dead | ServiceState::Restarting
        ) {
            return Err(exited(backend, t, live.exit_code).await);
        }
        if t.healthcheck {
            match live.health.as_deref() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err(not_ready(t, "its healthcheck reports unhealthy")),
                _ => {}
            }
        } else if live.state == ServiceState::Running {
            // Confirm nothing died while the probes held their connections:
            // asked so that the answer comes back as the probes end (on a
            // remote host each probe waits a round trip for its channel,
            // then holds), not a round trip after them.
            let probing = t.ports.len() as u32 * (HOLD + round_trip);
            let confirm = async {
                tokio::time::sleep(probing.saturating_sub(round_trip)).await;
                backend.live_status(t.container).await
            };
            let probe = live_ports(backend, t, &live);
            futures_util::pin_mut!(confirm, probe);
            let after = match futures_util::future::select(probe, confirm).await {
                futures_util::future::Either::Left((true, confirm)) => Some(confirm.await?),
                futures_util::future::Either::Left((false, _)) => None,
                futures_util::future::Either::Right((after, probe)) => {
                    probe.await.then_some(after?)
                }
            };
            if let Some(after) = after {
                if after.state == ServiceState::Running {
                    return Ok(());
                }
                return Err(exited(backend, t, after.exit_code).await);
            }
        }
        if start.elapsed() >= t.timeout {
            return Err(not_ready(t, "it did not become ready in time"));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn exited<B: Backend>(backend: &B, t: &Target<'_>, code: Option<i64>) -> CommandError {
    let logs = backend.logs_tail(t.container, 20).await;
    CommandError::new(
        ErrorCode::ServiceExited,
        format!(
            "{}/{} exited with code {} while starting",
            t.workspace,
            t.service,
            code.unwrap_or(-1)
        ),
    )
    .hint(format!(
        "check its image and command; `docker logs {}` shows the rest",
        t.container
    ))
    .detail("service", t.service)
    .detail("workspace", t.workspace)
    .detail("container", t.container)
    .detail("exit_code", code)
    .detail("logs", logs.trim_end())
}

async fn live_ports<B: Backend>(backend: &B, t: &Target<'_>, live: &LiveStatus) -> bool {
    for &(container_port, client_port) in &t.ports {
        if !backend.serving(live, container_port, client_port).await {
            return false;
        }
    }
    true
}

fn not_ready(t: &Target<'_>, why: &str) -> CommandError {
    CommandError::new(
        ErrorCode::ReadinessTimeout,
        format!("{}/{} is not ready: {why} (waited {}s)", t.workspace, t.service, t.timeout.as_secs()),
    )
    .hint(format!(
        "raise `ready_timeout` or fix the healthcheck in aether.toml; `docker logs {}` shows what the service says",
        t.container
    ))
    .detail("service", t.service)
    .detail("workspace", t.workspace)
    .detail("timeout_secs", t.timeout.as_secs())
}
