//! `skvault._native.NativeModel`: native inference (the `skvault-infer` crate) seen from Python.
//!
//! Arrays cross the boundary through the buffer protocol: the input is copied out of a
//! C-contiguous float64 buffer (so the GIL can be released while predicting without another
//! thread mutating it underneath), and outputs come back as `bytearray`s that
//! `skvault.native` views with `numpy.frombuffer` (writable, no further copy).
//! The thin Python layer converts dtypes and shapes; this module only checks them.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyList};
use pyo3::IntoPyObjectExt;
use skvault_infer::{InferError, Labels, Matrix, MatrixView, Model, Prediction};

use crate::errors::{from_format, new_err};

fn infer_error(py: Python<'_>, err: InferError) -> PyErr {
    match err {
        InferError::Format(e) => from_format(py, e),
        e @ InferError::Unsupported { .. } => new_err(py, "UnsupportedModelError", e.to_string()),
        e @ (InferError::Malformed { .. } | InferError::LimitExceeded { .. }) => {
            new_err(py, "FormatError", e.to_string())
        }
        e @ InferError::NotAvailable { .. } => PyAttributeError::new_err(e.to_string()),
        e @ InferError::NotFitted { .. } => new_err(py, "NotFittedError", e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// A `.skv` model built for native inference.
#[pyclass(frozen, module = "skvault._native")]
pub struct NativeModel {
    model: Arc<Model>,
}

/// Output bytes: the f64 values in native byte order.
fn f64_bytes<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, std::mem::size_of_val(values), |buf| {
        for (dst, v) in buf.chunks_exact_mut(8).zip(values) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })
}

/// `(bytes, n_rows, n_cols, flat)`.
type MatrixOut<'py> = (Bound<'py, PyByteArray>, usize, usize, bool);

fn matrix_out(py: Python<'_>, m: Matrix) -> PyResult<MatrixOut<'_>> {
    Ok((f64_bytes(py, &m.data)?, m.n_rows, m.n_cols, m.flat))
}

impl NativeModel {
    /// Copies a 2-d C-contiguous float64 buffer, then runs `f` without the GIL.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        f: impl FnOnce(&Model, &MatrixView<'_>) -> Result<T, InferError> + Send,
    ) -> PyResult<T> {
        let buf = PyBuffer::<f64>::get(x)?;
        if buf.dimensions() != 2 || !buf.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "X must be a 2-d C-contiguous float64 array",
            ));
        }
        let (n_rows, n_cols) = (buf.shape()[0], buf.shape()[1]);
        let data = buf.to_vec(py)?;
        let model = self.model.clone();
        py.detach(move || {
            let view = MatrixView::new(&data, n_rows, n_cols)?;
            f(&model, &view)
        })
        .map_err(|e| infer_error(py, e))
    }
}

#[pymethods]
impl NativeModel {
    /// The qualified class name of the model.
    #[getter]
    fn class_name(&self) -> &str {
        self.model.class()
    }

    #[getter]
    fn n_features_in(&self) -> usize {
        self.model.n_features()
    }

    #[getter]
    fn feature_names_in(&self) -> Option<Vec<String>> {
        self.model.feature_names().map(<[String]>::to_vec)
    }

    /// The names of the methods the model has.
    #[getter]
    fn methods(&self) -> Vec<&'static str> {
        self.model.methods().iter().map(|m| m.name()).collect()
    }

    /// `(labels, dtype)` for classifiers (labels as a list, dtype as numpy's `dtype.str`),
    /// `None` otherwise.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, String)>> {
        let Some(c) = self.model.classes() else {
            return Ok(None);
        };
        let list = match &c.labels {
            Labels::Int(v) => PyList::new(py, v)?.into_any(),
            Labels::Float(v) => PyList::new(py, v)?.into_any(),
            Labels::Bool(v) => PyList::new(py, v)?.into_any(),
            Labels::Str(v) => PyList::new(py, v)?.into_any(),
        };
        Ok(Some((list, c.dtype.clone())))
    }

    /// `("labels", int64 bytes, n_rows, 1, True)` for classifiers, else `("values", f64 bytes,
    /// n_rows, n_cols, flat)`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>, usize, usize, bool)> {
        match self.run(py, x, |m, v| m.predict(v))? {
            Prediction::Labels(idx) => {
                let n = idx.len();
                let bytes = PyByteArray::new_with(py, n * 8, |buf| {
                    for (dst, i) in buf.chunks_exact_mut(8).zip(&idx) {
                        dst.copy_from_slice(&(*i as i64).to_ne_bytes());
                    }
                    Ok(())
                })?;
                Ok(("labels", bytes.into_any(), n, 1, true))
            }
            Prediction::Values(m) => {
                let (b, r, c, flat) = matrix_out(py, m)?;
                Ok(("values", b.into_bound_py_any(py)?, r, c, flat))
            }
        }
    }

    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.predict_proba(v))?;
        matrix_out(py, m)
    }

    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.decision_function(v))?;
        matrix_out(py, m)
    }

    fn transform<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.transform(v))?;
        matrix_out(py, m)
    }

    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.score_samples(v))?;
        matrix_out(py, m)
    }

    fn has(&self, method: &str) -> bool {
        self.model.methods().iter().any(|m| m.name() == method)
    }
}

/// Opens a `.skv` file for native inference (the GIL is released while it is built).
#[pyfunction]
pub fn native_load(py: Python<'_>, path: PathBuf) -> PyResult<NativeModel> {
    let model = py
        .detach(move || Model::open(&path))
        .map_err(|e| infer_error(py, e))?;
    Ok(NativeModel {
        model: Arc::new(model),
    })
}
