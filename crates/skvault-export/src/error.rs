//! The one error type of the exporters.

use std::path::PathBuf;

use skvault_format::FormatError;
use skvault_infer::InferError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The model could not be opened for export (not a `.skv` file, or not natively supported).
    #[error(transparent)]
    Infer(#[from] InferError),

    /// Reading or writing `.skv` bytes failed.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The model holds an estimator (or a configuration of one) the ONNX exporter does not
    /// write. Nothing was written.
    #[error("{class} cannot be exported to ONNX{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unsupported {
        class: String,
        detail: Option<String>,
    },

    /// The output could not be written (nothing is left behind at `path`).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A portable JSON document that does not follow `docs/export.schema.json`, or whose
    /// arrays do not match their dtype and shape. `path` is a JSON pointer into the document.
    #[error("invalid export document at {path}: {message}")]
    Document { path: String, message: String },

    /// The export would pass a bound on its size (see docs/EXPORT.md), which only a hostile
    /// file reaches: `limit` names the bound, `max` is its value. Nothing was written.
    #[error("the export exceeds the limit on {limit} ({max})")]
    LimitExceeded { limit: &'static str, max: u64 },

    /// The imported document names classes or functions outside the trusted set (the same
    /// check as `skvault.load`). Nothing was written.
    #[error("untrusted types in the document: {}; pass them as trusted if you trust the source", names.join(", "))]
    Untrusted { names: Vec<String> },
}

pub type Result<T> = std::result::Result<T, ExportError>;

pub(crate) fn unsupported(class: &str, detail: impl Into<Option<String>>) -> ExportError {
    ExportError::Unsupported {
        class: class.to_string(),
        detail: detail.into(),
    }
}

pub(crate) fn document(path: &str, message: impl Into<String>) -> ExportError {
    ExportError::Document {
        path: path.to_string(),
        message: message.into(),
    }
}
