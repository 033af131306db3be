//! Audio on the session clock (SPEC §4.2, §5): a track's frames laid on its sample timeline
//! for a window of session time, silence where nothing was recorded (gaps are never
//! collapsed), and samples that overlap what was already placed dropped (the earlier frame
//! wins). Every reader that plays, exports or measures audio places it with this.

use crate::model::{AudioFrame, Track};

/// Sample index (per channel) at session time `ns` on a track of `rate` Hz.
pub fn sample_at(ns: u64, rate: u32) -> u64 {
    (u128::from(ns) * u128::from(rate) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// Silence is handed out in pieces of at most this many samples.
const SILENCE: [i16; 4096] = [0; 4096];

/// One track's samples in `[from_ns, to_ns)`, placed as frames arrive in sample order: exactly
/// [`frames`](Self::frames) × channels interleaved samples reach the sink in all.
#[derive(Debug, Clone)]
pub struct TrackWindow {
    channels: u64,
    first: u64,
    end: u64,
    /// Next sample index (per channel) to hand out.
    next: u64,
}

impl TrackWindow {
    pub fn new(track: &Track, from_ns: u64, to_ns: u64) -> Self {
        let first = sample_at(from_ns, track.sample_rate);
        TrackWindow {
            channels: u64::from(track.channels.max(1)),
            first,
            end: sample_at(to_ns, track.sample_rate).max(first),
            next: first,
        }
    }

    /// Samples per channel in the window.
    pub fn frames(&self) -> u64 {
        self.end - self.first
    }

    /// Samples per channel of silence placing `frame` would fill in first (0 when it
    /// overlaps what was placed or starts where it ends).
    pub fn silence_before(&self, frame: &AudioFrame) -> u64 {
        frame.first_sample.min(self.end).saturating_sub(self.next)
    }

    /// Samples per channel of silence [`finish`](Self::finish) would fill in.
    pub fn silence_to_end(&self) -> u64 {
        self.end - self.next
    }

    /// Places one frame: silence up to it, then its part inside the window. A frame before
    /// what was already placed, or after the window, gives nothing.
    pub fn place<E>(
        &mut self,
        frame: &AudioFrame,
        sink: &mut dyn FnMut(&[i16]) -> Result<(), E>,
    ) -> Result<(), E> {
        let frame_end = frame.first_sample.saturating_add(frame.frames());
        if frame_end <= self.next || frame.first_sample >= self.end {
            return Ok(());
        }
        self.silence_until(frame.first_sample.min(self.end), sink)?;
        let skip = self.next - frame.first_sample;
        let take = frame_end.min(self.end) - self.next;
        let (s, t) = (
            (skip * self.channels) as usize,
            (take * self.channels) as usize,
        );
        if let Some(samples) = frame.samples.get(s..s + t) {
            sink(samples)?;
        }
        self.next += take;
        Ok(())
    }

    /// Silence to the end of the window.
    pub fn finish<E>(&mut self, sink: &mut dyn FnMut(&[i16]) -> Result<(), E>) -> Result<(), E> {
        self.silence_until(self.end, sink)
    }

    fn silence_until<E>(
        &mut self,
        upto: u64,
        sink: &mut dyn FnMut(&[i16]) -> Result<(), E>,
    ) -> Result<(), E> {
        let per = SILENCE.len() as u64 / self.channels;
        while self.next < upto {
            let n = (upto - self.next).min(per);
            sink(&SILENCE[..(n * self.channels) as usize])?;
            self.next += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AudioCodec, Speaker};

    fn track(rate: u32, channels: u8) -> Track {
        Track {
            id: 1,
            role: Speaker::User,
            sample_rate: rate,
            channels,
            codec: AudioCodec::Pcm16Lpc2,
            name: None,
        }
    }

    fn frame(first: u64, samples: Vec<i16>, channels: u8) -> AudioFrame {
        AudioFrame {
            track: 1,
            channels,
            first_sample: first,
            samples,
        }
    }

    #[test]
    fn gaps_are_silence_and_overlaps_keep_the_first() {
        // 1 kHz, window 2 ms..12 ms = samples 2..12
        let mut w = TrackWindow::new(&track(1000, 1), 2_000_000, 12_000_000);
        let mut out: Vec<i16> = Vec::new();
        let mut sink = |s: &[i16]| -> Result<(), ()> {
            out.extend_from_slice(s);
            Ok(())
        };
        w.place(&frame(0, vec![1, 2, 3, 4], 1), &mut sink).unwrap();
        // samples 3..5: sample 3 was placed already (dropped), sample 4 is new
        w.place(&frame(3, vec![9, 9], 1), &mut sink).unwrap();
        w.place(&frame(7, vec![5, 6], 1), &mut sink).unwrap();
        w.place(&frame(20, vec![7], 1), &mut sink).unwrap(); // after the window
        w.finish(&mut sink).unwrap();
        assert_eq!(out, vec![3, 4, 9, 0, 0, 5, 6, 0, 0, 0]);
        assert_eq!(w.frames(), 10);
    }

    #[test]
    fn stereo_counts_frames_not_samples() {
        let mut w = TrackWindow::new(&track(1000, 2), 0, 3_000_000);
        let mut out: Vec<i16> = Vec::new();
        let mut sink = |s: &[i16]| -> Result<(), ()> {
            out.extend_from_slice(s);
            Ok(())
        };
        w.place(&frame(1, vec![1, -1], 2), &mut sink).unwrap();
        w.finish(&mut sink).unwrap();
        assert_eq!(out, vec![0, 0, 1, -1, 0, 0]);
    }
}
