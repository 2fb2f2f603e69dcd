//! `ajj tunnel`: the workspace's forwards, held open in the foreground. Also
//! home of the forward set-up that `ajj run` shares.

use crate::backend::ssh::forward;
use crate::backend::{Backend, Forward, Forwarding, ObservedContainer};
use crate::base::error::{CommandError, Result};
use crate::commands::print_json;
use crate::commands::CommandHelper;
use crate::model::backend_spec::BackendSpec;
use crate::model::repo::RepoContext;
use crate::model::state;
use crate::reconcile::report::SCHEMA_VERSION;
use serde_json::json;
use std::path::Path;

/// Hold the workspace's port forwards open until Ctrl-C
///
/// On a remote backend, services are reached through forwards from their
/// local ports (those in .env) to the remote host. `ajj run` opens them only
/// while its command runs; `ajj tunnel` keeps them open for an IDE, a GUI
/// client or anything else started outside `ajj run`. Exits 0 on SIGINT or
/// SIGTERM, non-zero if the SSH connection dies.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the forwards as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

/// The workspace at `root`'s forwards, bound and serving.
pub struct Opened {
    pub forwarder: Box<dyn Forwarding>,
    pub forwards: Vec<Forward>,
    pub remote_host: String,
    /// Services without a running container: nothing to forward to.
    pub missing: Vec<String>,
}

/// The backend holding the environment at `root`: that of the workspace
/// the roots ledger places there (see `commands::workspace_backend`), else
/// the desired one. Reads two small files; no jj.
pub fn backend_for_root(
    helper: &CommandHelper,
    ctx: &RepoContext,
    root: &Path,
) -> Result<BackendSpec> {
    let name = state::load_roots(ctx)
        .into_iter()
        .find(|(_, r)| r == root)
        .map(|(n, _)| n);
    match name {
        Some(n) => helper.workspace_backend(ctx, &n),
        None => helper.desired_backend(ctx),
    }
}

/// Opens forwards for every published port of the workspace at `root`.
/// `None` on the local backend, where ports are published here already.
pub fn open(
    helper: &CommandHelper,
    ctx: &RepoContext,
    root: &Path,
    on_master_died: impl FnOnce() + Send + 'static,
) -> Result<Option<Opened>> {
    let spec = backend_for_root(helper, ctx, root)?;
    if spec == BackendSpec::Local {
        return Ok(None);
    }
    // No services, nothing to forward: no reason to reach the host at all.
    if crate::model::config::load_from_root(root).is_ok_and(|c| c.services.is_empty()) {
        return Ok(None);
    }
    if let Some(forwards) = recorded_forwards(ctx, root) {
        return open_recorded(ctx, spec, root, forwards, Box::new(on_master_died));
    }
    let (backend, containers) = crate::base::runtime::block_on(async {
        let backend = helper.connect(ctx, &spec).await?;
        let containers = backend.containers_at(root).await?;
        Ok::<_, CommandError>((backend, containers))
    })?;
    let (forwards, missing) = forwards_of(&containers);
    let Some(forwarder) = backend.open_forwards(&forwards, Box::new(on_master_died))? else {
        return Ok(None);
    };
    Ok(Some(Opened {
        forwarder,
        forwards,
        remote_host: backend.remote_host().unwrap_or_default(),
        missing,
    }))
}

/// What to forward to each service's containers, and the services with
/// nothing to forward to.
fn forwards_of(containers: &[ObservedContainer]) -> (Vec<Forward>, Vec<String>) {
    let mut forwards = Vec::new();
    let mut missing = Vec::new();
    for c in containers {
        let first = c.ports.keys().next().copied();
        for (cport, local) in &c.ports {
            match c.published.get(cport) {
                Some(&remote) => forwards.push(Forward {
                    name: forward_name(&c.service, *cport, first),
                    local: *local,
                    remote,
                }),
                None => missing.push(c.service.clone()),
            }
        }
    }
    missing.dedup();
    (forwards, missing)
}

/// `db`, or `web:443` for a service's second port.
fn forward_name(service: &str, cport: u16, first: Option<u16>) -> String {
    match Some(cport) == first {
        true => service.to_string(),
        false => format!("{service}:{cport}"),
    }
}

/// The forwards the last pass recorded for the workspace at `root` (its
/// local ports and where each is published on the remote host), if it
/// recorded every one.
fn recorded_forwards(ctx: &RepoContext, root: &Path) -> Option<Vec<Forward>> {
    let name = state::load_roots(ctx)
        .into_iter()
        .find(|(_, r)| r == root)
        .map(|(n, _)| n)?;
    let saved = state::load(ctx, &name);
    let mut forwards = Vec::new();
    for (service, ports) in &saved.ports {
        let first = ports.keys().next().copied();
        for (cport, local) in ports {
            let remote = saved.remote_ports.get(service)?.get(cport)?;
            forwards.push(Forward {
                name: forward_name(service, *cport, first),
                local: *local,
                remote: *remote,
            });
        }
    }
    (!forwards.is_empty()).then_some(forwards)
}

/// The forwards of `recorded_forwards`, opened at once. The engine is asked
/// on a thread meanwhile; connections wait for its answer, and services it
/// finds without a container are warned about then.
fn open_recorded(
    ctx: &RepoContext,
    spec: BackendSpec,
    root: &Path,
    forwards: Vec<Forward>,
    on_master_died: Box<dyn FnOnce() + Send>,
) -> Result<Option<Opened>> {
    let remote_host = match &spec {
        BackendSpec::Ssh { target, .. } => target.to_string(),
        BackendSpec::Local => String::new(),
    };
    let verify: forward::Verify = {
        let (ctx, spec, root, host) = (
            ctx.clone(),
            spec.clone(),
            root.to_path_buf(),
            remote_host.clone(),
        );
        std::sync::Arc::new(move || {
            let found = crate::base::runtime::block_on(async {
                let backend = crate::backend::connect::connect(&ctx, &spec).await?;
                backend
                    .containers_at(&root)
                    .await
                    .map_err(CommandError::from)
            });
            match found {
                Ok(containers) => {
                    let (forwards, missing) = forwards_of(&containers);
                    for service in missing {
                        eprintln!("warning: {service} has no running container on {host}; run `ajj reconcile`");
                    }
                    Some(forwards.iter().map(|f| (f.local, f.remote)).collect())
                }
                Err(e) => {
                    tracing::warn!("cannot check the forwards against {host}: {}", e.message);
                    None
                }
            }
        })
    };
    let forwarder = crate::backend::connect::open_recorded_forwards(
        ctx,
        &spec,
        &forwards,
        verify,
        on_master_died,
    )?;
    Ok(forwarder.map(|forwarder| Opened {
        forwarder,
        forwards,
        remote_host,
        missing: vec![],
    }))
}

pub fn warn_missing(opened: &Opened) {
    for service in &opened.missing {
        eprintln!(
            "warning: {service} has no running container on {}; run `ajj reconcile`",
            opened.remote_host
        );
    }
}

/// The signals `ajj tunnel` waits for; SIGUSR1 is the master's death.
fn tunnel_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks them before any thread starts, so that every thread inherits the
/// mask and only `wait_signals` receives them.
fn block_signals() {
    // SAFETY: a valid sigset; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &tunnel_signals(), std::ptr::null_mut()) };
}

fn wait_signals() -> libc::c_int {
    let mut got: libc::c_int = 0;
    // SAFETY: a valid sigset and out-pointer.
    unsafe { libc::sigwait(&tunnel_signals(), &mut got) };
    got
}

pub fn run(helper: &CommandHelper, args: Args) -> Result<i32> {
    let ctx = helper.discover()?;
    let root = ctx.workspace_root.clone();
    block_signals();
    let opened = open(helper, &ctx, &root, || {
        // SAFETY: kill is async-signal-safe; it wakes the sigwait below.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    })?;
    let Some(opened) = opened else {
        let note =
            "nothing to forward: the local backend publishes every port on 127.0.0.1 already";
        if args.json {
            print_json(
                &json!({ "schema_version": SCHEMA_VERSION, "backend": "docker-local", "forwards": [], "note": note }),
            );
        } else {
            eprintln!("{note}");
        }
        return Ok(0);
    };
    warn_missing(&opened);
    if args.json {
        let forwards: Vec<_> = opened
            .forwards
            .iter()
            .map(|f| json!({ "service": f.name, "local_port": f.local, "remote_port": f.remote, "host": "127.0.0.1" }))
            .collect();
        print_json(&json!({
            "schema_version": SCHEMA_VERSION,
            "backend": "docker-remote",
            "remote_host": opened.remote_host,
            "forwards": forwards,
        }));
    } else {
        for f in &opened.forwards {
            println!(
                "{:<12} 127.0.0.1:{} -> {} 127.0.0.1:{}",
                f.name, f.local, opened.remote_host, f.remote
            );
        }
        eprintln!("forwarding until Ctrl-C");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        match wait_signals() {
            libc::SIGUSR1 if opened.forwarder.lost() => {
                return Err(forward::master_died(
                    "the master exited while `ajj tunnel` held its forwards",
                ));
            }
            libc::SIGUSR1 => continue,
            _ => break,
        }
    }
    opened.forwarder.close();
    Ok(0)
}
