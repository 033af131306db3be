//! The bottom line: the search prompt while typing, else modes (replay, playing, loading),
//! the last message, and where help is.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme;
use crate::tui::app::App;
use crate::tui::sanitize::inline;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    if let Some(q) = &app.search.editing {
        let line = Line::from(vec![
            Span::styled("search: /", t.title()),
            Span::raw(inline(q).into_owned()),
            Span::styled("█", t.plain()),
            Span::styled("   Enter search  Esc cancel", t.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut spans = Vec::new();
    if app.replay.running {
        spans.push(Span::styled(
            format!("[REPLAY ×{} ▶] ", app.replay.speed),
            t.warn(),
        ));
    }
    if let Some(p) = &app.playing {
        spans.push(Span::styled(format!("[♪ {}] ", p.label), t.ok()));
    } else if let Some(p) = &app.audio_pending {
        spans.push(Span::styled(format!("[preparing {p}…] "), t.dim()));
    }
    let loading = app
        .selected_turn()
        .is_some_and(|s| app.turn_detail(s.turn).is_none())
        || app.span.is_none()
        || app.search.searching;
    if loading {
        spans.push(Span::styled("⟳ loading ", t.dim()));
    }
    if let Some(s) = &app.status {
        spans.push(Span::raw(inline(s).into_owned()));
    }
    let right = " ? help  q quit";
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let pad = (area.width as usize).saturating_sub(used + right.chars().count());
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(right, t.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
