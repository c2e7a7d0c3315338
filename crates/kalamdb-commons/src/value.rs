//! One cell of a row, as the hot tier stores it.

/// A typed cell value. Integer widths follow the column type; UUID and JSON
/// columns hold `Text` (canonical UUID text, JSON text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// Unscaled value; the scale comes from the column type.
    Decimal(i128),
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A time of day (microseconds since midnight) as `HH:MM:SS`, with the
/// fraction when there is one (`13:45:30.25`).
pub fn time_of_day(micros: i64) -> String {
    let micros = micros.rem_euclid(86_400_000_000);
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        return hms;
    }
    let frac = format!("{frac:06}");
    format!("{hms}.{}", frac.trim_end_matches('0'))
}

/// A timestamp (microseconds since the epoch) as RFC 3339 in UTC,
/// `2024-01-02T03:04:05.123456Z` (the fraction only when there is one).
pub fn timestamp_utc(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let (year, month, day) = civil_date(days);
    let time = time_of_day(micros);
    format!("{year:04}-{month:02}-{day:02}T{time}Z")
}

/// Year, month and day of a count of days since 1970-01-01, in the
/// proleptic Gregorian calendar (eras of 400 years, each 146,097 days,
/// counted from 0000-03-01 so the leap day ends a year).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{civil_date, time_of_day, timestamp_utc};

    #[test]
    fn dates_match_the_calendar() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(-719_468), (0, 3, 1));
        assert_eq!(timestamp_utc(1_704_164_645_000_000), "2024-01-02T03:04:05Z");
        assert_eq!(timestamp_utc(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn times_of_day_read_as_sql_writes_them() {
        assert_eq!(time_of_day(0), "00:00:00");
        assert_eq!(time_of_day(49_530_250_000), "13:45:30.25");
        assert_eq!(time_of_day(86_399_999_999), "23:59:59.999999");
    }
}
