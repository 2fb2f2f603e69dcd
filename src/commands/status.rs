//! `ajj status`: the live state of this workspace's (or every workspace's) resources.

use crate::backend::Backend;
use crate::base::error::Result;
use crate::commands::CommandHelper;
use crate::commands::{self, print_json};
use crate::model::config;
use crate::model::jj;
use crate::model::state;
use crate::reconcile::report::{self, SCHEMA_VERSION};
use serde_json::json;

/// Show the live state of the workspace's services
///
/// For each declared service: running, exited or missing, its health, and
/// where to reach it. (jj's own status is `ajj st`.)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Every workspace of the repo, not only the current one
    #[arg(long)]
    pub all: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let entries = jj::list_workspaces(&ctx.workspace_root)?;
    let scope: Vec<_> = if args.all {
        entries.clone()
    } else {
        let current = commands::current_workspace(&ctx, &entries)?;
        entries.into_iter().filter(|e| e.name == current).collect()
    };
    let only = (!args.all).then(|| scope[0].name.as_str());
    let (backend, observed) = crate::base::runtime::block_on(async {
        let spec = match only {
            Some(name) => helper.workspace_backend(&ctx, name)?,
            None => helper.desired_backend(&ctx)?,
        };
        let backend = helper.connect(&ctx, &spec).await?;
        let observed = backend.observe(only).await?;
        Ok::<_, crate::base::error::CommandError>((backend, observed))
    })?;

    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for entry in &scope {
        let Some(root) = &entry.root else {
            problems.push(json!({ "workspace": entry.name, "problem": "directory missing; `ajj reconcile` will remove its resources" }));
            continue;
        };
        let config = match config::load_from_root(root) {
            Ok(c) => c,
            Err(e) => {
                problems.push(json!({ "workspace": entry.name, "error": e.to_json()["error"] }));
                continue;
            }
        };
        let ports = state::load(&ctx, &entry.name).ports;
        reports.push(report::workspace_report(
            &entry.name,
            root,
            &config,
            &observed,
            &ports,
            backend.kind(),
            backend.client_host(),
            backend.remote_host(),
            vec![],
        ));
    }
    // Objects of workspaces jj no longer knows: what the next reconcile removes.
    let live: Vec<&str> = scope
        .iter()
        .filter(|e| e.root.is_some())
        .map(|e| e.name.as_str())
        .collect();
    let orphans: Vec<_> = if args.all {
        observed
            .containers
            .iter()
            .filter(|c| !live.contains(&c.workspace.as_str()))
            .map(|c| json!({ "workspace": c.workspace, "service": c.service, "container": c.name, "state": report::state_name(c.state) }))
            .collect()
    } else {
        vec![]
    };

    if args.json {
        if args.all {
            print_json(&json!({
                "schema_version": SCHEMA_VERSION,
                "backend": backend.kind(),
                "workspaces": reports,
                "orphans": orphans,
                "problems": problems,
            }));
        } else if let Some(r) = reports.first() {
            print_json(r);
        } else {
            print_json(
                &json!({ "schema_version": SCHEMA_VERSION, "name": scope[0].name, "problems": problems }),
            );
        }
    } else {
        for r in &reports {
            report::print_human(r);
        }
        for p in &problems {
            eprintln!("problem: {p}");
        }
        for o in &orphans {
            println!("orphan (removed by the next `ajj reconcile`): {o}");
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}
