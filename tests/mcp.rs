//! `ajj mcp` driven by a real MCP client: the official Python SDK (PyPI
//! `mcp`, installed by scripts/test into a venv), through a real workspace
//! (tests/mcp/client.py). Then, below the SDK, what it never sends: a
//! malformed line, and a Docker outage.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// The venv scripts/test makes; `AETHER_MCP_PYTHON` names another Python.
fn mcp_python() -> Option<String> {
    if let Ok(p) = std::env::var("AETHER_MCP_PYTHON") {
        return Some(p);
    }
    let home = std::env::var("HOME").ok()?;
    let p = format!("{home}/.cache/aether-test/mcp-venv/bin/python");
    if std::path::Path::new(&p).exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("AETHER_REQUIRE_DOCKER").is_none(),
        "no Python with the mcp SDK at {p}: run scripts/test"
    );
    eprintln!("skipping: no Python with the mcp SDK ({p})");
    None
}

#[test]
fn an_mcp_client_adds_runs_inspects_and_forgets_a_workspace() {
    let Some(()) = env() else { return };
    let Some(python) = mcp_python() else { return };
    let config = format!(
        r#"{}
[services.talk]
image = "{BUSYBOX}"
command = ["sh", "-c", "echo hello agent; sleep 600"]
stop_timeout = "1s"
"#,
        busybox_web("")
    );
    let repo = TestRepo::new(Some(&config));
    // A workspace nothing provisions, for a wait that never ends by itself.
    repo.jj(&["workspace", "add", "../idle"]).success();
    let mut cmd = Command::new(python);
    repo.hermetic(&mut cmd);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py"))
        .args([
            env!("CARGO_BIN_EXE_ajj"),
            repo.main.to_str().unwrap(),
            "idle",
        ])
        .current_dir(&repo.main);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("done\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The forget really removed the environment.
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=agent")
        .is_empty());
    assert!(!repo.workspace_names().contains(&"agent".to_string()));
}

/// A session spoken by hand: what no SDK sends.
struct Session {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Session {
    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        loop {
            let line = self.lines.next().expect("the server answers").unwrap();
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout holds only protocol ({e}): {line}"));
            if v["id"] == id {
                return v;
            }
        }
    }
}

#[test]
fn the_server_survives_malformed_input_and_a_docker_outage() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let mut cmd = repo.ajj_cmd(&repo.main, &["mcp"]);
    // The engine is gone for the whole session.
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut s = Session {
        child,
        lines: BufReader::new(stdout).lines(),
    };
    let init = s.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "hand", "version": "1"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "aether", "{init}");
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    s.send("{this is not json");
    s.send(r#"{"jsonrpc":"2.0","id":"x","method":"no/such/method"}"#);
    let status = s.call(2, "tools/call", json!({"name": "status", "arguments": {}}));
    assert_eq!(status["result"]["isError"], true, "{status}");
    assert_eq!(
        status["result"]["structuredContent"]["error"]["code"], "DOCKER_UNREACHABLE",
        "{status}"
    );
    let unknown = s.call(3, "tools/call", json!({"name": "nope", "arguments": {}}));
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");
    let listed = s.call(4, "tools/list", json!({}));
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 10);
    // Closing stdin ends the session cleanly.
    drop(s.child.stdin.take());
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
