//! The real `calltape replay` binary in tmux: open a call, press keys, read the screen with
//! `capture-pane`, quit, and check the terminal was given back. Skipped (with a note) when
//! tmux is not installed. Waits poll for text; nothing asserts a timing.

mod tui_support;

use std::process::Command;
use std::time::{Duration, Instant};

use tui_support::*;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

/// Captures the pane until `pred` holds (or gives up after a generous wait) and returns it.
fn wait_for(session: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if pred(&screen) {
            return screen;
        }
        if Instant::now() > deadline {
            panic!("waited for {what}; screen:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn replay_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("note: tmux is not installed; skipping the terminal test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_to(dir.path(), "call.calltape", &archive_bytes());
    let name = format!("calltape-test-{}", std::process::id());
    let session = Session(name.clone());
    let cmd = format!(
        "cd {} && NO_COLOR=1 CALLTAPE_PLAYER=/nonexistent/player {} replay {}; echo EXITED-$?; sleep 30",
        dir.path().display(),
        env!("CARGO_BIN_EXE_calltape"),
        path.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        &name,
        &cmd,
    ]);
    let s = wait_for(&session.0, "the first frame", |s| {
        s.contains("heard in audio: user stops")
    });
    assert!(s.contains("fixture-call-1"));
    assert!(s.contains("▶!   #3"), "opens on the worst turn:\n{s}");

    tmux(&["send-keys", "-t", &name, "g"]);
    wait_for(&name, "turn 1 selected", |s| s.contains("▶    #1"));
    tmux(&["send-keys", "-t", &name, "j", "j", "2"]);
    let s = wait_for(&name, "tools tab of turn 3", |s| {
        s.contains("[2 Tools]") && s.contains("track_parcel")
    });
    assert!(s.contains(r"\u001b[31mRED"), "escape shown inert:\n{s}");
    tmux(&["send-keys", "-t", &name, "?"]);
    wait_for(&name, "help", |s| {
        s.contains(" Keys ") && s.contains("next / previous slow turn")
    });
    tmux(&["send-keys", "-t", &name, "Escape"]);
    wait_for(&name, "help closed", |s| !s.contains(" Keys "));
    tmux(&["resize-window", "-t", &name, "-x", "50", "-y", "12"]);
    wait_for(&name, "too small", |s| s.contains("terminal too small"));
    tmux(&["resize-window", "-t", &name, "-x", "120", "-y", "40"]);
    wait_for(&name, "normal size", |s| s.contains("Details"));
    tmux(&["send-keys", "-t", &name, "q"]);
    let s = wait_for(&name, "exit", |s| s.contains("EXITED-"));
    assert!(s.contains("EXITED-0"), "{s}");
    // the alternate screen is gone: the replayer's frame is no longer on screen
    assert!(!s.contains("Transcript"), "terminal restored:\n{s}");
}

/// Starts `calltape replay` on a fixture call in a detached tmux session, with `env` set; the
/// pane shows `EXITED-<code>` when it ends, and `pid` in the call's directory holds its pid.
fn start_replay(env: &str) -> Option<(Session, tempfile::TempDir)> {
    start_replay_of(env, &archive_bytes())
}

/// [`start_replay`] on the archive `bytes`, under a 2 GiB address-space limit.
fn start_replay_of(env: &str, bytes: &[u8]) -> Option<(Session, tempfile::TempDir)> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("note: tmux is not installed; skipping the terminal test");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_to(dir.path(), "call.calltape", bytes);
    let name = format!("calltape-test-{}-{}", std::process::id(), env.len());
    let cmd = format!(
        "cd {} && ulimit -v 2097152 && {env} NO_COLOR=1 CALLTAPE_PLAYER=/nonexistent/player sh -c 'echo $$ > pid; exec {} replay {}'; echo EXITED-$?; sleep 30",
        dir.path().display(),
        env!("CARGO_BIN_EXE_calltape"),
        path.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        &name,
        &cmd,
    ]);
    Some((Session(name), dir))
}

#[test]
fn a_panic_on_a_worker_ends_the_replayer_and_gives_the_terminal_back() {
    let Some((session, _dir)) = start_replay("CALLTAPE_TEST_PANIC_IN_JOBS=1") else {
        return;
    };
    let s = wait_for(&session.0, "exit", |s| s.contains("EXITED-"));
    assert!(s.contains("EXITED-1"), "{s}");
    assert!(
        s.contains("the replayer stopped after an internal error"),
        "{s}"
    );
    assert!(!s.contains("Transcript"), "terminal restored:\n{s}");
}

#[test]
fn sigterm_quits_the_replayer_and_gives_the_terminal_back() {
    let Some((session, dir)) = start_replay("X=1") else {
        return;
    };
    wait_for(&session.0, "the first frame", |s| {
        s.contains("heard in audio: user stops")
    });
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let s = wait_for(&session.0, "exit", |s| s.contains("EXITED-"));
    assert!(s.contains("EXITED-0"), "{s}");
    assert!(!s.contains("Transcript"), "terminal restored:\n{s}");
}

#[test]
fn a_hostile_chunk_is_an_error_on_screen_and_q_still_quits() {
    let bomb = calltape_hostile::cases::empty_record_bomb(65_536);
    let Some((session, _dir)) = start_replay_of("X=1", &bomb) else {
        return;
    };
    // either the replayer opens and says what is wrong, or it refuses to open: never an abort
    let s = wait_for(&session.0, "the call or an error", |s| {
        s.contains("EXITED-") || s.contains("record")
    });
    if !s.contains("EXITED-") {
        tmux(&["send-keys", "-t", &session.0, "q"]);
    }
    let s = wait_for(&session.0, "exit", |s| s.contains("EXITED-"));
    assert!(s.contains("EXITED-0") || s.contains("EXITED-1"), "{s}");
    assert!(!s.contains("Transcript"), "terminal restored:\n{s}");
}
