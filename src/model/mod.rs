//! The model: what a repo, its workspaces and their configuration are, what
//! Aether remembers of them, and what a checkout may put into a shell. No
//! backend, no reconciler: every layer above may use it.

pub mod backend_spec;
pub mod compose;
pub mod config;
pub mod context;
#[cfg(test)]
pub mod corpus;
pub mod desired;
pub mod envfile;
pub mod grants;
pub mod jj;
pub mod pending_add;
pub mod repo;
pub mod service;
pub mod ssh_target;
pub mod state;
pub mod trust;
