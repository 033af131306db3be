//! The session recording upload (`POST /observability/recordings/v0`), as livekit-agents'
//! `_upload_session_report` sends it: a `multipart/form-data` body with the parts `header`
//! (`MetricsRecordingHeader` protobuf), `chat_history` (JSON, when transcripts are on) and
//! `audio` (`recording.ogg`, Ogg Opus, when audio is on).
//!
//! The parts are staged on disk under a name the collector chooses, never one from the
//! request; only once the header is decoded and its job id validated is the folder renamed
//! to `<inbox>/<session id>`. A refused upload leaves nothing behind. The audio streams to
//! disk in the chunks it arrives in, so a 256 MiB recording never sits in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::http::StatusCode;
use prost::Message;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::limits::Limits;
use crate::reply::Refusal;

pub const HEADER_FILE: &str = "header.binpb";
pub const CHAT_FILE: &str = "chat_history.json";
pub const AUDIO_FILE: &str = "recording.ogg";

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `livekit.MetricsRecordingHeader` (livekit-protocol `livekit_metrics.proto`), field numbers
/// as in the Python package's descriptor.
#[derive(Clone, PartialEq, Message)]
pub struct MetricsRecordingHeader {
    #[prost(string, tag = "1")]
    pub room_id: String,
    /// Milliseconds.
    #[prost(uint64, tag = "3")]
    pub duration: u64,
    /// When the audio recording started.
    #[prost(message, optional, tag = "4")]
    pub start_time: Option<Timestamp>,
    #[prost(map = "string, string", tag = "5")]
    pub room_tags: std::collections::HashMap<String, String>,
    #[prost(string, tag = "6")]
    pub room_name: String,
    #[prost(message, optional, tag = "7")]
    pub room_start_time: Option<Timestamp>,
    #[prost(string, tag = "8")]
    pub job_id: String,
    #[prost(bool, tag = "9")]
    pub simulated: bool,
    #[prost(bool, tag = "10")]
    pub redaction_enabled: bool,
    /// `SessionReport.to_dict(include_chat_history=False, include_events=False)` as JSON.
    #[prost(string, tag = "11")]
    pub session_summary: String,
}

impl MetricsRecordingHeader {
    /// The session this recording belongs to: the job id, else the room id.
    pub fn session_key(&self) -> &str {
        if self.job_id.is_empty() {
            &self.room_id
        } else {
            &self.job_id
        }
    }

    /// `start_time` as unix nanoseconds (`None` when absent or 0).
    pub fn start_unix_ns(&self) -> Option<i64> {
        let t = self.start_time.as_ref()?;
        let ns = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
        (ns > 0 && ns < i128::from(i64::MAX)).then_some(ns as i64)
    }
}

/// A recording upload on disk, waiting to be assembled.
#[derive(Debug, Clone)]
pub struct StagedRecording {
    pub session_id: String,
    pub dir: PathBuf,
    pub header: MetricsRecordingHeader,
    pub has_chat: bool,
    pub has_audio: bool,
}

impl StagedRecording {
    pub fn chat_path(&self) -> Option<PathBuf> {
        self.has_chat.then(|| self.dir.join(CHAT_FILE))
    }
    pub fn audio_path(&self) -> Option<PathBuf> {
        self.has_audio.then(|| self.dir.join(AUDIO_FILE))
    }
}

static STAGING: AtomicU64 = AtomicU64::new(0);

/// Receives one upload into `inbox`. `validate_id` vets the session id before any path is
/// made from it.
pub async fn receive(
    mut multipart: Multipart,
    inbox: &Path,
    limits: &Limits,
    validate_id: impl Fn(&str) -> Result<(), String>,
) -> Result<StagedRecording, Refusal> {
    let staging = inbox.join(format!(
        ".incoming-{}-{}",
        std::process::id(),
        STAGING.fetch_add(1, Ordering::Relaxed)
    ));
    // removes the folder if this future is dropped half way (client gone, timeout, shutdown)
    let mut cleanup = RemoveOnDrop(Some(staging.clone()));
    let result = async {
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| Refusal::Internal(format!("cannot create {}: {e}", staging.display())))?;
        receive_parts(&mut multipart, &staging, limits, &validate_id).await
    }
    .await;
    match result {
        Ok((header, has_chat, has_audio)) => {
            let session_id = header.session_key().to_string();
            let dir = inbox.join(&session_id);
            // a retried upload replaces the earlier one
            if tokio::fs::metadata(&dir).await.is_ok() {
                let _ = tokio::fs::remove_dir_all(&dir).await;
            }
            if let Err(e) = tokio::fs::rename(&staging, &dir).await {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                return Err(Refusal::Internal(format!(
                    "cannot move the upload to {}: {e}",
                    dir.display()
                )));
            }
            cleanup.0 = None;
            sync_dir(inbox).await;
            Ok(StagedRecording {
                session_id,
                dir,
                header,
                has_chat,
                has_audio,
            })
        }
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            Err(e)
        }
    }
}

/// A staging folder removed when dropped, unless taken.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn receive_parts(
    multipart: &mut Multipart,
    staging: &Path,
    limits: &Limits,
    validate_id: &impl Fn(&str) -> Result<(), String>,
) -> Result<(MetricsRecordingHeader, bool, bool), Refusal> {
    let mut header = None;
    let mut has_chat = false;
    let mut has_audio = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_refusal(e, limits))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "header" => {
                let bytes =
                    read_small(field, limits.header_part, "the `header` part", limits).await?;
                let h = MetricsRecordingHeader::decode(bytes.as_slice()).map_err(|e| {
                    Refusal::BadRequest(format!(
                        "the `header` part is not a MetricsRecordingHeader protobuf: {e}"
                    ))
                })?;
                if h.session_key().is_empty() {
                    return Err(Refusal::BadRequest(
                        "the `header` part has neither job_id nor room_id".into(),
                    ));
                }
                validate_id(h.session_key()).map_err(|why| {
                    Refusal::BadRequest(format!(
                        "the header's job id `{}` cannot name a session: {why}",
                        h.session_key().escape_debug()
                    ))
                })?;
                if !h.session_summary.is_empty() {
                    match serde_json::from_str::<Value>(&h.session_summary) {
                        Ok(Value::Object(_)) => {}
                        Ok(_) => {
                            return Err(Refusal::BadRequest(
                                "the header's session_summary is not a JSON object".into(),
                            ))
                        }
                        Err(e) => {
                            return Err(Refusal::BadRequest(format!(
                                "the header's session_summary is not valid JSON: {e}"
                            )))
                        }
                    }
                }
                write_file(&staging.join(HEADER_FILE), &bytes).await?;
                header = Some(h);
            }
            "chat_history" => {
                // to disk, like the audio: a few hundred uploads at once must not hold their
                // transcripts in memory
                let path = staging.join(CHAT_FILE);
                let part = (limits.chat_history_part, "the `chat_history` part");
                stream_to_file(field, &path, limits, Some(part)).await?;
                check_json_object(&path).await?;
                has_chat = true;
            }
            "audio" => {
                let path = staging.join(AUDIO_FILE);
                let n = stream_to_file(field, &path, limits, None).await?;
                if n > 0 {
                    check_ogg(&path).await?;
                    has_audio = true;
                }
            }
            other => {
                tracing::warn!(
                    part = other,
                    "ignoring an unknown part of a recording upload"
                );
                let mut field = field;
                while field
                    .chunk()
                    .await
                    .map_err(|e| multipart_refusal(e, limits))?
                    .is_some()
                {}
            }
        }
    }
    let header = header.ok_or_else(|| {
        Refusal::BadRequest("the upload has no `header` part (MetricsRecordingHeader)".into())
    })?;
    Ok((header, has_chat, has_audio))
}

fn multipart_refusal(e: MultipartError, limits: &Limits) -> Refusal {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::TooLarge {
            what: "the recording upload",
            limit: limits.recording_body,
        }
    } else {
        Refusal::BadRequest(format!(
            "the multipart body is malformed or truncated: {}",
            e.body_text()
        ))
    }
}

async fn read_small(
    mut field: Field<'_>,
    limit: u64,
    what: &'static str,
    limits: &Limits,
) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_refusal(e, limits))?
    {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(Refusal::TooLarge { what, limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Streams a part to `path`; `part_limit` bounds it below the whole body's limit.
async fn stream_to_file(
    mut field: Field<'_>,
    path: &Path,
    limits: &Limits,
    part_limit: Option<(u64, &'static str)>,
) -> Result<u64, Refusal> {
    let io = |e: std::io::Error| Refusal::Internal(format!("writing {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut n = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_refusal(e, limits))?
    {
        n += chunk.len() as u64;
        if let Some((limit, what)) = part_limit.filter(|(l, _)| n > *l) {
            return Err(Refusal::TooLarge { what, limit });
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    Ok(n)
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Refusal> {
    let io = |e: std::io::Error| Refusal::Internal(format!("writing {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    file.write_all(bytes).await.map_err(io)?;
    file.sync_all().await.map_err(io)
}

/// The chat history must be one JSON object (`ChatContext.to_dict()`); checked without
/// building it in memory.
async fn check_json_object(path: &Path) -> Result<(), Refusal> {
    let p = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let file = std::fs::File::open(&p).map_err(|e| e.to_string())?;
        let mut reader = std::io::BufReader::new(file);
        let first = loop {
            let buf = std::io::BufRead::fill_buf(&mut reader).map_err(|e| e.to_string())?;
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => break Some(buf[i]),
                None if buf.is_empty() => break None,
                None => {
                    let n = buf.len();
                    std::io::BufRead::consume(&mut reader, n);
                }
            }
        };
        if first != Some(b'{') {
            return Err("it is not a JSON object (expected ChatContext.to_dict(): \
                        {\"items\": [...]})"
                .into());
        }
        serde_json::from_reader::<_, serde::de::IgnoredAny>(reader)
            .map(|_| ())
            .map_err(|e| format!("it is not valid JSON: {e}"))
    })
    .await
    .map_err(|e| Refusal::Internal(format!("checking the chat history: {e}")))?;
    checked.map_err(|why| Refusal::BadRequest(format!("the `chat_history` part: {why}")))
}

/// The audio part must open as Ogg Opus (damage further in becomes archive warnings).
async fn check_ogg(path: &Path) -> Result<(), Refusal> {
    let p = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&p).map_err(|e| e.to_string())?;
        calltape_import::audio::ogg_opus::OggOpusDecoder::new(
            std::io::BufReader::new(file),
            "the `audio` part",
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| Refusal::Internal(format!("checking the audio: {e}")))?;
    checked.map_err(|why| Refusal::BadRequest(format!("the `audio` part is not Ogg Opus: {why}")))
}

/// Makes a rename in `dir` durable (best effort: not every file system supports it).
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

/// Reads back a staged recording (after a restart): `None` when the folder holds no
/// readable header.
pub fn load_staged(dir: &Path, session_id: &str) -> Option<StagedRecording> {
    let bytes = std::fs::read(dir.join(HEADER_FILE)).ok()?;
    let header = MetricsRecordingHeader::decode(bytes.as_slice()).ok()?;
    Some(StagedRecording {
        session_id: session_id.to_string(),
        dir: dir.to_path_buf(),
        header,
        has_chat: dir.join(CHAT_FILE).is_file(),
        has_audio: dir.join(AUDIO_FILE).is_file(),
    })
}
