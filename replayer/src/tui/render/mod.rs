//! Pure drawing: `render(frame, &App)` lays the screen out and calls one function per region,
//! each `render(frame, area, &App)` in its own file. Nothing here changes state or does I/O.

mod details;
mod header;
mod help;
mod status;
mod timeline;
mod transcript;
mod turns;

use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Pane};
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::theme::Theme;

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if layout::too_small(area) {
        let msg = format!(
            "terminal too small: {}×{} (calltape replay needs at least {MIN_WIDTH}×{MIN_HEIGHT}); resize or press q",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let a = layout::areas(area, notice_rows(app, area.width));
    header::render(frame, a.header, app);
    if let Some(n) = a.notice {
        header::render_notice(frame, n, app);
    }
    timeline::render(frame, a.timeline, app);
    turns::render(frame, a.turns, app);
    transcript::render(frame, a.transcript, app);
    details::render(frame, a.details, app);
    status::render(frame, a.status, app);
    if app.help {
        help::render(frame, area, app);
    }
}

/// Rows the notice above the timeline needs (damaged archive, live recording): 0 without one.
pub fn notice_rows(app: &App, width: u16) -> u16 {
    if app.call.notice.is_none() && app.call.live.is_none() {
        return 0;
    }
    let len = header::notice_text(app).chars().count();
    if len > usize::from(width) {
        2
    } else {
        1
    }
}

pub(crate) fn theme(app: &App) -> Theme {
    Theme {
        color: app.opts.color,
    }
}

/// A pane's frame; the focused pane has a thick border and a `●` in its title.
pub(crate) fn pane_block<'a>(app: &App, pane: Pane, title: Line<'a>) -> Block<'a> {
    let t = theme(app);
    let focused = app.focus == pane;
    let mut title = title;
    if focused {
        title.spans.insert(0, "● ".into());
    }
    let b = Block::bordered().title(title);
    if focused {
        b.border_type(BorderType::Thick)
            .border_style(t.focus_border())
    } else {
        b.border_style(t.dim())
    }
}
