//! The data address of a contiguous numpy array, through the buffer protocol.
//!
//! `__array_interface__` builds a dict (and, for structured dtypes, a `descr` list of tuples)
//! on every access; a model with hundreds of arrays paid for that on every save and load.

use std::ffi::c_int;

use pyo3::ffi;
use pyo3::prelude::*;

/// Address of the first byte of `obj`'s data, which must be C- or F-contiguous (and writable
/// if `writable`). The caller keeps `obj` alive for as long as it uses the address.
pub fn data_address(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<usize> {
    let mut flags: c_int = ffi::PyBUF_ANY_CONTIGUOUS;
    if writable {
        flags |= ffi::PyBUF_WRITABLE;
    }
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: `view` is only read after PyObject_GetBuffer succeeded, which fills it; it is
    // released exactly once. The exporter (numpy) holds a reference to `obj` meanwhile.
    unsafe {
        if ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        let mut view = view.assume_init();
        let address = view.buf as usize;
        ffi::PyBuffer_Release(&mut view);
        Ok(address)
    }
}
