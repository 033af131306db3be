//! Object keys: where an archive lands in the store. Default
//! `<prefix>/YYYY/MM/DD/<session-id>.calltape` (UTC date of the session start).

use std::fmt;
use std::sync::Arc;

use calltape_format::Header;
use chrono::{DateTime, Utc};
use object_store::path::Path as StorePath;

use crate::error::RecorderError;

/// What a key is made from.
#[derive(Debug, Clone)]
pub struct KeyContext<'a> {
    /// The destination URL's path (`s3://bucket/calls` → `calls`), without slashes around it.
    pub prefix: &'a str,
    pub session_id: &'a str,
    /// Session start (UTC).
    pub started_at: DateTime<Utc>,
    pub agent: &'a str,
    pub environment: Option<&'a str>,
}

type KeyFn = dyn Fn(&KeyContext<'_>) -> String + Send + Sync;

/// How archives are named in the store.
#[derive(Clone, Default)]
pub enum KeyLayout {
    /// `<prefix>/YYYY/MM/DD/<session_id>.calltape`
    #[default]
    Dated,
    /// A template with placeholders `{prefix}`, `{session_id}`, `{yyyy}`, `{mm}`, `{dd}`,
    /// `{hh}`, `{agent}`, `{environment}`; e.g. `"{prefix}/{environment}/{session_id}.calltape"`.
    /// Empty path segments are dropped.
    Template(String),
    /// Any function of the context. Its result must be a valid object path (no `..`, no empty
    /// segments once leading/trailing slashes are trimmed).
    Custom(Arc<KeyFn>),
}

impl fmt::Debug for KeyLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLayout::Dated => f.write_str("KeyLayout::Dated"),
            KeyLayout::Template(t) => write!(f, "KeyLayout::Template({t:?})"),
            KeyLayout::Custom(_) => f.write_str("KeyLayout::Custom"),
        }
    }
}

const DATED: &str = "{prefix}/{yyyy}/{mm}/{dd}/{session_id}.calltape";

impl KeyLayout {
    /// A custom key function.
    pub fn custom(f: impl Fn(&KeyContext<'_>) -> String + Send + Sync + 'static) -> Self {
        KeyLayout::Custom(Arc::new(f))
    }

    pub(crate) fn validate(&self) -> Result<(), RecorderError> {
        if let KeyLayout::Template(t) = self {
            let ctx = KeyContext {
                prefix: "p",
                session_id: "s",
                started_at: DateTime::<Utc>::UNIX_EPOCH,
                agent: "a",
                environment: Some("e"),
            };
            let out = render_template(t, &ctx);
            if out.contains('{') || out.contains('}') {
                return Err(RecorderError::InvalidKeyTemplate {
                    template: t.clone(),
                    reason: "unknown placeholder (known: {prefix} {session_id} {yyyy} {mm} {dd} \
                             {hh} {agent} {environment})"
                        .into(),
                });
            }
            if !t.contains("{session_id}") {
                return Err(RecorderError::InvalidKeyTemplate {
                    template: t.clone(),
                    reason: "it must contain {session_id}, or every call overwrites the last"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The object key for an archive with `header`, under `prefix`.
    pub fn key(&self, prefix: &str, header: &Header) -> Result<StorePath, String> {
        let started_at = DateTime::<Utc>::from_timestamp_nanos(header.started_at_unix_ns);
        let ctx = KeyContext {
            prefix: prefix.trim_matches('/'),
            session_id: &header.session_id,
            started_at,
            agent: &header.agent.name,
            environment: header.environment.as_deref(),
        };
        let raw = match self {
            KeyLayout::Dated => render_template(DATED, &ctx),
            KeyLayout::Template(t) => render_template(t, &ctx),
            KeyLayout::Custom(f) => f(&ctx),
        };
        let joined = raw
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        if joined.is_empty() {
            return Err(format!(
                "the key layout gave an empty key for {}",
                header.session_id
            ));
        }
        StorePath::parse(&joined)
            .map_err(|e| format!("the key layout gave an invalid key {joined:?}: {e}"))
    }
}

fn render_template(t: &str, ctx: &KeyContext<'_>) -> String {
    let d = ctx.started_at;
    t.replace("{prefix}", ctx.prefix)
        .replace("{session_id}", ctx.session_id)
        .replace("{yyyy}", &d.format("%Y").to_string())
        .replace("{mm}", &d.format("%m").to_string())
        .replace("{dd}", &d.format("%d").to_string())
        .replace("{hh}", &d.format("%H").to_string())
        .replace("{agent}", &sanitize(ctx.agent))
        .replace("{environment}", &sanitize(ctx.environment.unwrap_or("")))
}

/// Agent names and environments are free text: keep them to a safe alphabet in keys.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .replace("..", "__")
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltape_format::AgentInfo;

    fn header() -> Header {
        Header {
            session_id: "call-7".into(),
            started_at: "2026-11-21T23:59:59.000Z".into(),
            started_at_unix_ns: 1_795_305_599_000_000_000,
            agent: AgentInfo {
                name: "Front Desk/../x".into(),
                version: "1".into(),
            },
            environment: Some("prod".into()),
            tags: Default::default(),
            tracks: vec![],
        }
    }

    #[test]
    fn dated_default() {
        let k = KeyLayout::Dated.key("/calls/", &header()).unwrap();
        assert_eq!(k.as_ref(), "calls/2026/11/21/call-7.calltape");
        let k = KeyLayout::Dated.key("", &header()).unwrap();
        assert_eq!(k.as_ref(), "2026/11/21/call-7.calltape");
    }

    #[test]
    fn template_and_closure() {
        let t = KeyLayout::Template("{prefix}/{environment}/{agent}/{session_id}.calltape".into());
        t.validate().unwrap();
        assert_eq!(
            t.key("c", &header()).unwrap().as_ref(),
            "c/prod/Front_Desk____x/call-7.calltape"
        );
        let c = KeyLayout::custom(|ctx| format!("x/{}", ctx.session_id));
        assert_eq!(c.key("c", &header()).unwrap().as_ref(), "x/call-7");
        let bad = KeyLayout::custom(|_| "a/../b".to_string());
        assert!(bad.key("c", &header()).is_err());
    }

    #[test]
    fn template_validation() {
        assert!(KeyLayout::Template("{prefix}/{nope}/{session_id}".into())
            .validate()
            .is_err());
        assert!(KeyLayout::Template("{prefix}/fixed".into())
            .validate()
            .is_err());
    }
}
