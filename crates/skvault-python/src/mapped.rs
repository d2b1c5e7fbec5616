//! A Python buffer over a memory-mapped `.skv` file: the numpy arrays a load makes over it
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
    /// `Some` until dropped (see the `Drop` impl).
    file: Option<Arc<SkvFile>>,
    /// The whole mapping, owned by `file`: its address, taken once before Python can see the
    /// mapping, and never dereferenced in Rust (it is only handed to CPython). Kept as an
    /// address rather than asked of `file` on each export, since `mapped_whole` makes a
    /// `&[u8]` over the whole mapping, which Python may be writing (copy-on-write) on another
    /// thread with the GIL released.
    base: *const u8,
    len: usize,
    /// Copy-on-write mapping: the buffer is exported writable (writes stay in private pages).
    writable: bool,
}

// SAFETY: the only field that is not `Send`/`Sync` by itself is `base`, an address that
// Rust never reads or writes through and never changes after `new`. The memory it points to
// is the mapping owned by `file` (an `Arc<SkvFile>`, itself `Send + Sync`), which lives as long
// as `self`; a mapping is not tied to the thread that made it. Any thread may therefore own or
// share a `MappedFile`: what crosses threads is an immutable address, and every access to the
// memory goes through CPython's buffer protocol (see `__getbuffer__`).
unsafe impl Send for MappedFile {}
// SAFETY: as for `Send`: `&MappedFile` gives no access to the memory but through the buffer
// protocol, and nothing in it is mutable.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Wraps a file opened with `SkvFile::open_mmap` or `open_mmap_copy`; `None` for any other.
    pub fn new(file: Arc<SkvFile>) -> Option<MappedFile> {
        let (whole, writable) = file.mapped_whole()?;
        Some(MappedFile {
            base: whole.as_ptr(),
            len: whole.len(),
            writable,
            file: Some(file),
        })
    }

    /// The mapping's address and length, and whether Python may write it (a copy-on-write
    /// mapping): what `buffers::array_over` views, with the `MappedFile` as the arrays' base.
    pub fn region(&self) -> ((*mut u8, usize), bool) {
        ((self.base.cast_mut(), self.len), self.writable)
    }
}

/// Mappings from this size are released on a thread of their own when their last array goes
/// (see the `Drop` impl below).
const RELEASE_BESIDE_FROM: usize = 32 << 20;

impl Drop for MappedFile {
    /// The last array viewing a large mapping is freed: the file (its decoded manifest and the
    /// mapping) is released on a thread of its own, so that the code freeing the model does
    /// not wait for it. Dropping a 500-tree forest's manifest (2,000 array entries and the
    /// object tree) and unmapping its 160 MB took 1.5 to 2.5 ms more than freeing the same
    /// model built by pickle. Nothing of Python is touched there; if no thread can be had,
    /// or the file is small or held elsewhere too, it is released here.
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        if self.len < RELEASE_BESIDE_FROM || Arc::strong_count(&file) > 1 {
            return;
        }
        // A refused spawn drops the closure, and the file with it, here.
        let _ = std::thread::Builder::new()
            .name("skvault-release".into())
            .spawn(move || drop(file));
    }
}

#[pymethods]
impl MappedFile {
    /// Exposes the whole mapping: read-only for a shared mapping, writable for a
    /// copy-on-write one.
    ///
    /// # Safety
    /// Called by CPython (the buffer protocol) with `view` pointing to a `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        // SAFETY: `view` is valid (CPython's contract for this slot). `base` and `len` are the
        // mapping owned by `this.file` (`len` fits `Py_ssize_t`: a mapping is at most
        // `isize::MAX` bytes). PyBuffer_FillInfo takes a reference to `slf`, which keeps the
        // file, so the mapping, alive while any view of it exists, and refuses PyBUF_WRITABLE
        // requests when `readonly` is 1 (a shared mapping, which Python must not write). A
        // copy-on-write mapping is exported writable: writes land in private pages, never in
        // the file, and the reader reads the mapping only during the load that made this
        // object, and the bytes of each array only before that array is handed to Python.
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

    /// Nothing to release: the reference PyBuffer_FillInfo took on `slf` is dropped by CPython.
    ///
    /// # Safety
    /// Called by CPython with a `view` that `__getbuffer__` filled; it is not used.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
