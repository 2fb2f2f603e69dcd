//! Many workspaces on one host, with Docker's default daemon settings: the
//! address blocks Aether chooses for their networks, and passes that
//! create many environments at once. Real jj, the real engine, curl.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Net(u32, u8);

impl Net {
    fn parse(text: &str) -> Option<Net> {
        let (a, p) = text.trim().split_once('/')?;
        Some(Net(u32::from(a.parse::<Ipv4Addr>().ok()?), p.parse().ok()?))
    }
    fn end(&self) -> u64 {
        self.0 as u64 + (1u64 << (32 - self.1 as u32))
    }
    fn overlaps(&self, o: &Net) -> bool {
        (self.0 as u64) < o.end() && (o.0 as u64) < self.end()
    }
    fn within(&self, o: &Net) -> bool {
        o.0 <= self.0 && self.end() <= o.end()
    }
}

/// Every network on the engine, whoever made it: name → IPv4 subnets.
fn all_subnets() -> BTreeMap<String, Vec<Net>> {
    let names = Command::new("docker")
        .args(["network", "ls", "-q"])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&names.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    let out = Command::new("docker")
        .args([
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
        ])
        .args(&ids)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_string();
            Some((name, words.filter_map(Net::parse).collect()))
        })
        .collect()
}

/// The host's IPv4 routes from `/proc/net/route`, the default route left out.
fn host_routes() -> Vec<Net> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let read = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|n| u32::from_be_bytes(n.to_ne_bytes()))
            };
            let (dest, mask) = (read(cols.get(1)?)?, read(cols.get(7)?)?);
            let prefix = mask.leading_ones() as u8;
            (prefix > 0).then_some(Net(dest, prefix))
        })
        .collect()
}

/// The subnet of one of this repo's workspace networks.
fn workspace_subnet(repo: &TestRepo, workspace: &str) -> Net {
    let nets = repo.docker_names(
        "network",
        &format!("label=dev.aether.workspace={workspace}"),
    );
    assert_eq!(nets.len(), 1, "{workspace}: {nets:?}");
    let all = all_subnets();
    let subnets = &all[&nets[0]];
    assert_eq!(subnets.len(), 1, "{workspace}: {subnets:?}");
    subnets[0]
}

/// Plain `jj workspace add` of many workspaces: jj alone, nothing started.
fn jj_adds(repo: &TestRepo, names: &[String]) {
    for n in names {
        repo.jj(&["workspace", "add", &format!("../{n}"), "--name", n])
            .success();
    }
}

fn running(pass: &Value, workspace: &str) -> bool {
    actions_for(pass, workspace)
        .iter()
        .any(|a| a["action"] == "create_container")
}

/// More workspaces than Docker's default pools hold networks (about 30),
/// with no variable set: one pass brings all 45 up, each network on a
/// block of the ranges Docker's defaults use, overlapping no other network
/// and no route of the host.
#[test]
fn forty_five_workspaces_come_up_in_one_pass_with_default_settings() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let names: Vec<String> = (0..45).map(|i| format!("w{i}")).collect();
    jj_adds(&repo, &names);

    let pass = repo.ajj(&["reconcile", "--json"]).success().json();
    for n in &names {
        assert!(running(&pass, n), "{n} was not started: {pass}");
        let port = dotenv(&repo.ws(n).join(".env"))["WEB_PORT"].clone();
        assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some(), "{n}");
    }

    let dockers_defaults = [
        Net::parse("172.16.0.0/12").unwrap(),
        Net::parse("192.168.0.0/16").unwrap(),
    ];
    let all = all_subnets();
    let routes = host_routes();
    let ours: Vec<(String, Net)> = names
        .iter()
        .map(|n| (n.clone(), workspace_subnet(&repo, n)))
        .collect();
    for (n, net) in &ours {
        assert_eq!(net.1, 27, "{n}: a /27 per workspace of one service");
        assert!(
            dockers_defaults.iter().any(|r| net.within(r)),
            "{n}: {net:?} outside Docker's default ranges"
        );
        let others: Vec<&String> = all
            .iter()
            .filter(|(_, subs)| subs.iter().any(|s| s.overlaps(net) && s != net))
            .map(|(name, _)| name)
            .collect();
        assert!(others.is_empty(), "{n}: {net:?} overlaps {others:?}");
        let clashes = all.values().flatten().filter(|s| *s == net).count();
        assert_eq!(clashes, 1, "{n}: {net:?} is used by another network too");
        // The kernel routes each bridge's own subnet to it; any other
        // route overlapping it would be a clash.
        let bad: Vec<&Net> = routes
            .iter()
            .filter(|r| r.overlaps(net) && *r != net)
            .collect();
        assert!(
            bad.is_empty(),
            "{n}: {net:?} overlaps the host routes {bad:?}"
        );
    }

    let mut args = vec!["workspace", "forget"];
    args.extend(names.iter().map(String::as_str));
    repo.ajj(&args).success();
    // The main workspace ("default") keeps its own.
    assert_eq!(
        repo.docker_names("network", "label=dev.aether.repo"),
        repo.docker_names("network", "label=dev.aether.workspace=default")
    );
}

/// Three adds race for the last two free blocks of a range: two get
/// distinct blocks, the third gets the coded error with the numbers, and
/// leaves no network behind. No lock file: the engine refuses an
/// overlapping subnet and the refused add moves on.
#[test]
fn adds_racing_for_the_last_free_blocks() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    // A /26 of a range unused here: two /27 blocks.
    let base = 150 + (std::process::id() % 40) as u8;
    repo.set_env("AETHER_NETWORK_POOL", format!("10.{base}.7.0/26"));
    let racers: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| {
            let child = repo
                .ajj_cmd(
                    &repo.main,
                    &["workspace", "add", &format!("../{n}"), "--json"],
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (n.to_string(), child)
        })
        .collect();
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for (n, child) in racers {
        let run = Run::from(
            child.wait_with_output().unwrap(),
            "ajj",
            &["workspace", "add", &n],
        );
        if run.status.success() {
            won.push(n);
        } else {
            let err = run.json();
            assert_eq!(
                err["error"]["code"], "NETWORK_POOL_EXHAUSTED",
                "{}",
                run.stdout
            );
            assert_eq!(err["error"]["details"]["free"], 0, "{}", run.stdout);
            assert_eq!(err["error"]["details"]["total"], 2, "{}", run.stdout);
            lost.push(n);
        }
    }
    assert_eq!(
        (won.len(), lost.len()),
        (2, 1),
        "won {won:?}, lost {lost:?}"
    );
    let a = workspace_subnet(&repo, &won[0]);
    let b = workspace_subnet(&repo, &won[1]);
    assert!(!a.overlaps(&b), "{a:?} and {b:?}");
    let pool = Net::parse(&format!("10.{base}.7.0/26")).unwrap();
    assert!(a.within(&pool) && b.within(&pool));
    assert!(
        repo.docker_names(
            "network",
            &format!("label=dev.aether.workspace={}", lost[0])
        )
        .is_empty(),
        "the loser left a network"
    );
    let mut args = vec!["workspace", "forget"];
    args.extend(won.iter().map(String::as_str));
    repo.ajj(&args).success();
}

/// A pass creating ten environments, one with an image that cannot be
/// had: the other nine come up, and the one is reported with its workspace.
#[test]
fn one_bad_environment_does_not_stop_the_others() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let names: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    jj_adds(&repo, &names);
    std::fs::write(
        repo.ws("e4").join("aether.toml"),
        busybox_web("").replace(BUSYBOX, "aether-test/not-built:1"),
    )
    .unwrap();

    let pass = repo.ajj(&["reconcile", "--json"]).failure().json();
    let errors = pass["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{pass}");
    assert_eq!(errors[0]["workspace"], "e4");
    assert_eq!(errors[0]["error"]["code"], "IMAGE_NOT_FOUND", "{pass}");
    for n in names.iter().filter(|n| *n != "e4") {
        assert!(running(&pass, n), "{n}: {pass}");
        let port = dotenv(&repo.ws(n).join(".env"))["WEB_PORT"].clone();
        assert!(curl(&format!("http://127.0.0.1:{port}/")).is_some(), "{n}");
    }
    let mut args = vec!["workspace", "forget"];
    args.extend(names.iter().map(String::as_str));
    repo.ajj(&args).success();
}

/// A route of the host, added for one test and removed however it ends
/// (a VPN coming up, as `ip route` shows it).
struct Route(String);

impl Route {
    fn add(cidr: &str) -> Option<Route> {
        let ok = Command::new("ip")
            .args(["route", "add", cidr, "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot add a route here (`ip route add` needs CAP_NET_ADMIN)");
            return None;
        }
        Some(Route(cidr.to_string()))
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", &self.0, "dev", "lo"])
            .status();
    }
}

/// A block a host route overlaps is never chosen; a route that comes up
/// after the network was made (a VPN) is reported by `ajj doctor`.
#[test]
fn host_routes_are_avoided_and_a_later_one_is_reported() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let base = 150 + (std::process::id() % 40) as u8;
    repo.set_env("AETHER_NETWORK_POOL", format!("10.{base}.9.0/26"));
    let Some(_early) = Route::add(&format!("10.{base}.9.0/27")) else {
        return;
    };
    repo.add("a");
    assert_eq!(
        workspace_subnet(&repo, "a"),
        Net::parse(&format!("10.{base}.9.32/27")).unwrap(),
        "the block under the route was skipped"
    );

    let Some(_vpn) = Route::add(&format!("10.{base}.9.0/25")) else {
        return;
    };
    let run = repo.ajj(&["doctor", "--json"]);
    let report = run.json();
    let found: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "NETWORK_OVERLAPS_ROUTE")
        .collect();
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0]["status"], "warn");
    assert_eq!(found[0]["details"]["workspace"], "a");
    assert_eq!(found[0]["details"]["route"], format!("10.{base}.9.0/25"));
    assert!(found[0]["hint"].as_str().unwrap().contains("forget"));
    repo.ajj(&["workspace", "forget", "a"]).success();
}
