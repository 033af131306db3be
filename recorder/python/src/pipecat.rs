//! `PipecatMapping`: the Pipecat mapping of `calltape-import` for the live observer
//! (`calltape.pipecat.CalltapeObserver`). The observer hands each frame over as the same
//! neutral event a Whisker recording gives the importer; the records the mapping produces go
//! straight onto the session's queue, so a live recording and an import of the same call agree.

use std::sync::{Mutex, PoisonError};

use calltape_import::pipecat::{FrameEvent, Mapping};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};

use crate::convert::json_value;
use crate::recording::Session;

/// Replays Pipecat frames into a session's records.
#[pyclass(module = "calltape._calltape", frozen)]
pub struct PipecatMapping {
    /// `None` once finished.
    mapping: Mutex<Option<Mapping>>,
}

#[pymethods]
impl PipecatMapping {
    /// `t0_unix_ns`: the unix time (ns) of the session's time 0.
    #[new]
    fn new(t0_unix_ns: i64) -> Self {
        PipecatMapping {
            mapping: Mutex::new(Some(Mapping::new(t0_unix_ns))),
        }
    }

    /// Feeds one frame (in time order): its class name, session ns, the processor that
    /// pushed it and its fields (JSON-like). The records it completes are queued on `session`.
    /// Returns the turn in progress.
    #[pyo3(signature = (session, frame, t_ns, source, fields=None))]
    fn feed(
        &self,
        session: &Session,
        frame: &str,
        t_ns: i64,
        source: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u32> {
        let fields = match fields {
            Some(d) => match json_value("frame fields", d.as_any())? {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let event = FrameEvent::new(t_ns, frame, source, fields);
        let mut guard = self.mapping.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(m) = guard.as_mut() else {
            return Ok(0);
        };
        m.feed(&event);
        let done = m.take_records();
        let turn = m.current_turn();
        drop(guard);
        session.record_all(done)?;
        Ok(turn)
    }

    /// Closes what is still open at `end_ns` (a turn, a playback, an unanswered call) and
    /// queues the last records. Returns the warnings as `(code, message)` pairs.
    fn finish(&self, session: &Session, end_ns: i64) -> PyResult<Vec<(String, String)>> {
        let taken = self
            .mapping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(m) = taken else {
            return Ok(Vec::new());
        };
        let mapped = m.finish(end_ns);
        let warnings = mapped.warnings.into_vec();
        session.record_all(warnings.iter().map(|w| w.to_record()).collect())?;
        session.record_all(mapped.records)?;
        Ok(warnings.into_iter().map(|w| (w.code, w.message)).collect())
    }
}
