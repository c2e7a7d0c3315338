//! When a table's buffered (hot) rows should be flushed to the cold tier.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `rows:N`, `interval:S`, or both (whichever comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushPolicy {
    pub row_limit: Option<u64>,
    pub interval_secs: Option<u64>,
}

impl FlushPolicy {
    /// The policy of tables that declare none: 10,000 rows or 5 minutes.
    pub const DEFAULT: FlushPolicy = FlushPolicy {
        row_limit: Some(10_000),
        interval_secs: Some(300),
    };

    pub fn new(row_limit: Option<u64>, interval_secs: Option<u64>) -> Result<Self, String> {
        if row_limit.is_none() && interval_secs.is_none() {
            return Err("a flush policy needs a row limit, an interval or both".into());
        }
        if row_limit == Some(0) {
            return Err("flush row limit must be greater than 0".into());
        }
        if interval_secs == Some(0) {
            return Err("flush interval must be greater than 0 seconds".into());
        }
        Ok(Self {
            row_limit,
            interval_secs,
        })
    }

    /// Parses `rows:N`, `interval:S` or `rows:N,interval:S` (either order).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rows = None;
        let mut interval = None;
        for part in text.split(',') {
            let part = part.trim();
            let (key, value) = part
                .split_once(':')
                .ok_or_else(|| format!("invalid flush policy part '{part}': expected key:value"))?;
            let value = value.trim().trim_end_matches('s');
            let number: u64 = value
                .parse()
                .map_err(|_| format!("invalid number '{value}' in flush policy"))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "rows" | "row_limit" => rows = Some(number),
                "interval" | "time_interval" => interval = Some(number),
                other => return Err(format!("unknown flush policy key '{other}'")),
            }
        }
        Self::new(rows, interval)
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row_limit, self.interval_secs) {
            (Some(r), Some(i)) => write!(f, "rows:{r},interval:{i}"),
            (Some(r), None) => write!(f, "rows:{r}"),
            (None, Some(i)) => write!(f, "interval:{i}"),
            (None, None) => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            FlushPolicy::parse("rows:100").unwrap(),
            FlushPolicy::new(Some(100), None).unwrap()
        );
        assert_eq!(
            FlushPolicy::parse("interval:30").unwrap(),
            FlushPolicy::new(None, Some(30)).unwrap()
        );
        let both = FlushPolicy::parse("interval:30s, rows:5").unwrap();
        assert_eq!(both, FlushPolicy::new(Some(5), Some(30)).unwrap());
        assert_eq!(both.to_string(), "rows:5,interval:30");
    }

    #[test]
    fn rejects_bad_policies() {
        for bad in [
            "",
            "rows",
            "rows:x",
            "rows:0",
            "interval:0",
            "speed:3",
            "rows:-1",
        ] {
            assert!(FlushPolicy::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
