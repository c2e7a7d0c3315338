//! Time-based ids: `SNOWFLAKE_ID()`, 64-bit ids that grow with time, and
//! `UUID_V7()`. The one place ids are made from the clock.
//!
//! Layout: 41 bits of milliseconds since 2024-01-01 UTC, 10 bits of node id,
//! 12 bits of a per-millisecond counter. Ids are strictly increasing within a
//! process even if the clock steps back (the last timestamp is reused).

use kalamdb_commons::Clock;
use parking_lot::Mutex;
use std::sync::Arc;

/// 2024-01-01T00:00:00Z in milliseconds.
const EPOCH_MS: i64 = 1_704_067_200_000;
const NODE_BITS: u32 = 10;
const COUNTER_BITS: u32 = 12;
const MAX_COUNTER: u64 = (1 << COUNTER_BITS) - 1;

pub struct SnowflakeGen {
    clock: Arc<dyn Clock>,
    node: u64,
    /// (last millisecond used, counter within it)
    state: Mutex<(u64, u64)>,
}

impl std::fmt::Debug for SnowflakeGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeGen")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl SnowflakeGen {
    pub fn new(clock: Arc<dyn Clock>, node: u16) -> Self {
        Self {
            clock,
            node: u64::from(node) & ((1 << NODE_BITS) - 1),
            state: Mutex::new((0, 0)),
        }
    }

    pub fn next_id(&self) -> i64 {
        let now = (self.clock.now_millis() - EPOCH_MS).max(0) as u64;
        let mut state = self.state.lock();
        let (last, counter) = *state;
        let (ms, counter) = if now > last {
            (now, 0)
        } else if counter < MAX_COUNTER {
            (last, counter + 1)
        } else {
            (last + 1, 0)
        };
        *state = (ms, counter);
        ((ms << (NODE_BITS + COUNTER_BITS)) | (self.node << COUNTER_BITS) | counter) as i64
    }
}

/// A new UUID version 7 (time-ordered), hyphenated.
pub fn uuid_v7() -> String {
    #[expect(clippy::disallowed_methods, reason = "this is the id module")]
    let id = uuid::Uuid::now_v7();
    id.hyphenated().to_string()
}

/// Crockford's base 32, the alphabet of ULIDs (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID: 48 bits of Unix milliseconds then 80 random bits, as 26
/// characters of Crockford base 32, so ULIDs sort by creation time. Made
/// from a UUIDv7, which has the same millisecond prefix and random bits
/// after it (its version and variant bits sit among the random ones).
pub fn ulid() -> String {
    #[expect(clippy::disallowed_methods, reason = "this is the id module")]
    let bits = u128::from_be_bytes(*uuid::Uuid::now_v7().as_bytes());
    encode_ulid(bits)
}

fn encode_ulid(bits: u128) -> String {
    // 26 digits of 5 bits hold 130 bits; the first digit takes the top 3.
    (0..26)
        .map(|i| {
            let shift = 5 * (25 - i);
            CROCKFORD[((bits >> shift) & 0x1F) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_commons::ManualClock;

    #[test]
    fn ids_strictly_increase_even_within_one_millisecond() {
        let clock = Arc::new(ManualClock::new(EPOCH_MS * 1000 + 5_000_000));
        let gen = SnowflakeGen::new(clock.clone(), 3);
        let mut last = 0;
        for _ in 0..10_000 {
            let id = gen.next_id();
            assert!(id > last);
            last = id;
        }
        clock.advance_micros(-10_000_000);
        assert!(gen.next_id() > last);
    }

    #[test]
    fn ulids_are_26_crockford_digits_in_time_order() {
        // The spec's layout: the time's 48 bits are the first 10 digits.
        let ms: u128 = 1_469_918_176_385;
        assert!(encode_ulid(ms << 80).starts_with("01ARYZ6S41"));
        assert_eq!(encode_ulid(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        let a = ulid();
        let b = ulid();
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|c| CROCKFORD.contains(&c)), "{a}");
        assert!(a.get(..10) <= b.get(..10), "{a} then {b}");
    }
}
