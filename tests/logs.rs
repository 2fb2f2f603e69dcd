//! `ajj logs` against the real engine: interleaving, JSON lines, filters,
//! and `--follow` across a restart and a recreation, until the workspace is
//! forgotten (the remote case is in remote.rs).

mod common;

use common::*;
use serde_json::Value;
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

/// Two services that count on stdout and stderr, once every 200 ms.
pub fn talkers() -> String {
    let talker = |name: &str| {
        format!(
            r#"[services.{name}]
image = "{BUSYBOX}"
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo {name} out $i; echo {name} err $i >&2; sleep 0.2; done"]
stop_timeout = "1s"
"#
        )
    };
    format!("{}\n{}", talker("alpha"), talker("beta"))
}

/// An engine timestamp as a sortable key (fractions padded to 9 digits).
fn ts_key(ts: &str) -> String {
    let (secs, frac) = ts.trim_end_matches('Z').split_once('.').unwrap_or((ts, ""));
    format!("{secs}.{frac:0<9}")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn logs_interleave_services_in_time_order_as_text_and_json() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&talkers()));
    repo.add("feat");
    let ws = repo.ws("feat");
    std::thread::sleep(Duration::from_secs(2));

    let lines = json_lines(&repo.ajj_in(&ws, &["logs", "--json"]).success().stdout);
    assert!(lines.len() >= 8, "{lines:?}");
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["line", "service", "stream", "ts"], "{l}");
        let service = l["service"].as_str().unwrap();
        let stream = l["stream"].as_str().unwrap();
        assert!(
            l["line"].as_str().unwrap().starts_with(&format!(
                "{service} {} ",
                if stream == "stdout" { "out" } else { "err" }
            )),
            "{l}"
        );
    }
    let keys: Vec<String> = lines
        .iter()
        .map(|l| ts_key(l["ts"].as_str().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "not in time order");
    for service in ["alpha", "beta"] {
        for stream in ["stdout", "stderr"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l["service"] == service && l["stream"] == stream),
                "no {service} {stream}"
            );
        }
    }

    // Text: the service as a padded prefix, as Compose writes it; no colour
    // on a pipe.
    let text = repo
        .ajj_in(&ws, &["logs", "--tail", "2", "beta"])
        .success()
        .stdout;
    let text: Vec<&str> = text.lines().collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text.iter().all(|l| l.starts_with("beta | beta ")),
        "{text:?}"
    );
    let stamped = repo
        .ajj_in(&ws, &["logs", "-t", "-n", "1", "alpha"])
        .success()
        .stdout;
    let rest = stamped.strip_prefix("alpha | ").unwrap();
    let (ts, line) = rest.split_once(' ').unwrap();
    assert!(ts.starts_with("20") && ts.ends_with('Z'), "{stamped}");
    assert!(line.starts_with("alpha "), "{stamped}");

    // Since a moment in the future: nothing yet.
    let none = repo
        .ajj_in(&ws, &["logs", "--json", "--since", "2099-01-01T00:00:00Z"])
        .success();
    assert_eq!(none.stdout, "");

    assert_eq!(
        repo.ajj_in(&ws, &["logs", "--json", "nope"])
            .failure()
            .error_code(),
        "SERVICE_NOT_FOUND"
    );
    let bad = repo
        .ajj_in(&ws, &["logs", "--json", "--since", "yesterday"])
        .failure_with(2);
    assert_eq!(bad.error_code(), "USAGE");
    repo.ajj(&["workspace", "forget", "feat"]).success();
}

#[test]
fn follow_survives_a_restart_and_a_recreation_and_ends_when_forgotten() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&talkers()));
    repo.add("feat");
    let ws = repo.ws("feat");
    let mut child = repo
        .ajj_cmd(&ws, &["logs", "--follow", "--json", "--tail", "1", "alpha"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(serde_json::from_str(&line).unwrap());
        }
    });
    let seen = std::cell::RefCell::new(Vec::<Value>::new());
    let next_line = |what: &str, pred: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) => {
                    seen.borrow_mut().push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no line: {what}"),
            }
        }
    };
    let counter = |v: &Value| -> u64 {
        v["line"]
            .as_str()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = next_line("a first line", &|v| v["service"] == "alpha");
    assert!(counter(&first) >= 1);

    // A restart: the same container starts counting again from 1.
    let container: Vec<String> = repo
        .docker_names("container", "label=dev.aether.service=alpha")
        .into_iter()
        .filter(|n| n.contains("-feat-"))
        .collect();
    assert_eq!(container.len(), 1);
    let restarted = std::process::Command::new("docker")
        .args(["restart", "-t", "1", &container[0]])
        .output()
        .unwrap()
        .status;
    assert!(restarted.success());
    next_line("the count again after the restart", &|v| {
        v["line"] == "alpha out 1"
    });
    let after = next_line("a later line", &|v| counter(v) >= 3);
    assert_eq!(after["service"], "alpha");

    // A recreation: a new container, found again by its service.
    let removed = std::process::Command::new("docker")
        .args(["rm", "-f", &container[0]])
        .output()
        .unwrap()
        .status;
    assert!(removed.success());
    repo.ajj_in(&ws, &["reconcile", "--json"]).success();
    next_line("the new container's first line", &|v| {
        v["line"] == "alpha out 1"
    });

    // Nothing printed twice across all that.
    let seen = seen.into_inner();
    let mut unique: Vec<(String, String)> = seen
        .iter()
        .map(|v| (v["ts"].to_string(), v["line"].to_string()))
        .collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a line came twice: {seen:?}");

    // Forgetting the workspace ends --follow with 0.
    repo.ajj(&["workspace", "forget", "feat"]).success();
    let mut status = None;
    eventually("logs --follow ends after the forget", 20, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
}
