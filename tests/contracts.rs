//! What README promises and no other suite checked: `status --all` in every
//! state, the documented JSON fields, the missing-root flag, extra labels,
//! a foreign container in Aether's way, `--name`, `--sparse-patterns`,
//! `init --force` and `hooks install` with no targets or `--dry-run`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The documented fields are all there (later versions may add more).
fn has_fields(v: &Value, documented: &[&str], what: &str) {
    let have = keys(v);
    let missing: Vec<_> = documented.iter().filter(|k| !have.contains(*k)).collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {v}");
}

const REPORT_FIELDS: &[&str] = &[
    "schema_version",
    "name",
    "workspace_root",
    "backend",
    "remote_host",
    "env_file",
    "resources",
    "variables",
    "warnings",
];
const RESOURCE_FIELDS: &[&str] = &[
    "service",
    "image",
    "state",
    "health",
    "config_current",
    "container",
    "host",
    "internal_port",
    "external_port",
    "ports",
    "remote_port",
    "remote_ports",
    "connection_string",
];

fn container_of(repo: &TestRepo, ws: &str) -> String {
    let names = repo.docker_names("container", &format!("label=dev.aether.workspace={ws}"));
    assert_eq!(names.len(), 1, "{ws}: {names:?}");
    names[0].clone()
}

#[test]
fn add_prints_every_documented_field() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo.add("w");
    has_fields(&out, REPORT_FIELDS, "workspace add --json");
    let web = &out["resources"]["web"];
    has_fields(web, RESOURCE_FIELDS, "a resource");
    assert_eq!(out["schema_version"], 1);
    assert_eq!(out["name"], "w");
    assert_eq!(out["backend"], "docker-local");
    assert_eq!(out["remote_host"], Value::Null);
    let root = repo.ws("w");
    assert_eq!(out["workspace_root"], root.display().to_string());
    assert_eq!(out["env_file"], root.join(".env").display().to_string());
    assert_eq!(out["warnings"], serde_json::json!([]));
    assert_eq!(web["service"], "web");
    assert_eq!(web["image"], BUSYBOX);
    assert_eq!(web["state"], "running");
    assert_eq!(web["config_current"], true);
    assert_eq!(web["host"], "127.0.0.1");
    assert_eq!(web["internal_port"], 8080);
    let port = web["external_port"].as_u64().unwrap();
    assert_eq!(web["ports"]["8080"], port);
    assert_eq!(web["remote_port"], Value::Null);
    assert_eq!(web["remote_ports"], serde_json::json!({}));
    assert_eq!(web["container"], container_of(&repo, "w"));
    assert_eq!(
        web["connection_string"],
        format!("http://127.0.0.1:{port}/")
    );
    let vars = dotenv(&root.join(".env"));
    assert_eq!(
        out["variables"],
        serde_json::to_value(&vars).unwrap(),
        "the JSON's variables are .env's"
    );
}

#[test]
fn status_all_reports_every_state_orphans_and_problems() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let names = [
        "running", "stopped", "removed", "drifted", "broken", "deleted", "orphaned",
    ];
    let mut ports = std::collections::BTreeMap::new();
    for n in names {
        let out = repo.add(n);
        ports.insert(n, out["resources"]["web"]["external_port"].clone());
    }
    docker(&["stop", "-t", "1", &container_of(&repo, "stopped")]);
    docker(&["rm", "-f", &container_of(&repo, "removed")]);
    let drifted = repo.ws("drifted").join("aether.toml");
    let text = std::fs::read_to_string(&drifted).unwrap();
    std::fs::write(
        &drifted,
        text.replace("stop_timeout = \"1s\"", "stop_timeout = \"2s\""),
    )
    .unwrap();
    std::fs::write(repo.ws("broken").join("aether.toml"), "[services.web\n").unwrap();
    std::fs::remove_dir_all(repo.ws("deleted")).unwrap();
    // jj forgets it without Aether: its container is an orphan until a pass.
    let orphan = container_of(&repo, "orphaned");
    repo.jj(&["workspace", "forget", "orphaned"]).success();

    // Problems make the exit status 1, with the JSON still printed.
    let out = repo.ajj(&["status", "--all", "--json"]).failure();
    let v = out.json();
    has_fields(
        &v,
        &[
            "schema_version",
            "backend",
            "workspaces",
            "orphans",
            "problems",
        ],
        "status --all",
    );
    let report = |n: &str| -> Value {
        v["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no report for {n}: {v}"))
    };
    for n in ["default", "running", "stopped", "removed", "drifted"] {
        let r = report(n);
        has_fields(&r, REPORT_FIELDS, n);
        has_fields(&r["resources"]["web"], RESOURCE_FIELDS, n);
    }
    let web = |n: &str| report(n)["resources"]["web"].clone();
    assert_eq!(web("running")["state"], "running");
    assert_eq!(web("running")["config_current"], true);
    assert_eq!(web("stopped")["state"], "exited");
    assert_eq!(web("removed")["state"], "missing");
    assert_eq!(web("removed")["container"], Value::Null);
    assert_eq!(web("removed")["config_current"], false);
    // A missing container keeps its sticky port in the report.
    assert_eq!(web("removed")["external_port"], ports["removed"]);
    assert_eq!(web("drifted")["state"], "running");
    assert_eq!(web("drifted")["config_current"], false);

    let problems = v["problems"].as_array().unwrap();
    let problem = |n: &str| {
        problems
            .iter()
            .find(|p| p["workspace"] == n)
            .unwrap_or_else(|| panic!("no problem for {n}: {v}"))
    };
    assert_eq!(problem("broken")["error"]["code"], "CONFIG_INVALID");
    assert!(problem("deleted")["problem"]
        .as_str()
        .unwrap()
        .contains("directory missing"));
    assert_eq!(problems.len(), 2, "{v}");
    // What the next pass removes: the forgotten workspace's container, and
    // the one whose directory is gone.
    let orphans = v["orphans"].as_array().unwrap();
    for o in orphans {
        has_fields(
            o,
            &["workspace", "service", "container", "state"],
            "an orphan",
        );
    }
    let of: BTreeSet<&str> = orphans
        .iter()
        .map(|o| o["workspace"].as_str().unwrap())
        .collect();
    assert_eq!(of, BTreeSet::from(["orphaned", "deleted"]), "{v}");
    let o = orphans
        .iter()
        .find(|o| o["workspace"] == "orphaned")
        .unwrap();
    assert_eq!(o["container"], orphan.as_str());
    assert_eq!(o["service"], "web");
    assert_eq!(o["state"], "running");

    // The same facts as text; one workspace without problems is exit 0.
    let text = repo.ajj(&["status", "--all"]).failure();
    assert!(text.stdout.contains("orphan"), "{}", text.stdout);
    assert!(text.stderr.contains("problem"), "{}", text.stderr);
    let one = repo
        .ajj_in(&repo.ws("running"), &["status", "--json"])
        .success()
        .json();
    assert_eq!(one["name"], "running");
    has_fields(&one, REPORT_FIELDS, "status --json");
}

#[test]
fn the_missing_root_flag_keeps_or_removes_for_one_run() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("k");
    let root = repo.ws("k");
    let objects = |root: &Path| -> Vec<String> {
        let filter = format!("label=dev.aether.root={}", root.display());
        ["container", "volume", "network"]
            .iter()
            .flat_map(|k| repo.docker_names(k, &filter))
            .collect()
    };
    let before = objects(&root);
    assert_eq!(before.len(), 2, "{before:?}");
    std::fs::remove_dir_all(&root).unwrap();
    let kept = repo
        .ajj(&["reconcile", "--on-missing-root", "keep", "--json"])
        .success()
        .json();
    assert!(actions_for(&kept, "k").is_empty(), "{kept}");
    assert_eq!(objects(&root), before);
    let removed = repo.ajj(&["reconcile", "--json"]).success().json();
    assert_eq!(actions_for(&removed, "k").len(), 2, "{removed}");
    assert!(objects(&root).is_empty());
    let bad = repo
        .ajj(&["reconcile", "--on-missing-root", "sometimes", "--json"])
        .failure_with(2);
    assert_eq!(bad.error_code(), "USAGE");

    // The watcher takes the same flag.
    repo.add("w");
    let root = repo.ws("w");
    let mut w = repo.watch(&["--on-missing-root", "keep"], &[]);
    std::fs::remove_dir_all(&root).unwrap();
    // Whatever woke it (the deletion, or a jj operation), a pass that
    // started after the deletion keeps the environment.
    repo.jj(&["new"]).success();
    w.wait_for("a pass for the jj operation", 10, |e| {
        pass_caused_by(e, "jj_operation")
    });
    w.wait_for("that pass to finish", 10, |e| e["event"] == "pass_finished");
    assert!(
        !w.seen
            .iter()
            .any(|e| e["event"] == "action" && e["workspace"] == "w"),
        "{:?}",
        w.seen
    );
    assert_eq!(objects(&root).len(), 2);
}

#[test]
fn extra_labels_go_on_every_object_but_never_replace_aethers() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("volumes = { data = \"/data\" }")));
    repo.set_env(
        "AETHER_EXTRA_LABELS",
        format!(
            "{TEST_LABEL}={}, team=platform ,dev.aether.repo=evil,junk",
            std::process::id()
        ),
    );
    repo.add("w");
    let mine = format!("label=dev.aether.repo={}", repo.repo_id());
    for kind in ["container", "volume", "network"] {
        let labelled = docker_names(
            kind,
            &[&mine, "label=dev.aether.workspace=w", "label=team=platform"],
        );
        assert_eq!(labelled.len(), 1, "{kind}: {labelled:?}");
        let swept = docker_names(
            kind,
            &[
                &mine,
                "label=dev.aether.workspace=w",
                &format!("label={TEST_LABEL}={}", std::process::id()),
            ],
        );
        assert_eq!(swept, labelled, "{kind}");
        // Aether's own label is never overridden.
        assert!(docker_names(kind, &["label=dev.aether.repo=evil"]).is_empty());
    }
}

#[test]
fn a_foreign_container_holding_aethers_name_is_reported_and_left_alone() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo.add("w");
    let name = out["resources"]["web"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    repo.ajj(&["workspace", "forget", "w"]).success();
    std::fs::remove_dir_all(repo.ws("w")).unwrap();
    // Someone else's container takes the name the same workspace will want.
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &format!("{TEST_LABEL}={}", std::process::id()),
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let id = container_id(&name);
    let add = repo.ajj(&["workspace", "add", "../w", "--json"]).failure();
    assert_eq!(add.error_code(), "DOCKER_ERROR", "{}", add.stdout);
    let err = &add.json()["error"];
    assert_eq!(err["details"]["container"], name.as_str());
    assert!(err["hint"].as_str().unwrap().contains("docker rm"), "{err}");
    // Untouched: the same container, still running.
    assert_eq!(container_id(&name), id);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );
    // A pass says the same, and changes nothing either.
    let pass = repo.ajj(&["reconcile", "--json"]).failure().json();
    assert_eq!(pass["error"]["code"], "DOCKER_ERROR", "{pass}");
    assert_eq!(container_id(&name), id);
    docker(&["rm", "-f", &name]);
}

#[test]
fn add_passes_name_and_sparse_patterns_to_jj() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo
        .ajj(&["workspace", "add", "../dir-x", "--name", "custom", "--json"])
        .success()
        .json();
    assert_eq!(out["name"], "custom");
    assert_eq!(
        out["workspace_root"],
        repo.ws("dir-x").display().to_string()
    );
    assert!(repo.workspace_names().contains(&"custom".to_string()));
    container_of(&repo, "custom");
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=dir-x")
        .is_empty());

    // An empty sparse checkout has no aether.toml, so no services.
    let sparse = repo
        .ajj(&[
            "workspace",
            "add",
            "../sparse",
            "--sparse-patterns",
            "empty",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(sparse["resources"], serde_json::json!({}));
    assert!(!repo.ws("sparse").join("aether.toml").exists());
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=sparse")
        .is_empty());
}

#[test]
fn init_keeps_an_existing_config_unless_forced() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let config = repo.main.join("aether.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let kept = repo.ajj(&["init", "--json"]).success().json();
    assert_eq!(kept["wrote_config"], false);
    assert_eq!(kept["added_env_to_gitignore"], false);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    let forced = repo.ajj(&["init", "--force", "--json"]).success().json();
    assert_eq!(forced["wrote_config"], true);
    let text = std::fs::read_to_string(&config).unwrap();
    // The editors' schema directive first (Taplo reads it at the top), then the starter.
    assert!(
        text.starts_with("#:schema ./aether.schema.json\n# Services for this workspace"),
        "{text}"
    );
    // And a repo whose .env is not ignored gets it ignored.
    std::fs::write(repo.main.join(".gitignore"), "target/\n").unwrap();
    let fixed = repo.ajj(&["init", "--json"]).success().json();
    assert_eq!(fixed["added_env_to_gitignore"], true);
    let ignore = std::fs::read_to_string(repo.main.join(".gitignore")).unwrap();
    assert!(
        ignore.starts_with("target/\n") && ignore.ends_with(".env\n"),
        "{ignore}"
    );
}

#[test]
fn hooks_install_defaults_to_shell_and_jj_and_dry_run_changes_nothing() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let home = repo.base.join("home");
    let install = |args: &[&str]| {
        let mut cmd = repo.ajj_cmd(&repo.main, args);
        cmd.env("SHELL", "/usr/bin/zsh");
        Run::from(cmd.output().unwrap(), "ajj", args)
            .success()
            .json()
    };
    let targets = |v: &Value| -> BTreeSet<String> {
        v["installed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["target"].as_str().unwrap().to_string())
            .collect()
    };
    let dry = install(&["hooks", "install", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(targets(&dry), BTreeSet::from(["jj".into(), "zsh".into()]));
    assert!(
        dry["installed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "installed"),
        "{dry}"
    );
    assert!(!home.join(".zshrc").exists(), "--dry-run wrote ~/.zshrc");
    assert!(!home.join(".bashrc").exists());
    let aliases = repo.jj(&["config", "list", "aliases"]).success();
    assert!(!aliases.stdout.contains("wsa"), "{}", aliases.stdout);

    let real = install(&["hooks", "install", "--json"]);
    assert_eq!(real["dry_run"], false);
    assert_eq!(targets(&real), BTreeSet::from(["jj".into(), "zsh".into()]));
    let zshrc = std::fs::read_to_string(home.join(".zshrc")).unwrap();
    assert!(zshrc.contains("ajj hooks init zsh"), "{zshrc}");
    assert!(!home.join(".bashrc").exists(), "only $SHELL's hook");
    repo.jj(&["config", "get", "aliases.wsa"]).success();
}

/// The dry run shows exactly what the pass then does: the object, the host
/// port each container will bind (the sticky one, from `.env`) and, for a
/// drift, the fields that changed, without reading any value.
#[test]
fn the_dry_run_names_objects_sticky_ports_and_changed_fields_and_the_pass_does_that() {
    let Some(()) = env() else { return };
    let two = format!(
        "{}\n{}",
        busybox_web("env = { GREETING = \"hi\" }"),
        busybox_web("").replace("[services.web]", "[services.api]")
    );
    let repo = TestRepo::new(Some(&two));
    repo.add("feat");
    let ws = repo.ws("feat");
    let vars = dotenv(&ws.join(".env"));
    let api_port: u64 = vars["API_PORT"].parse().unwrap();
    let web_port: u64 = vars["WEB_PORT"].parse().unwrap();
    let api = docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=dev.aether.workspace=feat",
        "--filter",
        "label=dev.aether.service=api",
    ]);
    docker(&["rm", "-f", &api]);
    let toml = ws.join("aether.toml");
    let edited = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("GREETING = \"hi\"", "GREETING = \"hello\"");
    std::fs::write(&toml, edited).unwrap();

    let dry = repo
        .ajj(&["reconcile", "--dry-run", "--json"])
        .success()
        .json();
    let planned = actions_for(&dry, "feat");
    assert_eq!(planned.len(), 2, "{dry}");
    let create = planned
        .iter()
        .find(|a| a["action"] == "create_container")
        .unwrap();
    assert_eq!(create["service"], "api");
    assert_eq!(create["reason"], "missing");
    assert_eq!(
        create["ports"]["8080"], api_port,
        "the sticky port: {create}"
    );
    assert!(
        create["object"].as_str().unwrap().ends_with("-api"),
        "{create}"
    );
    let recreate = planned
        .iter()
        .find(|a| a["action"] == "recreate_container")
        .unwrap();
    assert_eq!(recreate["reason"], "drifted");
    assert_eq!(
        recreate["changed"],
        serde_json::json!(["env.GREETING"]),
        "{recreate}"
    );
    assert_eq!(recreate["ports"]["8080"], web_port);
    let dump = dry.to_string();
    assert!(!dump.contains("hello"), "no value is reported: {dump}");

    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    let done = actions_for(&pass, "feat");
    let strip = |v: &[&Value]| -> Vec<Value> {
        let mut v: Vec<Value> = v
            .iter()
            .map(|a| {
                let mut a = (*a).clone();
                a.as_object_mut().unwrap().remove("duration_ms");
                a
            })
            .collect();
        v.sort_by_key(|a| a.to_string());
        v
    };
    assert_eq!(
        strip(&done),
        strip(&planned),
        "the pass did what the dry run said"
    );
    let after = dotenv(&ws.join(".env"));
    assert_eq!(after["API_PORT"], vars["API_PORT"]);
    assert_eq!(after["WEB_PORT"], vars["WEB_PORT"]);
    repo.ajj(&["workspace", "forget", "feat"]).success();
}
