//! `calltape recover ARCHIVE [-o OUT]`: writes a closed copy of a damaged or unclosed archive
//! (every good chunk, a rebuilt summary, index and footer flagged *recovered*) and reports
//! what was kept and what was lost. The input is never modified.
//!
//! `--json`: `{schema: "calltape.recover/1", input, output, intact, kept_bytes, lost_bytes,
//! chunks_kept, records_kept, last_time_ns, reason}`.

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;

use serde_json::json;

use crate::error::{AppError, Result};
use crate::export::print_json;
use crate::export::units::format_clock;
use crate::source::{ArchiveSource, Location};

#[derive(clap::Args)]
pub struct Args {
    /// Archive to recover: a path or an object-store URL.
    pub archive: String,
    /// Where to write the recovered archive: a path or an object-store URL. Default: the
    /// input's name with `.recovered.calltape` (in the current directory for a URL input).
    #[arg(short, long)]
    pub output: Option<String>,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// `calls/a.calltape` → `calls/a.recovered.calltape`.
pub fn default_output(location: &Location) -> PathBuf {
    let (dir, name) = match location {
        Location::File(p) => (
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Location::Url(u) => (
            PathBuf::new(),
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
                .unwrap_or_default(),
        ),
    };
    let stem = name.strip_suffix(".calltape").unwrap_or(&name);
    let stem = if stem.is_empty() { "archive" } else { stem };
    dir.join(format!("{stem}.recovered.calltape"))
}

pub async fn run(args: Args) -> Result<i32> {
    let location = Location::parse(&args.archive)?;
    let out_location = match &args.output {
        Some(o) => Location::parse(o)?,
        None => Location::File(default_output(&location)),
    };
    let (out_path, upload_to) = match &out_location {
        Location::File(p) => (p.clone(), None),
        // written locally first, then uploaded (multipart when large)
        Location::Url(u) => (
            std::env::temp_dir().join(format!("calltape-recover-{}.calltape", std::process::id())),
            Some(u.clone()),
        ),
    };
    if let Location::File(input) = &location {
        if input.canonicalize().ok() == out_path.canonicalize().ok() && out_path.exists() {
            return Err(AppError::Usage(
                "the output would overwrite the input: choose another -o".into(),
            ));
        }
    }
    if upload_to.is_none() && out_path.exists() && !args.force {
        return Err(AppError::Usage(format!(
            "{} exists: pass --force to overwrite it or choose another -o",
            out_path.display()
        )));
    }
    let source = ArchiveSource::connect(&location).await?;
    let tmp = out_path.with_extension("calltape.partial");
    let file = std::fs::File::create(&tmp).map_err(|e| AppError::Io {
        what: format!("create {}", tmp.display()),
        source: e,
    })?;
    let report = source
        .with_reader(move |input| {
            let mut out = std::io::BufWriter::new(file);
            let r = calltape_format::recover_to(input, &mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok::<_, calltape_format::FormatError>(r)
        })
        .await?;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(source.format_err(e));
        }
    };
    std::fs::rename(&tmp, &out_path).map_err(|e| AppError::Io {
        what: format!("rename {} to {}", tmp.display(), out_path.display()),
        source: e,
    })?;
    if let Some(url) = &upload_to {
        let uploaded = upload(&out_path, url, args.force).await;
        let _ = std::fs::remove_file(&out_path);
        uploaded?;
    }
    let output = out_location.to_string();
    if args.json {
        let mut v = serde_json::to_value(&report).expect("serializes");
        v["schema"] = json!("calltape.recover/1");
        v["input"] = json!(args.archive);
        v["output"] = json!(output);
        print_json(&v)?;
        return Ok(0);
    }
    if report.intact {
        crate::outln!(
            "{} was already intact; wrote a copy to {output}",
            args.archive
        )?;
        return Ok(0);
    }
    crate::outln!("recovered {} → {output}", args.archive)?;
    let total = report.kept_bytes + report.lost_bytes;
    crate::outln!("recovered {} → {}", args.archive, out_path.display())?;
    crate::outln!(
        "  kept   {} of {} bytes, {} chunks, {} records, up to session time {}",
        report.kept_bytes,
        total,
        report.chunks_kept,
        report.records_kept,
        format_clock(report.last_time_ns)
    )?;
    crate::outln!(
        "  lost   {} bytes after byte {}",
        report.lost_bytes,
        report.kept_bytes
    )?;
    if !report.reason.is_empty() {
        crate::outln!("  reason {}", report.reason)?;
    }
    Ok(0)
}

/// Uploads `file` to `url`, refusing to replace an existing object unless `force`.
async fn upload(file: &Path, url: &url::Url, force: bool) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let (store, path) = crate::source::store_for_url(url)?;
    if !force && store.head(&path).await.is_ok() {
        return Err(AppError::Usage(format!(
            "{url} exists: pass --force to overwrite it or choose another -o"
        )));
    }
    let mut input = tokio::fs::File::open(file)
        .await
        .map_err(|e| AppError::Io {
            what: format!("open {}", file.display()),
            source: e,
        })?;
    let mut writer = object_store::buffered::BufWriter::new(store, path);
    let io_err = |e: std::io::Error| AppError::Io {
        what: format!("upload to {url}"),
        source: e,
    };
    tokio::io::copy(&mut input, &mut writer)
        .await
        .map_err(io_err)?;
    writer.shutdown().await.map_err(io_err)?;
    Ok(())
}
