//! `ajj hooks`: the integrations shipped in `hooks/` (shell hooks, jj
//! aliases), printed or installed without clobbering the user's config.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::write_atomic;
use crate::commands::env::Shell;
use crate::commands::print_json;
use crate::model::jj;
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::json;
use std::path::{Path, PathBuf};

const BASH: &str = include_str!("../../hooks/ajj.bash");
const ZSH: &str = include_str!("../../hooks/ajj.zsh");
const FISH: &str = include_str!("../../hooks/ajj.fish");
const JJ_ALIASES: &str = include_str!("../../hooks/jj-aliases.toml");

const BEGIN: &str = "# >>> ajj hooks >>>";
const END: &str = "# <<< ajj hooks <<<";

#[derive(clap::Subcommand, Debug)]
pub enum HooksCommand {
    Init(InitArgs),
    Install(InstallArgs),
}

/// Print a shell's integration script
///
/// Loads the workspace's .env when you cd into it and unloads it when you
/// leave. Use it from your shell's startup file:
/// `eval "$(ajj hooks init bash)"`, `eval "$(ajj hooks init zsh)"`,
/// `ajj hooks init fish | source`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Put the integrations in place, without clobbering your config
///
/// bash and zsh: a marked block in ~/.bashrc or ~/.zshrc (replaced on
/// reinstall, the rest of the file untouched). fish: the same block in
/// ~/.config/fish/conf.d/ajj.fish. jj: the aliases wsa, wsf, wss and wsrun
/// in your jj user config, set by `jj config set --user`; an alias you
/// already have is left alone and reported.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// What to install: bash, zsh, fish, jj [default: jj and the shell in $SHELL]
    #[arg(value_enum)]
    pub targets: Vec<Target>,
    /// Say what would change and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    Jj,
}

pub fn run(cmd: HooksCommand) -> Result<i32> {
    match cmd {
        HooksCommand::Init(args) => {
            print!("{}", script(args.shell));
            Ok(0)
        }
        HooksCommand::Install(args) => install(args),
    }
}

fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    }
}

fn install(args: InstallArgs) -> Result<i32> {
    let mut targets = args.targets.clone();
    if targets.is_empty() {
        targets.push(Target::Jj);
        let shell = std::env::var("SHELL").unwrap_or_default();
        match Path::new(&shell).file_name().and_then(|n| n.to_str()) {
            Some("bash") => targets.push(Target::Bash),
            Some("zsh") => targets.push(Target::Zsh),
            Some("fish") => targets.push(Target::Fish),
            _ => {}
        }
    }
    targets.sort();
    targets.dedup();
    let mut results = Vec::new();
    for target in targets {
        let result = match target {
            Target::Bash => rc_block(
                "bash",
                home()?.join(".bashrc"),
                "command -v ajj >/dev/null 2>&1 && eval \"$(ajj hooks init bash)\"",
                args.dry_run,
            ),
            Target::Zsh => {
                let dir = std::env::var_os("ZDOTDIR")
                    .map(PathBuf::from)
                    .map_or_else(home, Ok)?;
                rc_block(
                    "zsh",
                    dir.join(".zshrc"),
                    "(( $+commands[ajj] )) && eval \"$(ajj hooks init zsh)\"",
                    args.dry_run,
                )
            }
            Target::Fish => {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .map_or_else(|| home().map(|h| h.join(".config")), Ok)?;
                rc_block(
                    "fish",
                    config.join("fish").join("conf.d").join("ajj.fish"),
                    "command -q ajj; and ajj hooks init fish | source",
                    args.dry_run,
                )
            }
            Target::Jj => jj_aliases(args.dry_run),
        }?;
        results.push(result);
    }
    if args.json {
        print_json(&json!({
            "schema_version": SCHEMA_VERSION,
            "dry_run": args.dry_run,
            "installed": results,
        }));
    } else {
        for r in &results {
            let detail = r["detail"].as_str().unwrap_or_default();
            println!(
                "{}: {} {}{}",
                r["target"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["file"].as_str().unwrap_or_default(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            );
        }
    }
    Ok(0)
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| {
        CommandError::new(ErrorCode::Usage, "HOME is not set")
            .hint("set HOME, or install by hand as README.md describes")
    })
}

/// Puts `line` between the markers in `path`, keeping every other byte.
fn rc_block(target: &str, path: PathBuf, line: &str, dry_run: bool) -> Result<serde_json::Value> {
    let existing = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(CommandError::io(path.display(), e)),
    };
    let block = format!("{BEGIN}\n{line}\n{END}\n");
    let new = splice(existing.as_deref().unwrap_or(""), &block);
    let status = match &existing {
        Some(old) if *old == new => "unchanged",
        Some(old) if old.contains(BEGIN) => "updated",
        _ => "installed",
    };
    if !dry_run && status != "unchanged" {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CommandError::io(dir.display(), e))?;
        }
        write_atomic(&path, new.as_bytes(), mode)?;
    }
    Ok(json!({ "target": target, "file": path.display().to_string(), "status": status }))
}

/// Replaces the marked block, or appends it after the user's content.
pub fn splice(existing: &str, block: &str) -> String {
    if let (Some(start), Some(end_at)) = (existing.find(BEGIN), existing.find(END)) {
        if end_at > start {
            let mut end = end_at + END.len();
            if existing[end..].starts_with('\n') {
                end += 1;
            }
            return format!("{}{block}{}", &existing[..start], &existing[end..]);
        }
    }
    let mut out = existing.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(block);
    out
}

fn jj_aliases(dry_run: bool) -> Result<serde_json::Value> {
    let table: toml::Table = toml::from_str(JJ_ALIASES).expect("hooks/jj-aliases.toml parses");
    let aliases = table["aliases"].as_table().expect("an [aliases] table");
    let cwd = std::env::temp_dir();
    let (mut added, mut present, mut skipped) = (vec![], vec![], vec![]);
    for (name, value) in aliases {
        let key = format!("aliases.{name}");
        let wanted = toml::Value::to_string(value);
        let current = jj::config_get(&cwd, &key)?;
        match current {
            None => {
                if !dry_run {
                    let out = jj::command()
                        .args(["config", "set", "--user", &key, &wanted])
                        .current_dir(&cwd)
                        .stdin(std::process::Stdio::null())
                        .output()
                        .map_err(|e| CommandError::io("running jj config set", e))?;
                    if !out.status.success() {
                        return Err(CommandError::new(
                            ErrorCode::JjFailed,
                            format!(
                                "`jj config set --user {key}` failed: {}",
                                String::from_utf8_lossy(&out.stderr).trim()
                            ),
                        ));
                    }
                }
                added.push(name.clone());
            }
            Some(have) if same_alias(&have, value) => present.push(name.clone()),
            Some(_) => skipped.push(name.clone()),
        }
    }
    let status = if added.is_empty() {
        "unchanged"
    } else {
        "installed"
    };
    let mut detail = Vec::new();
    if !added.is_empty() {
        detail.push(format!("added {}", added.join(", ")));
    }
    if !skipped.is_empty() {
        detail.push(format!(
            "kept your own {} (see hooks/jj-aliases.toml)",
            skipped.join(", ")
        ));
    }
    Ok(json!({
        "target": "jj",
        "file": "jj user config",
        "status": status,
        "added": added,
        "already_present": present,
        "skipped_existing": skipped,
        "detail": detail.join("; "),
    }))
}

/// `jj config get` prints an array as TOML; compare values, not text.
fn same_alias(have: &str, wanted: &toml::Value) -> bool {
    toml::from_str::<toml::Table>(&format!("v = {have}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .is_some_and(|v| &v == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_appends_once_and_replaces_in_place() {
        let block = format!("{BEGIN}\nnew\n{END}\n");
        let first = splice("alias ll='ls -l'", &block);
        assert_eq!(first, format!("alias ll='ls -l'\n{block}"));
        let old = format!("a\n{BEGIN}\nold\n{END}\nb\n");
        assert_eq!(splice(&old, &block), format!("a\n{block}b\n"));
        assert_eq!(splice(&first, &block), first);
    }

    #[test]
    fn shipped_aliases_route_through_ajj() {
        let table: toml::Table = toml::from_str(JJ_ALIASES).unwrap();
        let aliases = table["aliases"].as_table().unwrap();
        for name in ["wsa", "wsf", "wss", "wsrun"] {
            let argv = aliases[name].as_array().unwrap();
            assert_eq!(
                argv[..4],
                ["util", "exec", "--", "ajj"].map(toml::Value::from)
            );
        }
        assert!(same_alias(
            r#"["util", "exec", "--", "ajj", "workspace", "add"]"#,
            &aliases["wsa"]
        ));
    }
}
