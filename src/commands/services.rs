//! `ajj services`: the effective services of this workspace, as Aether
//! will run them, after Compose's merge, interpolation and profiles (what
//! `docker compose config` shows for Compose). Reads files only: no
//! engine, no build.

use crate::base::error::Result;
use crate::commands::{print_json, CommandHelper};
use crate::model::config::{self, Service};
use crate::model::{grants, state};
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::{json, Value};

/// Show the services Aether runs for this workspace, after Compose's
/// merge, interpolation and profiles
///
/// Reads aether.toml and the Compose files only (no engine, no build): each
/// service's image (a `build:` shows the tag its context hashes to),
/// ports with the host port of this workspace where one was given,
/// dependencies, and what was rewritten for isolation or ignored, as
/// warnings. A config asking for the host (bind mounts outside the
/// workspace, `privileged`…) lists those grants and whether you trusted them.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let root = crate::commands::trust::root_here(helper)?;
    let config = config::load_untrusted(&root)?;
    // Names and sticky ports, when a pass has recorded this workspace.
    let ctx = helper.discover().ok();
    let name = ctx.as_ref().and_then(|ctx| {
        state::load_roots(ctx)
            .into_iter()
            .find(|(_, r)| r == &root)
            .map(|(n, _)| n)
    });
    let saved = match (&ctx, &name) {
        (Some(ctx), Some(n)) => Some(state::load(ctx, n)),
        _ => None,
    };
    let services: serde_json::Map<String, Value> = config
        .services
        .values()
        .map(|svc| {
            let ports = saved.as_ref().and_then(|s| s.ports.get(&svc.name));
            (
                svc.name.clone(),
                describe(svc, ports, ctx.as_ref(), name.as_deref(), &root),
            )
        })
        .collect();
    let report = json!({
        "schema_version": SCHEMA_VERSION,
        "workspace_root": root.display().to_string(),
        "workspace": name,
        "compose_files": config.compose_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "profiles": config.profiles,
        "services": services,
        "grants": config.grants,
        "trusted": config.grants.is_empty() || grants::trusted(&root, &config.grants),
        "warnings": config.warnings,
    });
    if args.json {
        print_json(&report);
    } else {
        print_human(&report);
    }
    Ok(0)
}

fn describe(
    svc: &Service,
    ports: Option<&std::collections::BTreeMap<u16, u16>>,
    ctx: Option<&crate::model::repo::RepoContext>,
    workspace: Option<&str>,
    root: &std::path::Path,
) -> Value {
    let spec = &svc.spec;
    let container = match (ctx, workspace) {
        (Some(ctx), Some(ws)) => Some(crate::backend::docker_container_name(
            &ctx.repo_id,
            ws,
            root,
            &svc.name,
        )),
        _ => None,
    };
    json!({
        "image": spec.image,
        "build": svc.build.as_ref().map(|b| json!({
            "context": b.context.display().to_string(),
            "dockerfile": b.dockerfile,
            "args": b.args,
            "target": b.target,
            "tag": b.tag,
        })),
        "container": container,
        "ports": spec.ports.iter().map(|p| json!({
            "container": p,
            "host": ports.and_then(|m| m.get(p)),
            "host_ip": "127.0.0.1",
        })).collect::<Vec<_>>(),
        "environment": spec.env,
        "command": spec.command,
        "volumes": spec.volumes,
        "healthcheck": spec.healthcheck,
        "depends_on": svc.depends_on.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "one_shot": svc.completes,
        "extra": spec.extra,
        "config_hash": spec.config_hash(),
        "source": svc.origin.as_ref().map_or_else(|| config::FILE_NAME.to_string(), |p| p.display().to_string()),
    })
}

fn print_human(r: &Value) {
    let files = r["compose_files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        let files: Vec<&str> = files.iter().filter_map(Value::as_str).collect();
        println!("Compose files: {}", files.join(", "));
    }
    if let Some(p) = r["profiles"].as_array().filter(|p| !p.is_empty()) {
        let p: Vec<&str> = p.iter().filter_map(Value::as_str).collect();
        println!("Profiles: {}", p.join(", "));
    }
    let services = r["services"].as_object().cloned().unwrap_or_default();
    if services.is_empty() {
        println!("No services.");
    }
    for (name, s) in &services {
        let ports: Vec<String> = s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p["host"].as_u64() {
                Some(h) => format!("127.0.0.1:{h}->{}", p["container"]),
                None => format!("{}", p["container"]),
            })
            .collect();
        let deps: Vec<String> = s["depends_on"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(d, c)| format!("{d} ({})", c.as_str().unwrap_or_default()))
            .collect();
        println!("{name}");
        println!("  image: {}", s["image"].as_str().unwrap_or_default());
        if let Some(ctx) = s["build"]["context"].as_str() {
            println!("  build: {ctx}");
        }
        if !ports.is_empty() {
            println!("  ports: {}", ports.join(", "));
        }
        if !deps.is_empty() {
            println!("  depends on: {}", deps.join(", "));
        }
    }
    if let Some(g) = r["grants"].as_array().filter(|g| !g.is_empty()) {
        let trusted = r["trusted"].as_bool() == Some(true);
        println!(
            "Asks for the host ({}):",
            if trusted {
                "trusted"
            } else {
                "not trusted: run `ajj trust` to allow"
            }
        );
        for line in g.iter().filter_map(Value::as_str) {
            println!("  {line}");
        }
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
}
