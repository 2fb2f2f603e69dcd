//! Reaching a remote Docker host over SSH: the shared connection (`master`),
//! its control protocol (`mux`) and the local port forwards of `ajj run` and
//! `ajj tunnel` (`forward`). Where the host is (`SshTarget`) is model.

pub mod forward;
pub mod master;
pub mod mux;

pub use master::Master;
