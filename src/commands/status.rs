//! `ajj status`: the live state of this workspace's (or every workspace's) resources.

use crate::backend::docker::DockerBackend;
use crate::backend::{Backend, Observed};
use crate::base::error::Result;
use crate::commands::CommandHelper;
use crate::commands::{self, print_json};
use crate::model::config;
use crate::model::desired::Retention;
use crate::model::jj::{self, WorkspaceEntry};
use crate::model::repo::RepoContext;
use crate::model::state;
use crate::reconcile;
use crate::reconcile::plan::rfc3339;
use crate::reconcile::report::{self, WorkspaceReport, SCHEMA_VERSION};
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
    let scope = scope(&ctx, entries, args.all)?;
    let only = (!args.all).then(|| scope[0].name.as_str());
    let (backend, observed) =
        crate::base::runtime::block_on(connect_and_observe(helper, &ctx, only))?;
    let (reports, problems) = workspace_reports(&ctx, &scope, &backend, &observed);
    let (orphans, kept) = match args.all {
        true => (orphans(&scope, &observed), kept(&ctx, &observed)?),
        false => (vec![], vec![]),
    };
    let status = Status {
        scope: &scope,
        backend: backend.kind(),
        reports,
        orphans,
        kept,
        problems,
    };
    if args.json {
        status.print_as_json(args.all);
    } else {
        status.print_for_humans();
    }
    Ok(if status.problems.is_empty() { 0 } else { 1 })
}

/// Every workspace with `--all`, else only the current one.
fn scope(
    ctx: &RepoContext,
    entries: Vec<WorkspaceEntry>,
    all: bool,
) -> Result<Vec<WorkspaceEntry>> {
    Ok(if all {
        entries
    } else {
        let current = commands::current_workspace(ctx, &entries)?;
        entries.into_iter().filter(|e| e.name == current).collect()
    })
}

async fn connect_and_observe(
    helper: &CommandHelper,
    ctx: &RepoContext,
    only: Option<&str>,
) -> Result<(DockerBackend, Observed)> {
    let spec = match only {
        Some(name) => helper.workspace_backend(ctx, name)?,
        None => helper.desired_backend(ctx)?,
    };
    let backend = helper.connect(ctx, &spec).await?;
    let observed = backend.observe(only).await?;
    Ok((backend, observed))
}

/// An add of `name` that died part-way (its record is there and its lock
/// free), with the fix.
fn interrupted_add(ctx: &RepoContext, name: &str) -> Option<serde_json::Value> {
    use crate::model::pending_add::{self, Phase};
    let pending = pending_add::load(ctx, name)?;
    // Held: the add is running, not interrupted.
    let _lock = crate::model::repo::try_lock_workspace(ctx, name).ok()??;
    let (problem, fix) = match pending.phase {
        Phase::Started => (
            "an interrupted `ajj workspace add` left it half-made",
            "run the same `ajj workspace add` again (it clears and redoes it), or `ajj reconcile` to clear it",
        ),
        Phase::CheckedOut => (
            "an interrupted `ajj workspace add` checked it out but did not finish its environment",
            "run the same `ajj workspace add` again, or `ajj reconcile`",
        ),
    };
    Some(json!({
        "workspace": name,
        "problem": problem,
        "fix": fix,
        "destination": pending.destination.display().to_string(),
    }))
}

/// A report per workspace in scope, or the problem that kept it from one.
fn workspace_reports(
    ctx: &RepoContext,
    scope: &[WorkspaceEntry],
    backend: &impl Backend,
    observed: &Observed,
) -> (Vec<WorkspaceReport>, Vec<serde_json::Value>) {
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for entry in scope {
        let Some(root) = &entry.root else {
            problems.push(json!({ "workspace": entry.name, "problem": "directory missing; `ajj reconcile` will remove its resources" }));
            continue;
        };
        if let Some(problem) = interrupted_add(ctx, &entry.name) {
            problems.push(problem);
            continue;
        }
        let config = match config::load_from_root(root) {
            Ok(c) => c,
            Err(e) => {
                problems.push(json!({ "workspace": entry.name, "error": e.to_json()["error"] }));
                continue;
            }
        };
        let saved = state::load(ctx, &entry.name);
        reports.push(report::workspace_report(
            &entry.name,
            root,
            &config,
            observed,
            &saved.ports,
            &saved.own_ports,
            backend.kind(),
            backend.client_host(),
            backend.remote_host(),
            vec![],
        ));
    }
    (reports, problems)
}

/// Objects of workspaces jj no longer knows: what the next reconcile removes.
/// Volumes kept from forgotten workspaces, with their age and expiry. The
/// window is read only when something is kept.
fn kept(ctx: &RepoContext, observed: &Observed) -> Result<Vec<serde_json::Value>> {
    let ledger = state::load_kept(ctx);
    if ledger.is_empty() {
        return Ok(vec![]);
    }
    let retention = Retention {
        window: reconcile::retention_window(&jj::JjAt(ctx.workspace_root.clone()))?,
        now: Retention::clock(),
        kept: ledger,
        ..Default::default()
    };
    Ok(observed
        .volumes
        .iter()
        .filter_map(|v| {
            let at = *retention.kept.get(&v.name)?;
            let until = retention.until(&v.name)?;
            let age = std::time::Duration::from_secs(retention.now.saturating_sub(at));
            Some(json!({
                "volume": v.name,
                "workspace": v.workspace,
                "service": v.service,
                "workspace_root": v.root.as_ref().map(|r| r.display().to_string()),
                "kept_at": rfc3339(at),
                "kept_until": rfc3339(until),
                "age": humantime::format_duration(age).to_string(),
                "expired": until <= retention.now,
            }))
        })
        .collect())
}

fn orphans(scope: &[WorkspaceEntry], observed: &Observed) -> Vec<serde_json::Value> {
    let live: Vec<&str> = scope
        .iter()
        .filter(|e| e.root.is_some())
        .map(|e| e.name.as_str())
        .collect();
    observed
        .containers
        .iter()
        .filter(|c| !live.contains(&c.workspace.as_str()))
        .map(|c| json!({ "workspace": c.workspace, "service": c.service, "container": c.name, "state": report::state_name(c.state) }))
        .collect()
}

struct Status<'a> {
    scope: &'a [WorkspaceEntry],
    backend: &'static str,
    reports: Vec<WorkspaceReport>,
    orphans: Vec<serde_json::Value>,
    kept: Vec<serde_json::Value>,
    problems: Vec<serde_json::Value>,
}

impl Status<'_> {
    fn print_as_json(&self, all: bool) {
        if all {
            print_json(&json!({
                "schema_version": SCHEMA_VERSION,
                "backend": self.backend,
                "workspaces": self.reports,
                "orphans": self.orphans,
                "kept": self.kept,
                "problems": self.problems,
            }));
        } else if let Some(r) = self.reports.first() {
            print_json(r);
        } else {
            print_json(
                &json!({ "schema_version": SCHEMA_VERSION, "name": self.scope[0].name, "problems": self.problems }),
            );
        }
    }

    fn print_for_humans(&self) {
        for r in &self.reports {
            report::print_human(r);
        }
        for p in &self.problems {
            eprintln!("problem: {p}");
        }
        for o in &self.orphans {
            println!("orphan (removed by the next `ajj reconcile`): {o}");
        }
        for k in &self.kept {
            println!(
                "kept volume {} of forgotten workspace {} until {} (kept {} ago)",
                k["volume"].as_str().unwrap_or_default(),
                k["workspace"].as_str().unwrap_or_default(),
                k["kept_until"].as_str().unwrap_or_default(),
                k["age"].as_str().unwrap_or_default(),
            );
        }
    }
}
