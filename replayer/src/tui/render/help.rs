//! The `?` overlay: every key binding, from the same table the key map uses.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::theme;
use crate::tui::app::App;
use crate::tui::keymap::HELP;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let w = area.width.min(84);
    let h = (HELP.len() as u16 + 4).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let key_w = HELP
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}  "), t.title()),
                Span::raw(*d),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        " ? or Esc closes this help",
        t.dim(),
    )));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Keys ")
                .border_style(t.focus_border()),
        ),
        r,
    );
}
