//! Time comes from a `Clock` so schedulers, defaults and tests never read the
//! wall clock behind the caller's back. This is the one module that reads
//! the system's clocks (clippy's `disallowed_methods` keeps it so).
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time, for how long something took and for deadlines (never
/// stored, never compared across processes).
pub fn monotonic() -> Instant {
    Instant::now()
}

/// Wall-clock seconds since the Unix epoch, for token lifetimes; code that
/// tests need to move in time takes a [`Clock`] instead.
pub fn unix_secs() -> i64 {
    SystemClock.now_micros() / 1_000_000
}

/// A source of the current time in microseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_micros(&self) -> i64;

    fn now_millis(&self) -> i64 {
        self.now_micros() / 1_000
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn new(start_micros: i64) -> Self {
        Self {
            micros: AtomicI64::new(start_micros),
        }
    }

    pub fn advance_micros(&self, delta: i64) {
        self.micros.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_micros(), 1_000);
        clock.advance_micros(500);
        assert_eq!(clock.now_micros(), 1_500);
        assert_eq!(clock.now_millis(), 1);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_micros() > 1_577_836_800_000_000);
    }
}
