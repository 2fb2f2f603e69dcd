//! One error type for every command: a stable code, a message, a hint and
//! structured details. Rendered as JSON on stdout with `--json`, as text on
//! stderr otherwise. The codes are a public interface (README lists them):
//! agents branch on them, so never rename one.

use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Command-line arguments could not be parsed.
    Usage,
    /// `aether.toml` is malformed or fails validation.
    ConfigInvalid,
    /// The config (a Compose file) asks for access to the host (a bind
    /// mount outside the workspace, `privileged`, the Docker socket…) that
    /// the user has not trusted for this exact content (`ajj trust`).
    ConfigUntrusted,
    /// An image of a `build:` service could not be built.
    ImageBuildFailed,
    /// The current directory is not inside a jj workspace.
    NotInWorkspace,
    /// A named workspace does not exist.
    WorkspaceNotFound,
    JjNotFound,
    JjTooOld,
    /// jj ran but reported an error of its own.
    JjFailed,
    DockerUnreachable,
    /// The Docker Engine refused a request for another reason.
    DockerError,
    ImageNotFound,
    /// The engine has no address range left for another network.
    NetworkPoolExhausted,
    /// A workspace network overlaps a route of the engine's host (`ajj doctor`).
    NetworkOverlapsRoute,
    PortConflict,
    ReadinessTimeout,
    /// A container exited while Aether waited for it to become ready.
    ServiceExited,
    /// The workspace's aether.toml declares no service of that name.
    ServiceNotFound,
    /// The service is declared but has no running container.
    ServiceNotRunning,
    /// `.env` (or Aether's state) could not be read or written.
    EnvFile,
    /// The revision carries a `.env` with lines of its own that jj would
    /// snapshot together with Aether's block.
    EnvNotIgnored,
    /// `ajj run` could not start its command.
    CommandNotFound,
    /// Another `ajj watch` already watches this repo.
    WatcherRunning,
    /// The SSH host could not be reached (DNS, refused, timed out).
    SshUnreachable,
    /// The SSH server refused every key or password offered.
    SshAuthFailed,
    /// The SSH host key is unknown, or differs from the one recorded.
    SshHostKey,
    /// SSH works, but there is no usable Docker Engine on the remote.
    RemoteDockerUnavailable,
    /// A local port Aether reserved for a forward is taken by another program.
    LocalPortBusy,
    /// The SSH connection (the ControlMaster) died while forwards were open.
    SshMasterDied,
    /// The workspace's environment lives on another backend than this command uses.
    BackendMismatch,
    /// The client cancelled the call (`ajj mcp`); the command was interrupted.
    Cancelled,
    /// SIGINT or SIGTERM stopped the command; `details.outcome` says whether
    /// what it started was finished or undone.
    Interrupted,
    Io,
    Internal,
}

impl ErrorCode {
    /// Every code, in README's order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Usage,
        ErrorCode::ConfigInvalid,
        ErrorCode::ConfigUntrusted,
        ErrorCode::ImageBuildFailed,
        ErrorCode::NotInWorkspace,
        ErrorCode::WorkspaceNotFound,
        ErrorCode::JjNotFound,
        ErrorCode::JjTooOld,
        ErrorCode::JjFailed,
        ErrorCode::DockerUnreachable,
        ErrorCode::DockerError,
        ErrorCode::ImageNotFound,
        ErrorCode::NetworkPoolExhausted,
        ErrorCode::NetworkOverlapsRoute,
        ErrorCode::PortConflict,
        ErrorCode::ReadinessTimeout,
        ErrorCode::ServiceExited,
        ErrorCode::ServiceNotFound,
        ErrorCode::ServiceNotRunning,
        ErrorCode::EnvFile,
        ErrorCode::EnvNotIgnored,
        ErrorCode::CommandNotFound,
        ErrorCode::WatcherRunning,
        ErrorCode::SshUnreachable,
        ErrorCode::SshAuthFailed,
        ErrorCode::SshHostKey,
        ErrorCode::RemoteDockerUnavailable,
        ErrorCode::LocalPortBusy,
        ErrorCode::SshMasterDied,
        ErrorCode::BackendMismatch,
        ErrorCode::Cancelled,
        ErrorCode::Interrupted,
        ErrorCode::Io,
        ErrorCode::Internal,
    ];

    /// The code of a stable name (what `as_str` gives).
    pub fn from_str(name: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "USAGE",
            ErrorCode::ConfigInvalid => "CONFIG_INVALID",
            ErrorCode::ConfigUntrusted => "CONFIG_UNTRUSTED",
            ErrorCode::ImageBuildFailed => "IMAGE_BUILD_FAILED",
            ErrorCode::NotInWorkspace => "NOT_IN_WORKSPACE",
            ErrorCode::WorkspaceNotFound => "WORKSPACE_NOT_FOUND",
            ErrorCode::JjNotFound => "JJ_NOT_FOUND",
            ErrorCode::JjTooOld => "JJ_TOO_OLD",
            ErrorCode::JjFailed => "JJ_FAILED",
            ErrorCode::DockerUnreachable => "DOCKER_UNREACHABLE",
            ErrorCode::DockerError => "DOCKER_ERROR",
            ErrorCode::ImageNotFound => "IMAGE_NOT_FOUND",
            ErrorCode::NetworkPoolExhausted => "NETWORK_POOL_EXHAUSTED",
            ErrorCode::NetworkOverlapsRoute => "NETWORK_OVERLAPS_ROUTE",
            ErrorCode::PortConflict => "PORT_CONFLICT",
            ErrorCode::ReadinessTimeout => "READINESS_TIMEOUT",
            ErrorCode::ServiceExited => "SERVICE_EXITED",
            ErrorCode::ServiceNotFound => "SERVICE_NOT_FOUND",
            ErrorCode::ServiceNotRunning => "SERVICE_NOT_RUNNING",
            ErrorCode::EnvFile => "ENV_FILE",
            ErrorCode::EnvNotIgnored => "ENV_NOT_IGNORED",
            ErrorCode::CommandNotFound => "COMMAND_NOT_FOUND",
            ErrorCode::WatcherRunning => "WATCHER_RUNNING",
            ErrorCode::SshUnreachable => "SSH_UNREACHABLE",
            ErrorCode::SshAuthFailed => "SSH_AUTH_FAILED",
            ErrorCode::SshHostKey => "SSH_HOST_KEY",
            ErrorCode::RemoteDockerUnavailable => "REMOTE_DOCKER_UNAVAILABLE",
            ErrorCode::LocalPortBusy => "LOCAL_PORT_BUSY",
            ErrorCode::SshMasterDied => "SSH_MASTER_DIED",
            ErrorCode::BackendMismatch => "BACKEND_MISMATCH",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Interrupted => "INTERRUPTED",
            ErrorCode::Io => "IO_ERROR",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// Process exit status. Usage errors use 2 like clap and jj; a command
    /// that cannot be started uses the shell's 127; everything else is 1.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::Usage => 2,
            ErrorCode::CommandNotFound => 127,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    pub hint: Option<String>,
    pub details: Value,
}

pub type Result<T, E = CommandError> = std::result::Result<T, E>;

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
            hint: None,
            details: json!({}),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(
                key.to_string(),
                serde_json::to_value(value).unwrap_or(Value::Null),
            );
        }
        self
    }

    /// The process's exit status: the code's, except that an interrupted
    /// command exits as the shell reports the signal (130, 143).
    pub fn exit_code(&self) -> i32 {
        if self.code == ErrorCode::Interrupted {
            let signal = self.details["signal"].as_str().unwrap_or_default();
            if let Some(stop) = crate::base::interrupt::Stop::from_name(signal) {
                return stop.exit_code();
            }
        }
        self.code.exit_code()
    }

    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        CommandError::new(ErrorCode::Io, format!("{context}: {err}"))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "hint": self.hint,
                "details": self.details,
            }
        })
    }

    /// Prints the error where the caller's mode says it belongs.
    pub fn report(&self, json_mode: bool) {
        if json_mode {
            println!("{}", self.to_json());
        } else {
            eprintln!("error[{}]: {}", self.code.as_str(), self.message);
            if let Value::Object(map) = &self.details {
                for (key, value) in map {
                    let shown = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    eprintln!("  {key}: {shown}");
                }
            }
            if let Some(hint) = &self.hint {
                eprintln!("hint: {hint}");
            }
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for CommandError {}

/// CONFIG_INVALID at a place of a config file (aether.toml or a Compose
/// file): `file:line:column: `key`: message`, each in the details too. A
/// line of 0 is not known, and left out of the message.
pub fn located_error(
    path: &std::path::Path,
    (line, column): (usize, usize),
    key: &str,
    message: &str,
    hint: String,
) -> CommandError {
    let location = match (line, column) {
        (0, _) => path.display().to_string(),
        (l, 0) => format!("{}:{l}", path.display()),
        (l, c) => format!("{}:{l}:{c}", path.display()),
    };
    let keyed = if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("`{key}`: ")
    };
    CommandError::new(
        ErrorCode::ConfigInvalid,
        format!("{location}: {keyed}{message}"),
    )
    .hint(hint)
    .detail("file", path.display().to_string())
    .detail("line", line)
    .detail("column", column)
    .detail("key", key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table and `ALL` name the same codes, and every name maps back.
    #[test]
    fn readme_lists_every_code() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme.find("## Error codes").unwrap()..];
        let table = &table[..table[3..].find("\n## ").unwrap()];
        let listed: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| l.split('|').nth(1).unwrap().split('`'))
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        for code in ErrorCode::ALL {
            assert!(
                listed.contains(&code.as_str()),
                "README lacks {}",
                code.as_str()
            );
            assert_eq!(ErrorCode::from_str(code.as_str()), Some(*code));
        }
        for name in &listed {
            assert!(
                ErrorCode::from_str(name).is_some(),
                "README lists unknown {name}"
            );
        }
        assert_eq!(listed.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn json_shape_is_stable() {
        let err = CommandError::new(ErrorCode::PortConflict, "no port")
            .hint("free one")
            .detail("port", 5432);
        let v = err.to_json();
        assert_eq!(v["error"]["code"], "PORT_CONFLICT");
        assert_eq!(v["error"]["message"], "no port");
        assert_eq!(v["error"]["hint"], "free one");
        assert_eq!(v["error"]["details"]["port"], 5432);
    }

    #[test]
    fn serde_name_matches_as_str() {
        for code in [
            ErrorCode::ConfigInvalid,
            ErrorCode::JjTooOld,
            ErrorCode::DockerUnreachable,
            ErrorCode::ReadinessTimeout,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
