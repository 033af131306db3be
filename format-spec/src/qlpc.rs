//! Audio codec 3 (`pcm16_qlpc`, SPEC §4.4): lossless 16-bit PCM for speech, telephone audio
//! above all. Per block the encoder picks a constant (digital silence), a fixed polynomial
//! predictor of order 0..=4, or a quantized linear predictor of order 1..=32 estimated on the
//! block; residuals are Rice-coded in 2^po partitions. A block whose every sample lies on the
//! G.711 μ-law or A-law grid is coded in grid steps: the residual is the distance, in grid
//! indices, between the sample and the grid value nearest the prediction, so an 8-bit
//! telephone stream costs what its 8-bit codes carry, not what 16-bit values would.
//!
//! Bitstream (MSB first, the bit I/O of [`crate::rice`]), for each channel in turn, byte-aligned
//! at the end of each channel: blocks, each with a 3-bit size code (256 << code samples, the
//! channel's last block shorter), a 2-bit kind and its parameters, then its residuals.
//! History crosses blocks within a chunk and is zero before the chunk's first sample.

use std::sync::OnceLock;

use crate::rice::{estimate, BitReader, BitWriter};

/// Highest linear predictor order.
pub const MAX_LPC_ORDER: usize = 32;
/// Highest fixed predictor order.
pub const MAX_FIXED_ORDER: u32 = 4;
/// Highest block size code: blocks of `256 << code` samples, at most 4096.
pub const MAX_SIZE_CODE: u32 = 4;
/// Highest partition order: at most 256 Rice partitions per block.
pub const MAX_PARTITION_ORDER: u32 = 8;
/// Most bits a quantized coefficient may have (sign included).
pub const MAX_PRECISION: u32 = 15;
/// Most samples one chunk may hold (the same bound as `pcm16_rice`).
pub const MAX_SAMPLES: usize = crate::rice::MAX_SAMPLES;
/// Longest block (size code [`MAX_SIZE_CODE`]).
pub const MAX_BLOCK: usize = 256 << MAX_SIZE_CODE;
/// Fewest bits a block takes (a constant block: size code, kind, 16-bit value): a reader
/// rejects more than [`MAX_BLOCK`] samples per `MIN_BLOCK_BITS` bits before allocating.
pub const MIN_BLOCK_BITS: usize = 21;

const KIND_CONSTANT: u32 = 0;
const KIND_FIXED: u32 = 1;
const KIND_LPC: u32 = 2;

/// Coefficient precision the encoder uses for most blocks: with 32 taps of 12 bits on 16-bit
/// samples the 32-bit sum cannot overflow except at the single extreme (it wraps, as the
/// SPEC says).
const PRECISION: u32 = 12;
/// Precision for blocks predicted very well (prediction error under 1/1000 of the signal
/// energy, e.g. telephone audio resampled to 16-48 kHz): there the rounding of 12-bit
/// coefficients is as loud as the residual; 14 bits made those classes 2-4 % smaller and
/// 8 kHz speech 0.1 % larger. A sum that wraps only costs bits: the residual is exact.
const FINE_PRECISION: u32 = 14;
/// Block size code the encoder uses (4096 samples).
const SIZE_CODE: u32 = 4;
/// Smallest partition the encoder considers.
const MIN_PARTITION: usize = 16;

// ------------------------------------------------------------------------------------------
// G.711 grids

/// A G.711 grid: the distinct 16-bit values its 256 codes decode to, ascending.
pub struct Lattice {
    /// Grid values, ascending (255 for μ-law, whose two zeros coincide; 256 for A-law).
    pub values: Vec<i16>,
    /// For each i16 (offset by 32768): the index of the nearest grid value, the lower on a tie.
    nearest: Vec<u8>,
    /// Bit set over i16 (offset by 32768): whether the value lies on the grid.
    member: Vec<u64>,
}

/// The 16-bit value of a G.711 μ-law code (ITU-T G.711, as in the classic `ulaw2linear`).
pub fn ulaw_value(code: u8) -> i16 {
    let u = !code;
    let exp = u32::from((u >> 4) & 7);
    let t = ((i32::from(u & 0x0F) << 3) + 0x84) << exp;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// The 16-bit value of a G.711 A-law code (as in the classic `alaw2linear`).
pub fn alaw_value(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    match (a >> 4) & 7 {
        0 => t += 8,
        1 => t += 0x108,
        seg => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

impl Lattice {
    fn build(decode: fn(u8) -> i16) -> Lattice {
        let mut values: Vec<i16> = (0..=255u8).map(decode).collect();
        values.sort_unstable();
        values.dedup();
        let mut member = vec![0u64; 1024];
        for &v in &values {
            let i = (i32::from(v) + 32768) as usize;
            member[i >> 6] |= 1 << (i & 63);
        }
        let mut nearest = vec![0u8; 65536];
        let mut idx = 0usize;
        for (i, slot) in nearest.iter_mut().enumerate() {
            let p = i as i32 - 32768;
            // move up while the next grid value is strictly nearer
            while idx + 1 < values.len()
                && (i32::from(values[idx + 1]) - p).abs() < (i32::from(values[idx]) - p).abs()
            {
                idx += 1;
            }
            *slot = idx as u8;
        }
        Lattice {
            values,
            nearest,
            member,
        }
    }

    /// Index of the grid value nearest to `p` (clamped to i16), the lower on a tie.
    #[inline]
    pub fn nearest(&self, p: i32) -> usize {
        usize::from(self.nearest[(p.clamp(-32768, 32767) + 32768) as usize])
    }

    #[inline]
    fn contains(&self, v: i32) -> bool {
        let i = (v + 32768) as usize;
        self.member[i >> 6] >> (i & 63) & 1 == 1
    }
}

/// The μ-law grid (lattice code 1).
pub fn ulaw() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(ulaw_value))
}

/// The A-law grid (lattice code 2).
pub fn alaw() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(alaw_value))
}

fn lattice(code: u32) -> Option<&'static Lattice> {
    match code {
        1 => Some(ulaw()),
        2 => Some(alaw()),
        _ => None,
    }
}

/// Start of partition `j` of `2^po` in a block of `n` samples (SPEC §4.4: `⌊j·n / 2^po⌋`).
#[inline]
fn bound(j: usize, n: usize, po: u32) -> usize {
    (j * n) >> po
}

#[inline]
fn zigzag16(r: i16) -> u16 {
    ((r << 1) ^ (r >> 15)) as u16
}

#[inline]
fn zigzag_idx(d: i32) -> u16 {
    ((d << 1) ^ (d >> 31)) as u16
}

#[inline]
fn unzigzag16(z: u16) -> i16 {
    ((z >> 1) as i16) ^ -((z & 1) as i16)
}

/// Fixed prediction of order `O` at `x[i]`.
#[inline(always)]
fn fixed_predict<const O: u32>(x: &[i16], i: usize) -> i32 {
    let h = |k: usize| i32::from(x[i - k]);
    match O {
        0 => 0,
        1 => h(1),
        2 => 2 * h(1) - h(2),
        3 => 3 * h(1) - 3 * h(2) + h(3),
        _ => 4 * h(1) - 6 * h(2) + 4 * h(3) - h(4),
    }
}

/// Quantized LPC prediction at `x[i]` with `coef` stored oldest-first in a zero-padded
/// array of `N` taps (`coef[N - 1]` multiplies `x[i - 1]`): wrapping 32-bit sum, then an
/// arithmetic shift. Each product fits 31 bits (coefficients have at most 15), and the
/// i16 × i16 → i32 multiply-add is what SIMD units do in one instruction.
#[inline(always)]
fn lpc_predict<const N: usize>(coef: &[i16; N], x: &[i16], i: usize, shift: u32) -> i32 {
    let hist: &[i16; N] = x[i - N..i].try_into().expect("N samples of history");
    let mut acc = 0i32;
    for t in 0..N {
        acc = acc.wrapping_add(i32::from(coef[t]) * i32::from(hist[t]));
    }
    acc >> shift
}

/// Taps as the predictors take them: `coef[j]` (multiplying `x[i - 1 - j]`) reversed into a
/// zero-padded array of `N`.
#[inline(always)]
fn taps<const N: usize>(coef: &[i32]) -> [i16; N] {
    let mut c = [0i16; N];
    for (j, &q) in coef.iter().enumerate().take(N) {
        c[N - 1 - j] = q as i16;
    }
    c
}

/// Calls `$body` with `$pred` bound to the block's predictor as a closure `(x, i) -> i32`,
/// monomorphized per fixed order and per tap count (8, 16 or 32).
macro_rules! with_predictor {
    ($pred:expr, $coef:expr, |$p:ident| $body:expr) => {{
        match $pred {
            Predictor::Fixed(0) => {
                let $p = |x: &[i16], i: usize| fixed_predict::<0>(x, i);
                $body
            }
            Predictor::Fixed(1) => {
                let $p = |x: &[i16], i: usize| fixed_predict::<1>(x, i);
                $body
            }
            Predictor::Fixed(2) => {
                let $p = |x: &[i16], i: usize| fixed_predict::<2>(x, i);
                $body
            }
            Predictor::Fixed(3) => {
                let $p = |x: &[i16], i: usize| fixed_predict::<3>(x, i);
                $body
            }
            Predictor::Fixed(_) => {
                let $p = |x: &[i16], i: usize| fixed_predict::<4>(x, i);
                $body
            }
            Predictor::Lpc(order, _, shift) if order <= 8 => {
                let c = taps::<8>(&$coef[..order]);
                let $p = |x: &[i16], i: usize| lpc_predict::<8>(&c, x, i, shift);
                $body
            }
            Predictor::Lpc(order, _, shift) if order <= 16 => {
                let c = taps::<16>(&$coef[..order]);
                let $p = |x: &[i16], i: usize| lpc_predict::<16>(&c, x, i, shift);
                $body
            }
            Predictor::Lpc(order, _, shift) => {
                let c = taps::<32>(&$coef[..order]);
                let $p = |x: &[i16], i: usize| lpc_predict::<32>(&c, x, i, shift);
                $body
            }
        }
    }};
}

// ------------------------------------------------------------------------------------------
// Encoder

/// A block's predictor.
#[derive(Clone, Copy)]
enum Predictor {
    Fixed(u32),
    /// Order, precision, shift; coefficients in [`Encoder::qcoef`].
    Lpc(usize, u32, u32),
}

/// Scratch buffers reused across chunks.
#[derive(Default)]
pub struct Encoder {
    /// The channel's samples after [`MAX_LPC_ORDER`] zeros of history.
    x: Vec<i32>,
    /// The same as i16, for the predictors.
    x16: Vec<i16>,
    /// Residuals of the candidate being tried and of the best so far.
    z: Vec<u16>,
    best_z: Vec<u16>,
    /// Windowed block.
    w: Vec<f64>,
    /// Tukey windows by block length (a chunk's blocks have at most two lengths).
    windows: Vec<(usize, Vec<f64>)>,
    sums: Vec<u64>,
    /// Quantized coefficients, `qcoef[j]` multiplies `x[i - 1 - j]`.
    qcoef: [i32; MAX_LPC_ORDER],
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the bitstream of `samples` (interleaved, `channels` wide; the length must be a
    /// multiple of `channels`) to `out`.
    pub fn encode(&mut self, samples: &[i16], channels: usize, out: &mut Vec<u8>) {
        let c = channels.max(1);
        debug_assert_eq!(samples.len() % c, 0);
        let frames = samples.len() / c;
        let mut w = BitWriter { out, acc: 0, n: 0 };
        for ch in 0..c {
            self.x.clear();
            self.x.extend_from_slice(&[0; MAX_LPC_ORDER]);
            self.x16.clear();
            self.x16.extend_from_slice(&[0; MAX_LPC_ORDER]);
            self.x16.extend(samples.iter().skip(ch).step_by(c));
            self.x
                .extend(self.x16[MAX_LPC_ORDER..].iter().map(|&s| i32::from(s)));
            let block = 256usize << SIZE_CODE;
            let mut start = 0;
            while start < frames {
                let end = (start + block).min(frames);
                self.block(MAX_LPC_ORDER + start, MAX_LPC_ORDER + end, &mut w);
                start = end;
            }
            w.align();
        }
    }

    /// Codes `x[a..b]` as one block.
    fn block(&mut self, a: usize, b: usize, w: &mut BitWriter) {
        w.put(u64::from(SIZE_CODE), 3);
        let x = &self.x[a..b];
        if x.iter().all(|&v| v == x[0]) {
            w.put(u64::from(KIND_CONSTANT), 2);
            w.put(u64::from(x[0] as i16 as u16), 16);
            return;
        }
        let grid: u32 = if x.iter().all(|&v| ulaw().contains(v)) {
            1
        } else if x.iter().all(|&v| alaw().contains(v)) {
            2
        } else {
            0
        };
        let lat = lattice(grid);

        // the fixed order with the smallest sum of absolute residuals
        let (fixed, abs_sum) = self.best_fixed(a, b);
        let mut best: Option<(Predictor, u32, u64)> = None;
        if let Some(lpc) = self.lpc(a, b) {
            self.residuals(lpc, a, b, lat);
            let (po, bits) = self.plan();
            let Predictor::Lpc(order, prec, _) = lpc else {
                unreachable!()
            };
            // header bits beyond a fixed block's: order, precision, shift, coefficients
            let bits = bits + 5 + 4 + 4 - 3 + order as u64 * u64::from(prec);
            best = Some((lpc, po, bits));
            std::mem::swap(&mut self.z, &mut self.best_z);
        }
        // try the fixed predictor too unless the LPC is clearly better: its residuals in one
        // partition (zigzag doubles |r|) cost more than a third above the LPC's. Grid steps
        // are not linear residuals, so grid blocks always try both.
        let fixed_guess = estimate(2 * abs_sum, b - a).1;
        if best.is_none_or(|(_, _, bits)| lat.is_some() || fixed_guess * 3 < bits * 4) {
            self.residuals(Predictor::Fixed(fixed), a, b, lat);
            let (po, bits) = self.plan();
            if best.is_none_or(|(_, _, lpc_bits)| bits <= lpc_bits) {
                best = Some((Predictor::Fixed(fixed), po, bits));
                std::mem::swap(&mut self.z, &mut self.best_z);
            }
        }
        let Some((best, best_po, _)) = best else {
            unreachable!("a fixed predictor is always tried without an LPC one")
        };
        match best {
            Predictor::Fixed(o) => {
                w.put(u64::from(KIND_FIXED), 2);
                w.put(u64::from(grid), 2);
                w.put(u64::from(o), 3);
            }
            Predictor::Lpc(order, prec, shift) => {
                w.put(u64::from(KIND_LPC), 2);
                w.put(u64::from(grid), 2);
                w.put(order as u64 - 1, 5);
                w.put(u64::from(prec - 1), 4);
                w.put(u64::from(shift), 4);
                let mask = (1u64 << prec) - 1;
                for &q in &self.qcoef[..order] {
                    w.put(q as i64 as u64 & mask, prec);
                }
            }
        }
        self.write_residuals(best_po, w);
    }

    /// The fixed order with the smallest sum of absolute residuals, and that sum.
    fn best_fixed(&self, a: usize, b: usize) -> (u32, u64) {
        let x = &self.x;
        let mut s = [0u64; 5];
        for i in a..b {
            let (c, p1, p2, p3, p4) = (x[i], x[i - 1], x[i - 2], x[i - 3], x[i - 4]);
            s[0] += u64::from(c.unsigned_abs());
            s[1] += u64::from((c - p1).unsigned_abs());
            s[2] += u64::from((c - 2 * p1 + p2).unsigned_abs());
            s[3] += u64::from((c - 3 * p1 + 3 * p2 - p3).unsigned_abs());
            s[4] += u64::from((c - 4 * p1 + 6 * p2 - 4 * p3 + p4).unsigned_abs());
        }
        let o = (0..5).min_by_key(|&o| s[o]).unwrap_or(0);
        (o as u32, s[o])
    }

    /// Fills `self.z` with the zigzagged residuals of `x[a..b]` under `pred` (grid steps when
    /// `lat` is set).
    fn residuals(&mut self, pred: Predictor, a: usize, b: usize, lat: Option<&Lattice>) {
        self.z.clear();
        self.z.resize(b - a, 0);
        let x = &self.x16[..b];
        let z = &mut self.z[..];
        with_predictor!(pred, self.qcoef, |predict| match lat {
            None => {
                for (i, slot) in (a..b).zip(z.iter_mut()) {
                    *slot = zigzag16(x[i].wrapping_sub(predict(x, i) as i16));
                }
            }
            Some(l) => {
                for (i, slot) in (a..b).zip(z.iter_mut()) {
                    let d = l.nearest(i32::from(x[i])) as i32 - l.nearest(predict(x, i)) as i32;
                    *slot = zigzag_idx(d);
                }
            }
        })
    }

    /// The partition order with the fewest estimated bits for `self.z`, and those bits
    /// (partition order field and Rice parameters included).
    fn plan(&mut self) -> (u32, u64) {
        let z = &self.z;
        let n = z.len();
        let mut pmax = 0u32;
        while pmax < MAX_PARTITION_ORDER && (n >> (pmax + 1)) >= MIN_PARTITION {
            pmax += 1;
        }
        let parts = 1usize << pmax;
        self.sums.clear();
        for j in 0..parts {
            let (s, e) = (bound(j, n, pmax), bound(j + 1, n, pmax));
            self.sums.push(u64::from(
                z[s..e].iter().map(|&v| u32::from(v)).sum::<u32>(),
            ));
        }
        let mut best = (0u32, u64::MAX);
        let mut po = pmax;
        loop {
            let m = 1usize << po;
            let bits: u64 = 4
                + (0..m)
                    .map(|j| {
                        let len = bound(j + 1, n, po) - bound(j, n, po);
                        4 + estimate(self.sums[j], len).1
                    })
                    .sum::<u64>();
            if bits < best.1 {
                best = (po, bits);
            }
            if po == 0 {
                break;
            }
            for j in 0..m / 2 {
                self.sums[j] = self.sums[2 * j] + self.sums[2 * j + 1];
            }
            po -= 1;
        }
        best
    }

    fn write_residuals(&self, po: u32, w: &mut BitWriter) {
        let z = &self.best_z;
        let n = z.len();
        w.put(u64::from(po), 4);
        for j in 0..1usize << po {
            let part = &z[bound(j, n, po)..bound(j + 1, n, po)];
            let sum = u64::from(part.iter().map(|&v| u32::from(v)).sum::<u32>());
            let k = estimate(sum, part.len()).0;
            w.put(u64::from(k), 4);
            for &v in part {
                w.rice(v, k);
            }
        }
    }

    /// A quantized linear predictor for `x[a..b]`: Tukey-windowed autocorrelation,
    /// Levinson-Durbin, the order with the fewest expected bits, coefficients quantized to
    /// [`PRECISION`] or [`FINE_PRECISION`] bits with error feedback. `None` when the block is too short or flat.
    fn lpc(&mut self, a: usize, b: usize) -> Option<Predictor> {
        let n = b - a;
        let max_order = MAX_LPC_ORDER.min(n / 4);
        if max_order == 0 {
            return None;
        }
        let at = match self.windows.iter().position(|w| w.0 == n) {
            Some(at) => at,
            None => {
                if self.windows.len() == 4 {
                    self.windows.remove(0);
                }
                self.windows.push((n, tukey(n, 0.5)));
                self.windows.len() - 1
            }
        };
        let window = &self.windows[at].1;
        self.w.clear();
        self.w.extend(
            self.x[a..b]
                .iter()
                .zip(window)
                .map(|(&v, &k)| f64::from(v) * k),
        );
        let mut r = [0f64; MAX_LPC_ORDER + 1];
        autocorrelation(&self.w, &mut r[..=max_order]);
        if r[0] <= 0.0 {
            return None;
        }
        // a hair of white noise keeps Levinson stable on band-limited blocks
        r[0] *= 1.0 + 1e-9;
        let mut lpcs = [[0f64; MAX_LPC_ORDER]; MAX_LPC_ORDER];
        let mut err = [0f64; MAX_LPC_ORDER];
        let got = levinson(&r[..=max_order], &mut lpcs, &mut err);
        if got == 0 {
            return None;
        }
        // expected bits per order: n·½·log2(error / n) plus the coefficients
        let precision = if err[got - 1] * 1000.0 < r[0] {
            FINE_PRECISION
        } else {
            PRECISION
        };
        let scale = 0.5 / n as f64;
        let mut best = (0usize, f64::MAX);
        for o in 1..=got {
            let e = err[o - 1] * scale;
            let bps = if e > 0.0 {
                (0.5 * e.log2()).max(0.0)
            } else {
                0.0
            };
            let bits = bps * (n - o) as f64 + (o as f64) * f64::from(precision);
            if bits < best.1 {
                best = (o, bits);
            }
        }
        let order = best.0;
        let shift = quantize(&lpcs[order - 1][..order], precision, &mut self.qcoef)?;
        Some(Predictor::Lpc(order, precision, shift))
    }
}

/// Tukey window of `n` points with taper fraction `p`.
fn tukey(n: usize, p: f64) -> Vec<f64> {
    let np = ((p / 2.0) * n as f64) as usize;
    (0..n)
        .map(|i| {
            if np > 0 && i < np {
                0.5 - 0.5 * (std::f64::consts::PI * i as f64 / np as f64).cos()
            } else if np > 0 && i >= n - np {
                0.5 - 0.5 * (std::f64::consts::PI * (n - 1 - i) as f64 / np as f64).cos()
            } else {
                1.0
            }
        })
        .collect()
}

/// `r[lag] = Σ w[i]·w[i + lag]` for every lag of `r`, in f64 with eight running sums (so
/// the loop fills SIMD lanes). f32 sums, tried for speed, cost up to 19 % in size on
/// telephone audio resampled to 48 kHz: its band-limited spectrum lives in the small
/// differences between lags, which f32's rounding drowns.
fn autocorrelation(w: &[f64], r: &mut [f64]) {
    for (lag, out) in r.iter_mut().enumerate() {
        if lag >= w.len() {
            *out = 0.0;
            continue;
        }
        let (a, b) = (&w[lag..], &w[..w.len() - lag]);
        let mut acc = [0f64; 8];
        let mut ca = a.chunks_exact(8);
        let mut cb = b.chunks_exact(8);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for t in 0..8 {
                acc[t] += x[t] * y[t];
            }
        }
        let tail: f64 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        *out = acc.iter().sum::<f64>() + tail;
    }
}

/// Levinson-Durbin: `lpcs[o - 1][j]` are the order-`o` coefficients (`x[i] ≈ Σ c_j x[i-1-j]`)
/// and `err[o - 1]` their prediction error. Returns the highest order computed (it stops
/// early when the error vanishes or the recursion turns unstable).
fn levinson(
    r: &[f64],
    lpcs: &mut [[f64; MAX_LPC_ORDER]; MAX_LPC_ORDER],
    err: &mut [f64; MAX_LPC_ORDER],
) -> usize {
    let max = r.len() - 1;
    let mut a = [0f64; MAX_LPC_ORDER];
    let mut e = r[0];
    for i in 0..max {
        let mut acc = -r[i + 1];
        for j in 0..i {
            acc -= a[j] * r[i - j];
        }
        let k = acc / e;
        if !k.is_finite() || k.abs() >= 1.0 {
            return i;
        }
        let prev = a;
        a[i] = k;
        for j in 0..i {
            a[j] += k * prev[i - 1 - j];
        }
        e *= 1.0 - k * k;
        for j in 0..=i {
            lpcs[i][j] = -a[j];
        }
        err[i] = e;
        if e <= 0.0 {
            return i + 1;
        }
    }
    max
}

/// Quantizes `lpc` to `precision`-bit integers with a common shift, carrying the rounding
/// error forward. Returns the shift, or `None` when the coefficients are all zero.
fn quantize(lpc: &[f64], precision: u32, q: &mut [i32; MAX_LPC_ORDER]) -> Option<u32> {
    let cmax = lpc.iter().fold(0f64, |m, c| m.max(c.abs()));
    if cmax <= 0.0 || !cmax.is_finite() {
        return None;
    }
    let qmax = (1i32 << (precision - 1)) - 1;
    let qmin = -(1i32 << (precision - 1));
    // cmax < 2^e: the largest coefficient then fits precision - 1 magnitude bits
    let e = cmax.log2().floor() as i32 + 1;
    let shift = (precision as i32 - 1 - e).clamp(0, 15) as u32;
    let mut carry = 0f64;
    let scale = f64::from(1u32 << shift);
    for (slot, &c) in q.iter_mut().zip(lpc) {
        let v = c * scale + carry;
        let r = v.round().clamp(f64::from(qmin), f64::from(qmax));
        carry = v - r;
        *slot = r as i32;
    }
    Some(shift)
}

/// Encodes with this thread's [`Encoder`] (its scratch buffers and windows are kept between
/// chunks, unless a chunk made them large).
pub fn encode(samples: &[i16], channels: usize, out: &mut Vec<u8>) {
    thread_local! {
        static ENCODER: std::cell::RefCell<Encoder> = std::cell::RefCell::new(Encoder::new());
    }
    ENCODER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut enc) => {
            enc.encode(samples, channels, out);
            if enc.x.capacity() > 1 << 20 {
                *enc = Encoder::new();
            }
        }
        Err(_) => Encoder::new().encode(samples, channels, out),
    })
}

// ------------------------------------------------------------------------------------------
// Decoder

/// Inverse of [`encode`]: decodes exactly `count` samples (`channels` wide, `count` a multiple
/// of `channels`) from all of `data`, appending them to `out`. Fails on a bitstream that is
/// cut short, has bytes or non-zero padding left over, or holds a field out of its range (a
/// size code over 4, kind 3, lattice 3, an order over 4 or 32, a partition order over 8, a
/// residual over 16 bits or a grid index off the grid). Never reads or allocates more than
/// `count` samples, and `count` must be at most [`MAX_SAMPLES`] and at most [`MAX_BLOCK`]
/// per [`MIN_BLOCK_BITS`] bits of `data`.
pub fn decode(
    data: &[u8],
    count: usize,
    channels: usize,
    out: &mut Vec<i16>,
) -> Result<(), &'static str> {
    let c = channels.max(1);
    if !count.is_multiple_of(c) {
        return Err("sample count is not a multiple of the channels");
    }
    if count > MAX_SAMPLES {
        return Err("more samples than a chunk may hold");
    }
    if count.saturating_mul(MIN_BLOCK_BITS) > MAX_BLOCK * 8 * data.len() {
        return Err("bitstream shorter than its blocks");
    }
    let frames = count / c;
    let base = out.len();
    out.resize(base + count, 0);
    let mut r = BitReader { data, pos: 0 };
    let end_bits = 8 * data.len();
    let mut x = vec![0i16; MAX_LPC_ORDER + frames];
    for ch in 0..c {
        x[..MAX_LPC_ORDER].fill(0);
        let mut i = MAX_LPC_ORDER;
        let stop = MAX_LPC_ORDER + frames;
        while i < stop {
            decode_block(&mut r, &mut x, &mut i, stop)?;
            if r.pos > end_bits {
                return Err("bitstream cut short");
            }
        }
        let pad = (8 - r.pos % 8) % 8;
        if pad > 0 && r.take(pad as u32) != 0 {
            return Err("non-zero padding bits");
        }
        if c == 1 {
            out[base..].copy_from_slice(&x[MAX_LPC_ORDER..]);
        } else {
            // skip, not slice: a chunk of no samples has channels too
            for (slot, &v) in out[base..]
                .iter_mut()
                .skip(ch)
                .step_by(c)
                .zip(&x[MAX_LPC_ORDER..])
            {
                *slot = v;
            }
        }
    }
    if r.pos != end_bits {
        return Err("bytes left over after the last channel");
    }
    Ok(())
}

/// Decodes one block into `x[*i..]` (at most up to `stop`), advancing `*i`.
fn decode_block(
    r: &mut BitReader,
    x: &mut [i16],
    i: &mut usize,
    stop: usize,
) -> Result<(), &'static str> {
    let code = r.take(3);
    if code > MAX_SIZE_CODE {
        return Err("block size code over 4");
    }
    let n = (256usize << code).min(stop - *i);
    let (a, b) = (*i, *i + n);
    *i = b;
    let kind = r.take(2);
    if kind == KIND_CONSTANT {
        let v = r.take(16) as u16 as i16;
        x[a..b].fill(v);
        return Ok(());
    }
    if kind > KIND_LPC {
        return Err("block kind 3");
    }
    let grid = r.take(2);
    let lat = match grid {
        0 => None,
        3 => return Err("lattice code 3"),
        g => lattice(g),
    };
    let mut coef = [0i32; MAX_LPC_ORDER];
    let pred = if kind == KIND_FIXED {
        let o = r.take(3);
        if o > MAX_FIXED_ORDER {
            return Err("fixed predictor order over 4");
        }
        Predictor::Fixed(o)
    } else {
        let order = r.take(5) as usize + 1;
        let prec = r.take(4) + 1;
        if prec > MAX_PRECISION {
            return Err("coefficient precision over 15 bits");
        }
        let shift = r.take(4);
        for slot in &mut coef[..order] {
            let v = r.take(prec) as i32;
            // sign-extend the prec-bit two's complement value
            *slot = (v << (32 - prec)) >> (32 - prec);
        }
        Predictor::Lpc(order, prec, shift)
    };
    with_predictor!(pred, coef, |predict| residual_loop(
        r, x, a, b, lat, predict
    ))
}

/// Reads the partitioned residuals of `x[a..b]` and rebuilds the samples with `predict`.
#[inline(always)]
fn residual_loop(
    r: &mut BitReader,
    x: &mut [i16],
    a: usize,
    b: usize,
    lat: Option<&Lattice>,
    predict: impl Fn(&[i16], usize) -> i32,
) -> Result<(), &'static str> {
    let po = r.take(4);
    if po > MAX_PARTITION_ORDER {
        return Err("partition order over 8");
    }
    let n = b - a;
    for j in 0..1usize << po {
        let (s, e) = (a + bound(j, n, po), a + bound(j + 1, n, po));
        let k = r.take(4);
        match lat {
            None => {
                for i in s..e {
                    let z = r.residual(k)?;
                    let p = predict(x, i);
                    x[i] = (p as i16).wrapping_add(unzigzag16(z));
                }
            }
            Some(l) => {
                for i in s..e {
                    let z = r.residual(k)?;
                    let d = i32::from(z >> 1) ^ -i32::from(z & 1);
                    let idx = l.nearest(predict(x, i)) as i32 + d;
                    let v = usize::try_from(idx)
                        .ok()
                        .and_then(|k| l.values.get(k))
                        .ok_or("grid index off the grid")?;
                    x[i] = *v;
                }
            }
        }
        if r.pos > 8 * r.data.len() {
            return Err("bitstream cut short");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[i16], channels: usize) -> Vec<u8> {
        let mut enc = Vec::new();
        encode(samples, channels, &mut enc);
        let mut dec = vec![7i16];
        decode(&enc, samples.len(), channels, &mut dec).unwrap();
        assert_eq!(dec[0], 7);
        assert_eq!(&dec[1..], samples);
        enc
    }

    #[test]
    fn g711_grids() {
        assert_eq!(ulaw().values.len(), 255);
        assert_eq!(alaw().values.len(), 256);
        assert_eq!(ulaw_value(0xFF), 0);
        assert_eq!(ulaw_value(0x7F), 0);
        assert_eq!(ulaw_value(0x80), 32124);
        assert_eq!(ulaw_value(0x00), -32124);
        assert_eq!(alaw_value(0xD5), 8);
        assert_eq!(alaw_value(0x55), -8);
        assert_eq!(alaw_value(0xAA), 32256);
        for l in [ulaw(), alaw()] {
            for (i, &v) in l.values.iter().enumerate() {
                assert_eq!(l.nearest(i32::from(v)), i);
                assert!(l.contains(i32::from(v)));
            }
            assert_eq!(l.nearest(-40000), 0);
            assert_eq!(l.nearest(40000), l.values.len() - 1);
        }
        // halfway between 0 and 8 on the μ-law grid: the lower
        let zero = ulaw().nearest(0);
        assert_eq!(ulaw().nearest(4), zero);
        assert_eq!(ulaw().nearest(5), zero + 1);
    }

    fn speechlike(len: usize, seed: u32) -> Vec<i16> {
        // two resonances with a slowly moving envelope, plus a little noise
        let mut s = seed.wrapping_mul(2654435761) | 1;
        (0..len)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let t = i as f64;
                let env = 0.5 + 0.5 * (t * 0.0007).sin();
                let v = env * (9000.0 * (t * 0.09).sin() + 5000.0 * (t * 0.31 + 1.0).sin())
                    + f64::from(s % 64)
                    - 32.0;
                v.clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn lpc_wins_on_resonant_audio_and_round_trips() {
        let s = speechlike(16000, 3);
        let enc = round_trip(&s, 1);
        let mut rice = Vec::new();
        crate::rice::encode(&s, 1, &mut rice);
        assert!(
            enc.len() < rice.len(),
            "{} vs rice {}",
            enc.len(),
            rice.len()
        );
    }

    #[test]
    fn g711_blocks_code_grid_steps() {
        let s = speechlike(8000, 5);
        let grid = |l: &Lattice| -> Vec<i16> {
            s.iter()
                .map(|&v| l.values[l.nearest(i32::from(v))])
                .collect()
        };
        for l in [ulaw(), alaw()] {
            let g = grid(l);
            let enc = round_trip(&g, 1);
            let mut rice = Vec::new();
            crate::rice::encode(&g, 1, &mut rice);
            // grid steps of 8 bits at most: far under the 16-bit residuals
            assert!(
                enc.len() * 10 < rice.len() * 7,
                "{} vs {}",
                enc.len(),
                rice.len()
            );
        }
    }

    #[test]
    fn silence_is_nearly_free() {
        let enc = round_trip(&vec![0i16; 48000], 1);
        assert!(enc.len() <= 48000 / 4096 * 3 + 3, "{}", enc.len());
        let enc = round_trip(&vec![-5i16; 3000], 2);
        assert!(enc.len() <= 8, "{}", enc.len());
    }

    #[test]
    fn edges() {
        for n in [
            0usize, 1, 2, 3, 31, 32, 33, 127, 128, 4095, 4096, 4097, 9000,
        ] {
            let alt: Vec<i16> = (0..n)
                .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
                .collect();
            round_trip(&alt, 1);
            round_trip(&speechlike(n, n as u32), 1);
        }
        // found by qlpc_garbage_never_panics: no samples in several channels
        for channels in 1..4 {
            round_trip(&[], channels);
        }
        let stereo = speechlike(2 * 5000, 9);
        round_trip(&stereo, 2);
        round_trip(&speechlike(3 * 3001, 1), 3);
    }

    #[test]
    // binary literals grouped by bitstream field (size, kind, grid, order)
    #[allow(clippy::unusual_byte_groupings)]
    fn strict_on_damage() {
        let s = speechlike(5000, 2);
        let mut enc = Vec::new();
        encode(&s, 1, &mut enc);
        let mut out = Vec::new();
        assert!(decode(&enc[..enc.len() - 1], s.len(), 1, &mut out).is_err());
        let mut longer = enc.clone();
        longer.push(0);
        assert!(decode(&longer, s.len(), 1, &mut out).is_err());
        assert!(decode(&enc, s.len() + 1, 1, &mut out).is_err());
        assert!(decode(&enc, s.len() - 1, 1, &mut out).is_err());
        assert!(decode(&enc, s.len(), 2, &mut out).is_err());
        // size code 7
        assert_eq!(
            decode(&[0xE0, 0, 0], 1, 1, &mut out),
            Err("block size code over 4")
        );
        // size 0, kind 3
        assert_eq!(decode(&[0b000_11_000], 1, 1, &mut out), Err("block kind 3"));
        // size 0, kind fixed, lattice 3
        assert_eq!(
            decode(&[0b000_01_11_0], 1, 1, &mut out),
            Err("lattice code 3")
        );
        // size 0, fixed, lattice 0, order 7
        assert_eq!(
            decode(&[0b000_01_00_1, 0b11_000000], 1, 1, &mut out),
            Err("fixed predictor order over 4")
        );
        // size 0, lpc, lattice 0, order 1, precision 16
        assert_eq!(
            decode(&[0b000_10_00_0, 0b0000_1111, 0], 1, 1, &mut out),
            Err("coefficient precision over 15 bits")
        );
        // μ-law grid, order 0, po 0, k 0, then residual z = 600 via the escape: off the grid
        let mut bits = String::from("000010100000000000");
        bits += &"0".repeat(32);
        bits += &format!("{:016b}", 600);
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let bytes: Vec<u8> = (0..bits.len() / 8)
            .map(|i| u8::from_str_radix(&bits[8 * i..8 * i + 8], 2).unwrap())
            .collect();
        assert_eq!(
            decode(&bytes, 1, 1, &mut out),
            Err("grid index off the grid")
        );
        assert!(decode(&vec![0xFF; 3 << 20], MAX_SAMPLES + 1, 1, &mut out).is_err());
    }

    proptest! {
        #[test]
        fn qlpc_round_trip(samples in proptest::collection::vec(any::<i16>(), 0..3000), channels in 1usize..4) {
            let n = samples.len() / channels * channels;
            round_trip(&samples[..n], channels);
        }

        #[test]
        fn qlpc_round_trip_speechlike(seed in any::<u32>(), len in 0usize..9000, grid in 0u32..3) {
            let s = speechlike(len, seed);
            let s: Vec<i16> = match lattice(grid) {
                Some(l) => s.iter().map(|&v| l.values[l.nearest(i32::from(v))]).collect(),
                None => s,
            };
            round_trip(&s, 1);
        }

        #[test]
        fn qlpc_round_trip_loud_tones(seed in any::<u32>(), len in 0usize..6000, amp in 0f64..60000.0, f in 0.001f64..3.0) {
            // clipped, full-scale: stresses the wrapping of predictions and residuals
            let s: Vec<i16> = (0..len)
                .map(|i| ((i as f64 * f + f64::from(seed)).sin() * amp).clamp(-32768.0, 32767.0) as i16)
                .collect();
            round_trip(&s, 1);
        }

        #[test]
        fn qlpc_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600), count in 0usize..5000, channels in 1usize..4) {
            let mut out = Vec::new();
            let _ = decode(&data, count, channels, &mut out);
        }
    }
}
