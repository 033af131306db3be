//! The catalog's SQLite schema (documented in README.md, "Catalog schema") and how the
//! database is opened: read-write for `index`, read-only (`query_only`) for everything else.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use calltape_read::error::{AppError, Result};

/// Bumped when the schema changes; an older catalog is rebuilt (it is only a cache of what
/// the archives hold).
pub const SCHEMA_VERSION: i32 = 1;

pub const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS sessions (
    sid                 INTEGER PRIMARY KEY,
    location            TEXT NOT NULL UNIQUE,
    session_id          TEXT NOT NULL,
    started_at          TEXT NOT NULL,
    started_at_unix_ns  INTEGER NOT NULL,
    started_day         TEXT NOT NULL,
    agent_name          TEXT NOT NULL,
    agent_version       TEXT NOT NULL,
    environment         TEXT,
    tags_json           TEXT NOT NULL DEFAULT '{}',
    duration_ms         REAL NOT NULL,
    turns               INTEGER NOT NULL,
    records             INTEGER NOT NULL,
    interruptions       INTEGER NOT NULL,
    errors              INTEGER NOT NULL,
    tool_calls          INTEGER NOT NULL,
    tool_errors         INTEGER NOT NULL,
    e2e_p50_ms          REAL,
    e2e_p95_ms          REAL,
    max_e2e_ms          REAL,
    end_reason          TEXT,
    outcome             TEXT,
    recovered           INTEGER NOT NULL DEFAULT 0,
    recovery_reason     TEXT,
    dropped_json        TEXT NOT NULL DEFAULT '[]',
    size_bytes          INTEGER NOT NULL,
    etag                TEXT,
    last_modified       TEXT,
    deep                INTEGER NOT NULL DEFAULT 0,
    indexed_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_session_id ON sessions(session_id);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at_unix_ns);
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions(agent_name, agent_version);
CREATE INDEX IF NOT EXISTS sessions_max_e2e ON sessions(max_e2e_ms);

CREATE TABLE IF NOT EXISTS turns (
    sid             INTEGER NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
    turn            INTEGER NOT NULL,
    speaker         TEXT NOT NULL,
    start_ms        REAL NOT NULL,
    end_ms          REAL,
    user_text       TEXT NOT NULL,
    agent_text      TEXT NOT NULL,
    interrupted     INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    tool_calls      INTEGER NOT NULL,
    tool_errors     INTEGER NOT NULL,
    e2e_ms          REAL,
    e2e_valid       INTEGER NOT NULL,
    eou_ms          REAL,
    stt_ms          REAL,
    llm_ms          REAL,
    tool_ms         REAL,
    tts_ms          REAL,
    rest_ms         REAL,
    reported_e2e_ms REAL,
    flags           TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sid, turn)
);

CREATE TABLE IF NOT EXISTS tool_calls (
    sid          INTEGER NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
    turn         INTEGER,
    call_id      TEXT,
    name         TEXT NOT NULL,
    is_error     INTEGER NOT NULL,
    start_ms     REAL NOT NULL,
    duration_ms  REAL NOT NULL,
    output       TEXT
);
CREATE INDEX IF NOT EXISTS tool_calls_sid ON tool_calls(sid);
CREATE INDEX IF NOT EXISTS tool_calls_name ON tool_calls(name);

CREATE TABLE IF NOT EXISTS errors (
    sid      INTEGER NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
    turn     INTEGER,
    time_ms  REAL NOT NULL,
    kind     TEXT NOT NULL,
    source   TEXT,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS errors_sid ON errors(sid);

CREATE TABLE IF NOT EXISTS usage (
    sid                INTEGER NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
    model              TEXT,
    provider           TEXT,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    stt_audio_seconds  REAL NOT NULL,
    tts_audio_seconds  REAL NOT NULL,
    tts_characters     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_sid ON usage(sid);

CREATE TABLE IF NOT EXISTS damaged (
    location       TEXT PRIMARY KEY,
    size_bytes     INTEGER NOT NULL,
    etag           TEXT,
    last_modified  TEXT,
    reason         TEXT NOT NULL,
    indexed_at     TEXT NOT NULL
);

CREATE VIRTUAL TABLE IF NOT EXISTS turn_text USING fts5(user_text, agent_text);
"#;

/// Opens (creating if needed) the catalog for writing, with the schema in place.
pub fn open_rw(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AppError::Io {
            what: format!("create {}", dir.display()),
            source: e,
        })?;
    }
    let conn = Connection::open(path).map_err(|e| err(path, e))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(|e| err(path, e))?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| err(path, e))?;
    if version != SCHEMA_VERSION && version != 0 {
        eprintln!(
            "calltape: the catalog {} has schema version {version}; rebuilding it for version {SCHEMA_VERSION}",
            path.display()
        );
        conn.execute_batch(
            "DROP TABLE IF EXISTS turn_text; DROP TABLE IF EXISTS tool_calls; DROP TABLE IF EXISTS errors;
             DROP TABLE IF EXISTS usage; DROP TABLE IF EXISTS turns; DROP TABLE IF EXISTS sessions;
             DROP TABLE IF EXISTS damaged;",
        )
        .map_err(|e| err(path, e))?;
    }
    conn.execute_batch(DDL).map_err(|e| err(path, e))?;
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(|e| err(path, e))?;
    Ok(conn)
}

/// Opens an existing catalog read-only; every statement that would write fails.
pub fn open_ro(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(AppError::Catalog(format!(
            "no catalog at {}: run `calltape index DIR|s3://bucket/prefix` first (or pass --catalog / set CALLTAPE_CATALOG)",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(path, e))?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(|e| err(path, e))?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| err(path, e))?;
    if version != SCHEMA_VERSION {
        return Err(AppError::Catalog(format!(
            "{} has schema version {version}, this calltape reads version {SCHEMA_VERSION}: run `calltape index` again to rebuild it",
            path.display()
        )));
    }
    Ok(conn)
}

pub fn err(path: &Path, e: rusqlite::Error) -> AppError {
    AppError::Catalog(format!("{}: {e}", path.display()))
}
