//! `ajj init`: a starter aether.toml, and `.env` kept out of commits.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::write_atomic;
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::config;
use crate::model::envfile;
use serde_json::json;

/// Where `ajj init` writes the schema, next to aether.toml; the directive
/// Taplo (Even Better TOML) reads points at it.
pub const SCHEMA_FILE: &str = "aether.schema.json";

const STARTER: &str = r#"#:schema ./aether.schema.json
# Services for this workspace: every jj workspace gets its own copy of each,
# on free ports of 127.0.0.1, with the connection details written to .env.
# See aether.toml.example for every key. Uncomment and adjust:

# [services.db]
# image = "postgres:16"
# ports = [5432]
# env = { POSTGRES_PASSWORD = "pass" }
# volumes = { data = "/var/lib/postgresql/data" }
# healthcheck = { command = ["pg_isready", "-U", "postgres"], interval = "500ms" }
# connection_string = "postgres://postgres:pass@{host}:{port}/postgres"
#
# [env]
# DATABASE_URL = "{db.url}"
"#;

/// The starter for a workspace that already has a Compose file: Aether
/// runs that file's services, each workspace on its own ports.
fn compose_starter(files: &[String]) -> String {
    let list: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    format!(
        r#"#:schema ./aether.schema.json
# Services for this workspace come from the Compose file below: every jj
# workspace gets its own copy of the stack, on free ports of 127.0.0.1, with
# each service's host and port written to .env. `ajj services` shows the
# services as Aether runs them, and what it rewrote for isolation.

[compose]
files = [{}]
# profiles = ["dev"]

# Aether's own keys for a Compose service, e.g. a URL written to .env:
# [compose.services.db]
# connection_string = "postgres://postgres:pass@{{host}}:{{port}}/postgres"
# ready_timeout = "90s"
"#,
        list.join(", ")
    )
}

/// The Compose file of a workspace, as `ajj init` looks for it: the
/// standard names in the root, then in the usual folders. Relative paths.
fn find_compose(root: &std::path::Path) -> Vec<String> {
    use crate::model::compose;
    std::iter::once(String::new())
        .chain(compose::USUAL_FOLDERS.iter().map(|f| format!("{f}/")))
        .find_map(|dir| {
            let files = compose::find_standard(&root.join(&dir));
            (!files.is_empty()).then(|| {
                files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|n| format!("{dir}{}", n.to_string_lossy()))
                    .collect()
            })
        })
        .or_else(|| {
            // Other names people give a development file.
            [
                "docker-compose.dev.yml",
                "docker-compose.dev.yaml",
                "compose.dev.yaml",
            ]
            .iter()
            .find(|n| root.join(n).is_file())
            .map(|n| vec![n.to_string()])
        })
        .unwrap_or_default()
}

/// Write a starter aether.toml and make sure .env is ignored
///
/// When the workspace already has a Compose file (compose.yaml,
/// docker-compose.yml…, also in .devcontainer/ or docker/), the starter
/// names it, so that Aether runs that stack as it is.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Overwrite an existing aether.toml
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let root = &ctx.workspace_root;
    let config_path = config::config_path(root);
    let compose_files = find_compose(root);
    let wrote_config = if config_path.exists() && !args.force {
        false
    } else {
        let text = match compose_files.is_empty() {
            true => STARTER.to_string(),
            false => compose_starter(&compose_files),
        };
        write_atomic(&config_path, text.as_bytes(), 0o644)?;
        true
    };
    // The schema follows this binary: rewritten on every init.
    let schema = serde_json::to_vec_pretty(&config::schema()).expect("a schema serialises");
    write_atomic(&root.join(SCHEMA_FILE), &schema, 0o644)?;

    let mut ignored_now = false;
    if !envfile::is_ignored(root) {
        let gitignore = root.join(".gitignore");
        let mut text = match std::fs::read_to_string(&gitignore) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(CommandError::io(gitignore.display(), e)),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# Aether writes service credentials here\n.env\n");
        write_atomic(&gitignore, text.as_bytes(), 0o644)?;
        ignored_now = true;
        if !envfile::is_ignored(root) {
            return Err(CommandError::new(
                ErrorCode::EnvFile,
                "added .env to .gitignore but it is still not ignored",
            )
            .hint("a negation rule (`!.env`) in .gitignore re-includes it; remove that rule"));
        }
    }

    if args.json {
        print_json(&json!({
            "schema_version": crate::reconcile::report::SCHEMA_VERSION,
            "config": config_path.display().to_string(),
            "wrote_config": wrote_config,
            "schema": root.join(SCHEMA_FILE).display().to_string(),
            "added_env_to_gitignore": ignored_now,
            "compose_files": compose_files,
        }));
    } else {
        if wrote_config && !compose_files.is_empty() {
            println!(
                "Wrote {}, naming {} (`ajj services` shows what runs)",
                config_path.display(),
                compose_files.join(", ")
            );
        } else if wrote_config {
            println!("Wrote {}", config_path.display());
        } else {
            println!(
                "Kept the existing {} (--force overwrites it)",
                config_path.display()
            );
        }
        if ignored_now {
            println!("Added .env to {}", root.join(".gitignore").display());
        } else {
            println!(".env is already ignored");
        }
    }
    Ok(0)
}
