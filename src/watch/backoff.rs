//! Crash-loop detection and backoff, per workspace. Pure: time is passed in,
//! so the rules are unit-tested without sleeping.
//!
//! A strike is a container death nobody asked for, or a failed pass over the
//! workspace. Three strikes within a minute are a crash loop: the workspace
//! is held (left out of passes) for 2 s, then 4 s, 8 s, ... up to 5 min, so
//! a service that cannot start does not make the watcher spin. Docker's own
//! restart policy keeps trying meanwhile; the hold only stops Aether from
//! piling recreations on top.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const THRESHOLD: usize = 3;
const FIRST_HOLD: Duration = Duration::from_secs(2);
const MAX_HOLD: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
struct Track {
    strikes: VecDeque<Instant>,
    /// How many holds in a row: the next one lasts twice as long.
    level: u32,
    hold_until: Option<Instant>,
    last_strike: Option<Instant>,
}

#[derive(Debug)]
pub struct CrashLoops {
    per: HashMap<String, Track>,
    max_hold: Duration,
}

impl Default for CrashLoops {
    fn default() -> Self {
        CrashLoops::with_max_hold(MAX_HOLD)
    }
}

/// Sets the longest hold (default 5 minutes): for tests, and for whoever
/// wants a crash-looping service retried sooner.
pub const MAX_HOLD_ENV: &str = "AETHER_CRASH_HOLD_MAX";

impl CrashLoops {
    pub fn with_max_hold(max_hold: Duration) -> Self {
        CrashLoops {
            per: HashMap::new(),
            max_hold: max_hold.max(FIRST_HOLD),
        }
    }

    /// Records a strike; returns the hold when this one makes a crash loop.
    pub fn strike(&mut self, workspace: &str, now: Instant) -> Option<Duration> {
        let t = self.per.entry(workspace.to_string()).or_default();
        t.last_strike = Some(now);
        t.strikes.push_back(now);
        while t
            .strikes
            .front()
            .is_some_and(|s| now.duration_since(*s) > WINDOW)
        {
            t.strikes.pop_front();
        }
        if t.strikes.len() < THRESHOLD {
            return None;
        }
        t.strikes.clear();
        let hold = FIRST_HOLD
            .saturating_mul(1u32 << t.level.min(16))
            .min(self.max_hold);
        t.level += 1;
        t.hold_until = Some(now + hold);
        Some(hold)
    }

    /// A pass converged the workspace. After a quiet spell it starts over.
    pub fn settled(&mut self, workspace: &str, now: Instant) {
        if let Some(t) = self.per.get(workspace) {
            let quiet = t
                .last_strike
                .is_none_or(|s| now.duration_since(s) > WINDOW * 2);
            if quiet && !self.is_held(workspace, now) {
                self.per.remove(workspace);
            }
        }
    }

    pub fn is_held(&self, workspace: &str, now: Instant) -> bool {
        self.per
            .get(workspace)
            .and_then(|t| t.hold_until)
            .is_some_and(|u| u > now)
    }

    pub fn held(&self, now: Instant) -> BTreeSet<String> {
        self.per
            .keys()
            .filter(|w| self.is_held(w, now))
            .cloned()
            .collect()
    }

    /// When the next hold ends: the watcher runs a pass then.
    pub fn next_release(&self, now: Instant) -> Option<Instant> {
        self.per
            .values()
            .filter_map(|t| t.hold_until)
            .filter(|u| *u > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_strikes_in_a_minute_hold_with_growing_backoff() {
        let mut c = CrashLoops::default();
        let t0 = Instant::now();
        assert_eq!(c.strike("a", t0), None);
        assert_eq!(c.strike("a", t0 + Duration::from_secs(1)), None);
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(c.strike("a", t2), Some(Duration::from_secs(2)));
        assert!(c.is_held("a", t2));
        assert!(!c.is_held("b", t2));
        assert_eq!(c.held(t2), BTreeSet::from(["a".to_string()]));
        assert_eq!(c.next_release(t2), Some(t2 + Duration::from_secs(2)));
        let t3 = t2 + Duration::from_secs(3);
        assert!(!c.is_held("a", t3));
        c.strike("a", t3);
        c.strike("a", t3);
        assert_eq!(c.strike("a", t3), Some(Duration::from_secs(4)));
    }

    #[test]
    fn strikes_spread_out_are_no_loop_and_calm_resets() {
        let mut c = CrashLoops::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(c.strike("a", t0 + Duration::from_secs(61 * i)), None);
        }
        let later = t0 + Duration::from_secs(61 * 4 + 121);
        c.settled("a", later);
        assert!(c.per.is_empty());
    }

    fn crash_loop(c: &mut CrashLoops, at: Instant) -> Option<Duration> {
        (0..THRESHOLD).filter_map(|_| c.strike("a", at)).last()
    }

    #[test]
    fn the_window_and_the_hold_end_are_inclusive_boundaries() {
        let mut c = CrashLoops::default();
        let t0 = Instant::now();
        // A strike exactly one window after the first still counts.
        c.strike("a", t0);
        c.strike("a", t0 + WINDOW / 2);
        let t = t0 + WINDOW;
        assert_eq!(c.strike("a", t), Some(FIRST_HOLD));
        // Held until, not at, its end.
        assert!(c.is_held("a", t + FIRST_HOLD - Duration::from_millis(1)));
        assert!(!c.is_held("a", t + FIRST_HOLD));
        assert_eq!(c.next_release(t + FIRST_HOLD), None);
    }

    #[test]
    fn settling_resets_only_after_two_quiet_windows_and_the_hold() {
        // The hold is over but the last strike is recent: the next loop is
        // held longer.
        let mut c = CrashLoops::default();
        let t0 = Instant::now();
        crash_loop(&mut c, t0);
        c.settled("a", t0 + WINDOW);
        assert_eq!(crash_loop(&mut c, t0 + WINDOW), Some(FIRST_HOLD * 2));
        // Exactly two windows of quiet is not yet more than two.
        let mut c = CrashLoops::default();
        crash_loop(&mut c, t0);
        c.settled("a", t0 + WINDOW * 2);
        assert_eq!(crash_loop(&mut c, t0 + WINDOW * 2), Some(FIRST_HOLD * 2));
        // Past that, it starts over.
        let mut c = CrashLoops::default();
        crash_loop(&mut c, t0);
        let calm = t0 + WINDOW * 2 + Duration::from_secs(1);
        c.settled("a", calm);
        assert_eq!(crash_loop(&mut c, calm), Some(FIRST_HOLD));
        // Quiet, but still held (a long hold): kept.
        let mut c = CrashLoops::with_max_hold(Duration::from_secs(1000));
        let mut now = t0;
        for _ in 0..7 {
            now += Duration::from_secs(1000);
            crash_loop(&mut c, now);
        }
        // The 7th loop holds 128 s: quiet after 121 s, still held.
        let quiet = now + WINDOW * 2 + Duration::from_secs(1);
        assert!(c.is_held("a", quiet));
        c.settled("a", quiet);
        assert!(c.is_held("a", quiet));
    }

    #[test]
    fn the_hold_is_capped() {
        let mut c = CrashLoops::default();
        let mut now = Instant::now();
        let mut last = None;
        for _ in 0..20 {
            for _ in 0..THRESHOLD {
                last = c.strike("a", now);
            }
            now += MAX_HOLD + Duration::from_secs(1);
        }
        assert_eq!(last, Some(MAX_HOLD));
    }
}
