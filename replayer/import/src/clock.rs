//! Converts the timestamps of a foreign recording (unix seconds, or seconds since the
//! session start) to calltape session time, and second-valued delays to nanoseconds,
//! rejecting values no real call produces.

use calltape_format::summary::ABSURD_NS;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Unix seconds a real report can hold: 2001-09-09 .. 2286-11-20.
const UNIX_MIN: f64 = 1.0e9;
const UNIX_MAX: f64 = 1.0e10;

/// A number from JSON: a number, or a string holding one. `None` for anything else,
/// NaN and infinities.
pub fn number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

/// `v` as unix seconds if it is one a real call can have.
pub fn unix_seconds(v: &Value) -> Option<f64> {
    number(v).filter(|&x| (UNIX_MIN..UNIX_MAX).contains(&x))
}

/// `v` (unix seconds) as unix ns, exact to the digits written: `1763719203.35` is
/// `1763719203350000000`, not the nearest f64 (which is 240 ns off at today's times).
pub fn unix_ns(v: &Value) -> Option<i64> {
    unix_seconds(v)?;
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    decimal_ns(&text).or_else(|| number(v).map(seconds_to_ns))
}

/// `v` (seconds, number or numeric string) as ns, exact to the digits written.
pub fn seconds_ns(v: &Value) -> Option<i64> {
    let x = number(v)?;
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    decimal_ns(&text).or_else(|| Some(seconds_to_ns(x)))
}

/// A plain decimal number of seconds (`-12.345678901`) as ns, rounded to the nearest ns.
/// `None` for exponents and anything else.
pub fn decimal_ns(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 12
    {
        return None;
    }
    let mut ns: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    ns *= 1_000_000_000;
    let mut scale = 100_000_000i128;
    for (i, b) in frac.bytes().enumerate() {
        let d = i128::from(b - b'0');
        if i < 9 {
            ns += d * scale;
            scale /= 10;
        } else {
            if i == 9 && d >= 5 {
                ns += 1;
            }
            break;
        }
    }
    i64::try_from(if neg { -ns } else { ns }).ok()
}

/// What is wrong with a delay given in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BadDelay {
    NotANumber,
    Negative(f64),
    Absurd(f64),
}

impl BadDelay {
    pub fn code(&self) -> &'static str {
        match self {
            BadDelay::NotANumber => "invalid_metric",
            BadDelay::Negative(_) => "negative_metric",
            BadDelay::Absurd(_) => "absurd_metric",
        }
    }
}

/// A delay in seconds as ns: must be a number in `0 ..= 60 s` (the summary's absurd limit).
pub fn delay_ns(v: &Value) -> Result<u64, BadDelay> {
    let s = number(v).ok_or(BadDelay::NotANumber)?;
    if s < 0.0 {
        return Err(BadDelay::Negative(s));
    }
    let ns = (s * 1e9).round();
    if ns > ABSURD_NS as f64 {
        return Err(BadDelay::Absurd(s));
    }
    Ok(ns as u64)
}

/// Seconds as signed ns, saturating.
pub fn seconds_to_ns(s: f64) -> i64 {
    (s * 1e9).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

/// Session time 0 of an imported call, as unix ns, and the conversion to session ns.
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    t0_unix_ns: i64,
    /// Times before t0 seen (and clamped to 0) so far.
    clamped: u64,
    earliest_before_ns: i64,
}

impl SessionClock {
    pub fn new(t0_unix_ns: i64) -> SessionClock {
        SessionClock {
            t0_unix_ns,
            clamped: 0,
            earliest_before_ns: 0,
        }
    }

    /// Unix ns of session time 0.
    pub fn t0_unix_ns(&self) -> i64 {
        self.t0_unix_ns
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-21T10:00:00.000Z`.
    pub fn started_at(&self) -> String {
        rfc3339(self.t0_unix_ns())
    }

    /// Signed session ns of a unix time in ns.
    pub fn offset_ns(&self, unix_ns: i64) -> i64 {
        unix_ns.saturating_sub(self.t0_unix_ns)
    }

    /// Session ns of a unix time in ns; times before t0 are clamped to 0 (and counted).
    pub fn at(&mut self, unix_ns: i64) -> u64 {
        let ns = self.offset_ns(unix_ns);
        if ns < 0 {
            self.clamped += 1;
            self.earliest_before_ns = self.earliest_before_ns.min(ns);
            0
        } else {
            ns as u64
        }
    }

    /// How many times were clamped to 0 and how far before t0 the earliest lay (ns, ≤ 0).
    pub fn clamped(&self) -> (u64, i64) {
        (self.clamped, self.earliest_before_ns)
    }
}

/// RFC 3339 in UTC with milliseconds for unix ns.
pub fn rfc3339(unix_ns: i64) -> String {
    DateTime::<Utc>::from_timestamp(
        unix_ns.div_euclid(1_000_000_000),
        unix_ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delays_are_checked() {
        assert_eq!(delay_ns(&json!(0.25)), Ok(250_000_000));
        assert_eq!(delay_ns(&json!("0.5")), Ok(500_000_000));
        assert_eq!(delay_ns(&json!(-0.1)), Err(BadDelay::Negative(-0.1)));
        assert_eq!(delay_ns(&json!(250.0)), Err(BadDelay::Absurd(250.0)));
        assert_eq!(delay_ns(&json!(null)), Err(BadDelay::NotANumber));
    }

    #[test]
    fn clock_converts_and_clamps() {
        let mut c = SessionClock::new(1_700_000_000_000_000_000);
        assert_eq!(c.at(1_700_000_001_500_000_000), 1_500_000_000);
        assert_eq!(c.at(1_699_999_999_000_000_000), 0);
        assert_eq!(c.clamped(), (1, -1_000_000_000));
        assert_eq!(c.started_at(), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn unix_times_are_exact_to_the_digit() {
        assert_eq!(
            unix_ns(&json!(1763719203.35)),
            Some(1_763_719_203_350_000_000)
        );
        assert_eq!(
            unix_ns(&json!("1763719203.1234567891")),
            Some(1_763_719_203_123_456_789)
        );
        assert_eq!(unix_ns(&json!(12.5)), None);
        assert_eq!(decimal_ns("-0.0000000015"), Some(-2));
        assert_eq!(decimal_ns("1e9"), None);
    }
}
