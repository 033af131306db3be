//! `calltape stats` over the catalog: nearest-rank p50/p95/p99 of e2e and of every stage,
//! slow-turn rate, tool failure rate (by tool when indexed with `--deep`), usage and cost,
//! overall or by day, agent or version. One sequential scan of `turns` feeds per-group
//! vectors; percentiles are found by selection (O(n)), not by sorting.

use std::collections::{BTreeMap, HashMap};

use calltape_format::call::latency::{LatencyFlag, Part};
use rusqlite::Connection;
use serde::Serialize;

use super::prices::{Cost, Prices, UsageSums};
use super::query::Filter;
use calltape_read::error::{AppError, Result};

/// How to split the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Day,
    Agent,
    Version,
}

impl GroupBy {
    fn sql(self) -> &'static str {
        match self {
            GroupBy::Day => "s.started_day",
            GroupBy::Agent => "s.agent_name",
            GroupBy::Version => "s.agent_name || '@' || s.agent_version",
        }
    }
}

/// The latency metrics, in `turns` column order.
pub const METRICS: [&str; 7] = ["e2e", "eou", "stt", "llm", "tool", "tts", "rest"];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolFailures {
    pub tool: String,
    pub calls: i64,
    pub errors: i64,
    pub failure_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupStats {
    /// The group's key (`all` without `--by`).
    pub key: String,
    pub sessions: i64,
    pub turns: i64,
    /// ms, keyed by metric name (e2e, eou, stt, llm, tool, tts, rest).
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// Turns with a valid e2e above the threshold.
    pub slow_turns: i64,
    /// `slow_turns` / turns with a valid e2e.
    pub slow_turn_rate: Option<f64>,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub tool_failure_rate: Option<f64>,
    pub errors: i64,
    pub usage: UsageSums,
    pub cost: Option<Cost>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub slow_threshold_ms: f64,
    pub groups: Vec<GroupStats>,
    /// By tool name; empty unless the catalog was built with `index --deep`.
    pub tool_failures_by_tool: Vec<ToolFailures>,
    /// True when some sessions were indexed without `--deep` (no per-tool rows for them).
    pub tools_incomplete: bool,
    pub currency: Option<String>,
    pub seconds: f64,
}

/// Nearest-rank percentiles of `v` (reordered in place).
pub fn percentiles(v: &mut [f64]) -> Percentiles {
    let n = v.len();
    if n == 0 {
        return Percentiles::default();
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let rank = |p: f64| calltape_format::call::stats::nearest_rank(n, p) - 1;
    let (i50, i95, i99) = (rank(50.0), rank(95.0), rank(99.0));
    let (_, p50, upper) = v.select_nth_unstable_by(i50, f64::total_cmp);
    let p50 = *p50;
    // later ranks lie in the upper part: select within it
    let base = i50 + 1;
    let pick = |i: usize, upper: &mut [f64]| -> f64 {
        if i < base {
            p50
        } else {
            *upper.select_nth_unstable_by(i - base, f64::total_cmp).1
        }
    };
    let p95 = pick(i95, upper);
    let p99 = pick(i99, upper);
    Percentiles {
        count: n,
        p50: Some(p50),
        p95: Some(p95),
        p99: Some(p99),
        mean: Some(mean),
        max: Some(max),
    }
}

fn cat(e: rusqlite::Error) -> AppError {
    AppError::Catalog(e.to_string())
}

#[derive(Default)]
struct Acc {
    sessions: i64,
    turns: i64,
    values: [Vec<f64>; 7],
    valid_e2e: i64,
    slow: i64,
    tool_calls: i64,
    tool_errors: i64,
    errors: i64,
    usage: UsageSums,
    cost: Cost,
}

/// Computes the statistics of the sessions matching `filter`.
pub fn compute(
    conn: &Connection,
    filter: &Filter,
    by: Option<GroupBy>,
    slow_ms: f64,
    prices: Option<&Prices>,
) -> Result<Stats> {
    let started = std::time::Instant::now();
    let (cond, params) = filter.where_clause();
    let key_sql = by.map(GroupBy::sql).unwrap_or("'all'");
    // sessions → group index
    let mut groups: Vec<String> = Vec::new();
    let mut group_of_key: HashMap<String, usize> = HashMap::new();
    let mut group_of_sid: HashMap<i64, usize> = HashMap::new();
    let mut accs: Vec<Acc> = Vec::new();
    {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT s.sid, {key_sql}, s.tool_calls, s.tool_errors, s.errors FROM sessions s WHERE {cond}"
            ))
            .map_err(cat)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(cat)?;
        while let Some(r) = rows.next().map_err(cat)? {
            let sid: i64 = r.get(0).map_err(cat)?;
            let key: String = r
                .get::<_, Option<String>>(1)
                .map_err(cat)?
                .unwrap_or_default();
            let g = *group_of_key.entry(key.clone()).or_insert_with(|| {
                groups.push(key);
                accs.push(Acc::default());
                groups.len() - 1
            });
            group_of_sid.insert(sid, g);
            let a = &mut accs[g];
            a.sessions += 1;
            a.tool_calls += r.get::<_, i64>(2).map_err(cat)?;
            a.tool_errors += r.get::<_, i64>(3).map_err(cat)?;
            a.errors += r.get::<_, i64>(4).map_err(cat)?;
        }
    }
    // one pass over the turns
    {
        let mut stmt = conn
            .prepare(
                "SELECT sid, e2e_ms, e2e_valid, eou_ms, stt_ms, llm_ms, tool_ms, tts_ms, rest_ms, flags
                 FROM turns",
            )
            .map_err(cat)?;
        let mut rows = stmt.query([]).map_err(cat)?;
        let mut last_sid = i64::MIN;
        let mut last_group = None;
        while let Some(r) = rows.next().map_err(cat)? {
            let sid: i64 = r.get(0).map_err(cat)?;
            if sid != last_sid {
                last_sid = sid;
                last_group = group_of_sid.get(&sid).copied();
            }
            let Some(g) = last_group else { continue };
            let a = &mut accs[g];
            a.turns += 1;
            let valid: i64 = r.get(2).map_err(cat)?;
            if valid != 0 {
                if let Some(e2e) = r.get::<_, Option<f64>>(1).map_err(cat)? {
                    a.values[0].push(e2e);
                    a.valid_e2e += 1;
                    if e2e > slow_ms {
                        a.slow += 1;
                    }
                }
            }
            // a part flagged in the archive (negative, absurd; rest when the parts exceed
            // e2e) is not drawn and not counted: the read layer's rule, from the flags column
            let flags: String = r.get(9).map_err(cat)?;
            let flagged: Vec<Part> = flags
                .split(',')
                .filter(|f| !f.is_empty())
                .filter_map(|f| LatencyFlag::parse(f).part())
                .collect();
            for (i, part) in Part::BREAKDOWN.into_iter().enumerate() {
                if let Some(v) = r.get::<_, Option<f64>>(3 + i).map_err(cat)? {
                    if !flagged.contains(&part) {
                        a.values[i + 1].push(v);
                    }
                }
            }
        }
    }
    // usage (and cost)
    {
        let mut stmt = conn
            .prepare(
                "SELECT sid, model, prompt_tokens, completion_tokens, cached_tokens, stt_audio_seconds,
                        tts_audio_seconds, tts_characters FROM usage",
            )
            .map_err(cat)?;
        let mut rows = stmt.query([]).map_err(cat)?;
        while let Some(r) = rows.next().map_err(cat)? {
            let sid: i64 = r.get(0).map_err(cat)?;
            let Some(&g) = group_of_sid.get(&sid) else {
                continue;
            };
            let model: Option<String> = r.get(1).map_err(cat)?;
            let u = UsageSums {
                prompt_tokens: r.get(2).map_err(cat)?,
                completion_tokens: r.get(3).map_err(cat)?,
                cached_tokens: r.get(4).map_err(cat)?,
                stt_audio_seconds: r.get(5).map_err(cat)?,
                tts_audio_seconds: r.get(6).map_err(cat)?,
                tts_characters: r.get(7).map_err(cat)?,
            };
            accs[g].usage.add(&u);
            if let Some(p) = prices {
                p.add_cost(model.as_deref(), &u, &mut accs[g].cost);
            }
        }
    }
    // tool failures by name (deep rows only)
    let mut by_tool: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT sid, name, COUNT(*), SUM(is_error) FROM tool_calls GROUP BY sid, name")
            .map_err(cat)?;
        let mut rows = stmt.query([]).map_err(cat)?;
        while let Some(r) = rows.next().map_err(cat)? {
            let sid: i64 = r.get(0).map_err(cat)?;
            if !group_of_sid.contains_key(&sid) {
                continue;
            }
            let e = by_tool.entry(r.get(1).map_err(cat)?).or_default();
            e.0 += r.get::<_, i64>(2).map_err(cat)?;
            e.1 += r.get::<_, i64>(3).map_err(cat)?;
        }
    }
    let tools_incomplete: bool = {
        let (cond, params) = filter.where_clause();
        conn.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM sessions s WHERE {cond} AND s.deep = 0 AND s.tool_calls > 0)"),
            rusqlite::params_from_iter(params.iter()),
            |r| r.get(0),
        )
        .map_err(cat)?
    };
    let mut out: Vec<GroupStats> = groups
        .into_iter()
        .zip(accs)
        .map(|(key, mut a)| {
            let mut latency = BTreeMap::new();
            for (i, name) in METRICS.iter().enumerate() {
                latency.insert(name.to_string(), percentiles(&mut a.values[i]));
            }
            GroupStats {
                key,
                sessions: a.sessions,
                turns: a.turns,
                latency_ms: latency,
                slow_turns: a.slow,
                slow_turn_rate: (a.valid_e2e > 0).then(|| a.slow as f64 / a.valid_e2e as f64),
                tool_calls: a.tool_calls,
                tool_errors: a.tool_errors,
                tool_failure_rate: (a.tool_calls > 0)
                    .then(|| a.tool_errors as f64 / a.tool_calls as f64),
                errors: a.errors,
                usage: a.usage,
                cost: prices.map(|_| a.cost),
            }
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Stats {
        slow_threshold_ms: slow_ms,
        groups: out,
        tool_failures_by_tool: by_tool
            .into_iter()
            .map(|(tool, (calls, errors))| ToolFailures {
                tool,
                calls,
                errors,
                failure_rate: if calls > 0 {
                    errors as f64 / calls as f64
                } else {
                    0.0
                },
            })
            .collect(),
        tools_incomplete,
        currency: prices.map(|p| p.currency.clone()),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = percentiles(&mut v);
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
        let mut one = vec![7.0];
        let p = percentiles(&mut one);
        assert_eq!((p.p50, p.p95, p.p99), (Some(7.0), Some(7.0), Some(7.0)));
        let mut three = vec![3.0, 1.0, 2.0];
        let p = percentiles(&mut three);
        assert_eq!((p.p50, p.p95, p.p99), (Some(2.0), Some(3.0), Some(3.0)));
    }
}
