//! Speech measured from the audio itself: an RMS envelope per track, speech segments found in
//! it, and the gap between the end of the user's speech and the start of the agent's, to set
//! beside what the agent reported (SPEC.md §9, last paragraph).

/// A frame counts as speech when its RMS is at least this fraction of full scale (−40 dBFS).
pub const SPEECH_RMS: f32 = 0.01;
/// Pauses shorter than this inside speech do not split a segment.
pub const MERGE_GAP_NS: u64 = 250_000_000;
/// Bursts shorter than this are noise, not speech.
pub const MIN_SPEECH_NS: u64 = 80_000_000;

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

/// A stretch of speech on the session clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start_ns: u64,
    pub end_ns: u64,
}

/// Speech segments of an envelope whose frame 0 starts at `from_ns`.
pub fn segments(rms: &[f32], from_ns: u64, frame_ns: u64) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut run: Option<u64> = None;
    for (i, &v) in rms.iter().chain(std::iter::once(&0.0)).enumerate() {
        let t = from_ns + i as u64 * frame_ns;
        match (v >= SPEECH_RMS, run) {
            (true, None) => run = Some(t),
            (false, Some(start)) => {
                run = None;
                match out.last_mut() {
                    Some(last) if start.saturating_sub(last.end_ns) < MERGE_GAP_NS => {
                        last.end_ns = t
                    }
                    _ => out.push(Segment {
                        start_ns: start,
                        end_ns: t,
                    }),
                }
            }
            _ => {}
        }
    }
    out.retain(|s| s.end_ns - s.start_ns >= MIN_SPEECH_NS);
    out
}

/// The response gap heard in the audio around one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredGap {
    /// End of the user's last speech before the agent answered.
    pub user_end_ns: Option<u64>,
    /// Start of the agent's answer.
    pub agent_start_ns: Option<u64>,
}

impl MeasuredGap {
    /// Agent start − user end; negative when the agent started over the user.
    pub fn gap_ns(&self) -> Option<i64> {
        Some(self.agent_start_ns? as i64 - self.user_end_ns? as i64)
    }
}

/// Finds the first agent speech that starts after the user began speaking in the window,
/// and the end of the user speech that began before it.
pub fn measure_gap(user: &[Segment], agent: &[Segment]) -> MeasuredGap {
    let Some(first_user) = user.first() else {
        return MeasuredGap {
            user_end_ns: None,
            agent_start_ns: agent.first().map(|a| a.start_ns),
        };
    };
    let agent_start = agent
        .iter()
        .find(|a| a.start_ns > first_user.start_ns)
        .map(|a| a.start_ns);
    let user_end = match agent_start {
        Some(a) => user
            .iter()
            .filter(|u| u.start_ns < a)
            .map(|u| u.end_ns)
            .max(),
        None => user.last().map(|u| u.end_ns),
    };
    MeasuredGap {
        user_end_ns: user_end,
        agent_start_ns: agent_start,
    }
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
        let s = segments(&rms, 1_000 * MS, 10 * MS);
        assert_eq!(
            s,
            vec![Segment {
                start_ns: 1_000 * MS,
                end_ns: 1_500 * MS
            }]
        );
    }

    #[test]
    fn gap_from_user_end_to_agent_start() {
        let seg = |a, b| Segment {
            start_ns: a * MS,
            end_ns: b * MS,
        };
        let user = [seg(1_000, 2_000)];
        let agent = [seg(0, 500), seg(3_100, 4_000)];
        let g = measure_gap(&user, &agent);
        assert_eq!(g.gap_ns(), Some(1_100 * MS as i64));
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
}
