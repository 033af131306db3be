//! `calltape catalog compact DEST --day YYYY-MM-DD`: merges a day's small Parquet parts into
//! one per table (rows of archives indexed again since are dropped); the new parts and their
//! manifest are committed before the old parts are removed. `--manifests` merges the
//! manifests (one per run) into one.
//!
//! `--json`: `{schema: "calltape.catalog-compact/1", dest, day, tables: {table: [parts_before,
//! rows_kept, rows_dropped]}, parts_added, parts_removed, manifest, manifests_merged}`.

use serde_json::json;

use crate::catalog::parquet;
use crate::error::{AppError, Result};
use crate::export::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Merge one day's Parquet parts (written by `index --parquet`) into one part per table.
    Compact(CompactArgs),
}

#[derive(clap::Args)]
pub struct CompactArgs {
    /// The Parquet catalog: a directory or object-store prefix (s3://bucket/prefix).
    #[arg(value_name = "DIR|URL")]
    pub dest: String,
    /// The UTC day whose partition to merge.
    #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "manifests")]
    pub day: Option<String>,
    /// Also (or only, without --day) merge the manifests, one per run, into one.
    #[arg(long)]
    pub manifests: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> Result<i32> {
    match args.command {
        Command::Compact(a) => compact(a).await,
    }
}

async fn compact(args: CompactArgs) -> Result<i32> {
    let dest = parquet::open_dest(&args.dest).await?;
    let report = match &args.day {
        Some(day) => Some(parquet::compact(&dest, day).await?),
        None => None,
    };
    let merged = if args.manifests {
        parquet::manifest::merge(&dest).await?
    } else {
        0
    };
    if args.json {
        let mut v = serde_json::to_value(&report).map_err(|e| AppError::Other(e.to_string()))?;
        if v.is_null() {
            v = json!({});
        }
        v["schema"] = json!("calltape.catalog-compact/1");
        v["dest"] = json!(dest.display);
        v["manifests_merged"] = json!(merged);
        print_json(&v)?;
        return Ok(0);
    }
    if let Some(report) = &report {
        if report.parts_added.is_empty() {
            crate::outln!(
                "{} day={}: nothing to merge (no table has two parts)",
                dest.display,
                report.day
            )?;
        }
        for (table, (before, kept, dropped)) in &report.tables {
            crate::outln!(
                "{table}: {before} parts merged, {kept} rows kept, {dropped} superseded rows dropped"
            )?;
        }
    }
    if args.manifests {
        crate::outln!("{merged} manifests merged into one")?;
    }
    Ok(0)
}
