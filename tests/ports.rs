//! `[ports]`: ports for the user's own processes (a dev server, a
//! debugger), on real jj and Docker: each workspace gets its own, sticky,
//! bindable, never handed to a service or another workspace, released on
//! forget.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::TcpListener;

fn config() -> String {
    format!(
        "{}\n[ports]\ndev = {{}}\ndebug = {{}}\n\n[env]\nPUBLIC_URL = \"http://127.0.0.1:{{ports.dev}}/\"\n",
        busybox_web("")
    )
}

fn own(out: &Value, name: &str) -> u16 {
    out["ports"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no port {name} in {out}")) as u16
}

#[test]
fn eight_workspaces_get_eight_bindable_sticky_ports_released_on_forget() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&config()));
    let mut seen = BTreeSet::new();
    let mut service_ports = BTreeSet::new();
    let mut listeners = Vec::new();
    let mut first = None;
    for i in 0..8 {
        let name = format!("w{i}");
        let out = repo.add(&name);
        let vars = dotenv(&repo.ws(&name).join(".env"));
        let (dev, debug) = (own(&out, "dev"), own(&out, "debug"));
        assert_eq!(
            vars["DEV_PORT"],
            dev.to_string(),
            "{name}: .env and JSON agree"
        );
        assert_eq!(vars["DEBUG_PORT"], debug.to_string());
        assert_eq!(vars["PUBLIC_URL"], format!("http://127.0.0.1:{dev}/"));
        assert_eq!(out["variables"]["DEV_PORT"], dev.to_string());
        assert!(
            seen.insert(dev) && seen.insert(debug),
            "{name}: ports repeat: {seen:?}"
        );
        service_ports.insert(out["resources"]["web"]["external_port"].as_u64().unwrap() as u16);
        // Each workspace's dev server can run at once with the others'.
        listeners.push(
            TcpListener::bind(("127.0.0.1", dev))
                .unwrap_or_else(|e| panic!("{name}: DEV_PORT {dev} is not bindable: {e}")),
        );
        if i == 0 {
            first = Some((dev, debug));
        }
    }
    assert!(
        seen.is_disjoint(&service_ports),
        "a service got an own port: {seen:?} {service_ports:?}"
    );

    // Sticky: a pass keeps them, while the servers hold them.
    repo.ajj(&["reconcile"]).success();
    let status = repo
        .ajj_in(&repo.ws("w0"), &["status", "--json"])
        .success()
        .json();
    let (dev, debug) = first.unwrap();
    assert_eq!(own(&status, "dev"), dev, "{status}");
    assert_eq!(own(&status, "debug"), debug);
    assert_eq!(
        dotenv(&repo.ws("w0").join(".env"))["DEV_PORT"],
        dev.to_string()
    );
    let human = repo.ajj_in(&repo.ws("w0"), &["status"]).success().stdout;
    assert!(
        human.contains(&format!("127.0.0.1:{dev} (DEV_PORT)")),
        "{human}"
    );
    drop(listeners);

    // Forgotten: released, so a new workspace may get them.
    repo.ajj(&["workspace", "forget", "w0"]).success();
    let ledger =
        std::fs::read_to_string(repo.base.join("home/.local/state/aether/local-ports.json"))
            .unwrap_or_default();
    assert!(!ledger.contains(&format!("\"{dev}\"")), "{ledger}");
    let w1 = repo
        .ajj_in(&repo.ws("w1"), &["status", "--json"])
        .success()
        .json();
    assert!(
        ledger.contains(&format!("\"{}\"", own(&w1, "dev"))),
        "a live workspace's port stays reserved: {ledger}"
    );
}

#[test]
fn a_preferred_port_is_taken_when_free_and_another_given_with_a_warning() {
    let Some(()) = env() else { return };
    let preferred = free_port();
    let cfg = format!("[ports]\nweb = {{ preferred = {preferred} }}\n");
    let repo = TestRepo::new(Some(&cfg));
    let a = repo.add("a");
    assert_eq!(own(&a, "web"), preferred, "{a}");
    // A workspace with ports and no services still gets its .env.
    assert_eq!(
        dotenv(&repo.ws("a").join(".env"))["WEB_PORT"],
        preferred.to_string()
    );
    let b = repo.add("b");
    let other = own(&b, "web");
    assert_ne!(other, preferred, "two workspaces never share a port");
    let warnings = b["warnings"].to_string();
    assert!(
        warnings.contains(&format!("preferred {preferred} is taken")),
        "{b}"
    );
    // a keeps its port while something binds it (its own server).
    let _server = TcpListener::bind(("127.0.0.1", preferred)).unwrap();
    repo.ajj(&["reconcile"]).success();
    let again = repo
        .ajj_in(&repo.ws("a"), &["status", "--json"])
        .success()
        .json();
    assert_eq!(own(&again, "web"), preferred);
}

#[test]
fn a_port_that_clashes_with_a_service_variable_is_refused() {
    let Some(()) = env() else { return };
    let cfg = format!("{}\n[ports]\nweb = {{}}\n", busybox_web(""));
    let repo = TestRepo::new(Some(&cfg));
    let out = repo.ajj(&["workspace", "add", "../x", "--json"]).failure();
    assert_eq!(out.error_code(), "CONFIG_INVALID", "{}", out.stdout);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("WEB_PORT") && text.contains("ports.web"),
        "{text}"
    );
    assert!(!repo.ws("x").exists(), "the workspace is undone");
}
