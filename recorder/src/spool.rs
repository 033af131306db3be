//! The background side of a session: drains the queues, redacts, places audio on the clock,
//! and appends chunks to `<spool>/<id>.calltape.part` through `ArchiveWriter`. Runs on tokio's
//! blocking pool, one batch at a time. On close the file is renamed to `<id>.calltape`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use calltape_format::{
    recover_in_place, ArchiveWriter, AudioFrame, Dropped, Event, FormatError, Header, Record,
    SessionEnd, TimedRecord, WriterOptions,
};
use serde_json::json;

use crate::clock::{sample_time_ns, AudioPlacer};
use crate::queue::{AudioMsg, ControlMsg, SessionCore};
use crate::recorder::Shared;

/// Suffix of an archive still being written.
pub const PART_SUFFIX: &str = ".calltape.part";
/// Suffix of a closed archive waiting for upload.
pub const ARCHIVE_SUFFIX: &str = ".calltape";

/// Most messages taken off each queue per batch, so one batch never runs for long.
const MAX_BATCH: usize = 4096;

/// A spool file that refuses every write after the first failure, so a half-written frame is
/// never followed by more bytes (recovery keeps everything before it).
pub(crate) struct SpoolFile {
    file: File,
    failed: bool,
}

impl Write for SpoolFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write to the spool file failed",
            ));
        }
        self.file.write(buf).inspect_err(|_| self.failed = true)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write to the spool file failed",
            ));
        }
        self.file.write_all(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a session's archive ended up after closing.
pub(crate) enum Closed {
    /// A closed archive at `path`, ready for upload.
    Archive { path: PathBuf },
    /// Nothing could be kept (the spool file could not even be created), or the file could not
    /// be closed now and stays as a `.part` for recovery at the next start.
    Nothing {
        reason: String,
        path: Option<PathBuf>,
    },
}

pub(crate) struct SpoolWriter {
    shared: Arc<Shared>,
    core: Arc<SessionCore>,
    control_rx: Receiver<ControlMsg>,
    audio_rx: Receiver<AudioMsg>,
    header: Header,
    part_path: PathBuf,
    writer: Option<ArchiveWriter<SpoolFile>>,
    /// Held while writing, so a recorder starting beside us never "recovers" a live file.
    lock: Option<File>,
    placers: Vec<AudioPlacer>,
    wrote_end: bool,
    pub(crate) disconnected: bool,
}

impl SpoolWriter {
    /// Creates the `.part` file and writes the header. A failure is reported once and leaves a
    /// degraded session that counts and drops what it is given.
    pub(crate) fn open(
        shared: Arc<Shared>,
        core: Arc<SessionCore>,
        control_rx: Receiver<ControlMsg>,
        audio_rx: Receiver<AudioMsg>,
        header: Header,
    ) -> Self {
        let part_path = shared
            .config
            .spool_dir
            .join(format!("{}{PART_SUFFIX}", core.id));
        let placers = core
            .tracks
            .iter()
            .map(|t| AudioPlacer::new(t.sample_rate, shared.config.audio_tolerance_ns))
            .collect();
        let mut w = SpoolWriter {
            shared,
            core,
            control_rx,
            audio_rx,
            header,
            part_path,
            writer: None,
            lock: None,
            placers,
            wrote_end: false,
            disconnected: false,
        };
        match w.create() {
            Ok(()) => {}
            Err(e) => w.fail(format!(
                "cannot create spool file {}: {e}",
                w.part_path.display()
            )),
        }
        w
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
            max_chunk_duration_ns: self.shared.config.flush_interval_ns,
            ..WriterOptions::default()
        };
        let out = SpoolFile {
            file,
            failed: false,
        };
        let writer = ArchiveWriter::with_options(out, self.header.clone(), opts)?;
        self.writer = Some(writer);
        Ok(())
    }

    /// The first failure of the session: reported once; from now on records are counted
    /// and dropped, and what is in the file stays recoverable.
    fn fail(&mut self, msg: String) {
        if let Some(mut w) = self.writer.take() {
            // its Drop would try to finish; the SpoolFile refuses, so nothing more is written
            w.get_mut().failed = true;
            drop(w);
        }
        self.core.degraded.store(true, Ordering::Relaxed);
        if self.core.set_error(msg.clone()) {
            self.shared.report_issue(Some(&self.core.id), msg);
        }
    }

    fn write(&mut self, rec: &TimedRecord) {
        let Some(w) = self.writer.as_mut() else {
            self.core.drop_records(1);
            return;
        };
        match w.write(rec) {
            Ok(closed) => {
                self.core.records_written.fetch_add(1, Ordering::Relaxed);
                if closed > 0 {
                    self.after_chunks();
                }
            }
            Err(FormatError::Io(e)) => {
                let msg = format!(
                    "writing spool file {} failed: {e}; recording of this session stops, \
                     what was written so far stays recoverable",
                    self.part_path.display()
                );
                self.fail(msg);
            }
            Err(_) => self.core.drop_records(1),
        }
    }

    fn after_chunks(&mut self) {
        if !self.shared.config.sync_data {
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

    /// One batch: drain both queues, write, report drops, close stale chunks.
    pub(crate) fn pump(&mut self) {
        let mut taken = 0u64;
        let mut control_gone = false;
        let mut audio_gone = false;
        for _ in 0..MAX_BATCH {
            match self.control_rx.try_recv() {
                Ok(msg) => {
                    taken += 1;
                    self.core.budget.release(msg.bytes);
                    self.control(*msg.rec);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    control_gone = true;
                    break;
                }
            }
        }
        for _ in 0..MAX_BATCH {
            match self.audio_rx.try_recv() {
                Ok(msg) => {
                    taken += 1;
                    self.core.budget.release(msg.bytes);
                    self.audio(msg);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    audio_gone = true;
                    break;
                }
            }
        }
        self.disconnected = control_gone && audio_gone;
        self.report_drops();
        let now = self.core.clock.now_ns();
        if let Some(w) = self.writer.as_mut() {
            match w.close_stale(now) {
                Ok(0) => {}
                Ok(_) => self.after_chunks(),
                Err(e) => {
                    let msg = format!(
                        "writing spool file {} failed: {e}; recording of this session stops, \
                         what was written so far stays recoverable",
                        self.part_path.display()
                    );
                    self.fail(msg);
                }
            }
        }
        if taken > 0 {
            self.core.processed.send_modify(|p| *p += taken);
        }
    }

    fn control(&mut self, mut rec: TimedRecord) {
        if self.writer.is_none() {
            self.core.drop_records(1);
            return;
        }
        self.shared.config.redactor.redact_record(&mut rec.record);
        if matches!(rec.record, Record::SessionEnd(_)) {
            if self.wrote_end {
                return;
            }
            self.wrote_end = true;
        }
        self.write(&rec);
    }

    fn audio(&mut self, msg: AudioMsg) {
        let Some(idx) = usize::from(msg.track).checked_sub(1) else {
            return;
        };
        let Some(slot) = self.core.tracks.get(idx) else {
            return;
        };
        let channels = usize::from(slot.channels.max(1));
        let frames = (msg.samples.len() / channels) as u64;
        if self.writer.is_none() {
            slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
            return;
        }
        let rate = slot.sample_rate;
        let (track, label, ch) = (slot.id, slot.label.clone(), slot.channels);
        let placement = self.placers[idx].place(msg.time_ns, frames);
        if let Some(d) = placement.drift_samples {
            let mut attributes = calltape_format::Attributes::new();
            attributes.insert("track".into(), json!(track));
            attributes.insert("what".into(), json!(label));
            attributes.insert("samples".into(), json!(d));
            let ns = sample_time_ns(d.unsigned_abs(), rate) as i64;
            attributes.insert("ns".into(), json!(if d < 0 { -ns } else { ns }));
            self.write(&TimedRecord::new(
                msg.time_ns,
                Record::Event(Event {
                    turn: None,
                    name: "audio_drift_corrected".into(),
                    attributes,
                }),
            ));
        }
        let skip = placement.skip_frames as usize * channels;
        if skip >= msg.samples.len() {
            return;
        }
        let mut samples = msg.samples;
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
    }

    /// Writes a `dropped` record for everything dropped since the last one.
    fn report_drops(&mut self) {
        if self.writer.is_none() {
            return;
        }
        let now = self.core.clock.now_ns();
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
        for (what, count, unit) in drops {
            self.write(&TimedRecord::new(
                now,
                Record::Dropped(Dropped {
                    what,
                    count,
                    unit: unit.to_string(),
                    reason: "queue_full_or_memory_budget".to_string(),
                }),
            ));
        }
    }

    /// Drains what is left, records the session end if the agent did not, and closes the
    /// archive (summary, index, footer), then renames it. A file that cannot be closed is
    /// recovered in place if possible, else left as `.part` for the next start.
    pub(crate) fn close(mut self) -> Closed {
        self.pump();
        self.pump();
        if self.writer.is_some() && !self.wrote_end {
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
        let final_path = self.final_path();
        if let Some(w) = self.writer.take() {
            match w.finish() {
                Ok((out, _summary)) => {
                    let synced = out.file.sync_all();
                    drop(out);
                    match synced.and_then(|_| rename_durable(&self.part_path, &final_path)) {
                        Ok(()) => {
                            self.lock = None;
                            return Closed::Archive { path: final_path };
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
            Ok(()) => Closed::Archive { path: final_path },
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

    /// `<spool>/<id>.calltape`, or `<id>~N.calltape` if an earlier archive of the same id is
    /// still waiting for upload.
    fn final_path(&self) -> PathBuf {
        free_archive_path(&self.shared.config.spool_dir, &self.core.id)
    }
}

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
