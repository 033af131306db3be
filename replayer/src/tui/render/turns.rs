//! One row per turn: a stacked latency bar whose segments are letters (E eou, S stt, L llm
//! ttft, T tts ttfb, F tool, · unexplained rest), the e2e total, and marks for slow (`!`,
//! `SLOW`), interrupted (`✂`) and failed (`✗`) turns. Flagged values are named, not drawn.

use calltape_format::call::latency::Part;
use calltape_format::Speaker;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane_block, theme};
use crate::export::units::format_latency;
use crate::tui::app::{App, Pane};
use crate::tui::layout::{inner, list_offset};
use crate::tui::sanitize::truncate;

/// Latency parts in the order the bar draws them, with their glyphs.
pub const PARTS: [(Part, char); 6] = [
    (Part::Eou, 'E'),
    (Part::Stt, 'S'),
    (Part::Llm, 'L'),
    (Part::Tts, 'T'),
    (Part::Tool, 'F'),
    (Part::Rest, '·'),
];

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let title = Line::from(vec![
        Span::styled(" Turns ", t.title()),
        Span::raw("E eou S stt L llm T tts F tool · rest "),
    ]);
    let block = pane_block(app, Pane::Turns, title);
    let inside = inner(area);
    frame.render_widget(block, area);
    let turns = app.turns();
    if turns.is_empty() {
        frame.render_widget(Paragraph::new("no turns recorded (yet)"), inside);
        return;
    }
    let bar_w = (inside.width as usize).saturating_sub(9 + 7 + 9).max(4);
    let scale = turns
        .iter()
        .filter_map(|x| x.latency.valid_e2e_ns())
        .max()
        .unwrap_or(1)
        .max(app.opts.slow_ns as i64)
        .max(1);
    let sel = app.selected.unwrap_or(0);
    let offset = list_offset(sel, turns.len(), inside.height as usize);
    let mut lines = Vec::new();
    for (i, turn) in turns
        .iter()
        .enumerate()
        .skip(offset)
        .take(inside.height as usize)
    {
        let selected = app.selected == Some(i);
        let slow = app.is_slow(turn);
        let spk = match turn.speaker {
            Speaker::User => 'U',
            Speaker::Agent => 'A',
            _ => '?',
        };
        let mut spans = vec![Span::raw(format!(
            "{}{}{:>5} {spk} ",
            if selected { '▶' } else { ' ' },
            if slow { '!' } else { ' ' },
            format!("#{}", turn.turn)
        ))];
        let valid = turn.latency.valid_e2e_ns();
        match valid {
            Some(e2e) => {
                let mut used = 0usize;
                for (part, glyph) in PARTS {
                    let Some(v) = turn.latency.valid(part) else {
                        continue;
                    };
                    if v <= 0 {
                        continue;
                    }
                    let cells = ((v as f64 * bar_w as f64 / scale as f64).round() as usize)
                        .min(bar_w - used);
                    if cells == 0 {
                        continue;
                    }
                    used += cells;
                    spans.push(Span::styled(
                        glyph.to_string().repeat(cells),
                        t.part(part.name()),
                    ));
                }
                // nothing reported at all: the whole e2e is unexplained
                if used == 0 && e2e > 0 {
                    let cells =
                        ((e2e as f64 * bar_w as f64 / scale as f64).round() as usize).min(bar_w);
                    used = cells;
                    spans.push(Span::styled("·".repeat(cells), t.part("rest")));
                }
                spans.push(Span::raw(" ".repeat(bar_w - used)));
                spans.push(Span::styled(
                    format!(" {:>6}", format_latency(e2e)),
                    if slow { t.warn() } else { t.plain() },
                ));
            }
            None => {
                let note = if turn.latency.flags.is_empty() {
                    if turn.speaker == Speaker::Agent {
                        "(agent-opened turn)".to_string()
                    } else {
                        "(no e2e)".to_string()
                    }
                } else {
                    format!("⚠ {}", turn.latency.flags_text(" "))
                };
                let style = if turn.latency.flags.is_empty() {
                    t.dim()
                } else {
                    t.warn()
                };
                spans.push(Span::styled(
                    format!("{:<bar_w$}", truncate(&note, bar_w)),
                    style,
                ));
                spans.push(Span::raw(format!(" {:>6}", "—")));
            }
        }
        let mut tags = Vec::new();
        if slow {
            tags.push("SLOW".to_string());
        }
        if turn.interrupted {
            tags.push("✂".into());
        }
        if turn.errors > 0 {
            tags.push(format!("✗{}", turn.errors));
        }
        if turn.tool_errors > 0 {
            tags.push(format!("✗{}tool", turn.tool_errors));
        }
        if valid.is_some() && !turn.latency.flags.is_empty() {
            tags.push("⚠".into());
        }
        spans.push(Span::styled(format!(" {}", tags.join(" ")), t.warn()));
        let mut line = Line::from(spans);
        if selected {
            line = line.style(t.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inside);
}
