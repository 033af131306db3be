//! Colours and emphasis. With NO_COLOR set every colour is dropped; meaning is always also
//! carried by a glyph or a word (`▶` selected, `!`/`SLOW`, `✂`, `✗`, `⚠`, stage letters).

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn plain(self) -> Style {
        Style::new()
    }
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn focus_border(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn user(self) -> Style {
        self.fg(Color::LightBlue)
    }
    pub fn agent(self) -> Style {
        self.fg(Color::LightMagenta)
    }
    pub fn interim(self) -> Style {
        self.dim().add_modifier(Modifier::ITALIC)
    }
    pub fn cursor(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    /// Colour of a latency part (its letter is the real marker).
    pub fn part(self, name: &str) -> Style {
        self.fg(match name {
            "eou" => Color::Blue,
            "stt" => Color::Cyan,
            "llm" => Color::Magenta,
            "tts" => Color::Green,
            "tool" => Color::Yellow,
            _ => Color::DarkGray,
        })
    }
}
