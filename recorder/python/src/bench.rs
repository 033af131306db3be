//! `_bench_record_rust`: the workload of `bench/bench_record.py` recorded through the Rust API
//! in the same process, so the benchmark compares the Python binding's CPU cost per
//! call-minute with the Rust recorder's on one runtime and one machine state. Not public API.

use std::time::{Duration, SystemTime};

use calltape_recorder::{Attributes, SessionInfo, Speaker};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::recorder_error;
use crate::recording::Recorder;

const FRAME_NS: u64 = 20_000_000;
const RATE: u64 = 16_000;
const FRAME: usize = 320;

/// Records `calls` calls of `seconds` each, interleaved frame by frame: two 16 kHz tracks
/// (`user`, `agent`: PCM16 looped), `events_per_s` `vad` events a second; drains every
/// simulated second, then finishes all. Awaitable; returns dropped samples + records.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _bench_record_rust<'py>(
    py: Python<'py>,
    recorder: &Recorder,
    calls: usize,
    seconds: u64,
    user: Vec<u8>,
    agent: Vec<u8>,
    events_per_s: u64,
    tag: String,
) -> PyResult<Bound<'py, PyAny>> {
    let to_i16 = |b: &[u8]| -> Vec<i16> {
        b.chunks_exact(2)
            .map(|c| i16::from_ne_bytes([c[0], c[1]]))
            .collect()
    };
    let (user, agent) = (to_i16(&user), to_i16(&agent));
    let rec = recorder.inner().clone();
    let sessions = (0..calls)
        .map(|k| {
            rec.start_session(
                SessionInfo::new(format!("bench-rust-{tag}-{k}"))
                    .track(Speaker::User, RATE as u32, 1)
                    .track(Speaker::Agent, RATE as u32, 1)
                    .started_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_200))
                    .manual_clock(),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(recorder_error)?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let ticks = seconds * 1_000_000_000 / FRAME_NS;
        let every = 1_000_000_000 / events_per_s.max(1);
        let loop_len = user.len().min(agent.len()) / FRAME;
        let mut next_event = 0u64;
        let mut n = 0u64;
        for tick in 0..ticks {
            let t = tick * FRAME_NS;
            let f = (tick as usize % loop_len) * FRAME;
            for s in &sessions {
                s.at(t).audio(1, &user[f..f + FRAME]);
                s.at(t).audio(2, &agent[f..f + FRAME]);
            }
            while next_event < t + FRAME_NS {
                for s in &sessions {
                    let mut a = Attributes::new();
                    a.insert("track".into(), (1 + n % 2).into());
                    a.insert(
                        "speech_probability".into(),
                        ((n % 100) as f64 / 100.0).into(),
                    );
                    s.at(next_event).event("vad", a);
                }
                n += 1;
                next_event += every;
            }
            if tick % 50 == 49 {
                for s in &sessions {
                    s.drained().await;
                }
            }
        }
        let mut dropped = 0;
        for s in sessions {
            s.at(ticks * FRAME_NS).end("user_hangup", Some("resolved"));
            let r = s.finish().await.map_err(recorder_error)?;
            dropped += r.dropped_samples + r.dropped_records;
        }
        Ok(dropped)
    })
}

/// `_bench_event_args(name, *, turn=None, at=None, **attrs)`: takes the arguments of
/// `Session.event` and does nothing, so `bench/bench_record.py` can tell the cost of a call
/// into the extension with this signature from the rest. Not public API.
#[pyfunction]
#[pyo3(signature = (name, *, turn=None, at=None, **attrs))]
pub fn _bench_event_args(
    name: &Bound<'_, PyAny>,
    turn: Option<u32>,
    at: Option<u64>,
    attrs: Option<&Bound<'_, PyDict>>,
) {
    let _ = (name, turn, at, attrs);
}

/// `_bench_event_convert(name, *, turn=None, at=None, **attrs)`: builds the record
/// `Session.event` would record (name and attributes converted to Rust) and drops it, so
/// the benchmark can tell the conversion's cost from the recorder's. Not public API.
#[pyfunction]
#[pyo3(signature = (name, *, turn=None, at=None, **attrs))]
pub fn _bench_event_convert(
    name: String,
    turn: Option<u32>,
    at: Option<u64>,
    attrs: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let r = calltape_format::Record::Event(calltape_format::Event {
        turn,
        name,
        attributes: crate::convert::attributes("event attributes", attrs)?,
    });
    std::hint::black_box((r, at));
    Ok(())
}
