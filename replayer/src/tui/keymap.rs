//! Keys and mouse to actions. The help screen (`?`) is generated from [`HELP`], so what it
//! shows is what is bound.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;

use super::action::Action;
use super::app::{App, DetailTab, Pane};
use super::layout::{self, contains};
use crate::export::wav::TrackChoice;

/// Every binding, as shown under `?`.
pub const HELP: &[(&str, &str)] = &[
    (
        "j / ↓   k / ↑",
        "next / previous turn (scrolls in Transcript and Details)",
    ),
    ("g / Home   G / End", "first / last turn"),
    ("s   S", "next / previous slow turn"),
    ("e   E", "next / previous turn with an error"),
    ("h / ←   l / →", "seek the cursor −5 s / +5 s"),
    ("+ / =   -", "zoom the timeline in / out"),
    ("/   n   N", "search the transcript, next / previous match"),
    ("Tab   Shift-Tab", "next / previous pane"),
    (
        "[   ]   1-5",
        "previous / next detail tab, or tab by number",
    ),
    ("PgDn   PgUp", "scroll the details"),
    ("p   u   a", "play the turn: both (stereo) / user / agent"),
    ("x", "stop playing"),
    ("w", "write the turn's audio to ./<session>-turn<N>.wav"),
    (
        "r   f",
        "replay in real time (start / pause), speed ×1 ×2 ×4",
    ),
    (
        "mouse",
        "click a turn, a timeline point or a tab; wheel scrolls",
    ),
    ("?   Esc", "this help / close"),
    ("q   Ctrl-C", "quit"),
];

pub fn on_key(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.search.editing.is_some() {
        return match key.code {
            KeyCode::Enter => Some(Action::SearchSubmit),
            KeyCode::Esc => Some(Action::Escape),
            KeyCode::Backspace => Some(Action::SearchBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::SearchInput(c)),
            _ => None,
        };
    }
    if app.help {
        return match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => Some(Action::ToggleHelp),
            _ => None,
        };
    }
    let a = match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc => Action::Escape,
        KeyCode::Char('d') if ctrl => Action::ScrollDetails(10),
        KeyCode::Char('u') if ctrl => Action::ScrollDetails(-10),
        KeyCode::Char('j') | KeyCode::Down => Action::NextTurn,
        KeyCode::Char('k') | KeyCode::Up => Action::PrevTurn,
        KeyCode::Char('g') | KeyCode::Home => Action::FirstTurn,
        KeyCode::Char('G') | KeyCode::End => Action::LastTurn,
        KeyCode::Char('s') => Action::NextSlow,
        KeyCode::Char('S') => Action::PrevSlow,
        KeyCode::Char('e') => Action::NextError,
        KeyCode::Char('E') => Action::PrevError,
        KeyCode::Char('h') | KeyCode::Left => Action::Seek(-5),
        KeyCode::Char('l') | KeyCode::Right => Action::Seek(5),
        KeyCode::Char('+') | KeyCode::Char('=') => Action::ZoomIn,
        KeyCode::Char('-') => Action::ZoomOut,
        KeyCode::Char('/') => Action::SearchStart,
        KeyCode::Char('n') => Action::NextMatch,
        KeyCode::Char('N') => Action::PrevMatch,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Char(']') => Action::NextTab,
        KeyCode::Char('[') => Action::PrevTab,
        KeyCode::Char(c @ '1'..='5') => Action::Tab(DetailTab::ALL[(c as u8 - b'1') as usize]),
        KeyCode::PageDown => Action::ScrollDetails(10),
        KeyCode::PageUp => Action::ScrollDetails(-10),
        KeyCode::Char('p') => Action::Play(TrackChoice::Stereo),
        KeyCode::Char('u') => Action::Play(TrackChoice::User),
        KeyCode::Char('a') => Action::Play(TrackChoice::Agent),
        KeyCode::Char('x') => Action::StopAudio,
        KeyCode::Char('w') => Action::WriteWav,
        KeyCode::Char('r') => Action::ToggleReplay,
        KeyCode::Char('f') => Action::CycleSpeed,
        _ => return None,
    };
    Some(a)
}

pub fn on_mouse(app: &App, ev: MouseEvent) -> Option<Action> {
    let screen = Rect::new(0, 0, app.size.0, app.size.1);
    if app.help || layout::too_small(screen) {
        return None;
    }
    let areas = layout::areas(screen, super::render::notice_rows(app, screen.width));
    let (x, y) = (ev.column, ev.row);
    let down = |d: i32| match ev.kind {
        MouseEventKind::ScrollDown => Some(d),
        MouseEventKind::ScrollUp => Some(-d),
        _ => None,
    };
    if contains(areas.turns, x, y) {
        if let Some(d) = down(1) {
            return Some(if d > 0 {
                Action::NextTurn
            } else {
                Action::PrevTurn
            });
        }
        if let MouseEventKind::Down(MouseButton::Left) = ev.kind {
            let inner = layout::inner(areas.turns);
            if !contains(inner, x, y) {
                return Some(Action::Focus(Pane::Turns));
            }
            let offset = layout::list_offset(
                app.selected.unwrap_or(0),
                app.turns().len(),
                inner.height as usize,
            );
            let i = offset + (y - inner.y) as usize;
            return (i < app.turns().len()).then_some(Action::SelectTurn(i));
        }
    } else if contains(areas.timeline, x, y) {
        if let Some(d) = down(5) {
            return Some(Action::Seek(i64::from(d)));
        }
        if let MouseEventKind::Down(MouseButton::Left) = ev.kind {
            let plot = layout::timeline_plot(areas.timeline);
            if contains(plot, x, y) && plot.width > 0 {
                let (v0, v1) = app.view();
                let t = v0 + (v1 - v0) * u64::from(x - plot.x) / u64::from(plot.width);
                return Some(Action::SeekTo(t));
            }
            return Some(Action::Focus(Pane::Timeline));
        }
    } else if contains(areas.transcript, x, y) {
        if let Some(d) = down(3) {
            return Some(Action::ScrollTranscript(d));
        }
        if let MouseEventKind::Down(MouseButton::Left) = ev.kind {
            return Some(Action::Focus(Pane::Transcript));
        }
    } else if contains(areas.details, x, y) {
        if let Some(d) = down(3) {
            return Some(Action::ScrollDetails(d));
        }
        if let MouseEventKind::Down(MouseButton::Left) = ev.kind {
            return Some(match layout::tab_at(areas.details, x, y) {
                Some(t) => Action::Tab(t),
                None => Action::Focus(Pane::Details),
            });
        }
    }
    None
}
