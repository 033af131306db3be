//! `calltape sql "SELECT …"`: read-only SQL over the catalog (opened read-only with
//! `PRAGMA query_only`; statements that would write are refused before they run).
//!
//! `--json`: an array of row objects keyed by column name.

use std::path::PathBuf;

use rusqlite::types::ValueRef;
use serde_json::{json, Map, Value};

use crate::catalog::{self, schema};
use crate::error::{AppError, Result};
use crate::export::print_json;
use crate::export::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// One SQL statement, e.g. "SELECT agent_version, avg(e2e_ms) FROM turns JOIN sessions USING (sid) GROUP BY 1".
    pub query: String,
    /// Catalog file (default: $XDG_DATA_HOME/calltape/catalog.sqlite).
    #[arg(long, env = "CALLTAPE_CATALOG", value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn to_cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

pub async fn run(args: Args) -> Result<i32> {
    let path = catalog::path(args.catalog.as_deref())?;
    let conn = schema::open_ro(&path)?;
    let mut stmt = conn
        .prepare(&args.query)
        .map_err(|e| AppError::Usage(format!("SQL error: {e}")))?;
    if !stmt.readonly() {
        return Err(AppError::Usage(
            "refusing a statement that writes: `calltape sql` is read-only (the catalog is rebuilt by `calltape index`)".into(),
        ));
    }
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let mut rows = stmt
        .query([])
        .map_err(|e| AppError::Usage(format!("SQL error: {e}")))?;
    let mut out: Vec<Vec<Value>> = Vec::new();
    while let Some(r) = rows
        .next()
        .map_err(|e| AppError::Usage(format!("SQL error: {e}")))?
    {
        out.push(
            (0..names.len())
                .map(|i| r.get_ref(i).map(to_json).unwrap_or(Value::Null))
                .collect(),
        );
    }
    if args.json {
        let arr: Vec<Value> = out
            .into_iter()
            .map(|row| {
                let mut m = Map::new();
                for (n, v) in names.iter().zip(row) {
                    m.insert(n.clone(), v);
                }
                Value::Object(m)
            })
            .collect();
        print_json(&Value::Array(arr))?;
        return Ok(0);
    }
    let headers: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let numeric = !out.is_empty() && out.iter().all(|r| r[i].is_number() || r[i].is_null());
            if numeric {
                format!("{n}>")
            } else {
                n.clone()
            }
        })
        .collect();
    let mut t = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
    for row in &out {
        t.row(row.iter().map(to_cell).collect());
    }
    crate::out!("{}", t.render())?;
    crate::outln!(
        "({} row{})",
        out.len(),
        if out.len() == 1 { "" } else { "s" }
    )?;
    Ok(0)
}
