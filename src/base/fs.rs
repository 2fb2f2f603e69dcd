//! Files: atomic writes and the user's state directory.

use crate::base::error::{CommandError, ErrorCode, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Aether's directory in the user's state home (`$XDG_STATE_HOME/aether`,
/// else `~/.local/state/aether`): what belongs to the user rather than to a
/// repo, such as the local port ledger and what the user trusts. No
/// revision can write here.
pub fn user_state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .map(|d| d.join("aether"))
}

/// Temp file, fsync, rename: readers see the old file or the new one, never
/// a torn write. In a workspace root the temp file goes into `.jj/` (same
/// filesystem, never snapshotted), so a process killed mid-write leaves no
/// stray file for jj to commit.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let dot_jj = dir.join(".jj");
    let tmp_dir = if dot_jj.is_dir() {
        dot_jj
    } else {
        dir.to_path_buf()
    };
    let fail = |e: std::io::Error| {
        CommandError::new(
            ErrorCode::EnvFile,
            format!("cannot write {}: {e}", path.display()),
        )
        .detail("file", path.display().to_string())
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".aether-tmp-")
        .tempfile_in(&tmp_dir)
        .map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
