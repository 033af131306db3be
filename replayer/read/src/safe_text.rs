//! Makes recorded text safe to show: control characters, ANSI/OSC escape sequences (`ESC[2J`,
//! OSC 0 window titles, OSC 52 clipboard writes) and bidi overrides from transcripts, tool
//! output, logs or tags are shown inert, never interpreted. The one sanitizer: the TUI draws
//! with [`inline`]/[`lines`], and every CLI command's text goes through [`terminal`] (plain
//! text) or [`json`] (JSON) on its way to stdout or stderr (`calltape::export::emit`).

use std::borrow::Cow;

/// Multi-line text for a terminal: as [`inline`], but line breaks and tabs are kept (a `\r`
/// before a line break too); every other control character is made visible.
pub fn terminal(text: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !text.chars().any(|c| needs_escape(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if keep(c) || (c == '\r' && chars.peek() == Some(&'\n')) {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON made safe for a terminal without changing what it parses to: the C1 and
/// bidi controls and DEL that a JSON serializer leaves raw inside strings become `\uXXXX`
/// escapes (C0 controls are escaped by every serializer already; outside strings JSON holds
/// no control characters).
pub fn json(text: &str) -> Cow<'_, str> {
    let raw = |c: char| needs_escape(c) && !c.is_ascii_whitespace();
    if !text.chars().any(raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if raw(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

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
    fn terminal_text_keeps_its_lines_and_nothing_else() {
        let s = terminal("a\x1b[2J\tb\r\nc\x1b]52;c;ZXZpbA==\x07\rd\u{9b}e\n");
        assert_eq!(s, "a␛[2J\tb\r\nc␛]52;c;ZXZpbA==␇␍d\\u{9b}e\n");
        assert!(matches!(terminal("two\nlines\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_json() {
        let v = serde_json::json!({"t": "x\u{1b}]0;title\u{7}\u{9b}2J\u{202e}\u{7f}y"});
        let text = serde_json::to_string(&v).unwrap();
        let safe = json(&text);
        assert!(
            !safe.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn bidi_overrides_are_shown() {
        assert_eq!(inline("a\u{202e}b"), "a\\u{202e}b");
    }
}
