//! Compose files as they are: real `ajj` against real jj and the real
//! engine, with real clients (psql, curl) and a real `docker-compose` as a
//! second opinion on interpolation.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A repo with a commit holding these files (and symlinks), which new
/// workspaces start from; the main workspace's own working copy deletes
/// them, so that its passes run nothing and only the workspaces a test
/// adds have services.
fn repo_with_links(files: &[(&str, &str)], links: &[(&str, &str)]) -> TestRepo {
    let repo = TestRepo::new(None);
    for (path, text) in files {
        let p = repo.main.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for (path, target) in links {
        std::os::unix::fs::symlink(target, repo.main.join(path)).unwrap();
    }
    repo.jj(&["commit", "-m", "compose"]).success();
    for (path, _) in files.iter().chain(links) {
        std::fs::remove_file(repo.main.join(path)).unwrap();
    }
    repo.jj(&["status"]).success();
    repo
}

fn repo_with(files: &[(&str, &str)]) -> TestRepo {
    repo_with_links(files, &[])
}

fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn port(report: &Value, var: &str) -> u16 {
    report["variables"][var]
        .as_str()
        .unwrap_or_else(|| panic!("{var} in {report}"))
        .parse()
        .unwrap()
}

fn psql(port: u16, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(format!(
            "postgres://postgres:pass@127.0.0.1:{port}/postgres"
        ))
        .args(["-tAc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn nothing_left(repo: &TestRepo) {
    for kind in ["container", "volume", "network"] {
        let left = repo.docker_names(kind, "label=dev.aether.repo");
        assert!(left.is_empty(), "{kind}s left: {left:?}");
    }
}

const SHOP: &str = r#"
name: shop
x-common: &common
  stop_grace_period: 1s
  labels:
    app: shop
services:
  db:
    <<: *common
    image: aether-test/postgres:15
    container_name: shop-db
    command: ["postgres", "-c", "fsync=off"]
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:-pass}
    ports: ["5432:5432"]
    volumes: [dbdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres"]
      interval: 200ms
      retries: 100
  migrate:
    <<: *common
    image: aether-test/busybox:1
    command: ["sh", "-c", "echo migrated"]
    depends_on:
      db: {condition: service_healthy}
  web:
    <<: *common
    image: aether-test/busybox:1
    command: httpd -f -p 8080 -h /www
    ports: ["0.0.0.0:8080:8080"]
    volumes: ["shared:/data:ro"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started}
  cache:
    <<: *common
    image: aether-test/busybox:1
    command: ["httpd", "-f", "-p", "6379", "-h", "/www"]
    expose: ["6379"]
    volumes: [shared:/data]
volumes:
  dbdata:
  shared:
"#;

/// A web app with a database, a cache and a one-shot migration, from a
/// plain `compose.yaml` (no aether.toml): two workspaces run it side by
/// side on their own ports, in `depends_on` order, and forget leaves nothing.
#[test]
fn a_web_stack_runs_twice_side_by_side_and_goes_whole() {
    let Some(()) = env() else { return };
    let repo = repo_with(&[("compose.yaml", SHOP)]);
    let a = repo.add("a");
    let b = repo.add("b");
    for r in [&a, &b] {
        let db = port(r, "DB_PORT");
        assert_eq!(psql(db, "select 1"), "1");
        let web = port(r, "WEB_PORT");
        assert_eq!(
            curl(&format!("http://127.0.0.1:{web}/")).unwrap().trim(),
            "aether-test"
        );
        assert_ne!(db, 5432, "the file's fixed host port is not used");
        let warnings = r["warnings"].to_string();
        assert!(warnings.contains("`shop-db` is replaced"), "{warnings}");
        assert!(
            warnings.contains("host port 5432 is replaced"),
            "{warnings}"
        );
        // .env names them, as for aether.toml services.
        let env = dotenv(&Path::new(r["workspace_root"].as_str().unwrap()).join(".env"));
        assert_eq!(env["DB_PORT"], db.to_string());
    }
    assert_ne!(port(&a, "DB_PORT"), port(&b, "DB_PORT"));
    // Inside, services reach each other by name and container port.
    let inside = repo
        .ajj_in(
            &repo.ws("a"),
            &["exec", "web", "--", "wget", "-qO-", "http://cache:6379/"],
        )
        .success();
    assert_eq!(inside.stdout.trim(), "aether-test");
    // A named volume two services mount is one volume, as in Compose.
    let ws_a = repo.ws("a");
    repo.ajj_in(
        &ws_a,
        &["exec", "cache", "--", "sh", "-c", "echo shared > /data/x"],
    )
    .success();
    let read = repo
        .ajj_in(&ws_a, &["exec", "web", "--", "cat", "/data/x"])
        .success();
    assert_eq!(read.stdout.trim(), "shared");
    let denied = repo.ajj_in(
        &ws_a,
        &["exec", "web", "--", "sh", "-c", "echo no > /data/y"],
    );
    assert_ne!(denied.status.code(), Some(0), "web mounts it read-only");
    // Order: the migration ran to exit 0 after the database was healthy,
    // and web started after it completed.
    let names = repo.docker_names("container", "label=dev.aether.workspace=a");
    let find = |svc: &str| {
        names
            .iter()
            .find(|n| n.ends_with(&format!("-{svc}")))
            .unwrap()
            .clone()
    };
    let migrate = find("migrate");
    assert_eq!(
        inspect(&migrate, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(
        inspect(&migrate, "{{.HostConfig.RestartPolicy.Name}}"),
        "no"
    );
    let finished = inspect(&migrate, "{{.State.FinishedAt}}");
    let web_started = inspect(&find("web"), "{{.State.StartedAt}}");
    assert!(
        web_started > finished,
        "web {web_started} before migrate ended {finished}"
    );
    assert_eq!(
        inspect(&find("web"), "{{index .Config.Labels \"app\"}}"),
        "shop"
    );
    // The completed job is not run again by a pass.
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&pass, "a").is_empty(), "{pass}");
    // `ajj services` shows what runs, without the engine.
    let services = repo
        .ajj_in(&repo.ws("a"), &["services", "--json"])
        .success()
        .json();
    assert_eq!(services["schema_version"], 1);
    assert_eq!(
        services["services"]["db"]["ports"][0]["host"],
        port(&a, "DB_PORT")
    );
    assert_eq!(
        services["services"]["web"]["depends_on"]["migrate"],
        "completed"
    );
    assert_eq!(services["services"]["migrate"]["one_shot"], true);
    repo.ajj(&["workspace", "forget", "a", "b"]).success();
    nothing_left(&repo);
}

/// Profiles chosen per workspace, `env_file`, interpolation from the
/// user's lines of `.env`, `extends` across files and Aether's own keys
/// for a Compose service.
#[test]
fn profiles_env_files_interpolation_and_extends() {
    let Some(()) = env() else { return };
    let repo = repo_with(&[
        (
            "docker/compose.dev.yaml",
            r#"
services:
  web:
    extends: {file: base.yaml, service: httpd}
    ports: ["${WEB_BIND:-8080}:8080"]
    env_file: [web.env, {path: missing.env, required: false}]
    environment:
      GREETING: ${GREETING:?set GREETING in .env}
      DOLLARS: "$$HOME"
  tools:
    extends: {file: base.yaml, service: httpd}
    profiles: [tools]
"#,
        ),
        (
            "docker/base.yaml",
            "services:\n  httpd:\n    image: aether-test/busybox:1\n    command: [httpd, -f, -p, \"8080\", -h, /www]\n    stop_grace_period: 1s\n",
        ),
        ("docker/web.env", "FROM_FILE=yes\n"),
        (
            "aether.toml",
            "[compose]\nfiles = [\"docker/compose.dev.yaml\"]\n\n[compose.services.web]\nconnection_string = \"http://{host}:{port}/\"\n\n[env]\nSITE = \"{web.url}\"\n",
        ),
    ]);
    // GREETING is required: the user's own line of .env gives it. The
    // workspace is made with jj first, so the line is there before Aether reads.
    repo.jj(&["workspace", "add", "../a"]).success();
    std::fs::write(
        repo.ws("a").join(".env"),
        "GREETING=hello\nWEB_BIND=127.0.0.1:9999\n",
    )
    .unwrap();
    let pass = repo
        .ajj_in(&repo.ws("a"), &["reconcile", "--json"])
        .success()
        .json();
    assert!(pass["errors"].as_array().unwrap().is_empty(), "{pass}");
    let env = dotenv(&repo.ws("a").join(".env"));
    let web = env["WEB_PORT"].parse::<u16>().unwrap();
    assert_eq!(env["SITE"], format!("http://127.0.0.1:{web}/"));
    assert_eq!(curl(&env["SITE"]).unwrap().trim(), "aether-test");
    let e = repo
        .ajj_in(&repo.ws("a"), &["exec", "web", "--", "env"])
        .success()
        .stdout;
    for line in ["GREETING=hello", "FROM_FILE=yes", "DOLLARS=$HOME"] {
        assert!(e.lines().any(|l| l == line), "{line} in {e}");
    }
    assert!(
        !e.contains("WEB_PORT"),
        "Aether's block never goes into containers: {e}"
    );
    assert!(!env.contains_key("TOOLS_PORT"));
    // Without GREETING the workspace is refused with the file's message.
    let out = repo.ajj(&["workspace", "add", "../b", "--json"]).failure();
    assert_eq!(out.error_code(), "CONFIG_INVALID");
    assert!(out.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("set GREETING in .env"));
    // A value from the process's environment would reach the services: it
    // is a grant. The add keeps the workspace (with its profile recorded)
    // and starts nothing.
    let out = Run::from(
        repo.ajj_cmd(
            &repo.main,
            &["workspace", "add", "../c", "--profile", "tools", "--json"],
        )
        .env("GREETING", "from-the-shell")
        .output()
        .unwrap(),
        "ajj",
        &["workspace", "add"],
    )
    .failure();
    assert_eq!(out.error_code(), "CONFIG_UNTRUSTED", "{}", out.stdout);
    assert!(
        out.stdout.contains("${GREETING} from your environment"),
        "{}",
        out.stdout
    );
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=c")
        .is_empty());
    // With GREETING in its own .env instead, the profile chosen at add runs
    // `tools` there, and stays on its passes.
    std::fs::write(repo.ws("c").join(".env"), "GREETING=hi\n").unwrap();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(
        actions_for(&pass, "c")
            .iter()
            .any(|a| a["service"] == "tools"),
        "{pass}"
    );
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&pass, "c").is_empty(), "{pass}");
    repo.ajj(&["workspace", "forget", "a", "c"]).success();
    nothing_left(&repo);
}

const BUILD_COMPOSE: &str = r#"
services:
  web:
    build:
      context: ..
      dockerfile: app/Dockerfile
      args: {GREETING: built}
    ports: ["8080"]
    stop_grace_period: 1s
"#;

fn build_repo(dockerfile: &str) -> TestRepo {
    repo_with(&[
        ("app/compose.yaml", BUILD_COMPOSE),
        ("app/Dockerfile", dockerfile),
        ("aether.toml", "[compose]\nfiles = [\"app/compose.yaml\"]\n"),
        ("site/index.html", "v1\n"),
        ("site/secret.txt", "do not ship\n"),
        (".dockerignore", "site/secret.txt\n**/*.log\n"),
        ("site/debug.log", "noise\n"),
    ])
}

const DOCKERFILE: &str = "FROM aether-test/busybox:1\nARG GREETING\nCOPY site /site\nRUN echo $GREETING > /site/greeting.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/site\"]\n";

fn built(r: &Value) -> usize {
    r["images_built"].as_array().map_or(0, Vec::len)
}

fn remove_images(tags: &[String]) {
    for t in tags {
        let _ = Command::new("docker").args(["rmi", "-f", t]).output();
    }
}

/// A `build:` service: built once from a context outside the Compose
/// folder with `.dockerignore` honoured; an unchanged context is not
/// built again; a changed file builds once and recreates the service;
/// the image goes once no workspace uses it.
#[test]
fn builds_follow_the_context_hash() {
    let Some(()) = env() else { return };
    let repo = build_repo(DOCKERFILE);
    let a = repo.add("a");
    assert_eq!(built(&a), 1, "{a}");
    let tag = a["images_built"][0].as_str().unwrap().to_string();
    assert!(tag.starts_with("aether-build/web:"), "{tag}");
    let web = port(&a, "WEB_PORT");
    assert_eq!(
        curl(&format!("http://127.0.0.1:{web}/index.html")).unwrap(),
        "v1\n"
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{web}/greeting.txt")).unwrap(),
        "built\n"
    );
    assert!(
        curl(&format!("http://127.0.0.1:{web}/secret.txt")).is_none(),
        ".dockerignore"
    );
    assert_eq!(
        inspect(&tag, "{{index .Config.Labels \"dev.aether.repo\"}}"),
        repo.repo_id()
    );
    // Another workspace of the same content: no build, the same image.
    let b = repo.add("b");
    assert_eq!(built(&b), 0, "{b}");
    assert_eq!(b["resources"]["web"]["image"], tag);
    // An ignored file changes nothing; a real one builds once and recreates.
    std::fs::write(repo.ws("b").join("site/debug.log"), "more noise").unwrap();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert_eq!(built(&pass), 0, "{pass}");
    std::fs::write(repo.ws("b").join("site/index.html"), "v2\n").unwrap();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert_eq!(built(&pass), 1, "{pass}");
    let new_tag = pass["images_built"][0].as_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    let recreated: Vec<_> = actions_for(&pass, "b")
        .into_iter()
        .filter(|a| a["action"] == "recreate_container")
        .collect();
    assert_eq!(recreated.len(), 1, "{pass}");
    let b_web = dotenv(&repo.ws("b").join(".env"))["WEB_PORT"].clone();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{b_web}/index.html")).unwrap(),
        "v2\n"
    );
    // Once no workspace uses the first image, a pass removes it.
    repo.ajj(&["workspace", "forget", "a"]).success();
    repo.ajj(&["reconcile"]).success();
    let gone = Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{tag} is still there");
    repo.ajj(&["workspace", "forget", "b"]).success();
    repo.ajj(&["reconcile"]).success();
    let gone = Command::new("docker")
        .args(["image", "inspect", &new_tag])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{new_tag} is still there");
    nothing_left(&repo);
    remove_images(&[tag, new_tag]);
}

/// Eight workspaces added at once build the image once between them.
#[test]
fn eight_concurrent_adds_build_once() {
    let Some(()) = env() else { return };
    // A context of its own, so that no other test's image is found ready.
    let marker = format!("FROM aether-test/busybox:1\nRUN echo {} > /id\nCOPY site /site\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/site\"]\n", std::process::id());
    let repo = build_repo(&marker);
    let children: Vec<_> = (0..8)
        .map(|i| {
            repo.ajj_cmd(
                &repo.main,
                &["workspace", "add", &format!("../w{i}"), "--json"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut builds = 0;
    let mut tags = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let run = Run::from(out, "ajj", &["workspace", "add"]).success();
        let r = run.json();
        builds += built(&r);
        tags.push(r["resources"]["web"]["image"].as_str().unwrap().to_string());
    }
    assert_eq!(builds, 1, "one build for eight adds");
    tags.dedup();
    assert_eq!(tags.len(), 1, "{tags:?}");
    let names: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
    let mut args = vec!["workspace", "forget"];
    args.extend(names.iter().map(String::as_str));
    repo.ajj(&args).success();
    repo.ajj(&["reconcile"]).success();
    nothing_left(&repo);
    remove_images(&tags);
}

/// A Dockerfile that fails: IMAGE_BUILD_FAILED with the step and the last
/// lines, on stdout as JSON only, and no container, no image.
#[test]
fn a_failing_build_is_reported_and_leaves_nothing() {
    let Some(()) = env() else { return };
    let repo = build_repo("FROM aether-test/busybox:1\nRUN echo about to fail && false\n");
    let out = repo.ajj(&["workspace", "add", "../a", "--json"]).failure();
    let err = out.json();
    assert_eq!(err["error"]["code"], "IMAGE_BUILD_FAILED", "{err}");
    let details = &err["error"]["details"];
    assert!(
        details["step"]
            .as_str()
            .unwrap()
            .contains("RUN echo about to fail"),
        "{details}"
    );
    assert!(
        details["logs"].to_string().contains("about to fail"),
        "{details}"
    );
    // Build output went to stderr, never into the JSON on stdout.
    assert!(out.stderr.contains("about to fail"), "{}", out.stderr);
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=a")
        .is_empty());
    let tag = details["image"].as_str().unwrap();
    let image = Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .unwrap();
    assert!(!image.status.success());
    repo.ajj(&["workspace", "forget", "a"]).success();
    nothing_left(&repo);
}

/// What reaches the host needs the user's trust for that exact content:
/// a host path, a symlink out of the workspace, `privileged`, the Docker
/// socket. Refused with nothing started, through add and through a
/// watcher following a plain `jj workspace add`; started once trusted;
/// refused again after an edit.
#[test]
fn host_access_needs_trust() {
    let Some(()) = env() else { return };
    let base = "services:\n  s:\n    image: aether-test/busybox:1\n    command: [sleep, \"300\"]\n    stop_grace_period: 1s\n";
    // `privileged` cannot run on this machine (its engine may not grant
    // every capability): once trusted, the engine is asked and refuses.
    for (what, extra, symlink, runs_here) in [
        (
            "a host path",
            "    volumes: [\"/etc:/host-etc:ro\"]\n",
            false,
            true,
        ),
        (
            "a symlink out of the workspace",
            "    volumes: [\"./escape:/host\"]\n",
            true,
            true,
        ),
        ("privileged", "    privileged: true\n", false, false),
        (
            "the Docker socket",
            "    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
            false,
            true,
        ),
    ] {
        let links: &[(&str, &str)] = if symlink { &[("escape", "/")] } else { &[] };
        let repo = repo_with_links(&[("compose.yaml", &format!("{base}{extra}"))], links);
        let out = repo.ajj(&["workspace", "add", "../a", "--json"]).failure();
        let err = out.json();
        assert_eq!(err["error"]["code"], "CONFIG_UNTRUSTED", "{what}: {err}");
        assert!(
            err["error"]["hint"].as_str().unwrap().contains("ajj trust"),
            "{err}"
        );
        assert!(!err["error"]["details"]["grants"]
            .as_array()
            .unwrap()
            .is_empty());
        assert!(
            repo.docker_names("container", "label=dev.aether.repo")
                .is_empty(),
            "{what}"
        );
        // The workspace is kept, so that its owner can read and allow it.
        let shown = repo
            .ajj_in(&repo.ws("a"), &["trust", "--show", "--json"])
            .success()
            .json();
        assert_eq!(shown["host"]["trusted"], false, "{shown}");
        repo.ajj_in(&repo.ws("a"), &["trust"]).success();
        let pass = repo.ajj(&["reconcile", "--json"]);
        if runs_here {
            pass.success();
            let names = repo.docker_names("container", "label=dev.aether.workspace=a");
            assert_eq!(names.len(), 1, "{what}");
            if symlink {
                // What the user trusted is what runs: the host's root.
                assert_eq!(
                    inspect(&names[0], "{{(index .Mounts 0).Source}}"),
                    repo.ws("a").join("escape").display().to_string()
                );
            }
        } else {
            let pass = pass.failure();
            assert_eq!(
                pass.error_code(),
                "DOCKER_ERROR",
                "{what}: the engine was asked: {}",
                pass.stdout
            );
        }
        repo.ajj(&["workspace", "forget", "a"]).success();
        nothing_left(&repo);
    }
    // Through a watcher: a plain jj add is refused once, nothing starts;
    // after trust it starts; an edit of what is asked is refused again.
    let repo = repo_with(&[("compose.yaml", &format!("{base}    cap_add: [NET_ADMIN]\n"))]);
    let mut w = repo.watch(&[], &[]);
    w.wait_for("the first pass", 20, |e| e["event"] == "pass_finished");
    repo.jj(&["workspace", "add", "../w"]).success();
    let err = w.wait_for("CONFIG_UNTRUSTED for w", 20, |e| {
        e["event"] == "error" && e["workspace"] == "w"
    });
    assert_eq!(err["code"], "CONFIG_UNTRUSTED", "{err}");
    w.wait_for("that pass to finish", 10, |e| e["event"] == "pass_finished");
    assert!(repo
        .docker_names("container", "label=dev.aether.repo")
        .is_empty());
    repo.ajj_in(&repo.ws("w"), &["trust"]).success();
    repo.jj(&["new"]).success();
    eventually("w's container after trust", 30, || {
        repo.docker_names("container", "label=dev.aether.workspace=w")
            .len()
            == 1
    });
    std::fs::write(
        repo.ws("w").join("compose.yaml"),
        format!("{base}    cap_add: [NET_ADMIN, SYS_PTRACE]\n"),
    )
    .unwrap();
    let out = repo
        .ajj_in(&repo.ws("w"), &["services", "--json"])
        .success()
        .json();
    assert_eq!(out["trusted"], false, "{out}");
    let out = repo
        .ajj_in(&repo.ws("w"), &["reconcile", "--json"])
        .failure();
    assert_eq!(out.error_code(), "CONFIG_UNTRUSTED", "{}", out.stdout);
    w.signal("INT");
    w.wait_exit(20);
    repo.ajj(&["workspace", "forget", "w"]).success();
    nothing_left(&repo);
}

/// Every real project's Compose file of the corpus loads through
/// `ajj services`, or is refused with CONFIG_INVALID naming the file and
/// the key; never a panic or INTERNAL. Needs no engine.
#[test]
fn the_real_corpus_through_ajj_services() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/compose/real");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let mut loaded = Vec::new();
    let mut refused = BTreeMap::new();
    for file in &files {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join(".jj")).unwrap();
        std::fs::copy(file, ws.path().join("compose.yaml")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ajj"))
            .args(["services", "--json"])
            .current_dir(ws.path())
            .env("COMPOSE_PROFILES", "*")
            .output()
            .unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{name}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match out.status.code() {
            Some(0) => {
                assert!(!json["services"].as_object().unwrap().is_empty(), "{name}");
                loaded.push(name);
            }
            Some(1) => {
                assert_eq!(json["error"]["code"], "CONFIG_INVALID", "{name}: {json}");
                let d = &json["error"]["details"];
                assert!(
                    d["file"].as_str().unwrap().ends_with("compose.yaml"),
                    "{name}: {json}"
                );
                assert!(d["key"].is_string(), "{name}: {json}");
                refused.insert(name, json["error"]["message"].as_str().unwrap().to_string());
            }
            other => panic!("{name}: exit {other:?}: {json}"),
        }
    }
    eprintln!(
        "loaded {}: {loaded:?}\nrefused {}: {refused:#?}",
        loaded.len(),
        refused.len()
    );
    assert!(loaded.len() >= 10, "only {} loaded", loaded.len());
}

/// Broken Compose files get CONFIG_INVALID with their place, never a panic.
#[test]
fn broken_files_are_config_invalid_with_their_place() {
    for (text, line, key) in [
        // The parser stops at the end of the unclosed list.
        ("services:\n  web:\n    image: [oops\n", 4, ""),
        ("services:\n  web:\n    image: a\n    ports: {a: 1}\n", 4, "services.web.ports"),
        ("services:\n  web:\n    image: a\n    depends_on: [ghost]\n", 4, "services.web.depends_on.ghost"),
        (
            "services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: a\n    depends_on: [a]\n",
            4,
            "services.a.depends_on",
        ),
        ("services:\n  web:\n    image: ${TAG:?TAG must be set}\n", 3, "services.web.image"),
        ("services:\n  web:\n    image: a\n    network_mode: host\n", 4, "services.web.network_mode"),
    ] {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join(".jj")).unwrap();
        std::fs::write(ws.path().join("compose.yaml"), text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ajj"))
            .args(["services", "--json"])
            .current_dir(ws.path())
            .env_remove("TAG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["error"]["code"], "CONFIG_INVALID", "{text}: {json}");
        assert_eq!(json["error"]["details"]["line"], line, "{text}: {json}");
        if !key.is_empty() {
            assert_eq!(json["error"]["details"]["key"], key, "{text}: {json}");
        }
    }
}

/// compose-go's interpolation cases, checked against Debian's
/// docker-compose 1.29 where the two agree (the data file lists where
/// they do not: `:+`, nesting, a lone `$`), through `ajj services`.
#[test]
fn interpolation_agrees_with_compose() {
    let Ok(v) = Command::new("docker-compose").arg("version").output() else {
        eprintln!("skipping: no docker-compose");
        return;
    };
    assert!(v.status.success());
    let data: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/compose/interpolation.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let disagree: Vec<&str> = data["docker_compose_1_29_disagrees"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    // Grouped by environment: one file, one ajj and one docker-compose run each.
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for case in data["cases"].as_array().unwrap() {
        if case.get("expected").is_none() || disagree.contains(&case["name"].as_str().unwrap()) {
            continue;
        }
        let env = case.get("env").unwrap_or(&data["default_env"]);
        groups.entry(env.to_string()).or_default().push(case);
    }
    let mut checked = 0;
    for (env, cases) in groups {
        let env: BTreeMap<String, String> = serde_json::from_str(&env).unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join(".jj")).unwrap();
        let mut yaml = String::from("services:\n  s:\n    image: x\n    environment:\n");
        for (i, c) in cases.iter().enumerate() {
            let t = serde_json::to_string(c["template"].as_str().unwrap()).unwrap();
            yaml.push_str(&format!("      V{i}: {t}\n"));
        }
        std::fs::write(ws.path().join("compose.yaml"), &yaml).unwrap();
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .current_dir(ws.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap())
                .envs(&env)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let ours: Value =
            serde_json::from_slice(&run(env!("CARGO_BIN_EXE_ajj"), &["services", "--json"]))
                .unwrap();
        let theirs =
            String::from_utf8(run("docker-compose", &["-f", "compose.yaml", "config"])).unwrap();
        let theirs: serde_norway::Value = serde_norway::from_str(&theirs).unwrap();
        for (i, c) in cases.iter().enumerate() {
            let key = format!("V{i}");
            let mine = ours["services"]["s"]["environment"][&key]
                .as_str()
                .unwrap_or_default();
            assert_eq!(mine, c["expected"].as_str().unwrap(), "{}", c["name"]);
            // docker-compose prints `$` escaped as `$$`.
            let dc = theirs["services"]["s"]["environment"][key.as_str()]
                .as_str()
                .map(|s| s.replace("$$", "$"))
                .unwrap_or_default();
            assert_eq!(
                mine, dc,
                "{}: docker-compose 1.29 says otherwise",
                c["name"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} cases checked");
}

/// On the remote backend the build context goes to the remote engine, the
/// image is built where it runs, and the stack is reached through `ajj
/// run`'s forwards.
#[test]
fn a_build_runs_on_the_remote_engine() {
    let Some(()) = env() else { return };
    let sshd = Sshd::start();
    let repo = TestRepo::new(Some(&format!(
        "{}\n[compose]\nfiles = [\"app/compose.yaml\"]\n",
        sshd.backend_toml("")
    )));
    let dockerfile = format!(
        "FROM aether-test/busybox:1\nRUN echo remote-{} > /id\nCOPY site /site\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/site\"]\n",
        std::process::id()
    );
    for (path, text) in [
        ("app/compose.yaml", BUILD_COMPOSE),
        ("app/Dockerfile", dockerfile.as_str()),
        ("site/index.html", "remote v1\n"),
    ] {
        let p = repo.main.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    repo.jj(&["commit", "-m", "remote build"]).success();
    repo.use_sshd(&sshd);
    let a = repo.add("a");
    assert_eq!(a["backend"], "docker-remote", "{a}");
    assert_eq!(built(&a), 1, "{a}");
    let tag = a["images_built"][0].as_str().unwrap().to_string();
    let got = repo
        .ajj_in(
            &repo.ws("a"),
            &[
                "run",
                "--",
                "sh",
                "-c",
                "curl -sf \"http://127.0.0.1:$WEB_PORT/index.html\"",
            ],
        )
        .success();
    assert_eq!(got.stdout, "remote v1\n");
    repo.ajj(&["workspace", "forget", "a"]).success();
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=a")
        .is_empty());
    remove_images(&[tag]);
}
