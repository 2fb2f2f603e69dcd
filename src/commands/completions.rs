//! Shell completion, as jj does it: the shell calls `COMPLETE=<shell> ajj
//! -- <words>` and `ajj` answers from its clap definitions (clap_complete's
//! dynamic engine), with workspace and service names looked up live. Words
//! that are not Aether's go to jj's own completer; at the command position
//! both answer, so `ajj <TAB>` offers jj's commands and Aether's.

use crate::base::error::{CommandError, ErrorCode, Result};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::CompletionCandidate;
use std::ffi::{OsStr, OsString};
use std::io::Write;

/// The variable the shells' registration scripts set, as jj's do.
pub const VAR: &str = "COMPLETE";

/// Print the shell's completion script
///
/// Load it from your shell's startup file (`ajj hooks install` does):
/// `source <(ajj completions bash)`, `source <(ajj completions zsh)`,
/// `ajj completions fish | source`. It completes Aether's commands, flags,
/// workspace and service names, and hands everything else to jj's own
/// completion.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_enum)]
    pub shell: crate::commands::env::Shell,
}

fn shell(name: &str) -> Option<&'static dyn EnvCompleter> {
    match name {
        "bash" => Some(&Bash),
        "zsh" => Some(&Zsh),
        "fish" => Some(&Fish),
        _ => None,
    }
}

pub fn run(args: Args) -> Result<i32> {
    let name = match args.shell {
        crate::commands::env::Shell::Bash => "bash",
        crate::commands::env::Shell::Zsh => "zsh",
        crate::commands::env::Shell::Fish => "fish",
    };
    let sh = shell(name).expect("every Shell has a completer");
    let mut out = Vec::new();
    sh.write_registration(VAR, "ajj", "ajj", "ajj", &mut out)
        .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CommandError::io("writing the script", e))?;
    Ok(0)
}

/// Answers a completion request (`COMPLETE=<shell> ajj -- ajj <words>`)
/// and exits. Runs before any routing: the pass-through path only pays
/// for one environment lookup. `cli.rs` hands down the command line's
/// definition and its routing rule.
pub fn complete(
    args: &[OsString],
    shell_name: &OsStr,
    cli: impl FnOnce() -> clap::Command,
    routes_to_aether: fn(&[OsString]) -> bool,
) -> ! {
    let Some(sh) = shell(&shell_name.to_string_lossy()) else {
        std::process::exit(1);
    };
    // SAFETY: single-threaded start-up; child processes (jj, our own
    // lookups) must not see the request.
    unsafe { std::env::remove_var(VAR) };
    let words: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    };
    if words.is_empty() {
        std::process::exit(0);
    }
    let index: usize = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok())
        .unwrap_or(words.len() - 1);
    let before = &words[1..index.min(words.len())];
    let at_command = before.iter().all(|w| w.to_string_lossy().starts_with('-'));
    let mut out = Vec::new();
    let ours = routes_to_aether(&words[1..]);
    if at_command || ours {
        let mut cmd = cli();
        cmd.build();
        let cwd = std::env::current_dir().ok();
        let _ = sh.write_complete(&mut cmd, words.clone(), cwd.as_deref(), &mut out);
    }
    if at_command || !ours {
        let sep = separator(&shell_name.to_string_lossy());
        out = merge(&out, &jj_candidates(shell_name, &words), &sep);
    }
    let _ = std::io::stdout().write_all(&out);
    std::process::exit(0)
}

/// Between two candidates: the IFS the bash and zsh scripts set, a newline
/// for fish.
fn separator(shell: &str) -> Vec<u8> {
    match shell {
        "fish" => b"\n".to_vec(),
        _ => std::env::var("_CLAP_IFS")
            .unwrap_or_else(|_| "\n".into())
            .into_bytes(),
    }
}

/// Aether's candidates, then jj's that Aether did not offer (`run` is a
/// command of both).
fn merge(ours: &[u8], theirs: &[u8], sep: &[u8]) -> Vec<u8> {
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        let text = String::from_utf8_lossy(b).into_owned();
        let sep = String::from_utf8_lossy(sep).into_owned();
        text.split(sep.as_str())
            .flat_map(|c| c.split('\n'))
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .collect()
    };
    let value = |c: &[u8]| c.split(|b| *b == b'\t').next().unwrap_or_default().to_vec();
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for c in split(ours).into_iter().chain(split(theirs)) {
        if seen.insert(value(&c)) {
            all.push(c);
        }
    }
    all.join(sep)
}

/// What jj's own completer answers for the same words.
fn jj_candidates(shell: &OsStr, words: &[OsString]) -> Vec<u8> {
    let mut cmd = crate::model::jj::command();
    cmd.env(VAR, shell).arg("--").arg("jj").args(&words[1..]);
    cmd.stderr(std::process::Stdio::null());
    cmd.output().map(|o| o.stdout).unwrap_or_default()
}

/// The workspaces jj lists from here, and the candidates among `values`
/// that start with `current`.
fn listed() -> Vec<crate::model::jj::WorkspaceEntry> {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| crate::model::jj::list_workspaces(&cwd).ok())
        .unwrap_or_default()
}

fn starting_with(
    current: &OsStr,
    values: impl IntoIterator<Item = String>,
) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    values
        .into_iter()
        .filter(|v| v.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The workspaces jj lists, for `forget`.
pub fn workspace_names(current: &OsStr) -> Vec<CompletionCandidate> {
    starting_with(current, listed().into_iter().map(|e| e.name))
}

/// The roots of the workspaces jj lists, for `-R`.
pub fn workspace_roots(current: &OsStr) -> Vec<CompletionCandidate> {
    let roots = listed().into_iter().filter_map(|e| e.root);
    starting_with(current, roots.map(|r| r.display().to_string()))
}

/// The services of this workspace's aether.toml, for `exec`.
pub fn service_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let services = std::env::current_dir()
        .ok()
        .and_then(|d| crate::model::repo::RepoContext::discover(&d).ok())
        .and_then(|ctx| crate::model::config::load_from_root(&ctx.workspace_root).ok())
        .map(|c| c.services.into_keys().collect::<Vec<_>>())
        .unwrap_or_default();
    starting_with(current, services)
}
