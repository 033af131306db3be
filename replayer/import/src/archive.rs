//! Writes an imported call into a calltape archive: control records in time order,
//! interleaved with the audio as it is decoded (so a long recording streams through in
//! page-sized blocks), split into one mono track per speaker.

use std::io::Write;

use calltape_format::{
    ArchiveWriter, AudioCodec, AudioFrame, Record, Speaker, Summary, TimedRecord, Track,
};
use serde_json::json;

use super::audio::{AudioDecoder, AudioFormat};
use super::{ImportError, ImportWarning, ImportedCall};

/// Audio record length: 20 ms, as live recorders deliver frames.
const FRAME_MS: u32 = 20;

pub const USER_TRACK: u16 = 1;
pub const AGENT_TRACK: u16 = 2;

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub summary: Summary,
    /// Every warning, from the input and from the audio, in the order met.
    pub warnings: Vec<ImportWarning>,
    /// Samples per channel of audio written (0 without audio).
    pub audio_frames: u64,
}

/// The tracks a recording of this format becomes: stereo = user on channel 0 (left) and
/// agent on channel 1 (right); mono = one mixed track (role `user`, named `mix`).
pub fn tracks_for(format: AudioFormat) -> Vec<Track> {
    let track = |id, role, name: &str| Track {
        id,
        role,
        sample_rate: format.sample_rate,
        channels: 1,
        codec: AudioCodec::Pcm16Rice,
        name: Some(name.into()),
    };
    if format.channels == 1 {
        vec![track(USER_TRACK, Speaker::User, "mix (user and agent)")]
    } else {
        vec![
            track(USER_TRACK, Speaker::User, "user (channel 0)"),
            track(AGENT_TRACK, Speaker::Agent, "agent (channel 1)"),
        ]
    }
}

/// Puts records in the order an archive holds them: by time, and at one time a turn's end
/// before the next turn's start, the session end last. The live LiveKit recorder writes its
/// mapped records in this order too.
pub fn sort_records(records: &mut [TimedRecord]) {
    records.sort_by_key(order);
}

fn order(r: &TimedRecord) -> (u64, u8) {
    let rank = match r.record {
        Record::TurnEnd(_) => 0,
        Record::TurnStart(_) => 1,
        Record::SessionEnd(_) => 3,
        _ => 2,
    };
    (r.time_ns, rank)
}

/// Writes `call` (and its audio, if any) to `out` and closes the archive.
pub fn write_archive<W: Write>(
    call: ImportedCall,
    audio: Option<Box<dyn AudioDecoder>>,
    out: W,
) -> Result<(W, ImportOutcome), ImportError> {
    let ImportedCall {
        mut header,
        mut records,
        warnings: mut all_warnings,
        audio_start_ns,
        ..
    } = call;
    if let Some(dec) = &audio {
        let format = dec.format();
        header.tracks = tracks_for(format);
        if format.channels == 1 {
            all_warnings.push(ImportWarning {
                code: "audio_mono".into(),
                message: "the recording is mono: user and agent share one track (role user, \
                          named mix), so per-speaker audio measurements are not possible"
                    .into(),
                time_ns: 0,
                turn: None,
                details: json!({"channels": 1}),
            });
        } else if format.channels > 2 {
            all_warnings.push(ImportWarning {
                code: "audio_extra_channels".into(),
                message: format!(
                    "the recording has {} channels: channel 0 is the user, channel 1 the \
                     agent, the others were not imported",
                    format.channels
                ),
                time_ns: 0,
                turn: None,
                details: json!({"channels": format.channels}),
            });
        }
    } else {
        header.tracks.clear();
    }
    records.extend(all_warnings.iter().map(ImportWarning::to_record));
    sort_records(&mut records);

    let mut writer = ArchiveWriter::new(out, header)?;
    let mut pending = records.into_iter().peekable();
    let mut audio_frames = 0u64;
    if let Some(mut dec) = audio {
        let format = dec.format();
        let rate = u64::from(format.sample_rate);
        let channels = usize::from(format.channels);
        let tracks = usize::from(format.channels.min(2));
        let frame = (format.sample_rate / (1000 / FRAME_MS)).max(1) as usize;
        let offset = (i128::from(audio_start_ns) * i128::from(rate) / 1_000_000_000) as i64;
        let mut split: Vec<Vec<i16>> = vec![Vec::new(); tracks];
        while let Some(block) = dec.next_block()? {
            for w in dec.take_warnings() {
                let w = shifted(w, audio_start_ns);
                writer.write(&w.to_record())?;
                all_warnings.push(w);
            }
            let frames = block.samples.len() / channels;
            let first = block.first_sample as i64 + offset;
            // frames before session time 0 (audio that started before the call) are dropped
            let skip = (-first).clamp(0, frames as i64) as usize;
            for s in split.iter_mut() {
                s.clear();
            }
            for f in block.samples.chunks_exact(channels).skip(skip) {
                for (t, s) in split.iter_mut().enumerate() {
                    s.push(f[t]);
                }
            }
            let mut at = (first + skip as i64) as u64;
            let mut i = 0;
            while i < split[0].len() {
                let n = frame.min(split[0].len() - i);
                let time_ns = (u128::from(at) * 1_000_000_000 / u128::from(rate)) as u64;
                while let Some(r) = pending.next_if(|r| r.time_ns <= time_ns) {
                    writer.write(&r)?;
                }
                for (t, s) in split.iter().enumerate() {
                    writer.write(&TimedRecord::new(
                        time_ns,
                        Record::Audio(AudioFrame {
                            track: USER_TRACK + t as u16,
                            channels: 1,
                            first_sample: at,
                            samples: s[i..i + n].to_vec(),
                        }),
                    ))?;
                }
                audio_frames += n as u64;
                at += n as u64;
                i += n;
            }
        }
        for w in dec.take_warnings() {
            let w = shifted(w, audio_start_ns);
            writer.write(&w.to_record())?;
            all_warnings.push(w);
        }
    }
    for r in pending {
        writer.write(&r)?;
    }
    let (out, summary) = writer.finish()?;
    Ok((
        out,
        ImportOutcome {
            summary,
            warnings: all_warnings,
            audio_frames,
        },
    ))
}

/// A decoder warning (time on the file's timeline) moved onto the session clock.
fn shifted(mut w: ImportWarning, audio_start_ns: i64) -> ImportWarning {
    w.time_ns = (w.time_ns as i64).saturating_add(audio_start_ns).max(0) as u64;
    w
}
