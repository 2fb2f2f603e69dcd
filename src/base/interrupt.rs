//! SIGINT and SIGTERM as values: a command that must not stop half-way
//! (`ajj workspace add`) listens for them, finishes or undoes what it
//! started, and then exits as the signal asked (130 or 143).

use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// The shell's status for a command the signal ended: 128 + its number.
    pub fn exit_code(self) -> i32 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    pub fn from_name(name: &str) -> Option<Stop> {
        [Stop::Interrupt, Stop::Terminate]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Listens from creation on: a signal that came before `recv` is not lost.
/// Needs a running tokio runtime.
pub struct Interrupts {
    int: Signal,
    term: Signal,
    got: Option<Stop>,
}

impl Interrupts {
    pub fn listen() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            got: None,
        })
    }

    /// Resolves at the first signal (at once if one came already).
    pub async fn recv(&mut self) -> Stop {
        if let Some(s) = self.got {
            return s;
        }
        let s = tokio::select! {
            _ = self.int.recv() => Stop::Interrupt,
            _ = self.term.recv() => Stop::Terminate,
        };
        self.got = Some(s);
        s
    }

    /// A signal that has arrived, without waiting.
    pub fn arrived(&mut self) -> Option<Stop> {
        if self.got.is_none() {
            use futures_util::FutureExt;
            self.got = self.recv().now_or_never();
        }
        self.got
    }
}
