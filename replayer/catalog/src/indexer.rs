//! `calltape index`: lists archives under directories and object-store prefixes, reads only
//! each one's tail (footer, summary, chunk index: one 16 KiB ranged GET per object, a second
//! when the footer says the tail is longer; 32 archives in flight),
//! and writes sessions, turns, usage (and with `--deep`, tool calls and errors read from the
//! control chunks) into the catalog. Unchanged objects (same size and ETag or mtime) are
//! skipped; archives that cannot be opened go to the `damaged` table with the reason.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use rusqlite::{params, Connection};
use serde::Serialize;

use calltape_format::call::{classify, TurnTimeline};
use calltape_format::{Archive, FetchOptions, Record, Summary};

use calltape_read::error::{AppError, Result};
use calltape_read::source::{store_for_url, ArchiveSource, Location};

use crate::rows::{session_rows, ObjectRow, SessionRows};

/// Archives read at once while indexing.
pub const CONCURRENCY: usize = 32;
/// The first request for an archive's tail: footer, summary and chunk index of most calls
/// (median 2.2 KiB) fit; a longer tail costs a second request, sized by the footer.
pub const FIRST_TAIL: u64 = 16 << 10;
/// `--deep` joins control chunks up to 1 MiB apart into one request of up to 4 MiB (the audio
/// between them is read and dropped): a few requests per call instead of one per MiB. The
/// read-ahead, and so the bytes held per archive, stays the reader's default 4 MiB.
pub const DEEP_FETCH: FetchOptions = FetchOptions {
    max_gap: 1 << 20,
    max_request: 4 << 20,
    read_ahead: 4 << 20,
};
/// Results written per transaction.
const BATCH: usize = 2000;

#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Also read each archive's control chunks for tool names and error messages.
    pub deep: bool,
    /// Re-read every archive, even unchanged ones.
    pub force: bool,
    /// Keep catalog entries whose object disappeared from a listed root.
    pub keep_missing: bool,
}

/// What an index run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexReport {
    pub listed: u64,
    pub indexed: u64,
    pub unchanged: u64,
    pub damaged: u64,
    pub removed: u64,
    /// Requests made to read the archives, and the bytes they returned.
    pub requests: u64,
    pub bytes_read: u64,
    pub seconds: f64,
    pub archives_per_second: f64,
}

/// One root to index: a store and the prefix to list in it.
struct Root {
    store: Arc<dyn ObjectStore>,
    prefix: Option<StorePath>,
    /// Turns an object path into the location string kept in the catalog.
    base: Base,
    /// A single object rather than a prefix.
    single: Option<StorePath>,
}

#[derive(Clone)]
enum Base {
    Dir(PathBuf),
    Url(url::Url),
}

impl Base {
    fn location(&self, p: &StorePath) -> String {
        match self {
            Base::Dir(d) => d.join(p.as_ref()).display().to_string(),
            Base::Url(u) => {
                let mut u = u.clone();
                u.set_path(&format!("/{p}"));
                u.to_string()
            }
        }
    }

    /// Locations under this root start with this.
    fn prefix_string(&self, prefix: Option<&StorePath>) -> String {
        match (self, prefix) {
            (Base::Dir(d), _) => format!("{}/", d.display()),
            (Base::Url(_), p) => {
                let loc = self.location(&p.cloned().unwrap_or_default());
                if loc.ends_with('/') {
                    loc
                } else {
                    format!("{loc}/")
                }
            }
        }
    }
}

fn root_for(target: &str) -> Result<Root> {
    if target.contains("://") && !target.starts_with("file://") {
        let url = url::Url::parse(target).map_err(|e| AppError::BadLocation {
            location: target.to_string(),
            reason: e.to_string(),
        })?;
        let (store, path) = store_for_url(&url)?;
        let mut base_url = url.clone();
        base_url.set_query(None);
        let single = path.as_ref().ends_with(".calltape").then(|| path.clone());
        return Ok(Root {
            store,
            prefix: (!path.as_ref().is_empty()).then_some(path),
            base: Base::Url(base_url),
            single,
        });
    }
    let path = match calltape_read::source::Location::parse(target)? {
        calltape_read::source::Location::File(p) => p,
        calltape_read::source::Location::Url(_) => unreachable!("file URLs become paths"),
    };
    let abs = path.canonicalize().map_err(|e| AppError::Io {
        what: format!("cannot index {}", path.display()),
        source: e,
    })?;
    let (dir, single) = if abs.is_file() {
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (dir, Some(StorePath::from(name)))
    } else {
        (abs, None)
    };
    let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| AppError::BadLocation {
        location: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Root {
        store: Arc::new(store),
        prefix: None,
        base: Base::Dir(dir),
        single,
    })
}

/// What the catalog already knows about a location.
pub(crate) struct Known {
    pub size: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub deep: bool,
}

fn known(conn: &Connection) -> Result<HashMap<String, Known>> {
    let mut out = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT location, size_bytes, etag, last_modified, deep FROM sessions
             UNION ALL SELECT location, size_bytes, etag, last_modified, 1 FROM damaged",
        )
        .map_err(cat)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Known {
                    size: r.get(1)?,
                    etag: r.get(2)?,
                    last_modified: r.get(3)?,
                    deep: r.get::<_, i64>(4)? != 0,
                },
            ))
        })
        .map_err(cat)?;
    for row in rows {
        let (loc, k) = row.map_err(cat)?;
        out.insert(loc, k);
    }
    Ok(out)
}

fn cat(e: rusqlite::Error) -> AppError {
    AppError::Catalog(e.to_string())
}

pub(crate) fn unchanged(k: &Known, meta: &ObjectMeta, deep: bool) -> bool {
    if k.size != meta.size as i64 || (deep && !k.deep) {
        return false;
    }
    match (&k.etag, &meta.e_tag) {
        (Some(a), Some(b)) => a == b,
        _ => k.last_modified.as_deref() == Some(meta.last_modified.to_rfc3339().as_str()),
    }
}

/// An archive read for the catalog, or why it could not be.
pub(crate) enum Fetched {
    Ok {
        meta: ObjectMeta,
        location: String,
        summary: Box<Summary>,
        recovered: bool,
        deep: Option<DeepRecords>,
    },
    Damaged {
        meta: ObjectMeta,
        location: String,
        reason: String,
    },
}

/// An error found by `--deep`: (turn, time_ns, kind `event`|`log`, source, message).
pub type ErrorRow = (Option<u32>, u64, &'static str, Option<String>, String);

/// What `--deep` reads from the control chunks.
#[derive(Default)]
pub struct DeepRecords {
    pub tool_calls: Vec<(Option<u32>, calltape_format::ToolCall)>,
    pub errors: Vec<ErrorRow>,
    /// (model, provider) → usage
    pub usage: Vec<calltape_format::Usage>,
}

/// Why an archive could not be read, as the `damaged` table says it.
fn reason(e: AppError) -> String {
    match e {
        AppError::Format { source, .. } => source.to_string(),
        AppError::Store { message, .. } => format!("read failed: {message}"),
        other => format!("read failed: {other}"),
    }
}

/// Opens an archive from its tail: the listing gave the size, so the first request asks
/// for exactly the tail (servers that mishandle a suffix longer than the object are not a
/// problem).
async fn open_tail(source: &ArchiveSource) -> std::result::Result<Archive, String> {
    let size = source.len();
    if size < 52 {
        return Err(format!("{size} bytes: too short to be a closed archive"));
    }
    source.open_from_tail(FIRST_TAIL).await.map_err(reason)
}

async fn read_deep(
    source: &ArchiveSource,
    archive: &Archive,
) -> std::result::Result<DeepRecords, String> {
    let records = calltape_read::call::control_records_with(source, archive, DEEP_FETCH)
        .await
        .map_err(reason)?;
    let timeline = TurnTimeline::of(&archive.summary);
    let mut deep = DeepRecords::default();
    for r in records {
        let turn = timeline.turn_of(&r);
        if let Some(err) = classify::error(&r.record) {
            deep.errors.push((
                turn,
                r.time_ns,
                err.origin.as_str(),
                err.source,
                err.message,
            ));
            continue;
        }
        match r.record {
            Record::ToolCall(c) => deep.tool_calls.push((turn, c)),
            Record::Usage(u) => {
                match deep
                    .usage
                    .iter_mut()
                    .find(|x| x.model == u.model && x.provider == u.provider)
                {
                    Some(x) => {
                        x.prompt_tokens += u.prompt_tokens;
                        x.completion_tokens += u.completion_tokens;
                        x.cached_tokens += u.cached_tokens;
                        x.stt_audio_seconds += u.stt_audio_seconds;
                        x.tts_audio_seconds += u.tts_audio_seconds;
                        x.tts_characters += u.tts_characters;
                    }
                    None => deep.usage.push(calltape_format::Usage { turn: None, ..u }),
                }
            }
            _ => {}
        }
    }
    Ok(deep)
}

/// Reads one archive; also returns the (requests, bytes) it took.
async fn fetch(
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
    location: String,
    deep: bool,
) -> (Fetched, (u64, u64)) {
    let source = ArchiveSource::for_object(
        Location::parse(&location).unwrap_or_else(|_| Location::File(PathBuf::from(&location))),
        store,
        meta.location.clone(),
        meta.size,
    );
    let fetched = fetch_from(&source, meta, location, deep).await;
    (fetched, source.stats())
}

async fn fetch_from(
    source: &ArchiveSource,
    meta: ObjectMeta,
    location: String,
    deep: bool,
) -> Fetched {
    match open_tail(source).await {
        Ok(archive) => {
            let deep_records = if deep {
                match read_deep(source, &archive).await {
                    Ok(d) => Some(d),
                    Err(reason) => {
                        return Fetched::Damaged {
                            meta,
                            location,
                            reason: format!("control chunks unreadable: {reason}"),
                        }
                    }
                }
            } else {
                None
            };
            Fetched::Ok {
                recovered: archive.footer.recovered() || archive.summary.recovery.is_some(),
                summary: Box::new(archive.summary),
                meta,
                location,
                deep: deep_records,
            }
        }
        Err(reason) => Fetched::Damaged {
            meta,
            location,
            reason,
        },
    }
}

/// An archive listed under a target: its store, its listing entry and its location string.
pub(crate) type Listed = (Arc<dyn ObjectStore>, ObjectMeta, String);

/// Every archive under `targets`, and for each listed directory or prefix the location
/// prefix with the locations seen under it.
pub(crate) type Listing = (Vec<Listed>, Vec<(String, HashSet<String>)>);

/// Lists the archives under `targets` (directories, files, object-store URLs).
pub(crate) async fn list(targets: &[String]) -> Result<Listing> {
    let spinner = calltape_read::progress::spinner("listing");
    let mut work: Vec<Listed> = Vec::new();
    let mut listed_prefixes: Vec<(String, HashSet<String>)> = Vec::new();
    for target in targets {
        let root = root_for(target)?;
        let metas: Vec<ObjectMeta> = match &root.single {
            Some(p) => vec![root
                .store
                .head(p)
                .await
                .map_err(|e| AppError::store(target, e))?],
            None => root
                .store
                .list(root.prefix.as_ref())
                .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".calltape")))
                .inspect_ok(|_| spinner.inc(1))
                .try_collect()
                .await
                .map_err(|e| AppError::store(target, e))?,
        };
        let mut seen = HashSet::new();
        for meta in metas {
            let location = root.base.location(&meta.location);
            seen.insert(location.clone());
            work.push((root.store.clone(), meta, location));
        }
        if root.single.is_none() {
            listed_prefixes.push((root.base.prefix_string(root.prefix.as_ref()), seen));
        }
    }
    spinner.finish_and_clear();
    Ok((work, listed_prefixes))
}

/// Reads `todo`'s archives, [`CONCURRENCY`] at a time, yielding each as it completes with
/// the (requests, bytes) it took.
pub(crate) fn fetch_all(
    todo: Vec<Listed>,
    deep: bool,
) -> impl futures::Stream<Item = Result<(Fetched, (u64, u64))>> {
    futures::stream::iter(todo)
        .map(move |(store, meta, location)| tokio::spawn(fetch(store, meta, location, deep)))
        .buffer_unordered(CONCURRENCY)
        .map(|r| r.map_err(|e| AppError::Other(format!("index task failed: {e}"))))
}

/// Indexes `targets` (directories, files, object-store URLs) into `conn`.
pub async fn index(
    conn: &mut Connection,
    targets: &[String],
    opts: &IndexOptions,
) -> Result<IndexReport> {
    let started = Instant::now();
    let mut report = IndexReport::default();
    let known = known(conn)?;
    let (work, listed_prefixes) = list(targets).await?;
    report.listed = work.len() as u64;
    let todo: Vec<_> = work
        .into_iter()
        .filter(|(_, meta, loc)| {
            opts.force
                || !known
                    .get(loc)
                    .is_some_and(|k| unchanged(k, meta, opts.deep))
        })
        .collect();
    report.unchanged = report.listed - todo.len() as u64;
    let bar = calltape_read::progress::bar(todo.len() as u64, "indexing");
    let mut results = std::pin::pin!(fetch_all(todo, opts.deep));
    let now = chrono::Utc::now().to_rfc3339();
    let mut tx = conn.transaction().map_err(cat)?;
    let mut in_tx = 0usize;
    while let Some(res) = results.next().await {
        let (fetched, (requests, bytes)) = res?;
        report.requests += requests;
        report.bytes_read += bytes;
        match &fetched {
            Fetched::Ok { .. } => report.indexed += 1,
            Fetched::Damaged { .. } => report.damaged += 1,
        }
        write(&tx, &fetched, &now)?;
        bar.inc(1);
        in_tx += 1;
        if in_tx >= BATCH {
            tx.commit().map_err(cat)?;
            tx = conn.transaction().map_err(cat)?;
            in_tx = 0;
        }
    }
    // objects that disappeared from a listed prefix
    if !opts.keep_missing {
        for (prefix, seen) in &listed_prefixes {
            for loc in known
                .keys()
                .filter(|l| l.starts_with(prefix.as_str()) && !seen.contains(*l))
            {
                remove(&tx, loc)?;
                report.removed += 1;
            }
        }
    }
    tx.commit().map_err(cat)?;
    bar.finish_and_clear();
    conn.execute_batch("PRAGMA optimize;").map_err(cat)?;
    report.seconds = started.elapsed().as_secs_f64();
    let read = report.indexed + report.damaged;
    report.archives_per_second = if report.seconds > 0.0 {
        read as f64 / report.seconds
    } else {
        0.0
    };
    Ok(report)
}

fn remove(tx: &Connection, location: &str) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM turn_text WHERE rowid IN
           (SELECT t.rowid FROM turns t JOIN sessions s ON s.sid = t.sid WHERE s.location = ?1)",
    )
    .and_then(|mut s| s.execute([location]))
    .map_err(cat)?;
    tx.prepare_cached("DELETE FROM sessions WHERE location = ?1")
        .and_then(|mut s| s.execute([location]))
        .map_err(cat)?;
    tx.prepare_cached("DELETE FROM damaged WHERE location = ?1")
        .and_then(|mut s| s.execute([location]))
        .map_err(cat)?;
    Ok(())
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn write(tx: &Connection, fetched: &Fetched, now: &str) -> Result<()> {
    match fetched {
        Fetched::Damaged {
            meta,
            location,
            reason,
        } => {
            remove(tx, location)?;
            tx.prepare_cached(
                "INSERT INTO damaged (location, size_bytes, etag, last_modified, reason, indexed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    location,
                    meta.size as i64,
                    meta.e_tag,
                    meta.last_modified.to_rfc3339(),
                    reason,
                    now
                ])
            })
            .map_err(cat)?;
        }
        Fetched::Ok {
            meta,
            location,
            summary,
            recovered,
            deep,
        } => {
            remove(tx, location)?;
            let rows = session_rows(
                ObjectRow::new(meta, location),
                summary,
                *recovered,
                deep.as_ref(),
            );
            insert_session(tx, &rows, now)?;
        }
    }
    Ok(())
}

/// Inserts one session's rows (sessions, turns and their text, usage, tool calls, errors).
pub fn insert_session(tx: &Connection, rows: &SessionRows, now: &str) -> Result<()> {
    let s = &rows.session;
    tx.prepare_cached(
        "INSERT INTO sessions (location, session_id, started_at, started_at_unix_ns, started_day,
            agent_name, agent_version, environment, tags_json, duration_ms, turns, records,
            interruptions, errors, tool_calls, tool_errors, e2e_p50_ms, e2e_p95_ms, max_e2e_ms,
            end_reason, outcome, recovered, recovery_reason, dropped_json, size_bytes, etag,
            last_modified, deep, indexed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.object.location,
            s.session_id,
            s.started_at,
            s.started_at_unix_ns,
            s.started_day,
            s.agent_name,
            s.agent_version,
            s.environment,
            s.tags_json,
            ms(s.duration_ns),
            s.turns,
            s.records,
            s.interruptions,
            s.errors,
            s.tool_calls,
            s.tool_errors,
            s.e2e_p50_ns.map(ms),
            s.e2e_p95_ns.map(ms),
            s.max_e2e_ns.map(ms),
            s.end_reason,
            s.outcome,
            s.recovered,
            s.recovery_reason,
            s.dropped_json,
            s.object.size_bytes,
            s.object.etag,
            s.object.last_modified,
            s.deep,
            now,
        ])
    })
    .map_err(cat)?;
    let sid = tx.last_insert_rowid();
    {
        let mut turn_stmt = tx
            .prepare_cached(
                "INSERT INTO turns (sid, turn, speaker, start_ms, end_ms, user_text, agent_text,
                    interrupted, errors, tool_calls, tool_errors, e2e_ms, e2e_valid, eou_ms, stt_ms,
                    llm_ms, tool_ms, tts_ms, rest_ms, reported_e2e_ms, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19, ?20, ?21)",
            )
            .map_err(cat)?;
        let mut text_stmt = tx
            .prepare_cached(
                "INSERT INTO turn_text (rowid, user_text, agent_text) VALUES (?1, ?2, ?3)",
            )
            .map_err(cat)?;
        for turn in &rows.turns {
            let p = turn.parts_ns.map(|v| v.map(ms));
            turn_stmt
                .execute(params![
                    sid,
                    turn.turn,
                    turn.speaker,
                    ms(turn.start_ns),
                    turn.end_ns.map(ms),
                    turn.user_text,
                    turn.agent_text,
                    turn.interrupted,
                    turn.errors,
                    turn.tool_calls,
                    turn.tool_errors,
                    p[0],
                    turn.parts_valid[0],
                    p[1],
                    p[2],
                    p[3],
                    p[4],
                    p[5],
                    p[6],
                    turn.reported_e2e_ns.map(ms),
                    turn.flags.join(","),
                ])
                .map_err(cat)?;
            if !turn.user_text.is_empty() || !turn.agent_text.is_empty() {
                let rowid = tx.last_insert_rowid();
                text_stmt
                    .execute(params![rowid, turn.user_text, turn.agent_text])
                    .map_err(cat)?;
            }
        }
    }
    let mut usage_stmt = tx
        .prepare_cached(
            "INSERT INTO usage (sid, model, provider, prompt_tokens, completion_tokens, cached_tokens,
                stt_audio_seconds, tts_audio_seconds, tts_characters)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(cat)?;
    for u in &rows.usage {
        usage_stmt
            .execute(params![
                sid,
                u.model,
                u.provider,
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.stt_audio_seconds,
                u.tts_audio_seconds,
                u.tts_characters
            ])
            .map_err(cat)?;
    }
    let mut tool_stmt = tx
        .prepare_cached(
            "INSERT INTO tool_calls (sid, turn, call_id, name, is_error, start_ms, duration_ms, output)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(cat)?;
    for c in &rows.tool_calls {
        tool_stmt
            .execute(params![
                sid,
                c.turn,
                c.call_id,
                c.name,
                c.is_error,
                ms(c.start_ns),
                ms(c.duration_ns),
                c.output,
            ])
            .map_err(cat)?;
    }
    let mut err_stmt = tx
        .prepare_cached(
            "INSERT INTO errors (sid, turn, time_ms, kind, source, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(cat)?;
    for e in &rows.errors {
        err_stmt
            .execute(params![
                sid,
                e.turn,
                ms(e.time_ns),
                e.kind,
                e.source,
                e.message
            ])
            .map_err(cat)?;
    }
    Ok(())
}
