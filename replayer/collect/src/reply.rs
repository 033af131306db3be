//! The collector's answers, as LiveKit's exporters read them. Success: 200 (OTLP endpoints
//! with the empty `Export*ServiceResponse`, i.e. an empty protobuf body). Refusals: a status
//! and a plain sentence saying what failed and what to do. When the collector is full (503)
//! the body is a `google.rpc.Status` carrying a `RetryInfo` detail and the response has
//! `Retry-After`: the recording uploader of livekit-agents retries only when it finds that
//! detail, and OTLP exporters retry 503 by themselves.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;

use crate::auth::Denied;

/// Why a request was not accepted.
#[derive(Debug)]
pub enum Refusal {
    Unauthorized(Denied),
    /// Malformed protobuf, multipart, JSON or Ogg: what and why.
    BadRequest(String),
    TooLarge {
        what: &'static str,
        limit: u64,
    },
    UnsupportedMedia(String),
    /// Too many sessions or too much telemetry held: retry after the hint.
    Busy {
        reason: String,
        retry_after: Duration,
    },
    /// The request took longer than allowed.
    Timeout(Duration),
    /// The collector failed on its own side (disk): the client should retry later.
    Internal(String),
    ShuttingDown,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::Busy { .. } | Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unauthorized(d) => write!(f, "unauthorized: {d}"),
            Refusal::BadRequest(m) => write!(f, "bad request: {m}"),
            Refusal::TooLarge { what, limit } => write!(
                f,
                "{what} is larger than this collector accepts ({limit} bytes); raise the limit \
                 with the matching `calltape collect --max-*` option"
            ),
            Refusal::UnsupportedMedia(m) => write!(f, "unsupported media type: {m}"),
            Refusal::Busy { reason, .. } => write!(f, "busy: {reason}; retry later"),
            Refusal::Timeout(d) => write!(
                f,
                "the request took longer than {} s; nothing of it was kept",
                d.as_secs()
            ),
            Refusal::Internal(m) => write!(f, "collector error: {m}; retry later"),
            Refusal::ShuttingDown => write!(f, "the collector is shutting down; retry later"),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let text = self.to_string();
        match self {
            Refusal::Busy { retry_after, .. } => {
                retry_response(status, &text, retry_after).into_response()
            }
            Refusal::ShuttingDown | Refusal::Internal(_) => {
                retry_response(status, &text, Duration::from_secs(5)).into_response()
            }
            _ => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                text,
            )
                .into_response(),
        }
    }
}

/// An OTLP success: 200 with an empty `Export*ServiceResponse` (no partial success).
pub fn otlp_ok() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response()
}

#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// gRPC code UNAVAILABLE.
const UNAVAILABLE: i32 = 14;

/// A `google.rpc.Status` (UNAVAILABLE, with a `RetryInfo`) body and a `Retry-After` header.
fn retry_response(status: StatusCode, message: &str, after: Duration) -> Response {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: after.as_secs() as i64,
            nanos: after.subsec_nanos() as i32,
        }),
    };
    let body = Status {
        code: UNAVAILABLE,
        message: message.into(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body.encode_to_vec(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
