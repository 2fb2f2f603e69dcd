//! The jj adapter. Shells out to the `jj` binary (never links jj-lib) so that
//! Aether follows whatever jj the user has. Every read uses
//! `--ignore-working-copy` so it neither snapshots nor creates an operation.

use crate::base::error::{CommandError, ErrorCode, Result};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `workspace list -T` gained `root` in 0.44.
pub const MIN_VERSION: (u32, u32) = (0, 44);

const LIST_TEMPLATE: &str = r#"json(name) ++ "\t" ++ json(root) ++ "\n""#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceEntry {
    pub name: String,
    /// `None` when jj has no root recorded, or the directory is gone.
    pub root: Option<PathBuf>,
    /// The root jj records, whether or not the directory still exists.
    pub recorded_root: Option<PathBuf>,
}

/// The jj binary: `$AETHER_JJ` if set (tests, wrappers), else `jj` on PATH.
pub fn binary() -> OsString {
    std::env::var_os("AETHER_JJ").unwrap_or_else(|| OsString::from("jj"))
}

pub fn command() -> Command {
    Command::new(binary())
}

fn spawn_error(err: std::io::Error) -> CommandError {
    if err.kind() == std::io::ErrorKind::NotFound {
        CommandError::new(ErrorCode::JjNotFound, "the `jj` binary was not found on PATH")
            .hint("install Jujutsu 0.44 or newer: `cargo install jj-cli@0.45.1 --locked`, or set AETHER_JJ to its path")
    } else {
        CommandError::new(ErrorCode::JjNotFound, format!("could not run jj: {err}"))
            .hint("check that AETHER_JJ / PATH points at an executable jj")
    }
}

fn run_captured(args: &[&OsStr], cwd: &Path) -> Result<Output> {
    command()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)
}

/// The leading `X.Y.Z` of "jj 0.45.1"; dev builds add `-<hash>` (which
/// may start with digits), so nothing after the third number counts.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.split_whitespace().nth(1)?;
    let mut parts = v.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor, patch.parse().ok()?))
}

pub fn version() -> Result<(u32, u32, u32)> {
    let out = command()
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        CommandError::new(
            ErrorCode::JjNotFound,
            format!("could not read jj's version from {text:?}"),
        )
    })
}

/// Turns a failed jj call into the most useful error: too old, or jj's own words.
fn failure(out: &Output, what: &str) -> CommandError {
    if let Ok((major, minor, patch)) = version() {
        if (major, minor) < MIN_VERSION {
            return CommandError::new(
                ErrorCode::JjTooOld,
                format!("jj {major}.{minor}.{patch} is too old; Aether needs jj 0.44 or newer"),
            )
            .hint("upgrade: `cargo install jj-cli@0.45.1 --locked`")
            .detail("found", format!("{major}.{minor}.{patch}"))
            .detail("required", "0.44.0");
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    CommandError::new(ErrorCode::JjFailed, format!("`jj {what}` failed: {stderr}"))
        .detail("exit_code", out.status.code())
}

pub fn parse_workspace_list(text: &str) -> Result<Vec<WorkspaceEntry>> {
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || {
            CommandError::new(
                ErrorCode::JjFailed,
                format!("unexpected `jj workspace list` line: {line:?}"),
            )
        };
        let (name, root) = line.split_once('\t').ok_or_else(bad)?;
        let name: String = serde_json::from_str(name).map_err(|_| bad())?;
        let root: Option<String> = serde_json::from_str(root).map_err(|_| bad())?;
        let root = root.filter(|r| !r.is_empty()).map(PathBuf::from);
        entries.push(WorkspaceEntry {
            name,
            recorded_root: root.clone(),
            root,
        });
    }
    Ok(entries)
}

/// Lists the repo's workspaces. Roots that no longer exist on disk are
/// reported as `None`: a deleted checkout counts as gone.
pub fn list_workspaces(cwd: &Path) -> Result<Vec<WorkspaceEntry>> {
    let args: [&OsStr; 6] = [
        "--ignore-working-copy".as_ref(),
        "--color=never".as_ref(),
        "workspace".as_ref(),
        "list".as_ref(),
        "-T".as_ref(),
        LIST_TEMPLATE.as_ref(),
    ];
    let out = run_captured(&args, cwd)?;
    if !out.status.success() {
        return Err(failure(&out, "workspace list"));
    }
    let mut entries = parse_workspace_list(&String::from_utf8_lossy(&out.stdout))?;
    for e in &mut entries {
        if let Some(canonical) = e.recorded_root.as_ref().and_then(|r| r.canonicalize().ok()) {
            e.recorded_root = Some(canonical);
        }
        e.root = e.recorded_root.clone().filter(|r| r.is_dir());
    }
    Ok(entries)
}

/// A jj config value (`jj config get`), `None` when it is not set.
/// What a reconcile pass reads of jj: the workspaces and settings. [`JjAt`]
/// runs the real jj; unit tests answer from fixed data.
pub trait Workspaces {
    fn list(&self) -> Result<Vec<WorkspaceEntry>>;
    fn setting(&self, key: &str) -> Result<Option<String>>;
}

/// The real jj, run in a workspace root.
pub struct JjAt(pub std::path::PathBuf);

impl Workspaces for JjAt {
    fn list(&self) -> Result<Vec<WorkspaceEntry>> {
        list_workspaces(&self.0)
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        config_get(&self.0, key)
    }
}

/// A jj setting, `None` when it is not set. Read through `jj config list`
/// with a JSON template (0.44 on), which prints nothing for an unset key:
/// no error text is matched.
pub fn config_get(cwd: &Path, key: &str) -> Result<Option<String>> {
    let args: [&OsStr; 6] = [
        "--ignore-working-copy".as_ref(),
        "config".as_ref(),
        "list".as_ref(),
        key.as_ref(),
        "-T".as_ref(),
        r#"json(self) ++ "\n""#.as_ref(),
    ];
    let out = run_captured(&args, cwd)?;
    if !out.status.success() {
        return Err(failure(&out, "config list"));
    }
    Ok(parse_config_list(
        &String::from_utf8_lossy(&out.stdout),
        key,
    ))
}

/// The effective value of `key` in `jj config list -T 'json(self)'`
/// output: the last line naming it that no later source overrides. A
/// string is its text; any other value its JSON.
pub fn parse_config_list(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == key && v["is_overridden"] != true)
        .filter_map(|v| match &v["value"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            // Arrays (an alias) and inline tables as their JSON text.
            other => Some(other.to_string()),
        })
        .next()
}

/// `jj workspace forget NAME`, its output discarded: undoing an add.
pub fn forget_quietly(cwd: &Path, name: &str) -> Result<()> {
    let args: [&OsStr; 3] = ["workspace".as_ref(), "forget".as_ref(), name.as_ref()];
    let out = run_captured(&args, cwd)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failure(&out, "workspace forget"))
    }
}

/// Runs a mutating jj command with the user's terminal, except that jj's
/// stdout goes to our stderr when stdout is reserved for JSON.
///
/// `shielded` runs jj in a process group of its own, so that a terminal's
/// Ctrl-C reaches only `ajj`: jj then finishes what it started, and `ajj`
/// decides what to keep (an add killed part-way leaves a half-made
/// workspace behind).
pub fn run_visible(
    args: &[OsString],
    cwd: &Path,
    json_mode: bool,
    what: &str,
    shielded: bool,
) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = command();
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    if shielded {
        cmd.process_group(0);
    }
    if json_mode {
        cmd.stdout(std::io::stderr());
    }
    cmd.stderr(Stdio::piped());
    let child = cmd.spawn().map_err(spawn_error)?;
    let out = child
        .wait_with_output()
        .map_err(|e| CommandError::io("waiting for jj", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprint!("{stderr}");
        Ok(())
    } else {
        Err(failure(&out, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("jj 0.45.1\n"), Some((0, 45, 1)));
        assert_eq!(parse_version("jj 0.44.0-9f2c"), Some((0, 44, 0)));
        assert_eq!(parse_version("jj 0.46.0-12ab34"), Some((0, 46, 0)));
        assert_eq!(parse_version("jj 1.2.3+dirty"), Some((1, 2, 3)));
        assert_eq!(parse_version("nonsense"), None);
        assert_eq!(parse_version("jj 0.46"), None);
    }

    #[test]
    fn reads_settings_from_config_list() {
        let key = "aether.keep-forgotten-data";
        assert_eq!(parse_config_list("", key), None);
        let text = concat!(
            r#"{"name":"aether.keep-forgotten-data","value":"1d","source":"user","path":"/u","is_overridden":true}"#,
            "\n",
            r#"{"name":"aether.keep-forgotten-data","value":"7d","source":"repo","path":"/r","is_overridden":false}"#,
            "\n"
        );
        assert_eq!(parse_config_list(text, key).as_deref(), Some("7d"));
        let number = r#"{"name":"a.n","value":3,"source":"user","is_overridden":false}"#;
        assert_eq!(parse_config_list(number, "a.n").as_deref(), Some("3"));
        let alias =
            r#"{"name":"aliases.wsa","value":["log"],"source":"user","is_overridden":false}"#;
        assert_eq!(
            parse_config_list(alias, "aliases.wsa").as_deref(),
            Some(r#"["log"]"#)
        );
        // A table's children are other names.
        let child = r#"{"name":"aliases.wsa.x","value":"y","source":"user","is_overridden":false}"#;
        assert_eq!(parse_config_list(child, "aliases.wsa"), None);
    }

    #[test]
    fn parses_list_with_null_root() {
        let text = "\"default\"\t\"/r/main\"\n\"odd\\tname\"\tnull\n";
        let list = parse_workspace_list(text).unwrap();
        assert_eq!(
            list[0],
            WorkspaceEntry {
                name: "default".into(),
                root: Some("/r/main".into()),
                recorded_root: Some("/r/main".into()),
            }
        );
        assert_eq!(
            list[1],
            WorkspaceEntry {
                name: "odd\tname".into(),
                root: None,
                recorded_root: None,
            }
        );
        assert!(parse_workspace_list("garbage").is_err());
    }
}
