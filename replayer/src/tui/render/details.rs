//! The selected turn in tabs: stage timings with the latency breakdown set against the gap
//! measured from the audio; tool calls; events; state snapshot and its diff against the
//! previous turn; logs. All recorded text is sanitized before it is drawn.

use std::collections::BTreeMap;

use calltape_format::call::classify;
use calltape_format::{Stage, StageTiming, TurnSummary};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use serde_json::Value;

use crate::export::json_diff::Change;

use super::turns::PARTS;
use super::{pane_block, theme};
use crate::export::units::{format_clock_tenths, format_latency, format_opt_latency};
use crate::tui::app::{App, DetailTab, Pane};
use crate::tui::layout::{inner, tab_labels};
use crate::tui::model::TurnDetail;
use crate::tui::sanitize::{inline, lines as safe_lines};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let title = Line::from(Span::styled(" Details ", t.title()));
    let block = pane_block(app, Pane::Details, title);
    let inside = inner(area);
    frame.render_widget(block, area);
    if inside.height == 0 {
        return;
    }
    // tab row
    let mut tabs = vec![Span::raw(" ")];
    for (_, label, tab) in tab_labels() {
        if tab == app.tab {
            tabs.push(Span::styled(format!("[{}]", label.trim()), t.selected()));
            tabs.push(Span::raw(" ".repeat(
                label.chars().count() + 1 - label.trim().chars().count() - 2,
            )));
        } else {
            tabs.push(Span::styled(label, t.dim()));
            tabs.push(Span::raw(" "));
        }
    }
    frame.render_widget(
        Paragraph::new(Line::from(tabs)),
        Rect {
            height: 1,
            ..inside
        },
    );
    let body = Rect {
        y: inside.y + 1,
        height: inside.height - 1,
        ..inside
    };
    let Some(turn) = app.selected_turn() else {
        frame.render_widget(Paragraph::new("no turn selected"), body);
        return;
    };
    let detail = app.turn_detail(turn.turn);
    let mut lines = vec![turn_line(turn, detail.map(|d| &**d), t)];
    match detail {
        None => lines.push(Line::from(Span::styled(
            format!("loading turn {}…", turn.turn),
            t.dim(),
        ))),
        Some(d) => match app.tab {
            DetailTab::Stages => stages(&mut lines, app, turn, d, t),
            DetailTab::Tools => tools(&mut lines, d, t),
            DetailTab::Events => events(&mut lines, d, t),
            DetailTab::State => state(&mut lines, app, d, t),
            DetailTab::Logs => logs(&mut lines, d, t),
        },
    }
    frame.render_widget(Paragraph::new(lines).scroll((app.detail_scroll, 0)), body);
}

fn turn_line(turn: &TurnSummary, detail: Option<&TurnDetail>, t: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(
            "Turn {} · opened by {} · {}–{}",
            turn.turn,
            turn.speaker,
            format_clock_tenths(turn.start_ns),
            turn.end_ns
                .map(format_clock_tenths)
                .unwrap_or_else(|| "…".into())
        ),
        t.title(),
    )];
    if turn.interrupted {
        spans.push(Span::styled(" · ✂ interrupted", t.warn()));
    }
    if turn.errors > 0 {
        spans.push(Span::styled(
            format!(" · ✗ {} error(s)", turn.errors),
            t.error(),
        ));
    }
    if turn.tool_errors > 0 {
        // which tool failed and why, once the turn's records are loaded
        let text = classify::tool_failures_text(
            turn.tool_errors,
            turn.tool_calls,
            detail.into_iter().flat_map(|d| d.tools.iter()),
            60,
        );
        spans.push(Span::styled(format!(" · ✗ {}", inline(&text)), t.error()));
    }
    Line::from(spans)
}

fn stages(lines: &mut Vec<Line<'static>>, app: &App, turn: &TurnSummary, d: &TurnDetail, t: Theme) {
    let l = &turn.latency;
    // the breakdown, part by part, flagged values named instead of drawn
    let mut spans = vec![Span::raw(format!(
        "e2e {} = ",
        match l.valid_e2e_ns() {
            Some(e) => format_latency(e),
            None => "⚠ invalid".into(),
        }
    ))];
    for (i, (part, glyph)) in PARTS.iter().enumerate() {
        let name = part.name();
        let v = l.value(*part);
        let bad = l.is_flagged(*part) || v.is_some_and(|r| r < 0);
        if i > 0 {
            spans.push(Span::raw(" + "));
        }
        let text = if bad {
            format!("{glyph} {name} ⚠{}", format_opt_latency(v))
        } else {
            format!("{glyph} {name} {}", format_opt_latency(v))
        };
        spans.push(Span::styled(
            text,
            if bad { t.warn() } else { t.part(name) },
        ));
    }
    lines.push(Line::from(spans));
    if !l.flags.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("⚠ flags (not drawn as valid): {}", l.flags_text(", ")),
            t.warn(),
        )));
    }
    if let Some(r) = l.reported_e2e_ns {
        let mut s = vec![Span::raw(format!(
            "agent-reported e2e {}",
            format_latency(r)
        ))];
        if let (Some(e), true) = (l.e2e_ns, l.reported_mismatch()) {
            s.push(Span::styled(
                format!(
                    "  ⚠ differs from the stage timings by {}",
                    format_latency(r - e)
                ),
                t.warn(),
            ));
        }
        lines.push(Line::from(s));
    }
    lines.push(honesty(app, turn, t));
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(
        format!(
            "{:<10} {:>10} {:>10} {:>9}  details",
            "stage", "start", "end", "duration"
        ),
        t.dim(),
    )));
    if d.stages.is_empty() {
        lines.push(Line::from(Span::styled(
            "(no stage timings recorded)",
            t.dim(),
        )));
    }
    for s in &d.stages {
        let duration = match s.duration_ns() {
            Some(x) => format_latency(x as i64),
            None => "⚠ negative".into(),
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<10}", inline(s.stage.as_str())),
                t.part(s.stage.as_str()),
            ),
            Span::raw(format!(
                " {:>10} {:>10} {:>9}  {}",
                format_clock_tenths(s.start_ns),
                format_clock_tenths(s.end_ns),
                duration,
                stage_attrs(s)
            )),
        ]));
    }
}

fn stage_attrs(s: &StageTiming) -> String {
    let mut a = Vec::new();
    if let Some(m) = &s.model {
        match &s.provider {
            Some(p) => a.push(format!("model {} ({})", inline(m), inline(p))),
            None => a.push(format!("model {}", inline(m))),
        }
    }
    if let Some(x) = s.ttft_ns {
        a.push(format!("ttft {}", format_latency(x as i64)));
    }
    if let Some(x) = s.ttfb_ns {
        a.push(format!("ttfb {}", format_latency(x as i64)));
    }
    match (s.prompt_tokens, s.completion_tokens) {
        (Some(p), Some(c)) => a.push(format!("tokens {p}→{c}")),
        (Some(p), None) => a.push(format!("prompt tokens {p}")),
        (None, Some(c)) => a.push(format!("completion tokens {c}")),
        _ => {}
    }
    if let Some(c) = s.characters {
        a.push(format!("{c} chars"));
    }
    if s.cancelled {
        a.push("CANCELLED".into());
    }
    for (k, v) in &s.attributes {
        a.push(format!("{}={}", inline(k), inline(&compact(v))));
    }
    if let Stage::Custom(_) = s.stage {
        a.push("(custom stage)".into());
    }
    a.join("  ")
}

/// The gap heard in the audio, next to the reported e2e.
fn honesty(app: &App, turn: &TurnSummary, t: Theme) -> Line<'static> {
    let label = Span::raw("heard in audio: ");
    if app.call.archive.header().tracks.is_empty() {
        return Line::from(vec![
            label,
            Span::styled("no audio tracks in this call", t.dim()),
        ]);
    }
    let Some(g) = app.gap(turn.turn) else {
        return Line::from(vec![label, Span::styled("measuring…", t.dim())]);
    };
    let m = g.measured;
    let Some(gap) = m.gap_ns() else {
        return Line::from(vec![
            label,
            Span::styled(
                "no user speech followed by agent speech found around this turn",
                t.dim(),
            ),
        ]);
    };
    let mut spans = vec![
        label,
        Span::raw(format!(
            "user stops {} → agent starts {} = {}",
            format_clock_tenths(m.user_end_ns.unwrap_or(0)),
            format_clock_tenths(m.agent_start_ns.unwrap_or(0)),
            format_latency(gap)
        )),
    ];
    match turn.latency.valid_e2e_ns() {
        Some(e2e) if turn.latency.heard_mismatch(gap) => spans.push(Span::styled(
            format!(
                "  ⚠ MISMATCH: {} vs reported e2e {}",
                format_latency(gap - e2e),
                format_latency(e2e)
            ),
            t.error(),
        )),
        Some(e2e) => spans.push(Span::styled(
            format!(
                "  ✓ matches reported e2e (±{})",
                format_latency((gap - e2e).abs())
            ),
            t.ok(),
        )),
        None => spans.push(Span::styled(
            "  (no valid reported e2e to compare)",
            t.dim(),
        )),
    }
    Line::from(spans)
}

fn tools(lines: &mut Vec<Line<'static>>, d: &TurnDetail, t: Theme) {
    if d.tools.is_empty() {
        lines.push(Line::from(Span::styled(
            "(no tool calls in this turn)",
            t.dim(),
        )));
    }
    for c in &d.tools {
        let ok = if c.is_error {
            Span::styled("✗ ERROR", t.error())
        } else {
            Span::styled("✓ ok", t.ok())
        };
        lines.push(Line::from(vec![
            Span::styled(inline(&c.name).into_owned(), t.title()),
            Span::raw(format!(
                "  {}  {} +{}  ",
                c.call_id
                    .as_deref()
                    .map(|i| inline(i).into_owned())
                    .unwrap_or_default(),
                format_clock_tenths(c.start_ns),
                c.end_ns
                    .checked_sub(c.start_ns)
                    .map(|x| format_latency(x as i64))
                    .unwrap_or_else(|| "⚠ negative".into())
            )),
            ok,
        ]));
        json_block(lines, "  arguments: ", &c.arguments, t);
        json_block(lines, "  output:    ", &c.output, t);
    }
}

fn json_block(lines: &mut Vec<Line<'static>>, label: &str, v: &Value, t: Theme) {
    let text = match v {
        Value::String(s) => s.clone(),
        v if v.to_string().chars().count() <= 100 => v.to_string(),
        v => serde_json::to_string_pretty(v).unwrap_or_default(),
    };
    for (i, l) in safe_lines(&text).into_iter().enumerate() {
        let prefix = if i == 0 {
            label.to_string()
        } else {
            " ".repeat(label.chars().count())
        };
        lines.push(Line::from(vec![
            Span::styled(prefix, t.dim()),
            Span::raw(l),
        ]));
    }
}

fn events(lines: &mut Vec<Line<'static>>, d: &TurnDetail, t: Theme) {
    if d.events.is_empty() {
        lines.push(Line::from(Span::styled(
            "(no events in this turn)",
            t.dim(),
        )));
    }
    for (at, e) in &d.events {
        let style = match e.name.as_str() {
            "error" => t.error(),
            "interruption" | "overlapping_speech" => t.warn(),
            _ => t.plain(),
        };
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|(k, v)| format!("{}={}", inline(k), inline(&compact(v))))
            .collect();
        lines.push(Line::from(vec![
            Span::raw(format!("{} ", format_clock_tenths(*at))),
            Span::styled(format!("{:<20}", inline(&e.name)), style),
            Span::raw(format!(" {}", attrs.join("  "))),
        ]));
    }
}

fn logs(lines: &mut Vec<Line<'static>>, d: &TurnDetail, t: Theme) {
    if d.logs.is_empty() {
        lines.push(Line::from(Span::styled("(no logs in this turn)", t.dim())));
    }
    for (at, l) in &d.logs {
        let level = l.level.to_ascii_uppercase();
        let style = match level.as_str() {
            "ERROR" => t.error(),
            "WARN" => t.warn(),
            _ => t.plain(),
        };
        let fields: Vec<String> = l
            .fields
            .iter()
            .map(|(k, v)| format!("{}={}", inline(k), inline(&compact(v))))
            .collect();
        lines.push(Line::from(vec![
            Span::raw(format!("{} ", format_clock_tenths(*at))),
            Span::styled(format!("{:<5} ", inline(&level)), style),
            Span::styled(format!("{} ", inline(&l.target)), t.dim()),
            Span::raw(format!("{}  {}", inline(&l.message), fields.join(" "))),
        ]));
    }
}

fn state(lines: &mut Vec<Line<'static>>, app: &App, d: &TurnDetail, t: Theme) {
    if d.snapshots.is_empty() {
        lines.push(Line::from(Span::styled(
            "(no state snapshot in this turn)",
            t.dim(),
        )));
        return;
    }
    let prev_turn = app
        .selected
        .and_then(|i| i.checked_sub(1))
        .map(|i| app.turns()[i].turn);
    let prev = prev_turn.and_then(|p| app.turn_detail(p));
    // the last snapshot of each scope
    let mut scopes: BTreeMap<&str, &Value> = BTreeMap::new();
    for s in &d.snapshots {
        scopes.insert(&s.scope, &s.value);
    }
    for (scope, value) in scopes {
        lines.push(Line::from(Span::styled(
            format!("scope {}", inline(scope)),
            t.title(),
        )));
        json_block(lines, "  ", value, t);
        match (prev_turn, prev) {
            (None, _) => lines.push(Line::from(Span::styled(
                "  (first turn: nothing to diff against)",
                t.dim(),
            ))),
            (Some(p), None) => lines.push(Line::from(Span::styled(
                format!("  loading turn {p} to diff…"),
                t.dim(),
            ))),
            (Some(p), Some(pd)) => match pd.snapshots.iter().rev().find(|s| s.scope == scope) {
                None => lines.push(Line::from(Span::styled(
                    format!(
                        "  (no {} snapshot in turn {p} to diff against)",
                        inline(scope)
                    ),
                    t.dim(),
                ))),
                Some(old) => {
                    lines.push(Line::from(Span::styled(
                        format!("  diff vs turn {p}:"),
                        t.dim(),
                    )));
                    let diff = json_diff(&old.value, value);
                    if diff.is_empty() {
                        lines.push(Line::raw("    (unchanged)"));
                    }
                    for (mark, text) in diff {
                        let style = match mark {
                            '+' => t.ok(),
                            '-' => t.error(),
                            _ => t.warn(),
                        };
                        lines.push(Line::from(Span::styled(
                            format!("    {mark} {}", inline(&text)),
                            style,
                        )));
                    }
                }
            },
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The state diff as the TUI draws it: `+ path = value`, `- path = value`,
/// `~ path: old → new`.
pub fn json_diff(old: &Value, new: &Value) -> Vec<(char, String)> {
    crate::export::json_diff::diff(old, new)
        .iter()
        .map(|c| match c {
            Change::Added { new, .. } => ('+', format!("{} = {new}", c.path())),
            Change::Removed { old, .. } => ('-', format!("{} = {old}", c.path())),
            Change::Changed { old, new, .. } => ('~', format!("{}: {old} → {new}", c.path())),
        })
        .collect()
}
