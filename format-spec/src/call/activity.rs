//! Speech found in the audio itself (SPEC.md §9 "Speech heard in the audio"): 10 ms frames
//! whose RMS reaches −40 dBFS are sound; sound with pauses under 250 ms between is one
//! segment; segments under 80 ms are clicks, not speech. The response gap heard is from the end
//! of the caller's speech to the start of the agent's answer. The summary builder uses it to
//! place the agent's start (and the user's end) when no stage says; readers use it to check
//! the reported breakdown.

use crate::model::TurnId;

/// Analysis frame for speech detection: 10 ms.
pub const FRAME_NS: u64 = 10_000_000;
/// A frame is sound when its RMS is at least this fraction of full scale (−40 dBFS).
pub const SPEECH_RMS: f32 = 0.01;
/// Pauses shorter than this inside speech do not split a segment.
pub const MERGE_GAP_NS: u64 = 250_000_000;
/// Sound shorter than this is a click, not speech.
pub const MIN_SPEECH_NS: u64 = 80_000_000;
/// When the reported end of the caller's speech is known, the agent's answer is looked for
/// from this long before it (an agent that starts a little early is still answering).
pub const ANSWER_LEAD_NS: u64 = 500_000_000;
/// Audio read before the reported end of the caller's speech when measuring a turn's gap.
pub const GAP_BEFORE_NS: u64 = 2_000_000_000;
/// Audio read after the reported start of the agent when measuring a turn's gap.
pub const GAP_AFTER_NS: u64 = 3_000_000_000;
/// At most this many raw sound runs are kept per track by [`ActivityTracker`]; beyond it the
/// audio is no longer looked at (the breakdown then relies on the stages).
pub const MAX_RUNS: usize = 1 << 20;

/// A stretch of sound on the session clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    pub start_ns: u64,
    pub end_ns: u64,
}

/// RMS per fixed-length frame, filled from streamed samples (mono or interleaved: all channels
/// count), so memory is one value per frame whatever the range.
#[derive(Debug, Clone)]
pub struct EnvelopeBuilder {
    samples_per_frame: u64,
    acc: f64,
    n: u64,
    pub rms: Vec<f32>,
}

impl EnvelopeBuilder {
    /// `samples_per_frame` counts interleaved samples (frames × channels).
    pub fn new(samples_per_frame: u64) -> Self {
        EnvelopeBuilder {
            samples_per_frame: samples_per_frame.max(1),
            acc: 0.0,
            n: 0,
            rms: Vec::new(),
        }
    }

    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            let x = f64::from(s) / 32768.0;
            self.acc += x * x;
            self.n += 1;
            if self.n == self.samples_per_frame {
                self.close();
            }
        }
    }

    fn close(&mut self) {
        if self.n > 0 {
            self.rms.push((self.acc / self.n as f64).sqrt() as f32);
        }
        self.acc = 0.0;
        self.n = 0;
    }

    pub fn finish(mut self) -> Vec<f32> {
        self.close();
        self.rms
    }
}

/// Interleaved samples per analysis frame of `frame_ns` on a track.
pub fn samples_per_frame(sample_rate: u32, channels: u8, frame_ns: u64) -> u64 {
    (u64::from(sample_rate) * frame_ns / 1_000_000_000).max(1) * u64::from(channels.max(1))
}

/// Speech segments of an envelope whose frame 0 starts at `from_ns`.
pub fn segments(rms: &[f32], from_ns: u64, frame_ns: u64) -> Vec<Segment> {
    let mut runs = Vec::new();
    let mut run: Option<u64> = None;
    for (i, &v) in rms.iter().chain(std::iter::once(&0.0)).enumerate() {
        let t = from_ns.saturating_add((i as u64).saturating_mul(frame_ns));
        match (v >= SPEECH_RMS, run) {
            (true, None) => run = Some(t),
            (false, Some(start)) => {
                run = None;
                runs.push(Segment {
                    start_ns: start,
                    end_ns: t,
                });
            }
            _ => {}
        }
    }
    merge_runs(runs)
}

/// Sound runs (any order, may overlap) into speech segments: sorted, pauses under
/// [`MERGE_GAP_NS`] joined, then clicks under [`MIN_SPEECH_NS`] dropped.
pub fn merge_runs(mut runs: Vec<Segment>) -> Vec<Segment> {
    runs.sort_unstable();
    let mut out: Vec<Segment> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(last) if r.start_ns.saturating_sub(last.end_ns) < MERGE_GAP_NS => {
                last.end_ns = last.end_ns.max(r.end_ns)
            }
            _ => out.push(r),
        }
    }
    out.retain(|s| s.end_ns - s.start_ns >= MIN_SPEECH_NS);
    out
}

/// Finds sound on one track as audio records stream in (in any order), on the session clock:
/// 10 ms frames counted from sample 0, so every reader finds the same frames.
#[derive(Debug, Clone)]
pub struct ActivityTracker {
    rate: u64,
    channels: u64,
    /// Samples per channel in one frame.
    frame_len: u64,
    frame: Option<u64>,
    /// Sum of squared samples in the open frame.
    acc: u64,
    n: u64,
    runs: Vec<Segment>,
}

impl ActivityTracker {
    /// `None` for a track no frame can be measured on (rate 0).
    pub fn new(sample_rate: u32, channels: u8) -> Option<Self> {
        if sample_rate == 0 {
            return None;
        }
        let rate = u64::from(sample_rate);
        Some(ActivityTracker {
            rate,
            channels: u64::from(channels.max(1)),
            frame_len: (rate * FRAME_NS / 1_000_000_000).max(1),
            frame: None,
            acc: 0,
            n: 0,
            runs: Vec::new(),
        })
    }

    fn ns(&self, sample: u64) -> u64 {
        (u128::from(sample) * 1_000_000_000 / u128::from(self.rate)).min(u128::from(u64::MAX))
            as u64
    }

    /// Interleaved samples whose first frame (per channel) is `first_sample`. The writer runs
    /// this on every recorded sample: one division per 10 ms frame, integer squares.
    pub fn push(&mut self, first_sample: u64, samples: &[i16]) {
        let ch = self.channels as usize;
        let mut pos = first_sample;
        let mut rest = &samples[..samples.len() / ch * ch];
        while !rest.is_empty() {
            let index = pos / self.frame_len;
            if self.frame != Some(index) {
                self.close();
                self.frame = Some(index);
            }
            let frame_end = index.saturating_add(1).saturating_mul(self.frame_len);
            let take = (frame_end.saturating_sub(pos).max(1) as usize).min(rest.len() / ch);
            let (head, tail) = rest.split_at(take * ch);
            // a frame holds at most (2^32 / 100) × 255 squares of ≤ 2^30: under 2^64 even at
            // the largest rate a header can claim
            self.acc += head
                .iter()
                .map(|&s| {
                    let x = i32::from(s);
                    u64::from((x * x) as u32)
                })
                .sum::<u64>();
            self.n += head.len() as u64;
            pos = pos.saturating_add(take as u64);
            rest = tail;
        }
    }

    fn close(&mut self) {
        let Some(index) = self.frame.take() else {
            return;
        };
        let full = 32768.0 * f64::from(SPEECH_RMS);
        let loud = self.n > 0 && self.acc as f64 / self.n as f64 >= full * full;
        self.acc = 0;
        self.n = 0;
        if !loud {
            return;
        }
        let start = self.ns(index.saturating_mul(self.frame_len));
        let end = self.ns(index.saturating_add(1).saturating_mul(self.frame_len));
        let full = self.runs.len() >= MAX_RUNS;
        match self.runs.last_mut() {
            Some(last) if last.end_ns == start => last.end_ns = end,
            _ if full => {}
            _ => self.runs.push(Segment {
                start_ns: start,
                end_ns: end,
            }),
        }
    }

    /// The speech segments so far (the open frame included).
    pub fn segments(&self) -> Vec<Segment> {
        let mut t = self.clone();
        t.close();
        merge_runs(t.runs)
    }
}

/// The response gap heard in the audio around one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeasuredGap {
    /// End of the caller's last speech before the agent answered.
    pub user_end_ns: Option<u64>,
    /// Start of the agent's answer.
    pub agent_start_ns: Option<u64>,
}

impl MeasuredGap {
    /// Agent start − user end; negative when the agent started over the caller.
    pub fn gap_ns(&self) -> Option<i64> {
        Some(diff(self.agent_start_ns?, self.user_end_ns?))
    }
}

/// The gap heard, from speech segments of both sides (ascending). With the reported end of
/// the caller's speech, the answer is the first agent speech starting at or after
/// [`ANSWER_LEAD_NS`] before it; without, the first agent speech starting after the caller
/// began. The caller's end is the latest end of caller speech that began before the answer.
pub fn measure_gap(
    user: &[Segment],
    agent: &[Segment],
    reported_user_end: Option<u64>,
) -> MeasuredGap {
    let agent_start = match reported_user_end {
        Some(end) => {
            let from = end.saturating_sub(ANSWER_LEAD_NS);
            agent
                .iter()
                .find(|a| a.start_ns >= from)
                .map(|a| a.start_ns)
        }
        None => user.first().and_then(|first| {
            agent
                .iter()
                .find(|a| a.start_ns > first.start_ns)
                .map(|a| a.start_ns)
        }),
    };
    MeasuredGap {
        user_end_ns: user_end_before(user, agent_start),
        agent_start_ns: agent_start,
    }
}

/// The end of the caller's speech heard before the agent's answer began: the latest end of
/// caller speech that started before `answer`; without an answer, the end of the last one.
pub fn user_end_before(user: &[Segment], answer: Option<u64>) -> Option<u64> {
    match answer {
        Some(a) => user
            .iter()
            .filter(|u| u.start_ns < a)
            .map(|u| u.end_ns)
            .max(),
        None => user.last().map(|u| u.end_ns),
    }
}

/// The audio to read to measure a turn's gap: from [`GAP_BEFORE_NS`] before the reported end
/// of the caller's speech to [`GAP_AFTER_NS`] after the agent's reported start (or that end),
/// on the 10 ms frame grid, within the call. `None` without a reported end of speech.
pub fn gap_window(
    user_speech_end_ns: Option<u64>,
    agent_audio_start_ns: Option<u64>,
    call_end_ns: u64,
) -> Option<(u64, u64)> {
    let end = user_speech_end_ns?;
    let from = end.saturating_sub(GAP_BEFORE_NS) / FRAME_NS * FRAME_NS;
    let to = agent_audio_start_ns
        .unwrap_or(end)
        .max(end)
        .saturating_add(GAP_AFTER_NS)
        .min(call_end_ns.max(from));
    (to > from).then_some((from, to))
}

/// The segments of `all` (ascending and disjoint, as [`merge_runs`] makes them) that overlap
/// `[from, to)`.
pub fn within(all: &[Segment], from: u64, to: u64) -> &[Segment] {
    let lo = all.partition_point(|s| s.end_ns <= from);
    let hi = all.partition_point(|s| s.start_ns < to).max(lo);
    &all[lo..hi]
}

/// A turn's measured gap, for a view that shows it beside the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnGap {
    pub turn: TurnId,
    pub measured: MeasuredGap,
}

fn diff(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn env(pattern: &str) -> Vec<f32> {
        pattern
            .chars()
            .map(|c| if c == '#' { 0.2 } else { 0.0 })
            .collect()
    }

    fn seg(a: u64, b: u64) -> Segment {
        Segment {
            start_ns: a * MS,
            end_ns: b * MS,
        }
    }

    #[test]
    fn segments_merge_short_pauses_and_drop_clicks() {
        // 10 ms frames: speech 0..200ms, pause 100ms, speech 300..500ms, click at 800ms
        let rms = env(&format!(
            "{}{}{}{}{}",
            "#".repeat(20),
            ".".repeat(10),
            "#".repeat(20),
            ".".repeat(30),
            "#"
        ));
        assert_eq!(segments(&rms, 1_000 * MS, 10 * MS), vec![seg(1_000, 1_500)]);
    }

    #[test]
    fn gap_from_user_end_to_agent_start() {
        let user = [seg(1_000, 2_000)];
        let agent = [seg(0, 500), seg(3_100, 4_000)];
        assert_eq!(
            measure_gap(&user, &agent, None).gap_ns(),
            Some(1_100 * MS as i64)
        );
        // anchored on the reported end, the earlier agent speech is not the answer
        let g = measure_gap(&user, &agent, Some(2_000 * MS));
        assert_eq!(g.agent_start_ns, Some(3_100 * MS));
        assert_eq!(g.user_end_ns, Some(2_000 * MS));
    }

    #[test]
    fn envelope_rms() {
        let mut b = EnvelopeBuilder::new(4);
        b.push(&[16384, -16384, 16384, -16384, 0, 0]);
        let rms = b.finish();
        assert_eq!(rms.len(), 2);
        assert!((rms[0] - 0.5).abs() < 1e-6);
        assert_eq!(rms[1], 0.0);
    }

    #[test]
    fn tracker_matches_the_envelope_on_the_frame_grid() {
        // 16 kHz: 300 ms silence, 400 ms tone, 100 ms silence, 200 ms tone, delivered in
        // 20 ms records out of order
        let rate = 16_000u32;
        let mut samples = vec![0i16; 16 * 300];
        samples.extend((0..16 * 400).map(|i| if i % 2 == 0 { 3000 } else { -3000 }));
        samples.extend(vec![0i16; 16 * 100]);
        samples.extend((0..16 * 200).map(|i| if i % 2 == 0 { 3000 } else { -3000 }));
        let mut t = ActivityTracker::new(rate, 1).unwrap();
        let mut records: Vec<(u64, &[i16])> = samples
            .chunks(320)
            .enumerate()
            .map(|(i, c)| (i as u64 * 320, c))
            .collect();
        records.swap(3, 20);
        for (first, chunk) in records {
            t.push(first, chunk);
        }
        let mut env = EnvelopeBuilder::new(samples_per_frame(rate, 1, FRAME_NS));
        env.push(&samples);
        let from_env = segments(&env.finish(), 0, FRAME_NS);
        assert_eq!(t.segments(), from_env);
        assert_eq!(t.segments(), vec![seg(300, 1_000)]);
    }

    #[test]
    fn window_on_the_frame_grid() {
        assert_eq!(
            gap_window(Some(2_345 * MS), Some(3_000 * MS), 10_000 * MS),
            Some((340 * MS, 6_000 * MS))
        );
        assert_eq!(gap_window(None, Some(1), 10), None);
    }
}
