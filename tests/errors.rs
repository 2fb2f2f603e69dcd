//! Bad input gets a stable code, a message and a hint, exits non-zero and
//! leaves nothing half-done.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;

/// Commits `config` as aether.toml, then `ajj workspace add` must fail with
/// CONFIG_INVALID at `line` and leave no workspace and no directory behind.
fn assert_config_rejected(repo: &TestRepo, n: usize, config: &str, line: u64, key_part: &str) {
    std::fs::write(repo.main.join("aether.toml"), config).unwrap();
    repo.jj(&["commit", "-m", &format!("bad config {n}")])
        .success();
    let before = repo.workspace_names();
    let dest = format!("../bad{n}");
    let out = repo.ajj(&["workspace", "add", &dest, "--json"]).failure();
    let err = out.json();
    assert_eq!(err["error"]["code"], "CONFIG_INVALID", "case {n}: {err}");
    assert_eq!(err["error"]["details"]["line"], line, "case {n}: {err}");
    assert!(
        err["error"]["details"]["key"]
            .as_str()
            .unwrap()
            .contains(key_part),
        "case {n}: {err}"
    );
    assert!(
        err["error"]["details"]["file"]
            .as_str()
            .unwrap()
            .ends_with("aether.toml"),
        "case {n}"
    );
    assert!(err["error"]["hint"].is_string(), "case {n}");
    assert_eq!(
        repo.workspace_names(),
        before,
        "case {n}: no jj workspace left behind"
    );
    assert!(
        !repo.ws(&format!("bad{n}")).exists(),
        "case {n}: no directory left behind"
    );
    // Nor a Git worktree entry (jj 0.46 makes one in a colocated repo).
    let worktrees = std::fs::read_dir(repo.main.join(".git/worktrees")).map_or(0, |d| d.count());
    assert_eq!(worktrees, 0, "case {n}: a Git worktree entry left behind");
    assert!(
        !repo
            .main
            .join(".jj/repo/aether/adds")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "case {n}: a pending-add record left behind"
    );
}

#[test]
fn every_bad_config_is_rejected_before_anything_is_left_behind() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let cases: &[(&str, u64, &str)] = &[
        // unknown key
        ("[services.db]\nimage = \"x\"\nimgae = \"y\"\n", 3, "services.db"),
        // wrong type
        ("[services.db]\nimage = \"x\"\nports = \"5432\"\n", 3, "services.db.ports"),
        // out-of-range ports
        ("[services.db]\nimage = \"x\"\nports = [99999]\n", 3, "services.db.ports[0]"),
        ("[services.db]\nimage = \"x\"\nports = [0]\n", 3, "services.db.ports[0]"),
        // missing image
        ("[services.db]\nports = [5432]\n", 1, "services.db"),
        // TOML syntax error
        ("[services.db]\nimage = \"x\n", 2, ""),
        // a template naming an undeclared port
        ("[services.db]\nimage = \"x\"\nports = [1]\nconnection_string = \"x://{host}:{port.2}\"\n", 4, "connection_string"),
    ];
    for (n, (config, line, key)) in cases.iter().enumerate() {
        assert_config_rejected(&repo, n, config, *line, key);
    }
    // Without --json the same facts go to stderr as text.
    let out = repo.ajj(&["workspace", "add", "../text"]).failure();
    assert!(
        out.stderr.contains("error[CONFIG_INVALID]"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn an_empty_config_is_valid_and_provisions_nothing() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some("# nothing yet\n"));
    let out = repo.add("empty");
    assert_eq!(out["resources"], serde_json::json!({}));
    assert!(!repo.ws("empty").join(".env").exists());
}

#[test]
fn docker_unreachable_fails_before_jj_changes_anything() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let before = repo.workspace_names();
    let mut cmd = repo.ajj_cmd(&repo.main, &["workspace", "add", "../w", "--json"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = Run::from(cmd.output().unwrap(), "ajj", &["workspace", "add"]).failure();
    assert_eq!(out.error_code(), "DOCKER_UNREACHABLE");
    assert!(out.json()["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("DOCKER_HOST"));
    assert_eq!(repo.workspace_names(), before);
    assert!(!repo.ws("w").exists());

    let mut cmd = repo.ajj_cmd(&repo.main, &["reconcile", "--json"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = Run::from(cmd.output().unwrap(), "ajj", &["reconcile"]).failure();
    assert_eq!(out.error_code(), "DOCKER_UNREACHABLE");
    assert!(!repo.main.join(".env").exists(), "no file written");
}

#[test]
fn jj_missing_or_too_old() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let mut cmd = repo.ajj_cmd(&repo.main, &["status", "--json"]);
    cmd.env("AETHER_JJ", "/nonexistent/jj");
    let out = Run::from(cmd.output().unwrap(), "ajj", &["status"]).failure();
    assert_eq!(out.error_code(), "JJ_NOT_FOUND");

    // Pass-through reports it too, as text.
    let mut cmd = repo.ajj_cmd(&repo.main, &["log"]);
    cmd.env("AETHER_JJ", "/nonexistent/jj");
    let out = Run::from(cmd.output().unwrap(), "ajj", &["log"]).failure();
    assert!(out.stderr.contains("JJ_NOT_FOUND"), "{}", out.stderr);

    // A jj older than 0.44 rejects the `root` keyword; Aether names the version.
    // (No jj 0.43 can be installed here, so a script stands in for its two answers.)
    let old = repo.base.join("old-jj");
    std::fs::write(
        &old,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'jj 0.40.0'; exit 0; fi\necho 'Error: Failed to parse template: Keyword \"root\" doesn'\\''t exist' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = repo.ajj_cmd(&repo.main, &["status", "--json"]);
    cmd.env("AETHER_JJ", &old);
    let out = Run::from(cmd.output().unwrap(), "ajj", &["status"]).failure();
    let err = out.json();
    assert_eq!(err["error"]["code"], "JJ_TOO_OLD", "{err}");
    assert_eq!(err["error"]["details"]["found"], "0.40.0");
}

#[test]
fn missing_image_is_named() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(
        "[services.x]\nimage = \"aether-test/does-not-exist:1\"\nports = [80]\n",
    ));
    let out = repo.ajj(&["workspace", "add", "../w", "--json"]).failure();
    let err = out.json();
    assert_eq!(err["error"]["code"], "IMAGE_NOT_FOUND", "{err}");
    assert_eq!(
        err["error"]["details"]["image"],
        "aether-test/does-not-exist:1"
    );
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=w")
        .is_empty());
}

#[test]
fn a_service_that_never_listens_times_out_and_one_that_dies_is_reported() {
    let Some(()) = env() else { return };
    let config = format!(
        "[services.mute]\nimage = \"{BUSYBOX}\"\ncommand = [\"sleep\", \"300\"]\nports = [8080]\nready_timeout = \"1s\"\nstop_timeout = \"1s\"\n"
    );
    let repo = TestRepo::new(Some(&config));
    let out = repo.ajj(&["workspace", "add", "../w", "--json"]).failure();
    // Docker's proxy accepts on the host port; Aether must not be fooled by it.
    assert_eq!(out.error_code(), "READINESS_TIMEOUT", "{}", out.stdout);

    std::fs::write(
        repo.main.join("aether.toml"),
        format!("[services.dies]\nimage = \"{BUSYBOX}\"\ncommand = [\"sh\", \"-c\", \"echo boom; exit 3\"]\nports = [8080]\n"),
    )
    .unwrap();
    repo.jj(&["commit", "-m", "dies"]).success();
    let out = repo.ajj(&["workspace", "add", "../w2", "--json"]).failure();
    let err = out.json();
    assert_eq!(err["error"]["code"], "SERVICE_EXITED", "{err}");
    assert!(
        err["error"]["details"]["logs"]
            .as_str()
            .unwrap()
            .contains("boom"),
        "{err}"
    );
}

#[test]
fn usage_and_location_errors() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let out = repo.ajj(&["workspace", "add", "--json"]).failure_with(2);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(out.error_code(), "USAGE");

    let outside = tempfile::tempdir().unwrap();
    let out = repo.ajj_in(outside.path(), &["status", "--json"]).failure();
    assert_eq!(out.error_code(), "NOT_IN_WORKSPACE");

    let out = repo
        .ajj(&["workspace", "forget", "nope", "--json"])
        .failure();
    assert_eq!(out.error_code(), "WORKSPACE_NOT_FOUND");

    let out = repo
        .ajj(&["run", "--", "/nonexistent/tool"])
        .failure_with(127);
    assert_eq!(out.status.code(), Some(127));
    assert!(out.stderr.contains("COMMAND_NOT_FOUND"));
}

#[test]
fn a_network_made_ahead_of_time_is_taken_back_when_not_needed() {
    let Some(()) = env() else { return };
    // History: no config → a broken config → a working one (on disk in `main`).
    let repo = TestRepo::new(None);
    let rev = |r: &TestRepo| {
        r.jj(&["log", "-r", "@-", "--no-graph", "-T", "change_id"])
            .success()
            .stdout
    };
    let empty = rev(&repo);
    std::fs::write(repo.main.join("aether.toml"), "[services.web\n").unwrap();
    repo.jj(&["commit", "-m", "broken"]).success();
    let broken = rev(&repo);
    std::fs::write(repo.main.join("aether.toml"), busybox_web("")).unwrap();
    repo.jj(&["commit", "-m", "services"]).success();

    let out = repo
        .ajj(&["workspace", "add", "../e", "-r", &empty, "--json"])
        .success()
        .json();
    assert_eq!(out["resources"], serde_json::json!({}));
    assert!(repo
        .docker_names("network", "label=dev.aether.workspace=e")
        .is_empty());

    let out = repo
        .ajj(&["workspace", "add", "../b", "-r", &broken, "--json"])
        .failure();
    assert_eq!(out.error_code(), "CONFIG_INVALID");
    assert!(repo
        .docker_names("network", "label=dev.aether.workspace=b")
        .is_empty());
    assert!(!repo.workspace_names().contains(&"b".to_string()));

    // And a workspace that does get services ends up with exactly one network.
    repo.add("s");
    assert_eq!(
        repo.docker_names("network", "label=dev.aether.workspace=s")
            .len(),
        1
    );
}

#[test]
fn the_documented_example_config_is_valid() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("aether.toml.example"),
    )
    .unwrap();
    std::fs::write(repo.main.join("aether.toml"), example).unwrap();
    // `--dry-run` validates and plans without starting images that are not here.
    let plan = repo
        .ajj(&["reconcile", "--dry-run", "--json"])
        .success()
        .json();
    let creates = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "create_container")
        .count();
    assert_eq!(creates, 2, "{plan}");
}
