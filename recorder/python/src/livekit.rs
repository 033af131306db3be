//! The LiveKit Agents mapping for the live recorder (`calltape.livekit`): the Python side
//! collects the session's events and chat history in the shape of LiveKit's own
//! `SessionReport.to_dict()`, and this function runs the one mapping the importer runs
//! (`calltape_import::livekit::from_report`) and records its output into a live session.
//!
//! "No extra native code" (issue 11) is read as: no new extension module and no mapping
//! written twice. This is one function in the existing `_calltape` module that hands a report
//! to the importer's mapping, so a live recording and an imported report of the same call
//! are mapped by the same code and agree turn by turn.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::recording::Session;

/// Maps `report_json` (a LiveKit `SessionReport.to_dict()`-shaped JSON text whose
/// `audio_recording_started_at` is the session's wall-clock start) and records every
/// resulting control record into `session` at its session time. Returns the mapping's
/// warnings as `(code, message)` pairs. Raises `ValueError` when the text is not a JSON
/// object, `SessionFinishedError` when the session is finished.
#[pyfunction]
pub fn _livekit_record_report(
    py: Python<'_>,
    session: &Session,
    report_json: &str,
) -> PyResult<Vec<(String, String)>> {
    let call = py.detach(|| {
        let report: serde_json::Value = serde_json::from_str(report_json)
            .map_err(|e| format!("the LiveKit report is not JSON: {e}"))?;
        calltape_import::livekit::from_report(&report, "live")
    });
    let mut call = call.map_err(|reason| {
        PyValueError::new_err(format!(
            "calltape.livekit: the session's events could not be mapped: {reason}"
        ))
    })?;
    let warnings = call
        .warnings
        .iter()
        .map(|w| (w.code.clone(), w.message.clone()))
        .collect();
    // the warnings go into the archive as `import_warning` events, as an import writes them
    call.records.extend(
        call.warnings
            .iter()
            .map(calltape_import::ImportWarning::to_record),
    );
    calltape_import::archive::sort_records(&mut call.records);
    session.record_all(call.records)?;
    Ok(warnings)
}
