//! `ajj mcp`: Aether's commands as Model Context Protocol tools, over stdio
//! (rmcp). Each tool runs the matching `ajj … --json` (see `invoke.rs` for
//! why a child process) and answers with its JSON; a failure is a tool error
//! carrying the CLI's `{"error": {code, message, hint, details}}`.
//!
//! Stdout is the protocol's alone: the children's stdout is piped, and
//! diagnostics (`AETHER_LOG`) go to stderr.

pub mod invoke;
pub mod tools;

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::commands::CommandHelper;
use crate::model::jj;
use invoke::Answer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, Implementation, JsonObject, ProgressNotificationParam, RequestMetaObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::{tool, tool_handler, tool_router, Peer, RoleServer, ServerHandler, ServiceExt};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Serve Aether's tools to an agent over the Model Context Protocol
///
/// Speaks MCP on stdin and stdout (diagnostics go to stderr) until the
/// client closes stdin. Tools: workspace_add, workspace_forget,
/// workspace_list, status, env, run, logs, exec, wait, reconcile; each takes
/// the workspace by name or path, so one server serves the whole repo, and
/// answers with the JSON of the matching `ajj … --json`. Register it with a
/// client as the command `ajj mcp`, started in the repo.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(helper: &CommandHelper, _args: Args) -> Result<i32> {
    let start = helper.start_dir()?;
    // Fails early, with a code, when started outside a repo.
    let ctx = crate::model::repo::RepoContext::discover(&start)?;
    let server = Server {
        start: ctx.workspace_root,
        tool_router: Server::tool_router(),
    };
    crate::base::runtime::block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio_pipes())
            .await
            .map_err(|e| internal(format!("the MCP session did not start: {e}")))?;
        running
            .waiting()
            .await
            .map_err(|e| internal(format!("the MCP session failed: {e}")))?;
        Ok(0)
    })
}

fn internal(message: String) -> CommandError {
    CommandError::new(ErrorCode::Internal, message)
}

#[derive(Clone)]
pub struct Server {
    /// The workspace the server was started in: tools act here by default.
    start: PathBuf,
    #[allow(dead_code)] // read by #[tool_handler]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Server {
    #[tool(
        description = "Create a jj workspace at `destination` with its own services (databases, caches…) on free local ports, wait until they are ready and write its .env. Returns the new workspace's name, root, services, ports and variables. Long: honours cancellation (the workspace is then left for `reconcile` to finish or `workspace_forget` to remove) and reports progress.",
        input_schema = input::<tools::WorkspaceAdd>()
    )]
    async fn workspace_add(
        &self,
        args: JsonObject,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let answer = async {
            let args: tools::WorkspaceAdd = parse(args)?;
            let progress = Progress::new(&meta, peer);
            let answer = invoke::invoke(&self.start, None, args.argv(), false, |line| {
                progress.report(line)
            });
            cancellable(answer, ct).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "Forget a jj workspace and remove every container, volume and network of its environment (the checkout's files stay on disk).",
        input_schema = input::<tools::WorkspaceForget>()
    )]
    async fn workspace_forget(&self, args: JsonObject) -> CallToolResult {
        let answer = async {
            let args: tools::WorkspaceForget = parse(args)?;
            match args.workspace.as_deref() {
                None => {
                    self.ajj(Some(&self.start), tools::forget_argv_current(), false)
                        .await
                }
                Some(w) => {
                    let name = self.workspace_name(w).await?;
                    self.ajj(Some(&self.start), tools::forget_argv(&name), false)
                        .await
                }
            }
        };
        reply(answer.await)
    }

    #[tool(
        description = "Every workspace of the repo with its environment's state: services, health, ports, drift, plus orphaned resources.",
        input_schema = input::<tools::NoArguments>()
    )]
    async fn workspace_list(&self, args: JsonObject) -> CallToolResult {
        let answer = async {
            let _: tools::NoArguments = parse(args)?;
            let argv = tools::os(&["status", "--all", "--json"]);
            self.ajj(Some(&self.start), argv, false).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "The live state of one workspace's services: running, exited or missing, health, ports, drift.",
        input_schema = input::<tools::WorkspaceOnly>()
    )]
    async fn status(&self, args: JsonObject) -> CallToolResult {
        let answer = async {
            let args: tools::WorkspaceOnly = parse(args)?;
            self.scoped(args.workspace, tools::os(&["status", "--json"]), false)
                .await
        };
        reply(answer.await)
    }

    #[tool(
        description = "The variables a workspace's commands get (DATABASE_URL, DB_PORT…), as `run` loads them.",
        input_schema = input::<tools::WorkspaceOnly>()
    )]
    async fn env(&self, args: JsonObject) -> CallToolResult {
        let answer = async {
            let args: tools::WorkspaceOnly = parse(args)?;
            self.scoped(args.workspace, tools::os(&["env", "--json"]), false)
                .await
        };
        reply(answer.await)
    }

    #[tool(
        description = "Run a command (argv, no shell) on this machine in the workspace's directory with its variables loaded; on a remote backend its ports are forwarded while it runs. Returns exit_code, stdout and stderr (at most 1 MiB each; stdout_truncated/stderr_truncated flag a cut) and timed_out. A non-zero exit code is a result, not a tool error. Honours cancellation.",
        input_schema = input::<tools::Run>()
    )]
    async fn run(&self, args: JsonObject, ct: CancellationToken) -> CallToolResult {
        let answer = async {
            let args: tools::Run = parse(args)?;
            cancellable(self.scoped(args.workspace.clone(), args.argv(), false), ct).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "What a workspace's services wrote, interleaved in time order: {lines: [{service, stream, ts, line}]}. Default: the last 200 lines of each service.",
        input_schema = input::<tools::Logs>()
    )]
    async fn logs(&self, args: JsonObject) -> CallToolResult {
        let answer = async {
            let args: tools::Logs = parse(args)?;
            self.scoped(args.workspace.clone(), args.argv(), true).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "Run a command (argv, no shell) inside a service's running container. Returns exit_code, stdout and stderr (at most 1 MiB each, truncation flagged). A missing or stopped service is a tool error (SERVICE_NOT_FOUND, SERVICE_NOT_RUNNING).",
        input_schema = input::<tools::Exec>()
    )]
    async fn exec(&self, args: JsonObject, ct: CancellationToken) -> CallToolResult {
        let answer = async {
            let args: tools::Exec = parse(args)?;
            cancellable(self.scoped(args.workspace.clone(), args.argv(), false), ct).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "Block until a workspace's services are ready (for a workspace made by plain `jj workspace add` while `ajj watch` provisions it). Errors: READINESS_TIMEOUT, SERVICE_EXITED, WORKSPACE_NOT_FOUND when no environment appears in time. Honours cancellation.",
        input_schema = input::<tools::Wait>()
    )]
    async fn wait(&self, args: JsonObject, ct: CancellationToken) -> CallToolResult {
        let answer = async {
            let args: tools::Wait = parse(args)?;
            cancellable(self.scoped(args.workspace.clone(), args.argv(), false), ct).await
        };
        reply(answer.await)
    }

    #[tool(
        description = "One reconcile pass over every workspace: create what is missing, recreate what drifted, remove what belongs to no workspace. With dry_run, only returns the plan.",
        input_schema = input::<tools::Reconcile>()
    )]
    async fn reconcile(&self, args: JsonObject, ct: CancellationToken) -> CallToolResult {
        let answer = async {
            let args: tools::Reconcile = parse(args)?;
            cancellable(self.ajj(Some(&self.start), args.argv(), false), ct).await
        };
        reply(answer.await)
    }
}

#[tool_handler]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("aether", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Aether gives each jj workspace of this repo its own containers (databases, caches) \
                 on free local ports. Make a workspace with workspace_add, run commands with its \
                 variables through run, look inside services with logs and exec, and remove it \
                 with workspace_forget. Every tool takes `workspace` (a name or a path); left out, \
                 it is the workspace the server was started in. Errors carry a stable `code`, a \
                 `message` and a `hint`.",
            )
    }
}

impl Server {
    /// `ajj -R <root> argv…`.
    async fn ajj(&self, root: Option<&Path>, argv: Vec<OsString>, lines: bool) -> Answer {
        invoke::invoke(&self.start, root, argv, lines, |_| {}).await
    }

    /// `argv` in the workspace named or pointed at by `workspace`.
    async fn scoped(&self, workspace: Option<String>, argv: Vec<OsString>, lines: bool) -> Answer {
        let root = match workspace.as_deref() {
            None => self.start.clone(),
            Some(w) => self.workspace_root(w).await?,
        };
        self.ajj(Some(&root), argv, lines).await
    }

    /// A workspace's root, from its name or a path inside it.
    async fn workspace_root(&self, workspace: &str) -> Result<PathBuf> {
        if looks_like_path(workspace) {
            let path = self.start.join(workspace);
            return match path.canonicalize() {
                Ok(p) => Ok(p),
                Err(e) => Err(CommandError::new(
                    ErrorCode::WorkspaceNotFound,
                    format!("no workspace at {}: {e}", path.display()),
                )
                .hint("pass a workspace's name (workspace_list shows them) or an existing path")
                .detail("workspace", workspace)),
            };
        }
        let entries = self.entries().await?;
        entries
            .iter()
            .find(|e| e.name == workspace)
            .and_then(|e| e.root.clone())
            .ok_or_else(|| not_found(workspace, &entries))
    }

    /// A workspace's name, from its name or a path inside it.
    async fn workspace_name(&self, workspace: &str) -> Result<String> {
        let entries = self.entries().await?;
        let found = if looks_like_path(workspace) {
            let path = self.start.join(workspace).canonicalize().ok();
            entries
                .iter()
                .find(|e| path.is_some() && e.root.as_deref() == path.as_deref())
        } else {
            entries.iter().find(|e| e.name == workspace)
        };
        found
            .map(|e| e.name.clone())
            .ok_or_else(|| not_found(workspace, &entries))
    }

    async fn entries(&self) -> Result<Vec<jj::WorkspaceEntry>> {
        let start = self.start.clone();
        tokio::task::spawn_blocking(move || jj::list_workspaces(&start))
            .await
            .map_err(|e| internal(format!("listing workspaces: {e}")))?
    }
}

fn looks_like_path(workspace: &str) -> bool {
    workspace.contains('/') || workspace == "." || workspace == ".."
}

fn not_found(workspace: &str, entries: &[jj::WorkspaceEntry]) -> CommandError {
    CommandError::new(
        ErrorCode::WorkspaceNotFound,
        format!("jj lists no workspace {workspace:?}"),
    )
    .hint(format!(
        "workspaces: {}",
        entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .detail("workspace", workspace)
}

/// A tool's input schema, from the type its arguments are read into.
fn input<T: schemars::JsonSchema + std::any::Any>() -> std::sync::Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_input::<T>()
        .expect("the argument types have object schemas")
}

/// The arguments as `T`, or a USAGE error naming the argument at fault
/// (rmcp's own check would answer without Aether's code).
fn parse<T: serde::de::DeserializeOwned>(args: JsonObject) -> Result<T> {
    serde_path_to_error::deserialize(serde_json::Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        CommandError::new(ErrorCode::Usage, format!("bad arguments: {}", e.inner()))
            .hint("tools/list gives each tool's input schema")
            .detail("argument", path)
    })
}

/// Runs `answer` unless the client cancels first; dropping it interrupts
/// the command (SIGINT), which `ajj` leaves in a state the next pass ends.
async fn cancellable(
    answer: impl std::future::Future<Output = Answer>,
    ct: CancellationToken,
) -> Answer {
    tokio::select! {
        a = answer => a,
        _ = ct.cancelled() => Err(CommandError::new(ErrorCode::Cancelled, "cancelled by the client")
            .hint("the command was interrupted; `reconcile` finishes or removes what it left")),
    }
}

/// The CLI's JSON as the tool's result, or its error as a tool error.
fn reply(answer: Answer) -> CallToolResult {
    match answer {
        Ok(value) if value.is_object() => CallToolResult::structured(value),
        Ok(value) => CallToolResult::structured(serde_json::json!({ "value": value })),
        Err(e) => CallToolResult::structured_error(e.to_json()),
    }
}

/// Progress notifications from the lines `workspace add` writes on stderr,
/// when the client asked for them (a progress token in the request).
struct Progress {
    to: Option<(rmcp::model::ProgressToken, Peer<RoleServer>)>,
    count: std::sync::atomic::AtomicU32,
}

impl Progress {
    fn new(meta: &RequestMetaObject, peer: Peer<RoleServer>) -> Self {
        Progress {
            to: meta.get_progress_token().map(|t| (t, peer)),
            count: Default::default(),
        }
    }

    fn report(&self, line: &str) {
        let Some((token, peer)) = &self.to else {
            return;
        };
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let param = ProgressNotificationParam::new(token.clone(), n as f64).with_message(line);
        let peer = peer.clone();
        tokio::spawn(async move {
            let _ = peer.notify_progress(param).await;
        });
    }
}
