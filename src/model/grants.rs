//! Trust for what a config asks of the host. A Compose file can reach
//! outside its containers: a bind mount of `/` or of the Docker socket,
//! `privileged`, `cap_add`, devices, a build context or env file outside
//! the workspace. A revision must never grant itself that, or a plain
//! `jj workspace add -r <someone else's change>` under `ajj watch` would
//! hand the host to whoever wrote the change. So each such entry is a
//! *grant*; a config with grants runs only once the user trusted exactly
//! those grants for that workspace root (`ajj trust`), recorded in the
//! user's state directory, which no revision can write.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::{user_state_dir, write_atomic};
use crate::base::hex::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub root: PathBuf,
    pub digest: String,
    /// What was trusted, as it was shown.
    pub grants: Vec<String>,
    /// Seconds since the epoch.
    pub trusted_at: u64,
}

/// sha256 over the root and the sorted grants: trust never carries over to
/// another directory, nor to other grants.
pub fn digest(root: &Path, grants: &[String]) -> String {
    let mut sorted: Vec<&String> = grants.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(b"aether-grants-v1\0");
    h.update(root.as_os_str().as_encoded_bytes());
    for g in sorted {
        h.update((g.len() as u64).to_be_bytes());
        h.update(g.as_bytes());
    }
    hex(&h.finalize())
}

fn record_path(root: &Path) -> Option<PathBuf> {
    let key = hex(&Sha256::digest(root.as_os_str().as_encoded_bytes()));
    Some(
        user_state_dir()?
            .join("grants")
            .join(format!("{}.json", &key[..32])),
    )
}

pub fn load(root: &Path) -> Option<GrantRecord> {
    let bytes = std::fs::read(record_path(root)?).ok()?;
    serde_json::from_slice(&bytes)
        .ok()
        .filter(|r: &GrantRecord| r.root == root)
}

/// Whether the user trusted exactly these grants for this root.
pub fn trusted(root: &Path, grants: &[String]) -> bool {
    load(root).is_some_and(|r| r.digest == digest(root, grants))
}

pub fn record(root: &Path, grants: &[String]) -> Result<PathBuf> {
    let path = record_path(root).ok_or_else(|| {
        CommandError::new(
            ErrorCode::Io,
            "neither XDG_STATE_HOME nor HOME is set, so there is nowhere to record trust",
        )
    })?;
    let rec = GrantRecord {
        root: root.to_path_buf(),
        digest: digest(root, grants),
        grants: grants.to_vec(),
        trusted_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let bytes = serde_json::to_vec_pretty(&rec).expect("record serialises");
    write_atomic(&path, &bytes, 0o600)?;
    Ok(path)
}

/// Whether there was a record to remove.
pub fn forget(root: &Path) -> bool {
    record_path(root).is_some_and(|p| std::fs::remove_file(p).is_ok())
}

/// CONFIG_UNTRUSTED, naming every grant, with the command that trusts them.
pub fn untrusted(root: &Path, grants: &[String]) -> CommandError {
    let changed = load(root).is_some();
    CommandError::new(
        ErrorCode::ConfigUntrusted,
        format!(
            "{}: the config asks for access to the host that you have not trusted{}: {}",
            root.display(),
            if changed { " (it changed since you trusted it)" } else { "" },
            grants.join("; ")
        ),
    )
    .hint(format!(
        "read what it asks with `ajj trust --show -R {root}`, then allow it with `ajj trust -R {root}`; nothing of this workspace is started until then",
        root = root.display()
    ))
    .detail("workspace_root", root.display().to_string())
    .detail("grants", grants.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_covers_root_and_grants_not_their_order() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["y".to_string(), "x".to_string()];
        let r = Path::new("/w");
        assert_eq!(digest(r, &a), digest(r, &b));
        assert_ne!(digest(r, &a), digest(Path::new("/v"), &a));
        assert_ne!(digest(r, &a), digest(r, &a[..1]));
    }
}
