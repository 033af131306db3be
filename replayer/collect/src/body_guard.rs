//! Request body limits that refuse without resetting the connection. A server that answers
//! 413 and closes while the client is still sending makes the kernel reset the connection,
//! and the client often loses the answer (it sees "connection reset" and retries). So the
//! request body is wrapped: past its limit the stream ends in an error for the handler, the
//! unread rest is kept aside, and once the handler has answered, up to [`DRAIN_MAX`] more
//! bytes (within [`DRAIN_TIME`]) are read and discarded so the 413 arrives intact. Past
//! that the connection is closed anyway. Nothing read past the limit is kept.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes read and discarded after a refusal.
pub const DRAIN_MAX: u64 = 64 << 20;
/// Longest time spent discarding.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The error a guarded body ends with past its limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {0} bytes")]
pub struct BodyTooLarge(pub u64);

#[derive(Default)]
struct Slot {
    tripped: bool,
    rest: Option<Body>,
}

/// Shared between the guarded body and the middleware that answers for it.
#[derive(Clone, Default)]
pub struct Tripwire(Arc<Mutex<Slot>>);

impl Tripwire {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the body went past its limit.
    pub fn tripped(&self) -> bool {
        self.lock().tripped
    }

    /// Reads and discards what is left of a refused body, within the bounds.
    pub async fn drain(&self) {
        let body = self.lock().rest.take();
        let Some(mut body) = body else { return };
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            let mut n = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(d) = frame.data_ref() {
                    n += d.len() as u64;
                    if n > DRAIN_MAX {
                        break;
                    }
                }
            }
        })
        .await;
    }
}

/// `body` limited to `limit` bytes.
pub fn guard(body: Body, limit: u64) -> (Body, Tripwire) {
    let wire = Tripwire::default();
    let g = Guard {
        inner: Some(body),
        seen: 0,
        limit,
        wire: wire.clone(),
    };
    (Body::new(g), wire)
}

struct Guard {
    inner: Option<Body>,
    seen: u64,
    limit: u64,
    wire: Tripwire,
}

impl HttpBody for Guard {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let too_large = |limit| Poll::Ready(Some(Err(axum::Error::new(BodyTooLarge(limit)))));
        let Some(inner) = this.inner.as_mut() else {
            return too_large(this.limit);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.seen += d.len() as u64;
                    if this.seen > this.limit {
                        let mut slot = this.wire.lock();
                        slot.tripped = true;
                        slot.rest = this.inner.take();
                        return too_large(this.limit);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(SizeHint::default, HttpBody::size_hint)
    }
}
