//! A service as Aether runs it, whichever file declared it (aether.toml or
//! a Compose file): its normalised spec, whose hash decides drift, and what
//! the reconciler needs besides (readiness, dependencies, build).

use crate::base::hex::hex;
use crate::base::template::Piece;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub spec: ServiceSpec,
    pub connection_string: Option<Vec<Piece>>,
    pub ready_timeout: Duration,
    /// Services to wait for before this one starts, and for what.
    pub depends_on: BTreeMap<String, DependsOn>,
    /// How its image is built (`build:` in a Compose file).
    pub build: Option<crate::model::compose::build::BuildSpec>,
    /// A one-shot job another service waits on to complete: ready once it
    /// exited 0, and not started again after.
    pub completes: bool,
    /// The Compose file that defined it; `None` for aether.toml.
    pub origin: Option<PathBuf>,
}

impl Service {
    /// Its restart policy lets it end (`no`, `on-failure`), so an exit 0
    /// is a finished task rather than a failure.
    pub fn may_exit(&self) -> bool {
        let restart = self.spec.extra.as_ref().and_then(|e| e.restart.as_deref());
        restart.is_some_and(|r| r == "no" || r.starts_with("on-failure"))
    }
}

/// What a dependent waits for (Compose's `depends_on` conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependsOn {
    /// Started and ready as Aether sees readiness (its listener or healthcheck).
    Started,
    /// Its healthcheck reports healthy.
    Healthy,
    /// It ran to the end and exited 0.
    Completed,
}

/// Everything that shapes the container. Its hash is the drift detector, so
/// it holds no host ports (those are sticky, not desired) and no templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpec {
    pub image: String,
    pub ports: Vec<u16>,
    pub env: BTreeMap<String, String>,
    pub command: Option<Vec<String>>,
    pub volumes: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_timeout_secs: u64,
    /// What only Compose files set. Absent from the hash when empty, so
    /// that an aether.toml service keeps the hash it always had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<ContainerExtra>>,
}

/// The container settings a Compose file may give beyond aether.toml's.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ContainerExtra {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Compose's restart policy; `None`: Aether's `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// `path[:options]`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// `source:target[:ro]`: host paths (checked, or granted), secrets,
    /// external volumes the user opted into.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    /// `target[:ro]` → `owner/volume`: a named volume another service of
    /// the workspace owns (Compose's volumes are shared by name).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shared_volumes: BTreeMap<String, String>,
    /// More names on the workspace's network besides the service's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    // Grants: set only once the user trusts them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
}

impl ContainerExtra {
    pub fn is_empty(&self) -> bool {
        self == &ContainerExtra::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Healthcheck {
    pub command: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
}

impl ServiceSpec {
    /// sha256 over the canonical JSON of the spec, with ports sorted so that
    /// reordering them is not mistaken for drift.
    pub fn config_hash(&self) -> String {
        let mut normalised = self.clone();
        normalised.ports.sort_unstable();
        let bytes = serde_json::to_vec(&normalised).expect("spec serialises");
        hex(&Sha256::digest(bytes))
    }

    /// A short digest of each field, entries of maps each on their own
    /// (`image`, `env.GREETING`, `volumes.data`), so that a drift can name
    /// what changed without recording any value.
    pub fn field_digests(&self) -> BTreeMap<String, String> {
        let mut normalised = self.clone();
        normalised.ports.sort_unstable();
        let value = serde_json::to_value(&normalised).expect("spec serialises");
        let digest = |v: &serde_json::Value| hex(&Sha256::digest(v.to_string()))[..12].to_string();
        let mut out = BTreeMap::new();
        for (field, v) in value.as_object().into_iter().flatten() {
            match v
                .as_object()
                .filter(|_| field == "env" || field == "volumes" || field == "extra")
            {
                Some(map) => {
                    for (k, v) in map {
                        out.insert(format!("{field}.{k}"), digest(v));
                    }
                }
                None => {
                    out.insert(field.clone(), digest(v));
                }
            }
        }
        out
    }
}

/// The fields whose digests differ, or that only one side has.
pub fn changed_fields(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Name of the environment variable prefix for a service: `my-db` → `MY_DB`.
pub fn var_prefix(service: &str) -> String {
    service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
