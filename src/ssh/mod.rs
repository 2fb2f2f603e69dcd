//! Reaching a remote Docker host over SSH: where it is (`target`), the
//! shared connection (`master`), its control protocol (`mux`) and the local
//! port forwards of `ajj run` and `ajj tunnel` (`forward`).

pub mod forward;
pub mod master;
pub mod mux;
pub mod target;

pub use master::Master;
pub use target::SshTarget;
