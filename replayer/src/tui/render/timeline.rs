//! User and agent on one time axis: speech as reported (vad / playback stages, transcripts),
//! speech as heard (audio envelope), turn starts, interruptions, overlaps, errors, the
//! selected turn and the cursor.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane_block, theme};
use crate::export::units::{format_clock_short, format_clock_tenths, format_latency};
use crate::tui::app::{App, Pane};
use crate::tui::jobs::MAX_ENERGY_SPAN_NS;
use crate::tui::layout::{inner, LANE_LABEL};
use calltape_format::call::activity::Segment;
use calltape_format::call::Mark;

const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let (v0, v1) = app.view();
    let w = (v1 - v0).max(1);
    let audio_note = if app.call.archive.header().tracks.is_empty() {
        "  no audio"
    } else if w > MAX_ENERGY_SPAN_NS {
        "  audio envelope below 15 min zoom"
    } else {
        ""
    };
    let title = Line::from(vec![
        Span::styled(" Timeline ", t.title()),
        Span::raw(format!(
            "▲ {}  window {}  {}–{}{audio_note} ",
            format_clock_tenths(app.cursor_ns),
            format_latency(w as i64),
            format_clock_short(v0),
            format_clock_short(v1)
        )),
    ]);
    let block = pane_block(app, Pane::Timeline, title);
    let inside = inner(area);
    frame.render_widget(block, area);
    let pw = inside.width.saturating_sub(LANE_LABEL) as usize;
    if pw == 0 || inside.height == 0 {
        return;
    }
    let col = |c: usize| -> (u64, u64) {
        (
            v0 + w * c as u64 / pw as u64,
            v0 + w * (c as u64 + 1) / pw as u64,
        )
    };
    let cursor_col =
        ((app.cursor_ns.saturating_sub(v0)) * pw as u64 / w).min(pw as u64 - 1) as usize;
    let overlaps =
        |segs: &[Segment], a: u64, b: u64| segs.iter().any(|s| s.start_ns < b && s.end_ns >= a);
    let span = app.span.as_deref();
    let energy = app.energy.as_deref();

    // lanes, one char per column
    let mut axis = vec![' '; pw];
    let mut c = 0;
    // labels about a sixth of the window apart: tenths of a second once that is under 2 s
    let fine = w < 12_000_000_000;
    while c < pw {
        let label = if fine {
            format_clock_tenths(col(c).0)
        } else {
            format_clock_short(col(c).0)
        };
        if c + label.len() + 1 > pw {
            break;
        }
        axis[c] = '┆';
        for (k, ch) in label.chars().enumerate() {
            axis[c + 1 + k] = ch;
        }
        c += (label.len() + 4).max(pw / 6);
    }
    let speech = |agent: bool| -> Vec<char> {
        (0..pw)
            .map(|c| {
                let (a, b) = col(c);
                let segs = span.map(|s| {
                    if agent {
                        &s.agent_speech
                    } else {
                        &s.user_speech
                    }
                });
                match segs {
                    Some(s) if overlaps(s, a, b) => '█',
                    _ => ' ',
                }
            })
            .collect()
    };
    let level = |agent: bool| -> Vec<char> {
        (0..pw)
            .map(|c| {
                let (a, b) = col(c);
                match energy.and_then(|e| e.peak(agent, a, b)) {
                    Some(p) if p > 0.0 => {
                        let db = 20.0 * p.log10();
                        LEVELS[(((db + 60.0) / 60.0 * 8.0).round().clamp(0.0, 8.0)) as usize]
                    }
                    _ => ' ',
                }
            })
            .collect()
    };
    let user = speech(false);
    let agent = speech(true);
    let user_audio = level(false);
    let agent_audio = level(true);
    let heard = |agent: bool, c: usize| -> bool {
        let (a, b) = col(c);
        energy.is_some_and(|e| {
            overlaps(
                if agent {
                    &e.agent_speech
                } else {
                    &e.user_speech
                },
                a,
                b,
            )
        })
    };

    // marks: selected turn range, turn starts, events, overlap, cursor
    let mut marks = vec![' '; pw];
    if let Some(sel) = app.selected_turn() {
        let i = app.selected.unwrap_or(0);
        let end = sel
            .end_ns
            .or(app.turns().get(i + 1).map(|n| n.start_ns))
            .unwrap_or(app.duration_ns());
        for (c, m) in marks.iter_mut().enumerate() {
            let (a, b) = col(c);
            if a < end && b > sel.start_ns {
                *m = '─';
            }
        }
    }
    for c in 0..pw {
        let both = (user[c] == '█' || heard(false, c)) && (agent[c] == '█' || heard(true, c));
        if both {
            marks[c] = '≈';
        }
    }
    for turn in app.turns() {
        if turn.start_ns < v0 || turn.start_ns >= v1 {
            continue;
        }
        let c = ((turn.start_ns - v0) * pw as u64 / w) as usize;
        marks[c.min(pw - 1)] = if App::has_error(turn) {
            '✗'
        } else if app.is_slow(turn) {
            '!'
        } else if turn.interrupted {
            '✂'
        } else {
            '│'
        };
    }
    if let Some(s) = span {
        for &(at, kind) in &s.marks {
            if at < v0 || at >= v1 {
                continue;
            }
            let c = (((at - v0) * pw as u64 / w) as usize).min(pw - 1);
            marks[c] = match kind {
                Mark::Error | Mark::ToolFailure => '✗',
                Mark::Interruption => '✂',
                Mark::Overlap => '≈',
            };
        }
    }
    marks[cursor_col] = '▲';

    let row = |label: &str, cells: &[char], style: Style| -> Line<'static> {
        let mut spans = vec![Span::styled(
            format!("{label:<w$}", w = LANE_LABEL as usize),
            t.dim(),
        )];
        let before: String = cells[..cursor_col].iter().collect();
        let at: String = cells[cursor_col].to_string();
        let after: String = cells[cursor_col + 1..].iter().collect();
        spans.push(Span::styled(before, style));
        spans.push(Span::styled(at, style.patch(t.cursor())));
        spans.push(Span::styled(after, style));
        Line::from(spans)
    };
    let mut lines = vec![row("", &axis, t.dim())];
    if inside.height >= 6 {
        lines.push(row("user", &user, t.user()));
        lines.push(row(" heard", &user_audio, t.user()));
        lines.push(row("agent", &agent, t.agent()));
        lines.push(row(" heard", &agent_audio, t.agent()));
    } else {
        // compact: reported speech, else the envelope
        let merge = |rep: &[char], lvl: &[char]| -> Vec<char> {
            rep.iter()
                .zip(lvl)
                .map(|(&r, &l)| if r != ' ' { r } else { l })
                .collect()
        };
        lines.push(row("user", &merge(&user, &user_audio), t.user()));
        lines.push(row("agent", &merge(&agent, &agent_audio), t.agent()));
    }
    lines.push(row("marks", &marks, t.warn()));
    frame.render_widget(Paragraph::new(lines), inside);
}
