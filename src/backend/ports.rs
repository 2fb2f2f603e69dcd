//! Local ports reserved for forwards to a remote backend, and for the
//! user's own processes (`[ports]`).
//!
//! Locally, Docker binding a host port is what makes a pick race-free. A
//! forwarded port is bound only while `ajj run` or `ajj tunnel` runs, and
//! an own port only while the user's server runs, so the reservation itself
//! must be exclusive: one ledger per user (every repo draws from the same
//! ports), changed under a file lock, written atomically.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::write_atomic;
use crate::model::repo::RepoContext;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::PathBuf;

/// port → owner (`<repo id>/<workspace>`)
type Ledger = BTreeMap<u16, String>;

fn dir(ctx: &RepoContext) -> PathBuf {
    // Without a home, the repo's own state: still exclusive within it.
    crate::base::fs::user_state_dir().unwrap_or_else(|| ctx.state_dir())
}

pub fn owner(ctx: &RepoContext, workspace: &str) -> String {
    format!("{}/{workspace}", ctx.repo_id)
}

/// The owner of a workspace's `[ports]`: apart from its forwards, which are
/// released with its services' ports. The repo id is hex, so no
/// workspace name makes one owner look like the other.
pub fn own_owner(ctx: &RepoContext, workspace: &str) -> String {
    format!("{}#ports/{workspace}", ctx.repo_id)
}

/// Whether anyone holds `port` in the ledger: a pick for a local engine's
/// service skips those (an own port is not bound until its server runs).
pub fn is_reserved(ctx: &RepoContext, port: u16) -> bool {
    std::fs::read(dir(ctx).join("local-ports.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Ledger>(&b).ok())
        .is_some_and(|l| l.contains_key(&port))
}

/// Runs `f` on the ledger under its lock and saves it when `f` says so.
fn with_ledger<T>(ctx: &RepoContext, f: impl FnOnce(&mut Ledger) -> (T, bool)) -> Result<T> {
    let dir = dir(ctx);
    let fail = |e: std::io::Error| {
        CommandError::io(
            format!("cannot use the port ledger in {}", dir.display()),
            e,
        )
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("local-ports.lock"))
        .map_err(fail)?;
    lock.lock().map_err(fail)?;
    let path = dir.join("local-ports.json");
    let mut ledger: Ledger = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let (out, changed) = f(&mut ledger);
    if changed {
        let bytes = serde_json::to_vec_pretty(&ledger).expect("ledger serialises");
        write_atomic(&path, &bytes, 0o600)?;
    }
    Ok(out)
}

/// The ports reserved for this repo's workspaces, with their owners.
pub fn reserved(ctx: &RepoContext) -> Vec<(u16, String)> {
    let prefix = format!("{}/", ctx.repo_id);
    std::fs::read(dir(ctx).join("local-ports.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Ledger>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, owner)| owner.starts_with(&prefix))
        .collect()
}

/// A port free here, reserved by nobody, not in `avoid`: now `owner`'s.
pub fn reserve(ctx: &RepoContext, owner: &str, avoid: &HashSet<u16>) -> Result<u16> {
    with_ledger(ctx, |ledger| {
        for _ in 0..64 {
            match portpicker::pick_unused_port() {
                Some(p) if !ledger.contains_key(&p) && !avoid.contains(&p) => {
                    ledger.insert(p, owner.to_string());
                    return (Some(p), true);
                }
                _ => {}
            }
        }
        (None, false)
    })?
    .ok_or_else(|| {
        CommandError::new(ErrorCode::PortConflict, "no free local port could be reserved for a forward")
            .hint("forget workspaces you no longer use (`ajj workspace forget`), or free ports on 127.0.0.1")
    })
}

/// Keeps a sticky port `owner`'s. False when someone else holds it.
pub fn hold(ctx: &RepoContext, owner: &str, port: u16) -> Result<bool> {
    with_ledger(ctx, |ledger| match ledger.get(&port) {
        Some(o) if o == owner => (true, false),
        Some(_) => (false, false),
        None => {
            ledger.insert(port, owner.to_string());
            (true, true)
        }
    })
}

/// Moves `from`'s reservations to `to` (a renamed workspace keeps its ports).
pub fn rename(ctx: &RepoContext, from: &str, to: &str) -> Result<()> {
    with_ledger(ctx, |ledger| {
        let mut changed = false;
        for o in ledger.values_mut().filter(|o| *o == from) {
            *o = to.to_string();
            changed = true;
        }
        ((), changed)
    })
}

/// Frees every port of `owner` except `keep`.
pub fn release(ctx: &RepoContext, owner: &str, keep: &HashSet<u16>) -> Result<()> {
    with_ledger(ctx, |ledger| {
        let before = ledger.len();
        ledger.retain(|port, o| o != owner || keep.contains(port));
        ((), ledger.len() != before)
    })
}
