//! Row-major f64 matrices: the input view and the owned output.

use crate::error::{InferError, Result};

/// A borrowed row-major matrix of `n_rows` x `n_cols` f64 values.
#[derive(Debug, Clone, Copy)]
pub struct MatrixView<'a> {
    data: &'a [f64],
    n_rows: usize,
    n_cols: usize,
}

impl<'a> MatrixView<'a> {
    /// Checks that `data` holds exactly `n_rows * n_cols` values.
    pub fn new(data: &'a [f64], n_rows: usize, n_cols: usize) -> Result<Self> {
        let shape_err = || InferError::Shape {
            len: data.len(),
            n_rows,
            n_cols,
        };
        let needed = n_rows.checked_mul(n_cols).ok_or_else(shape_err)?;
        if needed != data.len() {
            return Err(shape_err());
        }
        Ok(MatrixView {
            data,
            n_rows,
            n_cols,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    pub fn data(&self) -> &'a [f64] {
        self.data
    }

    /// Row `i`; `i < n_rows` is the caller's invariant.
    pub fn row(&self, i: usize) -> &'a [f64] {
        let start = i * self.n_cols;
        &self.data[start..start + self.n_cols]
    }

    pub fn rows(&self) -> impl Iterator<Item = &'a [f64]> + 'a {
        // chunks_exact(0) would panic; a matrix without columns has rows of length zero.
        let n_cols = self.n_cols.max(1);
        let n_rows = self.n_rows;
        let data = self.data;
        (0..n_rows).map(move |i| {
            if data.is_empty() {
                &data[0..0]
            } else {
                &data[i * n_cols..(i + 1) * n_cols]
            }
        })
    }
}

/// An owned row-major matrix: what every method returns.
///
/// `flat` says that scikit-learn returns this output as a 1-d array of `n_rows` values
/// (a regressor's `predict`, a binary classifier's `decision_function`); the values are
/// the same either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub data: Vec<f64>,
    pub n_rows: usize,
    pub n_cols: usize,
    pub flat: bool,
}

impl Matrix {
    pub fn zeros(n_rows: usize, n_cols: usize) -> Matrix {
        Matrix {
            data: vec![0.0; n_rows * n_cols],
            n_rows,
            n_cols,
            flat: false,
        }
    }

    pub fn from_vec(data: Vec<f64>, n_rows: usize, n_cols: usize) -> Matrix {
        debug_assert_eq!(data.len(), n_rows * n_cols);
        Matrix {
            data,
            n_rows,
            n_cols,
            flat: false,
        }
    }

    /// A column of values that scikit-learn returns as a 1-d array.
    pub fn column(data: Vec<f64>) -> Matrix {
        let n_rows = data.len();
        Matrix {
            data,
            n_rows,
            n_cols: 1,
            flat: true,
        }
    }

    pub fn view(&self) -> MatrixView<'_> {
        MatrixView {
            data: &self.data,
            n_rows: self.n_rows,
            n_cols: self.n_cols,
        }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }
}

/// What `predict` returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// A classifier's labels, as indices into the model's `classes()`.
    Labels(Vec<usize>),
    /// A regressor's (or outlier detector's) values.
    Values(Matrix),
}

/// Which values scikit-learn's input validation lets through (`ensure_all_finite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finite {
    /// `ensure_all_finite=True`: neither NaN nor infinity.
    All,
    /// `"allow-nan"`: NaN, but no infinity.
    AllowNan,
    /// `False`: anything.
    Any,
}

/// Checks the column count and the values of `x` the way `validate_data` does.
pub(crate) fn check_input(
    class: &str,
    x: &MatrixView<'_>,
    n_features: usize,
    finite: Finite,
) -> Result<()> {
    if x.n_cols() != n_features {
        return Err(InferError::FeatureCount {
            class: class.to_string(),
            expected: n_features,
            found: x.n_cols(),
        });
    }
    if finite == Finite::Any {
        return Ok(());
    }
    if let Some(pos) = x
        .data()
        .iter()
        .position(|v| v.is_infinite() || (finite == Finite::All && v.is_nan()))
    {
        let (row, column) = (pos / n_features.max(1), pos % n_features.max(1));
        let value = x.data().get(pos).copied().unwrap_or(0.0);
        let message = if value.is_nan() {
            "Input X contains NaN".to_string()
        } else {
            "Input X contains infinity or a value too large for the estimator's dtype".to_string()
        };
        return Err(InferError::InvalidValue {
            class: class.to_string(),
            row,
            column,
            message,
        });
    }
    Ok(())
}
