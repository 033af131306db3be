//! The LiveKit Agents mapping for the live recorder (`calltape.livekit`): the Python side
//! collects the session's events and chat history in the shape of LiveKit's own
//! `SessionReport.to_dict()`, and this function runs the one mapping the importer runs
//! (`calltape_import::livekit::from_report`) and records its output into a live session:
//! the turns that are over each time a user turn starts, the rest at the close
//! (`calltape_import::livekit::settle`).
//!
//! "No extra native code" (issue 11) is read as: no new extension module and no mapping
//! written twice. This is one function in the existing `_calltape` module that hands a report
//! to the importer's mapping, so a live recording and an imported report of the same call
//! are mapped by the same code and agree turn by turn.

use calltape_import::livekit::settle::{settled_records, Progress};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::recording::Session;

/// `(warnings as (code, message), done_turns, horizon_ns)`.
type Mapped = (Vec<(String, String)>, u32, u64);

/// Maps `report_json` (a LiveKit `SessionReport.to_dict()`-shaped JSON text whose
/// `audio_recording_started_at` is the session's wall-clock start) and records into `session`,
/// each at its session time, what was not recorded yet at `(done_turns, horizon_ns)`: the
/// turns that are over, or with `last` everything left (and the mapping's warnings as
/// `import_warning` events). Returns `(warnings, done_turns, horizon_ns)`, the warnings as
/// `(code, message)` pairs. Raises `ValueError` when the text is not a JSON object,
/// `SessionFinishedError` when the session is finished.
#[pyfunction]
#[pyo3(signature = (session, report_json, done_turns=0, horizon_ns=0, last=true))]
pub fn _livekit_record_report(
    py: Python<'_>,
    session: &Session,
    report_json: &str,
    done_turns: u32,
    horizon_ns: u64,
    last: bool,
) -> PyResult<Mapped> {
    let from = Progress {
        done_turns,
        horizon_ns,
    };
    let mapped = py.detach(|| {
        let report: serde_json::Value = serde_json::from_str(report_json)
            .map_err(|e| format!("the LiveKit report is not JSON: {e}"))?;
        let call = calltape_import::livekit::from_report(&report, "live")?;
        let (records, to) = settled_records(&call, from, last);
        let warnings: Vec<(String, String)> = call
            .warnings
            .iter()
            .map(|w| (w.code.clone(), w.message.clone()))
            .collect();
        Ok::<_, String>((records, to, warnings))
    });
    let (records, to, warnings) = mapped.map_err(|reason| {
        PyValueError::new_err(format!(
            "calltape.livekit: the session's events could not be mapped: {reason}"
        ))
    })?;
    session.record_all(records)?;
    Ok((warnings, to.done_turns, to.horizon_ns))
}
