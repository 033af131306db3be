//! Audio codec 1 (`pcm16_lpc2`): lossless 16-bit PCM through an order-2 fixed linear
//! predictor, zigzag, byte-plane split. zstd is applied to the whole chunk body afterwards.
//!
//! Prediction runs per channel over the chunk's concatenated samples, starting from zero
//! history at each chunk, in wrapping 16-bit arithmetic so every input is exactly invertible.

/// Encodes `samples` (interleaved, `channels` wide) into `out`: all low bytes of the zigzagged
/// residuals, then all high bytes. Appends exactly `2 * samples.len()` bytes.
pub fn encode_planes(samples: &[i16], channels: usize, out: &mut Vec<u8>) {
    let c = channels.max(1);
    let n = samples.len();
    let base = out.len();
    out.resize(base + 2 * n, 0);
    let (lo, hi) = out[base..].split_at_mut(n);
    if c == 1 {
        // mono: the history is the input itself; the first two samples see zeros, the rest
        // zip three shifted views of the input (no bounds checks, vectorizes)
        let code = |x: i16, p1: i16, p2: i16| {
            let r = x.wrapping_sub(p1.wrapping_mul(2).wrapping_sub(p2));
            ((r << 1) ^ (r >> 15)) as u16
        };
        for i in 0..n.min(2) {
            let z = code(samples[i], if i == 1 { samples[0] } else { 0 }, 0);
            lo[i] = z as u8;
            hi[i] = (z >> 8) as u8;
        }
        if n > 2 {
            let hist = samples[1..n - 1].iter().zip(&samples[..n - 2]);
            let it = samples[2..].iter().zip(hist);
            for ((l, h), (&x, (&p1, &p2))) in lo[2..].iter_mut().zip(&mut hi[2..]).zip(it) {
                let z = code(x, p1, p2);
                *l = z as u8;
                *h = (z >> 8) as u8;
            }
        }
        return;
    }
    let mut put = |i: usize, x: i16, p1: i16, p2: i16| {
        // prediction 2*p1 - p2, residual x - prediction, all mod 2^16
        let r = x.wrapping_sub(p1.wrapping_mul(2).wrapping_sub(p2));
        let z = ((r << 1) ^ (r >> 15)) as u16;
        lo[i] = z as u8;
        hi[i] = (z >> 8) as u8;
    };
    // the first two frames have zero history
    for i in 0..n.min(2 * c) {
        let p1 = if i >= c { samples[i - c] } else { 0 };
        put(i, samples[i], p1, 0);
    }
    // the hot loop: no branches on the history
    for i in (2 * c).min(n)..n {
        put(i, samples[i], samples[i - c], samples[i - 2 * c]);
    }
}

/// Inverse of [`encode_planes`]: `planes` holds `2 * count` bytes. Appends `count` samples.
pub fn decode_planes(planes: &[u8], count: usize, channels: usize, out: &mut Vec<i16>) {
    debug_assert_eq!(planes.len(), 2 * count);
    let c = channels.max(1);
    let (lo, hi) = planes.split_at(count);
    let base = out.len();
    out.resize(base + count, 0);
    let x = &mut out[base..];
    let residual = |i: usize| {
        let z = u16::from(lo[i]) | (u16::from(hi[i]) << 8);
        ((z >> 1) as i16) ^ -((z & 1) as i16)
    };
    if c == 1 {
        // mono: the last two samples live in locals, no indexing of the history
        let (mut a, mut b) = (0i16, 0i16); // x[i-1], x[i-2]
        for ((out, &l), &h) in x.iter_mut().zip(lo).zip(hi) {
            let z = u16::from(l) | (u16::from(h) << 8);
            let r = ((z >> 1) as i16) ^ -((z & 1) as i16);
            let v = r.wrapping_add(a.wrapping_mul(2).wrapping_sub(b));
            *out = v;
            b = a;
            a = v;
        }
        return;
    }
    for i in 0..count.min(2 * c) {
        let p1 = if i >= c { x[i - c] } else { 0 };
        x[i] = residual(i).wrapping_add(p1.wrapping_mul(2));
    }
    for i in (2 * c).min(count)..count {
        let pred = x[i - c].wrapping_mul(2).wrapping_sub(x[i - 2 * c]);
        x[i] = residual(i).wrapping_add(pred);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn planes_round_trip(samples in proptest::collection::vec(any::<i16>(), 0..600), channels in 1usize..3) {
            let mut enc = Vec::new();
            encode_planes(&samples, channels, &mut enc);
            prop_assert_eq!(enc.len(), samples.len() * 2);
            let mut dec = Vec::new();
            decode_planes(&enc, samples.len(), channels, &mut dec);
            prop_assert_eq!(dec, samples);
        }
    }

    /// SPEC §4.2 written out literally, for any channel count.
    fn reference(samples: &[i16], c: usize) -> Vec<u8> {
        let at = |i: usize, back: usize| if i >= back { samples[i - back] } else { 0 };
        let z: Vec<u16> = (0..samples.len())
            .map(|i| {
                let p = at(i, c).wrapping_mul(2).wrapping_sub(at(i, 2 * c));
                let r = samples[i].wrapping_sub(p);
                ((r << 1) ^ (r >> 15)) as u16
            })
            .collect();
        z.iter()
            .map(|&v| v as u8)
            .chain(z.iter().map(|&v| (v >> 8) as u8))
            .collect()
    }

    proptest! {
        #[test]
        fn planes_match_the_spec(samples in proptest::collection::vec(any::<i16>(), 0..300), channels in 1usize..4) {
            let mut enc = Vec::new();
            encode_planes(&samples, channels, &mut enc);
            prop_assert_eq!(enc, reference(&samples, channels));
        }
    }

    #[test]
    fn smooth_signal_gives_small_residuals() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 7) as i16).collect();
        let mut enc = Vec::new();
        encode_planes(&samples, 1, &mut enc);
        // a linear ramp is predicted exactly after the first two samples
        assert!(enc[2..1000].iter().all(|&b| b == 0));
        assert!(enc[1002..].iter().all(|&b| b == 0));
    }
}
