//! The call at a glance: who, when, how long, outcome, and the numbers that say whether it
//! went well (e2e percentiles, slow turns, interruptions, errors, dropped data).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::theme;
use crate::export::units::{format_clock_tenths, format_latency, format_opt_latency};
use crate::tui::app::App;
use crate::tui::sanitize::inline;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let s = &app.call.archive.summary;
    let h = &s.header;
    let totals = &s.totals;
    let outcome = match (&totals.outcome, &totals.end_reason) {
        (Some(o), Some(r)) => format!("{} ({})", inline(o), inline(r)),
        (Some(o), None) => inline(o).into_owned(),
        (None, Some(r)) => inline(r).into_owned(),
        (None, None) if app.call.live.is_some() => "in progress".into(),
        (None, None) => "—".into(),
    };
    let line1 = Line::from(vec![
        Span::styled(inline(&h.session_id).into_owned(), t.title()),
        Span::raw(format!("  started {}", inline(&h.started_at))),
        Span::raw(format!("  duration {}", format_clock_tenths(s.duration_ns))),
        Span::raw(format!(
            "  agent {} {}",
            inline(&h.agent.name),
            inline(&h.agent.version)
        )),
        Span::raw(format!("  outcome {outcome}")),
    ]);
    let slow = s.turns.iter().filter(|x| app.is_slow(x)).count();
    let mut spans = vec![
        Span::raw(format!("turns {}", s.turns.len())),
        Span::raw(format!(
            "  e2e p50 {} p95 {}",
            format_opt_latency(totals.e2e_p50_ns),
            format_opt_latency(totals.e2e_p95_ns)
        )),
        Span::styled(
            format!(
                "  slow {slow} (>{})",
                format_latency(app.opts.slow_ns as i64)
            ),
            if slow > 0 { t.warn() } else { t.plain() },
        ),
        Span::raw(format!("  interruptions {}", totals.interruptions)),
        Span::styled(
            format!("  errors {}", totals.errors),
            if totals.errors > 0 {
                t.error()
            } else {
                t.plain()
            },
        ),
    ];
    if totals.tool_errors > 0 {
        spans.push(Span::styled(
            format!(
                "  tools failed {}/{}",
                totals.tool_errors, totals.tool_calls
            ),
            t.error(),
        ));
    }
    if totals.dropped.is_empty() {
        spans.push(Span::raw("  dropped none"));
    } else {
        let d: Vec<String> = totals
            .dropped
            .iter()
            .map(|d| format!("{} {} {}", d.count, inline(&d.unit), inline(&d.what)))
            .collect();
        spans.push(Span::styled(
            format!("  ⚠ dropped {}", d.join(", ")),
            t.warn(),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(" calltape replay ").style(t.title()))
        .border_style(t.dim());
    let lines = if area.height >= 4 {
        vec![line1, Line::from(spans)]
    } else {
        let mut l = line1;
        l.spans.push(Span::raw("  │ "));
        l.spans.extend(spans);
        vec![l]
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The notice's text: a damaged archive, or a recording being followed.
pub fn notice_text(app: &App) -> String {
    let mut text = String::new();
    if let Some(live) = &app.call.live {
        let state = if live.finished {
            "■ recording closed"
        } else if live.error.is_some() {
            "⚠ stopped at damage"
        } else {
            "● LIVE"
        };
        text.push_str(&format!(
            "{state}: following {} ({} bytes read)  ",
            inline(&live.path.display().to_string()),
            live.good_bytes
        ));
    }
    if let Some(n) = &app.call.notice {
        text.push_str(&format!("⚠ {}", inline(n)));
    }
    text
}

/// The notice above the timeline, wrapped over its rows.
pub fn render_notice(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let style = if app.call.notice.is_some() {
        t.error()
    } else {
        t.warn()
    };
    frame.render_widget(
        Paragraph::new(Span::styled(notice_text(app), style))
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}
