//! Runs one tool as `ajj … --json` in a child process and reads its answer.
//!
//! Why a child and not a call: the result is the CLI's `--json` by
//! construction (one contract, not two that drift); a tool that fails in
//! any way, a Docker outage or a bug included, fails that call and never the
//! server; and cancelling is an interrupt (SIGINT), the path `ajj` already
//! keeps safe: an interrupted add leaves what the next pass finishes.

use crate::base::error::{CommandError, ErrorCode};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// What the tool answered: the CLI's JSON, or its error object.
pub type Answer = std::result::Result<Value, CommandError>;

/// SIGINT to the child if the call is dropped before it ended (the client
/// cancelled it, or the server is shutting down).
struct InterruptOnDrop(Option<u32>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill has no memory effects; the child is not reaped
            // yet (tokio reaps it after this drop).
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
    }
}

/// Runs `ajj [-R root] argv…` from `cwd`. `on_stderr` sees each line the
/// command writes on stderr (progress), as it comes. `lines`: the command
/// prints JSON lines (`logs`), gathered into `{"lines": […]}`.
pub async fn invoke(
    cwd: &Path,
    root: Option<&Path>,
    argv: Vec<OsString>,
    lines: bool,
    mut on_stderr: impl FnMut(&str),
) -> Answer {
    let exe = std::env::current_exe()
        .map_err(|e| CommandError::io("cannot find the ajj executable", e))?;
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(root) = root {
        cmd.arg("-R").arg(root);
    }
    cmd.args(&argv)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Plain progress lines, never a terminal's live ones.
        .env("NO_COLOR", "1");
    let mut child = cmd
        .spawn()
        .map_err(|e| CommandError::io("cannot start ajj for the tool", e))?;
    let mut guard = InterruptOnDrop(child.id());
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let read_out = async {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf
    };
    let read_err = async {
        let mut tail = Vec::<String>::new();
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            on_stderr(&line);
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
        tail
    };
    let (out, err_tail) = tokio::join!(read_out, read_err);
    let status = child
        .wait()
        .await
        .map_err(|e| CommandError::io("waiting for ajj", e))?;
    guard.0 = None;
    interpret(&out, lines, status.code(), &err_tail)
}

/// The child's stdout as an answer. Pure.
pub fn interpret(out: &[u8], lines: bool, code: Option<i32>, stderr: &[String]) -> Answer {
    let text = String::from_utf8_lossy(out);
    let values: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| broken(code, stderr, &format!("its output is not JSON: {e}")))?;
    if let [only] = values.as_slice() {
        if let Some(err) = only.get("error") {
            return Err(from_json(err));
        }
    }
    if lines {
        return Ok(json!({ "lines": values }));
    }
    match values.len() {
        1 => Ok(values.into_iter().next().expect("one")),
        0 => Err(broken(code, stderr, "it printed nothing")),
        n => Err(broken(code, stderr, &format!("it printed {n} JSON values"))),
    }
}

fn from_json(err: &Value) -> CommandError {
    let code = err["code"].as_str().unwrap_or("INTERNAL");
    let mut e = CommandError::new(
        ErrorCode::from_str(code).unwrap_or(ErrorCode::Internal),
        err["message"].as_str().unwrap_or_default(),
    );
    if let Some(hint) = err["hint"].as_str() {
        e = e.hint(hint);
    }
    e.details = err["details"].clone();
    e
}

fn broken(code: Option<i32>, stderr: &[String], why: &str) -> CommandError {
    CommandError::new(
        ErrorCode::Internal,
        format!("the tool's command failed: {why}"),
    )
    .hint("please report it, with the stderr in details")
    .detail("exit_code", code)
    .detail("stderr", stderr.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_the_cli_json_or_its_error() {
        let ok = interpret(br#"{"a":1}"#, false, Some(0), &[]).unwrap();
        assert_eq!(ok, json!({"a": 1}));
        let err = interpret(
            br#"{"error":{"code":"SERVICE_NOT_FOUND","message":"m","hint":"h","details":{"service":"x"}}}"#,
            false,
            Some(1),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::ServiceNotFound);
        assert_eq!(err.hint.as_deref(), Some("h"));
        assert_eq!(err.details["service"], "x");
        let logs = interpret(b"{\"line\":\"a\"}\n{\"line\":\"b\"}\n", true, Some(0), &[]).unwrap();
        assert_eq!(logs["lines"].as_array().unwrap().len(), 2);
        assert_eq!(
            interpret(b"", true, Some(0), &[]).unwrap(),
            json!({"lines": []})
        );
        let crash = interpret(b"", false, None, &["panicked".into()]).unwrap_err();
        assert_eq!(crash.code, ErrorCode::Internal);
        assert_eq!(crash.details["stderr"], "panicked");
        assert_eq!(
            interpret(b"not json", false, Some(1), &[])
                .unwrap_err()
                .code,
            ErrorCode::Internal
        );
    }
}
