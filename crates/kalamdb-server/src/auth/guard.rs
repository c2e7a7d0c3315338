//! Brute-force limits: lock a user after repeated failed logins, and rate
//! limit login attempts per client address. Both are in memory (a restart
//! clears them).

use kalamdb_commons::clock::monotonic;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed logins per user; `max_failures` in a row lock the user for
/// `lock_for`. A success clears the count.
pub struct Lockout {
    max_failures: u32,
    lock_for: Duration,
    state: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

impl Lockout {
    pub fn new(max_failures: u32, lock_for: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            lock_for,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// How long `user` stays locked, if it is.
    pub fn locked_for(&self, user: &str) -> Option<Duration> {
        let mut state = self.state.lock();
        let (_, until) = state.get(user)?;
        let until = (*until)?;
        let now = monotonic();
        if until > now {
            Some(until - now)
        } else {
            state.remove(user);
            None
        }
    }

    pub fn failed(&self, user: &str) {
        let mut state = self.state.lock();
        // Bound the map: forget the oldest entries when it grows huge.
        if state.len() > 100_000 {
            state.clear();
        }
        let entry = state.entry(user.to_string()).or_insert((0, None));
        entry.0 += 1;
        if entry.0 >= self.max_failures {
            entry.1 = Some(monotonic() + self.lock_for);
            entry.0 = 0;
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.state.lock().remove(user);
    }
}

/// At most `per_minute` attempts per client address in any one-minute window.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt; false if the address is over its limit.
    pub fn allow(&self, addr: IpAddr) -> bool {
        let now = monotonic();
        let mut windows = self.windows.lock();
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let (start, count) = windows.entry(addr).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_repeated_failures() {
        let lockout = Lockout::new(3, Duration::from_secs(60));
        lockout.failed("a");
        lockout.failed("a");
        assert!(lockout.locked_for("a").is_none());
        lockout.failed("a");
        assert!(lockout.locked_for("a").is_some());
        assert!(lockout.locked_for("b").is_none());
        lockout.succeeded("a");
        assert!(lockout.locked_for("a").is_none());
        let short = Lockout::new(1, Duration::ZERO);
        short.failed("x");
        assert!(short.locked_for("x").is_none(), "an elapsed lock is lifted");
    }

    #[test]
    fn rate_limit_per_address() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
    }
}
