//! The session clock (nanoseconds since the session start) and the placement of audio frames
//! on it: gaps stay gaps, drift between a track's sample count and the clock is corrected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How a session measures "now" for calls without an explicit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Monotonic wall time since `start_session` (the default, for live calls).
    #[default]
    Realtime,
    /// Time advances only through explicit timestamps ([`crate::Session::at`]): "now" is the
    /// latest time given so far. For simulations and importers: the archive then depends only
    /// on the calls made, never on how fast they were made.
    Manual,
}

/// Session time source shared by the hot path and the writer.
#[derive(Debug)]
pub(crate) struct SessionClock {
    origin: Instant,
    mode: ClockMode,
    latest: AtomicU64,
}

impl SessionClock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        SessionClock {
            origin: Instant::now(),
            mode,
            latest: AtomicU64::new(0),
        }
    }

    pub(crate) fn mode(&self) -> ClockMode {
        self.mode
    }

    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match self.mode {
            ClockMode::Realtime => self.origin.elapsed().as_nanos() as u64,
            ClockMode::Manual => self.latest.load(Ordering::Relaxed),
        }
    }

    /// Notes an explicit time (advances a manual clock).
    #[inline]
    pub(crate) fn observe(&self, time_ns: u64) {
        if self.mode == ClockMode::Manual {
            self.latest.fetch_max(time_ns, Ordering::Relaxed);
        }
    }
}

/// Session time of sample `n` on a track of `rate` samples/s.
pub(crate) fn sample_time_ns(n: u64, rate: u32) -> u64 {
    (u128::from(n) * 1_000_000_000 / u128::from(rate.max(1))) as u64
}

/// Index of the sample playing at session time `t` (rounded to the nearest sample).
pub(crate) fn sample_at(t: u64, rate: u32) -> u64 {
    ((u128::from(t) * u128::from(rate) + 500_000_000) / 1_000_000_000) as u64
}

/// Where one frame goes on its track's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Index of the first kept sample (per channel) on the track timeline.
    pub first_sample: u64,
    /// Samples (per channel) cut from the start of the frame because they would overlap
    /// audio already placed (the track ran ahead of the clock).
    pub skip_frames: u64,
    /// A drift correction was made: samples inserted (> 0) or cut (< 0).
    pub drift_samples: Option<i64>,
}

/// Places the frames of one track.
///
/// Each frame carries the session time its first sample was captured. Frames normally follow
/// each other sample by sample. When the clock and the sample count disagree by more than the
/// tolerance:
/// - after a pause in delivery (the frame arrives later than the previous one's end plus the
///   tolerance), it is a **gap**: the frame goes where the clock says and the silence stays
///   (`first_sample` jumps);
/// - with frames arriving back to back, it is **drift** (the source's sample rate differs from
///   the clock's): the frame is re-anchored to the clock and the correction is reported, either
///   silence inserted (source slow) or overlapping samples cut (source fast).
#[derive(Debug, Clone)]
pub(crate) struct AudioPlacer {
    rate: u32,
    tolerance_ns: u64,
    next_sample: Option<u64>,
    last_end_ns: u64,
}

impl AudioPlacer {
    pub(crate) fn new(rate: u32, tolerance_ns: u64) -> Self {
        AudioPlacer {
            rate: rate.max(1),
            tolerance_ns,
            next_sample: None,
            last_end_ns: 0,
        }
    }

    pub(crate) fn place(&mut self, time_ns: u64, frames: u64) -> Placement {
        let clock_sample = sample_at(time_ns, self.rate);
        let tolerance = sample_at(self.tolerance_ns, self.rate) as i128;
        let duration_ns = sample_time_ns(frames, self.rate);
        let placement = match self.next_sample {
            None => Placement {
                first_sample: clock_sample,
                skip_frames: 0,
                drift_samples: None,
            },
            Some(next) => {
                let d = i128::from(clock_sample) - i128::from(next);
                if d.abs() <= tolerance {
                    Placement {
                        first_sample: next,
                        skip_frames: 0,
                        drift_samples: None,
                    }
                } else if d > 0 {
                    let paused = time_ns > self.last_end_ns.saturating_add(self.tolerance_ns);
                    Placement {
                        first_sample: clock_sample,
                        skip_frames: 0,
                        drift_samples: (!paused).then_some(d as i64),
                    }
                } else {
                    let overlap = (-d) as u64;
                    let skip = overlap.min(frames);
                    Placement {
                        first_sample: next,
                        skip_frames: skip,
                        drift_samples: Some(-(skip as i64)),
                    }
                }
            }
        };
        let kept = frames - placement.skip_frames;
        if kept > 0 || self.next_sample.is_none() {
            self.next_sample = Some(placement.first_sample + kept);
        }
        self.last_end_ns = time_ns.saturating_add(duration_ns);
        placement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// 16 kHz, 20 ms frames (320 samples), 40 ms tolerance.
    fn placer() -> AudioPlacer {
        AudioPlacer::new(16_000, 40 * MS)
    }

    #[test]
    fn contiguous_frames_follow_each_other_despite_jitter() {
        let mut p = placer();
        let jitter = [0, 3, 7, 1, 9, 2, 0, 5];
        let mut expected = 0;
        for (i, j) in jitter.iter().enumerate() {
            let t = i as u64 * 20 * MS + j * MS;
            let pl = p.place(t, 320);
            assert_eq!(pl.first_sample, expected, "frame {i}");
            assert_eq!(pl.drift_samples, None);
            expected += 320;
        }
    }

    #[test]
    fn first_frame_lands_where_the_clock_says() {
        let mut p = placer();
        let pl = p.place(1_500 * MS, 320);
        assert_eq!(pl.first_sample, 24_000);
    }

    #[test]
    fn a_gap_stays_a_gap() {
        let mut p = placer();
        for i in 0..10 {
            p.place(i * 20 * MS, 320);
        }
        // 2 s of nothing, then speech again
        let pl = p.place(2_200 * MS, 320);
        assert_eq!(pl.first_sample, 2_200 * 16);
        assert_eq!(pl.drift_samples, None, "a pause in delivery is not drift");
        let pl = p.place(2_220 * MS, 320);
        assert_eq!(pl.first_sample, 2_220 * 16);
    }

    #[test]
    fn slow_source_drift_is_corrected_and_reported() {
        // a device that really delivers 15 900 samples per second of clock: each 320-sample
        // frame spans 20.126 ms of clock time
        let mut p = placer();
        let frame_ns = 320 * 1_000_000_000 / 15_900;
        let mut corrections = Vec::new();
        for i in 0..1000u64 {
            let t = i * frame_ns;
            let pl = p.place(t, 320);
            if let Some(d) = pl.drift_samples {
                corrections.push((i, d));
                // after a correction the frame sits exactly where the clock says
                assert_eq!(pl.first_sample, sample_at(t, 16_000));
            }
            // never further from the clock than the tolerance (640 samples)
            let off = pl.first_sample as i64 - sample_at(t, 16_000) as i64;
            assert!(off.abs() <= 640, "frame {i} off by {off}");
        }
        assert!(!corrections.is_empty());
        assert!(corrections.iter().all(|&(_, d)| d > 640), "{corrections:?}");
    }

    #[test]
    fn fast_source_drift_cuts_overlap() {
        // 16 100 samples per second of clock
        let mut p = placer();
        let frame_ns = 320 * 1_000_000_000 / 16_100;
        let mut cut = 0i64;
        let mut last_end = 0;
        for i in 0..1000u64 {
            let t = i * frame_ns;
            let pl = p.place(t, 320);
            assert!(pl.first_sample >= last_end, "no overlap at frame {i}");
            last_end = pl.first_sample + 320 - pl.skip_frames;
            let off = pl.first_sample as i64 - sample_at(t, 16_000) as i64;
            assert!(off.abs() <= 640 + 320, "frame {i} off by {off}");
            if let Some(d) = pl.drift_samples {
                assert!(d < 0);
                cut += -d;
                if pl.skip_frames < 320 {
                    assert_eq!(pl.first_sample, sample_at(t, 16_000) + pl.skip_frames);
                }
            }
        }
        assert!(cut > 0);
    }
}
