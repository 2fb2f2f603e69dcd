//! Which backend a command talks to: local Docker, or Docker on a host
//! reached over SSH. Chosen by `--backend`/`$AETHER_BACKEND`, else the
//! `[backend]` table of aether.toml, else local Docker.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::ssh_target::SshTarget;
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

/// The one rule for a remote backend's id, recorded with each environment
/// and parsed back by [`BackendSpec::from_id`]: the target, and `#socket`
/// when the socket is not the default one.
pub fn ssh_id(target: &SshTarget, docker_socket: &str) -> String {
    if docker_socket == DEFAULT_DOCKER_SOCKET {
        target.to_string()
    } else {
        format!("{target}#{docker_socket}")
    }
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
            } => ssh_id(target, docker_socket),
        }
    }

    /// The inverse of [`BackendSpec::id`]. Also reads the ids that Aether
    /// wrote before there was one rule, with the socket path glued to the
    /// target (`ssh://u@h:22/run/docker.sock`), so that environments
    /// recorded then can still be reached and forgotten.
    pub fn from_id(id: &str) -> Result<BackendSpec> {
        if let Some(rest) = id.strip_prefix("ssh://") {
            if let Some(slash) = rest.find('/').filter(|_| !rest.contains('#')) {
                let (host, socket) = rest.split_at(slash);
                return BackendSpec::parse_flag(&format!("ssh://{host}#{socket}"));
            }
        }
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

    #[test]
    fn ids_round_trip_and_legacy_ids_are_read() {
        for flag in [
            "docker",
            "ssh://dev@builder:2222",
            "ssh://dev@builder:2222#/run/user/1000/docker.sock",
        ] {
            let spec = BackendSpec::parse_flag(flag).unwrap();
            assert_eq!(
                BackendSpec::from_id(&spec.id()).unwrap().id(),
                spec.id(),
                "{flag}"
            );
        }
        // Written by earlier versions: the socket glued to the target.
        let legacy = BackendSpec::from_id("ssh://dev@builder:2222/run/docker.sock").unwrap();
        assert_eq!(legacy.id(), "ssh://dev@builder:2222#/run/docker.sock");
        assert!(BackendSpec::from_id("ssh://dev@builder:2222/bad path").is_err());
    }
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
