//! A collector on loopback for the integration tests, and a raw HTTP/1.1 client that can
//! send what a well-behaved client never would (truncated bodies, lying lengths, endless
//! chunked streams).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use calltape_collect::auth::Credentials;
use calltape_collect::recording::{MetricsRecordingHeader, Timestamp};
use calltape_collect::server::StopReport;
pub use calltape_collect::Limits;
use calltape_collect::{Collector, CollectorConfig, StatusSink};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const KEY: &str = "APItest";
pub const SECRET: &str = "test-secret-0123456789abcdef0123";
pub const TRACES: &str = "/observability/traces/otlp/v0";
pub const LOGS: &str = "/observability/logs/otlp/v0";
pub const METRICS: &str = "/observability/metrics/otlp/v0";
pub const RECORDINGS: &str = "/observability/recordings/v0";
pub const BOUNDARY: &str = "calltapeTestBoundary";
pub const MULTIPART: &str = "multipart/form-data; boundary=calltapeTestBoundary";
pub const PROTOBUF: &str = "application/x-protobuf";

pub struct TestCollector {
    pub addr: SocketAddr,
    pub dest: tempfile::TempDir,
    pub spool: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<StopReport>>>,
}

impl TestCollector {
    pub async fn start(limits: Limits) -> TestCollector {
        Self::start_in(
            limits,
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        )
        .await
    }

    /// A collector on existing destination and spool folders (a restart).
    pub async fn start_in(
        limits: Limits,
        dest: tempfile::TempDir,
        spool: tempfile::TempDir,
    ) -> TestCollector {
        let config = CollectorConfig {
            credentials: Credentials::new(KEY, SECRET),
            destination: format!("file://{}", dest.path().display()),
            spool: spool.path().to_path_buf(),
            limits,
            status: StatusSink { json: false },
            shutdown_deadline: Duration::from_secs(60),
        };
        let collector = Collector::start(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(collector.serve(listener, async move {
            let _ = rx.await;
        }));
        TestCollector {
            addr,
            dest,
            spool,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Kills the server as a crash would: no shutdown, nothing finished. Returns the folders.
    pub async fn crash(mut self) -> (tempfile::TempDir, tempfile::TempDir) {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
        self.stop.take();
        (self.dest, self.spool)
    }

    /// Waits (bounded) until an archive lands at the destination; returns its path.
    pub async fn wait_for_archive(&self) -> std::path::PathBuf {
        for _ in 0..1200 {
            let found = files_under(self.dest.path());
            if let Some(f) = found.into_iter().find(|f| f.ends_with(".calltape")) {
                return self.dest.path().join(f);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no archive reached the destination within 120 s");
    }

    pub async fn stop(self) -> StopReport {
        self.stop_keeping_folders().await.0
    }

    /// Graceful stop; the destination and spool folders live on with the caller.
    pub async fn stop_keeping_folders(
        mut self,
    ) -> (StopReport, tempfile::TempDir, tempfile::TempDir) {
        let _ = self.stop.take().unwrap().send(());
        let report = self.task.take().unwrap().await.unwrap().unwrap();
        (report, self.dest, self.spool)
    }

    /// POSTs `body` with a Content-Length; returns the status and the response text.
    pub async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        content_type: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        // the server may answer (and close) before reading everything
        let _ = s.write_all(body).await;
        read_response(&mut s).await
    }

    /// POSTs `body` chunked (no length), with a valid token; returns the status.
    pub async fn post_chunked(&self, path: &str, content_type: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer {}\r\n\r\n",
            self.addr,
            token(SECRET, 3600, true)
        );
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let body = body.to_vec();
        let writer = tokio::spawn(async move {
            for c in body.chunks(64 << 10) {
                let mut frame = format!("{:x}\r\n", c.len()).into_bytes();
                frame.extend_from_slice(c);
                frame.extend_from_slice(b"\r\n");
                if w.write_all(&frame).await.is_err() {
                    return w;
                }
            }
            let _ = w.write_all(b"0\r\n\r\n").await;
            // kept open: a half-closed connection makes the server stop before answering
            w
        });
        let (status, _) = read_response(&mut r).await;
        writer.abort();
        status
    }

    /// Declares a `declared`-byte recording upload and streams zeros at it until the server
    /// answers; returns the status. Nothing of that size is ever allocated.
    pub async fn stream_declared(&self, path: &str, declared: u64) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {MULTIPART}\r\nContent-Length: {declared}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.addr,
            token(SECRET, 3600, true)
        );
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            let zeros = vec![0u8; 1 << 20];
            let mut sent = 0u64;
            while sent < declared {
                let n = zeros.len().min((declared - sent) as usize);
                if w.write_all(&zeros[..n]).await.is_err() {
                    return w;
                }
                sent += n as u64;
            }
            w
        });
        let (status, _) = read_response(&mut r).await;
        writer.abort();
        status
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        read_response(&mut s).await
    }

    /// `/healthz` answers and no archive or staged upload exists anywhere.
    pub async fn assert_healthy_and_empty(&self) {
        let (status, text) = self.get("/healthz").await;
        assert_eq!(status, 200, "{text}");
        let health: serde_json::Value = serde_json::from_str(body_of(&text)).unwrap();
        assert_eq!(health["open_sessions"], 0, "{health}");
        assert_eq!(files_under(self.dest.path()), Vec::<String>::new());
        let spool: Vec<String> = files_under(self.spool.path());
        assert_eq!(spool, Vec::<String>::new(), "spool holds files");
    }
}

/// Every file under `dir`, relative.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

async fn read_response(r: &mut (impl AsyncReadExt + Unpin)) -> (u16, String) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(120), async {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk).await {
                Ok(0) => break,
                Err(e) => {
                    eprintln!("read error after {} bytes: {e}", buf.len());
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response within 120 s");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

/// The summary and every record of an archive.
pub fn read_archive(
    path: &std::path::Path,
) -> (calltape_format::Summary, Vec<calltape_format::TimedRecord>) {
    let mut f = std::fs::File::open(path).unwrap();
    let archive = calltape_format::open(&mut f).unwrap();
    let records =
        calltape_format::read_records(&mut f, &archive, calltape_format::Filter::default())
            .unwrap();
    (archive.summary, records)
}

pub fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

pub fn token(secret: &str, expires_in: i64, grant: bool) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": "", "iss": KEY, "nbf": now - 5, "exp": now + expires_in,
                        "observability": {"write": grant}});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn header(job_id: &str, summary: &str) -> Vec<u8> {
    header_at(job_id, summary, None)
}

pub fn header_at(job_id: &str, summary: &str, start_unix_s: Option<i64>) -> Vec<u8> {
    MetricsRecordingHeader {
        room_id: format!("RM_{}", job_id.len()),
        job_id: job_id.into(),
        duration: 8_000,
        start_time: start_unix_s.map(|s| Timestamp {
            seconds: s,
            nanos: 0,
        }),
        session_summary: summary.into(),
        ..MetricsRecordingHeader::default()
    }
    .encode_to_vec()
}

pub fn part_head(name: &str, filename: &str, content_type: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes()
}

/// A recording upload laid out as livekit-agents' `_upload_session_report` builds it.
pub fn recording_body(header: &[u8], chat: Option<&[u8]>, audio: Option<&[u8]>) -> Vec<u8> {
    let mut b = part_head("header", "header.binpb", "application/protobuf");
    b.extend_from_slice(header);
    b.extend_from_slice(b"\r\n");
    if let Some(c) = chat {
        b.extend(part_head(
            "chat_history",
            "chat_history.json",
            "application/json",
        ));
        b.extend_from_slice(c);
        b.extend_from_slice(b"\r\n");
    }
    if let Some(a) = audio {
        b.extend(part_head("audio", "recording.ogg", "audio/ogg"));
        b.extend_from_slice(a);
        b.extend_from_slice(b"\r\n");
    }
    b.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    b
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

/// One span of session `job_id`, named `name`, between the unix times given (ns).
pub fn span(job_id: &str, name: &str, start: u64, end: u64) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "livekit-agents"), kv("job_id", job_id)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes: vec![kv("job_id", job_id)],
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

pub fn traces_for(job_id: &str) -> Vec<u8> {
    span(job_id, "agent_turn", 1, 2).encode_to_vec()
}

/// Deterministic bytes that are no valid protobuf, gzip, JSON or Ogg.
pub fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 0x80
        })
        .collect()
}
