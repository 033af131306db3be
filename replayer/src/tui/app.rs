//! The replayer's whole state, one plain struct: the call snapshot, what is selected, what
//! has been loaded, and the modes. Only `update.rs` changes it; render functions read it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use calltape_format::{TurnId, TurnSummary};

use super::jobs::{Job, JobEnv};
use super::model::{turn_anchor, EnergyView, SearchHit, SpanData, TurnDetail};
use super::opening::LoadedCall;
use super::player::{PlayerCmd, Playing};
use calltape_format::call::activity::TurnGap;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Options {
    /// A turn whose valid e2e exceeds this is slow.
    pub slow_ns: u64,
    /// False when NO_COLOR is set: meaning is carried by glyphs and text only.
    pub color: bool,
    /// The external audio player, if one was found.
    pub player: Option<PlayerCmd>,
    /// Where `w` writes WAV files.
    pub wav_dir: PathBuf,
    /// Open at this turn instead of the worst one.
    pub start_turn: Option<TurnId>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            slow_ns: 1_500_000_000,
            color: std::env::var_os("NO_COLOR").is_none(),
            player: None,
            wav_dir: PathBuf::from("."),
            start_turn: None,
        }
    }
}

/// The screen regions that take keyboard focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Turns,
    Timeline,
    Transcript,
    Details,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Turns, Pane::Timeline, Pane::Transcript, Pane::Details];
}

/// Tabs of the details pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailTab {
    Stages,
    Tools,
    Events,
    State,
    Logs,
}

impl DetailTab {
    pub const ALL: [DetailTab; 5] = [
        DetailTab::Stages,
        DetailTab::Tools,
        DetailTab::Events,
        DetailTab::State,
        DetailTab::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            DetailTab::Stages => "Stages",
            DetailTab::Tools => "Tools",
            DetailTab::Events => "Events",
            DetailTab::State => "State",
            DetailTab::Logs => "Logs",
        }
    }

    pub fn index(self) -> usize {
        DetailTab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

/// Timeline window widths, narrowest first; 0 = the whole call.
pub const ZOOMS_NS: [u64; 9] = [
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
    300_000_000_000,
    900_000_000_000,
    1_800_000_000_000,
    3_600_000_000_000,
    0,
];

/// The search prompt and its results.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Some while the prompt is open.
    pub editing: Option<String>,
    pub query: String,
    pub hits: Vec<SearchHit>,
    pub searching: bool,
}

/// Replay mode: the cursor moves in real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    pub speed: u32,
    pub running: bool,
}

/// What has been asked of the background jobs, so each is asked once.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    pub turn: Option<TurnId>,
    pub span: Option<(u64, u64)>,
    pub energy: Option<(u64, u64)>,
    pub gap: Option<TurnId>,
}

/// Turn details kept (a small LRU: most recent last).
pub const TURN_CACHE: usize = 16;

pub struct App {
    pub call: Arc<LoadedCall>,
    pub opts: Options,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// Index into the turn table.
    pub selected: Option<usize>,
    pub cursor_ns: u64,
    pub zoom: usize,
    pub focus: Pane,
    pub tab: DetailTab,
    pub detail_scroll: u16,
    pub transcript_scroll: i32,
    pub turn_details: VecDeque<Arc<TurnDetail>>,
    pub span: Option<Arc<SpanData>>,
    pub energy: Option<Arc<EnergyView>>,
    pub gaps: VecDeque<TurnGap>,
    pub search: Search,
    pub replay: Replay,
    pub playing: Option<Playing>,
    pub audio_pending: Option<String>,
    pub status: Option<String>,
    pub help: bool,
    pub quit: bool,
    /// Jobs to start, drained by the runner after each update.
    pub outbox: Vec<Job>,
    pub requested: Requested,
}

impl App {
    pub fn new(call: Arc<LoadedCall>, opts: Options, size: (u16, u16)) -> App {
        let mut app = App {
            call,
            opts,
            size,
            selected: None,
            cursor_ns: 0,
            zoom: 2,
            focus: Pane::Turns,
            tab: DetailTab::Stages,
            detail_scroll: 0,
            transcript_scroll: 0,
            turn_details: VecDeque::new(),
            span: None,
            energy: None,
            gaps: VecDeque::new(),
            search: Search::default(),
            replay: Replay {
                speed: 1,
                running: false,
            },
            playing: None,
            audio_pending: None,
            status: None,
            help: false,
            quit: false,
            outbox: Vec::new(),
            requested: Requested::default(),
        };
        let start = app
            .opts
            .start_turn
            .and_then(|id| app.turns().iter().position(|t| t.turn == id))
            .or_else(|| app.worst_turn());
        if let Some(i) = start.or((!app.turns().is_empty()).then_some(0)) {
            app.selected = Some(i);
            app.cursor_ns = turn_anchor(&app.turns()[i]);
        }
        super::update::request_data(&mut app);
        app
    }

    pub fn turns(&self) -> &[TurnSummary] {
        &self.call.archive.summary.turns
    }

    pub fn selected_turn(&self) -> Option<&TurnSummary> {
        self.selected.and_then(|i| self.turns().get(i))
    }

    pub fn duration_ns(&self) -> u64 {
        self.call.archive.summary.duration_ns
    }

    /// The turn with the largest valid e2e.
    pub fn worst_turn(&self) -> Option<usize> {
        self.turns()
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.latency.valid_e2e_ns().map(|e| (e, i)))
            .max_by_key(|&(e, i)| (e, std::cmp::Reverse(i)))
            .map(|(_, i)| i)
    }

    pub fn is_slow(&self, t: &TurnSummary) -> bool {
        calltape_format::call::latency::is_slow(
            &t.latency,
            i64::try_from(self.opts.slow_ns).unwrap_or(i64::MAX),
        )
    }

    pub fn has_error(t: &TurnSummary) -> bool {
        t.errors > 0 || t.tool_errors > 0
    }

    pub fn turn_detail(&self, turn: TurnId) -> Option<&Arc<TurnDetail>> {
        self.turn_details.iter().find(|d| d.turn == turn)
    }

    pub fn gap(&self, turn: TurnId) -> Option<&TurnGap> {
        self.gaps.iter().find(|g| g.turn == turn)
    }

    /// The timeline window: `zoom` wide, around the cursor, inside the call.
    pub fn view(&self) -> (u64, u64) {
        let dur = self.duration_ns().max(1);
        let w = match ZOOMS_NS[self.zoom] {
            0 => dur,
            w => w.min(dur),
        };
        let start = self
            .cursor_ns
            .saturating_sub(w / 2)
            .min(dur.saturating_sub(w));
        (start, start + w)
    }

    pub fn env(&self) -> JobEnv {
        JobEnv {
            call: self.call.clone(),
        }
    }
}
