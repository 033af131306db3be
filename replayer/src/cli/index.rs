//! `calltape index <dir | file | s3://bucket/prefix>...`: builds or updates the catalog from
//! the archives' tails. Incremental (unchanged objects are skipped), damaged archives are
//! listed with the reason instead of stopping the run.
//!
//! `--json`: `{schema: "calltape.index/1", catalog, listed, indexed, unchanged, damaged,
//! removed, requests, bytes_read, seconds, archives_per_second, damaged_archives: [{location,
//! reason}]}` (requests and bytes_read: what reading the archives took).
//!
//! `--parquet DEST` (a directory or `s3://bucket/prefix`) writes the catalog as Parquet tables
//! there instead of the SQLite file (replayer/catalog/PARQUET.md). `--json`: `{schema:
//! "calltape.index-parquet/1", dest, listed, indexed, unchanged, damaged, requests, bytes_read,
//! parts, rows: {table:
//! n}, rolled_forward, manifest, seconds, archives_per_second, damaged_archives}`.

use std::path::PathBuf;

use serde_json::json;

use crate::catalog::indexer::{self, IndexOptions};
use crate::catalog::{self, query, schema};
use crate::error::{AppError, Result};
use crate::export::print_json;

#[derive(clap::Args)]
pub struct Args {
    /// Directories, archive files, or object-store prefixes (s3://bucket/prefix).
    #[arg(required = true, value_name = "DIR|URL")]
    pub targets: Vec<String>,
    /// Catalog file (default: $XDG_DATA_HOME/calltape/catalog.sqlite).
    #[arg(long, env = "CALLTAPE_CATALOG", value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Also read each archive's control chunks: tool names, error messages, usage per model.
    #[arg(long)]
    pub deep: bool,
    /// Re-read every archive, even unchanged ones.
    #[arg(long)]
    pub force: bool,
    /// Keep catalog entries whose archive is no longer under a listed directory or prefix.
    #[arg(long)]
    pub keep_missing: bool,
    /// Write the catalog as Parquet tables to this directory or object-store prefix
    /// (s3://bucket/prefix) instead of the SQLite file; only new or changed archives are written.
    #[arg(long, value_name = "DIR|URL")]
    pub parquet: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

async fn run_parquet(args: &Args, dest: &str, opts: &IndexOptions) -> Result<i32> {
    let dest = crate::catalog::parquet::open_dest(dest).await?;
    let report = crate::catalog::parquet::index(&dest, &args.targets, opts).await?;
    if args.json {
        let mut v = serde_json::to_value(&report).map_err(|e| AppError::Other(e.to_string()))?;
        v["schema"] = json!("calltape.index-parquet/1");
        v["dest"] = json!(dest.display);
        v["damaged_archives"] = report
            .damaged_archives
            .iter()
            .map(|(l, r)| json!({"location": l, "reason": r}))
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let rows: Vec<String> = report
        .rows
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    crate::outln!(
        "parquet {}: {} archives listed, {} indexed, {} unchanged, {} damaged; {} parts ({}) in {:.2}s ({:.0}/s)",
        dest.display,
        report.listed,
        report.indexed,
        report.unchanged,
        report.damaged,
        report.parts.len(),
        if rows.is_empty() { "no rows".to_string() } else { rows.join(", ") },
        report.seconds,
        report.archives_per_second
    )?;
    if report.rolled_forward > 0 {
        crate::outln!(
            "finished {} interrupted earlier run(s)",
            report.rolled_forward
        )?;
    }
    if !report.damaged_archives.is_empty() {
        crate::outln!("damaged archives ({}):", report.damaged_archives.len())?;
        for (loc, reason) in &report.damaged_archives {
            crate::outln!("  {loc}: {reason}")?;
        }
    }
    Ok(0)
}

pub async fn run(args: Args) -> Result<i32> {
    let opts = IndexOptions {
        deep: args.deep,
        force: args.force,
        keep_missing: args.keep_missing,
    };
    if let Some(dest) = args.parquet.clone() {
        return run_parquet(&args, &dest, &opts).await;
    }
    let path = catalog::path(args.catalog.as_deref())?;
    let mut conn = schema::open_rw(&path)?;
    let report = indexer::index(&mut conn, &args.targets, &opts).await?;
    let damaged = query::damaged(&conn)?;
    if args.json {
        let mut v = serde_json::to_value(&report).map_err(|e| AppError::Other(e.to_string()))?;
        v["schema"] = json!("calltape.index/1");
        v["catalog"] = json!(path.display().to_string());
        v["damaged_archives"] = damaged
            .iter()
            .map(|(l, r)| json!({"location": l, "reason": r}))
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    crate::outln!(
        "catalog {}: {} archives listed, {} indexed, {} unchanged, {} damaged, {} removed in {:.2}s ({:.0}/s)",
        path.display(),
        report.listed,
        report.indexed,
        report.unchanged,
        report.damaged,
        report.removed,
        report.seconds,
        report.archives_per_second
    )?;
    if !damaged.is_empty() {
        crate::outln!("damaged archives ({}):", damaged.len())?;
        for (loc, reason) in &damaged {
            crate::outln!("  {loc}: {reason}")?;
        }
    }
    Ok(0)
}
