//! Audio codecs on real recorded speech: size against `flac -5` and `flac -8`, and speed.
//!
//!     bash format-spec/codec-corpus/build.sh target/codec-corpus
//!     cargo bench -p calltape-format --bench speech [-- CORPUS_DIR] [> report.md]
//!
//! For every file of the corpus (format-spec/codec-corpus/build.sh: raw 16-bit mono files and
//! a manifest), the samples are cut into 1 s chunks as the archive writer cuts a track, and
//! each chunk is coded alone by `pcm16_qlpc` and `pcm16_rice`. Sizes are the codecs'
//! bitstreams summed over the chunks (no chunk header, records section or zstd frame: those
//! are the same for every codec). `flac -5` / `flac -8` (`--no-padding --no-seektable`, raw
//! input) code each file whole, as one stream, so FLAC gets the advantage of history
//! across the whole file; its sizes include its stream and frame headers.
//!
//! Speed, one core: the codec's encode (or decode) of every chunk of a class, timed in
//! process with `Instant` around the loop (best of 3), in MB/s of 16-bit PCM. FLAC's speed is
//! the real time of one `flac -5` process on the class's files concatenated (process start
//! included, about 1 ms). The report is Markdown on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use calltape_format::{qlpc, rice};

struct File {
    class: String,
    rate: u32,
    name: String,
    samples: Vec<i16>,
}

fn load(dir: &Path) -> Vec<File> {
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap_or_else(|e| {
        panic!(
            "no corpus at {} ({e}): run format-spec/codec-corpus/build.sh first",
            dir.display()
        )
    });
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let bytes = std::fs::read(dir.join(f.get(2)?)).ok()?;
            Some(File {
                class: f[0].to_string(),
                rate: f[1].parse().ok()?,
                name: f[2].to_string(),
                samples: bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            })
        })
        .collect()
}

fn flac(samples: &[i16], rate: u32, level: &str, scratch: &Path) -> Option<(usize, f64)> {
    let raw = scratch.join("in.raw");
    let out = scratch.join("out.flac");
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).ok()?;
    let t = Instant::now();
    let ok = Command::new("flac")
        .args([
            "-s",
            "-f",
            level,
            "--no-padding",
            "--no-seektable",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
            "--channels=1",
            "--bps=16",
            &format!("--sample-rate={rate}"),
            "-o",
        ])
        .arg(&out)
        .arg(&raw)
        .status()
        .ok()?
        .success();
    let secs = t.elapsed().as_secs_f64();
    let len = std::fs::metadata(&out).ok()?.len() as usize;
    ok.then_some((len, secs))
}

type Enc = fn(&[i16], &mut Vec<u8>);
type Dec = fn(&[u8], usize, &mut Vec<i16>) -> Result<(), &'static str>;

fn codecs() -> [(&'static str, Enc, Dec); 2] {
    [
        (
            "qlpc",
            |s, o| qlpc::encode(s, 1, o),
            |d, n, o| qlpc::decode(d, n, 1, o),
        ),
        (
            "rice",
            |s, o| rice::encode(s, 1, o),
            |d, n, o| rice::decode(d, n, 1, o),
        ),
    ]
}

/// Coded size of `samples` in 1 s chunks, checking the round trip.
fn coded(samples: &[i16], rate: u32, enc: Enc, dec: Dec) -> usize {
    let mut total = 0;
    for chunk in samples.chunks(rate as usize) {
        let mut out = Vec::new();
        enc(chunk, &mut out);
        let mut back = Vec::new();
        dec(&out, chunk.len(), &mut back).expect("decodes");
        assert_eq!(back, chunk, "lossless");
        total += out.len();
    }
    total
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/codec-corpus"));
    let files = load(&dir);
    let scratch = std::env::temp_dir().join(format!("calltape-speech-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");

    // per file: sizes
    println!("| class | file | seconds | qlpc / flac -8 | qlpc / flac -5 | rice / flac -8 | flac -8 / raw |");
    println!("|---|---|---|---|---|---|---|");
    let mut per_class: BTreeMap<&str, [usize; 5]> = BTreeMap::new(); // raw, qlpc, rice, f5, f8
    for f in &files {
        let q = coded(&f.samples, f.rate, codecs()[0].1, codecs()[0].2);
        let r = coded(&f.samples, f.rate, codecs()[1].1, codecs()[1].2);
        let (f5, _) = flac(&f.samples, f.rate, "-5", &scratch).expect("flac -5 runs");
        let (f8, _) = flac(&f.samples, f.rate, "-8", &scratch).expect("flac -8 runs");
        let raw = 2 * f.samples.len();
        println!(
            "| {} | {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |",
            f.class,
            f.name,
            f.samples.len() as f64 / f64::from(f.rate),
            q as f64 / f8 as f64,
            q as f64 / f5 as f64,
            r as f64 / f8 as f64,
            f8 as f64 / raw as f64
        );
        let e = per_class.entry(&f.class).or_default();
        for (slot, v) in e.iter_mut().zip([raw, q, r, f5, f8]) {
            *slot += v;
        }
    }
    println!();
    println!(
        "| class | qlpc / flac -8 | qlpc / flac -5 | rice / flac -8 | qlpc / raw | flac -8 / raw |"
    );
    println!("|---|---|---|---|---|---|");
    for (class, [raw, q, r, f5, f8]) in &per_class {
        println!(
            "| {class} | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} |",
            *q as f64 / *f8 as f64,
            *q as f64 / *f5 as f64,
            *r as f64 / *f8 as f64,
            *q as f64 / *raw as f64,
            *f8 as f64 / *raw as f64
        );
    }

    // speed per class
    println!();
    println!("| class | qlpc encode MB/s | qlpc decode MB/s | rice encode MB/s | rice decode MB/s | flac -5 encode MB/s | qlpc enc / flac -5 |");
    println!("|---|---|---|---|---|---|---|");
    let classes: Vec<&str> = per_class.keys().copied().collect();
    for class in classes {
        let of: Vec<&File> = files.iter().filter(|f| f.class == class).collect();
        let raw_bytes: usize = of.iter().map(|f| 2 * f.samples.len()).sum();
        let mut speeds = Vec::new();
        for (_, enc, dec) in codecs() {
            let chunks: Vec<&[i16]> = of
                .iter()
                .flat_map(|f| f.samples.chunks(f.rate as usize))
                .collect();
            let mut coded = Vec::new();
            let mut best_enc = f64::MAX;
            for _ in 0..3 {
                coded.clear();
                let t = Instant::now();
                for c in &chunks {
                    let mut out = Vec::with_capacity(c.len() * 2);
                    enc(c, &mut out);
                    coded.push(out);
                }
                best_enc = best_enc.min(t.elapsed().as_secs_f64());
            }
            let mut best_dec = f64::MAX;
            let mut back = Vec::with_capacity(48_000);
            for _ in 0..3 {
                let t = Instant::now();
                for (c, bits) in chunks.iter().zip(&coded) {
                    back.clear();
                    dec(bits, c.len(), &mut back).expect("decodes");
                }
                best_dec = best_dec.min(t.elapsed().as_secs_f64());
            }
            speeds.push(raw_bytes as f64 / best_enc / 1e6);
            speeds.push(raw_bytes as f64 / best_dec / 1e6);
        }
        let all: Vec<i16> = of.iter().flat_map(|f| f.samples.iter().copied()).collect();
        let (_, secs) = flac(&all, of[0].rate, "-5", &scratch).expect("flac -5 runs");
        let f5 = raw_bytes as f64 / secs / 1e6;
        println!(
            "| {class} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x |",
            speeds[0],
            speeds[1],
            speeds[2],
            speeds[3],
            f5,
            speeds[0] / f5
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
