//! Every view of the replayer on ratatui's TestBackend, driven by scripted keys over a
//! fixture archive, with insta snapshots of the screen after each step.

mod tui_support;

use calltape::tui::Harness;
use crossterm::event::MouseEventKind;
use tui_support::*;

fn open(dir: &tempfile::TempDir) -> Harness {
    let path = write_to(dir.path(), "call.calltape", &archive_bytes());
    let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
    h.settle();
    h
}

#[test]
fn opens_on_the_worst_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    let screen = h.screen();
    insta::assert_snapshot!("open_worst_turn", screen);
    assert!(screen.contains("▶!   #3"), "turn 3 (slowest) is selected");
}

#[test]
fn honesty_flags_the_audio_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    let screen = h.screen();
    // reported e2e 2.80 s (vad end 10.5 s → playback 13.3 s), heard 3.20 s (agent audio at 13.7 s)
    assert!(screen.contains("⚠ MISMATCH"), "{screen}");
    assert!(screen.contains("agent-reported e2e 2.10s"), "{screen}");
}

#[test]
fn steps_through_turns() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("g");
    insta::assert_snapshot!("step_first", h.screen());
    h.press("j");
    insta::assert_snapshot!("step_second", h.screen());
    h.press("G");
    insta::assert_snapshot!("step_last", h.screen());
    h.press("k<Up>");
    assert!(h.screen().contains("▶    #3") || h.screen().contains("▶!   #3"));
}

#[test]
fn slow_and_error_navigation() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("g");
    h.press("s");
    let screen = h.screen();
    assert!(screen.contains("▶!   #3"), "{screen}");
    h.press("s");
    assert!(h.screen().contains("no slow turn after this one"));
    h.press("ge");
    assert!(h.screen().contains("▶!   #3"));
}

#[test]
fn detail_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    for (key, name) in [
        ("2", "tab_tools"),
        ("3", "tab_events"),
        ("4", "tab_state"),
        ("5", "tab_logs"),
    ] {
        h.press(key);
        insta::assert_snapshot!(name, h.screen());
    }
    h.press("]");
    assert!(h.screen().contains("[1 Stages]"));
    h.press("[");
    assert!(h.screen().contains("[5 Logs]"));
}

#[test]
fn escape_sequences_are_shown_inert() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("2");
    let tools = h.screen();
    assert!(!tools.contains('\u{1b}'));
    // JSON output keeps JSON escapes: the ESC byte is shown as the text `\u001b`
    assert!(
        tools.contains(r"carrier timeout \u001b[31mRED\u001b[0m"),
        "{tools}"
    );
    h.press("5");
    let logs = h.screen();
    assert!(!logs.contains('\u{1b}') && !logs.contains('\u{7}'));
    assert!(logs.contains("carrier said ␛]0;pwned␇␛[2J"), "{logs}");
}

#[test]
fn state_diff_against_previous_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("4");
    let s = h.screen();
    assert!(s.contains("diff vs turn 2"), "{s}");
    assert!(
        s.contains("~ intent: \"order_status\" → \"delivery_date\""),
        "{s}"
    );
    assert!(s.contains("~ order_id: null → \"A-1001\""), "{s}");
}

#[test]
fn barge_in_shows_heard_and_unheard() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("G");
    h.press("k");
    let s = h.screen();
    insta::assert_snapshot!("barge_in_turn", s);
    assert!(s.contains("✂ heard:     Your order shipped on Mo"), "{s}");
    assert!(s.contains("not heard: and should arrive by Thu"), "{s}");
}

#[test]
fn help_lists_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("?");
    insta::assert_snapshot!("help", h.screen());
    h.press("<Esc>");
    assert!(!h.screen().contains(" Keys "));
}

#[test]
fn search_and_jump_between_matches() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("g/ORDER");
    insta::assert_snapshot!("search_prompt", h.screen());
    h.press("<Enter>");
    let s = h.screen();
    assert!(s.contains("match 1/5 for \"ORDER\""), "{s}");
    h.press("n");
    assert!(h.screen().contains("match 2/5"));
    h.press("N");
    assert!(h.screen().contains("match 1/5"));
    h.press("/zebra<Enter>");
    assert!(h.screen().contains("no matches for \"zebra\""));
}

#[test]
fn zoom_seek_and_panes() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("++");
    insta::assert_snapshot!("zoomed_in", h.screen());
    h.press("lll");
    assert!(h.screen().contains("▲ 00:25.") || h.screen().contains("▲ 00:24."));
    h.press("---");
    h.press("<Tab>");
    assert!(h.screen().contains("●  Timeline"));
    h.press("<Tab><Tab>");
    assert!(h.screen().contains("●  Details"));
}

#[test]
fn mouse_selects_turns_timeline_points_and_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    // turn rows start below the header (4), timeline (8) and the turns border: row 13 = turn 1
    h.click(10, 13);
    assert!(h.screen().contains("▶    #1"), "{}", h.screen());
    h.mouse(MouseEventKind::ScrollDown, 10, 14);
    assert!(h.screen().contains("▶    #2"));
    // the tab row is the first row inside the details pane
    let screen = h.screen();
    let row = screen.lines().position(|l| l.contains("1 Stages")).unwrap() as u16;
    let col = screen
        .lines()
        .nth(row as usize)
        .unwrap()
        .chars()
        .position(|c| c == 'L')
        .unwrap() as u16;
    h.click(col, row);
    assert!(h.screen().contains("[5 Logs]"));
    // a click at the right end of the timeline plot moves the cursor near the end of the call
    h.click(115, 8);
    assert!(h.screen().contains("▶    #5"), "{}", h.screen());
}

#[test]
fn replay_mode_moves_the_cursor_and_skips_silence() {
    use calltape::tui::action::Action;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("g");
    h.press("rf");
    assert!(h.screen().contains("[REPLAY ×2 ▶]"));
    for _ in 0..20 {
        h.act(Action::Tick(Duration::from_millis(100)));
    }
    h.settle();
    // started at 0 s, 2 s of call time at ×2 → the cursor is at 00:04.0
    assert!(h.screen().contains("▲ 00:04.0"), "{}", h.screen());
    h.press("r");
    assert!(h.screen().contains("replay paused"));
}

#[test]
fn no_player_offers_a_wav() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.press("p");
    let s = h.screen();
    assert!(s.contains("no audio player ($CALLTAPE_PLAYER"), "{s}");
    assert!(
        s.contains("press w to write ./fixture-call-1-turn3.wav"),
        "{s}"
    );
    h.press("w");
    let path = dir.path().join("fixture-call-1-turn3.wav");
    assert!(h.screen().contains("wrote"), "{}", h.screen());
    let wav = hound::WavReader::open(&path).unwrap();
    assert_eq!(wav.spec().channels, 2);
    assert_eq!(wav.spec().sample_rate, RATE);
    assert!(wav.duration() > RATE, "more than a second of audio");
}

#[test]
fn small_terminal_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    h.resize(50, 12);
    insta::assert_snapshot!("too_small", h.screen());
    h.resize(60, 15);
    insta::assert_snapshot!("smallest", h.screen());
}

#[test]
fn no_color_draws_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(&dir);
    let _ = h.screen();
    // options() sets color: false, as NO_COLOR does
    let screen = h.screen();
    assert!(screen.contains("SLOW") && screen.contains('▶'));
    assert!(h.all_cells_uncoloured());
}
