//! The seam's error: a [`Fault`] that callers decide on, and the
//! [`CommandError`] (code, message, hint) users read. Decisions (reconnect,
//! pick another port, create instead of start, remove twins) are taken on
//! the fault alone, never on a message or a code.

use crate::base::error::{CommandError, ErrorCode};

/// What kind of failure, as far as anything above the seam needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The engine (or the connection to its host) is gone: wait and reconnect.
    Unreachable,
    /// The object is not there (any more).
    NotFound,
    /// A name is held by another object, or resolves to more than one.
    Conflict,
    /// A host port was taken between picking it and binding it.
    PortTaken,
    /// The image is neither present nor obtainable.
    ImageMissing,
    /// Anything else the engine refused.
    Failed,
}

impl Fault {
    /// The code a fault is reported with when the backend has none more
    /// precise: the one place faults become [`ErrorCode`]s.
    pub fn code(self) -> ErrorCode {
        match self {
            Fault::Unreachable => ErrorCode::DockerUnreachable,
            Fault::PortTaken => ErrorCode::PortConflict,
            Fault::ImageMissing => ErrorCode::ImageNotFound,
            Fault::NotFound | Fault::Conflict | Fault::Failed => ErrorCode::DockerError,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackendError {
    pub fault: Fault,
    /// What the user reads when the fault is reported.
    pub error: CommandError,
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

impl BackendError {
    pub fn new(fault: Fault, message: impl Into<String>) -> Self {
        BackendError {
            fault,
            error: CommandError::new(fault.code(), message),
        }
    }

    /// A fault whose report the backend built itself (a more precise code,
    /// a hint, details).
    pub fn with(fault: Fault, error: CommandError) -> Self {
        BackendError { fault, error }
    }

    pub fn is(&self, fault: Fault) -> bool {
        self.fault == fault
    }
}

/// Errors from below the seam that carry no fault of their own (a task that
/// failed, a bad setting) are plain failures.
impl From<CommandError> for BackendError {
    fn from(error: CommandError) -> Self {
        BackendError {
            fault: Fault::Failed,
            error,
        }
    }
}

/// The edge: above the seam, a backend error is a command error.
impl From<BackendError> for CommandError {
    fn from(e: BackendError) -> Self {
        e.error
    }
}
