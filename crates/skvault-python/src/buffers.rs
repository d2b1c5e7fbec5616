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

/// Asks the kernel not to back `len` bytes at `address` (not yet touched) with transparent
/// huge pages. numpy asks for huge pages for every array above 4 MB; for the load's pool of
/// tree arrays, filled by several threads at once, that made the whole load about 1.5x slower
/// whenever the process had just written other large files (measured in `bench/run.py`:
/// 247 ms against 167 ms for a 500-tree forest), and gained nothing otherwise. Advice only:
/// errors are ignored.
pub fn prefer_small_pages(address: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = address.next_multiple_of(PAGE);
        let end = address.saturating_add(len) / PAGE * PAGE;
        if end > start {
            // SAFETY: madvise only gives advice about pages of a mapping this process owns (the
            // range lies inside the caller's buffer); MADV_NOHUGEPAGE does not change contents.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_NOHUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (address, len);
}
