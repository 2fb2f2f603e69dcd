//! Opt-in address allocation for workspace networks: `AETHER_NETWORK_POOL`.
//!
//! Docker's default pools hold about 30 bridge networks, and each workspace
//! has one. No range is safe on every machine (10/8 meets VPNs, 100.64/10
//! Tailscale), so Aether never picks one by itself; given a range, it gives
//! each network a /24 of it, skipping what the engine already uses.

use crate::base::error::{CommandError, ErrorCode, Result};
use std::net::Ipv4Addr;

pub const ENV: &str = "AETHER_NETWORK_POOL";
/// Each workspace network gets a /24: 254 addresses, far more than its services.
pub const SUBNET_PREFIX: u8 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let mask = mask(prefix);
        Some(Cidr {
            base: u32::from(addr) & mask,
            prefix,
        })
    }

    fn end(&self) -> u64 {
        self.base as u64 + (1u64 << (32 - self.prefix as u32))
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        (self.base as u64) < other.end() && (other.base as u64) < self.end()
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

/// Docker's own default address pools, when the engine does not report
/// its configured ones: 172.17–31.0.0/16 as /16s and 192.168.0.0/16 as /20s.
pub fn docker_default_pools() -> Vec<(Cidr, u8)> {
    let mut pools: Vec<(Cidr, u8)> = (17..=31)
        .map(|b| (Cidr::parse(&format!("172.{b}.0.0/16")).expect("valid"), 16))
        .collect();
    pools.push((Cidr::parse("192.168.0.0/16").expect("valid"), 20));
    pools
}

/// How many networks of each pool's size fit, and how many of those no
/// existing network overlaps: `(free, total)`.
pub fn capacity(pools: &[(Cidr, u8)], used: &[Cidr]) -> (usize, usize) {
    let (mut free, mut total) = (0, 0);
    for (pool, size) in pools {
        if *size < pool.prefix || *size > 32 {
            continue;
        }
        let count = 1u64 << (*size - pool.prefix).min(16);
        let step = 1u64 << (32 - *size as u32);
        for i in 0..count {
            let subnet = Cidr {
                base: (pool.base as u64 + i * step) as u32,
                prefix: *size,
            };
            total += 1;
            if !used.iter().any(|u| u.overlaps(&subnet)) {
                free += 1;
            }
        }
    }
    (free, total)
}

/// The pool from `$AETHER_NETWORK_POOL`, if set.
pub fn pool_from_env() -> Result<Option<Cidr>> {
    let Ok(text) = std::env::var(ENV) else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    match Cidr::parse(&text) {
        Some(c) if c.prefix <= SUBNET_PREFIX => Ok(Some(c)),
        _ => Err(CommandError::new(
            ErrorCode::Usage,
            format!("invalid {ENV}={text:?}: expected an IPv4 range of /{SUBNET_PREFIX} or larger"),
        )
        .hint(format!("e.g. {ENV}=10.203.0.0/16, a range unused on this machine and its networks (VPNs, your LAN)"))),
    }
}

/// The /24s of `pool` not overlapping `used`, starting at a place derived
/// from `seed`, so that concurrent creators rarely try the same one first.
pub fn candidates(pool: Cidr, used: &[Cidr], seed: u64) -> Vec<Cidr> {
    let count = 1u64 << (SUBNET_PREFIX - pool.prefix);
    let step = 1u64 << (32 - SUBNET_PREFIX as u32);
    (0..count)
        .map(|i| (seed.wrapping_add(i)) % count)
        .map(|i| Cidr {
            base: (pool.base as u64 + i * step) as u32,
            prefix: SUBNET_PREFIX,
        })
        .filter(|c| !used.iter().any(|u| u.overlaps(c)))
        .collect()
}

/// The usual first host of a subnet, as Docker's own allocation does.
pub fn gateway(subnet: Cidr) -> String {
    Ipv4Addr::from(subnet.base + 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_counts_what_no_network_overlaps() {
        let c = |t: &str| Cidr::parse(t).unwrap();
        assert_eq!(docker_default_pools().len(), 16);
        assert_eq!(capacity(&docker_default_pools(), &[]), (31, 31));
        let used = [c("172.17.0.0/16"), c("192.168.16.0/20"), c("10.0.0.0/8")];
        assert_eq!(capacity(&docker_default_pools(), &used), (29, 31));
        // A /23 pool of /24s: two, one taken by a network inside it.
        assert_eq!(
            capacity(&[(c("10.9.0.0/23"), 24)], &[c("10.9.1.0/24")]),
            (1, 2)
        );
        // A bigger network covering the pool takes all of it.
        assert_eq!(
            capacity(&[(c("10.9.0.0/23"), 24)], &[c("10.0.0.0/8")]),
            (0, 2)
        );
    }

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(c("10.203.7.9/16").to_string(), "10.203.0.0/16");
        assert!(Cidr::parse("10.0.0.0").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::1/64").is_none());
    }

    #[test]
    fn overlap() {
        assert!(c("10.0.0.0/16").overlaps(&c("10.0.5.0/24")));
        assert!(c("10.0.5.0/24").overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.0.5.0/24").overlaps(&c("10.0.6.0/24")));
        assert!(c("0.0.0.0/0").overlaps(&c("255.255.255.0/24")));
    }

    #[test]
    fn candidates_skip_used_and_wrap() {
        let pool = c("10.203.0.0/22"); // four /24s
        let used = [c("10.203.1.0/24"), c("172.17.0.0/16")];
        let all = candidates(pool, &used, 2);
        let names: Vec<String> = all.iter().map(|x| x.to_string()).collect();
        assert_eq!(names, ["10.203.2.0/24", "10.203.3.0/24", "10.203.0.0/24"]);
        assert!(candidates(pool, &[c("10.0.0.0/8")], 0).is_empty());
        assert_eq!(gateway(c("10.203.2.0/24")), "10.203.2.1");
    }
}
