//! The one error type of native inference.
//!
//! Errors about the model (`Unsupported`, `Malformed`, `Format`) are raised when it is
//! opened, never in the middle of a prediction; errors about the input (`Shape`,
//! `FeatureCount`, `InvalidValue`, `Frame`) and `NotAvailable` are raised by the methods.

use skvault_format::FormatError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The file could not be read or is not a valid `.skv` file.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The model holds a class (or a configuration of a class) that native inference
    /// does not implement. `path` locates it in the object tree.
    #[error("{path}: {class} is not supported by native inference{}", detail_suffix(.detail))]
    Unsupported {
        class: String,
        path: String,
        /// Why, when the class itself is supported but this configuration is not.
        detail: Option<String>,
    },

    /// The fitted state of a supported estimator is not what scikit-learn writes:
    /// a missing attribute, an array of the wrong shape or dtype, an index out of range.
    #[error("{path}: malformed model state: {message}")]
    Malformed { path: String, message: String },

    /// An estimator saved before `fit`: its state has no fitted attribute (by scikit-learn's
    /// `check_is_fitted` rule, none whose name ends with `_`), so there is nothing to predict
    /// with. Raised when the model is opened, instead of the first missing attribute.
    #[error("{path}: {class} is not fitted: it was saved before fit() was called (fit it, then save it again)")]
    NotFitted { class: String, path: String },

    /// The input slice does not hold `n_rows * n_cols` values.
    #[error("input has {len} values, which is not {n_rows} rows x {n_cols} columns")]
    Shape {
        len: usize,
        n_rows: usize,
        n_cols: usize,
    },

    /// The input has a different number of columns from the features the model was fitted on.
    #[error("{class}: X has {found} features, but the model expects {expected} features as input")]
    FeatureCount {
        class: String,
        expected: usize,
        found: usize,
    },

    /// A value the estimator refuses, as scikit-learn's input validation does
    /// (NaN or infinity where they are not allowed, a category never seen in fit, ...).
    #[error("{class}: input row {row}, column {column}: {message}")]
    InvalidValue {
        class: String,
        row: usize,
        column: usize,
        message: String,
    },

    /// The model passes one of the bounds that keep building and using it finite (nesting
    /// of estimators, total work with shared members counted at each use; see
    /// `docs/NATIVE.md`): a hostile file, since no model written by scikit-learn and skvault
    /// comes near them. `limit` names the bound, `max` is its value.
    #[error("{path}: the model exceeds the limit on {limit} ({max})")]
    LimitExceeded {
        limit: &'static str,
        max: u64,
        path: String,
    },

    /// A frame that cannot be the model's input: a missing column, text where numbers are
    /// needed (named with its row and value), columns of different lengths.
    #[error(transparent)]
    Frame(#[from] skvault_frame::FrameError),

    /// The model's outputs on the file's validation rows differ from the recorded ones
    /// (see `validation`): `rows` rows differ in `method`.
    #[error("validation failed for {method}: {rows} row(s) differ{}{}", max_diff.map(|d| format!(", largest difference {d:.3e}")).unwrap_or_default(), if detail.is_empty() { String::new() } else { format!(", {detail}") })]
    Validation {
        method: String,
        rows: usize,
        max_diff: Option<f64>,
        detail: String,
    },

    /// The model has no such method (a regressor has no `predict_proba`, ...).
    #[error("{class} has no method {method}")]
    NotAvailable { class: String, method: &'static str },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

pub type Result<T, E = InferError> = std::result::Result<T, E>;

pub(crate) fn malformed(path: &str, message: impl Into<String>) -> InferError {
    InferError::Malformed {
        path: path.to_string(),
        message: message.into(),
    }
}

pub(crate) fn unsupported(class: &str, path: &str, detail: Option<String>) -> InferError {
    InferError::Unsupported {
        class: class.to_string(),
        path: path.to_string(),
        detail,
    }
}
