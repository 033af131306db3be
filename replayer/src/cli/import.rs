//! `calltape import livekit|pipecat`: turns a call recorded by another framework into an
//! ordinary archive, written to a file (`-o`) or uploaded to an object store (`--to`).

use std::path::{Path, PathBuf};

use object_store::{ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::error::{AppError, Result};
use crate::source::{store_for_url, Location};
use calltape_import::{
    self as import, audio, livekit, pipecat, ImportError, ImportOutcome, ImportedCall,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(clap::Subcommand)]
pub enum Source {
    /// A LiveKit Agents session report (`SessionReport.to_dict()`, e.g. the
    /// session_report.json `console --record` writes; its audio.ogg is used when present).
    Livekit(Common),
    /// A Pipecat Whisker recording (`WhiskerFile`'s .whisk, MessagePack) or a Pipecat Tail
    /// session file (JSON Lines), with an optional stereo WAV from Pipecat's
    /// AudioBufferProcessor (user left, bot right).
    Pipecat(Common),
}

#[derive(clap::Args)]
pub struct Common {
    /// The report (LiveKit: session_report.json) or recording (Pipecat: Whisker .whisk or Tail
    /// session .jsonl) to import.
    pub input: PathBuf,
    /// The call's recording: OGG/Opus or WAV, stereo with the user on channel 0 (left) and
    /// the agent on channel 1 (right). LiveKit default: the report's audio_recording_path or
    /// audio.ogg beside the report.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// Import without audio even if a recording is found.
    #[arg(long, conflicts_with = "audio")]
    pub no_audio: bool,
    /// Session time (seconds, may be negative) of the recording's first sample. Default:
    /// LiveKit audio_recording_started_at; Pipecat when its AudioBufferProcessor started
    /// recording (seen in the Whisker recording), else 0.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub audio_offset: Option<f64>,
    /// Output archive (default: the input's name with the .calltape extension).
    #[arg(short = 'o', long, value_name = "OUT.calltape", conflicts_with = "to")]
    pub output: Option<PathBuf>,
    /// Upload the archive to an object store URL instead (s3://bucket/key.calltape; a URL
    /// ending in / gets <session_id>.calltape appended).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Livekit,
    Pipecat,
}

pub async fn run(args: Args) -> Result<i32> {
    let (kind, common) = match args.source {
        Source::Livekit(c) => (Kind::Livekit, c),
        Source::Pipecat(c) => (Kind::Pipecat, c),
    };
    let remote = match &common.to {
        Some(to) => match Location::parse(to)? {
            Location::Url(url) => Some(url),
            Location::File(_) => {
                return Err(AppError::Usage(format!(
                    "--to wants an object store URL such as s3://bucket/call.calltape, not \
                     '{to}' (use -o for a local file)"
                )))
            }
        },
        None => None,
    };
    let output = match (&remote, &common.output) {
        (Some(_), _) => None,
        (None, Some(o)) => Some(o.clone()),
        (None, None) => Some(common.input.with_extension("calltape")),
    };
    if let Some(out) = &output {
        if out.exists() && !common.force {
            return Err(AppError::Usage(format!(
                "{} exists; pass --force to overwrite it or -o to choose another name",
                out.display()
            )));
        }
    }
    let local = match &output {
        Some(o) => o.clone(),
        None => std::env::temp_dir().join(format!(
            "calltape-import-{}-{}.calltape",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        )),
    };
    let staging = staging_path(&local);
    let job_staging = staging.clone();
    let job = tokio::task::spawn_blocking(move || {
        import_to_file(
            kind,
            &common.input,
            common.audio.as_deref(),
            common.no_audio,
            common.audio_offset,
            &job_staging,
        )
    });
    let result = job
        .await
        .map_err(|e| AppError::Other(format!("import task failed: {e}")))?;
    let (outcome, audio_used) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(AppError::Other(e.to_string()));
        }
    };
    for w in &outcome.warnings {
        crate::errln!("calltape import: warning: {w}");
    }
    let dest = match &remote {
        None => {
            std::fs::rename(&staging, &local).map_err(|e| AppError::Io {
                what: format!("rename {} to {}", staging.display(), local.display()),
                source: e,
            })?;
            local.display().to_string()
        }
        Some(url) => {
            let mut url = url.clone();
            if url.path().ends_with('/') {
                let name = format!("{}.calltape", outcome.summary.header.session_id);
                let path = format!("{}{name}", url.path());
                url.set_path(&path);
            }
            let uploaded = upload(&staging, &url).await;
            let _ = std::fs::remove_file(&staging);
            uploaded?;
            url.to_string()
        }
    };
    let s = &outcome.summary;
    let rate = s.header.tracks.first().map_or(0, |t| t.sample_rate);
    let audio_note = match (&audio_used, rate) {
        (Some(p), r) if r > 0 => format!(
            ", {:.1} s of audio from {}",
            outcome.audio_frames as f64 / f64::from(r),
            p.display()
        ),
        _ => ", no audio".into(),
    };
    let n = outcome.warnings.len();
    crate::outln!(
        "imported {} turns, {} records{audio_note} -> {dest} ({n} warning{})",
        s.totals.turns,
        s.totals.records,
        if n == 1 { "" } else { "s" }
    )?;
    Ok(0)
}

/// Where the archive is written before it is complete: `.NAME.importing` beside it, renamed
/// at the end, so a failed import never leaves a half-written archive under the real name.
fn staging_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.calltape".into());
    out.with_file_name(format!(".{name}.importing"))
}

/// Reads the input and the audio and writes the archive to `path`. Returns the outcome and
/// the recording used.
fn import_to_file(
    kind: Kind,
    input: &Path,
    audio_arg: Option<&Path>,
    no_audio: bool,
    offset: Option<f64>,
    path: &Path,
) -> std::result::Result<(ImportOutcome, Option<PathBuf>), ImportError> {
    let mut call: ImportedCall = match kind {
        Kind::Livekit => livekit::import_file(input)?,
        Kind::Pipecat => pipecat::import_file(input, audio_arg.filter(|_| !no_audio))?,
    };
    let audio_path = match (no_audio, audio_arg, kind) {
        (true, _, _) => None,
        (false, Some(p), _) => Some(p.to_path_buf()),
        (false, None, Kind::Livekit) => livekit::default_audio(input, &call),
        (false, None, Kind::Pipecat) => None,
    };
    if let Some(s) = offset {
        call.audio_start_ns = import::clock::seconds_to_ns(s);
    }
    if audio_path.is_none() && !no_audio {
        let mut w = import::Warnings::default();
        w.general(
            "no_audio",
            match kind {
                Kind::Livekit => {
                    "no recording found (no --audio, no audio_recording_path file, no audio.ogg \
                     beside the report): the archive has no audio tracks"
                }
                Kind::Pipecat => "no --audio given: the archive has no audio tracks",
            },
            serde_json::Value::Null,
        );
        call.warnings.extend(w.into_vec());
    }
    let decoder = match &audio_path {
        Some(p) => Some(audio::open(p)?),
        None => None,
    };
    let file = std::fs::File::create(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let (out, outcome) = import::write_archive(
        call,
        decoder,
        std::io::BufWriter::with_capacity(1 << 20, file),
    )?;
    let file = out.into_inner().map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok((outcome, audio_path))
}

/// Uploads a finished archive in 8 MiB parts.
async fn upload(path: &Path, url: &url::Url) -> Result<()> {
    let (store, key) = store_for_url(url)?;
    let loc = url.as_str();
    let io = |what: &str, e| AppError::Io {
        what: format!("{what} {}", path.display()),
        source: e,
    };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io("open", e))?;
    let upload = store
        .put_multipart(&key)
        .await
        .map_err(|e| AppError::store(loc, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        writer
            .wait_for_capacity(4)
            .await
            .map_err(|e| AppError::store(loc, e))?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map_err(|e| AppError::store(loc, e))?;
    Ok(())
}
