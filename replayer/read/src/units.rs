//! Durations and instants as people type and read them: `12.5s`, `1m03s`, `300ms`, `7d`,
//! `2026-11-21`, and the clock formats of subtitles (`00:01:02,345`).

use crate::error::{AppError, Result};

const NS_PER_MS: f64 = 1_000_000.0;

/// Parses a duration such as `12.5s`, `1m03s`, `300ms`, `1h30m`, `7d`, `2w` or a bare number
/// of seconds (`1.5`) into nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let bad = |why: &str| {
        AppError::Usage(format!(
            "cannot read '{s}' as a duration ({why}); write e.g. 300ms, 12.5s, 1m03s, 2h, 7d"
        ))
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(bad("negative or not finite"));
        }
        return Ok((secs * 1e9).round() as u64);
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a number needs a unit"))?;
        if num_len == 0 {
            return Err(bad("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            _ => return Err(bad(&format!("unknown unit '{unit}'"))),
        };
        total += value * scale;
    }
    Ok(total.round() as u64)
}

/// Parses an instant for `--since`/`--until`: a duration back from `now_unix_ns` (`7d`,
/// `12h`), an RFC 3339 time, a date `YYYY-MM-DD` (UTC midnight) or `YYYY-MM-DD HH:MM[:SS]`
/// (UTC). Returns unix nanoseconds.
pub fn parse_instant(s: &str, now_unix_ns: i64) -> Result<i64> {
    let t = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| AppError::Usage(format!("'{s}' is out of range")));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(dt.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let dt = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(dt.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX));
    }
    match parse_duration(t) {
        Ok(ago) => Ok(now_unix_ns.saturating_sub(ago.min(i64::MAX as u64) as i64)),
        Err(_) => Err(AppError::Usage(format!(
            "cannot read '{s}' as a time: write a duration back from now (7d, 12h), \
             a date (2026-11-21) or an RFC 3339 time (2026-11-21T10:00:00Z)"
        ))),
    }
}

/// Now, as unix nanoseconds.
pub fn now_unix_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Nanoseconds as milliseconds (for JSON and the catalog).
pub fn ns_to_ms(ns: i64) -> f64 {
    ns as f64 / NS_PER_MS
}

/// A latency or duration, signed, as every view prints it: `-35ms`, `420ms`, `1.92s`,
/// `75.0s`, `12m03s`, `2h03m`.
pub fn format_latency(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    if a < 1_000_000_000 {
        format!("{sign}{}ms", a / 1_000_000)
    } else if a < 10_000_000_000 {
        format!("{sign}{:.2}s", a as f64 / 1e9)
    } else if a < 600_000_000_000 {
        format!("{sign}{:.1}s", a as f64 / 1e9)
    } else if a < 3_600_000_000_000 {
        format!(
            "{sign}{}m{:02}s",
            a / 60_000_000_000,
            (a / 1_000_000_000) % 60
        )
    } else {
        format!(
            "{sign}{}h{:02}m",
            a / 3_600_000_000_000,
            (a / 60_000_000_000) % 60
        )
    }
}

/// An optional latency: `—` when absent.
pub fn format_opt_latency(ns: Option<i64>) -> String {
    ns.map_or_else(|| "—".to_string(), format_latency)
}

/// A position on the session clock to a tenth of a second: `1:02:03.4`, `02:03.4`.
pub fn format_clock_tenths(ns: u64) -> String {
    let tenths = ns / 100_000_000;
    let (h, m, s, t) = (
        tenths / 36_000,
        (tenths / 600) % 60,
        (tenths / 10) % 60,
        tenths % 10,
    );
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{t}")
    } else {
        format!("{m:02}:{s:02}.{t}")
    }
}

/// A short clock label for axes: `1:02:03`, `02:03`.
pub fn format_clock_short(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// Milliseconds for a table, same style as [`format_latency`].
pub fn format_ms(ms: f64) -> String {
    format_latency((ms * NS_PER_MS) as i64)
}

/// A session time for a table: `1:02.345` (or `1:02:03.456` past an hour).
pub fn format_clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{frac:03}")
    } else {
        format!("{m}:{s:02}.{frac:03}")
    }
}

/// A cue time: `HH:MM:SS,mmm` (SRT, `sep = ','`) or `HH:MM:SS.mmm` (WebVTT, `sep = '.'`).
pub fn format_cue_time(ns: u64, sep: char) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A duration for a table: `4m12s`, `1h02m`, `38s`.
pub fn format_duration(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", ns as f64 / 1e9)
    }
}

/// Shortens `text` to at most `max` characters, ending with `…` when cut.
pub fn preview(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("12.5s").unwrap(), 12_500_000_000);
        assert_eq!(parse_duration("1m03s").unwrap(), 63_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86_400_000_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert!(parse_duration("12x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn instants() {
        let now = 1_000 * 86_400_000_000_000i64;
        assert_eq!(parse_instant("1d", now).unwrap(), now - 86_400_000_000_000);
        assert_eq!(
            parse_instant("2026-11-21", now).unwrap(),
            1_795_219_200_000_000_000
        );
        assert_eq!(
            parse_instant("2026-11-21T10:00:00Z", now).unwrap(),
            1_795_255_200_000_000_000
        );
        assert!(parse_instant("yesterday", now).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_cue_time(62_345_000_000, ','), "00:01:02,345");
        assert_eq!(format_cue_time(3_723_004_000_000, '.'), "01:02:03.004");
        assert_eq!(format_latency(420_000_000), "420ms");
        assert_eq!(format_latency(1_820_000_000), "1.82s");
        assert_eq!(format_latency(-35_000_000), "-35ms");
        assert_eq!(format_latency(75_000_000_000), "75.0s");
        assert_eq!(format_latency(723_000_000_000), "12m03s");
        assert_eq!(format_opt_latency(None), "—");
        assert_eq!(format_clock_tenths(3_723_400_000_000), "1:02:03.4");
        assert_eq!(format_clock_tenths(62_500_000_000), "01:02.5");
        assert_eq!(format_clock_short(62_500_000_000), "01:02");
        assert_eq!(preview("abcdef", 4), "abc…");
    }
}
