//! `calltape replay`: open a call (file, object-store URL, or session id from the catalog) or
//! follow one still being recorded, in the terminal replayer (`crate::tui`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{AppError, Result};
use crate::tui::{self, App, Follower, Options};

#[derive(clap::Args)]
pub struct Args {
    /// The call: a file, an object-store URL (s3://bucket/key, gs://…, az://…, file://…),
    /// or a session id from the catalog.
    #[arg(required_unless_present = "follow")]
    pub target: Option<String>,
    /// Follow a call still being recorded: a spool file (`.calltape.part`) without footer,
    /// re-scanned every 250 ms as the recorder appends to it.
    #[arg(long, value_name = "SPOOL_FILE", conflicts_with = "target")]
    pub follow: Option<PathBuf>,
    /// A turn is slow when its end-to-end latency exceeds this (`1.5s`, `1200ms`; a bare
    /// number is seconds, as everywhere in calltape).
    #[arg(long, value_name = "DURATION", default_value = "1.5s", value_parser = parse_slow)]
    pub slow: u64,
    /// Open at this turn instead of the worst one.
    #[arg(long, value_name = "N")]
    pub turn: Option<u32>,
    /// The catalog used to resolve a session id (default: $CALLTAPE_CATALOG, else
    /// $XDG_DATA_HOME/calltape/catalog.sqlite).
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,
}

fn parse_slow(s: &str) -> std::result::Result<u64, String> {
    crate::export::units::parse_duration(s).map_err(|e| e.to_string())
}

pub async fn run(args: Args) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        return Err(AppError::Usage(
            "calltape replay needs a terminal (for a text report use `calltape inspect`)".into(),
        ));
    }
    let opts = Options {
        slow_ns: args.slow,
        player: tui::player::find_player(),
        start_turn: args.turn,
        ..Options::default()
    };
    let (call, follower) = match (&args.follow, &args.target) {
        (Some(path), _) => {
            let mut f = Follower::new(path)?;
            let call = f.poll().await?.ok_or_else(|| {
                AppError::Other(format!(
                    "{}: no header frame yet (is the recorder writing to it?)",
                    path.display()
                ))
            })?;
            (call, Some(f))
        }
        (None, Some(target)) => {
            let location = tui::resolve_target(target, args.catalog.as_deref())?;
            (tui::open_call(&location).await?, None)
        }
        (None, None) => {
            return Err(AppError::Usage(
                "give a call to replay, or --follow SPOOL_FILE".into(),
            ))
        }
    };
    let app = App::new(Arc::new(call), opts, (80, 24));
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || tui::terminal::run(app, handle, follower))
        .await
        .map_err(|e| AppError::Other(format!("the replayer crashed: {e}")))??;
    Ok(0)
}
