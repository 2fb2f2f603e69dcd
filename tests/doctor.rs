//! `ajj doctor` against real broken states: each gives its check, its code
//! and a hint, and a failed check exits 1.

mod common;

use common::*;
use serde_json::Value;

fn doctor(repo: &TestRepo) -> (Value, Option<i32>) {
    let run = repo.ajj(&["doctor", "--json"]);
    let code = run.status.code();
    (run.json(), code)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

#[test]
fn a_healthy_repo_passes_every_check_and_changes_nothing() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let before = repo.docker_names("container", "label=dev.aether.workspace=default");
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["ok"], true);
    for name in [
        "jj", "env_file", "config", "backend", "networks", "image", "watcher", "ports",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report}");
    }
    assert!(check(&report, "backend")["message"]
        .as_str()
        .unwrap()
        .contains("API"));
    assert_eq!(
        repo.docker_names("container", "label=dev.aether.workspace=default"),
        before,
        "read-only"
    );
    assert!(!repo.main.join(".env").exists(), "read-only");
    let human = repo.ajj(&["doctor"]).success();
    assert!(human.stdout.contains("ok   jj"), "{}", human.stdout);
}

#[test]
fn docker_down_fails_with_its_code_and_a_hint() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.set_env("DOCKER_HOST", DEAD_DOCKER_HOST);
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(1));
    assert_eq!(report["ok"], false);
    let backend = check(&report, "backend");
    assert_eq!(backend["status"], "fail");
    assert_eq!(backend["code"], "DOCKER_UNREACHABLE");
    assert!(backend["hint"].is_string());
}

#[test]
fn jj_too_old_fails_with_its_code() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let fake = repo.base.join("old-jj");
    std::fs::write(&fake, "#!/bin/sh\necho 'jj 0.30.0'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    repo.set_env("AETHER_JJ", fake.to_str().unwrap());
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(1));
    let jj = check(&report, "jj");
    assert_eq!(jj["code"], "JJ_TOO_OLD", "{report}");
    assert_eq!(jj["details"]["found"], "0.30.0");
}

#[test]
fn a_committed_env_an_invalid_config_and_a_missing_image_are_each_named() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    std::fs::write(repo.main.join(".gitignore"), "").unwrap();
    let (report, _) = doctor(&repo);
    let env_file = check(&report, "env_file");
    assert_eq!(env_file["status"], "warn");
    assert_eq!(env_file["code"], "ENV_NOT_IGNORED");

    std::fs::write(repo.main.join("aether.toml"), "[services.db]\nimage = 5\n").unwrap();
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(1));
    let config = check(&report, "config");
    assert_eq!(config["code"], "CONFIG_INVALID", "{report}");
    assert_eq!(config["details"]["line"], 2, "{report}");

    std::fs::write(
        repo.main.join("aether.toml"),
        "[services.db]\nimage = \"aether-test/not-built:1\"\n",
    )
    .unwrap();
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(0), "a missing image only warns: {report}");
    let image = check(&report, "image");
    assert_eq!(image["status"], "warn");
    assert_eq!(image["code"], "IMAGE_NOT_FOUND");
    assert!(image["hint"].as_str().unwrap().contains("docker pull"));
}

#[test]
fn a_nearly_full_network_pool_warns_and_a_full_one_fails() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    // Two /27 blocks, unused on this machine; one workspace takes one.
    repo.set_env("AETHER_NETWORK_POOL", "10.217.0.0/26");
    repo.add("one");
    let (report, _) = doctor(&repo);
    let networks = check(&report, "networks");
    assert_eq!(networks["status"], "warn", "{report}");
    assert_eq!(networks["code"], "NETWORK_POOL_EXHAUSTED");
    assert_eq!(networks["details"]["free"], 1);
    assert_eq!(networks["details"]["total"], 2);
    repo.add("two");
    let (report, code) = doctor(&repo);
    assert_eq!(code, Some(1));
    assert_eq!(check(&report, "networks")["status"], "fail", "{report}");
    repo.ajj(&["workspace", "forget", "one", "two"]).success();
}

#[test]
fn a_running_watcher_is_reported_with_its_pid() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let mut w = repo.watch(&[], &[]);
    w.wait_for("the first pass", 30, |e| e["event"] == "pass_finished");
    let watching = w
        .seen
        .iter()
        .find(|e| e["event"] == "watching")
        .cloned()
        .expect("the watching event");
    let (report, _) = doctor(&repo);
    assert_eq!(
        check(&report, "watcher")["details"]["pid"],
        watching["pid"],
        "{report}"
    );
    w.signal("TERM");
    assert!(w.wait_exit(20).success());
    let (report, _) = doctor(&repo);
    assert!(check(&report, "watcher")["details"]["pid"].is_null());
}
