//! `ajj exec`: a command in a service's running container, through the
//! backend seam, against the real engine (the remote case is in remote.rs).

mod common;

use common::*;

#[test]
fn exec_runs_without_a_shell_and_passes_output_and_exit_code_through() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("feat");
    let ws = repo.ws("feat");
    let out = repo
        .ajj_in(
            &ws,
            &[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
        )
        .failure_with(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // No shell on our side: the argument reaches the container as one word.
    let literal = repo
        .ajj_in(&ws, &["exec", "web", "--", "echo", "$HOME; true"])
        .success();
    assert_eq!(literal.stdout, "$HOME; true\n");
    let json = repo
        .ajj_in(
            &ws,
            &["exec", "--json", "web", "--", "cat", "/etc/hostname"],
        )
        .success()
        .json();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["service"], "web");
    assert_eq!(json["workspace"], "feat");
    assert!(!json["stdout"].as_str().unwrap().is_empty(), "{json}");
}

#[test]
fn exec_of_an_unknown_or_stopped_service_is_a_coded_error() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("feat");
    let ws = repo.ws("feat");
    let unknown = repo
        .ajj_in(&ws, &["exec", "--json", "nope", "--", "true"])
        .failure();
    assert_eq!(unknown.error_code(), "SERVICE_NOT_FOUND");
    let container = repo.docker_names("container", "label=dev.aether.workspace=feat");
    let stop = std::process::Command::new("docker")
        .args(["stop", "-t", "1", &container[0]])
        .output()
        .unwrap();
    assert!(stop.status.success());
    let stopped = repo
        .ajj_in(&ws, &["exec", "--json", "web", "--", "true"])
        .failure();
    assert_eq!(stopped.error_code(), "SERVICE_NOT_RUNNING");
    assert!(stopped.json()["error"]["hint"].is_string());
    repo.ajj(&["workspace", "forget", "feat"]).success();
}
