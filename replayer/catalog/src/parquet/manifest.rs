//! The Parquet catalog's manifests: one JSON object per run under `DEST/_manifest/`, naming
//! the archives it indexed (key, size, ETag, mtime: what the next run compares) and the parts
//! it added or removed. Runs never rewrite each other's manifests, so concurrent indexers need
//! no lock; the catalog's state is every manifest folded in time order (later runs win).
//! Also the commit of a run (stage, manifest, publish) and the recovery of interrupted ones.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::{put, Dest, ABANDONED_AFTER_SECS, ROLL_FORWARD_AFTER_SECS};
use crate::rows::ObjectRow;
use calltape_read::error::{AppError, Result};

pub const SCHEMA: &str = "calltape.parquet-manifest/1";
/// A manifest larger than this is refused (a run of a million archives writes about 300 MB:
/// index such fleets in several runs, or compact).
pub const MAX_MANIFEST_BYTES: u64 = 512 << 20;
/// Requests in flight while reading manifests or publishing parts.
const IN_FLIGHT: usize = 16;

/// A run's id: its start (unix ns, zero-padded so names sort by time) and a UUID.
#[derive(Debug, Clone)]
pub struct RunId {
    pub id: String,
    pub started_ns: i64,
}

impl RunId {
    pub fn new() -> RunId {
        let started_ns = super::now_ns();
        RunId {
            id: format!("{started_ns:020}-{}", uuid::Uuid::new_v4().simple()),
            started_ns,
        }
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestKind {
    Index,
    Compact,
}

/// One archive as a run indexed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub location: String,
    pub size_bytes: i64,
    pub etag: Option<String>,
    /// RFC 3339, as the listing gave it.
    pub last_modified: String,
    pub deep: bool,
    pub damaged: bool,
    /// The partition its rows went to.
    pub day: String,
    /// The rows' `indexed_at` (unix ns; the tables hold it in µs).
    pub indexed_at_ns: i64,
}

impl Entry {
    pub fn new(
        object: &ObjectRow,
        deep: bool,
        damaged: bool,
        day: &str,
        indexed_at_ns: i64,
    ) -> Entry {
        Entry {
            location: object.location.clone(),
            size_bytes: object.size_bytes,
            etag: object.etag.clone(),
            last_modified: object.last_modified.clone(),
            deep,
            damaged,
            day: day.to_string(),
            indexed_at_ns,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub run_id: String,
    pub kind: ManifestKind,
    pub written_at_ns: i64,
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// Paths under DEST.
    #[serde(default)]
    pub parts_added: Vec<String>,
    #[serde(default)]
    pub parts_removed: Vec<String>,
}

/// Every manifest folded: the newest entry of each archive.
#[derive(Debug, Default)]
pub struct State {
    pub entries: HashMap<String, Entry>,
    pub manifests: usize,
    /// The newest manifest's `written_at_ns`.
    pub written_at_ns: i64,
}

fn manifest_path(dest: &Dest, run_id: &str) -> StorePath {
    dest.path(&format!("_manifest/{run_id}.json"))
}

fn staging(dest: &Dest, run_id: &str, rel: &str) -> StorePath {
    dest.path(&format!("_staging/{run_id}/{rel}"))
}

/// Where a run stages a part before its commit.
pub fn staged_part(dest: &Dest, run: &RunId, final_rel: &str) -> StorePath {
    staging(dest, &run.id, final_rel)
}

async fn read_manifest(dest: &Dest, path: &StorePath, size: u64) -> Result<Manifest> {
    if size > MAX_MANIFEST_BYTES {
        return Err(AppError::Other(format!(
            "{}: manifest {path} is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
            dest.display
        )));
    }
    let bytes = dest
        .store
        .get(path)
        .await
        .map_err(|e| dest.err(&format!("cannot read manifest {path}"), e))?
        .bytes()
        .await
        .map_err(|e| dest.err(&format!("cannot read manifest {path}"), e))?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        AppError::Other(format!(
            "{}: manifest {path} is not valid: {e} (remove it and re-run with --force to rebuild)",
            dest.display
        ))
    })?;
    if m.schema != SCHEMA {
        return Err(AppError::Other(format!(
            "{}: manifest {path} has schema '{}', this calltape reads '{SCHEMA}'",
            dest.display, m.schema
        )));
    }
    Ok(m)
}

/// Reads every manifest under `DEST/_manifest/` and folds them in time order.
pub async fn load(dest: &Dest) -> Result<State> {
    Ok(load_listed(dest).await?.0)
}

/// [`load`], also returning the manifests' paths.
async fn load_listed(dest: &Dest) -> Result<(State, Vec<StorePath>)> {
    let dir = dest.path("_manifest");
    let metas: Vec<_> = dest
        .store
        .list(Some(&dir))
        .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".json")))
        .try_collect()
        .await
        .map_err(|e| dest.err("cannot list the manifests", e))?;
    let paths: Vec<StorePath> = metas.iter().map(|m| m.location.clone()).collect();
    let mut manifests: Vec<Manifest> = futures::stream::iter(metas)
        .map(|m| async move { read_manifest(dest, &m.location, m.size).await })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    manifests.sort_by(|a, b| (a.written_at_ns, &a.run_id).cmp(&(b.written_at_ns, &b.run_id)));
    let mut state = State {
        manifests: manifests.len(),
        ..Default::default()
    };
    for m in manifests {
        state.written_at_ns = state.written_at_ns.max(m.written_at_ns);
        for e in m.entries {
            match state.entries.get(&e.location) {
                Some(old) if old.indexed_at_ns > e.indexed_at_ns => {}
                _ => {
                    state.entries.insert(e.location.clone(), e);
                }
            }
        }
    }
    Ok((state, paths))
}

/// Replaces every manifest with one holding the newest entry of each archive (the manifests
/// grow by one per run). The merged manifest is written before the others are removed, and a
/// manifest written meanwhile by a concurrent run is not among those removed. Returns how
/// many manifests were merged.
pub async fn merge(dest: &Dest) -> Result<usize> {
    let (state, paths) = load_listed(dest).await?;
    if paths.len() < 2 {
        return Ok(0);
    }
    let run = RunId::new();
    let mut entries: Vec<Entry> = state.entries.into_values().collect();
    entries.sort_by(|a, b| a.location.cmp(&b.location));
    let m = Manifest {
        schema: SCHEMA.to_string(),
        run_id: run.id.clone(),
        kind: ManifestKind::Compact,
        // ordered as the newest it merges, so a run that wrote after them still comes later
        written_at_ns: state.written_at_ns,
        entries,
        parts_added: Vec::new(),
        parts_removed: Vec::new(),
    };
    let json = serde_json::to_vec(&m).map_err(|e| AppError::Other(e.to_string()))?;
    put(dest, &manifest_path(dest, &run.id), json.into()).await?;
    for p in &paths {
        match dest.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(dest.err(&format!("cannot remove the merged manifest {p}"), e)),
        }
    }
    Ok(paths.len())
}

async fn publish(dest: &Dest, run_id: &str, parts: &[String]) -> Result<()> {
    futures::stream::iter(parts)
        .map(|rel| async move {
            let from = staging(dest, run_id, rel);
            match dest.store.rename(&from, &dest.path(rel)).await {
                Ok(()) => Ok(()),
                // moved already by the run that was interrupted, or by a concurrent recovery
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(dest.err(&format!("cannot publish {rel}"), e)),
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Commits a run whose parts are staged: staged manifest (the commit point), parts moved to
/// their final names, manifest written, staging removed. Returns the manifest's path.
pub async fn commit(dest: &Dest, run: &RunId, m: &Manifest) -> Result<String> {
    let json = serde_json::to_vec(m).map_err(|e| AppError::Other(e.to_string()))?;
    let staged_manifest = staging(dest, &run.id, "manifest.json");
    put(dest, &staged_manifest, json.clone().into()).await?;
    publish(dest, &run.id, &m.parts_added).await?;
    let path = manifest_path(dest, &run.id);
    put(dest, &path, json.into()).await?;
    let _ = dest.store.delete(&staged_manifest).await;
    remove_empty_staging(dest, &run.id);
    Ok(dest.rel(&path))
}

/// A local destination keeps the folders a run staged into: removed once they are empty.
fn remove_empty_staging(dest: &Dest, run_id: &str) {
    fn prune(dir: &std::path::Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut empty = true;
        for e in entries.flatten() {
            let p = e.path();
            empty &= p.is_dir() && prune(&p);
        }
        empty && std::fs::remove_dir(dir).is_ok()
    }
    if let Some(root) = &dest.local_root {
        prune(&root.join("_staging").join(run_id));
    }
}

/// Finishes the commits of runs interrupted after their staged manifest, and removes the
/// staging of runs abandoned before it. Returns how many commits were finished.
pub async fn recover_staging(dest: &Dest) -> Result<u64> {
    let dir = dest.path("_staging");
    let runs = dest
        .store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|e| dest.err("cannot list the staging area", e))?;
    let now = chrono::Utc::now();
    let mut finished = 0;
    for run_dir in runs.common_prefixes {
        let Some(run_id) = run_dir.filename().map(str::to_string) else {
            continue;
        };
        let objects: Vec<_> = dest
            .store
            .list(Some(&run_dir))
            .try_collect()
            .await
            .map_err(|e| dest.err("cannot list the staging area", e))?;
        let staged_manifest = staging(dest, &run_id, "manifest.json");
        match objects.iter().find(|o| o.location == staged_manifest) {
            Some(meta) => {
                if (now - meta.last_modified).num_seconds() < ROLL_FORWARD_AFTER_SECS {
                    continue; // its run may still be publishing
                }
                let m = read_manifest(dest, &meta.location, meta.size).await?;
                publish(dest, &run_id, &m.parts_added).await?;
                let json = serde_json::to_vec(&m).map_err(|e| AppError::Other(e.to_string()))?;
                put(dest, &manifest_path(dest, &run_id), json.into()).await?;
                let _ = dest.store.delete(&staged_manifest).await;
                remove_empty_staging(dest, &run_id);
                finished += 1;
            }
            None => {
                let newest = objects.iter().map(|o| o.last_modified).max();
                if newest.is_some_and(|t| (now - t).num_seconds() >= ABANDONED_AFTER_SECS) {
                    for o in &objects {
                        let _ = dest.store.delete(&o.location).await;
                    }
                }
            }
        }
    }
    Ok(finished)
}
