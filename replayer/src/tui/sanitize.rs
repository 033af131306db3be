//! Makes recorded text safe to draw: control characters, ANSI/OSC escape sequences and bidi
//! overrides from transcripts, tool output or logs are shown inert, never interpreted.

use std::borrow::Cow;

/// Text for one terminal line: every control character becomes a visible stand-in
/// (`ESC` → `␛`, other C0 → `␀`…`␟`, `DEL` → `␡`, C1 and bidi controls → `\u{..}`),
/// newlines become `⏎` and tabs a space.
pub fn inline(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`inline`], but keeps line breaks: returns the lines, each one safe to draw.
pub fn lines(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|l| inline(l.strip_suffix('\r').unwrap_or(l)).into_owned())
        .collect()
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push('⏎'),
        '\t' => out.push(' '),
        '\u{7f}' => out.push('␡'),
        // C0 controls have "control pictures" at U+2400 + code (ESC → ␛)
        c if (c as u32) < 0x20 => {
            out.push(char::from_u32(0x2400 + c as u32).expect("control picture exists"))
        }
        c if c.is_control() || is_bidi_control(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

/// Cuts `text` to at most `width` characters, ending with `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_inert() {
        let s = inline("red \x1b[31mX\x1b]0;title\x07 \u{9b}2J end\r\n");
        assert_eq!(s, "red ␛[31mX␛]0;title␇ \\u{9b}2J end␍⏎");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(inline("hello, world"), Cow::Borrowed(_)));
    }

    #[test]
    fn bidi_overrides_are_shown() {
        assert_eq!(inline("a\u{202e}b"), "a\\u{202e}b");
    }
}
