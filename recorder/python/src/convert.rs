//! Conversions between Python values and the record model: speakers, stages, durations,
//! attribute dicts and JSON values (through serde, so Python sees exactly what Rust holds).

use std::time::Duration;

use calltape_recorder::{Attributes, Speaker, Stage};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta, PyDict, PyFloat, PyInt, PyString};
use serde::Serialize;
use serde_json::Value;

/// `"user"`, `"agent"`, `"system"` or `"other"`.
pub fn speaker(s: &str) -> PyResult<Speaker> {
    match s {
        "user" => Ok(Speaker::User),
        "agent" => Ok(Speaker::Agent),
        "system" => Ok(Speaker::System),
        "other" => Ok(Speaker::Other),
        _ => Err(PyValueError::new_err(format!(
            "unknown speaker {s:?}: use \"user\", \"agent\", \"system\" or \"other\""
        ))),
    }
}

/// A stage name: `vad`, `eou`, `stt`, `llm`, `tts`, `tool`, `playback` or any custom name.
pub fn stage(s: &str) -> PyResult<Stage> {
    if s.is_empty() {
        return Err(PyValueError::new_err("a stage name cannot be empty"));
    }
    Ok(Stage::from(s.to_string()))
}

/// A duration given as seconds (int or float) or a `datetime.timedelta`.
pub fn duration(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = if let Ok(d) = v.cast::<PyDelta>() {
        d.call_method0("total_seconds")?.extract::<f64>()?
    } else {
        v.extract::<f64>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be seconds (a number) or a datetime.timedelta, not {}",
                type_name(v)
            ))
        })?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, got {secs}"
        ))
    })
}

pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Any JSON-like Python value (dict, list, str, int, float, bool, None).
pub fn json_value(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    pythonize::depythonize::<Value>(v).map_err(|e| {
        PyTypeError::new_err(format!(
            "{what} must be JSON-like (dict, list, str, int, float, bool, None): {e}"
        ))
    })
}

/// A dict of attributes (string keys, JSON-like values); `None` is empty. Flat values
/// (str, int, float, bool, None) are converted directly (the hot path of `event(**attrs)`),
/// nested ones through serde.
pub fn attributes(what: &str, v: Option<&Bound<'_, PyDict>>) -> PyResult<Attributes> {
    let mut out = Attributes::new();
    let Some(d) = v else { return Ok(out) };
    for (k, v) in d.iter() {
        let key = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("{what} keys must be str, not {}", type_name(&k)))
        })?;
        let value = if v.is_none() {
            Value::Null
        } else if let Ok(b) = v.cast::<PyBool>() {
            Value::Bool(b.is_true())
        } else if let Some(i) = v.cast::<PyInt>().ok().and_then(|i| i.extract::<i64>().ok()) {
            Value::from(i)
        } else if let Ok(f) = v.cast::<PyFloat>() {
            Value::from(f.value())
        } else if let Ok(s) = v.cast::<PyString>() {
            Value::String(s.to_str()?.to_owned())
        } else {
            json_value(what, &v)?
        };
        out.insert(key.to_str()?.to_owned(), value);
    }
    Ok(out)
}

/// A Rust model value as Python objects, through its serde form (dicts, lists, ints, ...).
pub fn to_py<'py, T: Serialize + ?Sized>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| PyValueError::new_err(e.to_string()))
}
