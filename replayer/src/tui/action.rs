//! Everything the user (or time) can ask of the replayer. Keys and mouse events are mapped
//! to these in `keymap.rs`; `update.rs` applies them to the `App`.

use std::time::Duration;

use super::app::{DetailTab, Pane};
use crate::export::wav::TrackChoice;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Quit,
    ToggleHelp,
    /// Close whatever is open (help, search prompt), else clear the status message.
    Escape,
    NextTurn,
    PrevTurn,
    FirstTurn,
    LastTurn,
    SelectTurn(usize),
    NextSlow,
    PrevSlow,
    NextError,
    PrevError,
    /// Move the cursor by this many seconds.
    Seek(i64),
    /// Put the cursor at a session time.
    SeekTo(u64),
    ZoomIn,
    ZoomOut,
    FocusNext,
    FocusPrev,
    Focus(Pane),
    NextTab,
    PrevTab,
    Tab(DetailTab),
    ScrollDetails(i32),
    ScrollTranscript(i32),
    SearchStart,
    SearchInput(char),
    SearchBackspace,
    SearchSubmit,
    NextMatch,
    PrevMatch,
    Play(TrackChoice),
    StopAudio,
    WriteWav,
    ToggleReplay,
    CycleSpeed,
    Resize(u16, u16),
    /// Time passed (replay mode, player state).
    Tick(Duration),
}
