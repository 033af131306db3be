//! `calltape stats`: latency percentiles (e2e and every stage), slow-turn rate, tool failure
//! rate, usage and cost over the catalog, overall or `--by day|agent|version`.
//!
//! `--json`: `{schema: "calltape.stats/1", slow_threshold_ms, currency, groups: [{key,
//! sessions, turns, latency_ms: {e2e|eou|stt|llm|tool|tts|rest: {count, p50, p95, p99, mean,
//! max}}, slow_turns, slow_turn_rate, tool_calls, tool_errors, tool_failure_rate, errors,
//! usage: {prompt_tokens, completion_tokens, cached_tokens, stt_audio_seconds,
//! tts_audio_seconds, tts_characters}, cost: {llm, tts, stt, total, unpriced_models} | null}],
//! tool_failures_by_tool: [{tool, calls, errors, failure_rate}], tools_incomplete, seconds}`.

use std::path::PathBuf;

use crate::catalog::prices::Prices;
use crate::catalog::stats::{self, GroupBy, METRICS};
use crate::catalog::{self, schema};
use crate::cli::ls::FilterArgs;
use crate::error::{AppError, Result};
use crate::export::print_json;
use crate::export::table::{opt, Table};
use crate::export::units::{format_ms, parse_duration};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Split the numbers by day, agent or agent version.
    #[arg(long, value_enum)]
    pub by: Option<GroupBy>,
    /// A turn whose e2e is above this counts as slow.
    #[arg(long, default_value = "1.5s", value_name = "DURATION")]
    pub slow: String,
    /// Prices for cost sums (TOML or JSON): per model per 1M prompt/completion/cached tokens,
    /// `tts_per_1m_characters` or `tts_per_character`, `stt_per_minute`.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Catalog file (default: $XDG_DATA_HOME/calltape/catalog.sqlite).
    #[arg(long, env = "CALLTAPE_CATALOG", value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

fn pct(x: Option<f64>) -> String {
    opt(x, |v| format!("{:.1}%", v * 100.0))
}

pub async fn run(args: Args) -> Result<i32> {
    let path = catalog::path(args.catalog.as_deref())?;
    let conn = schema::open_ro(&path)?;
    let filter = args.filter.to_filter(None)?;
    let slow_ms = parse_duration(&args.slow)? as f64 / 1e6;
    let prices = args.prices.as_deref().map(Prices::load).transpose()?;
    let s = stats::compute(&conn, &filter, args.by, slow_ms, prices.as_ref())?;
    if args.json {
        let mut v = serde_json::to_value(&s).map_err(|e| AppError::Other(e.to_string()))?;
        v["schema"] = serde_json::json!("calltape.stats/1");
        print_json(&v)?;
        return Ok(0);
    }
    if s.groups.is_empty() {
        crate::outln!("no calls match")?;
        return Ok(0);
    }
    for g in &s.groups {
        if args.by.is_some() {
            crate::outln!("== {} ==", g.key)?;
        }
        crate::outln!(
            "{} calls, {} turns; slow turns (e2e > {}): {} ({}); tool calls {} ({} failed, {}); errors {}",
            g.sessions,
            g.turns,
            format_ms(slow_ms),
            g.slow_turns,
            pct(g.slow_turn_rate),
            g.tool_calls,
            g.tool_errors,
            pct(g.tool_failure_rate),
            g.errors
        )?;
        let mut t = Table::new(&["metric", "n>", "p50>", "p95>", "p99>", "mean>", "max>"]);
        for m in METRICS {
            let p = &g.latency_ms[m];
            t.row(vec![
                m.to_string(),
                p.count.to_string(),
                opt(p.p50, format_ms),
                opt(p.p95, format_ms),
                opt(p.p99, format_ms),
                opt(p.mean, format_ms),
                opt(p.max, format_ms),
            ]);
        }
        crate::out!("{}", t.render())?;
        let u = &g.usage;
        crate::outln!(
            "usage: {} prompt ({} cached) + {} completion tokens, STT {:.1} min, TTS {:.1} min / {} chars",
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.stt_audio_seconds / 60.0,
            u.tts_audio_seconds / 60.0,
            u.tts_characters
        )?;
        if let (Some(c), Some(cur)) = (&g.cost, &s.currency) {
            crate::outln!(
                "cost: {:.4} {cur} (LLM {:.4}, TTS {:.4}, STT {:.4}){}",
                c.total,
                c.llm,
                c.tts,
                c.stt,
                if c.unpriced_models.is_empty() {
                    String::new()
                } else {
                    format!("; no price for: {}", c.unpriced_models.join(", "))
                }
            )?;
        }
        crate::outln!()?;
    }
    if !s.tool_failures_by_tool.is_empty() {
        let mut t = Table::new(&["tool", "calls>", "failed>", "rate>"]);
        for f in &s.tool_failures_by_tool {
            t.row(vec![
                f.tool.clone(),
                f.calls.to_string(),
                f.errors.to_string(),
                pct(Some(f.failure_rate)),
            ]);
        }
        crate::outln!("tool failures by tool:")?;
        crate::out!("{}", t.render())?;
    }
    if s.tools_incomplete {
        crate::outln!("(some calls were indexed without --deep: per-tool numbers miss their tool calls; run `calltape index --deep`)")?;
    }
    Ok(0)
}
