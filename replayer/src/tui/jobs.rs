//! Slow work off the UI thread: loading a turn's records, the records and audio envelope of a
//! time span, the gap measured from audio, search, preparing WAVs. Each job is a value; the
//! [`JobRunner`] runs it on the tokio runtime and keeps only the newest request of each kind
//! (like gitui's async jobs); tests run the same jobs inline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use calltape_format::call::activity::{
    samples_per_frame, segments, EnvelopeBuilder, MeasuredGap, TurnGap,
};
use calltape_format::call::TurnTimeline;
use calltape_format::{ChunkEntry, Filter, Record, Speaker, TimedRecord, TurnId};

use crate::error::Result;

use super::model::{EnergyView, SearchHit, SpanData, TurnDetail};
use super::opening::{LoadedCall, TempFile};
use super::player::write_wav;
use crate::export::wav::TrackChoice;

/// What a job needs besides its own parameters: the call snapshot (whose source holds the
/// chunk cache every job shares).
#[derive(Clone)]
pub struct JobEnv {
    pub call: Arc<LoadedCall>,
}

/// Kinds of job; a new job of a kind replaces the one still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Turn,
    Span,
    Energy,
    Gap,
    Search,
    Audio,
}

/// A request for slow work.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Records of these turns: `(turn, start_ns, next turn's start_ns)`.
    LoadTurns(Vec<(TurnId, u64, Option<u64>)>),
    /// Transcripts, reported speech and marks in a span.
    LoadSpan { from_ns: u64, to_ns: u64 },
    /// Audio envelopes of both speakers over a span.
    Energy { from_ns: u64, to_ns: u64 },
    /// The response gap heard in the audio around a turn (the rule `inspect --audio-check`
    /// applies too).
    MeasureGap { turn: TurnId },
    /// Every transcript line containing `query` (case-insensitive).
    Search { query: String },
    /// A WAV of a range, to play (temp file) or to keep (`dest`).
    Audio {
        tracks: TrackChoice,
        from_ns: u64,
        to_ns: u64,
        label: String,
        dest: Option<PathBuf>,
    },
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::LoadTurns(_) => JobKind::Turn,
            Job::LoadSpan { .. } => JobKind::Span,
            Job::Energy { .. } => JobKind::Energy,
            Job::MeasureGap { .. } => JobKind::Gap,
            Job::Search { .. } => JobKind::Search,
            Job::Audio { .. } => JobKind::Audio,
        }
    }
}

/// What a job produced.
#[derive(Debug)]
pub enum JobResult {
    Turns(Vec<Arc<TurnDetail>>),
    Span(Arc<SpanData>),
    Energy(Arc<EnergyView>),
    Gap(TurnGap),
    Search {
        query: String,
        hits: Vec<SearchHit>,
    },
    /// A temporary WAV ready to play.
    AudioReady {
        wav: TempFile,
        label: String,
    },
    /// A WAV written where the user asked.
    WavWritten(PathBuf),
    Failed {
        kind: JobKind,
        message: String,
    },
}

/// Longest span whose audio envelope is computed (decoding more would take seconds).
pub const MAX_ENERGY_SPAN_NS: u64 = 15 * 60 * 1_000_000_000;
/// Envelope frames per span at most.
const MAX_ENERGY_FRAMES: u64 = 6_000;

/// Runs one job to completion.
pub async fn execute(env: &JobEnv, job: Job) -> JobResult {
    let kind = job.kind();
    match run(env, job).await {
        Ok(r) => r,
        Err(e) => JobResult::Failed {
            kind,
            message: e.to_string(),
        },
    }
}

async fn run(env: &JobEnv, job: Job) -> Result<JobResult> {
    let call = &env.call;
    match job {
        Job::LoadTurns(turns) => {
            let timeline = TurnTimeline::of(&call.archive.summary);
            let mut out = Vec::new();
            for (turn, start, next) in turns {
                let archive = &call.archive;
                let mut entries: Vec<ChunkEntry> = archive.chunks_for_turn(turn).copied().collect();
                let end = next.unwrap_or(u64::MAX);
                for e in archive.chunks_in(0, start, end) {
                    if !entries.iter().any(|x| x.offset == e.offset) {
                        entries.push(*e);
                    }
                }
                let records = control_records(env, &entries).await?;
                out.push(Arc::new(TurnDetail::collect(turn, &timeline, &records)));
            }
            Ok(JobResult::Turns(out))
        }
        Job::LoadSpan { from_ns, to_ns } => {
            let entries: Vec<ChunkEntry> =
                call.archive.chunks_in(0, from_ns, to_ns).copied().collect();
            let records = control_records(env, &entries).await?;
            Ok(JobResult::Span(Arc::new(SpanData::collect(
                from_ns, to_ns, &records,
            ))))
        }
        Job::Energy { from_ns, to_ns } => {
            let frame_ns = ((to_ns - from_ns) / MAX_ENERGY_FRAMES).max(10_000_000);
            let (user, agent) = envelopes(call, from_ns, to_ns, frame_ns).await?;
            Ok(JobResult::Energy(Arc::new(EnergyView {
                from_ns,
                to_ns,
                frame_ns,
                user_speech: segments(&user, from_ns, frame_ns),
                agent_speech: segments(&agent, from_ns, frame_ns),
                user,
                agent,
            })))
        }
        Job::MeasureGap { turn } => {
            let summary = &call.archive.summary;
            let measured = match summary.turns.iter().find(|t| t.turn == turn) {
                Some(t) => crate::export::audio_gap::measure(&call.source, &call.archive, t)
                    .await?
                    .unwrap_or_default(),
                None => MeasuredGap::default(),
            };
            Ok(JobResult::Gap(TurnGap { turn, measured }))
        }
        Job::Search { query } => {
            let needle = query.to_lowercase();
            let timeline = TurnTimeline::of(&call.archive.summary);
            let mut hits = Vec::new();
            let src = &call.source;
            src.drive(src.reader(&call.archive, Filter::lane(0)), |r| {
                if let Record::Transcript(t) = &r.record {
                    let found = t.text.to_lowercase().contains(&needle)
                        || t.heard_text
                            .as_ref()
                            .is_some_and(|h| h.to_lowercase().contains(&needle));
                    if found && t.is_final {
                        let at_ns = t.start_ns.unwrap_or(r.time_ns);
                        let turn = timeline.turn_of(&r);
                        hits.push(SearchHit { at_ns, turn });
                    }
                }
                Ok(())
            })
            .await?;
            hits.sort_by_key(|h| h.at_ns);
            hits.dedup();
            Ok(JobResult::Search { query, hits })
        }
        Job::Audio {
            tracks,
            from_ns,
            to_ns,
            label,
            dest,
        } => match dest {
            Some(path) => {
                write_wav(call, tracks, from_ns, to_ns, &path).await?;
                Ok(JobResult::WavWritten(path))
            }
            None => {
                let wav = TempFile::new("calltape-play", "wav");
                write_wav(call, tracks, from_ns, to_ns, &wav.0).await?;
                Ok(JobResult::AudioReady { wav, label })
            }
        },
    }
}

/// Control records of `entries`, through the call's chunk cache, in time order.
async fn control_records(env: &JobEnv, entries: &[ChunkEntry]) -> Result<Vec<TimedRecord>> {
    let src = &env.call.source;
    src.records(src.chunk_reader(entries.iter().copied(), Filter::all()))
        .await
}

/// RMS envelopes of the user's and the agent's first tracks, read together (the bytes of
/// both come in the same ranged requests, and their decoded chunks stay in the cache for
/// the next view of the same time).
async fn envelopes(
    call: &LoadedCall,
    from_ns: u64,
    to_ns: u64,
    frame_ns: u64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    futures::try_join!(
        envelope(call, Speaker::User, from_ns, to_ns, frame_ns),
        envelope(call, Speaker::Agent, from_ns, to_ns, frame_ns)
    )
}

/// RMS envelope of the first track of `role`; empty when the call has none.
async fn envelope(
    call: &LoadedCall,
    role: Speaker,
    from_ns: u64,
    to_ns: u64,
    frame_ns: u64,
) -> Result<Vec<f32>> {
    let Some(track) = call
        .archive
        .header()
        .tracks
        .iter()
        .find(|t| t.role == role)
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let mut env = EnvelopeBuilder::new(samples_per_frame(
        track.sample_rate,
        track.channels,
        frame_ns,
    ));
    crate::call::stream_audio(&call.source, &call.archive, track.id, from_ns, to_ns, |s| {
        env.push(s);
        Ok(())
    })
    .await?;
    Ok(env.finish())
}

/// Runs jobs on a tokio runtime, one per kind at a time: submitting a job aborts the
/// previous job of the same kind. Results arrive on the channel given at creation.
pub struct JobRunner<M> {
    handle: tokio::runtime::Handle,
    tx: mpsc::Sender<M>,
    wrap: fn(JobResult) -> M,
    running: HashMap<JobKind, tokio::task::JoinHandle<()>>,
}

impl<M: Send + 'static> JobRunner<M> {
    pub fn new(
        handle: tokio::runtime::Handle,
        tx: mpsc::Sender<M>,
        wrap: fn(JobResult) -> M,
    ) -> Self {
        JobRunner {
            handle,
            tx,
            wrap,
            running: HashMap::new(),
        }
    }

    pub fn submit(&mut self, env: JobEnv, job: Job) {
        if let Some(old) = self.running.remove(&job.kind()) {
            old.abort();
        }
        let tx = self.tx.clone();
        let wrap = self.wrap;
        let kind = job.kind();
        let task = self.handle.spawn(async move {
            // the terminal tests' stand-in for a bug in a job: a panic on a worker thread
            #[cfg(feature = "test-harness")]
            if std::env::var_os("CALLTAPE_TEST_PANIC_IN_JOBS").is_some() {
                panic!("a job panicked (CALLTAPE_TEST_PANIC_IN_JOBS)");
            }
            let result = execute(&env, job).await;
            let _ = tx.send(wrap(result));
        });
        self.running.insert(kind, task);
    }
}

impl<M> Drop for JobRunner<M> {
    fn drop(&mut self) {
        for (_, t) in self.running.drain() {
            t.abort();
        }
    }
}
