//! The HTTP side: the four LiveKit endpoints and `/healthz`, and the gate every
//! `/observability` request passes first (authentication and a declared length over the limit
//! are refused before any body is read; the body is then guarded and time-limited). Handlers
//! decode, validate and hand over to the session table; they never touch the file system
//! except through `recording::receive` with a validated session id.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use calltape_recorder::validate_session_id;
use http_body_util::BodyExt;

use crate::body_guard;
use crate::otlp;
use crate::recording::{self, StagedRecording};
use crate::reply::{otlp_ok, Refusal};
use crate::server::Shared;
use crate::sessions::{Full, Taken};
use crate::status::Counters;

pub const TRACES_PATH: &str = "/observability/traces/otlp/v0";
pub const LOGS_PATH: &str = "/observability/logs/otlp/v0";
pub const METRICS_PATH: &str = "/observability/metrics/otlp/v0";
pub const RECORDINGS_PATH: &str = "/observability/recordings/v0";

/// Longest a request may take, body included (livekit-agents gives its recording upload
/// 900 s; a client that stalls longer only holds a connection and a staging folder).
const RECORDING_TIME: Duration = Duration::from_secs(900);
const OTLP_TIME: Duration = Duration::from_secs(60);

/// The collector's routes over its shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // the body guard of `gate` enforces the limits (and drains, see body_guard)
    let observability = Router::new()
        .route(TRACES_PATH, post(traces))
        .route(LOGS_PATH, post(logs))
        .route(METRICS_PATH, post(metrics))
        .route(RECORDINGS_PATH, post(recordings))
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(observability)
        .with_state(shared)
}

/// Authentication and early size checks for every `/observability` route, before the body
/// is read.
async fn gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    Counters::add(&s.counters.requests, 1);
    let path = req.uri().path().to_string();
    let early = check_early(&s, &req);
    let resp =
        match early {
            Err(r) => {
                tracing::warn!(%path, status = r.status().as_u16(), reason = %r, "request refused");
                r.into_response()
            }
            Ok((limit, what)) => {
                let (parts, body) = req.into_parts();
                let (body, wire) = body_guard::guard(body, limit);
                let budget = if path == RECORDINGS_PATH {
                    RECORDING_TIME
                } else {
                    OTLP_TIME
                };
                let resp =
                    match tokio::time::timeout(budget, next.run(Request::from_parts(parts, body)))
                        .await
                    {
                        Ok(resp) => resp,
                        Err(_) => Refusal::Timeout(budget).into_response(),
                    };
                if wire.tripped() {
                    // whatever the handler made of the cut-off body, the answer is 413
                    wire.drain().await;
                    let r = Refusal::TooLarge { what, limit };
                    tracing::warn!(%path, status = 413, reason = %r, "request refused");
                    r.into_response()
                } else {
                    if !resp.status().is_success() {
                        tracing::warn!(%path, status = resp.status().as_u16(), "request refused");
                    }
                    resp
                }
            }
        };
    if !resp.status().is_success() {
        Counters::add(&s.counters.refused, 1);
    }
    resp
}

/// What can be refused from the headers alone: shutdown, the token, a declared length
/// over the limit.
fn check_early(s: &Shared, req: &Request) -> Result<(u64, &'static str), Refusal> {
    if s.closing.load(Ordering::Relaxed) {
        return Err(Refusal::ShuttingDown);
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.config
        .credentials
        .check(auth)
        .map_err(Refusal::Unauthorized)?;
    let limits = &s.config.limits;
    let (limit, what) = if req.uri().path() == RECORDINGS_PATH {
        (limits.recording_body, "the recording upload")
    } else {
        (limits.otlp_body, "the OTLP body")
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Refusal::TooLarge { what, limit });
    }
    Ok((limit, what))
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let h = s.recorder.health();
    let body = serde_json::json!({
        "status": if s.closing.load(Ordering::Relaxed) { "stopping" } else { "ok" },
        "open_sessions": s.sessions.open_count(),
        "telemetry_bytes": s.sessions.telemetry_bytes(),
        "recorder_errors": h.errors,
        "recorder_last_error": h.last_error,
        "counters": s.counters.snapshot(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The OTLP body: protobuf only, read within the limit and decompressed within it.
async fn otlp_body(s: &Shared, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(ct.is_empty()
        || ct.starts_with("application/x-protobuf")
        || ct.starts_with("application/protobuf"))
    {
        return Err(Refusal::UnsupportedMedia(format!(
            "Content-Type `{ct}`: this collector reads OTLP as protobuf (application/x-protobuf)"
        )));
    }
    let limit = s.config.limits.otlp_body;
    // past the limit the guard ends the body in an error and `gate` answers 413
    let raw: Bytes = body
        .collect()
        .await
        .map_err(|e| Refusal::BadRequest(format!("the body could not be read: {e}")))?
        .to_bytes();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    otlp::decompress(&raw, encoding, limit)
}

fn busy(full: Full) -> Refusal {
    Refusal::Busy {
        reason: full.to_string(),
        retry_after: Duration::from_secs(10),
    }
}

fn valid(id: &str) -> bool {
    validate_session_id(id).is_ok()
}

fn count_taken(s: &Shared, t: Taken) {
    Counters::add(&s.counters.telemetry_dropped, t.dropped);
    Counters::add(&s.counters.telemetry_late, t.late);
}

async fn traces(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let run = async {
        let bytes = otlp_body(&s, &headers, body).await?;
        let batch = otlp::decode_traces(&bytes)?;
        Counters::add(&s.counters.telemetry_unattributed, batch.unattributed);
        for (id, spans) in batch.by_session {
            if !valid(&id) {
                return Err(Refusal::BadRequest(format!(
                    "a span's job_id `{}` cannot name a session (1-128 bytes of [A-Za-z0-9._:-], no `..`)",
                    id.escape_debug()
                )));
            }
            Counters::add(&s.counters.spans, spans.len());
            let taken = s.sessions.add_spans(&id, spans).map_err(busy)?;
            count_taken(&s, taken);
        }
        Ok::<_, Refusal>(otlp_ok())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn logs(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let run = async {
        let bytes = otlp_body(&s, &headers, body).await?;
        let batch = otlp::decode_logs(&bytes)?;
        Counters::add(&s.counters.telemetry_unattributed, batch.unattributed);
        for (id, logs) in batch.by_session {
            if !valid(&id) {
                return Err(Refusal::BadRequest(format!(
                    "a log record's job_id `{}` cannot name a session (1-128 bytes of [A-Za-z0-9._:-], no `..`)",
                    id.escape_debug()
                )));
            }
            Counters::add(&s.counters.logs, logs.len());
            let taken = s.sessions.add_logs(&id, logs).map_err(busy)?;
            count_taken(&s, taken);
        }
        Ok::<_, Refusal>(otlp_ok())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let run = async {
        let bytes = otlp_body(&s, &headers, body).await?;
        let n = otlp::count_metrics(&bytes)?;
        Counters::add(&s.counters.metric_points, n);
        Ok::<_, Refusal>(otlp_ok())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn recordings(
    State(s): State<Arc<Shared>>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let run = async {
        let multipart = multipart.map_err(|e| {
            Refusal::BadRequest(format!(
                "expected a multipart/form-data body with the parts header, chat_history and \
                 audio: {}",
                e.body_text()
            ))
        })?;
        let staged: StagedRecording =
            recording::receive(multipart, &s.inbox, &s.config.limits, |id| {
                validate_session_id(id).map_err(|e| e.to_string())
            })
            .await?;
        let id = staged.session_id.clone();
        let dir = staged.dir.clone();
        match s.sessions.add_recording(staged) {
            Ok(_) => {}
            Err(full) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(busy(full));
            }
        }
        Counters::add(&s.counters.recordings, 1);
        tracing::info!(session_id = %id, "recording received");
        Ok::<_, Refusal>((StatusCode::OK, "").into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
