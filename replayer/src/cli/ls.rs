//! `calltape ls`: catalogued calls, newest first, with filters.
//!
//! `--json`: `{schema: "calltape.ls/1", sessions: [{session_id, location, started_at,
//! agent_name, agent_version, environment, duration_ms, turns, interruptions, errors,
//! tool_calls, tool_errors, e2e_p50_ms, e2e_p95_ms, max_e2e_ms, end_reason, outcome,
//! recovered}]}`.

use std::path::PathBuf;

use serde_json::json;

use crate::catalog::query::{self, Filter};
use crate::catalog::{self, schema};
use crate::error::Result;
use crate::export::print_json;
use crate::export::table::{opt, Table};
use crate::export::units::{
    format_duration, format_ms, now_unix_ns, parse_duration, parse_instant,
};

/// Filters shared by `ls` and `stats`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Calls that started at or after this: `7d` (ago), `2026-11-01`, an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Calls that started before this (a bare date includes that whole day).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Agent name, optionally with a version: `support-bot` or `support-bot@1.4.2`.
    #[arg(long, value_name = "NAME[@VERSION]")]
    pub agent: Option<String>,
    /// Outcome recorded at session end (`resolved`, `escalated`, …).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Calls with an errored turn or a failed tool call.
    #[arg(long)]
    pub errors: bool,
    /// Words in a turn's transcript (user or agent), e.g. "refund".
    #[arg(long)]
    pub text: Option<String>,
    /// Session id or its beginning.
    #[arg(long, value_name = "PREFIX")]
    pub id: Option<String>,
}

impl FilterArgs {
    /// The catalog filter; `slow` is the `--slow` of `ls` (any turn above it).
    pub fn to_filter(&self, slow: Option<&str>) -> Result<Filter> {
        let now = now_unix_ns();
        let until_ns = match &self.until {
            Some(u) => {
                let t = parse_instant(u, now)?;
                // a bare date means "up to the end of that day"
                let is_date = chrono::NaiveDate::parse_from_str(u.trim(), "%Y-%m-%d").is_ok();
                Some(if is_date { t + 86_400_000_000_000 } else { t })
            }
            None => None,
        };
        let (agent, version) = match self.agent.as_deref() {
            Some(a) => match a.split_once('@') {
                Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
                None => (Some(a.to_string()), None),
            },
            None => (None, None),
        };
        Ok(Filter {
            since_ns: self
                .since
                .as_deref()
                .map(|s| parse_instant(s, now))
                .transpose()?,
            until_ns,
            agent,
            version,
            outcome: self.outcome.clone(),
            slow_ms: slow
                .map(parse_duration)
                .transpose()?
                .map(|ns| ns as f64 / 1e6),
            errors: self.errors,
            text: self.text.clone(),
            id_prefix: self.id.clone(),
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Calls with any turn slower (e2e) than this, e.g. `1.5s`.
    #[arg(long, value_name = "DURATION")]
    pub slow: Option<String>,
    /// At most this many calls.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Also list archives `index` found damaged.
    #[arg(long)]
    pub damaged: bool,
    /// Catalog file (default: $XDG_DATA_HOME/calltape/catalog.sqlite).
    #[arg(long, env = "CALLTAPE_CATALOG", value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> Result<i32> {
    let path = catalog::path(args.catalog.as_deref())?;
    let conn = schema::open_ro(&path)?;
    let filter = args.filter.to_filter(args.slow.as_deref())?;
    let rows = query::list(&conn, &filter, args.limit)?;
    let damaged = if args.damaged {
        query::damaged(&conn)?
    } else {
        Vec::new()
    };
    if args.json {
        let mut v = json!({"schema": "calltape.ls/1", "sessions": rows});
        if args.damaged {
            v["damaged"] = damaged
                .iter()
                .map(|(l, r)| json!({"location": l, "reason": r}))
                .collect();
        }
        print_json(&v)?;
        return Ok(0);
    }
    let mut t = Table::new(&[
        "session", "started", "agent", "length>", "turns>", "e2e p95>", "max e2e>", "err>",
        "tool✗>", "outcome", "location",
    ]);
    for r in &rows {
        let mut outcome = r
            .outcome
            .clone()
            .or(r.end_reason.clone())
            .unwrap_or_default();
        if r.recovered {
            outcome.push_str(" (recovered)");
        }
        t.row(vec![
            r.session_id.clone(),
            r.started_at
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            format!("{}@{}", r.agent_name, r.agent_version),
            format_duration((r.duration_ms * 1e6) as u64),
            r.turns.to_string(),
            opt(r.e2e_p95_ms, format_ms),
            opt(r.max_e2e_ms, format_ms),
            r.errors.to_string(),
            r.tool_errors.to_string(),
            outcome,
            r.location.clone(),
        ]);
    }
    if rows.is_empty() {
        crate::outln!("no calls match")?;
    } else {
        crate::out!("{}", t.render())?;
        if rows.len() == args.limit {
            crate::outln!("(first {} shown; --limit N for more)", args.limit)?;
        }
    }
    if args.damaged && !damaged.is_empty() {
        crate::outln!("\ndamaged archives ({}):", damaged.len())?;
        for (l, r) in &damaged {
            crate::outln!("  {l}: {r}")?;
        }
    }
    Ok(0)
}
