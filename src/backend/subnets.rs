//! Address blocks for workspace networks (pure; the engine's and the host's
//! facts are handed in).
//!
//! Each workspace has its own bridge network. Left to choose, Docker gives
//! each a whole /16 (or /20) of its default pools, which hold about 30 per
//! host. Aether chooses instead: a small block (a /27: 29 services) from
//! the very ranges Docker's defaults use (172.17–31.0.0/16 and
//! 192.168.0.0/16), so it claims no address space the user has not already
//! given Docker. Blocks are packed densely, starting from the end of
//! Docker's own order (192.168.240.0/20 first, 172.17.0.0/16 last), so the
//! slots Docker hands to other tools (`docker network create`, Compose)
//! stay free longest. A block is skipped when it overlaps an existing
//! network, a route of the engine's host or a pool in `daemon.json`.
//!
//! `AETHER_NETWORK_POOL=<cidr>` is the explicit choice of range, and
//! `AETHER_NETWORK_POOL=engine` leaves the choice to the engine.

use crate::base::error::{CommandError, ErrorCode, Result};
use std::net::Ipv4Addr;

pub const ENV: &str = "AETHER_NETWORK_POOL";
/// A workspace's block: 32 addresses, 29 for containers (network, gateway
/// and broadcast take three).
pub const BLOCK_PREFIX: u8 = 27;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        Some(Cidr::new(u32::from(addr), prefix))
    }

    fn new(base: u32, prefix: u8) -> Cidr {
        Cidr {
            base: base & mask(prefix),
            prefix,
        }
    }

    fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    fn end(&self) -> u64 {
        self.base as u64 + self.size()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        (self.base as u64) < other.end() && (other.base as u64) < self.end()
    }

    #[cfg(test)]
    fn contains(&self, other: &Cidr) -> bool {
        self.base as u64 <= other.base as u64 && other.end() <= self.end()
    }

    /// The blocks of `prefix` in this range, in address order.
    fn blocks(self, prefix: u8) -> impl Iterator<Item = Cidr> {
        let prefix = prefix.max(self.prefix);
        let step = 1u64 << (32 - prefix as u32);
        let count = self.size() / step;
        (0..count).map(move |i| Cidr::new((self.base as u64 + i * step) as u32, prefix))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

/// Where workspace networks get their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Blocks of Docker's default ranges, chosen by Aether (the default).
    Default,
    /// Blocks of this range (`AETHER_NETWORK_POOL=<cidr>`).
    Pool(Cidr),
    /// The engine chooses (`AETHER_NETWORK_POOL=engine`), as before 0.6:
    /// Docker's default pools then hold about 30 networks per host.
    Engine,
}

impl Policy {
    /// The policy from `$AETHER_NETWORK_POOL`.
    pub fn from_env() -> Result<Policy> {
        Policy::parse(std::env::var(ENV).ok().as_deref())
    }

    pub fn parse(value: Option<&str>) -> Result<Policy> {
        let text = value.unwrap_or_default().trim();
        if text.is_empty() {
            return Ok(Policy::Default);
        }
        if text == "engine" {
            return Ok(Policy::Engine);
        }
        match Cidr::parse(text) {
            Some(c) if c.prefix <= BLOCK_PREFIX => Ok(Policy::Pool(c)),
            _ => Err(CommandError::new(
                ErrorCode::Usage,
                format!("invalid {ENV}={text:?}: expected an IPv4 range of /{BLOCK_PREFIX} or larger, or `engine`"),
            )
            .hint(format!(
                "e.g. {ENV}=10.203.0.0/16, a range unused on this machine and its networks (VPNs, your LAN); unset, Aether uses Docker's default ranges"
            ))),
        }
    }

    /// The ranges blocks are taken from, in the order they are tried.
    pub fn ranges(&self) -> Vec<Cidr> {
        match self {
            Policy::Default => default_ranges(),
            Policy::Pool(pool) => vec![*pool],
            Policy::Engine => vec![],
        }
    }

    /// How the ranges are named in messages.
    pub fn describe(&self) -> String {
        match self {
            Policy::Default => {
                "Docker's default ranges (172.17.0.0/16–172.31.0.0/16, 192.168.0.0/16)".into()
            }
            Policy::Pool(pool) => format!("{ENV}={pool}"),
            Policy::Engine => "the engine's own pools".into(),
        }
    }
}

/// Docker's default address pools, as slots of the size Docker hands out
/// (172.17–31.0.0/16 as /16s, 192.168.0.0/16 as /20s), in the reverse of
/// the order Docker takes them.
pub fn default_ranges() -> Vec<Cidr> {
    let docker_order = (17..=31)
        .map(|b| Cidr::new(u32::from(Ipv4Addr::new(172, b, 0, 0)), 16))
        .chain(Cidr::new(u32::from(Ipv4Addr::new(192, 168, 0, 0)), 16).blocks(20));
    let mut slots: Vec<Cidr> = docker_order.collect();
    slots.reverse();
    slots
}

/// The smallest block that holds `services` containers, never below a /27:
/// the network, the gateway and the broadcast address take three.
pub fn prefix_for(services: usize) -> u8 {
    let mut prefix = BLOCK_PREFIX;
    while prefix > 16 && (1usize << (32 - prefix as u32)) < services + 3 {
        prefix -= 1;
    }
    prefix
}

/// What a new block must not overlap.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    /// Every network's subnets on the engine, whoever made them.
    pub networks: Vec<Cidr>,
    /// The routes of the engine's host, the default route left out.
    pub routes: Vec<Cidr>,
    /// The pools configured in the engine's `daemon.json`.
    pub pools: Vec<Cidr>,
}

/// Why a block is not free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    Network,
    Route,
    Pool,
}

impl Taken {
    pub fn blocker(&self, block: &Cidr) -> Option<Blocker> {
        let hits = |list: &[Cidr]| list.iter().any(|c| c.overlaps(block));
        if hits(&self.networks) {
            Some(Blocker::Network)
        } else if hits(&self.routes) {
            Some(Blocker::Route)
        } else if hits(&self.pools) {
            Some(Blocker::Pool)
        } else {
            None
        }
    }
}

/// The free blocks of `prefix`, in the order they are tried, skipping
/// `also` (blocks this process is creating right now). Lazy: the default
/// ranges hold 32768 /27s.
pub fn candidates<'a>(
    ranges: &'a [Cidr],
    prefix: u8,
    taken: &'a Taken,
    also: &'a [Cidr],
) -> impl Iterator<Item = Cidr> + 'a {
    ranges
        .iter()
        .flat_map(move |r| r.blocks(prefix))
        .filter(move |b| taken.blocker(b).is_none() && !also.iter().any(|a| a.overlaps(b)))
}

/// How the blocks of the ranges stand: the numbers in `ajj doctor` and in
/// the error when none is left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub total: usize,
    pub free: usize,
    pub by_networks: usize,
    pub by_routes: usize,
    pub by_pools: usize,
}

pub fn census(ranges: &[Cidr], prefix: u8, taken: &Taken) -> Census {
    let mut c = Census::default();
    for block in ranges.iter().flat_map(|r| r.blocks(prefix)) {
        c.total += 1;
        match taken.blocker(&block) {
            None => c.free += 1,
            Some(Blocker::Network) => c.by_networks += 1,
            Some(Blocker::Route) => c.by_routes += 1,
            Some(Blocker::Pool) => c.by_pools += 1,
        }
    }
    c
}

impl std::fmt::Display for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} blocks free ({} overlap networks, {} host routes, {} daemon.json pools)",
            self.free, self.total, self.by_networks, self.by_routes, self.by_pools
        )
    }
}

/// The IPv4 routes in `/proc/net/route` (the main table, what `ip route`
/// shows), without the default route, which would overlap everything.
pub fn parse_routes(text: &str) -> Vec<Cidr> {
    // Each address is printed as the kernel holds it in memory: the
    // network-order bytes read as a native integer.
    let addr = |s: &str| {
        let native = u32::from_str_radix(s, 16).ok()?;
        Some(u32::from_be_bytes(native.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = addr(cols.get(1)?)?;
            let prefix = u8::try_from(addr(cols.get(7)?)?.leading_ones()).ok()?;
            (prefix > 0).then(|| Cidr::new(dest, prefix))
        })
        .collect()
}

/// The `default-address-pools` of a `daemon.json` (empty when unset or
/// unreadable).
pub fn daemon_pools(text: &str) -> Vec<Cidr> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return vec![];
    };
    json.get("default-address-pools")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| Cidr::parse(p.get("base")?.as_str()?))
        .collect()
}

/// Routes that overlap `subnet` and are not the network's own (the kernel
/// routes each bridge's subnet to it): a VPN that came up later.
pub fn conflicting_routes(subnet: &Cidr, routes: &[Cidr], networks: &[Cidr]) -> Vec<Cidr> {
    routes
        .iter()
        .filter(|r| r.overlaps(subnet) && !networks.contains(r))
        .copied()
        .collect()
}

/// The usual first host of a subnet, as Docker's own allocation does.
pub fn gateway(subnet: Cidr) -> String {
    Ipv4Addr::from(subnet.base + 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    fn names(list: impl IntoIterator<Item = Cidr>) -> Vec<String> {
        list.into_iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(c("10.203.7.9/16").to_string(), "10.203.0.0/16");
        assert!(Cidr::parse("10.0.0.0").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::1/64").is_none());
    }

    #[test]
    fn overlap_and_containment() {
        assert!(c("10.0.0.0/16").overlaps(&c("10.0.5.0/24")));
        assert!(c("10.0.5.0/24").overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.0.5.0/24").overlaps(&c("10.0.6.0/24")));
        assert!(c("0.0.0.0/0").overlaps(&c("255.255.255.0/24")));
        assert!(c("172.16.0.0/12").contains(&c("172.31.255.224/27")));
        assert!(!c("172.16.0.0/12").contains(&c("172.32.0.0/27")));
    }

    #[test]
    fn policy_from_the_variable() {
        assert_eq!(Policy::parse(None).unwrap(), Policy::Default);
        assert_eq!(Policy::parse(Some(" ")).unwrap(), Policy::Default);
        assert_eq!(Policy::parse(Some("engine")).unwrap(), Policy::Engine);
        assert_eq!(
            Policy::parse(Some("10.203.0.0/16")).unwrap(),
            Policy::Pool(c("10.203.0.0/16"))
        );
        // A range smaller than one block holds none.
        assert_eq!(
            Policy::parse(Some("10.0.0.0/28")).unwrap_err().code,
            ErrorCode::Usage
        );
        assert!(Policy::parse(Some("nonsense")).is_err());
    }

    #[test]
    fn default_ranges_are_dockers_in_reverse() {
        let r = default_ranges();
        assert_eq!(r.len(), 31);
        assert_eq!(r[0].to_string(), "192.168.240.0/20");
        assert_eq!(r[15].to_string(), "192.168.0.0/20");
        assert_eq!(r[16].to_string(), "172.31.0.0/16");
        assert_eq!(r[30].to_string(), "172.17.0.0/16");
        let (a, b) = (c("172.16.0.0/12"), c("192.168.0.0/16"));
        assert!(r.iter().all(|x| a.contains(x) || b.contains(x)));
    }

    #[test]
    fn blocks_are_packed_from_the_first_free_one() {
        let taken = Taken {
            networks: vec![c("192.168.240.0/27"), c("172.17.0.0/16")],
            routes: vec![c("192.168.240.64/26")],
            pools: vec![],
        };
        let ranges = default_ranges();
        let first: Vec<Cidr> = candidates(&ranges, 27, &taken, &[c("192.168.240.32/27")])
            .take(2)
            .collect();
        assert_eq!(names(first), ["192.168.240.128/27", "192.168.240.160/27"]);
        // A network of 29 services fits a /27; of 30, a /26.
        assert_eq!(prefix_for(1), 27);
        assert_eq!(prefix_for(29), 27);
        assert_eq!(prefix_for(30), 26);
        assert_eq!(prefix_for(200), 24);
        let big: Vec<Cidr> = candidates(&ranges, 26, &taken, &[]).take(1).collect();
        assert_eq!(names(big), ["192.168.240.128/26"]);
    }

    #[test]
    fn census_counts_why_blocks_are_taken() {
        let pool = [c("10.9.0.0/25")]; // four /27s
        let taken = Taken {
            networks: vec![c("10.9.0.0/27")],
            routes: vec![c("10.9.0.32/27")],
            pools: vec![c("10.9.0.64/26")],
        };
        let n = census(&pool, 27, &taken);
        assert_eq!(
            n,
            Census {
                total: 4,
                free: 0,
                by_networks: 1,
                by_routes: 1,
                by_pools: 2
            }
        );
        assert!(n.to_string().starts_with("0 of 4 blocks free"));
        assert_eq!(
            census(&default_ranges(), 27, &Taken::default()).total,
            32768
        );
        assert!(candidates(&pool, 27, &taken, &[]).next().is_none());
    }

    #[test]
    fn routes_from_proc() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            tun0\t00F0A8C0\t00000000\t0001\t0\t0\t0\t00FCFFFF\t0\t0\t0\n";
        assert_eq!(
            names(parse_routes(text)),
            ["172.17.0.0/16", "192.0.2.0/24", "192.168.240.0/22"]
        );
        let vpn = conflicting_routes(
            &c("192.168.240.32/27"),
            &parse_routes(text),
            &[c("172.17.0.0/16")],
        );
        assert_eq!(names(vpn), ["192.168.240.0/22"]);
        // A bridge's own route is not a conflict.
        assert!(conflicting_routes(
            &c("172.17.0.0/16"),
            &parse_routes(text),
            &[c("172.17.0.0/16")]
        )
        .is_empty());
    }

    #[test]
    fn pools_from_daemon_json() {
        let text =
            r#"{"default-address-pools": [{"base": "10.80.0.0/12", "size": 24}, {"base": "bad"}]}"#;
        assert_eq!(names(daemon_pools(text)), ["10.80.0.0/12"]);
        assert!(daemon_pools(r#"{"mtu": 1400}"#).is_empty());
        assert!(daemon_pools("not json").is_empty());
        assert_eq!(gateway(c("10.203.2.0/27")), "10.203.2.1");
    }
}
