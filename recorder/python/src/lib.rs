//! The `calltape._calltape` extension module: the Rust recorder and archive reader for
//! Python. The pure-Python package `calltape` (python/calltape) re-exports it.

mod bench;
mod convert;
mod errors;
mod livekit;
mod pcm;
mod pipecat;
mod reading;
mod recording;
mod reports;
mod runtime;

use pyo3::prelude::*;

/// Checks a session id: 1-128 bytes of `A-Z a-z 0-9 . _ : -`, no `..`. Raises
/// `InvalidSessionIdError` with the reason.
#[pyfunction]
fn validate_session_id(session_id: &str) -> PyResult<()> {
    calltape_recorder::validate_session_id(session_id).map_err(errors::recorder_error)
}

// gil_used: audio borrows bytes-like objects while the GIL is held (abi3 never loads on
// free-threaded builds anyway)
#[pymodule(gil_used = true)]
fn _calltape(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::init();
    m.add_class::<recording::Recorder>()?;
    m.add_class::<recording::Session>()?;
    m.add_class::<recording::SessionAt>()?;
    m.add_class::<recording::StageTimer>()?;
    m.add_class::<reports::UploadReport>()?;
    m.add_class::<reports::FinishReport>()?;
    m.add_class::<reports::SessionStatus>()?;
    m.add_class::<reports::Health>()?;
    m.add_class::<reports::ShutdownReport>()?;
    m.add_class::<reports::Issue>()?;
    m.add_class::<pipecat::PipecatMapping>()?;
    m.add_class::<reading::Call>()?;
    m.add_class::<reading::CallRecord>()?;
    m.add_class::<reading::RecordIter>()?;
    m.add_function(wrap_pyfunction!(validate_session_id, m)?)?;
    m.add_function(wrap_pyfunction!(reading::open, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_bench_record_rust, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_bench_event_args, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_bench_event_convert, m)?)?;
    m.add_function(wrap_pyfunction!(livekit::_livekit_record_report, m)?)?;
    m.add("MAX_SESSION_ID_LEN", calltape_recorder::MAX_SESSION_ID_LEN)?;
    Ok(())
}
