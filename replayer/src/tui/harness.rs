//! A headless replayer for tests and benchmarks: the real `App`, `update` and render
//! functions on ratatui's `TestBackend`, with background jobs run inline so every step is
//! deterministic. Keys are given as a small script: `"jjk"`, `"<Tab>"`, `"/hello<Enter>"`.

use std::path::Path;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::Action;
use super::app::{App, Options};
use super::opening::{open_call, resolve_target, Follower};
use super::{jobs, keymap, render, update};
use crate::error::Result;

pub struct Harness {
    pub app: App,
    rt: tokio::runtime::Runtime,
    term: Terminal<TestBackend>,
    follower: Option<Follower>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl Harness {
    /// Opens `target` (path or URL) without running any background job yet.
    pub fn open(target: &str, opts: Options, width: u16, height: u16) -> Result<Harness> {
        let rt = runtime();
        let call = rt.block_on(async { open_call(&resolve_target(target, None)?).await })?;
        let app = App::new(Arc::new(call), opts, (width, height));
        Ok(Harness {
            app,
            rt,
            term: Terminal::new(TestBackend::new(width, height)).expect("test terminal"),
            follower: None,
        })
    }

    /// Follows a spool file; call [`Harness::poll_follow`] to pick up appended bytes.
    pub fn follow(path: &Path, opts: Options, width: u16, height: u16) -> Result<Harness> {
        let rt = runtime();
        let mut f = Follower::new(path)?;
        let call = rt.block_on(f.poll())?.ok_or_else(|| {
            crate::error::AppError::Other(format!("{}: no header frame yet", path.display()))
        })?;
        let app = App::new(Arc::new(call), opts, (width, height));
        Ok(Harness {
            app,
            rt,
            term: Terminal::new(TestBackend::new(width, height)).expect("test terminal"),
            follower: Some(f),
        })
    }

    /// Re-scans the followed file; true when something new arrived.
    pub fn poll_follow(&mut self) -> Result<bool> {
        let Some(f) = self.follower.as_mut() else {
            return Ok(false);
        };
        match self.rt.block_on(f.poll())? {
            Some(call) => {
                update::on_live(&mut self.app, call);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs queued jobs (and those their results queue) until none is left.
    pub fn settle(&mut self) {
        for _ in 0..100 {
            let jobs: Vec<_> = self.app.outbox.drain(..).collect();
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                let env = self.app.env();
                let r = self.rt.block_on(jobs::execute(&env, job));
                update::on_job(&mut self.app, r);
            }
        }
        panic!("jobs did not settle after 100 rounds");
    }

    pub fn act(&mut self, a: Action) {
        update::update(&mut self.app, a);
    }

    pub fn key(&mut self, k: KeyEvent) {
        if let Some(a) = keymap::on_key(&self.app, k) {
            self.act(a);
        }
    }

    /// Presses each key of a script and settles after each: plain characters, or
    /// `<Tab>`, `<BackTab>`, `<Enter>`, `<Esc>`, `<Up>`, `<Down>`, `<Left>`, `<Right>`,
    /// `<PgUp>`, `<PgDn>`, `<Home>`, `<End>`, `<Backspace>`, `<C-c>`.
    pub fn press(&mut self, script: &str) {
        let mut chars = script.chars().peekable();
        while let Some(c) = chars.next() {
            let key = if c == '<' && chars.peek().is_some_and(|n| n.is_ascii_uppercase()) {
                let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                match name.as_str() {
                    "Tab" => KeyEvent::from(KeyCode::Tab),
                    "BackTab" => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
                    "Enter" => KeyEvent::from(KeyCode::Enter),
                    "Esc" => KeyEvent::from(KeyCode::Esc),
                    "Up" => KeyEvent::from(KeyCode::Up),
                    "Down" => KeyEvent::from(KeyCode::Down),
                    "Left" => KeyEvent::from(KeyCode::Left),
                    "Right" => KeyEvent::from(KeyCode::Right),
                    "PgUp" => KeyEvent::from(KeyCode::PageUp),
                    "PgDn" => KeyEvent::from(KeyCode::PageDown),
                    "Home" => KeyEvent::from(KeyCode::Home),
                    "End" => KeyEvent::from(KeyCode::End),
                    "Backspace" => KeyEvent::from(KeyCode::Backspace),
                    "C-c" => KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                    other => panic!("unknown key <{other}>"),
                }
            } else {
                KeyEvent::from(KeyCode::Char(c))
            };
            self.key(key);
            self.settle();
        }
    }

    /// A left click at a screen cell.
    pub fn click(&mut self, column: u16, row: u16) {
        self.mouse(MouseEventKind::Down(MouseButton::Left), column, row);
    }

    pub fn mouse(&mut self, kind: MouseEventKind, column: u16, row: u16) {
        let ev = MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        };
        if let Some(a) = keymap::on_mouse(&self.app, ev) {
            self.act(a);
        }
        self.settle();
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.term.backend_mut().resize(width, height);
        self.act(Action::Resize(width, height));
        self.settle();
    }

    /// Draws the app and returns the screen as text, one line per row, trailing spaces cut.
    pub fn screen(&mut self) -> String {
        self.term
            .draw(|f| render::render(f, &self.app))
            .expect("draw on the test backend");
        let buf = self.term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            for x in 0..buf.area.width {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// True when the last drawn screen uses no colour at all (NO_COLOR).
    pub fn all_cells_uncoloured(&self) -> bool {
        use ratatui::style::Color;
        self.term
            .backend()
            .buffer()
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    }
}
