//! [`RequestError`]: why a body cannot be a model's input, with its HTTP status and code.

use skvault_frame::FrameError;
use skvault_table::TableError;

use super::{truncate, Media, ACCEPTED_MEDIA};

/// Why a request body cannot be a model's input. Each variant has an HTTP status
/// ([`status`](Self::status)) and a short stable code ([`kind`](Self::kind)) for the JSON
/// error body.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    #[error("{}: send one of {ACCEPTED_MEDIA}", match .found {
        Some(ct) => format!("unsupported Content-Type {ct:?}"),
        None => "no Content-Type".to_string(),
    })]
    UnsupportedMedia { found: Option<String> },
    #[error("cannot answer in {found:?}: the server answers in application/json, text/csv or application/x-npy")]
    NotAcceptable { found: String },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// Valid JSON in a shape that is not a request (wrong keys, a nested value in a cell).
    #[error("{0}")]
    Shape(String),
    #[error("\"params\" is not supported: skvault models take no inference parameters")]
    Params,
    #[error("malformed {media}: {source}", media = .media.name())]
    Table {
        media: Media,
        #[source]
        source: TableError,
    },
    #[error("row {row} has {found} values, but the rows have {expected} columns")]
    Ragged {
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("column {column:?} has {found} values, but column {first:?} has {expected}")]
    ColumnLength {
        column: String,
        found: usize,
        first: String,
        expected: usize,
    },
    #[error("the input has {found} columns, but the model takes {expected}{}", names_suffix(.names))]
    ColumnCount {
        found: usize,
        expected: usize,
        names: Vec<String>,
    },
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    #[error("{}", missing_message(.0))]
    MissingColumns(Vec<String>),
    #[error("column {column:?} holds text ({value:?} at row {row}) where the model expects numbers: could not convert string to float")]
    TextForNumber {
        column: String,
        row: usize,
        value: String,
    },
    /// A column of the wrong kind for the model's schema (from [`InputSchema::check`](skvault_frame::InputSchema::check)).
    #[error("{0}")]
    WrongKind(FrameError),
    #[error("the input has no rows")]
    NoRows,
    #[error("the input has more than {limit} rows: split it")]
    TooManyRows { limit: usize },
    #[error("the input has more than {limit} values: split it")]
    TooManyValues { limit: usize },
    /// Any other reason a frame cannot be built (a dictionary too large).
    #[error("{0}")]
    Frame(FrameError),
}

fn names_suffix(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    }
}

fn missing_message(names: &[String]) -> String {
    FrameError::MissingColumns(names.to_vec()).to_string()
}

impl RequestError {
    /// The HTTP status: 400 for a body that is malformed or does not fit the model, 406 for an
    /// answer format the server cannot give, 413 for too many rows or values, 415 for an
    /// unsupported media type.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::UnsupportedMedia { .. } => 415,
            RequestError::NotAcceptable { .. } => 406,
            RequestError::TooManyRows { .. } | RequestError::TooManyValues { .. } => 413,
            _ => 400,
        }
    }

    /// A short stable code for the JSON error body.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::UnsupportedMedia { .. } => "unsupported_media_type",
            RequestError::NotAcceptable { .. } => "not_acceptable",
            RequestError::MalformedJson(_) => "malformed_json",
            RequestError::Shape(_) => "bad_request_shape",
            RequestError::Params => "params_not_supported",
            RequestError::Table { media, .. } => match media {
                Media::Json => "malformed_json",
                Media::Csv => "malformed_csv",
                Media::Parquet => "malformed_parquet",
                Media::Npy => "malformed_npy",
            },
            RequestError::Ragged { .. } | RequestError::ColumnLength { .. } => "ragged_rows",
            RequestError::ColumnCount { .. } => "wrong_column_count",
            RequestError::DuplicateColumn(_) => "duplicate_columns",
            RequestError::MissingColumns(_) => "missing_columns",
            RequestError::TextForNumber { .. } | RequestError::WrongKind(_) => "wrong_dtype",
            RequestError::NoRows => "no_rows",
            RequestError::TooManyRows { .. } => "too_many_rows",
            RequestError::TooManyValues { .. } => "too_many_values",
            RequestError::Frame(_) => "invalid_input",
        }
    }
}

impl From<FrameError> for RequestError {
    fn from(e: FrameError) -> RequestError {
        match e {
            FrameError::MissingColumns(names) => RequestError::MissingColumns(names),
            FrameError::DuplicateName(name) => RequestError::DuplicateColumn(name),
            FrameError::TextForNumber { column, row, value } => RequestError::TextForNumber {
                column,
                row,
                value: truncate(&value),
            },
            e @ FrameError::Kind { .. } => RequestError::WrongKind(e),
            e => RequestError::Frame(e),
        }
    }
}
