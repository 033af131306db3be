//! Writing parts: rows buffered per day, turned into Arrow batches and encoded as zstd Parquet
//! in memory, each finished part staged under the run's staging folder. Also the merge of a
//! day's parts for `compact`.

use std::collections::{BTreeMap, HashMap};

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::SchemaRef;
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::manifest::{staged_part, RunId, State};
use super::tables::{self, Table};
use super::{put, Dest};
use crate::rows::{DamagedRow, SessionRows};
use calltape_read::error::{AppError, Result};

/// A row group is cut when its encoded size passes this (engines split work by row group).
pub const ROW_GROUP_BYTES: usize = 128 << 20;
/// A part is finished when its bytes pass this.
pub const PART_BYTES: usize = 512 << 20;
/// Encoded bytes the open parts of a run may hold in memory together; past it the largest
/// part is finished early (a run over many days opens one part per table and day).
pub const MAX_BUFFERED_BYTES: usize = 1 << 30;
/// Sessions buffered per day before they become Arrow batches.
const BATCH_SESSIONS: usize = 2048;
/// A part larger than this is not merged by `compact` (it is read whole into memory).
pub const MAX_MERGE_PART_BYTES: u64 = 2 << 30;

fn pq_err(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Other(format!("{what}: {e}"))
}

fn properties() -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(3).map_err(|e| pq_err("zstd level", e))?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_max_row_group_row_count(None)
        .set_created_by(format!("calltape {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// One part being encoded.
struct PartWriter {
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

impl PartWriter {
    fn new(schema: SchemaRef) -> Result<PartWriter> {
        Ok(PartWriter {
            writer: ArrowWriter::try_new(Vec::new(), schema, Some(properties()?))
                .map_err(|e| pq_err("starting a Parquet part", e))?,
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| pq_err("encoding Parquet", e))
    }

    fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    fn full(&self) -> bool {
        self.size() >= PART_BYTES
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.writer
            .into_inner()
            .map_err(|e| pq_err("finishing a Parquet part", e))
    }
}

/// Stages a finished part; returns its final path under DEST.
async fn stage(
    dest: &Dest,
    run: &RunId,
    table: Table,
    day: &str,
    bytes: Vec<u8>,
) -> Result<String> {
    let rel = format!(
        "{}/day={day}/part-{}.parquet",
        table.name(),
        uuid::Uuid::new_v4()
    );
    put(dest, &staged_part(dest, run, &rel), bytes.into()).await?;
    Ok(rel)
}

/// What a run staged.
#[derive(Debug, Default)]
pub struct Staged {
    /// Final paths under DEST.
    pub parts: Vec<String>,
    pub rows: BTreeMap<Table, u64>,
}

/// The run's open parts, one per table and day.
pub struct DayWriters {
    dest: Dest,
    run: RunId,
    indexed_at_ns: i64,
    pending: BTreeMap<String, Vec<SessionRows>>,
    open: HashMap<(Table, String), PartWriter>,
    staged: Staged,
}

impl DayWriters {
    pub fn new(dest: Dest, run: RunId, indexed_at_ns: i64) -> DayWriters {
        DayWriters {
            dest,
            run,
            indexed_at_ns,
            pending: BTreeMap::new(),
            open: HashMap::new(),
            staged: Staged::default(),
        }
    }

    pub async fn push(&mut self, rows: SessionRows) -> Result<()> {
        let day = rows.session.started_day.clone();
        let pending = self.pending.entry(day.clone()).or_default();
        pending.push(rows);
        if pending.len() >= BATCH_SESSIONS {
            self.flush_day(&day).await?;
        }
        Ok(())
    }

    pub async fn push_damaged(&mut self, day: &str, rows: &[DamagedRow]) -> Result<()> {
        let batch = tables::damaged_batch(rows, self.indexed_at_ns)?;
        self.write(Table::Damaged, day, &batch).await
    }

    async fn flush_day(&mut self, day: &str) -> Result<()> {
        let Some(sessions) = self.pending.remove(day) else {
            return Ok(());
        };
        for table in &Table::OF_SESSIONS {
            let batch = tables::batch(*table, &sessions, self.indexed_at_ns)?;
            self.write(*table, day, &batch).await?;
        }
        Ok(())
    }

    async fn write(&mut self, table: Table, day: &str, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        *self.staged.rows.entry(table).or_default() += batch.num_rows() as u64;
        let key = (table, day.to_string());
        let w = match self.open.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(PartWriter::new(batch.schema())?)
            }
        };
        w.write(batch)?;
        let full = if w.full() {
            Some(key)
        } else if self.open.values().map(PartWriter::size).sum::<usize>() > MAX_BUFFERED_BYTES {
            self.open
                .iter()
                .max_by_key(|(_, w)| w.size())
                .map(|(k, _)| k.clone())
        } else {
            None
        };
        if let Some((table, day)) = full {
            if let Some(w) = self.open.remove(&(table, day.clone())) {
                let rel = stage(&self.dest, &self.run, table, &day, w.finish()?).await?;
                self.staged.parts.push(rel);
            }
        }
        Ok(())
    }

    /// Writes what is buffered and stages every open part.
    pub async fn finish(mut self) -> Result<Staged> {
        let days: Vec<String> = self.pending.keys().cloned().collect();
        for day in days {
            self.flush_day(&day).await?;
        }
        let mut open: Vec<_> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        for ((table, day), w) in open {
            let rel = stage(&self.dest, &self.run, table, &day, w.finish()?).await?;
            self.staged.parts.push(rel);
        }
        Ok(self.staged)
    }
}

/// What merging a day's parts of one table did.
#[derive(Debug, Default)]
pub struct Merged {
    pub kept: u64,
    pub dropped: u64,
    /// Final paths of the staged merged parts.
    pub parts: Vec<String>,
}

/// Which rows of `batch` are current: those of an archive whose newest manifest entry has
/// the row's `indexed_at` (rows of archives no manifest names are kept).
fn current_rows(batch: &RecordBatch, state: &State) -> Result<BooleanArray> {
    let bad = || AppError::Other("a part lacks the location or indexed_at column".into());
    let loc = batch
        .column_by_name("location")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(bad)?;
    let at = batch
        .column_by_name("indexed_at")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(bad)?;
    Ok((0..batch.num_rows())
        .map(|i| {
            let keep = loc.is_null(i)
                || state
                    .entries
                    .get(loc.value(i))
                    .is_none_or(|e| e.indexed_at_ns.div_euclid(1000) == at.value(i));
            Some(keep)
        })
        .collect())
}

/// Reads `parts` (one table, one day) and stages their current rows as new parts.
pub async fn merge_parts(
    dest: &Dest,
    table: Table,
    day: &str,
    parts: &[StorePath],
    state: &State,
    run: &RunId,
) -> Result<Merged> {
    let mut merged = Merged::default();
    let mut out: Option<PartWriter> = None;
    let mut schema: Option<SchemaRef> = None;
    for part in parts {
        let got = dest
            .store
            .get(part)
            .await
            .map_err(|e| dest.err(&format!("cannot read {part}"), e))?;
        if got.meta.size > MAX_MERGE_PART_BYTES {
            return Err(AppError::Other(format!(
                "{part} is {} bytes, over the {MAX_MERGE_PART_BYTES}-byte limit of compact",
                got.meta.size
            )));
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| dest.err(&format!("cannot read {part}"), e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| pq_err(&format!("{part} is not readable Parquet"), e))?
            .with_batch_size(8192)
            .build()
            .map_err(|e| pq_err(&format!("{part} is not readable Parquet"), e))?;
        for batch in reader {
            let batch = batch.map_err(|e| pq_err(&format!("{part} is not readable Parquet"), e))?;
            match &schema {
                None => schema = Some(batch.schema()),
                Some(s) if *s != batch.schema() => {
                    return Err(AppError::Other(format!(
                        "{}/day={day}: {part} has other columns than the day's first part (written by another calltape version?): not merged",
                        table.name()
                    )))
                }
                Some(_) => {}
            }
            let keep = current_rows(&batch, state)?;
            let batch = arrow_select::filter::filter_record_batch(&batch, &keep)
                .map_err(|e| pq_err("filtering rows", e))?;
            merged.dropped += (keep.len() - batch.num_rows()) as u64;
            merged.kept += batch.num_rows() as u64;
            if batch.num_rows() == 0 {
                continue;
            }
            let w = match &mut out {
                Some(w) => w,
                None => out.insert(PartWriter::new(batch.schema())?),
            };
            w.write(&batch)?;
            if w.full() {
                if let Some(w) = out.take() {
                    merged
                        .parts
                        .push(stage(dest, run, table, day, w.finish()?).await?);
                }
            }
        }
    }
    if let Some(w) = out {
        merged
            .parts
            .push(stage(dest, run, table, day, w.finish()?).await?);
    }
    Ok(merged)
}
