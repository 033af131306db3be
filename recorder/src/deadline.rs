//! Instants a duration from now that never overflow: a deadline of `Duration::MAX` (or any
//! duration past what the platform's clock can represent) means "no deadline" and becomes an
//! instant decades away instead of a panic.

use std::time::Duration;

use tokio::time::Instant;

/// Thirty years: farther than any call or upload, near enough for every clock to represent.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `from + d`, saturated at thirty years after `from`.
pub(crate) fn instant_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d.min(FAR_FUTURE))
        .or_else(|| from.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(from)
}

/// `now + d`, saturated (see [`instant_after`]).
pub(crate) fn from_now(d: Duration) -> Instant {
    instant_after(Instant::now(), d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_is_a_far_deadline_not_a_panic() {
        let now = Instant::now();
        let far = instant_after(now, Duration::MAX);
        assert!(far >= now + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
