//! Typed input of native prediction.
//!
//! A [`Frame`] holds named columns of equal length: numeric ones (`f64`, NaN for a missing
//! value) and dictionary-coded ones (text, pandas `category`, object columns that mix
//! numbers and text). An [`InputSchema`] records the columns a model was fitted on, and
//! [`InputSchema::check`] tells, naming the column, why a frame does not fit it.
//!
//! Every front end (pandas and pyarrow in the binding, CSV and Parquet in `skvault-table`,
//! JSON requests in the server) builds a `Frame`; native estimators take it from there. See
//! `docs/ARCHITECTURE.md`, "Typed input".
#![forbid(unsafe_code)]

mod column;
mod frame;
mod schema;

pub use column::{Column, DictBuilder, DictColumn, Value, ValueKey, MAX_DICTIONARY};
pub use frame::Frame;
pub use schema::{CategoryValue, ColumnKind, ColumnSpec, InputSchema, SchemaSource};

/// Why a frame cannot be built, converted or used as a model's input. Every variant that
/// concerns one column names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("column {column:?} has {found} rows, but column {first:?} has {expected}")]
    Length {
        column: String,
        found: usize,
        first: String,
        expected: usize,
    },
    #[error("column {0:?} appears twice")]
    DuplicateName(String),
    #[error("{names} and {values} column values: every column needs a name")]
    NameCount { names: usize, values: usize },
    #[error(
        "column {column:?}: code {code} at row {row} is outside its dictionary of {len} values"
    )]
    Code {
        column: String,
        row: usize,
        code: u32,
        len: usize,
    },
    #[error("column {column:?} has more than {max} distinct values")]
    DictionaryTooLarge { column: String, max: usize },
    #[error("a frame of {rows} rows and {columns} columns is too large")]
    TooLarge { rows: usize, columns: usize },
    #[error("column {column:?} holds text ({value:?} at row {row}) where the model expects numbers: could not convert string to float")]
    TextForNumber {
        column: String,
        row: usize,
        value: String,
    },
    #[error("{}", missing_message(.0))]
    MissingColumns(Vec<String>),
    #[error("column {column:?} holds {found}, but the model was fitted on {expected}{}", dtype_suffix(.dtype))]
    Kind {
        column: String,
        found: &'static str,
        expected: &'static str,
        /// The pandas dtype at fit time, when the schema knows it.
        dtype: Option<String>,
    },
}

fn dtype_suffix(dtype: &Option<String>) -> String {
    dtype
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

fn missing_message(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match names {
        [_] => format!("column {} is missing from the input", quoted.join(", ")),
        _ => format!("columns {} are missing from the input", quoted.join(", ")),
    }
}

pub type Result<T, E = FrameError> = std::result::Result<T, E>;
