//! From a [`BackendSpec`] to a connected backend: the one place that names
//! the implementations. A Kubernetes backend is one more arm here.

use super::docker::DockerBackend;
use super::ssh::master::{self, Master};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::backend_spec::BackendSpec;
use crate::model::repo::RepoContext;

pub async fn connect(ctx: &RepoContext, spec: &BackendSpec) -> Result<DockerBackend> {
    match spec {
        BackendSpec::Local => DockerBackend::connect(&ctx.repo_id).await,
        BackendSpec::Ssh {
            target,
            docker_socket,
            persist,
        } => {
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
            let master = Master::new(&ctx.repo_id, target.clone(), docker_socket.clone(), persist)?;
            DockerBackend::connect_remote(&ctx.repo_id, master).await
        }
    }
}
