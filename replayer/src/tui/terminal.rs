//! The real terminal: raw mode, alternate screen and mouse capture on the way in, all three
//! restored on the way out — on quit, on error, on SIGTERM/SIGHUP and on a panic on any
//! thread (a panic hook). A panic on a background (tokio) thread also ends the app: the loop
//! sees it and stops with an error, instead of running on in a restored terminal where keys
//! no longer reach it. The event loop draws, reads input with a short timeout, and applies
//! job results as they arrive.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use super::action::Action;
use super::app::App;
use super::jobs::{JobResult, JobRunner};
use super::opening::{Follower, LoadedCall};
use super::{keymap, render, update};
use crate::error::{AppError, Result};

/// How often a followed recording is re-scanned.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Messages from background work to the UI thread.
pub enum Msg {
    Job(JobResult),
    Live(Box<LoadedCall>),
    LiveError(String),
    /// SIGTERM or SIGHUP: quit as if the user had.
    Signal,
}

fn wrap_job(r: JobResult) -> Msg {
    Msg::Job(r)
}

/// Puts the terminal back as it was; safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Set by the panic hook: some thread panicked, and the terminal was restored.
static PANICKED: AtomicBool = AtomicBool::new(false);
/// Where the panic happened and what it said, for the error the loop ends with.
static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

/// The thread running the event loop: a panic there restores the terminal at once; a panic
/// elsewhere leaves it to the loop, which would otherwise draw over the restored screen.
static UI_THREAD: std::sync::OnceLock<std::thread::ThreadId> = std::sync::OnceLock::new();

fn install_panic_hook() {
    let _ = UI_THREAD.set(std::thread::current().id());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if UI_THREAD.get() == Some(&std::thread::current().id()) {
            restore();
        }
        PANICKED.store(true, Ordering::SeqCst);
        if let Ok(mut m) = PANIC_MESSAGE.lock() {
            let thread = std::thread::current();
            *m = format!("thread '{}' {info}", thread.name().unwrap_or("?"));
        }
        previous(info);
    }));
}

/// The error to end with when a thread panicked: the app cannot be trusted to go on.
fn panicked() -> Option<AppError> {
    if !PANICKED.load(Ordering::SeqCst) {
        return None;
    }
    let what = PANIC_MESSAGE.lock().map(|m| m.clone()).unwrap_or_default();
    Some(AppError::Other(format!(
        "the replayer stopped after an internal error ({what}); please report it"
    )))
}

/// Turns SIGTERM and SIGHUP into a quit, so the terminal is restored when the replayer is
/// killed politely or its terminal goes away.
fn forward_signals(runtime: &tokio::runtime::Handle, tx: mpsc::Sender<Msg>) {
    #[cfg(unix)]
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(Msg::Signal);
    });
    #[cfg(not(unix))]
    let _ = (runtime, tx);
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn io_err(what: &str) -> impl Fn(io::Error) -> AppError + '_ {
    move |e| AppError::Io {
        what: what.to_string(),
        source: e,
    }
}

/// Runs the replayer until the user quits. Blocking: call it off the async runtime
/// (`spawn_blocking`); jobs are spawned on `runtime`.
pub fn run(
    mut app: App,
    runtime: tokio::runtime::Handle,
    follower: Option<Follower>,
) -> Result<()> {
    install_panic_hook();
    enable_raw_mode().map_err(io_err("enable raw mode"))?;
    let _guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
        .map_err(io_err("enter the alternate screen"))?;
    let mut term: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(io_err("open the terminal"))?;
    let size = term.size().map_err(io_err("read the terminal size"))?;
    update::update(&mut app, Action::Resize(size.width, size.height));

    let (tx, rx) = mpsc::channel::<Msg>();
    forward_signals(&runtime, tx.clone());
    let mut runner = JobRunner::new(runtime.clone(), tx.clone(), wrap_job);
    if let Some(mut f) = follower {
        let tx = tx.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(FOLLOW_EVERY).await;
                let msg = match f.poll().await {
                    Ok(Some(call)) => Msg::Live(Box::new(call)),
                    Ok(None) if f.done() => break,
                    Ok(None) => continue,
                    Err(e) => Msg::LiveError(e.to_string()),
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
    }
    let mut dirty = true;
    let mut last_tick = Instant::now();
    loop {
        if let Some(e) = panicked() {
            drop(runner);
            app.playing = None;
            return Err(e);
        }
        for job in std::mem::take(&mut app.outbox) {
            runner.submit(app.env(), job);
        }
        if dirty {
            term.draw(|f| render::render(f, &app))
                .map_err(io_err("draw"))?;
            dirty = false;
        }
        if app.quit {
            break;
        }
        if event::poll(Duration::from_millis(40)).map_err(io_err("read input"))? {
            let action = match event::read().map_err(io_err("read input"))? {
                Event::Key(k) => keymap::on_key(&app, k),
                Event::Mouse(m) => keymap::on_mouse(&app, m),
                Event::Resize(w, h) => Some(Action::Resize(w, h)),
                _ => None,
            };
            if let Some(a) = action {
                update::update(&mut app, a);
                dirty = true;
            }
        }
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Job(r) => update::on_job(&mut app, r),
                Msg::Live(call) => update::on_live(&mut app, *call),
                Msg::LiveError(e) => app.status = Some(format!("⚠ following stopped: {e}")),
                Msg::Signal => app.quit = true,
            }
            dirty = true;
        }
        let dt = last_tick.elapsed();
        if dt >= Duration::from_millis(50) {
            last_tick = Instant::now();
            if app.replay.running || app.playing.is_some() {
                update::update(&mut app, Action::Tick(dt));
                dirty = true;
            }
        }
    }
    drop(runner);
    app.playing = None;
    Ok(())
}
