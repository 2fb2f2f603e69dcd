//! `aether.keep-forgotten-data`: a forgotten workspace's volumes kept for a
//! window, so that `jj undo` brings the data back; real jj, Docker,
//! PostgreSQL and psql.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Runs SQL through the workspace's own DATABASE_URL; `None` when psql fails.
fn sql(ws: &Path, query: &str) -> Option<String> {
    let vars = dotenv(&ws.join(".env"));
    let out = Command::new("psql")
        .args([&vars["DATABASE_URL"], "-Atc", query])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn volumes_of(repo: &TestRepo, ws: &str) -> Vec<String> {
    repo.docker_names("volume", &format!("label=dev.aether.workspace={ws}"))
}

/// A postgres workspace `w1` holding one row, with the window set to `window`.
fn workspace_with_a_row(window: Option<&str>) -> (TestRepo, std::path::PathBuf) {
    let repo = TestRepo::new(Some(&postgres_db()));
    if let Some(w) = window {
        repo.jj(&["config", "set", "--repo", "aether.keep-forgotten-data", w])
            .success();
    }
    repo.add("w1");
    let ws = repo.ws("w1");
    sql(
        &ws,
        "create table t (v text); insert into t values ('precious')",
    )
    .unwrap();
    (repo, ws)
}

#[test]
fn with_a_window_undo_brings_the_rows_back_on_the_same_port() {
    let Some(()) = env() else { return };
    let (repo, ws) = workspace_with_a_row(Some("1h"));
    let port = dotenv(&ws.join(".env"))["DB_PORT"].clone();
    let volume = volumes_of(&repo, "w1");
    assert_eq!(volume.len(), 1);

    let out = repo
        .ajj(&["workspace", "forget", "w1", "--json"])
        .success()
        .json();
    let data = &out["forgotten"][0]["data"];
    assert_eq!(data[0]["volume"], volume[0].as_str(), "{out}");
    assert_eq!(data[0]["deleted"], false);
    assert!(
        data[0]["kept_until"].as_str().unwrap().ends_with('Z'),
        "{out}"
    );
    assert!(out["forgotten"][0]["removed"]["volumes"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=w1")
        .is_empty());
    assert_eq!(volumes_of(&repo, "w1"), volume, "the data stays");

    let status = repo.ajj(&["status", "--all", "--json"]).success().json();
    let kept = &status["kept"][0];
    assert_eq!(kept["volume"], volume[0].as_str(), "{status}");
    assert_eq!(kept["workspace"], "w1");
    assert_eq!(kept["expired"], false);
    assert_eq!(kept["kept_until"], data[0]["kept_until"]);
    // A later pass keeps it too: the window has not ended.
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&pass, "w1").is_empty(), "{pass}");
    assert_eq!(volumes_of(&repo, "w1"), volume);

    repo.jj(&["undo"]).success();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    let acts = actions_for(&pass, "w1");
    assert!(
        acts.iter()
            .any(|a| a["action"] == "reclaim_volume" && a["volume"] == volume[0].as_str()),
        "{pass}"
    );
    assert_eq!(dotenv(&ws.join(".env"))["DB_PORT"], port, "the same port");
    assert_eq!(sql(&ws, "select v from t").as_deref(), Some("precious"));

    // Taken back: a later forget starts a new window, it does not inherit the old one.
    let again = repo
        .ajj(&["workspace", "forget", "w1", "--json", "--purge"])
        .success()
        .json();
    assert_eq!(again["forgotten"][0]["data"][0]["deleted"], true, "{again}");
    assert!(
        volumes_of(&repo, "w1").is_empty(),
        "--purge deletes at once"
    );
}

#[test]
fn without_a_window_the_data_goes_with_forget_and_undo_brings_an_empty_service() {
    let Some(()) = env() else { return };
    let (repo, ws) = workspace_with_a_row(None);
    let out = repo
        .ajj(&["workspace", "forget", "w1", "--json"])
        .success()
        .json();
    assert_eq!(out["forgotten"][0]["data"][0]["deleted"], true, "{out}");
    assert!(volumes_of(&repo, "w1").is_empty());
    repo.jj(&["undo"]).success();
    repo.ajj(&["reconcile"]).success();
    assert_eq!(
        sql(&ws, "select 1").as_deref(),
        Some("1"),
        "the service is back"
    );
    assert_eq!(
        sql(&ws, "select v from t"),
        None,
        "but empty, as README says"
    );
    repo.ajj(&["workspace", "forget", "w1"]).success();
}

#[test]
fn past_its_window_a_pass_deletes_the_volume_and_nothing_else() {
    let Some(()) = env() else { return };
    let (repo, _ws) = workspace_with_a_row(Some("2s"));
    repo.add("other");
    let other = volumes_of(&repo, "other");
    repo.ajj(&["workspace", "forget", "w1"]).success();
    assert_eq!(volumes_of(&repo, "w1").len(), 1);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    let acts = actions_for(&pass, "w1");
    assert_eq!(acts.len(), 1, "{pass}");
    assert_eq!(acts[0]["action"], "remove_volume");
    assert_eq!(acts[0]["reason"], "expired");
    assert!(volumes_of(&repo, "w1").is_empty());
    assert_eq!(
        volumes_of(&repo, "other"),
        other,
        "the other workspace keeps its data"
    );
    assert!(actions_for(&pass, "other").is_empty(), "{pass}");
    repo.ajj(&["workspace", "forget", "other"]).success();
}

#[test]
fn the_watcher_keeps_the_data_of_a_plain_jj_forget_and_takes_it_back_on_undo() {
    let Some(()) = env() else { return };
    let (repo, ws) = workspace_with_a_row(Some("1h"));
    let port = dotenv(&ws.join(".env"))["DB_PORT"].clone();
    let mut w = repo.watch(&[], &[]);
    w.wait_for("the first pass", 30, |e| e["event"] == "pass_finished");
    repo.jj(&["workspace", "forget", "w1"]).success();
    let kept = w.wait_for("the volume kept", 30, |e| {
        e["event"] == "action" && e["action"] == "keep_volume"
    });
    assert!(kept["kept_until"].is_string(), "{kept}");
    eventually("the container gone", 10, || {
        repo.docker_names("container", "label=dev.aether.workspace=w1")
            .is_empty()
    });
    assert_eq!(volumes_of(&repo, "w1").len(), 1);
    repo.jj(&["undo"]).success();
    w.wait_for("the volume taken back", 30, |e| {
        e["event"] == "action" && e["action"] == "reclaim_volume"
    });
    eventually("the rows are back", 30, || {
        sql(&ws, "select v from t").as_deref() == Some("precious")
    });
    assert_eq!(dotenv(&ws.join(".env"))["DB_PORT"], port);
    w.signal("TERM");
    assert!(w.wait_exit(20).success());
    repo.ajj(&["workspace", "forget", "w1", "--purge"])
        .success();
}

#[test]
fn a_window_that_is_not_a_duration_is_a_coded_error_and_nothing_is_forgotten() {
    let Some(()) = env() else { return };
    let (repo, _ws) = workspace_with_a_row(Some("forever"));
    let out = repo.ajj(&["workspace", "forget", "w1", "--json"]).failure();
    assert_eq!(out.error_code(), "CONFIG_INVALID");
    let err = &out.json()["error"];
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("aether.keep-forgotten-data"),
        "{err}"
    );
    assert!(err["hint"].as_str().unwrap().contains("7d"), "{err}");
    assert!(
        repo.workspace_names().contains(&"w1".to_string()),
        "jj still has it"
    );
    assert_eq!(volumes_of(&repo, "w1").len(), 1);
    repo.jj(&["config", "set", "--repo", "aether.keep-forgotten-data", "0"])
        .success();
    repo.ajj(&["workspace", "forget", "w1"]).success();
    assert!(volumes_of(&repo, "w1").is_empty());
}

#[test]
fn the_watcher_deletes_kept_data_when_its_window_ends_without_any_other_trigger() {
    let Some(()) = env() else { return };
    let (repo, _ws) = workspace_with_a_row(Some("3s"));
    let mut w = repo.watch(&[], &[]);
    w.wait_for("the first pass", 30, |e| e["event"] == "pass_finished");
    repo.jj(&["workspace", "forget", "w1"]).success();
    w.wait_for("the volume kept", 30, |e| {
        e["event"] == "action" && e["action"] == "keep_volume"
    });
    w.wait_for("a pass when the window ends", 20, |e| {
        e["event"] == "pass_started" && e["cause"] == "data_expired"
    });
    let removed = w.wait_for("the volume removed", 10, |e| {
        e["event"] == "action" && e["action"] == "remove_volume"
    });
    assert_eq!(removed["reason"], "expired", "{removed}");
    assert!(volumes_of(&repo, "w1").is_empty());
    w.signal("TERM");
    assert!(w.wait_exit(20).success());
}
