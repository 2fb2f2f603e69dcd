//! `ajj wait` against the real engine: after a plain `jj workspace add`, it
//! blocks until a pass provisions the environment and `.env` names it; a
//! stopped service and an environment that never appears get their codes.

mod common;

use common::*;
use std::process::Stdio;

#[test]
fn wait_blocks_until_a_pass_provisions_the_workspace() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.jj(&["workspace", "add", "../plain"]).success();
    let ws = repo.ws("plain");

    // Nothing provisions it: the environment never appears.
    let never = repo
        .ajj_in(&ws, &["wait", "--json", "--timeout", "1s"])
        .failure();
    assert_eq!(never.error_code(), "WORKSPACE_NOT_FOUND");
    assert!(never.json()["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("watch"));

    // A wait started first returns once a pass has provisioned it.
    let waiter = repo
        .ajj_cmd(&ws, &["wait", "--json", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    repo.ajj(&["reconcile", "--json"]).success();
    let out = Run::from(waiter.wait_with_output().unwrap(), "ajj", &["wait"]).success();
    let json = out.json();
    assert_eq!(json["ready"], true, "{json}");
    assert_eq!(json["services"][0]["service"], "web");
    let port = json["services"][0]["ports"]["8080"].as_u64().unwrap();
    // .env already names the container's port, and it serves.
    assert_eq!(dotenv(&ws.join(".env"))["WEB_PORT"], port.to_string());
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());

    // Ready already: at once.
    repo.ajj_in(&ws, &["wait", "web"]).success();
    assert_eq!(
        repo.ajj_in(&ws, &["wait", "--json", "nope"])
            .failure()
            .error_code(),
        "SERVICE_NOT_FOUND"
    );
    assert_eq!(
        repo.ajj_in(&ws, &["wait", "--json", "--timeout", "soon"])
            .failure_with(2)
            .error_code(),
        "USAGE"
    );

    // A stopped service is not going to become ready by waiting.
    let container = repo.docker_names("container", "label=dev.aether.workspace=plain");
    let stop = std::process::Command::new("docker")
        .args(["stop", "-t", "1", &container[0]])
        .output()
        .unwrap()
        .status;
    assert!(stop.success());
    let exited = repo
        .ajj_in(&ws, &["wait", "--json", "--timeout", "10s"])
        .failure();
    assert_eq!(exited.error_code(), "SERVICE_EXITED");
    repo.ajj(&["workspace", "forget", "plain"]).success();
}

#[test]
fn a_service_that_never_serves_times_out() {
    let Some(()) = env() else { return };
    // Up, but nothing listens on the declared port.
    let config = format!(
        r#"[services.mute]
image = "{BUSYBOX}"
command = ["sleep", "600"]
ports = [9000]
stop_timeout = "1s"
ready_timeout = "1s"
"#
    );
    let repo = TestRepo::new(Some(&config));
    repo.jj(&["workspace", "add", "../plain"]).success();
    let ws = repo.ws("plain");
    // The pass itself fails on readiness; the container stays.
    repo.ajj(&["reconcile", "--json"]).failure();
    let timeout = repo
        .ajj_in(&ws, &["wait", "--json", "--timeout", "2s"])
        .failure();
    assert_eq!(timeout.error_code(), "READINESS_TIMEOUT");
    repo.ajj(&["workspace", "forget", "plain"]).success();
}
