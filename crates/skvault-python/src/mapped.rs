//! A Python buffer over a memory-mapped `.skv` file: numpy arrays made with `numpy.frombuffer`
//! view it without copying, and keep the mapping alive as long as they live. Read-only for a
//! shared mapping; writable for a copy-on-write one, whose writes never reach the file (the
//! reader no longer looks at the mapping once the arrays exist).

use std::ffi::c_int;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;
use skvault_format::SkvFile;

#[pyclass(frozen, module = "skvault._native")]
pub struct MappedFile {
    file: Arc<SkvFile>,
    /// The whole mapped file.
    base: *const u8,
    len: usize,
    /// Copy-on-write mapping: the buffer is exported writable (writes stay in private pages).
    writable: bool,
}

// SAFETY: the pointer refers to the read-only mapping owned by `file`, which lives as long as self.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Wraps a file opened with `SkvFile::open_mmap`.
    pub fn new(file: Arc<SkvFile>) -> Option<MappedFile> {
        let (whole, writable) = file.mapped_whole()?;
        Some(MappedFile {
            base: whole.as_ptr(),
            len: whole.len(),
            writable,
            file,
        })
    }

    pub fn file(&self) -> &Arc<SkvFile> {
        &self.file
    }
}

#[pymethods]
impl MappedFile {
    /// # Safety
    /// Called by CPython with a valid `view`; fills it to expose the mapping read-only.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        // PyBuffer_FillInfo refuses PyBUF_WRITABLE requests on a read-only buffer and takes a
        // reference to `slf`, which keeps the mapping alive while any view exists.
        let ret = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                this.base as *mut std::ffi::c_void,
                this.len as ffi::Py_ssize_t,
                c_int::from(!this.writable),
                flags,
            )
        };
        if ret == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
