//! `ajj doctor`: what stands between this machine and a working `ajj
//! workspace add`, checked read-only and fast (no pull, no container).

use crate::backend::{ports, Backend, Isolation};
use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::{print_json, CommandHelper};
use crate::model::repo::RepoContext;
use crate::model::{config, envfile, jj};
use crate::reconcile::report::SCHEMA_VERSION;
use serde::Serialize;
use serde_json::{json, Value};

/// Check the machine and the repo, and say what to fix
///
/// jj, the backend (Docker, or ssh and the remote engine), how many more
/// workspace networks fit, `.env` ignored, aether.toml valid, images
/// present, the watcher, the local port ledger. Read-only: nothing is
/// pulled, started or written. Exits 1 when a check fails.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    /// What was found, or what is wrong.
    message: String,
    /// The error code this would surface as elsewhere (warn and fail only).
    code: Option<&'static str>,
    hint: Option<String>,
    details: Value,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Ok,
            message: message.into(),
            code: None,
            hint: None,
            details: json!({}),
        }
    }

    fn from_error(name: &'static str, status: Status, e: &CommandError) -> Self {
        Check {
            name,
            status,
            message: e.message.clone(),
            code: Some(e.code.as_str()),
            hint: e.hint.clone(),
            details: e.details.clone(),
        }
    }
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let mut checks = vec![check_jj()];
    let ctx = helper.discover();
    match &ctx {
        Ok(ctx) => {
            let config = config::load_from_root(&ctx.workspace_root);
            checks.extend(check_files(ctx, &config));
            let images: Vec<String> = config
                .iter()
                // A `build:` service's image is built by the add or the pass.
                .flat_map(|c| {
                    c.services
                        .values()
                        .filter(|s| s.build.is_none())
                        .map(|s| s.spec.image.clone())
                })
                .collect();
            checks.extend(crate::base::runtime::block_on(check_backend(
                helper, ctx, &images,
            )));
            checks.extend(check_colocation(ctx));
            checks.push(check_watcher(ctx));
            checks.push(check_ledger(ctx));
        }
        Err(e) => checks.push(Check::from_error("repo", Status::Fail, e)),
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        print_json(&json!({ "schema_version": SCHEMA_VERSION, "ok": !failed, "checks": checks }));
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            let code = c.code.map(|k| format!(" [{k}]")).unwrap_or_default();
            println!("{tag} {:<9} {}{code}", c.name, c.message);
            if let Some(h) = &c.hint {
                println!("     {:<9} hint: {h}", "");
            }
        }
    }
    Ok(i32::from(failed))
}

/// In a colocated repo, jj 0.46 makes every plain `jj workspace add` a Git
/// worktree, which needs git >= 2.42. `ajj workspace add` makes plain
/// workspaces and does not; this says what a plain jj add will need.
fn check_colocation(ctx: &RepoContext) -> Option<Check> {
    if !ctx.is_colocated() || jj::version().ok()? < (0, 46, 0) {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output();
    let found = out.ok().filter(|o| o.status.success()).and_then(|o| {
        // "git version 2.39.5"
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        jj::parse_version(text.trim_start_matches("git "))
    });
    Some(match found {
        Some(v) if v >= (2, 42, 0) => Check::ok(
            "git",
            format!(
                "colocated repo: `ajj workspace add` makes plain workspaces; a plain `jj workspace add` makes Git worktrees (git {}.{}.{})",
                v.0, v.1, v.2
            ),
        ),
        other => Check {
            name: "git",
            status: Status::Warn,
            message: match other {
                Some((a, b, c)) => format!("colocated repo with jj >= 0.46: a plain `jj workspace add` needs git >= 2.42 (found {a}.{b}.{c})"),
                None => "colocated repo with jj >= 0.46: a plain `jj workspace add` needs git >= 2.42 on PATH (none found)".into(),
            },
            code: None,
            hint: Some("upgrade git, or add workspaces with `ajj workspace add` (plain jj workspaces, no Git worktree)".into()),
            details: json!({ "required": "2.42.0", "found": other.map(|(a, b, c)| format!("{a}.{b}.{c}")) }),
        },
    })
}

fn check_jj() -> Check {
    match jj::version() {
        Ok((major, minor, patch)) if (major, minor) < jj::MIN_VERSION => Check {
            name: "jj",
            status: Status::Fail,
            message: format!(
                "jj {major}.{minor}.{patch} is too old; Aether needs jj 0.44 or newer"
            ),
            code: Some(ErrorCode::JjTooOld.as_str()),
            hint: Some("upgrade: `cargo install jj-cli@0.45.1 --locked`".into()),
            details: json!({ "found": format!("{major}.{minor}.{patch}"), "required": "0.44.0" }),
        },
        Ok((major, minor, patch)) => Check::ok("jj", format!("jj {major}.{minor}.{patch}")),
        Err(e) => Check::from_error("jj", Status::Fail, &e),
    }
}

/// `.env` ignored, aether.toml valid.
fn check_files(ctx: &RepoContext, config: &Result<config::Config>) -> Vec<Check> {
    let root = &ctx.workspace_root;
    let ignored = match envfile::is_ignored(root) {
        true => Check::ok("env_file", ".env is ignored by jj"),
        false => Check::from_error(
            "env_file",
            Status::Warn,
            &CommandError::new(
                ErrorCode::EnvNotIgnored,
                format!(
                    "{} is not ignored: jj would commit Aether's block and your secrets",
                    root.join(".env").display()
                ),
            )
            .hint("add `.env` to .gitignore (`ajj init` does)"),
        ),
    };
    let config = match config {
        Ok(c) => Check::ok(
            "config",
            format!("aether.toml is valid: {} service(s)", c.services.len()),
        ),
        Err(e) => Check::from_error("config", Status::Fail, e),
    };
    vec![ignored, config]
}

/// The backend reachable (over ssh for a remote one), how many more
/// workspace networks fit, every image present.
async fn check_backend(helper: &CommandHelper, ctx: &RepoContext, images: &[String]) -> Vec<Check> {
    let connected = match helper.desired_backend(ctx) {
        Ok(spec) => helper.connect(ctx, &spec).await,
        Err(e) => Err(e),
    };
    let backend = match connected {
        Ok(b) => b,
        Err(e) => return vec![Check::from_error("backend", Status::Fail, &e)],
    };
    let mut checks = vec![match backend.engine_version().await {
        Ok(v) => Check::ok("backend", v),
        Err(e) => Check::from_error("backend", Status::Fail, &e.into()),
    }];
    match backend.isolation_capacity().await {
        Ok(Some(isolation)) => checks.extend(networks(&isolation)),
        Ok(None) => checks.push(Check::ok("networks", "no limit on workspace networks")),
        Err(e) => checks.push(Check::from_error("networks", Status::Warn, &e.into())),
    }
    for name in images {
        checks.push(image(&backend, name).await);
    }
    checks
}

/// How many more workspace networks fit, and any that a route of the
/// host now overlaps (a VPN that came up after the network was made).
fn networks(isolation: &Isolation) -> Vec<Check> {
    let mut checks = vec![match isolation.census {
        None => Check::ok(
            "networks",
            format!("workspace networks take {}", isolation.ranges),
        ),
        Some(census) if census.free >= 5 => Check::ok(
            "networks",
            format!(
                "{} more workspace network(s) fit in {}",
                census.free, isolation.ranges
            ),
        ),
        Some(census) => {
            let status = if census.free == 0 {
                Status::Fail
            } else {
                Status::Warn
            };
            Check::from_error(
                "networks",
                status,
                &CommandError::new(
                    ErrorCode::NetworkPoolExhausted,
                    format!("only {} more workspace network(s) fit in {}: {census}", census.free, isolation.ranges),
                )
                .hint(format!(
                    "forget unused workspaces (`ajj status --all`), or set {}= to a larger range of your own, e.g. 10.203.0.0/16",
                    crate::backend::subnets::ENV
                ))
                .detail("free", census.free)
                .detail("total", census.total),
            )
        }
    }];
    for (workspace, subnet, route) in &isolation.conflicts {
        checks.push(Check::from_error(
            "networks",
            Status::Warn,
            &CommandError::new(
                ErrorCode::NetworkOverlapsRoute,
                format!("the network of workspace {workspace} ({subnet}) overlaps the host's route to {route}"),
            )
            .hint(format!(
                "its containers cannot reach {route} (a VPN or LAN that came up later); `ajj workspace forget {workspace}` and add it again to get a free block"
            ))
            .detail("workspace", workspace)
            .detail("subnet", subnet)
            .detail("route", route),
        ));
    }
    checks
}

async fn image(backend: &impl Backend, image: &str) -> Check {
    match backend.image_present(image).await {
        Ok(true) => Check::ok("image", format!("{image} is present")),
        Ok(false) => Check::from_error(
            "image",
            Status::Warn,
            &CommandError::new(
                ErrorCode::ImageNotFound,
                format!("{image} is not present: the first add pulls it"),
            )
            .hint(format!(
                "pull it now (`docker pull {image}`), or build it if it is your own"
            ))
            .detail("image", image),
        ),
        Err(e) => Check::from_error("image", Status::Warn, &e.into()),
    }
}

fn check_watcher(ctx: &RepoContext) -> Check {
    match crate::model::repo::watcher_pid(ctx) {
        Some(pid) => {
            let mut c = Check::ok("watcher", format!("`ajj watch` runs (pid {pid})"));
            c.details = json!({ "pid": pid });
            c
        }
        None => Check::ok(
            "watcher",
            "no `ajj watch` runs: plain jj commands are followed at the next `ajj reconcile`",
        ),
    }
}

/// Local ports reserved for the forwards of this repo's remote
/// environments: one another program binds breaks `ajj run`.
fn check_ledger(ctx: &RepoContext) -> Check {
    let busy: Vec<(u16, String)> = ports::reserved(ctx)
        .into_iter()
        .filter(|(port, _)| !portpicker::is_free_tcp(*port))
        .collect();
    match busy.first() {
        None => Check::ok("ports", "every local port reserved for forwards is free"),
        Some((port, owner)) => Check::from_error(
            "ports",
            Status::Warn,
            &CommandError::new(
                ErrorCode::LocalPortBusy,
                format!("127.0.0.1:{port}, reserved for {owner}, is bound now (by `ajj run`/`ajj tunnel` if one runs, else by another program)"),
            )
            .hint(format!("`ss -ltnp 'sport = :{port}'` shows who; stop it, or forget and re-add that workspace for new ports"))
            .detail("ports", busy.iter().map(|(p, _)| *p).collect::<Vec<_>>()),
        ),
    }
}
