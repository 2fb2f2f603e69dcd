//! Desired state: the live jj workspaces, each with its own aether.toml.

use crate::config::{self, Config};
use crate::error::CommandError;
use crate::jj::WorkspaceEntry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct DesiredWorkspace {
    pub root: PathBuf,
    pub config: Config,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub workspaces: BTreeMap<String, DesiredWorkspace>,
    /// Live workspaces whose config does not load. Their objects are left
    /// exactly as they are: a typo must never garbage-collect a database.
    pub untouchable: BTreeSet<String>,
}

/// Builds the desired state; per-workspace config errors are returned, not fatal.
pub fn build(entries: &[WorkspaceEntry]) -> (Desired, Vec<(String, CommandError)>) {
    let mut desired = Desired::default();
    let mut errors = Vec::new();
    for entry in entries {
        // A workspace without a root (or whose directory is gone) is gone.
        let Some(root) = &entry.root else { continue };
        match config::load_from_root(root) {
            Ok(config) => {
                desired.workspaces.insert(
                    entry.name.clone(),
                    DesiredWorkspace {
                        root: root.clone(),
                        config,
                    },
                );
            }
            Err(e) => {
                desired.untouchable.insert(entry.name.clone());
                errors.push((entry.name.clone(), e));
            }
        }
    }
    (desired, errors)
}
