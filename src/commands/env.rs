//! `ajj env`: the workspace's variables, for people, programs and shells.
//! With `--shell`, the shell hooks in `hooks/` call it on every prompt, so
//! it reads one file and never starts a runtime, jj or Docker.

use crate::base::error::Result;
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::envfile;
use crate::model::trust;
use crate::reconcile::report::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Print the workspace's variables (what `ajj run` loads)
///
/// Without options: `NAME=value` lines, every line of .env. With --shell:
/// code that loads them into the shell, first undoing what an earlier call
/// loaded for another directory (the hooks in `ajj hooks init` run this on
/// every prompt). A shell gets only what the workspace may put there: the
/// variables Aether generated for its services, and your own lines and
/// [env] once you have trusted them (`ajj trust`); see README, "Trust".
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print code for this shell instead
    #[arg(long, value_enum)]
    pub shell: Option<Shell>,
    /// With --shell bash: plain exports and `watch_file` lines for direnv,
    /// which undoes them itself (hooks/envrc)
    #[arg(long, requires = "shell")]
    pub direnv: bool,
    /// Print one JSON object on stdout
    #[arg(long, conflicts_with = "shell")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// What the shell has loaded, kept in `$AJJ_ENV` between prompts.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Loaded {
    pub root: String,
    /// Changes whenever `.env`, `aether.toml`, the trust or the record change.
    pub stamp: String,
    /// Each loaded variable → its value before loading (`None`: was unset).
    pub saved: BTreeMap<String, Option<String>>,
}

pub const STATE_VAR: &str = "AJJ_ENV";

/// The workspace the shell is in now: its root, its stamp, its variables.
pub struct Here {
    pub root: String,
    pub stamp: String,
    pub vars: Vec<(String, String)>,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let start = helper.start_dir()?;
    // Trust is keyed by the real path of the root.
    let root = crate::model::repo::workspace_root(&start.canonicalize().unwrap_or(start.clone()));
    let Some(shell) = args.shell else {
        let root = root.ok_or_else(|| {
            crate::base::error::CommandError::new(
                crate::base::error::ErrorCode::NotInWorkspace,
                format!("{} is not inside a jj workspace", start.display()),
            )
            .hint("cd into a workspace, or pass -R <path>")
        })?;
        let vars = envfile::read_all(&root)?;
        if args.json {
            let (plan, trusted) = hook_plan(&root)?;
            let map: BTreeMap<_, _> = vars.into_iter().collect();
            print_json(&json!({
                "schema_version": SCHEMA_VERSION,
                "workspace_root": root.display().to_string(),
                "variables": map,
                "trusted": trusted,
                "hook": {
                    "loads": plan.load.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                    "skipped_untrusted": plan.untrusted,
                    "withheld": plan.withheld,
                    "unverified": plan.unverified,
                },
            }));
        } else {
            for (k, v) in vars {
                println!("{k}={v}");
            }
        }
        return Ok(0);
    };
    if args.direnv {
        if shell != Shell::Bash {
            return Err(crate::base::error::CommandError::new(
                crate::base::error::ErrorCode::Usage,
                "--direnv goes with --shell bash: direnv evaluates .envrc with bash",
            )
            .hint("eval \"$(ajj env --shell bash --direnv)\" in .envrc (hooks/envrc)"));
        }
        if let Some(root) = root {
            print!("{}", direnv(shell, &root));
        }
        return Ok(0);
    }
    // A hook must never break the prompt: unreadable state or files mean
    // "nothing loaded" and a notice rather than an error.
    let prev: Option<Loaded> = std::env::var(STATE_VAR)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let here = root.map(|root| {
        let stamp = stamp(&root);
        (root, stamp)
    });
    if let (Some(p), Some((root, stamp))) = (&prev, &here) {
        // The common case, on every prompt: nothing changed, nothing read.
        if Path::new(&p.root) == root.as_path() && &p.stamp == stamp {
            return Ok(0);
        }
    }
    let next = here.map(|(root, stamp)| Here {
        vars: hook_vars(&root),
        root: root.display().to_string(),
        stamp,
    });
    let code = transition(shell, prev.as_ref(), |k| std::env::var(k).ok(), next);
    print!("{code}");
    Ok(0)
}

/// The hook's plan for `root` and whether its content is trusted.
fn hook_plan(root: &Path) -> Result<(trust::HookPlan, bool)> {
    let sources = trust::Sources::read(root)?;
    let records = trust::Records::user();
    let trusted = records.as_ref().is_some_and(|r| r.trusts(root, &sources));
    let generated = records.as_ref().and_then(|r| r.load_generated(root));
    let plan = trust::hook_plan(
        &sources,
        generated.as_ref(),
        trusted,
        &trust::user_allowed(),
    );
    Ok((plan, trusted))
}

/// What a hook loads for `root`, with its notices on stderr. A `.env`
/// that is not a regular file loads nothing; an `aether.toml` that is not
/// TOML still lets the generated variables load.
fn hook_vars(root: &Path) -> Vec<(String, String)> {
    let outcome = hook_plan(root).or_else(|e| match e.code {
        crate::base::error::ErrorCode::ConfigInvalid => {
            eprintln!(
                "ajj: {} (your lines and [env] wait until it parses)",
                e.message
            );
            let sources = trust::Sources::read_env_only(root)?;
            let generated = trust::Records::user().and_then(|r| r.load_generated(root));
            Ok((
                trust::hook_plan(&sources, generated.as_ref(), false, &trust::user_allowed()),
                false,
            ))
        }
        _ => Err(e),
    });
    match outcome {
        Ok((plan, _)) => {
            for notice in trust::notices(root, &plan) {
                eprintln!("{notice}");
            }
            plan.load
        }
        Err(e) => {
            let hint = e
                .hint
                .as_deref()
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            eprintln!("ajj: {} [{}]{hint}", e.message, e.code.as_str());
            Vec::new()
        }
    }
}

/// For `.envrc`: exports only (direnv restores the shell itself), and the
/// files whose change should make direnv load again.
fn direnv(shell: Shell, root: &Path) -> String {
    let records = trust::Records::user();
    let mut out = String::from("watch_file");
    let watched = [
        Some(root.join(envfile::FILE_NAME)),
        Some(crate::model::config::config_path(root)),
        records.as_ref().map(|r| r.trust_path(root)),
        records.as_ref().map(|r| r.generated_path(root)),
    ];
    for path in watched.into_iter().flatten() {
        out.push(' ');
        out.push_str(&quote(shell, &path.display().to_string()));
    }
    out.push_str(";\n");
    for (name, value) in hook_vars(root).iter().filter(|(n, _)| valid_name(n)) {
        out.push_str(&set(shell, name, value));
    }
    out
}

/// Identifies the content the hook's answer depends on, from metadata only.
fn stamp(root: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let records = trust::Records::user();
    let files = [
        Some(root.join(envfile::FILE_NAME)),
        Some(crate::model::config::config_path(root)),
        records.as_ref().map(|r| r.trust_path(root)),
        records.as_ref().map(|r| r.generated_path(root)),
    ];
    let mut out = String::new();
    for file in files {
        // lstat: a symlinked .env is refused, not followed.
        match file.map(std::fs::symlink_metadata) {
            Some(Ok(m)) => out.push_str(&format!(
                "{}:{}:{}.{};",
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            )),
            _ => out.push_str("none;"),
        }
    }
    out.push_str(&std::env::var(trust::ALLOW_VAR).unwrap_or_default());
    out
}

/// The shell code that goes from `prev` to `next`. Pure, so it is tested
/// for every shell without running one.
pub fn transition(
    shell: Shell,
    prev: Option<&Loaded>,
    env: impl Fn(&str) -> Option<String>,
    next: Option<Here>,
) -> String {
    if let (Some(p), Some(here)) = (prev, &next) {
        if p.root == here.root && p.stamp == here.stamp {
            return String::new();
        }
    }
    let mut out = String::new();
    if let Some(p) = prev {
        // `$AJJ_ENV` is only as trustworthy as whoever set it: never let it
        // set a name the hooks would not export.
        let allow = trust::user_allowed();
        let restorable =
            |n: &String| valid_name(n) && (!trust::never_exported(n) || allow.contains(n));
        for (name, old) in p.saved.iter().filter(|(n, _)| restorable(n)) {
            match old {
                Some(v) => out.push_str(&set(shell, name, v)),
                None => out.push_str(&unset(shell, name)),
            }
        }
    }
    match next {
        Some(Here { root, stamp, vars }) if !vars.is_empty() => {
            let mut loaded = Loaded {
                root,
                stamp,
                saved: BTreeMap::new(),
            };
            for (name, value) in vars.iter().filter(|(n, _)| valid_name(n)) {
                let before = match prev.and_then(|p| p.saved.get(name)) {
                    Some(old) => old.clone(),
                    None => env(name),
                };
                loaded.saved.insert(name.clone(), before);
                out.push_str(&set(shell, name, value));
            }
            let state = serde_json::to_string(&loaded).expect("state serialises");
            out.push_str(&set(shell, STATE_VAR, &state));
        }
        Some(Here { root, stamp, .. }) => {
            // Nothing to load, but remember the directory so the next
            // prompt here costs nothing.
            let state = serde_json::to_string(&Loaded {
                root,
                stamp,
                saved: BTreeMap::new(),
            })
            .expect("state serialises");
            out.push_str(&set(shell, STATE_VAR, &state));
        }
        None if prev.is_some() => out.push_str(&unset(shell, STATE_VAR)),
        None => {}
    }
    out
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != STATE_VAR
}

fn quote(shell: Shell, value: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("'{}'", value.replace('\'', r"'\''")),
        Shell::Fish => format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'")),
    }
}

fn set(shell: Shell, name: &str, value: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("export {name}={};\n", quote(shell, value)),
        Shell::Fish => format!("set -gx {name} {};\n", quote(shell, value)),
    }
}

fn unset(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("unset {name};\n"),
        Shell::Fish => format!("set -e {name};\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn entering_saves_what_was_there_and_leaving_restores_it() {
        let env = |k: &str| (k == "PORT").then(|| "1".to_string());
        let enter = transition(
            Shell::Bash,
            None,
            env,
            Some(Here {
                root: "/w".into(),
                stamp: "s1".into(),
                vars: vars(&[("PORT", "5432"), ("URL", "it's")]),
            }),
        );
        assert!(enter.contains("export PORT='5432';\n"));
        assert!(enter.contains(r"export URL='it'\''s';"));
        let state: Loaded = serde_json::from_str(
            &enter
                .lines()
                .find_map(|l| l.strip_prefix("export AJJ_ENV='"))
                .unwrap()
                .trim_end_matches("';")
                .replace(r"'\''", "'"),
        )
        .unwrap();
        assert_eq!(state.saved["PORT"], Some("1".into()));
        assert_eq!(state.saved["URL"], None);
        // Same directory, same file: nothing to do.
        let again = Some(Here {
            root: "/w".into(),
            stamp: "s1".into(),
            vars: vars(&[("PORT", "5432")]),
        });
        assert_eq!(transition(Shell::Bash, Some(&state), |_| None, again), "");
        // Leaving: back to what was there before.
        let leave = transition(Shell::Bash, Some(&state), |_| None, None);
        assert_eq!(leave, "export PORT='1';\nunset URL;\nunset AJJ_ENV;\n");
    }

    #[test]
    fn moving_between_workspaces_keeps_the_original_values() {
        let state = Loaded {
            root: "/a".into(),
            stamp: "s".into(),
            saved: BTreeMap::from([("PORT".to_string(), Some("orig".to_string()))]),
        };
        // $PORT is now a's value; the saved one is the user's own.
        let code = transition(
            Shell::Fish,
            Some(&state),
            |_| Some("from-a".into()),
            Some(Here {
                root: "/b".into(),
                stamp: "t".into(),
                vars: vars(&[("PORT", "2"), ("bad-name", "x")]),
            }),
        );
        assert!(code.starts_with("set -gx PORT 'orig';\nset -gx PORT '2';\n"));
        assert!(code.contains(r#""PORT":"orig""#));
        assert!(!code.contains("bad-name"));
    }

    #[test]
    fn fish_quoting_escapes_backslashes_and_quotes() {
        assert_eq!(quote(Shell::Fish, r"a\b'c"), r"'a\\b\'c'");
        assert_eq!(quote(Shell::Zsh, "a'b"), r"'a'\''b'");
    }
}
