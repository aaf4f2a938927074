//! Money and time in the one form they keep from the decision to DynamoDB to the report.
//!
//! - [`Usd`]: an amount in whole nano-dollars (`i64`). Prices are per million tokens, so a
//!   query's cost is a few micro-dollars: nanos hold it exactly and sums of millions of records
//!   stay exact (no float drift in rollups). JSON carries it as a number of dollars (the API
//!   and record contracts: `"cost_usd": 0.000085`); DynamoDB as an exact decimal text.
//! - [`Timestamp`]: an instant (UTC, millisecond precision) with its unix seconds and its
//!   RFC 3339 text, both computed once; JSON carries the text, DynamoDB the text and, for the
//!   TTL, the seconds — never parsed back.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nano-dollars in a dollar.
const NANOS_PER_USD: f64 = 1e9;

/// An amount of US dollars, exact to the nano-dollar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    /// Nothing.
    pub const ZERO: Usd = Usd(0);

    /// From whole nano-dollars.
    pub const fn from_nanos(nanos: i64) -> Self {
        Usd(nanos)
    }

    /// From dollars, rounded to the nearest nano-dollar (prices times token counts land here).
    /// A non-finite amount is zero.
    pub fn from_f64(usd: f64) -> Self {
        if usd.is_finite() {
            Usd((usd * NANOS_PER_USD).round() as i64)
        } else {
            Usd(0)
        }
    }

    /// Whole nano-dollars.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Dollars as a float, for display and ratios.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD
    }

    /// The exact decimal text (`"0.000085"`, `"-1.5"`, `"12"`): how DynamoDB stores it.
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let (whole, frac) = (a / 1_000_000_000, a % 1_000_000_000);
        if frac == 0 {
            format!("{sign}{whole}")
        } else {
            let f = format!("{frac:09}");
            format!("{sign}{whole}.{}", f.trim_end_matches('0'))
        }
    }

    /// Parses an exact decimal (`"0.000085"`, `"-1.5"`, `".25"`); `None` for anything else,
    /// including exponents and more than nine decimals that are not zeros.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let (neg, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let frac_kept = frac.trim_end_matches('0');
        if frac_kept.len() > 9 {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac_nanos: i64 = if frac_kept.is_empty() {
            0
        } else {
            frac_kept.parse().ok()?
        };
        for _ in frac_kept.len()..9 {
            frac_nanos *= 10;
        }
        let n = whole.checked_mul(1_000_000_000)?.checked_add(frac_nanos)?;
        Some(Usd(if neg { -n } else { n }))
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(d)?;
        if usd.is_finite() {
            Ok(Usd::from_f64(usd))
        } else {
            Err(serde::de::Error::custom("an amount of USD must be finite"))
        }
    }
}

/// A point in time (UTC, to the millisecond) with its unix seconds and RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    unix_secs: i64,
    rfc3339: String,
}

impl Timestamp {
    /// Now, UTC, to the millisecond.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// A given instant, UTC, truncated to the millisecond.
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        let t = t
            .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
            .unwrap_or(t);
        let rfc3339 = t
            .format(&Rfc3339)
            .unwrap_or_else(|_| t.unix_timestamp().to_string());
        Timestamp {
            unix_secs: t.unix_timestamp(),
            rfc3339,
        }
    }

    /// An RFC 3339 text, kept as written (so a record read back writes the same text).
    pub fn parse(rfc3339: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
        Some(Timestamp {
            unix_secs: t.unix_timestamp(),
            rfc3339: rfc3339.to_string(),
        })
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.unix_secs
    }

    /// The RFC 3339 text.
    pub fn as_str(&self) -> &str {
        &self.rfc3339
    }

    /// The UTC day, `YYYY-MM-DD`.
    pub fn day(&self) -> &str {
        self.rfc3339.get(..10).unwrap_or(&self.rfc3339)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_and_round_trip() {
        let p = |s: &str| Usd::parse_decimal(s).map(Usd::nanos);
        assert_eq!(p("0.000085"), Some(85_000));
        assert_eq!(p("12"), Some(12_000_000_000));
        assert_eq!(p("-1.5"), Some(-1_500_000_000));
        assert_eq!(p(".25"), Some(250_000_000));
        assert_eq!(p("0.1234567890"), Some(123_456_789));
        assert_eq!(p("0.0000000001"), None);
        assert_eq!(p("1e-7"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("-"), None);
        for n in [
            0,
            1,
            85_000,
            999_999_999,
            1_000_000_000,
            -1_500_000_000,
            i64::MAX / 2,
        ] {
            let u = Usd::from_nanos(n);
            assert_eq!(Usd::parse_decimal(&u.to_decimal()), Some(u), "{n}");
        }
        assert_eq!(Usd::from_nanos(85_000).to_string(), "0.000085");
        assert_eq!(Usd::from_nanos(-1_500_000_000).to_decimal(), "-1.5");
    }

    #[test]
    fn floats_round_to_the_nano_and_json_keeps_the_dollar_number() {
        assert_eq!(Usd::from_f64(0.000085).nanos(), 85_000);
        assert_eq!(Usd::from_f64(1.2345678904).nanos(), 1_234_567_890);
        assert_eq!(Usd::from_f64(f64::NAN), Usd::ZERO);
        assert_eq!(Usd::from_nanos(1_500_000_000).as_f64(), 1.5);
        let json = serde_json::to_string(&Usd::from_nanos(85_000)).unwrap();
        assert_eq!(json, serde_json::to_string(&0.000085_f64).unwrap());
        assert_eq!(
            serde_json::from_str::<Usd>("0.000085").unwrap().nanos(),
            85_000
        );
        assert!(serde_json::from_str::<Usd>("\"1\"").is_err());
        let total: Usd = [1, 2, 3].into_iter().map(Usd::from_nanos).sum();
        assert_eq!(total, Usd::from_nanos(6));
        assert_eq!(Usd::from_nanos(5) - Usd::from_nanos(7), Usd::from_nanos(-2));
    }

    #[test]
    fn timestamps_keep_seconds_and_text() {
        let t = Timestamp::from_datetime(time::macros::datetime!(2026-11-30 14:15:49.123456 UTC));
        assert_eq!(t.as_str(), "2026-11-30T14:15:49.123Z");
        assert_eq!(t.unix_secs(), 1_796_048_149);
        assert_eq!(t.day(), "2026-11-30");
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        let kept = Timestamp::parse("2026-11-30T14:15:49Z").unwrap();
        assert_eq!(kept.as_str(), "2026-11-30T14:15:49Z");
        assert_eq!(kept.unix_secs(), 1_796_048_149);
    }
}
