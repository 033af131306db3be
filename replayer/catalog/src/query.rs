//! Selecting sessions from the catalog: the filters of `calltape ls` (and `stats`) turned into
//! one parameterized WHERE clause over `sessions s`.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde::Serialize;

use calltape_read::error::{AppError, Result};

/// Which sessions to look at. All filters combine with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Started at or after (unix ns).
    pub since_ns: Option<i64>,
    /// Started before (unix ns).
    pub until_ns: Option<i64>,
    pub agent: Option<String>,
    pub version: Option<String>,
    pub outcome: Option<String>,
    /// Any turn's valid e2e above this many ms.
    pub slow_ms: Option<f64>,
    /// At least one error or failed tool call.
    pub errors: bool,
    /// Words that must appear in a turn's transcript preview (user or agent).
    pub text: Option<String>,
    pub id_prefix: Option<String>,
}

/// `[prefix, prefix + 1)` in string order, for index-friendly prefix matches.
pub fn prefix_range(prefix: &str) -> (String, String) {
    let mut hi = prefix.to_string();
    hi.push(char::MAX);
    (prefix.to_string(), hi)
}

/// An FTS5 query requiring every word (as a prefix) of `text`.
pub fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Filter {
    /// `(sql, params)`: a condition on `sessions s` (`1` when there is no filter).
    pub fn where_clause(&self) -> (String, Vec<SqlValue>) {
        let mut conds = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let mut p = |conds: &mut Vec<String>, sql: &str, v: SqlValue| {
            params.push(v);
            conds.push(sql.replace('?', &format!("?{}", params.len())));
        };
        if let Some(v) = self.since_ns {
            p(
                &mut conds,
                "s.started_at_unix_ns >= ?",
                SqlValue::Integer(v),
            );
        }
        if let Some(v) = self.until_ns {
            p(&mut conds, "s.started_at_unix_ns < ?", SqlValue::Integer(v));
        }
        if let Some(v) = &self.agent {
            p(&mut conds, "s.agent_name = ?", SqlValue::Text(v.clone()));
        }
        if let Some(v) = &self.version {
            p(&mut conds, "s.agent_version = ?", SqlValue::Text(v.clone()));
        }
        if let Some(v) = &self.outcome {
            p(&mut conds, "s.outcome = ?", SqlValue::Text(v.clone()));
        }
        if let Some(v) = self.slow_ms {
            p(&mut conds, "s.max_e2e_ms > ?", SqlValue::Real(v));
        }
        if self.errors {
            conds.push("(s.errors > 0 OR s.tool_errors > 0)".into());
        }
        if let Some(prefix) = &self.id_prefix {
            let (lo, hi) = prefix_range(prefix);
            p(&mut conds, "s.session_id >= ?", SqlValue::Text(lo));
            p(&mut conds, "s.session_id < ?", SqlValue::Text(hi));
        }
        if let Some(text) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
            p(
                &mut conds,
                "s.sid IN (SELECT t.sid FROM turns t WHERE t.rowid IN
                   (SELECT rowid FROM turn_text WHERE turn_text MATCH ?))",
                SqlValue::Text(fts_query(text)),
            );
        }
        if conds.is_empty() {
            ("1".into(), params)
        } else {
            (conds.join(" AND "), params)
        }
    }
}

/// One line of `calltape ls`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub session_id: String,
    pub location: String,
    pub started_at: String,
    pub agent_name: String,
    pub agent_version: String,
    pub environment: Option<String>,
    pub duration_ms: f64,
    pub turns: i64,
    pub interruptions: i64,
    pub errors: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
    pub max_e2e_ms: Option<f64>,
    pub end_reason: Option<String>,
    pub outcome: Option<String>,
    pub recovered: bool,
}

/// Sessions matching `filter`, newest first, at most `limit`.
pub fn list(conn: &Connection, filter: &Filter, limit: usize) -> Result<Vec<SessionRow>> {
    let (cond, params) = filter.where_clause();
    let sql = format!(
        "SELECT session_id, location, started_at, agent_name, agent_version, environment,
                duration_ms, turns, interruptions, errors, tool_calls, tool_errors, e2e_p50_ms,
                e2e_p95_ms, max_e2e_ms, end_reason, outcome, recovered
         FROM sessions s WHERE {cond} ORDER BY s.started_at_unix_ns DESC, s.session_id LIMIT {limit}"
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| AppError::Catalog(e.to_string()))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok(SessionRow {
                session_id: r.get(0)?,
                location: r.get(1)?,
                started_at: r.get(2)?,
                agent_name: r.get(3)?,
                agent_version: r.get(4)?,
                environment: r.get(5)?,
                duration_ms: r.get(6)?,
                turns: r.get(7)?,
                interruptions: r.get(8)?,
                errors: r.get(9)?,
                tool_calls: r.get(10)?,
                tool_errors: r.get(11)?,
                e2e_p50_ms: r.get(12)?,
                e2e_p95_ms: r.get(13)?,
                max_e2e_ms: r.get(14)?,
                end_reason: r.get(15)?,
                outcome: r.get(16)?,
                recovered: r.get::<_, i64>(17)? != 0,
            })
        })
        .map_err(|e| AppError::Catalog(e.to_string()))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| AppError::Catalog(e.to_string()))
}

/// Damaged archives recorded by `index`: (location, reason).
pub fn damaged(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT location, reason FROM damaged ORDER BY location")
        .map_err(|e| AppError::Catalog(e.to_string()))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| AppError::Catalog(e.to_string()))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| AppError::Catalog(e.to_string()))
}
