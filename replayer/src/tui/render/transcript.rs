//! What was said around the cursor: user and agent lines in time order, interim hypotheses
//! marked `~`, and for an interrupted agent line what was generated and what was heard.

use calltape_format::Speaker;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane_block, theme};
use crate::export::units::format_clock_tenths;
use crate::tui::app::{App, Pane};
use crate::tui::layout::inner;
use crate::tui::sanitize::inline;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let title = Line::from(vec![
        Span::styled(" Transcript ", t.title()),
        Span::raw("~ interim  ✂ cut off "),
    ]);
    let block = pane_block(app, Pane::Transcript, title);
    let inside = inner(area);
    frame.render_widget(block, area);
    let Some(span) = &app.span else {
        frame.render_widget(
            Paragraph::new(Span::styled("loading transcript…", t.dim())),
            inside,
        );
        return;
    };
    // (time, line) pairs; an interrupted agent line takes two
    let mut rows: Vec<(u64, Line)> = Vec::new();
    for l in &span.transcripts {
        let (who, style) = match l.speaker {
            Speaker::User => ("USER ", t.user()),
            Speaker::Agent => ("AGENT", t.agent()),
            _ => ("OTHER", t.plain()),
        };
        let (who, style): (String, Style) = if l.is_final {
            (who.to_string(), style)
        } else {
            (format!("{}~", who.trim_end().to_lowercase()), t.interim())
        };
        let time = format_clock_tenths(l.at_ns);
        if l.speaker == Speaker::Agent && l.interrupted {
            // what the caller heard, then what was generated but cut off
            let heard = l.heard_text.as_deref().map(str::trim);
            let unheard = heard
                .and_then(|h| l.text.trim().strip_prefix(h))
                .map(str::trim);
            let pad = " ".repeat(time.chars().count() + 1);
            match (heard, unheard) {
                (Some(h), Some(rest)) => {
                    rows.push((
                        l.at_ns,
                        Line::from(vec![
                            Span::raw(format!("{time} ")),
                            Span::styled(format!("{who:<6}✂ heard:     "), style),
                            Span::raw(inline(h).into_owned()),
                        ]),
                    ));
                    rows.push((
                        l.at_ns,
                        Line::from(vec![
                            Span::raw(pad),
                            Span::styled(format!("{:<6}  not heard: ", ""), style),
                            Span::styled(inline(rest).into_owned(), t.warn()),
                        ]),
                    ));
                }
                _ => {
                    rows.push((
                        l.at_ns,
                        Line::from(vec![
                            Span::raw(format!("{time} ")),
                            Span::styled(format!("{who:<6}✂ generated: "), style),
                            Span::raw(inline(&l.text).into_owned()),
                        ]),
                    ));
                    rows.push((
                        l.at_ns,
                        Line::from(vec![
                            Span::raw(pad),
                            Span::styled(format!("{:<6}  heard:     ", ""), style),
                            Span::styled(
                                heard
                                    .map(|h| inline(h).into_owned())
                                    .unwrap_or_else(|| "(not recorded)".into()),
                                t.warn(),
                            ),
                        ]),
                    ));
                }
            }
        } else {
            rows.push((
                l.at_ns,
                Line::from(vec![
                    Span::raw(format!("{time} ")),
                    Span::styled(format!("{who:<6} "), style),
                    Span::styled(
                        inline(&l.text).into_owned(),
                        if l.is_final { t.plain() } else { t.interim() },
                    ),
                ]),
            ));
        }
    }
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("(nothing said around the cursor)", t.dim())),
            inside,
        );
        return;
    }
    let h = inside.height as i64;
    let focus = rows
        .iter()
        .rposition(|(at, _)| *at <= app.cursor_ns)
        .unwrap_or(0);
    let top = (focus as i64 - h / 2 + i64::from(app.transcript_scroll))
        .clamp(0, (rows.len() as i64 - h).max(0)) as usize;
    let lines: Vec<Line> = rows
        .into_iter()
        .enumerate()
        .skip(top)
        .take(h as usize)
        .map(|(i, (_, mut line))| {
            line.spans
                .insert(0, Span::raw(if i == focus { "▶" } else { " " }));
            if i == focus {
                line = line.style(t.selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inside);
}
