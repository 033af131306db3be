//! Reading a call's content through an [`ArchiveSource`] (the format crate's record reader
//! over the source's ranged reads and chunk cache): its control records, and its audio placed
//! on the session clock (gaps filled with silence, never collapsed), streamed so memory stays
//! bounded whatever the call length. Also how a call is opened, closed or crashed.

use calltape_format::limits::MAX_SILENCE_S;
use calltape_format::placement::TrackWindow;
use calltape_format::{Archive, FetchOptions, Filter, FormatError, Record, TimedRecord, Track};

use crate::error::{AppError, Result};
use crate::source::ArchiveSource;

/// All control records (lane 0) of the call in time order.
pub async fn control_records(src: &ArchiveSource, archive: &Archive) -> Result<Vec<TimedRecord>> {
    control_records_with(src, archive, FetchOptions::default()).await
}

/// [`control_records`] with other request sizes (the indexer joins chunks further apart, to
/// make fewer requests).
pub async fn control_records_with(
    src: &ArchiveSource,
    archive: &Archive,
    opts: FetchOptions,
) -> Result<Vec<TimedRecord>> {
    src.records(src.reader(archive, Filter::lane(0)).with_options(opts))
        .await
}

/// Control records of the chunks that name `turn`, in time order.
pub async fn turn_records(
    src: &ArchiveSource,
    archive: &Archive,
    turn: u32,
) -> Result<Vec<TimedRecord>> {
    let chunks = archive.chunks_for_turn(turn).copied();
    src.records(src.chunk_reader(chunks, Filter::all())).await
}

/// The track with `id`, or a usage error naming the tracks there are; a track whose sample
/// rate no audio can be placed with is an error too ([`playable`]).
pub fn track(archive: &Archive, id: u16) -> Result<&Track> {
    let track = archive
        .header()
        .tracks
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| {
            AppError::Usage(format!(
                "no audio track {id} in this call (tracks: {})",
                describe_tracks(archive)
            ))
        })?;
    playable(track)
}

/// `track` when its sample rate lets its audio be placed on the session clock
/// (`calltape_format::limits::sample_rate`), else an error saying why it cannot be.
pub fn playable(track: &Track) -> Result<&Track> {
    calltape_format::limits::sample_rate(track).map_err(AppError::Other)?;
    Ok(track)
}

/// The call's tracks for an error message: `1 user, 2 agent`, or `none`.
pub fn describe_tracks(archive: &Archive) -> String {
    let tracks = &archive.header().tracks;
    if tracks.is_empty() {
        return "none".into();
    }
    tracks
        .iter()
        .map(|t| format!("{} {}", t.id, t.role))
        .collect::<Vec<_>>()
        .join(", ")
}

pub use calltape_format::placement::sample_at;

/// Streams the audio of `track_id` between `from_ns` and `to_ns` to `sink`, in order, as
/// interleaved samples: exactly `(sample_at(to) - sample_at(from)) * channels` samples in
/// all, silence where nothing was recorded. Memory stays bounded: the reader's read-ahead and
/// the source's chunk cache (where the decoded chunks stay for the next view of the range).
pub async fn stream_audio(
    src: &ArchiveSource,
    archive: &Archive,
    track_id: u16,
    from_ns: u64,
    to_ns: u64,
    mut sink: impl FnMut(&[i16]) -> Result<()>,
) -> Result<u64> {
    let track = track(archive, track_id)?.clone();
    let mut window = TrackWindow::new(&track, from_ns, to_ns);
    // every frame of the chunks that meet the range, in time (= sample) order, through the
    // call's chunk cache; a frame that starts before the range may still reach into it
    let reader = src.chunk_reader(
        archive.chunks_in(track_id, from_ns, to_ns).copied(),
        Filter::all(),
    );
    let rate = u64::from(track.sample_rate);
    let max_gap = MAX_SILENCE_S * rate;
    src.drive(reader, |rec| {
        let Record::Audio(a) = rec.record else {
            return Ok(());
        };
        let gap = window.silence_before(&a);
        if gap > max_gap {
            return Err(AppError::Other(format!(
                "audio track {track_id}: the frame at sample {} (record time {} ns) follows {} s \
                 of silence, over the {MAX_SILENCE_S} s a reader fills in; its first_sample is \
                 probably damaged (run `calltape verify`), or export a shorter range (--from/--to)",
                a.first_sample,
                rec.time_ns,
                gap / rate
            )));
        }
        window.place(&a, &mut sink)
    })
    .await?;
    let tail = window.silence_to_end();
    if tail > max_gap {
        return Err(AppError::Other(format!(
            "audio track {track_id}: the range asked for runs {} s past the track's last audio, \
             over the {MAX_SILENCE_S} s of silence a reader fills in; ask for a shorter range \
             (--from/--to)",
            tail / rate
        )));
    }
    window.finish(&mut sink)?;
    Ok(window.frames())
}

/// The audio of a range collected in memory (for short ranges: a turn, a few seconds).
pub async fn audio_range(
    src: &ArchiveSource,
    archive: &Archive,
    track_id: u16,
    from_ns: u64,
    to_ns: u64,
) -> Result<Vec<i16>> {
    let mut out = Vec::new();
    stream_audio(src, archive, track_id, from_ns, to_ns, |s| {
        out.extend_from_slice(s);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// A call opened for reading: from its footer when it is closed, else from a forward scan
/// of what a crash left (`scanned` says what was kept and lost). Either way its records are
/// read the same way, through the source's record reader and chunk cache.
pub struct OpenedCall {
    pub source: ArchiveSource,
    /// The summary and chunk index. After a scan, the index points at the chunks found in
    /// the original file, so chunks are read from it as usual.
    pub archive: Archive,
    /// Set when the footer could not be used and the call was scanned instead.
    pub scanned: Option<calltape_format::RecoveryReport>,
    /// Why the footer could not be used, when `scanned` is set.
    pub open_error: Option<String>,
    /// The same, as the format error.
    pub open_failure: Option<FormatError>,
}

impl OpenedCall {
    /// The footer says a recovery already rebuilt this file's tail.
    pub fn recovered(&self) -> bool {
        self.archive.footer.recovered() || self.archive.summary.recovery.is_some()
    }
}

/// Opens `target` (path or URL): see [`open_location`].
pub async fn open_call(target: &str) -> Result<OpenedCall> {
    open_location(&crate::source::Location::parse(target)?).await
}

/// Opens a call: the footer path first (one ranged read), and when the footer is missing or
/// damaged, a forward scan of the whole file (streamed from an object store).
pub async fn open_location(location: &crate::source::Location) -> Result<OpenedCall> {
    open_location_with(location, &[]).await
}

/// [`open_location`] with explicit object-store settings.
pub async fn open_location_with(
    location: &crate::source::Location,
    options: &[(String, String)],
) -> Result<OpenedCall> {
    let source = ArchiveSource::connect_with(location, options).await?;
    match source.open().await {
        Ok(archive) => Ok(OpenedCall {
            source,
            archive,
            scanned: None,
            open_error: None,
            open_failure: None,
        }),
        Err(AppError::Format { source: e, .. }) if calltape_format::recover::scan_can_help(&e) => {
            let scan = source.scan().await?;
            let report = scan.report.clone();
            let archive = scan.into_archive(source.len());
            Ok(OpenedCall {
                source,
                archive,
                scanned: Some(report),
                open_error: Some(e.to_string()),
                open_failure: Some(e),
            })
        }
        Err(e) => Err(e),
    }
}
