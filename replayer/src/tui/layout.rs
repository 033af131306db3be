//! Where each region sits for a terminal size. Rendering and mouse hit-testing both use these
//! functions, so a click lands on what was drawn.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use super::app::DetailTab;

/// Below this the screen shows only a "terminal too small" message.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// Width of the timeline's lane labels.
pub const LANE_LABEL: u16 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub notice: Option<Rect>,
    pub timeline: Rect,
    pub turns: Rect,
    pub transcript: Rect,
    pub details: Rect,
    pub status: Rect,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// `notice` is how many rows the notice line needs (0 when there is none).
pub fn areas(area: Rect, notice: u16) -> Areas {
    let tall = area.height >= 30;
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(if area.height >= 20 { 4 } else { 3 }),
            Constraint::Length(notice),
            Constraint::Length(if tall { 8 } else { 6 }),
            Constraint::Fill(2),
            Constraint::Fill(3),
            Constraint::Length(1),
        ])
        .split(area);
    let split = if area.width >= 110 { 55 } else { 60 };
    let middle = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(split), Constraint::Fill(1)])
        .split(rows[3]);
    Areas {
        header: rows[0],
        notice: (notice > 0).then_some(rows[1]),
        timeline: rows[2],
        turns: middle[0],
        transcript: middle[1],
        details: rows[4],
        status: rows[5],
    }
}

/// Inside of a bordered block.
pub fn inner(r: Rect) -> Rect {
    Rect {
        x: r.x.saturating_add(1),
        y: r.y.saturating_add(1),
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(2),
    }
}

/// First visible row of a list so the selected row stays in view (near the middle).
pub fn list_offset(selected: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    selected.saturating_sub(height / 2).min(len - height)
}

/// The plot part of the timeline (right of the lane labels).
pub fn timeline_plot(timeline: Rect) -> Rect {
    let i = inner(timeline);
    Rect {
        x: i.x + LANE_LABEL.min(i.width),
        width: i.width.saturating_sub(LANE_LABEL),
        ..i
    }
}

/// Labels of the detail tabs as drawn, with their x offsets inside the details pane.
pub fn tab_labels() -> Vec<(u16, String, DetailTab)> {
    let mut x = 1;
    DetailTab::ALL
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let label = format!(" {} {} ", i + 1, t.title());
            let at = x;
            x += label.chars().count() as u16 + 1;
            (at, label, t)
        })
        .collect()
}

/// The tab under a click in the details pane's tab row, if any.
pub fn tab_at(details: Rect, x: u16, y: u16) -> Option<DetailTab> {
    let row = inner(details).y;
    if y != row {
        return None;
    }
    let rel = x.checked_sub(inner(details).x)?;
    tab_labels()
        .into_iter()
        .find(|(at, l, _)| rel >= *at && rel < at + l.chars().count() as u16)
        .map(|(_, _, t)| t)
}

pub fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
}
