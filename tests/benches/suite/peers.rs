//! The same call encoded the ways people store calls today: raw WAV + JSONL, JSONL.zst +
//! FLAC (`flac -5`), and MCAP with zstd chunks; and calltape itself.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use calltape_format::{ArchiveWriter, Header, Record, TimedRecord};

/// One encoded form of the call.
pub struct Encoded {
    pub bytes: usize,
    pub audio_bytes: usize,
    pub elapsed: Duration,
}

/// Raw input size: PCM bytes and JSON bytes of the control records.
pub fn raw_sizes(records: &[TimedRecord]) -> (usize, usize) {
    let mut pcm = 0;
    let mut json = Vec::new();
    for r in records {
        match &r.record {
            Record::Audio(a) => pcm += a.samples.len() * 2,
            other => {
                other.write_json_payload(&mut json);
            }
        }
    }
    (pcm, json.len())
}

pub fn calltape(header: &Header, records: &[TimedRecord]) -> (Encoded, Vec<u8>) {
    let start = Instant::now();
    let mut w = ArchiveWriter::new(Vec::with_capacity(8 << 20), header.clone()).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    let (bytes, _) = w.finish().unwrap();
    let elapsed = start.elapsed();
    let archive = calltape_format::open(&mut Cursor::new(&bytes)).unwrap();
    let audio_bytes = archive
        .index
        .iter()
        .filter(|e| e.lane != 0)
        .map(|e| e.frame_len() as usize)
        .sum();
    (
        Encoded {
            bytes: bytes.len(),
            audio_bytes,
            elapsed,
        },
        bytes,
    )
}

/// Decodes every chunk of an archive; returns samples + records seen.
pub fn calltape_read(bytes: &[u8]) -> usize {
    let mut cur = Cursor::new(bytes);
    let archive = calltape_format::open(&mut cur).unwrap();
    let mut n = 0;
    for e in &archive.index {
        n += calltape_format::read_chunk(&mut cur, e)
            .unwrap()
            .records
            .len();
    }
    n
}

/// JSON Lines of the control records: `{"t": ns, "kind": name, ...payload}`.
pub fn jsonl(records: &[TimedRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        if matches!(r.record, Record::Audio(_)) {
            continue;
        }
        out.extend_from_slice(
            format!(
                "{{\"t\":{},\"kind\":\"{}\",\"data\":",
                r.time_ns,
                r.record.kind_name()
            )
            .as_bytes(),
        );
        r.record.write_json_payload(&mut out);
        out.extend_from_slice(b"}\n");
    }
    out
}

/// One WAV per track, silence where nothing was recorded (a WAV has no gaps).
pub fn wavs(header: &Header, records: &[TimedRecord], duration_ns: u64) -> BTreeMap<u16, Vec<u8>> {
    let mut tracks: BTreeMap<u16, Vec<i16>> = BTreeMap::new();
    for t in &header.tracks {
        let n = (u128::from(duration_ns) * u128::from(t.sample_rate) / 1_000_000_000) as usize;
        tracks.insert(t.id, vec![0; n + 1]);
    }
    for r in records {
        if let Record::Audio(a) = &r.record {
            let buf = tracks.get_mut(&a.track).unwrap();
            let first = a.first_sample as usize;
            if buf.len() < first + a.samples.len() {
                buf.resize(first + a.samples.len(), 0);
            }
            buf[first..first + a.samples.len()].copy_from_slice(&a.samples);
        }
    }
    tracks
        .into_iter()
        .map(|(id, samples)| {
            let rate = header
                .tracks
                .iter()
                .find(|t| t.id == id)
                .unwrap()
                .sample_rate;
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut cur = Cursor::new(Vec::new());
            let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
            for s in samples {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
            (id, cur.into_inner())
        })
        .collect()
}

/// Raw WAV files + JSONL.
pub fn wav_jsonl(header: &Header, records: &[TimedRecord], duration_ns: u64) -> Encoded {
    let start = Instant::now();
    let wavs = wavs(header, records, duration_ns);
    let json = jsonl(records);
    let audio: usize = wavs.values().map(Vec::len).sum();
    Encoded {
        bytes: audio + json.len(),
        audio_bytes: audio,
        elapsed: start.elapsed(),
    }
}

/// Bytes `flac -5` makes of a WAV, or None when the flac CLI is missing.
pub fn flac_size(wav: &[u8], scratch: &Path) -> Option<(usize, Duration)> {
    let input = scratch.join("in.wav");
    let output = scratch.join("out.flac");
    std::fs::write(&input, wav).ok()?;
    let start = Instant::now();
    let status = Command::new("flac")
        .args(["-5", "-s", "-f", "-o"])
        .arg(&output)
        .arg(&input)
        .status()
        .ok()?;
    let elapsed = start.elapsed();
    if !status.success() {
        return None;
    }
    Some((std::fs::metadata(&output).ok()?.len() as usize, elapsed))
}

/// JSONL compressed with zstd + each track as FLAC.
pub fn jsonl_zst_flac(
    header: &Header,
    records: &[TimedRecord],
    duration_ns: u64,
    scratch: &Path,
) -> Option<Encoded> {
    let start = Instant::now();
    let json = zstd::bulk::compress(&jsonl(records), 3).unwrap();
    let mut audio = 0;
    let mut flac_time = Duration::ZERO;
    for wav in wavs(header, records, duration_ns).values() {
        let (n, t) = flac_size(wav, scratch)?;
        audio += n;
        flac_time += t;
    }
    let _ = flac_time;
    Some(Encoded {
        bytes: json.len() + audio,
        audio_bytes: audio,
        elapsed: start.elapsed(),
    })
}

/// MCAP with zstd chunks: one channel for control records (JSON), one per audio track
/// (message = first_sample u64 LE + PCM i16 LE).
pub fn mcap(header: &Header, records: &[TimedRecord]) -> (Encoded, Vec<u8>) {
    let start = Instant::now();
    let mut w = mcap::WriteOptions::new()
        .compression(Some(mcap::Compression::Zstd))
        .profile("calltape-bench")
        .create(Cursor::new(Vec::with_capacity(8 << 20)))
        .unwrap();
    let schema = w
        .add_schema("calltape.Record", "jsonschema", b"{}")
        .unwrap();
    let control = w
        .add_channel(schema, "/control", "json", &BTreeMap::new())
        .unwrap();
    let mut audio_channels = BTreeMap::new();
    for t in &header.tracks {
        let raw = w.add_schema("calltape.Pcm16", "", b"").unwrap();
        let id = w
            .add_channel(
                raw,
                &format!("/audio/{}", t.role),
                "pcm16le",
                &BTreeMap::new(),
            )
            .unwrap();
        audio_channels.insert(t.id, id);
    }
    let mut buf = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        buf.clear();
        let channel_id = match &r.record {
            Record::Audio(a) => {
                buf.extend_from_slice(&a.first_sample.to_le_bytes());
                for s in &a.samples {
                    buf.extend_from_slice(&s.to_le_bytes());
                }
                audio_channels[&a.track]
            }
            other => {
                buf.extend_from_slice(
                    format!("{{\"kind\":\"{}\",\"data\":", other.kind_name()).as_bytes(),
                );
                other.write_json_payload(&mut buf);
                buf.push(b'}');
                control
            }
        };
        let header = mcap::records::MessageHeader {
            channel_id,
            sequence: seq as u32,
            log_time: r.time_ns,
            publish_time: r.time_ns,
        };
        w.write_to_known_channel(&header, &buf).unwrap();
    }
    w.finish().unwrap();
    let bytes = w.into_inner().into_inner();
    let elapsed = start.elapsed();
    (
        Encoded {
            bytes: bytes.len(),
            audio_bytes: 0,
            elapsed,
        },
        bytes,
    )
}

/// Reads every message of an MCAP file.
pub fn mcap_read(bytes: &[u8]) -> usize {
    mcap::MessageStream::new(bytes)
        .unwrap()
        .map(|m| m.unwrap().data.len())
        .sum()
}
