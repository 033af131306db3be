//! The one place state changes: `update` applies an [`Action`], `on_job` a background result,
//! `on_live` a new snapshot of a followed recording. Each ends by asking for the data the new
//! state needs (`request_data`), as jobs in the app's outbox.

use std::sync::Arc;
use std::time::Duration;

use super::action::Action;
use super::app::{App, DetailTab, Pane, Requested, TURN_CACHE, ZOOMS_NS};
use super::jobs::{Job, JobKind, JobResult, MAX_ENERGY_SPAN_NS};
use super::model::{turn_anchor, turn_index_at};
use super::opening::LoadedCall;
use super::player::Playing;
use crate::export::units::{format_clock_tenths, format_latency};
use crate::export::wav::TrackChoice;

const SEC: u64 = 1_000_000_000;
/// Context loaded around the cursor for the transcript.
const TRANSCRIPT_CONTEXT_NS: u64 = 60 * SEC;
/// Replay mode jumps over silences longer than this.
const LONG_SILENCE_NS: u64 = 2 * SEC;
/// A turn's audio is played or written up to this long.
const MAX_CLIP_NS: u64 = 120 * SEC;

pub fn update(app: &mut App, action: Action) {
    match action {
        Action::Quit => {
            app.playing = None;
            app.quit = true;
        }
        Action::ToggleHelp => app.help = !app.help,
        Action::Escape => {
            if app.search.editing.take().is_some() {
            } else if app.help {
                app.help = false;
            } else {
                app.status = None;
            }
        }
        Action::NextTurn => step(app, 1),
        Action::PrevTurn => step(app, -1),
        Action::FirstTurn => select(app, 0),
        Action::LastTurn => select(app, app.turns().len().saturating_sub(1)),
        Action::SelectTurn(i) => {
            app.focus = Pane::Turns;
            select(app, i)
        }
        Action::NextSlow => find_turn(app, true, "slow", |a, t| a.is_slow(t)),
        Action::PrevSlow => find_turn(app, false, "slow", |a, t| a.is_slow(t)),
        Action::NextError => find_turn(app, true, "error", |_, t| App::has_error(t)),
        Action::PrevError => find_turn(app, false, "error", |_, t| App::has_error(t)),
        Action::Seek(s) => {
            let d = s.unsigned_abs() * SEC;
            let t = if s < 0 {
                app.cursor_ns.saturating_sub(d)
            } else {
                app.cursor_ns.saturating_add(d)
            };
            move_cursor(app, t)
        }
        Action::SeekTo(t) => move_cursor(app, t),
        Action::ZoomIn => app.zoom = app.zoom.saturating_sub(1),
        Action::ZoomOut => app.zoom = (app.zoom + 1).min(ZOOMS_NS.len() - 1),
        Action::FocusNext | Action::FocusPrev => {
            let i = Pane::ALL.iter().position(|&p| p == app.focus).unwrap_or(0);
            let n = Pane::ALL.len();
            let j = if action == Action::FocusNext {
                i + 1
            } else {
                i + n - 1
            };
            app.focus = Pane::ALL[j % n];
        }
        Action::Focus(p) => app.focus = p,
        Action::NextTab | Action::PrevTab => {
            let n = DetailTab::ALL.len();
            let i = app.tab.index();
            let j = if action == Action::NextTab {
                i + 1
            } else {
                i + n - 1
            };
            set_tab(app, DetailTab::ALL[j % n]);
        }
        Action::Tab(t) => set_tab(app, t),
        Action::ScrollDetails(n) => {
            app.detail_scroll = (i32::from(app.detail_scroll) + n).clamp(0, 10_000) as u16
        }
        Action::ScrollTranscript(n) => {
            app.transcript_scroll = (app.transcript_scroll + n).clamp(-10_000, 10_000)
        }
        Action::SearchStart => app.search.editing = Some(String::new()),
        Action::SearchInput(c) => {
            if let Some(s) = &mut app.search.editing {
                s.push(c)
            }
        }
        Action::SearchBackspace => {
            if let Some(s) = &mut app.search.editing {
                s.pop();
            }
        }
        Action::SearchSubmit => {
            let q = app.search.editing.take().unwrap_or_default();
            if !q.trim().is_empty() {
                app.search.query = q.clone();
                app.search.hits.clear();
                app.search.searching = true;
                app.status = Some(format!("searching transcripts for \"{q}\"…"));
                app.outbox.push(Job::Search { query: q });
            }
        }
        Action::NextMatch => jump_match(app, true),
        Action::PrevMatch => jump_match(app, false),
        Action::Play(tracks) => play(app, tracks),
        Action::StopAudio => {
            if app.playing.take().is_some() {
                app.status = Some("playback stopped".into());
            }
        }
        Action::WriteWav => write_wav(app),
        Action::ToggleReplay => {
            app.replay.running = !app.replay.running;
            if app.replay.running && app.cursor_ns >= app.duration_ns() {
                app.cursor_ns = 0;
            }
            app.status = Some(if app.replay.running {
                format!(
                    "replay ×{} from {}",
                    app.replay.speed,
                    format_clock_tenths(app.cursor_ns)
                )
            } else {
                "replay paused".into()
            });
        }
        Action::CycleSpeed => {
            app.replay.speed = match app.replay.speed {
                1 => 2,
                2 => 4,
                _ => 1,
            };
            app.status = Some(format!("replay speed ×{}", app.replay.speed));
        }
        Action::Resize(w, h) => app.size = (w, h),
        Action::Tick(dt) => tick(app, dt),
    }
    request_data(app);
}

fn set_tab(app: &mut App, t: DetailTab) {
    app.tab = t;
    app.detail_scroll = 0;
    app.focus = Pane::Details;
}

fn select(app: &mut App, i: usize) {
    let Some(t) = app.turns().get(i) else {
        return;
    };
    app.cursor_ns = turn_anchor(t);
    app.selected = Some(i);
    app.detail_scroll = 0;
    app.transcript_scroll = 0;
}

fn step(app: &mut App, d: i64) {
    match app.focus {
        Pane::Details => update_scroll_details(app, d as i32),
        Pane::Transcript => app.transcript_scroll += d as i32,
        _ => {
            let n = app.turns().len();
            if n == 0 {
                return;
            }
            let i = app.selected.unwrap_or(0) as i64 + d;
            select(app, i.clamp(0, n as i64 - 1) as usize);
        }
    }
}

fn update_scroll_details(app: &mut App, d: i32) {
    app.detail_scroll = (i32::from(app.detail_scroll) + d).clamp(0, 10_000) as u16;
}

fn find_turn(
    app: &mut App,
    forward: bool,
    what: &str,
    pred: impl Fn(&App, &calltape_format::TurnSummary) -> bool,
) {
    let n = app.turns().len();
    let cur = app.selected.unwrap_or(0);
    let found = if forward {
        (cur + 1..n).find(|&i| pred(app, &app.turns()[i]))
    } else {
        (0..cur).rev().find(|&i| pred(app, &app.turns()[i]))
    };
    match found {
        Some(i) => {
            select(app, i);
            app.status = None;
        }
        None => {
            app.status = Some(format!(
                "no {what} turn {} this one",
                if forward { "after" } else { "before" }
            ))
        }
    }
}

fn move_cursor(app: &mut App, t: u64) {
    app.cursor_ns = t.min(app.duration_ns());
    if let Some(i) = turn_index_at(app.turns(), app.cursor_ns) {
        if app.selected != Some(i) {
            app.detail_scroll = 0;
        }
        app.selected = Some(i);
    }
    app.transcript_scroll = 0;
}

fn jump_match(app: &mut App, forward: bool) {
    if app.search.hits.is_empty() {
        app.status = Some(if app.search.query.is_empty() {
            "no search yet: press / to search the transcript".into()
        } else {
            format!("no matches for \"{}\"", app.search.query)
        });
        return;
    }
    let hits = &app.search.hits;
    let c = app.cursor_ns;
    let idx = if forward {
        hits.iter().position(|h| h.at_ns > c).unwrap_or(0)
    } else {
        hits.iter()
            .rposition(|h| h.at_ns < c)
            .unwrap_or(hits.len() - 1)
    };
    let hit = hits[idx].clone();
    let n = hits.len();
    move_cursor(app, hit.at_ns);
    if let Some(i) = hit
        .turn
        .and_then(|id| app.turns().iter().position(|t| t.turn == id))
    {
        app.selected = Some(i);
    }
    app.status = Some(format!(
        "match {}/{} for \"{}\" at {}",
        idx + 1,
        n,
        app.search.query,
        format_clock_tenths(hit.at_ns)
    ));
}

/// The selected turn's audio range: from its start to its end (or the next turn), capped.
fn clip_range(app: &App) -> Option<(u64, u64, u32)> {
    let i = app.selected?;
    let t = &app.turns()[i];
    let next = app.turns().get(i + 1).map(|n| n.start_ns);
    let end = t
        .end_ns
        .or(next)
        .unwrap_or(app.duration_ns())
        .max(t.start_ns + SEC);
    Some((t.start_ns, end.min(t.start_ns + MAX_CLIP_NS), t.turn))
}

fn wav_name(app: &App, turn: u32) -> String {
    let id: String = app
        .call
        .session_id()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}-turn{turn}.wav")
}

fn play(app: &mut App, tracks: TrackChoice) {
    let Some((from, to, turn)) = clip_range(app) else {
        app.status = Some("no turn selected".into());
        return;
    };
    if app.opts.player.is_none() {
        app.status = Some(format!(
            "no audio player ($CALLTAPE_PLAYER, paplay, aplay, ffplay, afplay): press w to write ./{}",
            wav_name(app, turn)
        ));
        return;
    }
    app.playing = None;
    let label = format!("turn {turn} {}", tracks.label());
    app.audio_pending = Some(label.clone());
    app.status = Some(format!("preparing audio of {label}…"));
    app.outbox.push(Job::Audio {
        tracks,
        from_ns: from,
        to_ns: to,
        label,
        dest: None,
    });
}

fn write_wav(app: &mut App) {
    let Some((from, to, turn)) = clip_range(app) else {
        app.status = Some("no turn selected".into());
        return;
    };
    let roles: Vec<_> = app
        .call
        .archive
        .header()
        .tracks
        .iter()
        .map(|t| t.role)
        .collect();
    let tracks = match (
        roles.contains(&calltape_format::Speaker::User),
        roles.contains(&calltape_format::Speaker::Agent),
    ) {
        (true, true) => TrackChoice::Stereo,
        (true, false) => TrackChoice::User,
        (false, true) => TrackChoice::Agent,
        (false, false) => {
            app.status = Some("this call has no audio tracks".into());
            return;
        }
    };
    let path = app.opts.wav_dir.join(wav_name(app, turn));
    app.status = Some(format!("writing {}…", path.display()));
    app.outbox.push(Job::Audio {
        tracks,
        from_ns: from,
        to_ns: to,
        label: format!("turn {turn}"),
        dest: Some(path),
    });
}

fn tick(app: &mut App, dt: Duration) {
    if let Some(p) = &mut app.playing {
        if p.finished() {
            let label = p.label.clone();
            app.playing = None;
            app.status = Some(format!("finished playing {label}"));
        }
    }
    if !app.replay.running {
        return;
    }
    let adv = (dt.as_nanos() as u64).saturating_mul(u64::from(app.replay.speed));
    let mut c = app.cursor_ns.saturating_add(adv);
    // skip long silences: outside every turn and far from the next one
    let turns = app.turns();
    let active = turns.iter().enumerate().any(|(i, t)| {
        let end = t
            .end_ns
            .or(turns.get(i + 1).map(|n| n.start_ns))
            .unwrap_or(u64::MAX);
        c >= t.start_ns && c <= end
    });
    if !active {
        if let Some(next) = turns.iter().map(|t| t.start_ns).find(|&s| s > c) {
            if next - c > LONG_SILENCE_NS {
                let to = next - SEC / 2;
                app.status = Some(format!(
                    "replay ×{}: skipped {} of silence",
                    app.replay.speed,
                    format_latency((to - c) as i64)
                ));
                c = to;
            }
        }
    }
    if c >= app.duration_ns() {
        c = app.duration_ns();
        app.replay.running = false;
        app.status = Some("replay reached the end of the call".into());
    }
    move_cursor(app, c);
}

/// Applies a background job's result.
pub fn on_job(app: &mut App, result: JobResult) {
    match result {
        JobResult::Turns(details) => {
            // loaded: a later visit asks again for what the cache has dropped since
            app.requested.turn = None;
            for d in details {
                app.turn_details.retain(|x| x.turn != d.turn);
                app.turn_details.push_back(d);
            }
            while app.turn_details.len() > TURN_CACHE {
                app.turn_details.pop_front();
            }
        }
        JobResult::Span(s) => app.span = Some(s),
        JobResult::Energy(e) => app.energy = Some(e),
        JobResult::Gap(g) => {
            app.gaps.retain(|x| x.turn != g.turn);
            app.gaps.push_back(g);
            while app.gaps.len() > 64 {
                app.gaps.pop_front();
            }
        }
        JobResult::Search { query, hits } => {
            if query == app.search.query {
                app.search.searching = false;
                app.search.hits = hits;
                if app.search.hits.is_empty() {
                    app.status = Some(format!("no matches for \"{query}\""));
                } else {
                    jump_match(app, true);
                }
            }
        }
        JobResult::AudioReady { wav, label } => {
            app.audio_pending = None;
            if let Some(player) = app.opts.player.clone() {
                match Playing::spawn(&player, wav.into_path(), label.clone()) {
                    Ok(p) => {
                        app.status = Some(format!(
                            "♪ playing {label} with {} (x stops)",
                            player.name()
                        ));
                        app.playing = Some(p);
                    }
                    Err(e) => app.status = Some(format!("⚠ {e}")),
                }
            }
        }
        JobResult::WavWritten(path) => app.status = Some(format!("wrote {}", path.display())),
        JobResult::Failed { kind, message } => {
            match kind {
                JobKind::Audio => app.audio_pending = None,
                JobKind::Search => app.search.searching = false,
                _ => {}
            }
            app.status = Some(format!("⚠ {kind:?} failed: {message}"));
        }
    }
    request_data(app);
}

/// Applies a new snapshot of a followed recording: new turns appear; the newest turn stays
/// selected if it was.
pub fn on_live(app: &mut App, call: LoadedCall) {
    let n_before = app.turns().len();
    let was_last = app.selected.is_none_or(|i| i + 1 >= n_before);
    let selected_id = app.selected_turn().map(|t| t.turn);
    if let Some(last) = app.turns().last().map(|t| t.turn) {
        // the last turn may have grown: forget what was loaded for it
        app.turn_details.retain(|d| d.turn < last);
        app.gaps.retain(|g| g.turn < last);
    }
    app.call = Arc::new(call);
    app.requested = Requested::default();
    let n = app.turns().len();
    if n > 0 {
        if was_last {
            if app.selected != Some(n - 1) {
                select(app, n - 1);
            }
        } else if let Some(id) = selected_id {
            app.selected = app.turns().iter().position(|t| t.turn == id);
        }
    }
    if let Some(live) = &app.call.live {
        if live.finished {
            app.status = Some("the recording was closed: the call is complete".into());
        }
    }
    request_data(app);
}

/// Queues the jobs the current state needs and does not have yet.
pub fn request_data(app: &mut App) {
    let dur = app.duration_ns();
    let has_audio = !app.call.archive.header().tracks.is_empty();
    if let Some(i) = app.selected {
        let call = app.call.clone();
        let turns = &call.archive.summary.turns;
        let t = &turns[i];
        let next = turns.get(i + 1).map(|n| n.start_ns);
        // the selected turn and the one before it (the State tab diffs against it): either
        // can be missing while the other is loaded, e.g. a turn first loaded as the one
        // before the turn the call opened on
        let mut list = Vec::new();
        if i > 0 && app.turn_detail(turns[i - 1].turn).is_none() {
            list.push((turns[i - 1].turn, turns[i - 1].start_ns, Some(t.start_ns)));
        }
        if app.turn_detail(t.turn).is_none() {
            list.push((t.turn, t.start_ns, next));
        }
        if !list.is_empty() && app.requested.turn != Some(t.turn) {
            app.outbox.push(Job::LoadTurns(list));
            app.requested.turn = Some(t.turn);
        }
        if has_audio && app.gap(t.turn).is_none() && app.requested.gap != Some(t.turn) {
            let id = t.turn;
            app.outbox.push(Job::MeasureGap { turn: id });
            app.requested.gap = Some(id);
        }
    }
    let (v0, v1) = app.view();
    let (v0, v1) = (v0.min(dur), v1.min(dur));
    let c = app.cursor_ns.min(dur);
    let around = (
        c.saturating_sub(TRANSCRIPT_CONTEXT_NS),
        (c + TRANSCRIPT_CONTEXT_NS).min(dur),
    );
    let need = if v1 - v0 <= MAX_ENERGY_SPAN_NS {
        (v0.min(around.0), v1.max(around.1))
    } else {
        around
    };
    if !covers(app.requested.span, need) {
        let (from, to) = widen(need, dur, MAX_ENERGY_SPAN_NS + 2 * TRANSCRIPT_CONTEXT_NS);
        app.outbox.push(Job::LoadSpan {
            from_ns: from,
            to_ns: to,
        });
        app.requested.span = Some((from, to));
    }
    if has_audio && v1 - v0 <= MAX_ENERGY_SPAN_NS && !covers(app.requested.energy, (v0, v1)) {
        let (from, to) = widen((v0, v1), dur, MAX_ENERGY_SPAN_NS);
        app.outbox.push(Job::Energy {
            from_ns: from,
            to_ns: to,
        });
        app.requested.energy = Some((from, to));
    }
}

fn covers(have: Option<(u64, u64)>, need: (u64, u64)) -> bool {
    have.is_some_and(|(a, b)| a <= need.0 && b >= need.1)
}

/// `span` with half its width added on each side, inside `[0, dur]` and at most `max` wide.
fn widen(span: (u64, u64), dur: u64, max: u64) -> (u64, u64) {
    let w = span.1 - span.0;
    let extra = (w / 2).min(max.saturating_sub(w) / 2);
    (span.0.saturating_sub(extra), (span.1 + extra).min(dur))
}
