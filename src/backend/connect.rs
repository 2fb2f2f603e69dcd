//! From a [`BackendSpec`] to a connected backend: the one place that names
//! the implementations. A Kubernetes backend is one more arm here.

use super::docker::DockerBackend;
use super::ssh::forward::{Forwarder, Verify};
use super::ssh::master::{self, Master};
use super::{Forward, Forwarding};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::backend_spec::BackendSpec;
use crate::model::repo::RepoContext;

pub async fn connect(ctx: &RepoContext, spec: &BackendSpec) -> Result<DockerBackend> {
    match master_for(ctx, spec)? {
        None => DockerBackend::connect(&ctx.repo_id).await,
        Some(master) => DockerBackend::connect_remote(&ctx.repo_id, master).await,
    }
}

/// The SSH master of a remote backend; `None` for the local engine.
fn master_for(ctx: &RepoContext, spec: &BackendSpec) -> Result<Option<Master>> {
    let BackendSpec::Ssh {
        target,
        docker_socket,
        persist,
    } = spec
    else {
        return Ok(None);
    };
    let persist = match std::env::var(master::PERSIST_ENV) {
        Ok(text) if !text.is_empty() => humantime::parse_duration(&text).map_err(|e| {
            CommandError::new(
                ErrorCode::Usage,
                format!("invalid {}={text:?}: {e}", master::PERSIST_ENV),
            )
            .hint("write a duration such as 30s or 5m")
        })?,
        _ => persist.unwrap_or(master::DEFAULT_PERSIST),
    };
    Master::new(&ctx.repo_id, target.clone(), docker_socket.clone(), persist).map(Some)
}

/// Forwards to remote ports the last pass recorded, opened without a round
/// trip to the remote host: a warm master is found by its local sockets
/// (a cold one is started, which costs its handshake). `verify` checks the
/// ports meanwhile (see `Forwarder::open_verifying`). `None` where ports
/// are published on this host and nothing is forwarded.
pub fn open_recorded_forwards(
    ctx: &RepoContext,
    spec: &BackendSpec,
    forwards: &[Forward],
    verify: Verify,
    on_lost: Box<dyn FnOnce() + Send>,
) -> Result<Option<Box<dyn Forwarding>>> {
    let Some(master) = master_for(ctx, spec)? else {
        return Ok(None);
    };
    master.ensure()?;
    let forwarder = Forwarder::open_verifying(&master.control, forwards, verify, on_lost)?;
    Ok(Some(Box::new(forwarder)))
}
