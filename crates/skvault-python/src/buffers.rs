//! The data address of a contiguous numpy array, through the buffer protocol; numpy arrays
//! over memory another object keeps alive, through numpy's C API.
//!
//! `__array_interface__` builds a dict (and, for structured dtypes, a `descr` list of tuples)
//! on every access; a model with hundreds of arrays paid for that on every save and load.

use std::ffi::c_int;

use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::exceptions::PyValueError;
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

/// The `len` bytes of a numpy number scalar's value, through the buffer protocol (numpy
/// scalars export their value's memory); an error if the buffer is not exactly `len` bytes.
pub fn scalar_bytes(obj: &Bound<'_, PyAny>, len: u64) -> PyResult<Vec<u8>> {
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: `view` is only read after PyObject_GetBuffer succeeded, which fills it; its
    // `len` bytes at `buf` are readable until it is released, exactly once, after the copy.
    unsafe {
        if ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        let mut view = view.assume_init();
        let size = usize::try_from(view.len).ok();
        let data = match size {
            Some(n) if n as u64 == len => {
                std::slice::from_raw_parts(view.buf as *const u8, n).to_vec()
            }
            _ => Vec::new(),
        };
        ffi::PyBuffer_Release(&mut view);
        if data.len() as u64 != len {
            return Err(PyValueError::new_err(format!(
                "a numpy scalar's buffer is not the {len} bytes of its dtype"
            )));
        }
        Ok(data)
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

/// A numpy array of `dtype` and `shape` (Fortran order with `fortran`) over the bytes at
/// `offset` of a region of `len` bytes at `base`, whose memory `owner` keeps alive: the
/// array's base is `owner`. Made by numpy's `PyArray_NewFromDescr`, not by calling
/// `numpy.ndarray(shape, dtype, buffer, offset, ...)`, whose argument parsing was most of
/// the cost of a load's thousands of arrays (a 500-tree forest: 2,000 arrays, 9.6 million
/// instructions). The checks that call made are made here: the array's bytes (shape product
/// times item size, checked arithmetic) lie inside the region.
///
/// # Safety
/// The `len` bytes at `base` are readable (and writable, with `writable`) for as long as
/// `owner` lives, and nothing frees or remaps them meanwhile.
pub unsafe fn array_over<'py>(
    owner: &Bound<'py, PyAny>,
    (base, len): (*mut u8, usize),
    offset: usize,
    dtype: &Bound<'py, PyAny>,
    shape: &[u64],
    fortran: bool,
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let dtype = dtype.cast::<PyArrayDescr>()?;
    let too_large = || PyValueError::new_err("array larger than its buffer");
    let mut dims = shape
        .iter()
        .map(|&d| npy_intp::try_from(d).map_err(|_| too_large()))
        .collect::<PyResult<Vec<npy_intp>>>()?;
    let nbytes = shape
        .iter()
        .try_fold(dtype.itemsize() as u64, |n, &d| n.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(too_large)?;
    if offset.checked_add(nbytes).is_none_or(|end| end > len) {
        return Err(too_large());
    }
    let nd = c_int::try_from(dims.len()).map_err(|_| too_large())?;
    let mut flags = 0;
    if fortran {
        flags |= npyffi::NPY_ARRAY_F_CONTIGUOUS;
    }
    if writable {
        flags |= npyffi::NPY_ARRAY_WRITEABLE;
    }
    // SAFETY: the data pointer is `offset` bytes into the region, and the array's `nbytes`
    // end inside it (checked above); the caller keeps the region alive and writable as
    // `writable` says for as long as `owner` lives, which the array holds as its base from
    // here on. `dims` lives across the call (numpy copies it), strides are numpy's own
    // (contiguous in the order asked); the descriptor reference is given to numpy (it steals
    // one), as is the owner's to `PyArray_SetBaseObject`, which also steals it on failure.
    unsafe {
        let made = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            dtype.clone().into_dtype_ptr(),
            nd,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            base.add(offset).cast(),
            flags,
            std::ptr::null_mut(),
        );
        let array = Bound::from_owned_ptr_or_err(py, made)?;
        let owner = owner.clone().into_ptr();
        if PY_ARRAY_API.PyArray_SetBaseObject(py, made.cast(), owner) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(array)
    }
}
