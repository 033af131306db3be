//! The reading API: `calltape.open(path_or_url)` → `Call` (header, tracks, totals, turns as
//! the format crate's summary holds them), records in time order and audio of a time range.
//! Reads are ranged: opening fetches the tail (footer, summary, chunk index), then the format
//! crate's record reader asks for the chunks a request needs (from a local file, or
//! concurrently from an object store) and merges their records in time order.

use std::sync::{Arc, Mutex, PoisonError};

use calltape_format::{Filter, ReadEvent, Record, RecordReader, TimedRecord, Track};
use calltape_read::call::{describe_tracks, open_location_with, OpenedCall};
use calltape_read::error::AppError;
use calltape_read::source::Location;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::to_py;
use crate::errors::{ArchiveError, UnknownTrackError};
use crate::runtime::runtime;

/// A call opened through the replayer's read layer (`calltape-read`): the same source,
/// ranged and coalesced reads, scan fallback and chunk cache as `calltape replay`.
struct CallData {
    location: String,
    call: OpenedCall,
    /// Set when the file had no usable footer and was scanned: why, and what was kept.
    scanned: Option<String>,
}

fn archive_error(e: AppError) -> PyErr {
    ArchiveError::new_err(e.to_string())
}

/// An archive opened for reading (`calltape.open`).
#[pyclass(module = "calltape._calltape", frozen)]
pub struct Call {
    data: Arc<CallData>,
}

/// Opens an archive: a path, a `file://` URL or an object-store URL (`s3://bucket/key`, with
/// the AWS environment conventions, or `store_options`). Only the tail is read now; a local
/// file without a usable footer (unclosed, crashed) is scanned instead (`Call.scanned`).
#[pyfunction]
#[pyo3(signature = (location, *, store_options=None))]
pub fn open(
    py: Python<'_>,
    location: String,
    store_options: Option<std::collections::BTreeMap<String, String>>,
) -> PyResult<Call> {
    let options: Vec<(String, String)> = store_options.unwrap_or_default().into_iter().collect();
    let data = py.detach(|| -> PyResult<CallData> {
        let parsed = Location::parse(&location).map_err(archive_error)?;
        let call = runtime()
            .block_on(open_location_with(&parsed, &options))
            .map_err(archive_error)?;
        let scanned = call.scanned.as_ref().map(|report| {
            format!(
                "no usable footer ({}); read by scanning: {} chunks and {} bytes kept, {} bytes \
                 lost",
                call.open_error.as_deref().unwrap_or("unknown reason"),
                report.chunks_kept,
                report.kept_bytes,
                report.lost_bytes
            )
        });
        Ok(CallData {
            location,
            call,
            scanned,
        })
    })?;
    Ok(Call {
        data: Arc::new(data),
    })
}

impl Call {
    fn track(&self, id: u16) -> PyResult<Track> {
        let archive = &self.data.call.archive;
        let tracks = &archive.header().tracks;
        tracks.iter().find(|t| t.id == id).cloned().ok_or_else(|| {
            UnknownTrackError::new_err(format!(
                "{} has no audio track {id} (tracks: {})",
                self.data.location,
                describe_tracks(archive)
            ))
        })
    }
}

#[pymethods]
impl Call {
    /// Where the archive was opened from.
    #[getter]
    fn location(&self) -> &str {
        &self.data.location
    }

    /// Size of the archive in bytes.
    #[getter]
    fn file_bytes(&self) -> u64 {
        self.data.call.archive.file_len
    }

    /// Number of chunks in the archive.
    #[getter]
    fn chunk_count(&self) -> usize {
        self.data.call.archive.index.len()
    }

    /// Why the file was read by a forward scan (no usable footer: still being written, or
    /// left by a crash), with what was kept and lost; None when it was opened from its tail.
    #[getter]
    fn scanned(&self) -> Option<&str> {
        self.data.scanned.as_deref()
    }

    /// The footer marks this archive as recovered after a crash.
    #[getter]
    fn recovered(&self) -> bool {
        self.data.call.archive.footer.recovered()
            || self.data.call.archive.summary.recovery.is_some()
    }

    /// The archive header (SPEC §3): session_id, started_at, agent, environment, tags, tracks.
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.data.call.archive.header())
    }

    /// The audio tracks (dicts: id, role, sample_rate, channels, codec, name).
    #[getter]
    fn tracks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.call.archive.header().tracks)
    }

    /// Session totals (SPEC §6): turns, records, errors, usage, e2e percentiles, ...
    #[getter]
    fn totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.call.archive.summary.totals)
    }

    /// The turns with their latency breakdown (`latency`, ns) and its `flags`, exactly as the
    /// archive's summary holds them (what `calltape inspect --json` prints).
    #[getter]
    fn turns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.call.archive.summary.turns)
    }

    /// From session time 0 to the last record or sample, in ns.
    #[getter]
    fn duration_ns(&self) -> u64 {
        self.data.call.archive.summary.duration_ns
    }

    /// What crash recovery kept and lost, or None.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.call.archive.summary.recovery)
    }

    /// The whole summary (header, duration_ns, turns, totals, recovery).
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.call.archive.summary)
    }

    /// Records in time order: all lanes, or `lane` (0 = control records, a track id =
    /// that track's audio), with times from `from_ns` to `to_ns` (both inclusive). Only the
    /// chunks that can hold them are read (neighbours in one ranged request), through the
    /// format crate's record reader and this call's chunk cache.
    #[pyo3(signature = (lane=None, from_ns=None, to_ns=None))]
    fn records(&self, lane: Option<u16>, from_ns: Option<u64>, to_ns: Option<u64>) -> RecordIter {
        let mut filter = match lane {
            Some(l) => Filter::lane(l),
            None => Filter::all(),
        };
        if from_ns.is_some() || to_ns.is_some() {
            filter = filter.between(from_ns.unwrap_or(0), to_ns.unwrap_or(u64::MAX));
        }
        let reader = self
            .data
            .call
            .source
            .reader(&self.data.call.archive, filter);
        RecordIter {
            state: Mutex::new(Reading::new(self.data.clone(), reader)),
        }
    }

    /// Audio of track `track` from `from_ns` to `to_ns` (default: the end of the call) as
    /// 16-bit PCM (interleaved if multi-channel) placed on the session clock: silence where
    /// nothing was recorded, exactly `(to - from) × rate` samples per channel. Returns bytes,
    /// or with `numpy=True` an int16 array (shape `(frames,)`, or `(frames, channels)`).
    #[pyo3(signature = (track, from_ns=0, to_ns=None, *, numpy=false))]
    fn audio<'py>(
        &self,
        py: Python<'py>,
        track: u16,
        from_ns: u64,
        to_ns: Option<u64>,
        numpy: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self.track(track)?;
        let to = to_ns.unwrap_or(self.data.call.archive.summary.duration_ns);
        let data = self.data.clone();
        let samples = py.detach(move || audio_range(&data, &t, from_ns, to))?;
        let bytes = PyBytes::new_with(py, samples.len() * 2, |buf| {
            for (dst, s) in buf.chunks_exact_mut(2).zip(&samples) {
                dst.copy_from_slice(&s.to_ne_bytes());
            }
            Ok(())
        })?;
        if !numpy {
            return Ok(bytes.into_any());
        }
        let np = py.import("numpy")?;
        let arr = np.call_method1("frombuffer", (bytes, "int16"))?;
        let channels = self.track(track)?.channels.max(1);
        if channels > 1 {
            arr.call_method1("reshape", ((-1i64, i64::from(channels)),))
        } else {
            Ok(arr)
        }
    }

    fn __repr__(&self) -> String {
        let s = &self.data.call.archive.summary;
        format!(
            "Call(session_id={:?}, turns={}, duration_ns={}, location={:?})",
            s.header.session_id,
            s.turns.len(),
            s.duration_ns,
            self.data.location
        )
    }
}

/// The audio of `track` in `[from_ns, to_ns)` with silence where nothing was recorded: the
/// replayer's own placement (`calltape_read::call::audio_range`).
fn audio_range(data: &CallData, track: &Track, from_ns: u64, to_ns: u64) -> PyResult<Vec<i16>> {
    let call = &data.call;
    runtime()
        .block_on(calltape_read::call::audio_range(
            &call.source,
            &call.archive,
            track.id,
            from_ns,
            to_ns,
        ))
        .map_err(archive_error)
}

/// Steps the format crate's sans-io [`RecordReader`] over the call's source: the byte ranges
/// it asks for are read (concurrently and coalesced on an object store), decoded through the
/// source's chunk cache and merged into time order.
struct Reading {
    data: Arc<CallData>,
    reader: RecordReader,
}

impl Reading {
    fn new(data: Arc<CallData>, reader: RecordReader) -> Reading {
        Reading { data, reader }
    }

    fn next(&mut self) -> PyResult<Option<TimedRecord>> {
        let src = &self.data.call.source;
        loop {
            match self
                .reader
                .next_event()
                .map_err(|e| archive_error(src.format_err(e)))?
            {
                None => return Ok(None),
                Some(ReadEvent::Record(r)) => return Ok(Some(r)),
                Some(ReadEvent::Need(ranges)) => {
                    let fetched = runtime()
                        .block_on(src.read_ranges(ranges))
                        .map_err(archive_error)?;
                    for (start, bytes) in fetched {
                        self.reader
                            .feed(start, &bytes)
                            .map_err(|e| archive_error(src.format_err(e)))?;
                    }
                }
            }
        }
    }
}

/// Iterator over a call's records (`call.records(...)`).
#[pyclass(module = "calltape._calltape", frozen)]
pub struct RecordIter {
    state: Mutex<Reading>,
}

#[pymethods]
impl RecordIter {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<CallRecord>> {
        let next = py.detach(|| {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next()
        })?;
        next.map(|r| CallRecord::new(py, r)).transpose()
    }
}

/// One record of a call: `time_ns`, `kind` (`"transcript"`, `"audio"`, ...), `lane`, `turn`,
/// and `data`, its fields as SPEC.md names them (for audio: track, channels, first_sample,
/// frames; the PCM is `samples`, bytes).
#[pyclass(module = "calltape._calltape", frozen, get_all)]
pub struct CallRecord {
    /// Session time, ns.
    pub time_ns: u64,
    /// The kind's name (SPEC §5), `"unknown"` for kinds this reader does not know.
    pub kind: &'static str,
    /// The kind number.
    pub kind_id: u16,
    /// 0 for control records, the track id for audio.
    pub lane: u16,
    /// The turn the record names, if any.
    pub turn: Option<u32>,
    /// The record's fields (its JSON payload, as stored).
    pub data: Py<PyAny>,
    /// Audio: the 16-bit PCM, native-endian; other kinds: None.
    pub samples: Option<Py<PyBytes>>,
}

impl CallRecord {
    fn new(py: Python<'_>, r: TimedRecord) -> PyResult<CallRecord> {
        let rec = &r.record;
        let (data, samples) = match rec {
            Record::Audio(a) => {
                let d = PyDict::new(py);
                d.set_item("track", a.track)?;
                d.set_item("channels", a.channels)?;
                d.set_item("first_sample", a.first_sample)?;
                d.set_item("frames", a.frames())?;
                let bytes = PyBytes::new_with(py, a.samples.len() * 2, |buf| {
                    for (dst, s) in buf.chunks_exact_mut(2).zip(&a.samples) {
                        dst.copy_from_slice(&s.to_ne_bytes());
                    }
                    Ok(())
                })?;
                (d.into_any().unbind(), Some(bytes.unbind()))
            }
            Record::Unknown { payload, .. } => {
                let d = PyDict::new(py);
                d.set_item("payload", PyBytes::new(py, payload))?;
                (d.into_any().unbind(), None)
            }
            other => {
                let mut json = Vec::new();
                other.write_json_payload(&mut json);
                let v: serde_json::Value = serde_json::from_slice(&json)
                    .map_err(|e| ArchiveError::new_err(e.to_string()))?;
                (to_py(py, &v)?.unbind(), None)
            }
        };
        Ok(CallRecord {
            time_ns: r.time_ns,
            kind: rec.kind_name(),
            kind_id: rec.kind(),
            lane: rec.lane(),
            turn: rec.turn(),
            data,
            samples,
        })
    }
}

#[pymethods]
impl CallRecord {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Record(time_ns={}, kind={:?}, lane={}, data={})",
            self.time_ns,
            self.kind,
            self.lane,
            self.data
                .bind(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default()
        )
    }
}
