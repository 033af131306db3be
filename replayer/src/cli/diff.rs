//! `calltape diff A B`: two calls side by side. Turns are aligned by order and text
//! similarity (a small dynamic-programming alignment over word-level similarity of the
//! transcripts), then compared: transcript differences and per-stage latency deltas.
//! Exit 0 when within thresholds, 1 when they differ beyond them, 2 when a call cannot be read.
//!
//! `--json`: `{schema: "calltape.diff/1", a: {location, session_id, turns}, b: {…},
//! thresholds: {max_latency_delta_ms, min_text_similarity}, differs, reasons: [..],
//! pairs: [{a_turn, b_turn, user_similarity, agent_similarity, a_user_text, b_user_text,
//! a_agent_text, b_agent_text, latency_ms: {metric: {a, b, delta}}, reasons: [..]}]}`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use calltape_format::{Summary, TurnSummary};

use crate::call::open_call;
use crate::error::Result;
use crate::export::print_json;
use crate::export::table::{opt, Table};
use crate::export::units::{format_ms, parse_duration, preview};

#[derive(clap::Args)]
pub struct Args {
    /// The first call (path or URL).
    pub a: String,
    /// The second call (path or URL).
    pub b: String,
    /// Differ when a stage's latency changes by more than this.
    #[arg(long, default_value = "300ms", value_name = "DURATION")]
    pub max_latency_delta: String,
    /// Differ when aligned turns' transcripts are less similar than this (0..1).
    #[arg(long, default_value_t = 0.8, value_name = "RATIO")]
    pub min_text_similarity: f64,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lowercase words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Word-level similarity in 0..=1: `2 × LCS / (|a| + |b|)`; two empty texts are identical.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut prev = vec![0usize; b.len() + 1];
    for x in &a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        prev = cur;
    }
    2.0 * prev[b.len()] as f64 / (a.len() + b.len()) as f64
}

fn turn_similarity(a: &TurnSummary, b: &TurnSummary) -> f64 {
    let same_speaker = if a.speaker == b.speaker { 0.0 } else { -0.5 };
    (similarity(&a.user_text, &b.user_text) + similarity(&a.agent_text, &b.agent_text)) / 2.0
        + same_speaker
}

/// Cost of leaving a turn unmatched.
const GAP: f64 = 0.25;

/// Aligns the turns of two calls: pairs `(Some(i), Some(j))`, or one side `None` for a turn
/// only one call has. Maximizes total similarity minus gaps, keeping order.
pub fn align(a: &[TurnSummary], b: &[TurnSummary]) -> Vec<(Option<usize>, Option<usize>)> {
    let (n, m) = (a.len(), b.len());
    let mut score = vec![vec![0.0f64; m + 1]; n + 1];
    for (i, row) in score.iter_mut().enumerate() {
        row[0] = -(i as f64) * GAP;
    }
    for (j, cell) in score[0].iter_mut().enumerate() {
        *cell = -(j as f64) * GAP;
    }
    for i in 1..=n {
        for j in 1..=m {
            let matched = score[i - 1][j - 1] + turn_similarity(&a[i - 1], &b[j - 1]);
            score[i][j] = matched
                .max(score[i - 1][j] - GAP)
                .max(score[i][j - 1] - GAP);
        }
    }
    let (mut i, mut j) = (n, m);
    let mut out = Vec::new();
    while i > 0 || j > 0 {
        if i > 0 && j > 0 {
            let matched = score[i - 1][j - 1] + turn_similarity(&a[i - 1], &b[j - 1]);
            if (score[i][j] - matched).abs() < 1e-12 {
                out.push((Some(i - 1), Some(j - 1)));
                i -= 1;
                j -= 1;
                continue;
            }
        }
        if i > 0 && (j == 0 || (score[i][j] - (score[i - 1][j] - GAP)).abs() < 1e-12) {
            out.push((Some(i - 1), None));
            i -= 1;
        } else {
            out.push((None, Some(j - 1)));
            j -= 1;
        }
    }
    out.reverse();
    out
}

fn metric_values(t: &TurnSummary) -> [(&'static str, Option<i64>); 7] {
    let l = &t.latency;
    let p = l.parts().map(|(part, v)| (part.name(), v));
    [
        ("e2e", l.valid_e2e_ns()),
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
    ]
}

/// A metric in A and in B, and B − A (ms).
type MetricDelta = (Option<f64>, Option<f64>, Option<f64>);

struct Pair {
    a: Option<usize>,
    b: Option<usize>,
    user_sim: Option<f64>,
    agent_sim: Option<f64>,
    /// metric → (a ms, b ms, delta ms)
    latency: BTreeMap<&'static str, MetricDelta>,
    reasons: Vec<String>,
}

fn compare(a: &Summary, b: &Summary, max_delta_ms: f64, min_sim: f64) -> Vec<Pair> {
    align(&a.turns, &b.turns)
        .into_iter()
        .map(|(i, j)| {
            let ta = i.map(|i| &a.turns[i]);
            let tb = j.map(|j| &b.turns[j]);
            let mut p = Pair {
                a: ta.map(|t| t.turn as usize),
                b: tb.map(|t| t.turn as usize),
                user_sim: None,
                agent_sim: None,
                latency: BTreeMap::new(),
                reasons: Vec::new(),
            };
            match (ta, tb) {
                (Some(x), Some(y)) => {
                    let us = similarity(&x.user_text, &y.user_text);
                    let ag = similarity(&x.agent_text, &y.agent_text);
                    p.user_sim = Some(us);
                    p.agent_sim = Some(ag);
                    if us < min_sim {
                        p.reasons
                            .push(format!("user text {:.0}% similar", us * 100.0));
                    }
                    if ag < min_sim {
                        p.reasons
                            .push(format!("agent text {:.0}% similar", ag * 100.0));
                    }
                    for ((name, va), (_, vb)) in metric_values(x).into_iter().zip(metric_values(y))
                    {
                        let ms = |v: Option<i64>| v.map(|v| v as f64 / 1e6);
                        let (ma, mb) = (ms(va), ms(vb));
                        let delta = ma.zip(mb).map(|(a, b)| b - a);
                        if let Some(d) = delta {
                            if d.abs() > max_delta_ms {
                                p.reasons.push(format!(
                                    "{name} {}{}",
                                    if d > 0.0 { "+" } else { "-" },
                                    format_ms(d.abs())
                                ));
                            }
                        }
                        p.latency.insert(name, (ma, mb, delta));
                    }
                }
                (Some(_), None) => p.reasons.push("turn only in A".into()),
                (None, Some(_)) => p.reasons.push("turn only in B".into()),
                (None, None) => {}
            }
            p
        })
        .collect()
}

pub async fn run(args: Args) -> Result<i32> {
    match run_inner(&args).await {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::errln!("calltape: {e}");
            Ok(2)
        }
    }
}

async fn run_inner(args: &Args) -> Result<i32> {
    let max_delta_ms = parse_duration(&args.max_latency_delta)? as f64 / 1e6;
    let a = open_call(&args.a).await?;
    let b = open_call(&args.b).await?;
    let (sa, sb) = (&a.archive.summary, &b.archive.summary);
    let pairs = compare(sa, sb, max_delta_ms, args.min_text_similarity);
    let reasons: Vec<String> = pairs
        .iter()
        .flat_map(|p| {
            let label = match (p.a, p.b) {
                (Some(x), Some(y)) if x == y => format!("turn {x}"),
                (Some(x), Some(y)) => format!("turns {x}/{y}"),
                (Some(x), None) => format!("A turn {x}"),
                (None, Some(y)) => format!("B turn {y}"),
                _ => String::new(),
            };
            p.reasons.iter().map(move |r| format!("{label}: {r}"))
        })
        .collect();
    let differs = !reasons.is_empty();
    let text = |s: &Summary, turn: Option<usize>, user: bool| -> Value {
        turn.and_then(|n| s.turns.iter().find(|t| t.turn as usize == n))
            .map(|t| json!(if user { &t.user_text } else { &t.agent_text }))
            .unwrap_or(Value::Null)
    };
    if args.json {
        print_json(&json!({
            "schema": "calltape.diff/1",
            "a": {"location": args.a, "session_id": sa.header.session_id, "turns": sa.turns.len()},
            "b": {"location": args.b, "session_id": sb.header.session_id, "turns": sb.turns.len()},
            "thresholds": {"max_latency_delta_ms": max_delta_ms, "min_text_similarity": args.min_text_similarity},
            "differs": differs,
            "reasons": reasons,
            "pairs": pairs.iter().map(|p| json!({
                "a_turn": p.a, "b_turn": p.b,
                "user_similarity": p.user_sim, "agent_similarity": p.agent_sim,
                "a_user_text": text(sa, p.a, true), "b_user_text": text(sb, p.b, true),
                "a_agent_text": text(sa, p.a, false), "b_agent_text": text(sb, p.b, false),
                "latency_ms": p.latency.iter().map(|(k, (a, b, d))| (k.to_string(), json!({"a": a, "b": b, "delta": d}))).collect::<serde_json::Map<_, _>>(),
                "reasons": p.reasons,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(i32::from(differs));
    }
    crate::outln!(
        "A  {}  ({}, {} turns)",
        args.a,
        sa.header.session_id,
        sa.turns.len()
    )?;
    crate::outln!(
        "B  {}  ({}, {} turns)",
        args.b,
        sb.header.session_id,
        sb.turns.len()
    )?;
    crate::outln!()?;
    let mut t = Table::new(&[
        "A>",
        "B>",
        "user sim>",
        "agent sim>",
        "Δe2e>",
        "Δeou>",
        "Δstt>",
        "Δllm>",
        "Δtool>",
        "Δtts>",
        "Δrest>",
        "differs",
    ]);
    let delta = |p: &Pair, m: &str| {
        opt(p.latency.get(m).and_then(|x| x.2), |d| {
            let s = format_ms(d.abs());
            if d > 0.0 {
                format!("+{s}")
            } else if d < 0.0 {
                format!("-{s}")
            } else {
                s
            }
        })
    };
    for p in &pairs {
        t.row(vec![
            opt(p.a, |x| x.to_string()),
            opt(p.b, |x| x.to_string()),
            opt(p.user_sim, |s| format!("{:.0}%", s * 100.0)),
            opt(p.agent_sim, |s| format!("{:.0}%", s * 100.0)),
            delta(p, "e2e"),
            delta(p, "eou"),
            delta(p, "stt"),
            delta(p, "llm"),
            delta(p, "tool"),
            delta(p, "tts"),
            delta(p, "rest"),
            if p.reasons.is_empty() {
                String::new()
            } else {
                "YES".into()
            },
        ]);
    }
    crate::out!("{}", t.render())?;
    let mut shown = false;
    for p in pairs.iter().filter(|p| {
        p.user_sim.is_some_and(|s| s < args.min_text_similarity)
            || p.agent_sim.is_some_and(|s| s < args.min_text_similarity)
            || p.a.is_none()
            || p.b.is_none()
    }) {
        if !shown {
            crate::outln!("\ntranscript differences:")?;
            shown = true;
        }
        for (who, user) in [("user", true), ("agent", false)] {
            let (x, y) = (text(sa, p.a, user), text(sb, p.b, user));
            if x != y {
                let s = |v: &Value| {
                    v.as_str()
                        .map(|s| format!("\"{}\"", preview(s, 100)))
                        .unwrap_or_else(|| "(no turn)".into())
                };
                crate::outln!(
                    "  {} {who}:",
                    match (p.a, p.b) {
                        (Some(a), Some(b)) => format!("turn {a}/{b}"),
                        (Some(a), None) => format!("turn {a}/-"),
                        (None, Some(b)) => format!("turn -/{b}"),
                        _ => String::new(),
                    }
                )?;
                crate::outln!("    A {}", s(&x))?;
                crate::outln!("    B {}", s(&y))?;
            }
        }
    }
    crate::outln!()?;
    if differs {
        crate::outln!(
            "DIFFER beyond thresholds (latency ±{}, text similarity {:.0}%): {}",
            format_ms(max_delta_ms),
            args.min_text_similarity * 100.0,
            reasons.join("; ")
        )?;
        Ok(1)
    } else {
        crate::outln!("same within thresholds")?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_similarity() {
        assert_eq!(similarity("Hello, world!", "hello world"), 1.0);
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("a b c d", ""), 0.0);
        assert!((similarity("I want a refund", "I want a refill") - 0.75).abs() < 1e-9);
    }
}
