//! The reading API: `calltape.open(path_or_url)` → `Call` (header, tracks, totals, turns as
//! the format crate's summary holds them), records in time order and audio of a time range.
//! Reads are ranged: opening fetches the tail (footer, summary, chunk index), then the format
//! crate's record reader asks for the chunks a request needs (from a local file, or
//! concurrently from an object store) and merges their records in time order.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use calltape_format::placement::TrackWindow;
use calltape_format::{
    Archive, ChunkCache, ChunkEntry, Filter, FormatError, OpenStep, Opener, ReadEvent, Record,
    RecordReader, TimedRecord, Track,
};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::to_py;
use crate::errors::{recorder_error, ArchiveError, UnknownTrackError};
use crate::runtime::runtime;

/// Where an archive's bytes come from.
enum Backend {
    File(Mutex<File>),
    Store {
        store: Arc<dyn ObjectStore>,
        path: StorePath,
    },
}

/// An archive's bytes, read by range.
struct Source {
    location: String,
    backend: Backend,
    len: u64,
}

impl Source {
    fn connect(location: &str, options: Vec<(String, String)>) -> PyResult<Source> {
        let local = if let Some(rest) = location.strip_prefix("file://") {
            Some(
                url::Url::parse(location)
                    .ok()
                    .and_then(|u| u.to_file_path().ok())
                    .unwrap_or_else(|| rest.into()),
            )
        } else if location.contains("://") {
            None
        } else {
            Some(location.into())
        };
        match local {
            Some(path) => {
                let file = File::open(&path).map_err(|e| {
                    ArchiveError::new_err(format!("cannot open {}: {e}", path.display()))
                })?;
                let len = file
                    .metadata()
                    .map_err(|e| ArchiveError::new_err(format!("cannot stat {location}: {e}")))?
                    .len();
                Ok(Source {
                    location: location.to_string(),
                    backend: Backend::File(Mutex::new(file)),
                    len,
                })
            }
            None => {
                let (store, key) =
                    calltape_recorder::store_for_url(location, options).map_err(recorder_error)?;
                let path = StorePath::from(key);
                let meta = runtime()
                    .block_on(store.head(&path))
                    .map_err(|e| ArchiveError::new_err(format!("cannot open {location}: {e}")))?;
                Ok(Source {
                    location: location.to_string(),
                    backend: Backend::Store { store, path },
                    len: meta.size,
                })
            }
        }
    }

    /// Exactly the bytes of `range`.
    fn read(&self, range: Range<u64>) -> PyResult<Vec<u8>> {
        let fail = |e: String| {
            ArchiveError::new_err(format!(
                "cannot read bytes {}..{} of {}: {e}",
                range.start, range.end, self.location
            ))
        };
        match &self.backend {
            Backend::File(f) => {
                let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                f.seek(SeekFrom::Start(range.start))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| fail(e.to_string()))?;
                Ok(buf)
            }
            Backend::Store { .. } => runtime().block_on(self.read_async(range)),
        }
    }

    async fn read_async(&self, range: Range<u64>) -> PyResult<Vec<u8>> {
        let Backend::Store { store, path } = &self.backend else {
            return self.read(range);
        };
        store
            .get_range(path, range.clone())
            .await
            .map(|b| b.to_vec())
            .map_err(|e| {
                ArchiveError::new_err(format!(
                    "cannot read bytes {}..{} of {}: {e}",
                    range.start, range.end, self.location
                ))
            })
    }

    fn format_error(&self, e: FormatError) -> PyErr {
        ArchiveError::new_err(format!("{}: {e}", self.location))
    }

    /// Reads the tail: footer, summary and chunk index. A local file whose tail is missing
    /// or damaged (still being written, or left by a crash) is scanned from the start
    /// instead; the second value then says what the scan kept and why the tail was unusable.
    fn open(&self) -> PyResult<(Archive, Option<String>)> {
        if let Backend::File(f) = &self.backend {
            let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
            let (archive, scanned) =
                calltape_format::open_or_scan(&mut *f).map_err(|e| self.format_error(e))?;
            let note = scanned.map(|(report, why)| {
                format!(
                    "no usable footer ({why}); read by scanning: {} chunks and {} bytes kept, {} \
                     bytes lost",
                    report.chunks_kept, report.kept_bytes, report.lost_bytes
                )
            });
            return Ok((archive, note));
        }
        let mut opener = Opener::new(self.len);
        let mut range = opener.first_range();
        loop {
            let bytes = self.read(range.clone())?;
            match opener.feed(range.start, &bytes).map_err(|e| {
                ArchiveError::new_err(format!(
                    "{}: {e} (an archive still being written, or left by a crash, has no \
                     footer yet: `calltape recover` closes a copy)",
                    self.location
                ))
            })? {
                OpenStep::Ready(a) => return Ok((*a, None)),
                OpenStep::Need(next) => range = next,
            }
        }
    }

    /// The bytes of several ranges: concurrently from an object store, in turn from a file.
    fn read_many(&self, ranges: Vec<Range<u64>>) -> PyResult<Vec<(Range<u64>, Vec<u8>)>> {
        match &self.backend {
            Backend::File(_) => ranges
                .into_iter()
                .map(|r| self.read(r.clone()).map(|b| (r, b)))
                .collect(),
            Backend::Store { .. } => {
                let reads = ranges.into_iter().map(|r| async move {
                    let bytes = self.read_async(r.clone()).await?;
                    Ok::<_, PyErr>((r, bytes))
                });
                runtime().block_on(futures::future::try_join_all(reads))
            }
        }
    }
}

struct CallData {
    source: Source,
    archive: Archive,
    /// Decoded chunks shared by every read of this call (records and audio).
    cache: Arc<ChunkCache>,
    /// Set when the file had no usable footer and was scanned.
    scanned: Option<String>,
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
        let source = Source::connect(&location, options)?;
        let (archive, scanned) = source.open()?;
        Ok(CallData {
            source,
            archive,
            scanned,
            cache: Arc::new(ChunkCache::new(
                calltape_format::cache::DEFAULT_CACHE_BUDGET,
            )),
        })
    })?;
    Ok(Call {
        data: Arc::new(data),
    })
}

impl Call {
    fn track(&self, id: u16) -> PyResult<Track> {
        let tracks = &self.data.archive.header().tracks;
        tracks.iter().find(|t| t.id == id).cloned().ok_or_else(|| {
            UnknownTrackError::new_err(format!(
                "{} has no audio track {id} (tracks: {})",
                self.data.source.location,
                if tracks.is_empty() {
                    "none".to_string()
                } else {
                    tracks
                        .iter()
                        .map(|t| format!("{} {}", t.id, t.role))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        })
    }
}

#[pymethods]
impl Call {
    /// Where the archive was opened from.
    #[getter]
    fn location(&self) -> &str {
        &self.data.source.location
    }

    /// Size of the archive in bytes.
    #[getter]
    fn file_bytes(&self) -> u64 {
        self.data.archive.file_len
    }

    /// Number of chunks in the archive.
    #[getter]
    fn chunk_count(&self) -> usize {
        self.data.archive.index.len()
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
        self.data.archive.footer.recovered() || self.data.archive.summary.recovery.is_some()
    }

    /// The archive header (SPEC §3): session_id, started_at, agent, environment, tags, tracks.
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.data.archive.header())
    }

    /// The audio tracks (dicts: id, role, sample_rate, channels, codec, name).
    #[getter]
    fn tracks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.archive.header().tracks)
    }

    /// Session totals (SPEC §6): turns, records, errors, usage, e2e percentiles, ...
    #[getter]
    fn totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.archive.summary.totals)
    }

    /// The turns with their latency breakdown (`latency`, ns) and its `flags`, exactly as the
    /// archive's summary holds them (what `calltape inspect --json` prints).
    #[getter]
    fn turns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.archive.summary.turns)
    }

    /// From session time 0 to the last record or sample, in ns.
    #[getter]
    fn duration_ns(&self) -> u64 {
        self.data.archive.summary.duration_ns
    }

    /// What crash recovery kept and lost, or None.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.archive.summary.recovery)
    }

    /// The whole summary (header, duration_ns, turns, totals, recovery).
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.data.archive.summary)
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
        let reader = RecordReader::new(&self.data.archive, filter);
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
        let to = to_ns.unwrap_or(self.data.archive.summary.duration_ns);
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
        let s = &self.data.archive.summary;
        format!(
            "Call(session_id={:?}, turns={}, duration_ns={}, location={:?})",
            s.header.session_id,
            s.turns.len(),
            s.duration_ns,
            self.data.source.location
        )
    }
}

/// The audio of `track` in `[from_ns, to_ns)` with silence where nothing was recorded.
fn audio_range(
    data: &Arc<CallData>,
    track: &Track,
    from_ns: u64,
    to_ns: u64,
) -> PyResult<Vec<i16>> {
    let mut window = TrackWindow::new(track, from_ns, to_ns);
    // grown as audio arrives, never sized from a range a file's summary may claim
    let mut out = Vec::new();
    let mut sink = |s: &[i16]| -> PyResult<()> {
        out.extend_from_slice(s);
        Ok(())
    };
    // whole chunks of the track that overlap the range: a frame that starts before `from`
    // still carries samples inside it
    let chunks: Vec<ChunkEntry> = data
        .archive
        .chunks_in(track.id, from_ns, to_ns)
        .copied()
        .collect();
    let mut reading = Reading::new(
        data.clone(),
        RecordReader::for_chunks(chunks, Filter::lane(track.id)),
    );
    while let Some(rec) = reading.next()? {
        let Record::Audio(a) = rec.record else {
            continue;
        };
        window.place(&a, &mut sink)?;
    }
    window.finish(&mut sink)?;
    Ok(out)
}

/// Drives the format crate's sans-io [`RecordReader`] over a [`Source`]: the one place
/// records are fetched (the byte ranges it asks for, concurrently on an object store),
/// decoded (through the call's chunk cache) and merged into time order.
struct Reading {
    data: Arc<CallData>,
    reader: RecordReader,
}

impl Reading {
    fn new(data: Arc<CallData>, reader: RecordReader) -> Reading {
        let reader = reader.with_cache(data.cache.clone());
        Reading { data, reader }
    }

    fn next(&mut self) -> PyResult<Option<TimedRecord>> {
        let src = &self.data.source;
        loop {
            match self.reader.next_event().map_err(|e| src.format_error(e))? {
                None => return Ok(None),
                Some(ReadEvent::Record(r)) => return Ok(Some(r)),
                Some(ReadEvent::Need(ranges)) => {
                    for (range, bytes) in src.read_many(ranges)? {
                        self.reader
                            .feed(range.start, &bytes)
                            .map_err(|e| src.format_error(e))?;
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
