//! Request bodies to one typed [`Frame`]: MLflow's JSON shapes, CSV, Parquet and `.npy`.
//!
//! # Media types
//! The `Content-Type` MUST be one of (parameters after `;` are ignored, except that a JSON
//! body's `charset`, when given, MUST be `utf-8`):
//! - `application/json`: the JSON shapes below;
//! - `text/csv`: RFC 4180 text, UTF-8. The first line is a header when any of its cells is
//!   not a number; without a header the columns are taken in the model's order;
//! - `application/vnd.apache.parquet` (or `application/x-parquet`): numeric columns as
//!   numbers, UTF-8 string columns as text, nulls missing;
//! - `application/x-npy`: a 2-d numeric `.npy` array, columns in the model's order.
//!
//! `application/octet-stream` is refused: the server does not guess a binary format.
//!
//! # JSON shapes (MLflow's)
//! The body MUST be an object with exactly one of these keys:
//! - `{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}`: pandas'
//!   `orient="split"`; `index` MAY be present and is ignored; `columns` MAY be absent (the
//!   rows are then unnamed); names MAY be strings or integers (pandas' default names); any
//!   other key is refused;
//! - `{"dataframe_records": [{"col": value, ...}, ...]}`: pandas' `orient="records"`;
//! - `{"inputs": ...}`: a list of rows (lists), a list of records (objects), or an object
//!   mapping each column name to its list of values;
//! - `{"instances": ...}`: a list of rows or a list of records.
//!
//! A `"params"` key MAY accompany it when it is `null` or `{}`; any other `params` is refused
//! (skvault models take no inference parameters, and silently ignoring one would answer a
//! question the client did not ask).
//!
//! Values: a JSON number is a number; `true`/`false` are 1 and 0 in a numeric column (as
//! pandas and scikit-learn convert them) and booleans in a text column; `null` is missing
//! (NaN in a numeric column, `None` in a text column); a string is text. Which columns are
//! text comes from the model's input schema ([`InputSchema::text_columns`]); a string in a
//! numeric column MUST be a number Python's `float()` reads (`"1.5"`), else the request is
//! refused naming the column, the row and the value. Lists and objects are not values.
//!
//! Records follow `pandas.DataFrame(records)`: the columns are every key seen, in the order
//! first seen, and a record without a key holds a missing value there (NaN; in a text column
//! NaN as well, as pandas fills it, not `None`). A key twice in one record is refused.
//!
//! Unnamed rows (lists, CSV without header, `.npy`) take the names of the model's input
//! schema in order, else its `feature_names_in_`, else `"0"`, `"1"`, ...: their count MUST
//! equal the model's. Every row MUST have as many values as the first; the input MUST hold at
//! least one row; more than [`Limits::max_rows`] rows (or [`Limits::max_values`] cells) are
//! refused with 413. JSON rows are counted while they are parsed, CSV lines and a Parquet
//! footer's declared rows before, so that a large body is refused before it is built; `.npy`
//! bodies are counted once read (their size is bounded by the server's body limit). A JSON body is parsed in one pass with
//! no intermediate tree, except the `data` of a `dataframe_split` that comes before its
//! `columns`, which is kept until the names are known.
//!
//! Every refusal is a [`RequestError`] with an HTTP status and a stable `kind` code; parsing
//! never panics, whatever the bytes (fuzzed by `fuzz/fuzz_targets/serve_request.rs`).
//!
//! Finally the frame is checked against the model's input schema when there is one (every
//! column present by name, of the kind the model was fitted on; extra columns are allowed
//! and ignored), else against its feature names, else its number of features.

mod error;
mod json;

use bytes::Bytes;
use skvault_frame::{Column, Frame, InputSchema, Value};
use skvault_table::{
    read_csv, read_csv_frame, read_npy, read_parquet_frame_limited, Table, TableError,
};

pub use error::RequestError;

/// The media type of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    Csv,
    Parquet,
    Npy,
}

/// The request media types accepted, for error messages and the API description.
pub const ACCEPTED_MEDIA: &str = "application/json, text/csv, application/vnd.apache.parquet \
     (or application/x-parquet), application/x-npy";

impl Media {
    /// The media type of a `Content-Type` header value (see the module docs).
    pub fn from_content_type(ct: Option<&str>) -> Result<Media, RequestError> {
        let unsupported = || RequestError::UnsupportedMedia {
            found: ct.map(|c| truncate(c.trim())),
        };
        let ct = ct.ok_or_else(unsupported)?;
        let mut parts = ct.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let media = match essence.as_str() {
            "application/json" => Media::Json,
            "text/csv" => Media::Csv,
            "application/vnd.apache.parquet" | "application/x-parquet" => Media::Parquet,
            "application/x-npy" => Media::Npy,
            _ => return Err(unsupported()),
        };
        if media == Media::Json {
            for param in parts {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = value.trim().trim_matches('"');
                if key.trim().eq_ignore_ascii_case("charset")
                    && !value.eq_ignore_ascii_case("utf-8")
                {
                    return Err(unsupported());
                }
            }
        }
        Ok(media)
    }

    fn name(self) -> &'static str {
        match self {
            Media::Json => "JSON",
            Media::Csv => "CSV",
            Media::Parquet => "Parquet",
            Media::Npy => ".npy",
        }
    }
}

/// What the model takes, as the server knows it from the model's file.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The recorded input schema (`metadata.input_schema`), if any.
    pub schema: Option<&'a InputSchema>,
    /// `feature_names_in_`, if the model was fitted on named columns.
    pub feature_names: Option<&'a [String]>,
    /// The number of input features.
    pub n_features: usize,
}

/// Limits on one request's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most rows one request may hold (413 above).
    pub max_rows: usize,
    /// The most cells (rows times columns) one request may hold (413 above): bounds the
    /// memory of records that bring a new key in every row.
    pub max_values: usize,
}

impl Limits {
    /// At most `max_rows` rows and [`Limits::DEFAULT_MAX_VALUES`] cells.
    pub fn rows(max_rows: usize) -> Limits {
        Limits {
            max_rows,
            max_values: Limits::DEFAULT_MAX_VALUES,
        }
    }

    /// 2^25 cells: 256 MiB of f64.
    pub const DEFAULT_MAX_VALUES: usize = 1 << 25;
}

/// At most this many characters of a user's value are repeated in an error.
const SHOWN_CHARS: usize = 40;

fn truncate(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

/// Parses a request body into a frame the model can take, checked as the module docs say.
pub fn parse(
    media: Media,
    body: Bytes,
    expect: &Expect<'_>,
    limits: &Limits,
) -> Result<Frame, RequestError> {
    let table_error = |source| RequestError::Table { media, source };
    let frame = match media {
        Media::Json => json::parse_json(&body, expect, limits)?,
        Media::Csv => {
            let text = std::str::from_utf8(&body)
                .map_err(|_| table_error(TableError("the CSV is not UTF-8 text".into())))?;
            // Without quotes every line is at most one row: a body of too many lines is
            // refused before it is parsed.
            if !text.contains('"') && text.lines().count() > limits.max_rows.saturating_add(1) {
                return Err(RequestError::TooManyRows {
                    limit: limits.max_rows,
                });
            }
            if csv_has_header(text) {
                let text_columns = expect.schema.map(InputSchema::text_columns);
                read_csv_frame(text, text_columns.as_deref().unwrap_or(&[])).map_err(table_error)?
            } else {
                table_frame(read_csv(text).map_err(table_error)?, expect)?
            }
        }
        Media::Parquet => {
            let rows = u64::try_from(limits.max_rows).unwrap_or(u64::MAX);
            let values = u64::try_from(limits.max_values).unwrap_or(u64::MAX);
            read_parquet_frame_limited(Vec::from(body), rows, values).map_err(|e| {
                // The footer's counts are checked before any page is decoded; the reader
                // reports them as text, told apart here (tests cover both 413s).
                if !e.0.contains("more than the limit of") {
                    table_error(e)
                } else if e.0.contains(" values") {
                    RequestError::TooManyValues {
                        limit: limits.max_values,
                    }
                } else {
                    RequestError::TooManyRows {
                        limit: limits.max_rows,
                    }
                }
            })?
        }
        Media::Npy => table_frame(read_npy(&body).map_err(table_error)?, expect)?,
    };
    check(frame, expect, limits)
}

/// `read_csv`'s rule: the first line is a header when one of its cells is not a number.
fn csv_has_header(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    first.split(',').any(|c| {
        let t = c.trim();
        !t.is_empty() && t.parse::<f64>().is_err()
    })
}

/// A numeric table as a frame; unnamed columns take the model's names.
fn table_frame(table: Table, expect: &Expect<'_>) -> Result<Frame, RequestError> {
    let names = match table.names {
        Some(names) => names,
        None => unnamed_names(expect, table.n_cols)?,
    };
    let n_cols = table.n_cols;
    let mut columns: Vec<Vec<f64>> = (0..n_cols)
        .map(|_| Vec::with_capacity(table.n_rows))
        .collect();
    for row in table.data.chunks_exact(n_cols.max(1)) {
        for (col, v) in columns.iter_mut().zip(row) {
            col.push(*v);
        }
    }
    Ok(Frame::new(
        names,
        columns.into_iter().map(Column::Numeric).collect(),
    )?)
}

/// The names of unnamed columns: the schema's, else the feature names, else positions;
/// `found` columns must be as many.
fn unnamed_names(expect: &Expect<'_>, found: usize) -> Result<Vec<String>, RequestError> {
    let names = model_names(expect);
    if names.len() != found {
        let named = expect.schema.is_some() || expect.feature_names.is_some();
        return Err(RequestError::ColumnCount {
            found,
            expected: names.len(),
            names: if named { names } else { Vec::new() },
        });
    }
    Ok(names)
}

/// The names unnamed columns take, in order: the schema's, else the feature names, else
/// positions.
fn model_names(expect: &Expect<'_>) -> Vec<String> {
    match (expect.schema, expect.feature_names) {
        (Some(schema), _) => schema.columns.iter().map(|c| c.name.clone()).collect(),
        (None, Some(names)) => names.to_vec(),
        (None, None) => (0..expect.n_features).map(|i| i.to_string()).collect(),
    }
}

/// The last checks, common to every media type.
fn check(frame: Frame, expect: &Expect<'_>, limits: &Limits) -> Result<Frame, RequestError> {
    if frame.n_rows() == 0 {
        return Err(RequestError::NoRows);
    }
    if frame.n_rows() > limits.max_rows {
        return Err(RequestError::TooManyRows {
            limit: limits.max_rows,
        });
    }
    match (expect.schema, expect.feature_names) {
        (Some(schema), _) => {
            schema.check(&frame)?;
        }
        (None, Some(names)) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| frame.position(n).is_none())
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(RequestError::MissingColumns(missing));
            }
            let positions: Vec<usize> = names.iter().filter_map(|n| frame.position(n)).collect();
            refuse_text(&frame, &positions)?;
        }
        (None, None) => {
            if frame.n_cols() != expect.n_features {
                return Err(RequestError::ColumnCount {
                    found: frame.n_cols(),
                    expected: expect.n_features,
                    names: Vec::new(),
                });
            }
            let all: Vec<usize> = (0..frame.n_cols()).collect();
            refuse_text(&frame, &all)?;
        }
    }
    Ok(frame)
}

/// Without a schema every column the model reads is numeric: text there (a CSV or Parquet
/// column of words) is named now rather than by the model.
fn refuse_text(frame: &Frame, positions: &[usize]) -> Result<(), RequestError> {
    for &p in positions {
        let Some(Column::Dict(d)) = frame.columns().get(p) else {
            continue;
        };
        let text =
            d.codes()
                .iter()
                .enumerate()
                .find_map(|(row, &c)| match d.values().get(c as usize) {
                    Some(v @ Value::Str(s)) if v.as_f64().is_none() => Some((row, s)),
                    _ => None,
                });
        if let Some((row, value)) = text {
            return Err(RequestError::TextForNumber {
                column: frame.names()[p].clone(),
                row,
                value: truncate(value),
            });
        }
    }
    Ok(())
}

/// What the `serve_request` fuzz target does with its input, shared with the replay test
/// (`tests/fuzz_replay.rs`) so that both always exercise the same calls.
#[doc(hidden)]
pub mod fuzzing {
    use bytes::Bytes;
    use skvault_frame::{CategoryValue, ColumnKind, ColumnSpec, InputSchema, SchemaSource};

    use super::{parse, Expect, Limits, Media};
    use crate::response::Accept;

    fn spec(name: &str, kind: ColumnKind) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            dtype: None,
            kind,
            categories: None,
            ordered: None,
        }
    }

    /// The model every input is parsed for: numbers, text, categories and an unused column.
    pub fn schema() -> InputSchema {
        InputSchema {
            source: SchemaSource::Validation,
            columns: vec![
                spec("age", ColumnKind::Number),
                spec("city", ColumnKind::Text),
                ColumnSpec {
                    categories: Some(vec![CategoryValue::Str("A".into())]),
                    ..spec("grade", ColumnKind::Category)
                },
                spec("id", ColumnKind::Unused),
            ],
        }
    }

    pub const LIMITS: Limits = Limits {
        max_rows: 1000,
        max_values: 100_000,
    };

    /// The first byte picks the media type (`% 4`: JSON, CSV, Parquet, `.npy`) and whether
    /// the model has the schema (`/ 4 % 2 == 0`) or only four unnamed features; the rest is
    /// the body. A frame that is returned must be consistent: within the limits, its columns
    /// as long as it, and accepted by the schema. The body is also read as a `Content-Type`
    /// and an `Accept` header. Returns whether the body was parsed into a frame.
    #[allow(clippy::panic)] // an inconsistent frame is the bug a fuzz run looks for
    pub fn exercise(bytes: &[u8]) -> bool {
        let Some((&pick, body)) = bytes.split_first() else {
            return false;
        };
        let media = [Media::Json, Media::Csv, Media::Parquet, Media::Npy][usize::from(pick % 4)];
        let schema = schema();
        let expect = Expect {
            schema: (pick / 4 % 2 == 0).then_some(&schema),
            feature_names: None,
            n_features: 4,
        };
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = Media::from_content_type(Some(text));
            let _ = Accept::negotiate(Some(text), None);
        }
        let Ok(frame) = parse(media, Bytes::copy_from_slice(body), &expect, &LIMITS) else {
            return false;
        };
        if frame.n_rows() == 0 || frame.n_rows() > LIMITS.max_rows {
            panic!("a frame of {} rows was accepted", frame.n_rows());
        }
        if frame.columns().iter().any(|c| c.len() != frame.n_rows()) {
            panic!("a frame column's length differs from the frame's rows");
        }
        if let Some(schema) = expect.schema {
            if let Err(e) = schema.check(&frame) {
                panic!("an accepted frame fails the schema: {e}");
            }
        } else if frame.n_cols() != expect.n_features {
            panic!("{} columns accepted for 4 features", frame.n_cols());
        }
        true
    }
}
