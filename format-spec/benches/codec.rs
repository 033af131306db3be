//! Codec throughput: the archive writer and the chunk reader on 16 kHz mono speech.
//!
//!     cargo bench -p calltape-format --bench codec            # full measurement
//!     cargo bench -p calltape-format --bench codec -- --quick # a few seconds
//!
//! Input: every `samples/clips/*.wav` (16 kHz mono 16-bit PCM, the demo calls' speech)
//! concatenated into one track, cut into 20 ms audio records as a recorder would. Without
//! the clips, a synthetic speech-like signal of the same length is used instead.
//! Throughput is in bytes of raw PCM, so MB/s compare directly with other audio codecs.
//!
//! Benchmarks (group `codec`):
//! - `writer`: ArchiveWriter into a Vec, default options (1 s chunks, zstd 3), one core,
//!   codec `pcm16_lpc2` (chunk encoding 1).
//! - `reader`: decode_chunk_frame of every chunk of that archive (CRC, zstd, un-predict).
//! - `writer_rice` / `reader_rice`: the same with codec `pcm16_rice` (chunk encoding 2).
//! - `planes_encode` / `planes_decode`: the pcm16_lpc2 predictor alone, to split the time
//!   between the audio transform and zstd.
//!
//! Before measuring it prints, for each codec, the size of the archive's audio against raw
//! PCM and, if the
//! `flac` tool is installed, against `flac -5 --no-padding` of the same samples (all clips as
//! one stream, and clip by clip). Audio size counts whole chunk frames (headers, per-record
//! heads and CRCs included).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use calltape_format::audio::{decode_planes, encode_planes};
use calltape_format::chunk::ChunkEncoding;
use calltape_format::{
    decode_chunk_frame, open, AgentInfo, ArchiveWriter, AudioCodec, AudioFrame, Header, Record,
    Speaker, TimedRecord, Track, WriterOptions,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RATE: u32 = 16_000;
const FRAME: usize = (RATE / 50) as usize; // 20 ms

/// Samples of a 16 kHz mono 16-bit PCM WAV file; `None` for any other format.
fn read_wav(path: &Path) -> Option<Vec<i16>> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return None;
    }
    let (mut pos, mut fmt_ok) = (12usize, false);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = b.get(pos + 8..(pos + 8 + len).min(b.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            fmt_ok = u16_at(0) == 1 && u16_at(2) == 1 && rate == RATE && u16_at(14) == 16;
        } else if id == b"data" {
            return fmt_ok.then(|| {
                body.chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect()
            });
        }
        pos += 8 + len + (len & 1);
    }
    None
}

fn clip_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/clips");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// Voiced speech stand-in: a gliding pitch with formant-like harmonics, syllable envelope
/// and a little noise (deterministic).
fn synthetic(n: usize) -> Vec<i16> {
    let mut seed = 0x1234_5678u32;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let f0 = 120.0 + 30.0 * (t * 1.3).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / f64::from(RATE);
            let voice: f64 = [(1.0, 1.0), (2.0, 0.6), (3.0, 0.4), (5.0, 0.25), (8.0, 0.1)]
                .iter()
                .map(|(h, a)| a * (phase * h).sin())
                .sum();
            let env = (t * 4.0 * std::f64::consts::PI).sin().abs().powf(0.5);
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (f64::from(seed % 2001) - 1000.0) / 1000.0;
            (voice * env * 5000.0 + noise * 150.0) as i16
        })
        .collect()
}

struct Input {
    samples: Vec<i16>,
    source: String,
    clips: Vec<PathBuf>,
}

fn input() -> Input {
    let clips = clip_paths();
    let mut samples = Vec::new();
    let mut used = Vec::new();
    for p in &clips {
        if let Some(s) = read_wav(p) {
            samples.extend_from_slice(&s);
            used.push(p.clone());
        }
    }
    if samples.is_empty() {
        let samples = synthetic(80 * RATE as usize);
        return Input {
            samples,
            source: "synthetic speech-like signal (no samples/clips/*.wav)".into(),
            clips: Vec::new(),
        };
    }
    Input {
        source: format!("{} clips from samples/clips", used.len()),
        samples,
        clips: used,
    }
}

fn header(codec: AudioCodec) -> Header {
    Header {
        session_id: "bench".into(),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000,
        agent: AgentInfo::default(),
        environment: None,
        tags: Default::default(),
        tracks: vec![Track {
            id: 1,
            role: Speaker::User,
            sample_rate: RATE,
            channels: 1,
            codec,
            name: None,
        }],
    }
}

fn records(samples: &[i16]) -> Vec<TimedRecord> {
    samples
        .chunks(FRAME)
        .enumerate()
        .map(|(i, s)| {
            let first = (i * FRAME) as u64;
            TimedRecord::new(
                first * 1_000_000_000 / u64::from(RATE),
                Record::Audio(AudioFrame {
                    track: 1,
                    channels: 1,
                    first_sample: first,
                    samples: s.to_vec(),
                }),
            )
        })
        .collect()
}

/// `stored`: audio bodies go into zstd frames of raw blocks instead of being compressed;
/// else they are compressed at zstd level `level`.
fn write_archive(
    recs: &[TimedRecord],
    cap: usize,
    codec: AudioCodec,
    (stored, level): (bool, i32),
) -> Vec<u8> {
    let opts = WriterOptions {
        audio_zstd_level: level,
        stored_encodings: if stored {
            &[ChunkEncoding::AudioPcm16Lpc2, ChunkEncoding::AudioPcm16Rice]
        } else {
            &[]
        },
        ..WriterOptions::default()
    };
    let mut w =
        ArchiveWriter::with_options(Vec::with_capacity(cap), header(codec), opts).expect("header");
    for r in recs {
        w.write(r).expect("write");
    }
    w.finish().expect("finish").0
}

/// Size of `flac -5 --no-padding` output for raw 16 kHz mono s16le PCM, if flac is installed.
fn flac_size(pcm: &[i16], tag: &str) -> Option<u64> {
    let dir = std::env::temp_dir().join(format!("calltape-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let raw = dir.join(format!("{tag}.raw"));
    let out = dir.join(format!("{tag}.flac"));
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).ok()?;
    let status = Command::new("flac")
        .args([
            "-5",
            "--no-padding", // else every file carries 8 KiB of padding
            "-s",
            "-f",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
            "--channels=1",
            "--bps=16",
            "--sample-rate=16000",
            "-o",
        ])
        .arg(&out)
        .arg(&raw)
        .status()
        .ok()?;
    let size = status
        .success()
        .then(|| std::fs::metadata(&out).ok().map(|m| m.len()))
        .flatten();
    let _ = std::fs::remove_dir_all(&dir);
    size
}

fn report_sizes(inp: &Input, archive: &[u8], codec: AudioCodec, (stored, level): (bool, i32)) {
    let raw = 2 * inp.samples.len() as u64;
    let a = open(&mut std::io::Cursor::new(archive)).expect("bench archive opens");
    let audio: u64 = a
        .index
        .iter()
        .filter(|e| e.lane == 1)
        .map(|e| e.frame_len())
        .sum();
    eprintln!(
        "codec bench input: {} — {} samples ({:.1} s), {} bytes raw PCM",
        inp.source,
        inp.samples.len(),
        inp.samples.len() as f64 / f64::from(RATE),
        raw
    );
    eprintln!(
        "  calltape {codec:?}: archive {} B, audio chunk frames {} B in {} chunks = {:.3} of raw PCM",
        archive.len(),
        audio,
        a.index.len(),
        audio as f64 / raw as f64
    );
    match flac_size(&inp.samples, "all") {
        Some(f) => {
            eprintln!(
                "  flac -5 of the same samples: {} B = {:.3} of raw; calltape audio / flac = {:.3}",
                f,
                f as f64 / raw as f64,
                audio as f64 / f as f64
            );
            // per clip too: each clip alone as a call's track, against its own flac file
            let (mut ct, mut fl) = (0u64, 0u64);
            for p in &inp.clips {
                let s = read_wav(p).expect("read before");
                let arch = write_archive(&records(&s), 2 * s.len(), codec, (stored, level));
                let a = open(&mut std::io::Cursor::new(&arch)).expect("opens");
                ct += a.index.iter().map(|e| e.frame_len()).sum::<u64>();
                fl += flac_size(&s, "clip").unwrap_or(0);
            }
            if !inp.clips.is_empty() {
                eprintln!(
                    "  per clip ({} files): calltape audio {} B, flac -5 {} B, ratio {:.3}",
                    inp.clips.len(),
                    ct,
                    fl,
                    ct as f64 / fl as f64
                );
            }
        }
        None => eprintln!("  flac not installed: no flac comparison"),
    }
}

fn bench(c: &mut Criterion) {
    let inp = input();
    let recs = records(&inp.samples);
    let raw_bytes = 2 * inp.samples.len();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(raw_bytes as u64));
    // "_stored": the audio bodies in zstd frames of raw blocks (no compressor run), to
    // decide per encoding whether zstd pays (`WriterOptions::stored_encodings`)
    // "_fast": zstd level -5 on the audio bodies
    for (codec, suffix, stored, level) in [
        (AudioCodec::Pcm16Lpc2, "", false, 3),
        (AudioCodec::Pcm16Lpc2, "_stored", true, 3),
        (AudioCodec::Pcm16Rice, "_rice", false, 3),
        (AudioCodec::Pcm16Rice, "_rice_fast", false, -5),
        (AudioCodec::Pcm16Rice, "_rice_stored", true, 3),
    ] {
        let archive = write_archive(&recs, raw_bytes, codec, (stored, level));
        eprintln!(
            "{codec:?}, audio bodies {}:",
            if stored {
                "stored (no zstd)".to_string()
            } else {
                format!("zstd level {level}")
            }
        );
        report_sizes(&inp, &archive, codec, (stored, level));
        let index = open(&mut std::io::Cursor::new(&archive))
            .expect("opens")
            .index;
        g.bench_function(format!("writer{suffix}"), |b| {
            b.iter(|| {
                black_box(write_archive(
                    black_box(&recs),
                    raw_bytes,
                    codec,
                    (stored, level),
                ))
            })
        });
        g.bench_function(format!("reader{suffix}"), |b| {
            b.iter(|| {
                let mut samples = 0usize;
                for e in &index {
                    let range = e.frame_range();
                    let chunk =
                        decode_chunk_frame(e, &archive[range.start as usize..range.end as usize])
                            .expect("chunk decodes");
                    samples += chunk.records.len();
                }
                black_box(samples)
            })
        });
    }
    g.bench_function("planes_encode", |b| {
        let mut out = Vec::with_capacity(raw_bytes);
        b.iter(|| {
            out.clear();
            encode_planes(black_box(&inp.samples), 1, &mut out);
            black_box(out.len())
        })
    });
    let mut planes = Vec::new();
    encode_planes(&inp.samples, 1, &mut planes);
    g.bench_function("planes_decode", |b| {
        let mut out = Vec::with_capacity(inp.samples.len());
        b.iter(|| {
            out.clear();
            decode_planes(black_box(&planes), inp.samples.len(), 1, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
