//! Which backend a command talks to: local Docker, or Docker on a host
//! reached over SSH. Chosen by `--backend`/`$AETHER_BACKEND`, else the
//! `[backend]` table of aether.toml, else local Docker.

use crate::error::{CommandError, ErrorCode, Result};
use crate::ssh::SshTarget;
use std::time::Duration;

pub const ENV: &str = "AETHER_BACKEND";
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BackendSpec {
    #[default]
    Local,
    Ssh {
        target: SshTarget,
        /// The engine's socket on the remote host.
        docker_socket: String,
        /// How long an idle SSH master stays up (`ControlPersist`).
        persist: Option<Duration>,
    },
}

impl BackendSpec {
    /// The identity recorded with each workspace's environment, so a command
    /// aimed at another backend never mistakes it for missing.
    pub fn id(&self) -> String {
        match self {
            BackendSpec::Local => "docker-local".into(),
            BackendSpec::Ssh {
                target,
                docker_socket,
                ..
            } if docker_socket == DEFAULT_DOCKER_SOCKET => target.to_string(),
            BackendSpec::Ssh {
                target,
                docker_socket,
                ..
            } => format!("{target}#{docker_socket}"),
        }
    }

    /// The inverse of [`BackendSpec::id`].
    pub fn from_id(id: &str) -> Result<BackendSpec> {
        BackendSpec::parse_flag(id)
    }

    /// `--backend`/`$AETHER_BACKEND`: `docker` (local), or `ssh://user@host:port`.
    pub fn parse_flag(text: &str) -> Result<BackendSpec> {
        let text = text.trim();
        match text {
            "docker" | "local" | "docker-local" => return Ok(BackendSpec::Local),
            _ => {}
        }
        let host = text
            .strip_prefix("docker-ssh://")
            .or_else(|| text.starts_with("ssh://").then_some(text))
            .ok_or_else(|| {
                CommandError::new(ErrorCode::Usage, format!("unknown backend {text:?}"))
                    .hint("use `docker` for the local engine, or `ssh://user@host:port` for Docker on a host reached over SSH")
            })?;
        let (host, docker_socket) = match host.split_once('#') {
            Some((h, socket)) if valid_socket_path(socket) => (h, socket),
            Some(_) => {
                return Err(CommandError::new(
                    ErrorCode::Usage,
                    format!("invalid Docker socket path in backend {text:?}"),
                )
                .hint("write ssh://user@host:port#/absolute/path/to/docker.sock"))
            }
            None => (host, DEFAULT_DOCKER_SOCKET),
        };
        Ok(BackendSpec::Ssh {
            target: SshTarget::parse(host).map_err(|e| CommandError {
                code: ErrorCode::Usage,
                ..e
            })?,
            docker_socket: docker_socket.into(),
            persist: None,
        })
    }

    pub fn from_env() -> Result<Option<BackendSpec>> {
        match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => BackendSpec::parse_flag(&v).map(Some),
            _ => Ok(None),
        }
    }
}

/// A remote socket path is put into a remote shell command when diagnosing,
/// so only plain path characters are allowed.
pub fn valid_socket_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() < 256
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_spellings() {
        assert_eq!(
            BackendSpec::parse_flag("docker").unwrap(),
            BackendSpec::Local
        );
        let remote = BackendSpec::parse_flag("ssh://dev@box:2222").unwrap();
        assert_eq!(remote.id(), "ssh://dev@box:2222");
        assert_eq!(
            BackendSpec::parse_flag("docker-ssh://dev@box:2222").unwrap(),
            remote
        );
        assert_eq!(
            BackendSpec::parse_flag("box").unwrap_err().code,
            ErrorCode::Usage
        );
        let odd = BackendSpec::parse_flag("ssh://box#/run/docker.sock").unwrap();
        assert_eq!(odd.id(), "ssh://box#/run/docker.sock");
        assert_eq!(BackendSpec::from_id(&odd.id()).unwrap(), odd);
        assert_eq!(
            BackendSpec::from_id("docker-local").unwrap(),
            BackendSpec::Local
        );
        assert!(BackendSpec::parse_flag("ssh://box#run;x").is_err());
        assert_eq!(
            BackendSpec::parse_flag("ssh://-oProxyCommand=x")
                .unwrap_err()
                .code,
            ErrorCode::Usage
        );
    }

    #[test]
    fn socket_paths() {
        assert!(valid_socket_path("/var/run/docker.sock"));
        assert!(valid_socket_path("/run/user/1000/docker.sock"));
        assert!(!valid_socket_path("docker.sock"));
        assert!(!valid_socket_path("/tmp/x;rm -rf ~"));
        assert!(!valid_socket_path("/tmp/$(x)"));
    }
}
