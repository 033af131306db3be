//! How times and durations read on screen: session clock positions (`1:02:03.4`, `02:03.4`)
//! and latencies (`420ms`, `1.92s`).

/// A position on the session clock.
pub fn clock(ns: u64) -> String {
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
pub fn clock_short(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// A latency or duration, signed: `-35ms`, `420ms`, `1.92s`, `75.0s`, `2h03m`.
pub fn dur(ns: i64) -> String {
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
pub fn opt_dur(ns: Option<i64>) -> String {
    ns.map_or_else(|| "—".to_string(), dur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(clock(3_723_400_000_000), "1:02:03.4");
        assert_eq!(clock(62_500_000_000), "01:02.5");
        assert_eq!(dur(420_000_000), "420ms");
        assert_eq!(dur(-35_000_000), "-35ms");
        assert_eq!(dur(1_920_000_000), "1.92s");
    }
}
