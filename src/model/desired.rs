//! Desired state: the live jj workspaces, each with its own aether.toml.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::model::config::{self, Config};
use crate::model::jj::WorkspaceEntry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DesiredWorkspace {
    pub root: PathBuf,
    pub config: Config,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub workspaces: BTreeMap<String, DesiredWorkspace>,
    /// Live workspaces whose objects are left exactly as they are: their
    /// config does not load (a typo must never garbage-collect a database),
    /// or their directory is gone and the policy says keep.
    pub untouchable: BTreeSet<String>,
    /// Root → name of every live workspace, touchable or not. An object made
    /// for a root belongs to whichever workspace lives there now, so a
    /// `jj workspace rename` keeps its volumes and ports.
    pub roots: BTreeMap<PathBuf, String>,
    /// How long a gone workspace's data is kept, and what is kept so far.
    pub retention: Retention,
}

/// The jj setting of how long a forgotten workspace's volumes are kept
/// (`jj config set --user aether.keep-forgotten-data 7d`).
pub const KEEP_DATA_KEY: &str = "aether.keep-forgotten-data";

/// What the planner needs to keep a gone workspace's volumes for a window
/// and delete them after it; all of it read before planning, so the planner
/// stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Zero (the default): a gone workspace's volumes go with it.
    pub window: std::time::Duration,
    /// Volume → when it was kept (seconds since the epoch).
    pub kept: BTreeMap<String, u64>,
    /// Seconds since the epoch, at the start of the pass.
    pub now: u64,
    /// Workspaces forgotten with `--purge`: their data goes at once.
    pub purge: BTreeSet<String>,
}

impl Retention {
    /// `0`, or a duration such as `30m` or `7d`.
    pub fn parse_window(text: &str) -> Result<std::time::Duration> {
        let text = text.trim();
        if text == "0" {
            return Ok(std::time::Duration::ZERO);
        }
        humantime::parse_duration(text).map_err(|e| {
            CommandError::new(
                ErrorCode::ConfigInvalid,
                format!("{KEEP_DATA_KEY} is {text:?}: {e}"),
            )
            .hint(format!(
                "write 0 or a duration: `jj config set --user {KEEP_DATA_KEY} 7d` (or 30m, 12h)"
            ))
            .detail("setting", KEEP_DATA_KEY)
        })
    }

    /// When a kept volume's window ends (seconds since the epoch).
    pub fn until(&self, volume: &str) -> Option<u64> {
        self.kept
            .get(volume)
            .map(|at| at.saturating_add(self.window.as_secs()))
    }

    /// Seconds since the epoch, now.
    pub fn clock() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl Desired {
    /// Only who lives where: enough to tell objects apart by owner, for
    /// commands that converge one workspace and need no other config.
    pub fn shallow(entries: &[WorkspaceEntry]) -> Self {
        let mut desired = Desired::default();
        for e in entries {
            if let Some(root) = &e.recorded_root {
                desired.roots.insert(root.clone(), e.name.clone());
            }
        }
        desired
    }

    pub fn is_live(&self, name: &str) -> bool {
        self.workspaces.contains_key(name)
            || self.untouchable.contains(name)
            || self.roots.values().any(|n| n == name)
    }

    /// The live workspace an object belongs to: the one at the root it was
    /// made for, else the one of its name. `None`: its workspace is gone.
    pub fn owner<'a>(&'a self, label: &'a str, root: Option<&Path>) -> Option<&'a str> {
        if let Some(name) = root.and_then(|r| self.roots.get(r)) {
            return Some(name);
        }
        self.is_live(label).then_some(label)
    }
}

/// What happens to the environment of a workspace whose directory was
/// deleted (`rm -rf`) while jj still lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingRoot {
    /// Remove its containers, volumes and network at once, as a forget would.
    #[default]
    Remove,
    /// Leave everything as it is until `jj workspace forget`.
    Keep,
}

/// The `--on-missing-root` flag that `reconcile` and `watch` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MissingRootArg {
    /// What to do with the environment of a workspace whose directory was
    /// deleted [default: the repo's `aether.on-missing-root` jj setting, else remove]
    #[arg(long, value_name = "POLICY")]
    pub on_missing_root: Option<MissingRoot>,
}

/// The jj config key that sets [`MissingRoot`] for a repo
/// (`jj config set --repo aether.on-missing-root keep`).
pub const MISSING_ROOT_KEY: &str = "aether.on-missing-root";

impl MissingRoot {
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "remove" => Ok(MissingRoot::Remove),
            "keep" => Ok(MissingRoot::Keep),
            other => Err(CommandError::new(
                ErrorCode::ConfigInvalid,
                format!("{MISSING_ROOT_KEY} is {other:?}; expected \"remove\" or \"keep\""),
            )
            .hint(format!(
                "fix it with `jj config set --repo {MISSING_ROOT_KEY} remove` (or keep)"
            ))),
        }
    }
}

/// Builds the desired state; per-workspace config errors are returned, not
/// fatal. `missing_root` is asked only when some workspace's directory is
/// gone, so the usual pass costs no extra lookup.
pub fn build(
    entries: &[WorkspaceEntry],
    missing_root: impl FnOnce() -> Result<MissingRoot>,
) -> (Desired, Vec<(String, CommandError)>) {
    let mut desired = Desired::default();
    let mut errors = Vec::new();
    let mut policy = None;
    let mut missing_root = Some(missing_root);
    for entry in entries {
        let Some(recorded) = &entry.recorded_root else {
            continue;
        };
        desired.roots.insert(recorded.clone(), entry.name.clone());
        let Some(root) = &entry.root else {
            // The directory is gone.
            let policy = *policy.get_or_insert_with(|| {
                match missing_root
                    .take()
                    .map(|f| f())
                    .unwrap_or(Ok(MissingRoot::Remove))
                {
                    Ok(p) => p,
                    Err(e) => {
                        // An unreadable policy must not delete anything.
                        errors.push((entry.name.clone(), e));
                        MissingRoot::Keep
                    }
                }
            });
            if policy == MissingRoot::Keep {
                desired.untouchable.insert(entry.name.clone());
            } else {
                desired.roots.remove(recorded);
            }
            continue;
        };
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
