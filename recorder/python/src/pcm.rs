//! Audio handed in from Python as 16-bit signed PCM without copying: `bytes` and `bytearray`
//! directly, anything else (memoryview, `array('h')`, numpy int16) through the buffer
//! protocol. The samples are borrowed while the GIL is held and copied once, into the
//! recorder's queue.
//!
//! The buffer protocol joined the limited API only in Python 3.11; this abi3 module supports
//! 3.10, so on Unix it calls the two buffer functions (present in every CPython 3) itself,
//! with the `Py_buffer` layout that 3.11 froze into the stable ABI. On Windows, where an abi3
//! module can only link what `python3.dll` exports, other buffers are copied to `bytes` first.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::convert::type_name;
use crate::errors::AudioFormatError;

/// Calls `f` with the samples of `pcm`.
pub fn with_samples<R>(pcm: &Bound<'_, PyAny>, f: impl FnOnce(&[i16]) -> R) -> PyResult<R> {
    if let Ok(b) = pcm.cast::<PyBytes>() {
        return with_bytes(b.as_bytes(), f);
    }
    if let Ok(b) = pcm.cast::<PyByteArray>() {
        // SAFETY: the GIL is held for the whole borrow and nothing here runs Python code that
        // could resize the bytearray
        return with_bytes(unsafe { b.as_bytes() }, f);
    }
    buffer::with_buffer(pcm, f)
}

/// Raw native-endian PCM bytes.
fn with_bytes<R>(bytes: &[u8], f: impl FnOnce(&[i16]) -> R) -> PyResult<R> {
    if !bytes.len().is_multiple_of(2) {
        return Err(AudioFormatError::new_err(format!(
            "audio bytes must hold whole 16-bit samples; got {} bytes (an odd count)",
            bytes.len()
        )));
    }
    // SAFETY: every bit pattern is a valid i16; align_to puts misaligned ends in prefix/suffix
    let (prefix, samples, suffix) = unsafe { bytes.align_to::<i16>() };
    if prefix.is_empty() && suffix.is_empty() {
        Ok(f(samples))
    } else {
        // a misaligned view (e.g. a memoryview sliced at an odd offset): one copy to align
        let owned: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|c| i16::from_ne_bytes([c[0], c[1]]))
            .collect();
        Ok(f(&owned))
    }
}

/// What a buffer's struct-module format says its items are.
enum Items {
    /// 16-bit signed, native byte order.
    I16,
    /// Bytes: raw PCM.
    Bytes,
}

fn items(format: &str, itemsize: isize, what: &Bound<'_, PyAny>) -> PyResult<Items> {
    let code = format.trim_start_matches(['@', '=']);
    let code = if cfg!(target_endian = "little") {
        code.trim_start_matches('<')
    } else {
        code.trim_start_matches(['>', '!'])
    };
    match (code, itemsize) {
        ("h", 2) => Ok(Items::I16),
        ("B" | "b" | "c", 1) => Ok(Items::Bytes),
        _ => Err(AudioFormatError::new_err(format!(
            "audio must be 16-bit signed PCM (numpy int16, array('h'), bytes, memoryview of \
             'h'); got a {} buffer of format {format:?} with {itemsize}-byte items{}",
            type_name(what),
            match code {
                "f" | "d" | "e" => ": convert floats with (x * 32767).astype(numpy.int16)",
                "H" => ": unsigned samples are not PCM16; use int16",
                _ => "",
            }
        ))),
    }
}

#[cfg(unix)]
mod buffer {
    use std::ffi::{c_char, c_int, c_void, CStr};

    use pyo3::ffi::{PyObject, Py_ssize_t};
    use pyo3::prelude::*;

    use super::{items, with_bytes, Items};
    use crate::convert::type_name;
    use crate::errors::AudioFormatError;

    /// `Py_buffer` as in CPython's `Include/pybuffer.h` (identical in 3.10 and the 3.11+
    /// stable ABI).
    #[repr(C)]
    struct PyBufferView {
        buf: *mut c_void,
        obj: *mut PyObject,
        len: Py_ssize_t,
        itemsize: Py_ssize_t,
        readonly: c_int,
        ndim: c_int,
        format: *mut c_char,
        shape: *mut Py_ssize_t,
        strides: *mut Py_ssize_t,
        suboffsets: *mut Py_ssize_t,
        internal: *mut c_void,
    }

    const PYBUF_FORMAT: c_int = 0x0004;
    const PYBUF_C_CONTIGUOUS: c_int = 0x0020 | 0x0010 | 0x0008;

    extern "C" {
        fn PyObject_GetBuffer(obj: *mut PyObject, view: *mut PyBufferView, flags: c_int) -> c_int;
        fn PyBuffer_Release(view: *mut PyBufferView);
    }

    /// Releases the view when dropped.
    struct View(PyBufferView);

    impl Drop for View {
        fn drop(&mut self) {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer; the GIL is held
            unsafe { PyBuffer_Release(&mut self.0) }
        }
    }

    pub fn with_buffer<R>(pcm: &Bound<'_, PyAny>, f: impl FnOnce(&[i16]) -> R) -> PyResult<R> {
        let mut raw = PyBufferView {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        };
        // SAFETY: `pcm` is a live object and the GIL is held
        let rc = unsafe {
            PyObject_GetBuffer(pcm.as_ptr(), &mut raw, PYBUF_FORMAT | PYBUF_C_CONTIGUOUS)
        };
        if rc != 0 {
            let cause = PyErr::take(pcm.py())
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(AudioFormatError::new_err(format!(
                "audio must be 16-bit PCM in a contiguous buffer (bytes, bytearray, memoryview, \
                 array('h'), numpy int16); a {} does not provide one ({cause})",
                type_name(pcm)
            )));
        }
        let view = View(raw);
        let format = if view.0.format.is_null() {
            "B".to_string()
        } else {
            // SAFETY: a non-null format is a NUL-terminated string owned by the view
            unsafe { CStr::from_ptr(view.0.format) }
                .to_string_lossy()
                .into_owned()
        };
        let len = usize::try_from(view.0.len).unwrap_or(0);
        let bytes: &[u8] = if len == 0 || view.0.buf.is_null() {
            &[]
        } else {
            // SAFETY: a C-contiguous view covers `len` bytes at `buf`, alive until released;
            // the GIL is held throughout, so the exporter cannot resize it meanwhile
            unsafe { std::slice::from_raw_parts(view.0.buf as *const u8, len) }
        };
        match items(&format, view.0.itemsize, pcm)? {
            Items::I16 | Items::Bytes => with_bytes(bytes, f),
        }
    }
}

#[cfg(not(unix))]
mod buffer {
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;

    use super::{items, with_bytes, Items};
    use crate::convert::type_name;
    use crate::errors::AudioFormatError;

    pub fn with_buffer<R>(pcm: &Bound<'_, PyAny>, f: impl FnOnce(&[i16]) -> R) -> PyResult<R> {
        let py = pcm.py();
        let view = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((pcm,))
            .map_err(|e| {
                AudioFormatError::new_err(format!(
                    "audio must be 16-bit PCM in a buffer (bytes, bytearray, memoryview, \
                     array('h'), numpy int16); a {} is not one ({e})",
                    type_name(pcm)
                ))
            })?;
        let format: String = view.getattr("format")?.extract()?;
        let itemsize: isize = view.getattr("itemsize")?.extract()?;
        items(&format, itemsize, pcm)?;
        let copy = view.call_method0("tobytes")?;
        let bytes = copy.cast::<PyBytes>()?;
        with_bytes(bytes.as_bytes(), f)
    }
}
