//! The integrations in hooks/: jj aliases through `jj util exec`, the bash,
//! zsh and fish hooks, and `ajj hooks install` leaving the user's config intact.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn shell(repo: &TestRepo, program: &str, script: &str) -> String {
    shell_in(
        repo,
        &repo.base,
        program,
        script,
        &[("WEB_PORT", "users-own")],
    )
}

#[test]
fn shell_hooks_load_on_cd_and_restore_on_leaving() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("s");
    let ws = repo.ws("s");
    let port = dotenv(&ws.join(".env"))["WEB_PORT"].clone();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks");
    let ws = ws.display();
    let expected = format!("in={port}\nout=users-own\n");

    // bash runs $PROMPT_COMMAND before each prompt; a script has no prompt,
    // so it runs it where the prompts would be (tests/trust.rs does the same
    // with a real prompt on a terminal).
    let bash = format!(
        "eval \"$(ajj hooks init bash)\"; cd {ws}; eval \"$PROMPT_COMMAND\"; echo in=$WEB_PORT; cd /; eval \"$PROMPT_COMMAND\"; echo out=$WEB_PORT"
    );
    assert_eq!(shell(&repo, "bash", &bash), expected);
    // The shipped file is what `ajj hooks init bash` prints.
    assert_eq!(
        repo.ajj(&["hooks", "init", "bash"]).success().stdout,
        std::fs::read_to_string(hooks.join("ajj.bash")).unwrap()
    );
    // zsh runs the hook on cd itself (chpwd).
    let zsh = format!(
        "eval \"$(ajj hooks init zsh)\"; cd {ws}; echo in=$WEB_PORT; cd /; echo out=$WEB_PORT"
    );
    assert_eq!(shell(&repo, "zsh", &zsh), expected);
    // fish too (--on-variable PWD).
    let fish = format!(
        "ajj hooks init fish | source; cd {ws}; echo in=$WEB_PORT; cd /; echo out=$WEB_PORT"
    );
    assert_eq!(shell(&repo, "fish", &fish), expected);
}

#[test]
fn jj_aliases_route_through_ajj() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.ajj(&["reconcile"]).success();
    let mut install = repo.ajj_cmd(&repo.main, &["hooks", "install", "jj", "--json"]);
    install.env("PATH", path_with_ajj());
    let out = Run::from(install.output().unwrap(), "ajj", &["hooks", "install"]).success();
    assert_eq!(
        out.json()["installed"][0]["added"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let jj = |args: &[&str]| {
        let mut cmd = Command::new("jj");
        repo.hermetic(&mut cmd);
        cmd.env("PATH", path_with_ajj())
            .args(args)
            .current_dir(&repo.main);
        Run::from(cmd.output().unwrap(), "jj", args)
    };
    jj(&["wsa", "../viajj"]).success();
    let ws = repo.ws("viajj");
    let port = dotenv(&ws.join(".env"))["WEB_PORT"].clone();
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());

    let status = jj(&["wss", "--json"]).success();
    assert_eq!(status.json()["name"], "default");
    let ran = jj(&["wsrun", "--", "sh", "-c", "echo $WEB_PORT"]).success();
    assert_eq!(
        ran.stdout.trim(),
        dotenv(&repo.main.join(".env"))["WEB_PORT"]
    );

    jj(&["wsf", "viajj"]).success();
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=viajj")
        .is_empty());
}

#[test]
fn install_keeps_the_users_config_and_is_idempotent() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let home = repo.base.join("home");
    std::fs::write(home.join(".bashrc"), "alias ll='ls -l'\n# mine").unwrap();
    repo.jj(&["config", "set", "--user", "aliases.wsa", "[\"log\"]"])
        .success();

    let install = || {
        repo.ajj(&["hooks", "install", "bash", "zsh", "fish", "jj", "--json"])
            .success()
            .json()
    };
    let first = install();
    let by_target = |v: &serde_json::Value, t: &str| {
        v["installed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_target(&first, "bash")["status"], "installed");
    assert_eq!(by_target(&first, "jj")["skipped_existing"][0], "wsa");
    let bashrc = std::fs::read_to_string(home.join(".bashrc")).unwrap();
    assert!(bashrc.starts_with("alias ll='ls -l'\n# mine\n# >>> ajj hooks >>>\n"));
    assert!(home.join(".zshrc").exists());
    assert!(home.join(".config/fish/conf.d/ajj.fish").exists());
    // The user's own alias survives.
    let wsa = repo.jj(&["config", "get", "aliases.wsa"]).success();
    assert!(wsa.stdout.contains("log"));

    let second = install();
    for t in ["bash", "zsh", "fish", "jj"] {
        assert_eq!(by_target(&second, t)["status"], "unchanged", "{t}");
    }
    assert_eq!(
        std::fs::read_to_string(home.join(".bashrc")).unwrap(),
        bashrc
    );
}

#[test]
fn env_prints_what_run_loads() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("[env]\nAPP_URL = \"{web.url}x\"\n")));
    repo.ajj(&["reconcile"]).success();
    let env_path = repo.main.join(".env");
    let text = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(&env_path, format!("MINE='my own'\n{text}")).unwrap();

    // What `ajj run` puts into a command's environment, read by the command.
    let ran = repo.ajj(&["run", "--", "env"]).success();
    let run_env: std::collections::BTreeMap<String, String> = ran
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let v = repo.ajj(&["env", "--json"]).success().json();
    let listed = v["variables"].as_object().unwrap();
    // WEB_HOST, WEB_PORT, WEB_URL, APP_URL and the user's MINE.
    assert_eq!(listed.len(), 5, "{v}");
    for (k, value) in listed {
        assert_eq!(run_env.get(k).map(String::as_str), value.as_str(), "{k}");
    }
    let plain = repo.ajj(&["env"]).success();
    let plain: Vec<String> = plain.stdout.lines().map(String::from).collect();
    let from_json: Vec<String> = listed
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let mut sorted = plain.clone();
    sorted.sort();
    assert_eq!(sorted, from_json);
}
