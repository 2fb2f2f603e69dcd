//! `ajj watch` against real jj and Docker: environments follow plain `jj`
//! commands, `rm -rf`, removed and crashing containers, and a backend that
//! goes away and comes back.

mod common;

use common::*;
use std::path::Path;

fn web_with_volume() -> String {
    busybox_web("volumes = { data = \"/data\" }")
}

/// Every container, volume and network made for the workspace at `root`.
fn objects_at(repo: &TestRepo, root: &Path) -> Vec<String> {
    let filter = format!("label=dev.aether.root={}", root.display());
    ["container", "volume", "network"]
        .iter()
        .flat_map(|k| repo.docker_names(k, &filter))
        .collect()
}

fn port_of(root: &Path) -> Option<String> {
    root.join(".env")
        .exists()
        .then(|| dotenv(&root.join(".env")).get("WEB_PORT").cloned())
        .flatten()
}

#[test]
fn plain_jj_add_rename_forget_undo_and_rm_rf_are_followed() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&web_with_volume()));
    let mut w = repo.watch(&[], &[]);
    let ws = repo.ws("feat");

    // jj workspace add, typed by hand.
    repo.jj(&["workspace", "add", "../feat"]).success();
    eventually("feat's .env has a port that answers", 30, || {
        port_of(&ws).is_some_and(|p| curl(&format!("http://127.0.0.1:{p}/")).is_some())
    });
    let port = port_of(&ws).unwrap();
    // Woken by the jj operation itself (timing is for bench/, not tests).
    w.wait_for("a pass caused by the jj operation", 10, |e| {
        pass_caused_by(e, "jj_operation")
    });

    // Data in the volume, to prove a rename keeps it.
    let container = repo.docker_names("container", "label=dev.aether.workspace=feat");
    assert_eq!(container.len(), 1);
    let put = std::process::Command::new("docker")
        .args([
            "exec",
            &container[0],
            "sh",
            "-c",
            "echo precious > /data/file",
        ])
        .status()
        .unwrap();
    assert!(put.success());

    // jj workspace rename: same volume, same port.
    repo.jj_in(&ws, &["workspace", "rename", "renamed"])
        .success();
    w.wait_for("the adoption", 30, |e| {
        e["action"] == "adopt_workspace" && e["workspace"] == "renamed" && e["from"] == "feat"
    });
    eventually("a container under the new name", 30, || {
        repo.docker_names("container", "label=dev.aether.workspace=renamed")
            .len()
            == 1
            && repo
                .docker_names("container", "label=dev.aether.workspace=feat")
                .is_empty()
    });
    let renamed = repo.docker_names("container", "label=dev.aether.workspace=renamed");
    eventually("the renamed service answers on the old port", 30, || {
        curl(&format!("http://127.0.0.1:{port}/")).is_some()
    });
    assert_eq!(port_of(&ws).as_deref(), Some(port.as_str()));
    let data = std::process::Command::new("docker")
        .args(["exec", &renamed[0], "cat", "/data/file"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&data.stdout).trim(), "precious");

    // jj workspace forget: everything goes, within seconds.
    repo.jj(&["workspace", "forget", "renamed"]).success();
    eventually("nothing left of the forgotten workspace", 10, || {
        objects_at(&repo, &ws).is_empty()
    });

    // jj undo of the forget: the environment comes back.
    repo.jj(&["undo"]).success();
    eventually("the environment is back after jj undo", 30, || {
        port_of(&ws).is_some_and(|p| curl(&format!("http://127.0.0.1:{p}/")).is_some())
    });

    // rm -rf: removed at once, by default.
    rm_rf(&ws);
    eventually("nothing left after rm -rf", 10, || {
        objects_at(&repo, &ws).is_empty()
    });
    // The main workspace was never disturbed.
    assert_eq!(
        repo.docker_names("container", "label=dev.aether.workspace=default")
            .len(),
        1
    );
    // Every event the watcher printed, not only those waited for: stop it
    // and read to its last line.
    w.signal("TERM");
    w.wait_for("the watcher to stop", 15, |e| e["event"] == "stopped");
    let bad: Vec<_> = w
        .seen
        .iter()
        .filter(|e| e["event"] == "error" || e["event"] == "crash_loop")
        .collect();
    assert!(
        bad.is_empty(),
        "{bad:?}\nevery event:\n{}",
        w.seen
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_burst_of_five_plain_adds_converges_to_five_environments() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let _w = repo.watch(&[], &[]);
    let names = ["b1", "b2", "b3", "b4", "b5"];
    for n in names {
        repo.jj(&["workspace", "add", &format!("../{n}")]).success();
    }
    eventually(
        "five environments with distinct answering ports",
        60,
        || {
            let ports: std::collections::BTreeSet<String> =
                names.iter().filter_map(|n| port_of(&repo.ws(n))).collect();
            ports.len() == 5
                && ports
                    .iter()
                    .all(|p| curl(&format!("http://127.0.0.1:{p}/")).is_some())
        },
    );
    for n in names {
        assert_eq!(
            repo.docker_names("container", &format!("label=dev.aether.workspace={n}"))
                .len(),
            1,
            "{n}"
        );
    }
}

#[test]
fn a_second_watcher_is_refused_and_sigterm_exits_cleanly() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let mut w = repo.watch(&[], &[]);
    let second = repo.ajj(&["watch", "--json"]).failure();
    assert_eq!(second.error_code(), "WATCHER_RUNNING");
    let err = &second.json()["error"];
    assert_eq!(err["details"]["pid"], w.child.id());
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains(&w.child.id().to_string()));

    w.signal("TERM");
    let status = w.wait_exit(10);
    assert_eq!(status.code(), Some(0), "{status:?}");
    w.wait_for("the stopped event", 5, |e| {
        e["event"] == "stopped" && e["signal"] == "SIGTERM"
    });
    // The lock went with it: a new watcher starts.
    let mut again = repo.watch(&[], &[]);
    again.signal("INT");
    assert_eq!(again.wait_exit(10).code(), Some(0));
}

#[test]
fn a_bad_config_is_reported_and_survived_and_damage_is_repaired() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("a");
    let mut w = repo.watch(&[], &[]);
    let ws = repo.ws("a");
    // Ids, not names: a recreated container keeps its name.
    let ids = || -> Vec<String> {
        repo.docker_names("container", "label=dev.aether.workspace=a")
            .iter()
            .map(|n| container_id(n))
            .collect()
    };
    let before = ids();
    assert_eq!(before.len(), 1);

    std::fs::write(ws.join("aether.toml"), "[services.web\nimage = ").unwrap();
    let err = w.wait_for("a CONFIG_INVALID error for a", 10, |e| {
        e["event"] == "error" && e["workspace"] == "a"
    });
    assert_eq!(err["code"], "CONFIG_INVALID", "{err}");
    w.wait_for("that pass to finish", 10, |e| e["event"] == "pass_finished");
    // The typo costs nothing: the environment stays as it was.
    assert_eq!(ids(), before);
    // Reported once, not on every pass: the next pass, caused by a jj
    // operation, reports nothing new.
    let from = w.seen.len();
    repo.jj(&["new"]).success();
    w.wait_for("a pass for the jj operation", 10, |e| {
        pass_caused_by(e, "jj_operation")
    });
    w.wait_for("that pass to finish", 10, |e| e["event"] == "pass_finished");
    let errors: Vec<_> = w.seen[from..]
        .iter()
        .filter(|e| e["event"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ids(), before);

    std::fs::write(ws.join("aether.toml"), busybox_web("")).unwrap();
    w.wait_for("a to recover", 10, |e| {
        e["event"] == "recovered" && e["workspace"] == "a"
    });

    // A deleted .env comes back; a hand-edited block is put right.
    let port = port_of(&ws).unwrap();
    std::fs::remove_file(ws.join(".env")).unwrap();
    eventually(".env restored", 10, || {
        port_of(&ws).as_deref() == Some(port.as_str())
    });
    let text = std::fs::read_to_string(ws.join(".env")).unwrap();
    std::fs::write(
        ws.join(".env"),
        format!("MINE=1\n{}", text.replace(&port, "1")),
    )
    .unwrap();
    eventually("block repaired, user line kept", 10, || {
        let vars = dotenv(&ws.join(".env"));
        vars.get("WEB_PORT") == Some(&port) && vars.get("MINE").map(String::as_str) == Some("1")
    });
}

#[test]
fn removed_containers_come_back_and_a_crash_loop_is_reported_with_backoff() {
    let Some(()) = env() else { return };
    let crashing = format!(
        "{}\n[services.bad]\nimage = \"{BUSYBOX}\"\ncommand = [\"sh\", \"-c\", \"echo dying; exit 3\"]\nstop_timeout = \"1s\"\nready_timeout = \"3s\"\n",
        busybox_web("")
    );
    let repo = TestRepo::new(Some(&busybox_web("")));
    // A neighbour in another workspace, which must carry on throughout.
    repo.add("neighbour");
    // The longest hold, shortened so that the cap is reached within the test.
    let mut w = repo.watch(&[], &[("AETHER_CRASH_HOLD_MAX", "3s")]);
    let port = port_of(&repo.main).unwrap();

    // docker rm -f behind Aether's back: recreated on the same port.
    let c = repo.docker_names("container", "label=dev.aether.service=web");
    std::process::Command::new("docker")
        .args(["rm", "-f", &c[0]])
        .output()
        .unwrap();
    w.wait_for("the recreation", 15, |e| {
        e["action"] == "create_container" && e["service"] == "web"
    });
    eventually("web answers again on its port", 15, || {
        curl(&format!("http://127.0.0.1:{port}/")).is_some()
    });

    // A service that keeps exiting: reported as a crash loop, then held.
    std::fs::write(repo.main.join("aether.toml"), crashing).unwrap();
    let cl = w.wait_for("a crash loop report", 60, |e| e["event"] == "crash_loop");
    assert_eq!(cl["service"], "bad");
    assert!(cl["hold_ms"].as_u64().unwrap() >= 2000);
    assert!(
        cl["logs"].as_str().unwrap_or_default().contains("dying"),
        "{cl}"
    );
    let p = w.wait_for("a pass holding the workspace", 30, |e| {
        e["event"] == "pass_started"
            && e["held"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| x == "default"))
    });
    assert!(p.is_object());
    // The healthy service is untouched by its neighbour's crash loop.
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some());
    // Another workspace carries on while this one is held: its removed
    // container comes back on its port.
    let neighbour = repo.ws("neighbour");
    let n_port = port_of(&neighbour).unwrap();
    let n = repo.docker_names("container", "label=dev.aether.workspace=neighbour");
    assert!(std::process::Command::new("docker")
        .args(["rm", "-f", &n[0]])
        .output()
        .unwrap()
        .status
        .success());
    w.wait_for("the neighbour's recreation during the hold", 15, |e| {
        e["action"] == "create_container" && e["workspace"] == "neighbour"
    });
    eventually("the neighbour answers again", 15, || {
        curl(&format!("http://127.0.0.1:{n_port}/")).is_some()
    });
    // A loop that goes on is held for longer each time.
    let first = cl["hold_ms"].as_u64().unwrap();
    let next = w.wait_for("a second crash loop report", 90, |e| {
        e["event"] == "crash_loop" && e["workspace"] == "default"
    });
    let second = next["hold_ms"].as_u64().unwrap();
    // 2 s, then twice that, capped at the longest hold.
    assert_eq!(
        (first, second),
        (2000, 3000),
        "the hold grows up to its cap"
    );
    let third = w.wait_for("a third crash loop report", 90, |e| {
        e["event"] == "crash_loop" && e["workspace"] == "default"
    });
    assert_eq!(third["hold_ms"], 3000, "the hold stays at its cap");
}

#[test]
fn docker_going_away_is_reported_and_the_watcher_reconnects() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let proxy = SocketProxy::start(&repo.base.join("docker.sock"));
    let host = format!("unix://{}", proxy.path.display());
    let mut w = repo.watch(&[], &[("DOCKER_HOST", &host)]);
    let port = port_of(&repo.main).unwrap();

    proxy.set_up(false);
    w.wait_for("backend_unreachable", 15, |e| {
        e["event"] == "backend_unreachable"
    });
    // Meanwhile the container goes; the watcher cannot know yet.
    let c = repo.docker_names("container", "label=dev.aether.service=web");
    std::process::Command::new("docker")
        .args(["rm", "-f", &c[0]])
        .output()
        .unwrap();
    proxy.set_up(true);
    w.wait_for("backend_reconnected", 30, |e| {
        e["event"] == "backend_reconnected"
    });
    eventually("web is back on its port", 30, || {
        curl(&format!("http://127.0.0.1:{port}/")).is_some()
    });
    assert!(w.child.try_wait().unwrap().is_none(), "watcher exited");
}

#[test]
fn the_missing_root_policy_can_keep_an_environment() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("k");
    let root = repo.ws("k");
    std::fs::remove_dir_all(&root).unwrap();
    // The repo's jj setting keeps it...
    repo.jj(&["config", "set", "--repo", "aether.on-missing-root", "keep"])
        .success();
    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    assert!(actions_for(&pass, "k").is_empty(), "{pass}");
    assert_eq!(objects_at(&repo, &root).len(), 2);
    // ...a bad value deletes nothing and says so...
    repo.jj(&[
        "config",
        "set",
        "--repo",
        "aether.on-missing-root",
        "sometimes",
    ])
    .success();
    let bad = repo.ajj(&["reconcile", "--json"]).failure();
    assert_eq!(bad.error_code(), "CONFIG_INVALID");
    assert_eq!(objects_at(&repo, &root).len(), 2);
    // ...and the flag overrides it.
    repo.ajj(&["reconcile", "--on-missing-root", "remove"])
        .success();
    assert!(objects_at(&repo, &root).is_empty());
}

/// A unix-socket proxy to the real Docker socket that can be switched off,
/// cutting every open connection: Docker going away, without stopping the
/// shared engine.
struct SocketProxy {
    path: std::path::PathBuf,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl SocketProxy {
    fn start(path: &Path) -> Self {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        let listener = UnixListener::bind(path).unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<UnixStream>::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        // In front of whichever engine the tests use (Docker, or Podman).
        let engine_socket = real_docker_host()
            .strip_prefix("unix://")
            .expect("the engine is reached over a Unix socket")
            .to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees a closed connection
                }
                let Ok(server) = UnixStream::connect(&engine_socket) else {
                    continue;
                };
                {
                    let mut c = conns2.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SocketProxy {
            path: path.to_path_buf(),
            up,
            conns,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            for c in self.conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// The watcher's `warning` event: a sticky port another program took while
/// the service was stopped is re-picked, `.env` rewritten, and it says so.
#[test]
fn a_port_taken_while_stopped_is_re_picked_with_a_warning() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.ajj(&["reconcile"]).success();
    let port = port_of(&repo.main).unwrap();
    let c = repo.docker_names("container", "label=dev.aether.workspace=default");
    assert!(std::process::Command::new("docker")
        .args(["stop", "-t", "1", &c[0]])
        .output()
        .unwrap()
        .status
        .success());
    let thief = std::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    let mut w = repo.watch(&[], &[]);
    let warning = w
        .seen
        .iter()
        .find(|e| e["event"] == "warning")
        .cloned()
        .unwrap_or_else(|| panic!("no warning: {:?}", w.seen));
    assert!(
        warning["message"].as_str().unwrap().contains(&port),
        "{warning}"
    );
    let new_port = port_of(&repo.main).unwrap();
    assert_ne!(new_port, port);
    eventually("web answers on its new port", 15, || {
        curl(&format!("http://127.0.0.1:{new_port}/")).is_some()
    });
    drop(thief);
    w.drain();
}

/// The jj on PATH, as `(major, minor)`.
fn jj_version() -> (u32, u32) {
    let out = std::process::Command::new("jj")
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// In a colocated repo (what `jj git init` makes), jj 0.46 makes every
/// plain `jj workspace add` a Git worktree. The watcher follows such a
/// workspace like any other, through `jj workspace forget`, the new `jj
/// workspace remove` and `rm -rf`; `ajj workspace add` makes a plain
/// workspace, which registers nothing with Git. No worktree entry is left
/// by anything Aether does. Under 0.45 the same runs, without `remove`.
#[test]
fn colocated_worktrees_are_followed_and_none_is_left_stale() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&web_with_volume()));
    assert!(repo.main.join(".git").is_dir(), "jj git init colocates");
    let worktrees = jj_version() >= (0, 46);
    let mut w = repo.watch(&[], &[]);

    // ajj's own add: plain, nothing registered with Git.
    repo.add("mine");
    assert!(!repo.ws("mine").join(".git").exists());
    assert_eq!(git_worktrees(&repo), Vec::<String>::new());

    for (i, how) in ["forget", "remove", "rm -rf"].iter().enumerate() {
        if *how == "remove" && !worktrees {
            continue; // `jj workspace remove` came with 0.46
        }
        let name = format!("plain{i}");
        let ws = repo.ws(&name);
        repo.jj(&["workspace", "add", &format!("../{name}")])
            .success();
        assert_eq!(ws.join(".git").is_file(), worktrees, "{how}: worktree?");
        eventually(&format!("{how}: the environment answers"), 30, || {
            port_of(&ws).is_some_and(|p| curl(&format!("http://127.0.0.1:{p}/")).is_some())
        });
        match *how {
            "forget" => drop(repo.jj(&["workspace", "forget", &name]).success()),
            "remove" => drop(repo.jj(&["workspace", "remove", &name]).success()),
            _ => rm_rf(&ws),
        }
        // After rm -rf, the Git entry pointing nowhere is pruned too: jj
        // 0.46 leaves it, even through a later forget.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(objects_at(&repo, &ws).is_empty() && git_worktrees(&repo).is_empty()) {
            if std::time::Instant::now() > deadline {
                let events: Vec<String> = w.drain().iter().map(|e| e.to_string()).collect();
                panic!(
                    "{how}: left {:?} {:?}; the watcher said:\n{}",
                    objects_at(&repo, &ws),
                    git_worktrees(&repo),
                    events.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if *how == "rm -rf" {
            repo.jj(&["workspace", "forget", &name]).success();
        }
        assert_eq!(git_worktrees(&repo), Vec::<String>::new(), "{how}");
    }
    // ajj's forget of its own plain workspace, too.
    repo.ajj(&["workspace", "forget", "mine"]).success();
    assert_eq!(git_worktrees(&repo), Vec::<String>::new());
    w.signal("TERM");
    w.wait_for("the watcher to stop", 15, |e| e["event"] == "stopped");
    let bad: Vec<_> = w.seen.iter().filter(|e| e["event"] == "error").collect();
    assert!(bad.is_empty(), "{bad:?}");
}

/// An image a listing showed in use is taken as present for a while (no
/// inspection per recreate). Untagged under a running watcher, it must
/// still be reported by name, and a re-tag must be enough to recover.
#[test]
fn an_image_untagged_under_the_watcher_is_named_and_a_retag_recovers() {
    let Some(()) = env() else { return };
    let tag = format!("aether-test/untag-{}:1", std::process::id());
    let docker = |args: &[&str]| {
        let ok = std::process::Command::new("docker")
            .args(args)
            .status()
            .unwrap();
        assert!(ok.success(), "docker {args:?}");
    };
    docker(&["tag", BUSYBOX, &tag]);
    struct Untag(String);
    impl Drop for Untag {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", &self.0])
                .output();
        }
    }
    let _untag = Untag(tag.clone());
    let config = format!(
        "[services.a]\nimage = \"{tag}\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\nports = [8080]\nstop_timeout = \"1s\"\n\
         [services.b]\nimage = \"{tag}\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"8081\", \"-h\", \"/www\"]\nports = [8081]\nstop_timeout = \"1s\"\n"
    );
    let repo = TestRepo::new(Some(&config));
    repo.add("w");
    let mut w = repo.watch(&[], &[]);
    w.wait_for("the first pass", 30, |e| e["event"] == "pass_finished");

    // Untagged (b keeps running, by id), then a's container removed.
    docker(&["rmi", &tag]);
    let a = repo.docker_names("container", "label=dev.aether.service=a");
    let a: Vec<_> = a.into_iter().filter(|n| n.contains("-w-")).collect();
    assert_eq!(a.len(), 1, "{a:?}");
    docker(&["rm", "-f", &a[0]]);
    let err = w.wait_for("IMAGE_NOT_FOUND for w", 30, |e| {
        e["event"] == "error" && e["workspace"] == "w" && e["code"] == "IMAGE_NOT_FOUND"
    });
    assert_eq!(err["details"]["image"], tag.as_str(), "{err}");

    // Tagged again: the next pass (the restart of the watcher's backoff, or
    // a reconcile) brings a back.
    docker(&["tag", BUSYBOX, &tag]);
    repo.ajj(&["reconcile"]).success();
    eventually("a runs again", 30, || {
        repo.docker_names("container", "label=dev.aether.service=a")
            .iter()
            .any(|n| n.contains("-w-"))
    });
}
