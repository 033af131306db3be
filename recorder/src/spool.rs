//! One session's spool file: takes the session's queued messages in call order, redacts,
//! places audio on the clock, and appends chunks to `<spool>/<id>.calltape.part` through
//! `ArchiveWriter`, closing each chunk once the session's time passes its end. On close the
//! file is renamed to `<id>.calltape` and described ([`ClosedArchive`]) for the uploader.
//! A writer thread (`writer.rs`) drives it; it knows nothing of the recorder.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use calltape_format::{
    recover_in_place, ArchiveWriter, AudioFrame, Dropped, Event, FormatError, Header, Record,
    SessionEnd, Summary, TimedRecord, WriterOptions,
};
use serde_json::json;

use crate::clock::{sample_time_ns, AudioPlacer, ClockMode};
use crate::queue::{
    Msg, Payload, Recycled, SessionCore, POOLED_AUDIO_MAX, SPENT_RECORD_MAX_BYTES, STATE_FINISHING,
    STATE_RECORDING,
};
use crate::redact::Redactor;
use crate::report::Issues;

/// Suffix of an archive still being written.
pub const PART_SUFFIX: &str = ".calltape.part";
/// Suffix of a closed archive waiting for upload.
pub const ARCHIVE_SUFFIX: &str = ".calltape";

/// What every session's spool file needs to know, fixed when the recorder is built.
pub(crate) struct SpoolSettings {
    pub dir: PathBuf,
    /// A chunk closes once the session's time passes its start plus this.
    pub flush_interval_ns: u64,
    /// `sync_data` the file after chunks were written.
    pub sync_data: bool,
    pub audio_tolerance_ns: u64,
    pub redactor: Arc<Redactor>,
    pub issues: Arc<Issues>,
}

/// A spool file that refuses every write after the first failure, so a half-written frame is
/// never followed by more bytes (recovery keeps everything before it).
pub(crate) struct SpoolFile {
    file: File,
    failed: bool,
    /// Bytes written so far (the archive's length once finished).
    written: u64,
    /// After the failed write, the file was cut back to `written` (what the writer has
    /// accounted for), so writing can go on there once space is back.
    rewound: bool,
}

impl SpoolFile {
    /// Cuts the file back to the bytes written before a failed `write_all` (a partial frame
    /// would otherwise sit where the next frame goes) and seeks there.
    fn rewind(&mut self) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.file.set_len(self.written)?;
        self.file.seek(SeekFrom::Start(self.written))?;
        Ok(())
    }
}

impl Write for SpoolFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write to the spool file failed",
            ));
        }
        let n = self.file.write(buf).inspect_err(|_| {
            self.failed = true;
            self.rewound = false;
        })?;
        self.written += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write to the spool file failed",
            ));
        }
        if let Err(e) = self.file.write_all(buf) {
            self.failed = true;
            self.rewound = self.rewind().is_ok();
            return Err(e);
        }
        self.written += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A closed archive in the spool, as the uploader needs it: where it is, how long, its
/// summary (with the header, which gives the object key), and whether recovery rebuilt it.
pub(crate) struct ClosedArchive {
    pub path: PathBuf,
    pub len: u64,
    pub summary: Summary,
    pub recovered: bool,
}

impl ClosedArchive {
    /// Reads a closed archive's tail (blocking): for archives this process did not just close
    /// (left by an earlier run, recovered after a crash or a failed write).
    pub(crate) fn read(path: &Path) -> Result<ClosedArchive, String> {
        let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let a = calltape_format::open(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(ClosedArchive {
            path: path.to_path_buf(),
            len: a.file_len,
            recovered: a.footer.flags & 1 == 1,
            summary: a.summary,
        })
    }

    pub(crate) fn header(&self) -> &Header {
        &self.summary.header
    }
}

/// Where a session's archive ended up after closing.
pub(crate) enum Closed {
    /// Closed normally: everything the uploader needs is known.
    Archive(Box<ClosedArchive>),
    /// Writing failed mid-way and the file was recovered in place and renamed to `path`: its
    /// tail must be read back before upload.
    Recovered { path: PathBuf },
    /// Nothing could be kept (the spool file could not even be created), or the file could not
    /// be closed now and stays as a `.part` for recovery at the next start.
    Nothing {
        reason: String,
        path: Option<PathBuf>,
    },
}

pub(crate) struct SpoolWriter {
    settings: Arc<SpoolSettings>,
    core: Arc<SessionCore>,
    header: Header,
    part_path: PathBuf,
    writer: Option<ArchiveWriter<SpoolFile>>,
    /// Held while writing, so a recorder starting beside us never "recovers" a live file.
    lock: Option<File>,
    placers: Vec<AudioPlacer>,
    wrote_end: bool,
    /// The latest session time written: chunks that started a flush interval before it close.
    written_until_ns: u64,
    /// The session time chunks were last closed up to (with a live clock, the clock's).
    closed_until_ns: u64,
    /// Chunks were written since the last sync.
    unsynced: bool,
    /// Messages the last batch took.
    last_taken: u64,
    /// Messages taken off the queue; kept empty between batches so its allocation is reused.
    batch: VecDeque<Msg>,
    /// Sample buffers and records of the batch, given back to the queue after it.
    recycled: Recycled,
    /// Bytes of the open chunks charged to the memory budget.
    open_charged: usize,
    /// The spool file could not be created (a full disk, say): when to try again. Until it
    /// exists, what the session records is dropped and counted; the counts go into the
    /// archive as `dropped` records once it does.
    create_retry_at: Option<std::time::Instant>,
    /// Something was dropped because there was no spool file to write it to.
    dropped_without_spool: bool,
    /// Writing the spool file failed mid-call (a full disk, say) and the file was cut back to
    /// its last whole frame: until a retry succeeds, what the session records is dropped and
    /// counted; then writing goes on and the drops go into the archive.
    suspended: Option<Suspended>,
}

struct Suspended {
    /// Session time of the failure.
    since_ns: u64,
    retry_at: std::time::Instant,
    error: String,
}

/// zstd level of the recorder's audio chunks (it writes `pcm16_rice` only). Measured on the
/// codec bench's 84 s of speech (BENCHMARKS.md, "Format codec"): level 3 0.550 of raw PCM,
/// 26.5 ms; level -5 0.557, 21.4 ms; bodies stored in raw blocks 0.587 (the records section's
/// audio heads no longer shrink), 19.5–31.7 ms. Level -5 keeps the size within ~1% for most
/// of the time saved.
const AUDIO_ZSTD_LEVEL: i32 = -5;

/// How long a session whose spool file write failed waits before trying again.
const WRITE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a session whose spool file could not be created waits before trying again.
const CREATE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl SpoolWriter {
    /// Creates the `.part` file and writes the header. A failure is reported once and leaves a
    /// degraded session that counts and drops what it is given.
    pub(crate) fn open(
        settings: Arc<SpoolSettings>,
        core: Arc<SessionCore>,
        mut header: Header,
    ) -> Self {
        settings.redactor.redact_header(&mut header);
        let part_path = settings.dir.join(format!("{}{PART_SUFFIX}", core.id));
        let placers = core
            .tracks
            .iter()
            .map(|t| AudioPlacer::new(t.sample_rate, settings.audio_tolerance_ns))
            .collect();
        let mut w = SpoolWriter {
            settings,
            core,
            header,
            part_path,
            writer: None,
            lock: None,
            placers,
            wrote_end: false,
            written_until_ns: 0,
            closed_until_ns: 0,
            unsynced: false,
            last_taken: 0,
            batch: VecDeque::new(),
            recycled: Recycled::default(),
            open_charged: 0,
            create_retry_at: None,
            dropped_without_spool: false,
            suspended: None,
        };
        if let Err(e) = w.create() {
            let msg = format!(
                "cannot create spool file {}: {e}; what the session records is dropped and \
                 counted until it can be created (tried again every {} s)",
                w.part_path.display(),
                CREATE_RETRY.as_secs()
            );
            if w.core.set_error(msg.clone()) {
                w.settings.issues.report(Some(&w.core.id), msg);
            }
            w.create_retry_at = Some(std::time::Instant::now() + CREATE_RETRY);
            w.core.waiting_for_spool.store(true, Ordering::Relaxed);
        }
        w
    }

    /// Tries again to create a spool file that could not be created (due now and then).
    fn retry_create(&mut self) {
        let Some(at) = self.create_retry_at else {
            return;
        };
        let now = std::time::Instant::now();
        if now < at {
            return;
        }
        match self.create() {
            Ok(()) => {
                self.create_retry_at = None;
                self.core.waiting_for_spool.store(false, Ordering::Relaxed);
            }
            Err(_) => self.create_retry_at = Some(now + CREATE_RETRY),
        }
    }

    fn create(&mut self) -> Result<(), FormatError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.part_path)?;
        if file.try_lock().is_ok() {
            self.lock = Some(file.try_clone()?);
        }
        let opts = WriterOptions {
            max_chunk_duration_ns: self.settings.flush_interval_ns,
            audio_zstd_level: AUDIO_ZSTD_LEVEL,
            ..WriterOptions::default()
        };
        let out = SpoolFile {
            file,
            failed: false,
            written: 0,
            rewound: false,
        };
        match ArchiveWriter::with_options(out, self.header.clone(), opts) {
            Ok(writer) => {
                self.writer = Some(writer);
                Ok(())
            }
            Err(e) => {
                // not even the header fits: the file holds nothing worth keeping
                self.lock = None;
                let _ = std::fs::remove_file(&self.part_path);
                Err(e)
            }
        }
    }

    pub(crate) fn core(&self) -> &Arc<SessionCore> {
        &self.core
    }

    /// The first failure of the session: reported once; from now on records are counted
    /// and dropped, and what is in the file stays recoverable.
    fn fail(&mut self, msg: String) {
        if self.suspended.take().is_some() {
            self.core.waiting_for_spool.store(false, Ordering::Relaxed);
        }
        if let Some(mut w) = self.writer.take() {
            // its Drop would try to finish; the SpoolFile refuses, so nothing more is written
            w.get_mut().failed = true;
            drop(w);
        }
        self.charge_open_chunks();
        self.core.degraded.store(true, Ordering::Relaxed);
        if self.core.set_error(msg.clone()) {
            self.settings.issues.report(Some(&self.core.id), msg);
        }
    }

    fn write_failed(&mut self, e: impl std::fmt::Display) {
        let rewound = self.writer.as_ref().is_some_and(|w| w.get_ref().rewound);
        if !rewound {
            let msg = format!(
                "writing spool file {} failed: {e}; recording of this session stops, what was \
                 written so far stays recoverable",
                self.part_path.display()
            );
            return self.fail(msg);
        }
        // the file holds whole frames only: wait for space, dropping and counting meanwhile
        let error = e.to_string();
        let now = std::time::Instant::now();
        match self.suspended.as_mut() {
            Some(s) => s.retry_at = now + WRITE_RETRY,
            None => {
                let msg = format!(
                    "writing spool file {} failed: {error}; what the session records is dropped \
                     and counted until writing succeeds again (tried every {} s), what was \
                     written so far stays",
                    self.part_path.display(),
                    WRITE_RETRY.as_secs()
                );
                // (not `degraded`, which makes the hot path refuse records: they must reach
                // this writer, to be counted and to find out when space is back)
                self.core.waiting_for_spool.store(true, Ordering::Relaxed);
                if self.core.set_error(msg.clone()) {
                    self.settings.issues.report(Some(&self.core.id), msg);
                }
                self.suspended = Some(Suspended {
                    since_ns: self.core.clock.now_ns().max(self.written_until_ns),
                    retry_at: now + WRITE_RETRY,
                    error,
                });
            }
        }
    }

    /// Writing works: the spool file takes bytes (a file not suspended by a failed write).
    fn writing(&self) -> bool {
        self.writer.is_some() && self.suspended.is_none()
    }

    /// Tries writing again after a failed write (when due, or at once if `now`): the chunks
    /// whose write failed are written first; if that works, a `spool_unavailable` event says
    /// from when to when records were dropped, and the `dropped` records follow.
    fn retry_write(&mut self, now: bool) {
        let Some(s) = self.suspended.as_ref() else {
            return;
        };
        if !now && std::time::Instant::now() < s.retry_at {
            return;
        }
        let Some(w) = self.writer.as_mut() else {
            self.suspended = None;
            return;
        };
        w.get_mut().failed = false;
        match w.flush_chunks() {
            Ok(n) => self.unsynced |= n > 0,
            Err(FormatError::Io(e)) => return self.write_failed(e),
            Err(e) => {
                let msg = format!(
                    "writing spool file {} failed: {e}; recording of this session stops, what \
                     was written so far stays recoverable",
                    self.part_path.display()
                );
                return self.fail(msg);
            }
        }
        let Some(s) = self.suspended.take() else {
            return;
        };
        self.core.waiting_for_spool.store(false, Ordering::Relaxed);
        self.dropped_without_spool = true;
        let to_ns = self.core.clock.now_ns().max(self.written_until_ns);
        let mut attributes = calltape_format::Attributes::new();
        attributes.insert("from_ns".into(), json!(s.since_ns));
        attributes.insert("to_ns".into(), json!(to_ns));
        attributes.insert("error".into(), json!(s.error));
        self.write(&TimedRecord::new(
            to_ns,
            Record::Event(Event {
                turn: None,
                name: "spool_unavailable".into(),
                attributes,
            }),
        ));
    }

    fn write(&mut self, rec: &TimedRecord) {
        if !self.writing() {
            self.core.drop_records(1);
            return;
        }
        if rec.time_ns > self.written_until_ns {
            // the session's time moved on: chunks it has passed close first, so where chunks
            // end depends only on the records, never on when the writer ran
            self.written_until_ns = rec.time_ns;
            self.close_chunks_until(rec.time_ns);
        }
        let Some(w) = self.writer.as_mut() else {
            self.core.drop_records(1);
            return;
        };
        match w.write(rec) {
            Ok(closed) => {
                self.core.records_written.fetch_add(1, Ordering::Relaxed);
                self.unsynced |= closed > 0;
            }
            Err(FormatError::Io(e)) => {
                self.write_failed(e);
                self.count_lost(rec);
            }
            Err(_) => self.core.drop_records(1),
        }
    }

    /// Counts a record that could not be written as dropped (samples for audio).
    fn count_lost(&mut self, rec: &TimedRecord) {
        match &rec.record {
            Record::Audio(a) => {
                if let Some(slot) = self.core.track(a.track) {
                    let frames = (a.samples.len() / usize::from(a.channels.max(1))) as u64;
                    slot.dropped_pending.fetch_add(frames, Ordering::Relaxed);
                    slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
                }
                self.dropped_without_spool = true;
            }
            _ => {
                self.core.drop_records(1);
                self.dropped_without_spool = true;
            }
        }
    }

    /// Closes every open chunk that started a flush interval or more before `now_ns`.
    fn close_chunks_until(&mut self, now_ns: u64) {
        if now_ns <= self.closed_until_ns || !self.writing() {
            return;
        }
        self.closed_until_ns = now_ns;
        if let Some(w) = self.writer.as_mut() {
            match w.close_stale(now_ns) {
                Ok(n) => self.unsynced |= n > 0,
                Err(e) => self.write_failed(e),
            }
        }
    }

    /// Chunks were written since the last [`SpoolWriter::sync`].
    pub(crate) fn needs_sync(&self) -> bool {
        self.unsynced && self.settings.sync_data && self.writing()
    }

    /// The chunks written so far were made durable by a sync of the whole spool filesystem
    /// (the writer thread's group commit).
    pub(crate) fn synced_with_filesystem(&mut self) {
        self.unsynced = false;
    }

    /// Makes the chunks written so far durable (`sync_data`).
    pub(crate) fn sync(&mut self) {
        self.unsynced = false;
        if !self.settings.sync_data {
            return;
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.get_mut().file.sync_data() {
                let msg = format!(
                    "sync of spool file {} failed: {e}",
                    self.part_path.display()
                );
                self.fail(msg);
            }
        }
    }

    /// One batch: takes everything queued, writes it in call order, notes drops, and closes
    /// the chunks the session's clock has passed.
    pub(crate) fn pump(&mut self) {
        self.retry_create();
        self.retry_write(false);
        let mut batch = std::mem::take(&mut self.batch);
        self.core.queue.take(&mut batch);
        let taken = batch.len() as u64;
        self.last_taken = taken;
        self.process(&mut batch);
        self.batch = batch;
        self.core.queue.give_back(&mut self.recycled);
        self.report_drops();
        if self.core.clock.mode() == ClockMode::Realtime {
            let now = self.core.clock.now_ns();
            self.close_chunks_until(now);
        }
        self.charge_open_chunks();
        if taken > 0 {
            self.core.processed.send_modify(|p| *p += taken);
        }
    }

    fn process(&mut self, batch: &mut VecDeque<Msg>) {
        let big = batch.capacity();
        let used = batch.len();
        for msg in batch.drain(..) {
            self.core.budget.release(msg.bytes);
            match msg.payload {
                Payload::Control(rec) => {
                    let rec = self.control(rec);
                    if msg.bytes <= SPENT_RECORD_MAX_BYTES {
                        self.recycled.records.push(rec);
                    }
                }
                Payload::Audio {
                    track,
                    time_ns,
                    samples,
                } => {
                    if let Some(buf) = self.audio(track, time_ns, samples) {
                        if buf.capacity() <= POOLED_AUDIO_MAX {
                            self.recycled.audio.push(buf);
                        }
                    }
                }
            }
        }
        // after a burst, give most of the memory back
        if big > 1024 && used < big / 8 {
            batch.shrink_to(used.max(64));
        }
    }

    /// Brings the budget's charge for the open chunks up to date (what they hold is counted
    /// like queued records: a session's memory is its queue plus its open chunks).
    fn charge_open_chunks(&mut self) {
        let now = self.writer.as_ref().map_or(0, |w| w.open_bytes());
        if now > self.open_charged {
            self.core.budget.charge(now - self.open_charged);
        } else {
            self.core.budget.release(self.open_charged - now);
        }
        self.open_charged = now;
    }

    /// The last batch was empty and, as far as the session's clock is concerned, nothing is
    /// due: with a live clock every chunk is closed; a manual clock only moves with records.
    pub(crate) fn is_idle(&self) -> bool {
        if self.writer.is_none() {
            return true;
        }
        if self.suspended.is_some() {
            // chunks cannot close until writing works again; records arriving ring the bell
            return self.last_taken == 0;
        }
        self.last_taken == 0
            && (self.core.clock.mode() == ClockMode::Manual
                || self.closed_until_ns
                    >= self
                        .written_until_ns
                        .saturating_add(self.settings.flush_interval_ns))
    }

    /// `finish` was called, the recorder is shutting down, or every handle is gone.
    pub(crate) fn is_finishing(&self) -> bool {
        if self.core.detached.load(Ordering::Acquire) {
            self.core
                .default_end_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| "session_dropped".to_string());
            let _ = self.core.state.compare_exchange(
                STATE_RECORDING,
                STATE_FINISHING,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        self.core.state.load(Ordering::Acquire) != STATE_RECORDING
    }

    /// Writes a control record; gives it back for recycling.
    fn control(&mut self, mut rec: TimedRecord) -> TimedRecord {
        if !self.writing() {
            self.dropped_without_spool = true;
            self.core.drop_records(1);
            return rec;
        }
        self.settings.redactor.redact_record(&mut rec.record);
        if matches!(rec.record, Record::SessionEnd(_)) {
            if self.wrote_end {
                return rec;
            }
            self.wrote_end = true;
        }
        self.write(&rec);
        rec
    }

    /// Writes an audio frame; gives its sample buffer back for recycling.
    fn audio(&mut self, track_id: u16, time_ns: u64, mut samples: Vec<i16>) -> Option<Vec<i16>> {
        let Some(idx) = usize::from(track_id).checked_sub(1) else {
            return Some(samples);
        };
        let Some(slot) = self.core.tracks.get(idx) else {
            return Some(samples);
        };
        let channels = usize::from(slot.channels.max(1));
        let frames = (samples.len() / channels) as u64;
        if !self.writing() {
            self.dropped_without_spool = true;
            slot.dropped_pending.fetch_add(frames, Ordering::Relaxed);
            slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
            return Some(samples);
        }
        let rate = slot.sample_rate;
        let (track, ch) = (slot.id, slot.channels);
        let placement = self.placers[idx].place(time_ns, frames);
        if let Some(d) = placement.drift_samples {
            let mut attributes = calltape_format::Attributes::new();
            attributes.insert("track".into(), json!(track));
            attributes.insert("what".into(), json!(slot.label));
            attributes.insert("samples".into(), json!(d));
            let ns = sample_time_ns(d.unsigned_abs(), rate) as i64;
            attributes.insert("ns".into(), json!(if d < 0 { -ns } else { ns }));
            self.write(&TimedRecord::new(
                time_ns,
                Record::Event(Event {
                    turn: None,
                    name: "audio_drift_corrected".into(),
                    attributes,
                }),
            ));
        }
        let skip = placement.skip_frames as usize * channels;
        if skip >= samples.len() {
            return Some(samples);
        }
        samples.drain(..skip);
        let rec = TimedRecord::new(
            sample_time_ns(placement.first_sample, rate),
            Record::Audio(AudioFrame {
                track,
                channels: ch,
                first_sample: placement.first_sample,
                samples,
            }),
        );
        self.write(&rec);
        match rec.record {
            Record::Audio(a) => Some(a.samples),
            _ => None,
        }
    }

    /// Writes a `dropped` record for everything dropped since the last one.
    fn report_drops(&mut self) {
        if !self.writing() {
            return;
        }
        let mut drops = Vec::new();
        for t in self.core.tracks.iter() {
            let n = t.dropped_pending.swap(0, Ordering::Relaxed);
            if n > 0 {
                drops.push((t.label.clone(), n, "samples"));
            }
        }
        let n = self.core.dropped_records_pending.swap(0, Ordering::Relaxed);
        if n > 0 {
            drops.push(("records".to_string(), n, "records"));
        }
        if drops.is_empty() {
            return;
        }
        let reason = if std::mem::take(&mut self.dropped_without_spool) {
            "spool_unavailable"
        } else {
            "queue_full_or_memory_budget"
        };
        let now = self.core.clock.now_ns();
        for (what, count, unit) in drops {
            self.write(&TimedRecord::new(
                now,
                Record::Dropped(Dropped {
                    what,
                    count,
                    unit: unit.to_string(),
                    reason: reason.to_string(),
                }),
            ));
        }
    }

    /// Drops the writer without writing anything more (after a bug in it): the spool file
    /// keeps what was written and is recovered on the next start.
    pub(crate) fn abandon(mut self) {
        if let Some(w) = self.writer.as_mut() {
            w.get_mut().failed = true;
        }
        self.core
            .budget
            .release(std::mem::take(&mut self.open_charged));
    }

    /// Writes what is left, records the session end if the agent did not, and closes the
    /// archive (summary, index, footer), then renames it. A file that cannot be closed is
    /// recovered in place if possible, else left as `.part` for the next start. The queue
    /// refuses everything from then on.
    pub(crate) fn close(mut self) -> Closed {
        self.pump();
        let closed = self.close_file();
        self.charge_open_chunks();
        // messages that raced the close are refused from now on; count the last few
        let mut late = std::mem::take(&mut self.batch);
        self.core.queue.close(&mut late);
        let taken = late.len() as u64;
        for msg in late.drain(..) {
            self.core.budget.release(msg.bytes);
            match msg.payload {
                Payload::Control(_) => self.core.drop_records(1),
                Payload::Audio { track, samples, .. } => {
                    if let Some(slot) = self.core.track(track) {
                        let frames = samples.len() / usize::from(slot.channels.max(1));
                        slot.dropped_total
                            .fetch_add(frames as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        if taken > 0 {
            self.core.processed.send_modify(|p| *p += taken);
        }
        closed
    }

    fn close_file(&mut self) -> Closed {
        // a last try to write after a failed write: the file stays whole if space is back
        self.retry_write(true);
        if self.writing() && !self.wrote_end {
            let reason = self
                .core
                .default_end_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "unspecified".to_string());
            let now = self.core.clock.now_ns();
            self.write(&TimedRecord::new(
                now,
                Record::SessionEnd(SessionEnd {
                    reason,
                    outcome: None,
                }),
            ));
        }
        self.report_drops();
        let final_path = free_archive_path(&self.settings.dir, &self.core.id);
        if let Some(w) = self.writer.take() {
            match w.finish() {
                Ok((out, summary)) => {
                    let len = out.written;
                    let synced = out.file.sync_all();
                    drop(out);
                    match synced.and_then(|_| rename_durable(&self.part_path, &final_path)) {
                        Ok(()) => {
                            self.lock = None;
                            return Closed::Archive(Box::new(ClosedArchive {
                                path: final_path,
                                len,
                                summary,
                                recovered: false,
                            }));
                        }
                        Err(e) => {
                            let msg = format!(
                                "closing spool file {} failed: {e}",
                                self.part_path.display()
                            );
                            self.fail(msg);
                        }
                    }
                }
                Err(e) => {
                    let msg = format!(
                        "closing spool file {} failed: {e}; recording of this session stops, \
                         what was written so far stays recoverable",
                        self.part_path.display()
                    );
                    self.fail(msg);
                }
            }
        }
        self.lock = None;
        if !self.part_path.exists() {
            return Closed::Nothing {
                reason: self
                    .core
                    .error()
                    .unwrap_or_else(|| "no spool file".to_string()),
                path: None,
            };
        }
        // the file failed mid-way: keep what is good, flagged as recovered
        match recover_in_place(&self.part_path)
            .map_err(|e| e.to_string())
            .and_then(|_| rename_durable(&self.part_path, &final_path).map_err(|e| e.to_string()))
        {
            Ok(()) => Closed::Recovered { path: final_path },
            Err(e) => Closed::Nothing {
                reason: format!(
                    "{}; recovery failed too ({e}); the file stays in the spool and is \
                     recovered on the next start",
                    self.core.error().unwrap_or_default()
                ),
                path: Some(self.part_path.clone()),
            },
        }
    }
}

/// `<spool>/<id>.calltape`, or `<id>~N.calltape` if an earlier archive of the same id is
/// still waiting for upload.
pub(crate) fn free_archive_path(dir: &Path, id: &str) -> PathBuf {
    let first = dir.join(format!("{id}{ARCHIVE_SUFFIX}"));
    if !first.exists() {
        return first;
    }
    (2u32..)
        .map(|n| dir.join(format!("{id}~{n}{ARCHIVE_SUFFIX}")))
        .find(|p| !p.exists())
        .expect("a free name exists")
}

/// Renames and syncs the directory, so the rename survives a power cut.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
