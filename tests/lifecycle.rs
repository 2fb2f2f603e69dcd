//! The whole life of a workspace environment, on real jj, Docker, psql and curl.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn add_serves_postgres_and_http_and_env_agrees_everywhere() {
    let Some(()) = env() else { return };
    let config = format!("{}\n{}", busybox_web(""), postgres_db());
    let repo = TestRepo::new(Some(&config));
    let out = repo.add("feature-a");
    let root = repo.ws("feature-a");

    // The JSON shape agents rely on.
    assert_eq!(out["schema_version"], 1);
    assert_eq!(out["name"], "feature-a");
    assert_eq!(out["backend"], "docker-local");
    assert_eq!(out["workspace_root"], root.display().to_string());
    let db = &out["resources"]["db"];
    assert_eq!(db["internal_port"], 5432);
    assert_eq!(db["host"], "127.0.0.1");
    assert_eq!(db["state"], "running");
    assert_eq!(db["health"], "healthy");
    let db_port = db["external_port"].as_u64().unwrap();
    assert_eq!(db["ports"]["5432"], db_port);
    assert_eq!(
        db["connection_string"],
        format!("postgres://postgres:pass@127.0.0.1:{db_port}/postgres")
    );

    // Published on loopback only.
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{json .HostConfig.PortBindings}}",
            db["container"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    let bindings = String::from_utf8_lossy(&inspect.stdout);
    assert!(bindings.contains("\"HostIp\":\"127.0.0.1\""), "{bindings}");
    assert!(!bindings.contains("0.0.0.0"), "{bindings}");

    // .env: mode 0600, and exactly the variables the JSON reports.
    let env_path = root.join(".env");
    assert_eq!(
        std::fs::metadata(&env_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let vars = dotenv(&env_path);
    let json_vars: std::collections::BTreeMap<String, String> =
        serde_json::from_value(out["variables"].clone()).unwrap();
    assert_eq!(vars, json_vars);
    assert_eq!(vars["DB_PORT"], db_port.to_string());
    assert_eq!(
        vars["DATABASE_URL"],
        db["connection_string"].as_str().unwrap()
    );

    // A real client, through the variables in .env.
    let psql = Command::new("psql")
        .args([&vars["DATABASE_URL"], "-Atc", "select 40 + 2"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(
        curl(&vars["WEB_URL"]).as_deref().map(str::trim),
        Some("aether-test")
    );

    // `ajj run`: variables loaded, no shell, exit code passed through.
    let run = repo.ajj_in(
        &root,
        &[
            "run",
            "--",
            "psql",
            &vars["DATABASE_URL"],
            "-Atc",
            "select current_database()",
        ],
    );
    assert_eq!(run.success().stdout.trim(), "postgres");
    let run = repo.ajj_in(
        &root,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "test \"$DB_PORT\" = \"$1\" && exit 7",
            "sh",
            &db_port.to_string(),
        ],
    );
    assert_eq!(run.status.code(), Some(7), "{}", run.stderr);

    // Every parser reads the file the same way: dotenvy (above), python-dotenv,
    // Compose's --env-file, and POSIX sh. Each must run, and agree exactly.
    let python = |code: &str, input: Option<&[u8]>| -> BTreeMap<String, String> {
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", code])
            .arg(&env_path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.unwrap_or_default())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let py_vars = python(
        "import json,sys,dotenv; print(json.dumps(dotenv.dotenv_values(sys.argv[1])))",
        None,
    );
    assert_eq!(py_vars, vars, "python-dotenv");
    let sh = Command::new("sh")
        .args(["-c", "set -a; . ./.env; env"])
        .env_clear()
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        sh.status.success(),
        "{}",
        String::from_utf8_lossy(&sh.stderr)
    );
    let sh_vars: BTreeMap<String, String> = String::from_utf8_lossy(&sh.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| vars.contains_key(*k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(sh_vars, vars, "sh");
    let compose_file = repo.base.join("compose-check.yml");
    let env_block: String = vars
        .keys()
        .map(|k| format!("      {k}: \"${{{k}}}\"\n"))
        .collect();
    std::fs::write(
        &compose_file,
        format!(
            "version: '3'\nservices:\n  x:\n    image: {BUSYBOX}\n    environment:\n{env_block}"
        ),
    )
    .unwrap();
    let compose = Command::new("docker-compose")
        .arg("--env-file")
        .arg(&env_path)
        .arg("-f")
        .arg(&compose_file)
        .arg("config")
        .output()
        .unwrap();
    assert!(
        compose.status.success(),
        "docker-compose config failed: {}",
        String::from_utf8_lossy(&compose.stderr)
    );
    // Compose's own YAML, read by the YAML library Compose itself uses.
    let compose_vars = python(
        "import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)['services']['x']['environment']))",
        Some(&compose.stdout),
    );
    assert_eq!(compose_vars, vars, "docker-compose --env-file");

    // Status reads the same live state.
    let status = repo.ajj_in(&root, &["status", "--json"]).success().json();
    assert_eq!(status["resources"]["db"]["external_port"], db_port);
    assert_eq!(status["resources"]["web"]["state"], "running");

    // A second pass changes nothing.
    let again = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&again, "feature-a").is_empty(), "{again}");
}

#[test]
fn user_lines_in_env_survive_rewrites() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("w");
    let env_path = repo.ws("w").join(".env");
    let generated = std::fs::read_to_string(&env_path).unwrap();
    let mine_before = "# my own\nAPI_KEY=\"s3cr3t value\"\n";
    let mine_after = "TRAILING=1";
    std::fs::write(&env_path, format!("{mine_before}{generated}{mine_after}")).unwrap();

    // Damage the block by hand: the next pass restores it, keeping every user byte.
    let damaged = std::fs::read_to_string(&env_path)
        .unwrap()
        .replace("WEB_PORT='", "WEB_PORT='9");
    std::fs::write(&env_path, &damaged).unwrap();
    repo.ajj(&["reconcile"]).success();
    let text = std::fs::read_to_string(&env_path).unwrap();
    assert_eq!(text, format!("{mine_before}{generated}{mine_after}"));

    // `ajj run` loads the user's lines too.
    let run = repo
        .ajj_in(
            &repo.ws("w"),
            &[
                "run",
                "--",
                "sh",
                "-c",
                "echo \"$API_KEY|$TRAILING|$WEB_HOST\"",
            ],
        )
        .success();
    assert_eq!(run.stdout.trim(), "s3cr3t value|1|127.0.0.1");

    // A deleted .env is written again.
    std::fs::remove_file(&env_path).unwrap();
    repo.ajj(&["reconcile"]).success();
    assert_eq!(std::fs::read_to_string(&env_path).unwrap(), generated);
}

#[test]
fn config_change_recreates_only_the_drifted_service_and_keeps_its_port() {
    let Some(()) = env() else { return };
    let config = format!(
        "{}\n[services.other]\nimage = \"{BUSYBOX}\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"9090\", \"-h\", \"/www\"]\nports = [9090]\nstop_timeout = \"1s\"\n",
        busybox_web("")
    );
    let repo = TestRepo::new(Some(&config));
    let out = repo.add("w");
    let web = out["resources"]["web"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let other = out["resources"]["other"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let (web_id, other_id) = (container_id(&web), container_id(&other));
    let web_port = out["resources"]["web"]["external_port"].clone();
    let env_before = std::fs::read_to_string(repo.ws("w").join(".env")).unwrap();

    let toml = repo.ws("w").join("aether.toml");
    let edited = std::fs::read_to_string(&toml).unwrap().replace(
        "stop_timeout = \"1s\"\nconnection_string",
        "stop_timeout = \"1s\"\nenv = { MODE = \"changed\" }\nconnection_string",
    );
    std::fs::write(&toml, edited).unwrap();

    let dry = repo
        .ajj(&["reconcile", "--dry-run", "--json"])
        .success()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(container_id(&web), web_id, "dry run changed nothing");

    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    let actions = actions_for(&pass, "w");
    assert_eq!(actions.len(), 1, "{pass}");
    assert_eq!(actions[0]["action"], "recreate_container");
    assert_eq!(actions[0]["service"], "web");
    assert_eq!(actions[0]["reason"], "drifted");

    assert_ne!(container_id(&web), web_id, "web was recreated");
    assert_eq!(container_id(&other), other_id, "other was left alone");
    let env_out = Command::new("docker")
        .args(["inspect", "-f", "{{.Config.Env}}", &web])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&env_out.stdout).contains("MODE=changed"));
    let status = repo
        .ajj_in(&repo.ws("w"), &["status", "--json"])
        .success()
        .json();
    assert_eq!(status["resources"]["web"]["external_port"], web_port);
    assert_eq!(status["resources"]["web"]["config_current"], true);
    assert_eq!(
        std::fs::read_to_string(repo.ws("w").join(".env")).unwrap(),
        env_before
    );
    assert!(curl(&format!("http://127.0.0.1:{web_port}/")).is_some());

    // Idempotent: the next pass does nothing.
    let again = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&again, "w").is_empty(), "{again}");
}

#[test]
fn sticky_port_survives_a_stop_and_a_stolen_port_is_replaced() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let out = repo.add("w");
    let web = out["resources"]["web"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let port = out["resources"]["web"]["external_port"].as_u64().unwrap() as u16;

    // Stopped, then reconciled: same container, same port.
    assert!(Command::new("docker")
        .args(["stop", "-t", "0", &web])
        .output()
        .unwrap()
        .status
        .success());
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(
        pass["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "start_container"),
        "{pass}"
    );
    assert_eq!(
        dotenv(&repo.ws("w").join(".env"))["WEB_PORT"],
        port.to_string()
    );
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());

    // Removed behind Aether's back: recreated on the same port.
    assert!(Command::new("docker")
        .args(["rm", "-f", &web])
        .output()
        .unwrap()
        .status
        .success());
    repo.ajj(&["reconcile"]).success();
    assert_eq!(
        dotenv(&repo.ws("w").join(".env"))["WEB_PORT"],
        port.to_string()
    );
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());

    // Stolen while stopped: a new port, .env rewritten, and it says so.
    assert!(Command::new("docker")
        .args(["stop", "-t", "0", &web])
        .output()
        .unwrap()
        .status
        .success());
    let thief = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    let warnings = pass["warnings"].to_string();
    assert!(
        warnings.contains(&port.to_string()) && warnings.contains("taken"),
        "{pass}"
    );
    let new_port: u16 = dotenv(&repo.ws("w").join(".env"))["WEB_PORT"]
        .parse()
        .unwrap();
    assert_ne!(new_port, port);
    assert!(curl(&format!("http://127.0.0.1:{new_port}/")).is_some());
    drop(thief);
}

#[test]
fn sixteen_concurrent_adds_give_sixteen_distinct_environments() {
    let Some(()) = env() else { return };
    const N: usize = 16;
    let repo = TestRepo::new(Some(&busybox_web("")));
    let children: Vec<_> = (0..N)
        .map(|i| {
            let mut cmd = repo.ajj_cmd(
                &repo.main,
                &["workspace", "add", &format!("../p{i}"), "--json"],
            );
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut ports = std::collections::BTreeSet::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = Run::from(
            child.wait_with_output().unwrap(),
            "ajj",
            &["workspace", "add", &format!("../p{i}")],
        )
        .success();
        let json = out.json();
        assert_eq!(json["name"], format!("p{i}"));
        ports.insert(json["resources"]["web"]["external_port"].as_u64().unwrap());
        assert_eq!(
            dotenv(&repo.ws(&format!("p{i}")).join(".env"))["WEB_PORT"],
            json["resources"]["web"]["external_port"].to_string()
        );
    }
    assert_eq!(ports.len(), N, "every service got its own port: {ports:?}");
    for p in &ports {
        assert!(
            curl(&format!("http://127.0.0.1:{p}/")).is_some(),
            "port {p} serves"
        );
    }
    let containers = repo.docker_names("container", "label=dev.aether.service=web");
    assert_eq!(containers.len(), N, "{containers:?}");
    let mut names = repo.workspace_names();
    names.sort();
    assert_eq!(names.len(), N + 1, "{names:?}");
    // Consistent afterwards: a pass finds nothing to do for them (the
    // default workspace was never provisioned, so it gets its environment).
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    for i in 0..N {
        assert!(actions_for(&pass, &format!("p{i}")).is_empty(), "{pass}");
    }
}

#[test]
fn forget_removes_everything_of_the_workspace_and_nothing_else() {
    let Some(()) = env() else { return };
    let config = busybox_web("volumes = { cache = \"/cache\" }");
    let repo = TestRepo::new(Some(&config));
    let other_repo = TestRepo::new(Some(&config));
    repo.add("gone");
    repo.add("stays");
    other_repo.add("gone");

    // A foreign container and volume carrying no Aether labels.
    let label = format!("{TEST_LABEL}={}", std::process::id());
    let foreign = format!("foreign-{}", std::process::id());
    assert!(Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &foreign,
            "--label",
            &label,
            "--stop-timeout",
            "1",
            BUSYBOX,
            "sleep",
            "300"
        ])
        .output()
        .unwrap()
        .status
        .success());
    assert!(Command::new("docker")
        .args(["volume", "create", "--label", &label, &foreign])
        .output()
        .unwrap()
        .status
        .success());

    let ws = |n: &str| format!("label=dev.aether.workspace={n}");

    let out = repo
        .ajj(&["workspace", "forget", "gone", "--json"])
        .success()
        .json();
    assert_eq!(out["forgotten"][0]["name"], "gone");
    assert_eq!(
        out["forgotten"][0]["removed"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        out["forgotten"][0]["removed"]["volumes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        out["forgotten"][0]["removed"]["networks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Nothing of `gone` in this repo remains; the other repo's `gone` is whole.
    for kind in ["container", "volume", "network"] {
        assert_eq!(
            repo.docker_names(kind, &ws("gone")),
            Vec::<String>::new(),
            "{kind} left behind"
        );
        assert_eq!(
            other_repo.docker_names(kind, &ws("gone")).len(),
            1,
            "{kind}: the other repo's object survives"
        );
    }
    // ...while the sibling workspace, the foreign objects and the other repo are untouched.
    assert_eq!(repo.docker_names("container", &ws("stays")).len(), 1);
    assert_eq!(
        docker_names("container", &[&format!("name={foreign}")]).len(),
        1
    );
    assert_eq!(
        docker_names("volume", &[&format!("name={foreign}")]).len(),
        1
    );
    assert!(!repo.workspace_names().contains(&"gone".to_string()));
    // Its .env lost Aether's block.
    assert!(
        !repo.ws("gone").join(".env").exists()
            || !std::fs::read_to_string(repo.ws("gone").join(".env"))
                .unwrap()
                .contains("WEB_PORT")
    );

    // A full reconcile also leaves the foreign objects alone.
    repo.ajj(&["reconcile"]).success();
    assert_eq!(
        docker_names("container", &[&format!("name={foreign}")]).len(),
        1
    );
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
    let _ = Command::new("docker")
        .args(["volume", "rm", &foreign])
        .output();
}

#[test]
fn reconcile_collects_a_deleted_workspace_directory_and_skips_broken_configs() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("deleted");
    repo.add("broken");
    std::fs::remove_dir_all(repo.ws("deleted")).unwrap();
    std::fs::write(repo.ws("broken").join("aether.toml"), "[services.web\n").unwrap();

    let pass = repo.ajj(&["reconcile", "--json"]).failure().json();
    assert_eq!(pass["error"]["code"], "CONFIG_INVALID");
    assert_eq!(pass["errors"][0]["workspace"], "broken");
    let ws = |n: &str| format!("label=dev.aether.workspace={n}");
    assert!(repo.docker_names("container", &ws("deleted")).is_empty());
    assert!(repo.docker_names("network", &ws("deleted")).is_empty());
    // The broken workspace keeps its running service: a typo never costs data.
    assert_eq!(repo.docker_names("container", &ws("broken")).len(), 1);
}

/// `AETHER_NETWORK_POOL`: each workspace network gets a free /27 of it,
/// skipping ranges other networks hold; a full pool is a clear error.
#[test]
fn network_pool_gives_each_workspace_a_free_subnet() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    // A /26 holds two /27s; a foreign network takes one of them.
    let base = 200 + (std::process::id() % 50) as u8;
    let pool = format!("10.{base}.0.0/26");
    let foreign = format!("foreign-net-{}", std::process::id());
    let made = Command::new("docker")
        .args([
            "network",
            "create",
            "--subnet",
            &format!("10.{base}.0.32/27"),
        ])
        .args([
            "--label",
            &format!("{TEST_LABEL}={}", std::process::id()),
            &foreign,
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    repo.set_env("AETHER_NETWORK_POOL", &pool);

    let added = repo.add("a");
    assert_eq!(added["resources"]["web"]["state"], "running");
    let net = repo.docker_names("network", "label=dev.aether.workspace=a");
    let subnet = Command::new("docker")
        .args([
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            &net[0],
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&subnet.stdout).trim(),
        format!("10.{base}.0.0/27")
    );
    assert!(curl(&format!(
        "http://127.0.0.1:{}/",
        added["resources"]["web"]["external_port"]
    ))
    .is_some());

    let full = repo.ajj(&["workspace", "add", "../b", "--json"]).failure();
    assert_eq!(
        full.error_code(),
        "NETWORK_POOL_EXHAUSTED",
        "{}",
        full.stdout
    );
    let _ = Command::new("docker")
        .args(["network", "rm", &foreign])
        .output();
}
