//! `calltape`: replay a recorded voice-agent call in the terminal, and inspect, verify,
//! recover, export, catalogue and query many calls from the command line.

use calltape::cli;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "calltape",
    version,
    about = "Replay debugger and CLI for voice-agent call archives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open a call in the terminal replayer (file, s3://… URL, or a session id from the catalog).
    Replay(cli::replay::Args),
    /// Header, totals, per-turn latency table and flags of one archive.
    Inspect(cli::inspect::Args),
    /// Check every chunk's CRC and the summary (exit 0 intact, 3 damaged but recoverable, 1 unreadable).
    Verify(cli::verify::Args),
    /// Write a closed copy of a damaged archive and report what was lost.
    Recover(cli::recover::Args),
    /// Export audio (WAV), transcript (text/JSON/SRT/WebVTT), Perfetto trace or OTLP spans.
    Export(cli::export::Args),
    /// Build or update the catalog from directories or object-store prefixes.
    Index(cli::index::Args),
    /// Maintain the Parquet catalog (`index --parquet`): `catalog compact DEST --day D`.
    Catalog(cli::catalog::Args),
    /// List catalogued calls, with filters.
    Ls(cli::ls::Args),
    /// Latency percentiles, slow-turn and tool-failure rates, usage and cost over the catalog.
    Stats(cli::stats::Args),
    /// Run read-only SQL over the catalog.
    Sql(cli::sql::Args),
    /// Compare two calls turn by turn (exit 1 when they differ beyond thresholds).
    Diff(cli::diff::Args),
    /// Import a call recorded by LiveKit Agents or Pipecat into a calltape archive.
    Import(cli::import::Args),
    /// Serve the observability endpoint LiveKit Agents upload to (LIVEKIT_OBSERVABILITY_URL):
    /// every call becomes an archive in your bucket.
    Collect(cli::collect::Args),
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("calltape: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Replay(a) => cli::replay::run(a).await,
            Command::Inspect(a) => cli::inspect::run(a).await,
            Command::Verify(a) => cli::verify::run(a).await,
            Command::Recover(a) => cli::recover::run(a).await,
            Command::Export(a) => cli::export::run(a).await,
            Command::Index(a) => cli::index::run(a).await,
            Command::Catalog(a) => cli::catalog::run(a).await,
            Command::Ls(a) => cli::ls::run(a).await,
            Command::Stats(a) => cli::stats::run(a).await,
            Command::Sql(a) => cli::sql::run(a).await,
            Command::Diff(a) => cli::diff::run(a).await,
            Command::Import(a) => cli::import::run(a).await,
            Command::Collect(a) => cli::collect::run(a).await,
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(calltape::error::AppError::StdoutClosed) => std::process::exit(0),
        Err(e) => {
            calltape::errln!("calltape: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
