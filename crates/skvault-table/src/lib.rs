//! Tables in and out of native prediction: `.npy`, CSV and Parquet readers, and the `.npy`
//! and CSV writers of results ([`predictions`], shared by `skvault predict` and `skvault serve`).
//!
//! Every reader takes untrusted bytes and validates before it allocates in proportion to a
//! declared size: a `.npy` header's shape must match the bytes that follow exactly, and a
//! Parquet file's memory grows with the values actually decoded. Each has a fuzz target
//! (`fuzz/fuzz_targets/table.rs`, replayed on stable by `tests/fuzz_replay.rs`).
//!
//! The CLI's `skvault predict` reads its input here; the HTTP server and streaming predict
//! will read theirs here too, so there is one parser per format.
#![forbid(unsafe_code)]

mod csv;
pub mod fuzzing;
mod npy;
mod parquet_file;
pub mod predictions;
pub mod sink;
pub mod stream;
mod thrift_check;

pub use csv::{csv_field, read_csv, read_csv_frame};
pub use npy::{npy_bytes, read_npy};
pub use parquet_file::{read_parquet, read_parquet_frame, read_parquet_frame_limited, MAX_CELLS};

/// A problem with an input or output table, with enough detail for a user to fix it
/// (which line, column, dtype or shape).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TableError(pub String);

pub(crate) fn err<T>(message: impl Into<String>) -> Result<T, TableError> {
    Err(TableError(message.into()))
}

/// A row-major f64 table, with column names when the input had a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub data: Vec<f64>,
    pub n_rows: usize,
    pub n_cols: usize,
    pub names: Option<Vec<String>>,
}
