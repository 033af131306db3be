//! The `tracing` feature: a `tracing_subscriber` layer that records log events (and,
//! optionally, span timings as custom stages) into the archive of the session they belong to.
//!
//! A span belongs to a session when it (or a parent) has the field `calltape.session` set to
//! the session id: `tracing::info_span!("call", calltape.session = %id)`. Events inside it
//! become `log` records (message, level, target, the other fields). A field `turn` (integer)
//! on the event or span sets the record's turn.

use std::sync::Weak;

use calltape_format::{Attributes, LogLine, Record, Stage, StageTiming};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes as SpanAttributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::recorder::{Recorder, Shared};
use crate::session::{Session, SessionHandle};

/// Field naming the session a span belongs to.
pub const SESSION_FIELD: &str = "calltape.session";

/// See the module docs. Create with [`Recorder::tracing_layer`].
pub struct CalltapeLayer {
    shared: Weak<Shared>,
    span_stages: bool,
}

impl Recorder {
    /// A layer that records log events of each session's spans into its archive.
    pub fn tracing_layer(&self) -> CalltapeLayer {
        CalltapeLayer {
            shared: std::sync::Arc::downgrade(self.shared()),
            span_stages: false,
        }
    }
}

impl CalltapeLayer {
    /// Also records every closed span inside a session as a `stage_timing` whose stage is the
    /// span's name (a custom stage unless it is `llm`, `tts`, …).
    pub fn with_span_stages(mut self, yes: bool) -> Self {
        self.span_stages = yes;
        self
    }
}

struct SpanData {
    session: Weak<SessionHandle>,
    start_ns: u64,
    turn: Option<u32>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    session: Option<String>,
    turn: Option<u32>,
    fields: Attributes,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::String(s) => s,
                    v => v.to_string(),
                })
            }
            SESSION_FIELD => {
                self.session = Some(match value {
                    Value::String(s) => s,
                    v => v.to_string(),
                })
            }
            "turn" => {
                self.turn = value.as_u64().and_then(|t| u32::try_from(t).ok());
                self.fields.insert("turn".into(), value);
            }
            name => {
                self.fields.insert(name.to_string(), value);
            }
        }
    }
}

impl<S> Layer<S> for CalltapeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        attrs.record(&mut f);
        let session = match f.session {
            Some(sid) => match self.shared.upgrade().and_then(|s| s.find_session(&sid)) {
                Some(h) => Some(h),
                None => return,
            },
            // inherit the parent's session
            None => span
                .parent()
                .and_then(|p| p.extensions().get::<SpanData>().map(|d| d.session.clone())),
        };
        let Some(session) = session else { return };
        let (start_ns, parent_turn) = match session.upgrade() {
            Some(h) => {
                let parent_turn = span
                    .parent()
                    .and_then(|p| p.extensions().get::<SpanData>().and_then(|d| d.turn));
                (Session(h).now_ns(), parent_turn)
            }
            None => return,
        };
        span.extensions_mut().insert(SpanData {
            session,
            start_ns,
            turn: f.turn.or(parent_turn),
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some((session, span_turn)) = scope.into_iter().find_map(|s| {
            s.extensions()
                .get::<SpanData>()
                .map(|d| (d.session.clone(), d.turn))
        }) else {
            return;
        };
        let Some(h) = session.upgrade() else { return };
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        Session(h).record(Record::Log(LogLine {
            turn: f.turn.or(span_turn),
            level: meta.level().as_str().to_ascii_lowercase(),
            target: meta.target().to_string(),
            message: f.message.unwrap_or_default(),
            fields: f.fields,
        }));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.span_stages {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(d) = ext.get::<SpanData>() else {
            return;
        };
        let Some(h) = d.session.upgrade() else { return };
        let s = Session(h);
        let end = s.now_ns();
        s.stage_timing(StageTiming::new(
            d.turn,
            Stage::from(span.name().to_string()),
            d.start_ns,
            end.max(d.start_ns),
        ));
    }
}
