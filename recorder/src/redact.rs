//! Redaction of personal data before anything reaches the disk: built-in rules for phone
//! numbers, e-mail addresses and (Luhn-checked) card numbers, plus user rules. Runs in the
//! background writer, never on the recording hot path.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use calltape_format::Record;
use regex::Regex;
use serde_json::Value;

use crate::error::RecorderError;

/// Replacement for a phone number.
pub const PHONE_TOKEN: &str = "[PHONE]";
/// Replacement for an e-mail address.
pub const EMAIL_TOKEN: &str = "[EMAIL]";
/// Replacement for a payment card number.
pub const CARD_TOKEN: &str = "[CARD]";

type RedactFn = dyn for<'a> Fn(&'a str) -> Cow<'a, str> + Send + Sync;

/// A user redaction rule, applied after the built-in ones.
#[derive(Clone)]
pub struct RedactionRule(RuleKind);

#[derive(Clone)]
enum RuleKind {
    Regex { re: Regex, replacement: String },
    Func(Arc<RedactFn>),
}

impl fmt::Debug for RedactionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RuleKind::Regex { re, replacement } => f
                .debug_struct("RedactionRule::Regex")
                .field("pattern", &re.as_str())
                .field("replacement", replacement)
                .finish(),
            RuleKind::Func(_) => f.write_str("RedactionRule::Func"),
        }
    }
}

impl RedactionRule {
    /// Replaces every match of `pattern` (Rust `regex` syntax) with `replacement`
    /// (`$1`, `$name` refer to capture groups).
    pub fn regex(pattern: &str, replacement: impl Into<String>) -> Result<Self, RecorderError> {
        let re = Regex::new(pattern).map_err(|source| RecorderError::InvalidRedactionRule {
            pattern: pattern.to_string(),
            source,
        })?;
        Ok(RedactionRule(RuleKind::Regex {
            re,
            replacement: replacement.into(),
        }))
    }

    /// Any function of the text; return `Cow::Borrowed` when nothing changes.
    pub fn func<F>(f: F) -> Self
    where
        F: for<'a> Fn(&'a str) -> Cow<'a, str> + Send + Sync + 'static,
    {
        RedactionRule(RuleKind::Func(Arc::new(f)))
    }

    fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match &self.0 {
            RuleKind::Regex { re, replacement } => re.replace_all(s, replacement.as_str()),
            RuleKind::Func(f) => f(s),
        }
    }
}

struct Builtin {
    email: Regex,
    card: Regex,
    phone: Regex,
    iso_date: Regex,
}

impl Builtin {
    fn new() -> Self {
        Builtin {
            email: Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
                .expect("email regex"),
            // 13 to 19 digits, optionally grouped by single spaces or dashes
            card: Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("card regex"),
            // an optional +, then digits with spaces, dots, dashes or parentheses between
            phone: Regex::new(r"(?:\+|\(|\b)\d[\d .()-]{5,}\d\b").expect("phone regex"),
            iso_date: Regex::new(r"^\d{4}-\d{2}-\d{2}").expect("date regex"),
        }
    }

    fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        // cheap exit: no digit and no '@' means nothing to mask
        if !s.bytes().any(|b| b.is_ascii_digit() || b == b'@') {
            return Cow::Borrowed(s);
        }
        let s = match self.email.replace_all(s, EMAIL_TOKEN) {
            Cow::Borrowed(_) => Cow::Borrowed(s),
            Cow::Owned(o) => Cow::Owned(o),
        };
        let s = replace_cow(s, |t| {
            self.card.replace_all(t, |c: &regex::Captures<'_>| {
                let m = &c[0];
                if luhn_valid(m) {
                    CARD_TOKEN.to_string()
                } else {
                    m.to_string()
                }
            })
        });
        replace_cow(s, |t| {
            self.phone.replace_all(t, |c: &regex::Captures<'_>| {
                let m = &c[0];
                let digits = m.bytes().filter(u8::is_ascii_digit).count();
                if (9..=15).contains(&digits) && !self.iso_date.is_match(m) {
                    PHONE_TOKEN.to_string()
                } else {
                    m.to_string()
                }
            })
        })
    }
}

fn replace_cow<'a>(s: Cow<'a, str>, f: impl for<'b> Fn(&'b str) -> Cow<'b, str>) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => f(b),
        Cow::Owned(o) => match f(&o) {
            Cow::Borrowed(_) => Cow::Owned(o),
            Cow::Owned(n) => Cow::Owned(n),
        },
    }
}

/// The Luhn checksum over the digits of `s` (other characters ignored): true for a
/// well-formed card number.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Applies the configured rules to every string and integer a record or header can carry
/// personal data in. Covered: transcripts (`text`, `heard_text`), tool names, arguments and
/// outputs, state snapshots and their scope, event names, log targets, messages and fields,
/// the session end's reason and outcome, every attribute map; in JSON values every string,
/// every object key and every integer (a card or phone number stored as a JSON number is
/// replaced by the token, as a string); in the header the tags (keys and values), the
/// environment, the agent's name and version and the track names.
///
/// Not covered (identifiers and fixed vocabularies the reader relies on): the session id
/// (it names the archive and the object key: never put personal data in it), tool `call_id`s
/// (they pair a call with its result), stage and usage `model` / `provider`, log `level`,
/// transcript `language`, `dropped` records, numbers with a fraction, and audio (record a
/// redacted audio track yourself if speech must not be kept).
///
/// Integers go through the same rules as text: one with 9 to 15 digits is masked as a phone
/// number, so an epoch-seconds timestamp in an attribute is masked too; record times as
/// RFC 3339 strings, in the record's own time fields, or in nanoseconds under a key ending in
/// `_ns` (integers there are kept: they are the format's times and durations).
#[derive(Default)]
pub struct Redactor {
    builtin: Option<Builtin>,
    rules: Vec<RedactionRule>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("pii", &self.builtin.is_some())
            .field("rules", &self.rules)
            .finish()
    }
}

impl Redactor {
    /// `pii` turns on the built-in phone, e-mail and card rules; `rules` run after them.
    pub fn new(pii: bool, rules: Vec<RedactionRule>) -> Self {
        Redactor {
            builtin: pii.then(Builtin::new),
            rules,
        }
    }

    /// True when at least one rule is configured.
    pub fn is_active(&self) -> bool {
        self.builtin.is_some() || !self.rules.is_empty()
    }

    /// Redacts one text.
    pub fn redact_str<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out = match &self.builtin {
            Some(b) => b.apply(s),
            None => Cow::Borrowed(s),
        };
        for rule in &self.rules {
            out = replace_cow(out, |t| rule.apply(t));
        }
        out
    }

    fn redact_string(&self, s: &mut String) {
        if let Cow::Owned(o) = self.redact_str(s) {
            *s = o;
        }
    }

    /// Redacts every string, object key and integer of a JSON value. An integer the rules
    /// change becomes the redacted text (a string); two keys that redact to the same text keep
    /// both values, the later one under `key~2`, `key~3`, ….
    pub fn redact_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => self.redact_string(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            Value::Object(m) => self.redact_map(m),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                let text = n.to_string();
                if let Cow::Owned(o) = self.redact_str(&text) {
                    *v = Value::String(o);
                }
            }
            _ => {}
        }
    }

    /// Redacts the keys and values of an attribute map. An integer under a key ending in
    /// `_ns` is a time or duration in the format's own unit (`reported_e2e_ns`, which the
    /// latency breakdown reads, is one) and is kept: a second in nanoseconds has the digits of
    /// a phone number.
    pub fn redact_map(&self, m: &mut serde_json::Map<String, Value>) {
        for (k, x) in m.iter_mut() {
            if !(k.ends_with("_ns") && (x.is_i64() || x.is_u64())) {
                self.redact_value(x);
            }
        }
        if !m
            .keys()
            .any(|k| matches!(self.redact_str(k), Cow::Owned(_)))
        {
            return;
        }
        let old = std::mem::take(m);
        for (k, v) in old {
            let key = self.redact_str(&k).into_owned();
            let free = if m.contains_key(&key) {
                (2u32..)
                    .map(|n| format!("{key}~{n}"))
                    .find(|c| !m.contains_key(c))
                    .expect("a free key exists")
            } else {
                key
            };
            m.insert(free, v);
        }
    }

    /// Redacts the header's tags (keys and values), environment, agent and track names.
    pub fn redact_header(&self, h: &mut calltape_format::Header) {
        if !self.is_active() {
            return;
        }
        self.redact_map(&mut h.tags);
        if let Some(e) = &mut h.environment {
            self.redact_string(e);
        }
        self.redact_string(&mut h.agent.name);
        self.redact_string(&mut h.agent.version);
        for t in &mut h.tracks {
            if let Some(n) = &mut t.name {
                self.redact_string(n);
            }
        }
    }

    /// Redacts a record in place.
    pub fn redact_record(&self, r: &mut Record) {
        if !self.is_active() {
            return;
        }
        match r {
            Record::TurnStart(x) => self.redact_map(&mut x.attributes),
            Record::TurnEnd(x) => self.redact_map(&mut x.attributes),
            Record::Transcript(x) => {
                self.redact_string(&mut x.text);
                if let Some(h) = &mut x.heard_text {
                    self.redact_string(h);
                }
                self.redact_map(&mut x.attributes);
            }
            Record::StageTiming(x) => self.redact_map(&mut x.attributes),
            Record::ToolCall(x) => {
                self.redact_string(&mut x.name);
                self.redact_value(&mut x.arguments);
                self.redact_value(&mut x.output);
                self.redact_map(&mut x.attributes);
            }
            Record::StateSnapshot(x) => {
                self.redact_string(&mut x.scope);
                self.redact_value(&mut x.value);
            }
            Record::Event(x) => {
                self.redact_string(&mut x.name);
                self.redact_map(&mut x.attributes);
            }
            Record::Log(x) => {
                self.redact_string(&mut x.target);
                self.redact_string(&mut x.message);
                self.redact_map(&mut x.fields);
            }
            Record::SessionEnd(x) => {
                self.redact_string(&mut x.reason);
                if let Some(o) = &mut x.outcome {
                    self.redact_string(o);
                }
            }
            Record::Usage(_) | Record::Dropped(_) | Record::Audio(_) | Record::Unknown { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltape_format::{Speaker, ToolCall, Transcript};
    use serde_json::json;

    fn pii() -> Redactor {
        Redactor::new(true, Vec::new())
    }

    #[test]
    fn luhn_checks_real_card_numbers() {
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("5500-0000-0000-0004"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111 1111 1111 1112"));
        assert!(!luhn_valid("1234"));
    }

    #[test]
    fn valid_card_is_masked_order_number_is_kept() {
        let r = pii();
        assert_eq!(
            r.redact_str("my card is 4111 1111 1111 1111, thanks"),
            "my card is [CARD], thanks"
        );
        assert_eq!(r.redact_str("card 4111111111111111"), "card [CARD]");
        // a random 16-digit order number fails the Luhn check and is neither a card nor a phone
        let order = "order 8237461928374652 shipped";
        assert!(!luhn_valid("8237461928374652"));
        assert_eq!(r.redact_str(order), order);
    }

    #[test]
    fn phone_numbers_are_masked() {
        let r = pii();
        assert_eq!(
            r.redact_str("call me at +1 415 555 0132"),
            "call me at [PHONE]"
        );
        assert_eq!(r.redact_str("(415) 555-0132 please"), "[PHONE] please");
        assert_eq!(r.redact_str("ring 030 12345678"), "ring [PHONE]");
        assert_eq!(r.redact_str("+49.30.1234.5678"), "[PHONE]");
    }

    #[test]
    fn dates_times_and_small_numbers_are_kept() {
        let r = pii();
        for s in [
            "2026-11-21T10:00:00.000Z",
            "on 2026-11-21 10:00:00",
            "I want 3 pizzas for 12 people at 7:30",
            "booking ref 12345",
            "total 1,299.00 dollars",
        ] {
            assert_eq!(r.redact_str(s), s);
        }
    }

    #[test]
    fn emails_are_masked() {
        let r = pii();
        assert_eq!(
            r.redact_str("write to jane.doe+calls@example.co.uk today"),
            "write to [EMAIL] today"
        );
    }

    #[test]
    fn off_by_default() {
        let r = Redactor::default();
        assert!(!r.is_active());
        assert_eq!(r.redact_str("4111 1111 1111 1111"), "4111 1111 1111 1111");
    }

    #[test]
    fn user_rules_run_after_builtins() {
        let r = Redactor::new(
            true,
            vec![
                RedactionRule::regex(r"ACCT-\d+", "[ACCOUNT]").unwrap(),
                RedactionRule::func(|s| {
                    if s.contains("secret") {
                        Cow::Owned(s.replace("secret", "[SECRET]"))
                    } else {
                        Cow::Borrowed(s)
                    }
                }),
            ],
        );
        assert_eq!(
            r.redact_str("ACCT-99 secret a@b.io"),
            "[ACCOUNT] [SECRET] [EMAIL]"
        );
        assert!(RedactionRule::regex("(", "x").is_err());
    }

    #[test]
    fn every_json_string_leaf_of_a_tool_call_is_redacted() {
        let r = pii();
        let mut rec = Record::ToolCall(ToolCall {
            turn: Some(1),
            call_id: None,
            name: "charge".into(),
            arguments: json!({"card": "4111111111111111", "contact": ["a@b.io", {"tel": "+1 415 555 0132"}], "amount": 12}),
            output: json!("charged a@b.io"),
            is_error: false,
            start_ns: 0,
            end_ns: 1,
            attributes: Default::default(),
        });
        r.redact_record(&mut rec);
        let Record::ToolCall(t) = rec else {
            unreachable!()
        };
        assert_eq!(
            t.arguments,
            json!({"card": "[CARD]", "contact": ["[EMAIL]", {"tel": "[PHONE]"}], "amount": 12})
        );
        assert_eq!(t.output, json!("charged [EMAIL]"));
    }

    #[test]
    fn transcript_text_and_heard_text_are_redacted() {
        let r = pii();
        let mut rec = Record::Transcript(Transcript {
            turn: None,
            speaker: Speaker::Agent,
            text: "I'll mail a@b.io".into(),
            is_final: true,
            confidence: None,
            language: None,
            interrupted: true,
            heard_text: Some("I'll mail a@b.io".into()),
            start_ns: None,
            end_ns: None,
            attributes: Default::default(),
        });
        r.redact_record(&mut rec);
        let Record::Transcript(t) = rec else {
            unreachable!()
        };
        assert_eq!(t.text, "I'll mail [EMAIL]");
        assert_eq!(t.heard_text.as_deref(), Some("I'll mail [EMAIL]"));
    }

    #[test]
    fn keys_and_integers_are_redacted_and_colliding_keys_keep_both_values() {
        let r = pii();
        let mut v = serde_json::json!({
            "4111111111111111": 1,
            "5500005555555559": 2,
            "amount": 12.5,
            "phone": 2065550142u64,
            "small": 42,
            "reported_e2e_ns": 1_500_000_000u64,
            "nested": {"waited_ns": 2_065_550_142u64, "callback": 2065550142u64}
        });
        r.redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "[CARD]": 1,
                "[CARD]~2": 2,
                "amount": 12.5,
                "phone": "[PHONE]",
                "small": 42,
                "reported_e2e_ns": 1_500_000_000u64,
                "nested": {"waited_ns": 2_065_550_142u64, "callback": "[PHONE]"}
            })
        );
    }
}
