//! The async runtime of the commands that talk to a backend.

use std::future::Future;

/// Aether's commands that talk to a backend run on a single-threaded runtime:
/// the work is I/O-bound, and start-up stays cheap. The pass-through path
/// never gets here.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}
