use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::plan::Interval;

/// A point in time, in microseconds since the Unix epoch, always UTC.
///
/// Stored as a plain integer on every backend (so SQLite and PostgreSQL cannot drift apart on
/// time zones) and rendered as RFC 3339 with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The range RFC 3339 can render: years 0001 to 9999.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    pub fn as_unix_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn from_offset_date_time(t: OffsetDateTime) -> Self {
        Timestamp::from_micros((t.unix_timestamp_nanos() / 1000) as i64)
    }

    pub fn to_offset_date_time(self) -> OffsetDateTime {
        // The clamp in `from_micros` keeps every value in range.
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses an RFC 3339 date-time (any offset) or a plain `YYYY-MM-DD` date (midnight UTC).
    /// A time outside years 0001 to 9999 (which RFC 3339 cannot render) is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let t = match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => t,
            Err(_) => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                time::Date::parse(s, &format).ok()?.midnight().assume_utc()
            }
        };
        let micros = i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?;
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(Timestamp(micros))
    }

    /// `2026-01-31T12:00:00.000Z`
    pub fn to_rfc3339(self) -> String {
        let t = self.to_offset_date_time().to_offset(UtcOffset::UTC);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.format(&format).unwrap_or_default()
    }

    /// `2026-01-31`
    pub fn to_date(self) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        self.to_offset_date_time()
            .format(&format)
            .unwrap_or_default()
    }

    pub fn plus_secs(self, secs: u64) -> Self {
        let micros = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        Timestamp::from_micros(self.0.saturating_add(micros))
    }

    pub fn plus_days(self, days: u32) -> Self {
        Timestamp::from_micros(
            self.0
                .saturating_add(Duration::days(days.into()).whole_microseconds() as i64),
        )
    }

    /// The end of a billing period of `count` intervals starting at `self`. Months and years
    /// are calendar months: Jan 31 + 1 month is Feb 28 (or 29), as every billing system does it.
    pub fn plus_interval(self, interval: Interval, count: u32) -> Self {
        match interval {
            Interval::Day => self.plus_days(count),
            Interval::Week => self.plus_days(count.saturating_mul(7)),
            Interval::Month => self.plus_months(count),
            Interval::Year => self.plus_months(count.saturating_mul(12)),
            Interval::Onetime => self,
        }
    }

    fn plus_months(self, months: u32) -> Self {
        let t = self.to_offset_date_time();
        let total = t.year() as i64 * 12 + (t.month() as i64 - 1) + months as i64;
        let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
        let Ok(year) = i32::try_from(year) else {
            return Timestamp::from_micros(MAX_MICROS);
        };
        let Ok(month) = time::Month::try_from(month0 as u8 + 1) else {
            return self;
        };
        let day = t.day().min(month.length(year));
        match time::Date::from_calendar_date(year, month, day) {
            Ok(date) => Timestamp::from_offset_date_time(t.replace_date(date)),
            Err(_) => Timestamp::from_micros(MAX_MICROS),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 date-time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn renders_utc_with_milliseconds() {
        assert_eq!(
            ts("2026-01-31T12:00:00+02:00").to_rfc3339(),
            "2026-01-31T10:00:00.000Z"
        );
        assert_eq!(ts("2026-03-01").to_date(), "2026-03-01");
        assert_eq!(Timestamp::from_micros(1_500).as_unix_millis(), 1);
    }

    #[test]
    fn times_outside_years_1_to_9999_are_not_times() {
        for outside in [
            "0000-12-31",
            "0000-06-01T00:00:00Z",
            "-0001-01-01",
            "10000-01-01",
        ] {
            assert_eq!(Timestamp::parse(outside), None, "{outside}");
        }
        assert_eq!(ts("0001-01-01").to_date(), "0001-01-01");
        assert_eq!(
            ts("9999-12-31T23:59:59.999Z").to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        // An offset can carry a time past the edge once it is moved to UTC.
        assert_eq!(Timestamp::parse("0001-01-01T00:30:00+01:00"), None);
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        let jan31 = ts("2026-01-31T08:30:00Z");
        assert_eq!(
            jan31.plus_interval(Interval::Month, 1).to_rfc3339(),
            "2026-02-28T08:30:00.000Z"
        );
        assert_eq!(
            jan31.plus_interval(Interval::Month, 13).to_date(),
            "2027-02-28"
        );
        assert_eq!(
            ts("2024-02-29").plus_interval(Interval::Year, 1).to_date(),
            "2025-02-28"
        );
        assert_eq!(
            jan31.plus_interval(Interval::Week, 2).to_date(),
            "2026-02-14"
        );
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let far = Timestamp::from_micros(i64::MAX);
        let _ = far.plus_interval(Interval::Year, u32::MAX).to_rfc3339();
        let _ = Timestamp::from_micros(i64::MIN)
            .plus_days(u32::MAX)
            .to_date();
    }
}
