//! `ajj trust`: let the shell hooks load this workspace's own variables.
//! Records the digest of the content in the user's state directory; any
//! change of that content needs trust again. See trust.rs for the rule.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::envfile;
use crate::model::trust::{self, Sources, TrustRecord};
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Trust this workspace's variables, so the shell hooks load them
///
/// The hooks (`ajj hooks init`, hooks/envrc) load what Aether generated for
/// the services without asking. Your own lines of .env and the [env] table
/// of aether.toml come from the revision, so they are loaded only once you
/// have trusted that exact content. Any edit needs trust again. `ajj run`
/// does not ask: you chose to run the command in this workspace.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show what would be trusted, and whether it is, without recording anything
    #[arg(long)]
    pub show: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

/// The workspace root at or above `-R` or the current directory.
pub fn root_here(helper: &CommandHelper) -> Result<PathBuf> {
    let start = helper.start_dir()?;
    let start = start
        .canonicalize()
        .map_err(|e| CommandError::io(format!("cannot resolve {}", start.display()), e))?;
    crate::model::repo::workspace_root(&start).ok_or_else(|| {
        CommandError::new(
            ErrorCode::NotInWorkspace,
            format!("{} is not inside a jj workspace", start.display()),
        )
        .hint("cd into a workspace, or pass -R <path>")
    })
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let root = root_here(helper)?;
    let sources = Sources::read(&root)?;
    let digest = sources.digest();
    let records = trust::Records::user().ok_or_else(trust::no_state_dir)?;
    let before = records.load_trust(&root);
    let was_trusted = before.as_ref().is_some_and(|r| r.digest == digest);
    if !args.show && !was_trusted {
        records.save_trust(&TrustRecord {
            root: root.clone(),
            digest: digest.clone(),
            trusted_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })?;
    }
    let trusted = was_trusted || !args.show;
    // What the Compose stack asks of the host, trusted with the same command.
    let host = match crate::model::config::load_untrusted(&root) {
        Ok(config) => {
            let grants = config.grants;
            let before = crate::model::grants::trusted(&root, &grants);
            if !args.show && !before && !grants.is_empty() {
                crate::model::grants::record(&root, &grants)?;
            }
            json!({
                "grants": grants,
                "trusted": grants.is_empty() || before || !args.show,
                "already_trusted": grants.is_empty() || before,
            })
        }
        Err(e) => {
            json!({"grants": [], "trusted": false, "already_trusted": false, "error": e.message})
        }
    };
    let allow = trust::user_allowed();
    let withheld: Vec<&String> = sources
        .env
        .user_vars
        .iter()
        .map(|(k, _)| k)
        .chain(sources.env_table.keys())
        .filter(|k| trust::never_exported(k) && !allow.contains(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let user_vars: BTreeMap<&str, &str> = sources
        .env
        .user_vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let report = json!({
        "schema_version": SCHEMA_VERSION,
        "workspace_root": root.display().to_string(),
        "digest": digest,
        "trusted": trusted,
        // Trusted before this command, for this exact content.
        "already_trusted": was_trusted,
        "changed_since_trusted": before.is_some() && !was_trusted,
        "sources": {
            "env_file": {
                "path": root.join(envfile::FILE_NAME).display().to_string(),
                "variables": user_vars,
            },
            "aether_toml": {
                "path": crate::model::config::config_path(&root).display().to_string(),
                "env": sources.env_table,
            },
        },
        "never_exported": withheld,
        "host": host,
    });
    if args.json {
        print_json(&report);
    } else {
        print_human(&report, args.show);
    }
    Ok(0)
}

fn print_human(r: &Value, show: bool) {
    let root = r["workspace_root"].as_str().unwrap_or_default();
    let vars = r["sources"]["env_file"]["variables"].as_object();
    let env = r["sources"]["aether_toml"]["env"].as_object();
    let count = vars.map_or(0, |m| m.len()) + env.map_or(0, |m| m.len());
    let status = match (
        r["already_trusted"].as_bool(),
        r["changed_since_trusted"].as_bool(),
    ) {
        (Some(true), _) => "trusted",
        (_, Some(true)) => "not trusted: changed since you trusted it",
        _ => "not trusted",
    };
    println!("{root}: {status}");
    if let Some(vars) = vars.filter(|m| !m.is_empty()) {
        println!("  your lines of .env:");
        for (k, v) in vars {
            println!("    {k}={}", v.as_str().unwrap_or_default());
        }
    }
    if let Some(env) = env.filter(|m| !m.is_empty()) {
        println!("  [env] of aether.toml:");
        for (k, v) in env {
            println!("    {k} = {:?}", v.as_str().unwrap_or_default());
        }
    }
    if let Some(grants) = r["host"]["grants"].as_array().filter(|g| !g.is_empty()) {
        let status = if r["host"]["already_trusted"] == true {
            "trusted"
        } else {
            "not trusted"
        };
        println!("  what the services get of this host ({status}):");
        for g in grants.iter().filter_map(Value::as_str) {
            println!("    {g}");
        }
    }
    if let Some(e) = r["host"]["error"].as_str() {
        println!("  (the services' config does not load, so nothing of it is trusted: {e})");
    }
    if count == 0 {
        println!(
            "  (no lines of your own and no [env]: the hooks load only the service variables)"
        );
    }
    if let Some(names) = r["never_exported"].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        println!(
            "  never loaded into a shell, trusted or not: {} (set {}=\"{}\" in your own shell config to allow)",
            names.join(", "),
            trust::ALLOW_VAR,
            names.join(" ")
        );
    }
    if !show && r["already_trusted"] != true {
        println!("Trusted. The shell hooks load these at the next prompt; any change needs `ajj trust` again.");
    } else if show && r["already_trusted"] != true {
        println!("Run `ajj trust` to let the shell hooks load these.");
    }
}
