//! The catalog as Parquet on object storage (`calltape index --parquet DEST`,
//! `calltape catalog compact`): the same rows as the SQLite catalog ([`crate::rows`]) written
//! as Hive-partitioned, zstd-compressed Parquet tables that DuckDB, Athena, Trino or Spark read
//! in place: `DEST/<table>/day=YYYY-MM-DD/part-<uuid>.parquet`. PARQUET.md beside this crate
//! documents the layout, the commit protocol and the engines' DDL.
//!
//! Commit protocol (so concurrent indexers never corrupt a table and an interrupted run leaves
//! nothing half-visible): a run writes its parts under `DEST/_staging/<run>/`, which no table
//! glob reaches; when all are written it writes its manifest there (the commit point), moves
//! each part to its final, unique name, writes the manifest to `DEST/_manifest/` and removes
//! the staging copy. A run interrupted before its staged manifest leaves only staging garbage
//! (removed by a later run after [`ABANDONED_AFTER_SECS`]); one interrupted after it is
//! finished by the next run (roll-forward).

pub mod manifest;
pub mod tables;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::indexer::{fetch_all, list, unchanged, Fetched, IndexOptions, Known};
use crate::rows::{session_rows, DamagedRow, ObjectRow, SessionRows};
use calltape_read::error::{AppError, Result};
use calltape_read::source::store_for_url;
use manifest::{Entry, Manifest, ManifestKind};
use tables::Table;
use write::DayWriters;

/// A staging folder without a manifest older than this is an abandoned run's: removed.
pub const ABANDONED_AFTER_SECS: i64 = 24 * 3600;
/// A staging folder with a manifest older than this is an interrupted commit: finished.
pub const ROLL_FORWARD_AFTER_SECS: i64 = 600;

/// Where the Parquet tables live.
#[derive(Clone)]
pub struct Dest {
    pub store: Arc<dyn ObjectStore>,
    /// The prefix inside the store (empty for a local directory).
    pub prefix: StorePath,
    /// As the user gave it, for messages.
    pub display: String,
    /// The directory, for a local destination (its empty staging folders are removed).
    pub local_root: Option<PathBuf>,
}

impl Dest {
    /// `DEST/<rel>`.
    pub fn path(&self, rel: &str) -> StorePath {
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(rel.split('/').filter(|s| !s.is_empty()).map(str::to_string));
        StorePath::from_iter(parts)
    }

    /// `rel` of a path under this destination.
    pub fn rel(&self, p: &StorePath) -> String {
        let n = self.prefix.parts().count();
        p.parts()
            .skip(n)
            .map(|x| x.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    pub fn err(&self, what: &str, e: object_store::Error) -> AppError {
        let mut err = AppError::store(&self.display, e);
        if let AppError::Store { message, .. } = &mut err {
            *message = format!("{what}: {message}");
        }
        err
    }
}

/// Opens the destination (a local directory, created if needed, or an object-store URL) and
/// checks it can be written, before anything is indexed.
pub async fn open_dest(dest: &str) -> Result<Dest> {
    let d = if dest.contains("://") && !dest.starts_with("file://") {
        let url = url::Url::parse(dest).map_err(|e| AppError::BadLocation {
            location: dest.to_string(),
            reason: e.to_string(),
        })?;
        let (store, prefix) = store_for_url(&url)?;
        Dest {
            store,
            prefix,
            display: dest.to_string(),
            local_root: None,
        }
    } else {
        let path = match calltape_read::source::Location::parse(dest)? {
            calltape_read::source::Location::File(p) => p,
            calltape_read::source::Location::Url(u) => PathBuf::from(u.path()),
        };
        std::fs::create_dir_all(&path).map_err(|e| AppError::Io {
            what: format!("cannot create the Parquet destination {}", path.display()),
            source: e,
        })?;
        let store = LocalFileSystem::new_with_prefix(&path).map_err(|e| AppError::BadLocation {
            location: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Dest {
            store: Arc::new(store),
            prefix: StorePath::default(),
            display: path.display().to_string(),
            local_root: Some(path.clone()),
        }
    };
    // a write and a delete: an unreachable or read-only destination fails here
    let probe = d.path(&format!("_staging/write-check-{}", uuid::Uuid::new_v4()));
    d.store
        .put(&probe, PutPayload::from_static(b"calltape"))
        .await
        .map_err(|e| d.err("cannot write to the Parquet destination", e))?;
    d.store
        .delete(&probe)
        .await
        .map_err(|e| d.err("cannot delete from the Parquet destination", e))?;
    Ok(d)
}

/// What a Parquet index run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParquetReport {
    pub listed: u64,
    pub indexed: u64,
    pub unchanged: u64,
    pub damaged: u64,
    /// Requests made to read the archives, and the bytes they returned.
    pub requests: u64,
    pub bytes_read: u64,
    /// Parts written, as paths under DEST.
    pub parts: Vec<String>,
    /// Rows written per table.
    pub rows: BTreeMap<String, u64>,
    /// Earlier runs' commits this run finished (roll-forward).
    pub rolled_forward: u64,
    pub manifest: Option<String>,
    pub seconds: f64,
    pub archives_per_second: f64,
    /// Damaged archives of this run: (location, reason).
    #[serde(skip)]
    pub damaged_archives: Vec<(String, String)>,
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Indexes `targets` into the Parquet tables at `dest`: only archives new or changed since
/// the manifests say.
pub async fn index(dest: &Dest, targets: &[String], opts: &IndexOptions) -> Result<ParquetReport> {
    let started = Instant::now();
    let mut report = ParquetReport {
        rolled_forward: manifest::recover_staging(dest).await?,
        ..Default::default()
    };
    let state = manifest::load(dest).await?;
    let (work, _) = list(targets).await?;
    report.listed = work.len() as u64;
    let todo: Vec<_> = work
        .into_iter()
        .filter(|(_, meta, loc)| {
            opts.force
                || !state.entries.get(loc).is_some_and(|e| {
                    let k = Known {
                        size: e.size_bytes,
                        etag: e.etag.clone(),
                        last_modified: Some(e.last_modified.clone()),
                        deep: e.deep,
                    };
                    unchanged(&k, meta, opts.deep)
                })
        })
        .collect();
    report.unchanged = report.listed - todo.len() as u64;
    let run = manifest::RunId::new();
    let indexed_at_ns = run.started_ns;
    let mut writers = DayWriters::new(dest.clone(), run.clone(), indexed_at_ns);
    let mut entries: Vec<Entry> = Vec::new();
    let mut damaged: HashMap<String, Vec<DamagedRow>> = HashMap::new();
    let bar = calltape_read::progress::bar(todo.len() as u64, "indexing");
    let mut results = std::pin::pin!(fetch_all(todo, opts.deep));
    while let Some(res) = results.next().await {
        let (fetched, (requests, bytes)) = res?;
        report.requests += requests;
        report.bytes_read += bytes;
        match fetched {
            Fetched::Ok {
                meta,
                location,
                summary,
                recovered,
                deep,
            } => {
                let rows: SessionRows = session_rows(
                    ObjectRow::new(&meta, &location),
                    &summary,
                    recovered,
                    deep.as_ref(),
                );
                entries.push(Entry::new(
                    &rows.session.object,
                    rows.session.deep,
                    false,
                    &rows.session.started_day,
                    indexed_at_ns,
                ));
                writers.push(rows).await?;
                report.indexed += 1;
            }
            Fetched::Damaged {
                meta,
                location,
                reason,
            } => {
                let object = ObjectRow::new(&meta, &location);
                let day = crate::rows::day_of(object.last_modified_unix_ns);
                entries.push(Entry::new(&object, true, true, &day, indexed_at_ns));
                report.damaged_archives.push((location, reason.clone()));
                damaged
                    .entry(day)
                    .or_default()
                    .push(DamagedRow { object, reason });
                report.damaged += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for (day, rows) in damaged {
        writers.push_damaged(&day, &rows).await?;
    }
    let staged = writers.finish().await?;
    for (table, n) in &staged.rows {
        report.rows.insert(table.name().to_string(), *n);
    }
    if !entries.is_empty() || !staged.parts.is_empty() {
        let m = Manifest {
            schema: manifest::SCHEMA.to_string(),
            run_id: run.id.clone(),
            kind: ManifestKind::Index,
            written_at_ns: now_ns(),
            entries,
            parts_added: staged.parts.clone(),
            parts_removed: Vec::new(),
        };
        report.manifest = Some(manifest::commit(dest, &run, &m).await?);
        report.parts = m.parts_added;
    }
    report.seconds = started.elapsed().as_secs_f64();
    let read = report.indexed + report.damaged;
    report.archives_per_second = if report.seconds > 0.0 {
        read as f64 / report.seconds
    } else {
        0.0
    };
    Ok(report)
}

/// What `compact` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    pub day: String,
    /// Per table: (parts before, rows kept, rows dropped as superseded).
    pub tables: BTreeMap<String, (u64, u64, u64)>,
    pub parts_added: Vec<String>,
    pub parts_removed: Vec<String>,
    pub manifest: Option<String>,
}

/// Merges the parts of `day` (`YYYY-MM-DD`) into one part per table, dropping rows of an
/// archive indexed again since. The new parts are committed (manifest included) before the
/// old ones are removed, so a reader sees the rows either in the old parts or in the new one.
pub async fn compact(dest: &Dest, day: &str) -> Result<CompactReport> {
    if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
        return Err(AppError::Usage(format!(
            "--day '{day}': expected YYYY-MM-DD"
        )));
    }
    manifest::recover_staging(dest).await?;
    let state = manifest::load(dest).await?;
    let run = manifest::RunId::new();
    let mut report = CompactReport {
        day: day.to_string(),
        ..Default::default()
    };
    let mut staged: Vec<String> = Vec::new();
    for table in Table::ALL {
        let dir = dest.path(&format!("{}/day={day}", table.name()));
        let parts: Vec<StorePath> = {
            let listed = dest
                .store
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|e| dest.err("cannot list the day's parts", e))?;
            let mut p: Vec<StorePath> = listed
                .objects
                .into_iter()
                .map(|m| m.location)
                .filter(|l| {
                    l.filename()
                        .is_some_and(|f| f.starts_with("part-") && f.ends_with(".parquet"))
                })
                .collect();
            p.sort();
            p
        };
        if parts.len() < 2 {
            continue;
        }
        let merged = write::merge_parts(dest, table, day, &parts, &state, &run).await?;
        report.tables.insert(
            table.name().to_string(),
            (parts.len() as u64, merged.kept, merged.dropped),
        );
        staged.extend(merged.parts);
        report
            .parts_removed
            .extend(parts.iter().map(|p| dest.rel(p)));
    }
    if staged.is_empty() {
        return Ok(report);
    }
    let m = Manifest {
        schema: manifest::SCHEMA.to_string(),
        run_id: run.id.clone(),
        kind: ManifestKind::Compact,
        written_at_ns: now_ns(),
        entries: Vec::new(),
        parts_added: staged.clone(),
        parts_removed: report.parts_removed.clone(),
    };
    report.manifest = Some(manifest::commit(dest, &run, &m).await?);
    report.parts_added = m.parts_added;
    for rel in &report.parts_removed {
        match dest.store.delete(&dest.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(dest.err(&format!("cannot remove the merged part {rel}"), e)),
        }
    }
    Ok(report)
}

/// Puts `bytes` at `path`, naming the destination in the error.
pub(crate) async fn put(dest: &Dest, path: &StorePath, bytes: Bytes) -> Result<()> {
    dest.store
        .put(path, PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|e| dest.err(&format!("cannot write {path}"), e))
}
