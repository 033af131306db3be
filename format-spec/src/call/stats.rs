//! Percentiles, one definition for the summary, `inspect`, `stats` and the catalog.

/// The 1-based nearest rank of percentile `p` (0–100) among `n` values: `ceil(p/100 × n)`,
/// at least 1 and at most `n`.
pub fn nearest_rank(n: usize, p: f64) -> usize {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    (((p / 100.0) * n as f64).ceil() as usize).clamp(1, n.max(1))
}

/// Nearest-rank percentile of values already sorted ascending.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[nearest_rank(sorted.len(), p) - 1])
}

/// Nearest-rank percentile of unsorted values, found by selection (O(n)); reorders `values`.
/// NaN sorts last.
pub fn select_percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let k = nearest_rank(values.len(), p) - 1;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    Some(*v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(10));
        assert_eq!(percentile::<i64>(&[], 50.0), None);
        let mut f = [3.0, 1.0, 2.0];
        assert_eq!(select_percentile(&mut f, 50.0), Some(2.0));
        let mut one = [7.0];
        assert_eq!(select_percentile(&mut one, 99.0), Some(7.0));
    }

    #[test]
    fn selection_agrees_with_sorting() {
        let mut x: Vec<f64> = (0..101).map(|i| ((i * 37) % 101) as f64).collect();
        let mut sorted = x.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [1.0, 50.0, 90.0, 95.0, 99.0, 100.0] {
            assert_eq!(select_percentile(&mut x, p), percentile(&sorted, p));
        }
    }
}
