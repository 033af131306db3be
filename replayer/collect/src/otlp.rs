//! OTLP/HTTP protobuf requests (traces, logs, metrics) as LiveKit Agents export them:
//! gzip-compressed `Export*ServiceRequest` bodies. Decompression is bounded (a gzip bomb
//! stops at the OTLP limit), and every span and log record is sorted to its session by the
//! `job_id` LiveKit stamps on it (record attributes, then scope, then resource).

use std::io::Read;

use calltape_format::Attributes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{json, Value};

use crate::reply::Refusal;

/// One finished span of a session.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub start_unix_ns: i64,
    pub end_unix_ns: i64,
    /// The status message when the span ended in error.
    pub error: Option<String>,
    pub attributes: Attributes,
    /// Encoded size, charged to the session's telemetry budget.
    pub size: usize,
}

/// One log record of a session.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub time_unix_ns: i64,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The logger (instrumentation scope) name.
    pub target: String,
    pub message: String,
    pub fields: Attributes,
    pub size: usize,
}

/// Telemetry of one request, split by session (job id). Records without a job id are
/// counted in `unattributed`.
#[derive(Debug)]
pub struct Batch<T> {
    pub by_session: Vec<(String, Vec<T>)>,
    pub unattributed: usize,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch {
            by_session: Vec::new(),
            unattributed: 0,
        }
    }
}

impl<T> Batch<T> {
    fn push(&mut self, job: Option<String>, item: T) {
        let Some(job) = job else {
            self.unattributed += 1;
            return;
        };
        match self.by_session.iter_mut().find(|(j, _)| *j == job) {
            Some((_, v)) => v.push(item),
            None => self.by_session.push((job, vec![item])),
        }
    }
}

/// The request body, decompressed per `Content-Encoding` (`gzip` or none) within `limit`.
pub fn decompress(body: &[u8], encoding: Option<&str>, limit: u64) -> Result<Vec<u8>, Refusal> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            let mut dec = flate2::read::GzDecoder::new(body).take(limit + 1);
            dec.read_to_end(&mut out).map_err(|e| {
                Refusal::BadRequest(format!("the gzip body cannot be decompressed: {e}"))
            })?;
            if out.len() as u64 > limit {
                return Err(Refusal::TooLarge {
                    what: "the decompressed OTLP body",
                    limit,
                });
            }
            Ok(out)
        }
        Some(other) => Err(Refusal::UnsupportedMedia(format!(
            "Content-Encoding `{other}` (this collector reads gzip or uncompressed OTLP)"
        ))),
    }
}

fn bad_protobuf(what: &str, e: prost::DecodeError) -> Refusal {
    Refusal::BadRequest(format!(
        "the body is not a valid OTLP {what} protobuf ({e}); send \
         Content-Type: application/x-protobuf"
    ))
}

/// Spans of an `ExportTraceServiceRequest`.
pub fn decode_traces(body: &[u8]) -> Result<Batch<SpanRecord>, Refusal> {
    let req = ExportTraceServiceRequest::decode(body).map_err(|e| bad_protobuf("traces", e))?;
    let mut batch = Batch::default();
    for rs in req.resource_spans {
        let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.attributes).unwrap_or_default();
            for span in ss.spans {
                let job = job_id(&[&span.attributes, &scope, &resource]);
                let size = span.encoded_len();
                let error = span
                    .status
                    .as_ref()
                    .filter(|s| s.code == StatusCode::Error as i32)
                    .map(|s| s.message.clone());
                let record = SpanRecord {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    start_unix_ns: clamp_ns(span.start_time_unix_nano),
                    end_unix_ns: clamp_ns(span.end_time_unix_nano),
                    error,
                    attributes: attributes(&span.attributes),
                    size,
                };
                batch.push(job, record);
            }
        }
    }
    Ok(batch)
}

/// Log records of an `ExportLogsServiceRequest`.
pub fn decode_logs(body: &[u8]) -> Result<Batch<LogRecord>, Refusal> {
    let req = ExportLogsServiceRequest::decode(body).map_err(|e| bad_protobuf("logs", e))?;
    let mut batch = Batch::default();
    for rl in req.resource_logs {
        let resource = rl.resource.map(|r| r.attributes).unwrap_or_default();
        for sl in rl.scope_logs {
            let (scope_name, scope) = sl.scope.map(|s| (s.name, s.attributes)).unwrap_or_default();
            for log in sl.log_records {
                let job = job_id(&[&log.attributes, &scope, &resource]);
                let size = log.encoded_len();
                let time = if log.time_unix_nano != 0 {
                    log.time_unix_nano
                } else {
                    log.observed_time_unix_nano
                };
                let mut fields = attributes(&log.attributes);
                if !log.severity_text.is_empty() {
                    fields.insert("severity_text".into(), json!(log.severity_text));
                }
                let message = match log.body.as_ref().map(any_value) {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let record = LogRecord {
                    time_unix_ns: clamp_ns(time),
                    level: level(log.severity_number),
                    target: fields
                        .get("logger.name")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .unwrap_or_else(|| scope_name.clone()),
                    message,
                    fields,
                    size,
                };
                batch.push(job, record);
            }
        }
    }
    Ok(batch)
}

/// Data points in an `ExportMetricsServiceRequest` (validated and counted only).
pub fn count_metrics(body: &[u8]) -> Result<usize, Refusal> {
    let req = ExportMetricsServiceRequest::decode(body).map_err(|e| bad_protobuf("metrics", e))?;
    Ok(req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .map(|s| s.metrics.len())
        .sum())
}

/// OTLP severity numbers (1–24) to calltape log levels.
fn level(severity: i32) -> &'static str {
    match severity {
        1..=4 => "trace",
        5..=8 => "debug",
        13..=16 => "warn",
        17..=24 => "error",
        _ => "info",
    }
}

fn clamp_ns(ns: u64) -> i64 {
    ns.min(i64::MAX as u64) as i64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `job_id` attribute found, in order of precedence.
fn job_id(sets: &[&Vec<KeyValue>]) -> Option<String> {
    sets.iter().find_map(|set| {
        set.iter()
            .find(|kv| kv.key == "job_id" || kv.key == "lk.job_id")
            .and_then(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Av::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                },
            )
    })
}

/// OTLP attributes as a JSON object (later keys win).
pub fn attributes(kvs: &[KeyValue]) -> Attributes {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_value),
            )
        })
        .collect()
}

/// An OTLP value as JSON. Nesting is bounded by the protobuf decoder's recursion limit.
fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Av::StringValue(s)) => json!(s),
        Some(Av::BoolValue(b)) => json!(b),
        Some(Av::IntValue(i)) => json!(i),
        Some(Av::DoubleValue(d)) => json!(d),
        Some(Av::BytesValue(b)) => json!(hex(b)),
        Some(Av::ArrayValue(a)) => Value::Array(a.values.iter().map(any_value).collect()),
        Some(Av::KvlistValue(kv)) => Value::Object(attributes(&kv.values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_refused_not_panicked_on() {
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(matches!(decode_traces(&noise), Err(Refusal::BadRequest(_))));
        assert!(matches!(decode_logs(&noise), Err(Refusal::BadRequest(_))));
        assert!(matches!(count_metrics(&noise), Err(Refusal::BadRequest(_))));
        assert!(matches!(
            decompress(&noise, Some("gzip"), 1 << 20),
            Err(Refusal::BadRequest(_))
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        match decompress(&bomb, Some("gzip"), 1 << 20) {
            Err(Refusal::TooLarge { limit, .. }) => assert_eq!(limit, 1 << 20),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
