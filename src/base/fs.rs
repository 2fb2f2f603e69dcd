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
/// stray file for jj to commit. Creates the parent directories: for
/// Aether's own directories, never for a workspace (see
/// [`write_in_workspace`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dot_jj = dir.join(".jj");
    let tmp_dir = if dot_jj.is_dir() {
        dot_jj
    } else {
        dir.to_path_buf()
    };
    std::fs::create_dir_all(dir).map_err(|e| write_failed(path, e))?;
    if write_via(&tmp_dir, path, bytes, mode)? {
        Ok(())
    } else {
        Err(write_failed(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }
}

/// Writes `<root>/<rel>` atomically, like [`write_atomic`], but only while
/// `root` is still a jj workspace: `root/.jj` is a directory. It never
/// creates a directory. A workspace can be deleted (`rm -rf`) while a pass
/// is deciding what to write into it; creating the root again would bring
/// the workspace back from the dead as a directory holding only `.env`,
/// and the environment would never be removed. `Ok(false)`: the workspace
/// is gone (or going), nothing was written.
pub fn write_in_workspace(root: &Path, rel: &str, bytes: &[u8], mode: u32) -> Result<bool> {
    let dot_jj = root.join(".jj");
    if !dot_jj.is_dir() {
        return Ok(false);
    }
    write_via(&dot_jj, &root.join(rel), bytes, mode)
}

/// Writes `path` atomically only if its directory exists: for files kept
/// inside a workspace's `.jj/`, which must not be created again once the
/// workspace is deleted. `Ok(false)`: the directory is gone.
pub fn write_if_dir_exists(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    write_via(dir, path, bytes, mode)
}

fn write_failed(path: &Path, e: std::io::Error) -> CommandError {
    CommandError::new(
        ErrorCode::EnvFile,
        format!("cannot write {}: {e}", path.display()),
    )
    .detail("file", path.display().to_string())
}

/// The temp file in `tmp_dir`, then the rename; never creates a directory.
/// `Ok(false)`: a directory was missing (removed under us).
fn write_via(tmp_dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut tmp = match tempfile::Builder::new()
        .prefix(".aether-tmp-")
        .tempfile_in(tmp_dir)
    {
        Ok(t) => t,
        Err(e) if gone(&e) => return Ok(false),
        Err(e) => return Err(write_failed(path, e)),
    };
    let fail = |e| write_failed(path, e);
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    match tmp.persist(path) {
        Ok(_) => Ok(true),
        // The temp file is removed with the error.
        Err(e) if gone(&e.error) => Ok(false),
        Err(e) => Err(write_failed(path, e.error)),
    }
}
