//! Python exceptions (defined in `calltape/_errors.py`) raised with the Rust messages.

use calltape_recorder::RecorderError;
use pyo3::PyErr;

pyo3::import_exception!(calltape._errors, InvalidSessionIdError);
pyo3::import_exception!(calltape._errors, InvalidSessionInfoError);
pyo3::import_exception!(calltape._errors, DestinationError);
pyo3::import_exception!(calltape._errors, SpoolError);
pyo3::import_exception!(calltape._errors, DuplicateSessionError);
pyo3::import_exception!(calltape._errors, ShuttingDownError);
pyo3::import_exception!(calltape._errors, InvalidRedactionRuleError);
pyo3::import_exception!(calltape._errors, WriterLostError);
pyo3::import_exception!(calltape._errors, SessionFinishedError);
pyo3::import_exception!(calltape._errors, UnknownTrackError);
pyo3::import_exception!(calltape._errors, AudioFormatError);
pyo3::import_exception!(calltape._errors, ArchiveError);

/// `calltape.RecorderError` (named apart from the Rust error of the same name).
mod base {
    pyo3::import_exception!(calltape._errors, RecorderError);
}
use base::RecorderError as PyRecorderError;

/// The Python exception for a recorder error, with the recorder's message.
pub fn recorder_error(e: RecorderError) -> PyErr {
    let msg = e.to_string();
    match e {
        RecorderError::InvalidSessionId { .. } => InvalidSessionIdError::new_err(msg),
        RecorderError::InvalidSessionInfo { .. } => InvalidSessionInfoError::new_err(msg),
        RecorderError::NoDestination
        | RecorderError::InvalidDestination { .. }
        | RecorderError::Store { .. }
        | RecorderError::InvalidKeyTemplate { .. } => DestinationError::new_err(msg),
        RecorderError::Spool { .. } => SpoolError::new_err(msg),
        RecorderError::DuplicateSession { .. } => DuplicateSessionError::new_err(msg),
        RecorderError::ShuttingDown => ShuttingDownError::new_err(msg),
        RecorderError::InvalidRedactionRule { .. } => InvalidRedactionRuleError::new_err(msg),
        RecorderError::WriterLost { .. } => WriterLostError::new_err(msg),
        _ => PyRecorderError::new_err(msg),
    }
}
