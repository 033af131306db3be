//! `calltape collect`: runs the self-hosted observability endpoint LiveKit Agents upload to
//! (`LIVEKIT_OBSERVABILITY_URL=http://HOST:PORT`), writing one archive per call to the
//! destination through a local spool. The server itself is the `calltape-collect` crate.

use std::path::PathBuf;
use std::time::Duration;

use calltape_collect::auth::Credentials;
use calltape_collect::{Collector, CollectorConfig, Limits, StatusSink};

use crate::error::{AppError, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4318", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Where archives go: s3://bucket/prefix, gs://…, az://…, file:///dir (S3 settings from
    /// the usual AWS_* environment variables).
    #[arg(long, value_name = "URL")]
    pub destination: String,
    /// Spool directory: staged uploads and archives waiting to be uploaded (keep it on a
    /// persistent disk; a restart picks up what it holds).
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// The LiveKit API key the agents' tokens are issued by.
    #[arg(long, env = "LIVEKIT_API_KEY", value_name = "KEY")]
    pub api_key: String,
    /// The LiveKit API secret the agents sign their tokens with.
    #[arg(
        long,
        env = "LIVEKIT_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub api_secret: String,
    /// Print status as JSON lines on stdout (listening, each session written, stopped).
    #[arg(long)]
    pub json: bool,
    /// Largest recording upload, bytes.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub max_recording_bytes: u64,
    /// Largest OTLP request body (before and after gzip), bytes.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub max_otlp_bytes: u64,
    /// Sessions held open at once.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,
    /// Telemetry held per session, bytes.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub session_telemetry: usize,
    /// Telemetry held for all sessions, bytes.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub total_telemetry: usize,
    /// Seconds to keep collecting telemetry after a session's recording arrived.
    #[arg(long, default_value_t = 15.0, value_name = "SECONDS")]
    pub linger: f64,
    /// Seconds after its last telemetry a session without a recording is closed.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub session_timeout: f64,
    /// Seconds shutdown may take to write and upload open sessions.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub shutdown_deadline: f64,
}

fn seconds(name: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| AppError::Usage(format!("--{name} wants a number of seconds >= 0, not {s}")))
}

pub async fn run(args: Args) -> Result<i32> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    if args.api_key.is_empty() || args.api_secret.is_empty() {
        return Err(AppError::Usage(
            "--api-key and --api-secret (or LIVEKIT_API_KEY / LIVEKIT_API_SECRET) must be set: \
             they are what the agents sign their uploads with"
                .into(),
        ));
    }
    let limits = Limits {
        recording_body: args.max_recording_bytes,
        otlp_body: args.max_otlp_bytes,
        max_sessions: args.max_sessions,
        session_telemetry: args.session_telemetry,
        total_telemetry: args.total_telemetry,
        linger: seconds("linger", args.linger)?,
        session_timeout: seconds("session-timeout", args.session_timeout)?,
        ..Limits::default()
    };
    let config = CollectorConfig {
        credentials: Credentials::new(args.api_key, &args.api_secret),
        destination: args.destination,
        spool: args.spool,
        limits,
        status: StatusSink { json: args.json },
        shutdown_deadline: seconds("shutdown-deadline", args.shutdown_deadline)?,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| AppError::Io {
            what: format!("listen on {}", args.listen),
            source: e,
        })?;
    let collector = Collector::start(config)
        .await
        .map_err(|e| AppError::Other(e.to_string()))?;
    let report = collector
        .serve(listener, stop_signal())
        .await
        .map_err(|e| AppError::Io {
            what: "serving".into(),
            source: e,
        })?;
    Ok(if report.sessions_failed > 0 || report.left_in_spool > 0 {
        3
    } else {
        0
    })
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("stop signal received");
}
