//! The catalog: one SQLite file describing many calls (sessions, turns with their latency
//! breakdown, tool calls, errors, usage, damaged archives), built by `calltape index` from the
//! archives' tails and queried by `ls`, `stats`, `sql` and `replay <session-id>`.
//! The schema is documented in README.md, "Catalog schema".

pub mod indexer;
pub mod parquet;
pub mod prices;
pub mod query;
pub mod rows;
pub mod schema;
pub mod stats;
pub mod synthetic;

use std::path::{Path, PathBuf};

use calltape_read::error::{AppError, Result};

/// Environment variable naming the catalog file.
pub const CATALOG_ENV: &str = "CALLTAPE_CATALOG";

/// `$XDG_DATA_HOME/calltape/catalog.sqlite`, else `~/.local/share/calltape/catalog.sqlite`.
pub fn default_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("calltape").join("catalog.sqlite"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home)
            .join(".local/share/calltape")
            .join("catalog.sqlite")),
        None => Err(AppError::Usage(
            "cannot find a place for the catalog: set --catalog PATH, CALLTAPE_CATALOG, XDG_DATA_HOME or HOME"
                .into(),
        )),
    }
}

/// The catalog to use: `explicit` (from `--catalog`), else `CALLTAPE_CATALOG`, else the default.
pub fn path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(CATALOG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_path()
}

/// The location (path or URL) of the session whose id is `id_or_prefix`, or the only one
/// whose id starts with it. `Ok(None)` when there is no catalog or no such session; an error
/// when the prefix is ambiguous (naming the candidates). For `calltape replay <session-id>`.
pub fn resolve_session(catalog: Option<&Path>, id_or_prefix: &str) -> Result<Option<String>> {
    let path = path(catalog)?;
    if !path.exists() {
        return Ok(None);
    }
    let conn = schema::open_ro(&path)?;
    let err = |e| schema::err(&path, e);
    let exact: Vec<String> = conn
        .prepare_cached(
            "SELECT location FROM sessions WHERE session_id = ?1 ORDER BY indexed_at DESC",
        )
        .and_then(|mut s| {
            s.query_map([id_or_prefix], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(err)?;
    if let Some(first) = exact.into_iter().next() {
        return Ok(Some(first));
    }
    let (lo, hi) = query::prefix_range(id_or_prefix);
    let found: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT session_id, location FROM sessions WHERE session_id >= ?1 AND session_id < ?2
             ORDER BY session_id LIMIT 6",
        )
        .and_then(|mut s| {
            s.query_map([lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    let mut ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    ids.dedup();
    match ids.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next().map(|(_, loc)| loc)),
        _ => Err(AppError::Usage(format!(
            "'{id_or_prefix}' matches several sessions: {}{}; give more of the id",
            ids.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if ids.len() > 5 { ", …" } else { "" }
        ))),
    }
}
