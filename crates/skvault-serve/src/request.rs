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

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use skvault_frame::{Column, ColumnKind, DictBuilder, Frame, FrameError, InputSchema, Value};
use skvault_table::{
    read_csv, read_csv_frame, read_npy, read_parquet_frame_limited, Table, TableError,
};

/// The scalar `visit_*` methods of a visitor that takes only lists or objects: each refuses
/// with `$refuse`, an expression of the visitor (`$this`) and of the kind of value found
/// (`$what`: "a string", "a number", "a boolean" or "null").
macro_rules! refuse_scalars {
    ($this:ident, $what:ident => $refuse:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            let ($this, $what) = (self, "a string");
            Err($refuse)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            let ($this, $what) = (self, "a number");
            Err($refuse)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            let ($this, $what) = (self, "a number");
            Err($refuse)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            let ($this, $what) = (self, "a number");
            Err($refuse)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            let ($this, $what) = (self, "a boolean");
            Err($refuse)
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            let ($this, $what) = (self, "null");
            Err($refuse)
        }
    };
}

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
    /// A column of the wrong kind for the model's schema (from [`InputSchema::check`]).
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
        Media::Json => parse_json(&body, expect, limits)?,
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
            let limit = u64::try_from(limits.max_rows).unwrap_or(u64::MAX);
            read_parquet_frame_limited(Vec::from(body), limit).map_err(|e| {
                // The footer's row count is checked before any page is decoded; the reader
                // reports it as text, told apart here (a test covers the 413).
                if e.0.contains("more than the limit of") {
                    RequestError::TooManyRows {
                        limit: limits.max_rows,
                    }
                } else {
                    table_error(e)
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

// ---------------------------------------------------------------------------------------
// JSON: streamed with serde into column builders, with no intermediate tree (except for a
// `dataframe_split` whose `data` comes before its `columns`).

/// The JSON request keys, in the order errors list them.
const SHAPES: &str = "\"dataframe_split\", \"dataframe_records\", \"inputs\" or \"instances\"";

fn parse_json(body: &[u8], expect: &Expect<'_>, limits: &Limits) -> Result<Frame, RequestError> {
    let mut b = Builder::new(expect, limits);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = TopSeed { b: &mut b }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(b
            .err
            .take()
            .unwrap_or_else(|| RequestError::MalformedJson(e.to_string())));
    }
    b.finish()
}

/// How a column's values are kept.
enum Store {
    /// The model reads numbers here: JSON values become f64 as pandas converts them.
    Number(Vec<f64>),
    /// The model reads text here (or the column is not the model's, so anything goes).
    Values(DictBuilder),
}

struct Col {
    name: String,
    store: Store,
    len: usize,
}

/// One cell of JSON, borrowed from the body when it can be.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Null,
    /// A key absent from a record.
    Absent,
    Bool(bool),
    Num(f64),
    Str(&'a str),
}

/// Which sort of rows a list holds (every row the same).
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowSort {
    List,
    Record,
}

struct Builder<'e> {
    expect: &'e Expect<'e>,
    limits: &'e Limits,
    cols: Vec<Col>,
    /// Column positions by name (records and named columns).
    index: HashMap<String, usize>,
    /// Whether the columns are known (named, or the model's for unnamed rows).
    ready: bool,
    /// Whether the names came from the model (unnamed rows).
    unnamed: bool,
    n_rows: usize,
    sort: Option<RowSort>,
    /// The typed error behind a serde error raised by a visitor.
    err: Option<RequestError>,
}

impl<'e> Builder<'e> {
    fn new(expect: &'e Expect<'e>, limits: &'e Limits) -> Builder<'e> {
        Builder {
            expect,
            limits,
            cols: Vec::new(),
            index: HashMap::new(),
            ready: false,
            unnamed: false,
            n_rows: 0,
            sort: None,
            err: None,
        }
    }

    /// Records `e` and returns the serde error that unwinds the parse.
    fn fail<E: de::Error>(&mut self, e: RequestError) -> E {
        let message = e.to_string();
        self.err = Some(e);
        E::custom(message)
    }

    /// Whether the model reads the column `name` as numbers.
    fn numeric(&self, name: &str) -> Option<bool> {
        match (self.expect.schema, self.expect.feature_names) {
            (Some(schema), _) => {
                // Columns mostly come in the schema's order: look at the next one first, so
                // that a wide model costs no search per column.
                let spec = schema
                    .columns
                    .get(self.cols.len())
                    .filter(|c| c.name == name)
                    .or_else(|| schema.columns.iter().find(|c| c.name == name))?;
                match spec.kind {
                    ColumnKind::Number | ColumnKind::Boolean => Some(true),
                    ColumnKind::Text | ColumnKind::Category => Some(false),
                    ColumnKind::Unused => None,
                }
            }
            (None, Some(names)) => names.iter().any(|n| n == name).then_some(true),
            (None, None) => Some(true),
        }
    }

    /// Adds a column, `self.n_rows` missing values long (a key first seen in a later record).
    fn add_column(&mut self, name: &str) -> Result<usize, RequestError> {
        if self.index.contains_key(name) {
            return Err(RequestError::DuplicateColumn(truncate(name)));
        }
        self.check_values(self.cols.len() + 1, self.n_rows)?;
        let store = match self.numeric(name) {
            Some(true) => Store::Number(Vec::new()),
            // Unused and unknown columns keep any value: the model never reads them.
            Some(false) | None => Store::Values(DictBuilder::new(name)),
        };
        let i = self.cols.len();
        self.cols.push(Col {
            name: name.to_string(),
            store,
            len: 0,
        });
        self.index.insert(name.to_string(), i);
        for row in 0..self.n_rows {
            self.push(i, row, Cell::Absent)?;
        }
        Ok(i)
    }

    fn check_values(&self, cols: usize, rows: usize) -> Result<(), RequestError> {
        if cols.saturating_mul(rows) > self.limits.max_values {
            return Err(RequestError::TooManyValues {
                limit: self.limits.max_values,
            });
        }
        Ok(())
    }

    /// Columns named by the model, for unnamed rows.
    fn set_unnamed(&mut self) -> Result<(), RequestError> {
        for name in model_names(self.expect) {
            self.add_column(&name)?;
        }
        self.ready = true;
        self.unnamed = true;
        Ok(())
    }

    /// Named columns (`dataframe_split`'s `columns`).
    fn set_named(&mut self, names: &[String]) -> Result<(), RequestError> {
        for name in names {
            self.add_column(name)?;
        }
        self.ready = true;
        Ok(())
    }

    /// Appends one cell to column `i` at `row`.
    fn push(&mut self, i: usize, row: usize, cell: Cell<'_>) -> Result<(), RequestError> {
        let col = &mut self.cols[i];
        match &mut col.store {
            Store::Number(v) => v.push(match cell {
                Cell::Null | Cell::Absent => f64::NAN,
                Cell::Bool(b) => f64::from(u8::from(b)),
                Cell::Num(x) => x,
                Cell::Str(s) => Value::Str(s.to_string()).as_f64().ok_or_else(|| {
                    RequestError::TextForNumber {
                        column: col.name.clone(),
                        row,
                        value: truncate(s),
                    }
                })?,
            }),
            Store::Values(d) => match cell {
                Cell::Str(s) => d.push_str(s)?,
                Cell::Null => d.push(Value::None)?,
                // pandas fills an absent key with NaN, even in an object column.
                Cell::Absent => d.push(Value::NaN)?,
                Cell::Bool(b) => d.push(Value::Bool(b))?,
                Cell::Num(x) => d.push(Value::number(x))?,
            },
        }
        col.len += 1;
        Ok(())
    }

    /// Starts a row of the given sort: every row of a list is of one sort, and the rows are
    /// counted against the limits as they come.
    fn start_row(&mut self, sort: RowSort) -> Result<usize, RequestError> {
        match self.sort {
            None => self.sort = Some(sort),
            Some(s) if s != sort => {
                let (this, first) = match sort {
                    RowSort::List => ("a list", "an object"),
                    RowSort::Record => ("an object", "a list"),
                };
                return Err(RequestError::Shape(format!(
                    "row {} is {this}, but row 0 is {first}: every row must be of one sort",
                    self.n_rows
                )));
            }
            Some(_) => {}
        }
        if self.n_rows >= self.limits.max_rows {
            return Err(RequestError::TooManyRows {
                limit: self.limits.max_rows,
            });
        }
        self.check_values(self.cols.len(), self.n_rows + 1)?;
        Ok(self.n_rows)
    }

    fn finish(self) -> Result<Frame, RequestError> {
        let mut names = Vec::with_capacity(self.cols.len());
        let mut columns = Vec::with_capacity(self.cols.len());
        for col in self.cols {
            names.push(col.name);
            columns.push(match col.store {
                Store::Number(v) => Column::Numeric(v),
                Store::Values(d) => Column::Dict(d.finish()),
            });
        }
        if columns.is_empty() && self.n_rows > 0 {
            return Err(RequestError::Shape("the records have no keys".into()));
        }
        Ok(Frame::new(names, columns)?)
    }
}

/// The body: an object with one request key.
struct TopSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn not_an_object<E: de::Error>(b: &mut Builder<'_>, found: &str) -> E {
    b.fail(RequestError::Shape(format!(
        "the body is {found}: it must be a JSON object with one of {SHAPES}"
    )))
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with one of {SHAPES}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut shape: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            let known = matches!(
                key.as_str(),
                "dataframe_split" | "dataframe_records" | "inputs" | "instances"
            );
            if known {
                if let Some(first) = &shape {
                    let e = RequestError::Shape(format!(
                        "the body holds both {first:?} and {key:?}: send exactly one of {SHAPES}"
                    ));
                    return Err(self.b.fail(e));
                }
                shape = Some(key.clone());
            }
            match key.as_str() {
                "dataframe_split" => map.next_value_seed(SplitSeed { b: &mut *self.b })?,
                "dataframe_records" => map.next_value_seed(RowsSeed {
                    b: &mut *self.b,
                    what: "dataframe_records",
                    lists: false,
                    records: true,
                    columns: false,
                })?,
                "inputs" => map.next_value_seed(RowsSeed {
                    b: &mut *self.b,
                    what: "inputs",
                    lists: true,
                    records: true,
                    columns: true,
                })?,
                "instances" => map.next_value_seed(RowsSeed {
                    b: &mut *self.b,
                    what: "instances",
                    lists: true,
                    records: true,
                    columns: false,
                })?,
                "params" => {
                    let params: serde_json::Value = map.next_value()?;
                    let empty = match &params {
                        serde_json::Value::Null => true,
                        serde_json::Value::Object(m) => m.is_empty(),
                        _ => false,
                    };
                    if !empty {
                        return Err(self.b.fail(RequestError::Params));
                    }
                }
                other => {
                    let e = RequestError::Shape(format!(
                        "unknown key {:?}: the body holds one of {SHAPES}",
                        truncate(other)
                    ));
                    return Err(self.b.fail(e));
                }
            }
        }
        if shape.is_none() {
            return Err(self.b.fail(RequestError::Shape(format!(
                "the body holds none of {SHAPES}"
            ))));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(not_an_object(self.b, "a list"))
    }
    refuse_scalars!(this, what => not_an_object(this.b, what));
}

/// `dataframe_split`: `columns`, `data` and an ignored `index`, in any order.
struct SplitSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
}

impl<'de> DeserializeSeed<'de> for SplitSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A column name of `dataframe_split`: text, or an integer as pandas names columns by
/// default.
fn column_name(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

impl<'de> Visitor<'de> for SplitSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with \"columns\" and \"data\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut columns_seen = false;
        let mut data_seen = false;
        // `data` before `columns`: kept as a tree until the names are known.
        let mut early: Option<serde_json::Value> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "columns" if !columns_seen => {
                    columns_seen = true;
                    let names: Vec<serde_json::Value> = map.next_value()?;
                    let names: Option<Vec<String>> = names.iter().map(column_name).collect();
                    let Some(names) = names else {
                        return Err(self.b.fail(RequestError::Shape(
                            "dataframe_split's \"columns\" must be a list of names (strings or integers)".into(),
                        )));
                    };
                    if let Err(e) = self.b.set_named(&names) {
                        return Err(self.b.fail(e));
                    }
                }
                "data" if !data_seen => {
                    data_seen = true;
                    if columns_seen {
                        map.next_value_seed(split_rows(self.b))?;
                    } else {
                        early = Some(map.next_value()?);
                    }
                }
                "index" => {
                    map.next_value::<IgnoredAny>()?;
                }
                other => {
                    let e = RequestError::Shape(format!(
                        "dataframe_split holds {:?}: it takes \"columns\", \"data\" and \"index\", each once",
                        truncate(other)
                    ));
                    return Err(self.b.fail(e));
                }
            }
        }
        if !data_seen {
            return Err(self.b.fail(RequestError::Shape(
                "dataframe_split has no \"data\"".into(),
            )));
        }
        if let Some(data) = early {
            if !columns_seen {
                if let Err(e) = self.b.set_unnamed() {
                    return Err(self.b.fail(e));
                }
            }
            // A typed error is kept in the builder; this only unwinds.
            if let Err(e) = split_rows(self.b).deserialize(data) {
                return Err(de::Error::custom(e));
            }
        }
        Ok(())
    }
}

fn split_rows<'b, 'e>(b: &'b mut Builder<'e>) -> RowsSeed<'b, 'e> {
    RowsSeed {
        b,
        what: "dataframe_split's \"data\"",
        lists: true,
        records: false,
        columns: false,
    }
}

/// A list of rows (lists or records, as allowed), or for `inputs` an object of columns.
struct RowsSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
    what: &'static str,
    lists: bool,
    records: bool,
    columns: bool,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl RowsSeed<'_, '_> {
    fn wrong<E: de::Error>(self, found: &str) -> E {
        let mut sorts = Vec::new();
        if self.lists {
            sorts.push("a list of rows (lists)");
        }
        if self.records {
            sorts.push("a list of records (objects)");
        }
        if self.columns {
            sorts.push("an object of columns (name: list of values)");
        }
        let e = RequestError::Shape(format!(
            "{} is {found}: it must be {}",
            self.what,
            sorts.join(" or ")
        ));
        self.b.fail(e)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(RowSeed {
                b: &mut *self.b,
                lists: self.lists,
                records: self.records,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if !self.columns {
            return Err(self.wrong("an object"));
        }
        self.b.ready = true;
        let mut first: Option<(String, usize)> = None;
        while let Some(name) = map.next_key::<String>()? {
            let i = match self.b.add_column(&name) {
                Ok(i) => i,
                Err(e) => return Err(self.b.fail(e)),
            };
            map.next_value_seed(ColumnSeed {
                b: &mut *self.b,
                col: i,
            })?;
            let len = self.b.cols[i].len;
            match &first {
                None => first = Some((name, len)),
                Some((first, expected)) if *expected != len => {
                    let e = RequestError::ColumnLength {
                        column: truncate(&name),
                        found: len,
                        first: truncate(first),
                        expected: *expected,
                    };
                    return Err(self.b.fail(e));
                }
                Some(_) => {}
            }
        }
        // Set last: a column added while it is 0 is not filled with missing rows.
        self.b.n_rows = first.map_or(0, |(_, len)| len);
        Ok(())
    }

    refuse_scalars!(this, what => this.wrong(what));
}

/// One column of `inputs` given as an object of columns.
struct ColumnSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
    col: usize,
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ColumnSeed<'_, '_> {
    fn wrong<E: de::Error>(self) -> E {
        let e = RequestError::Shape(format!(
            "inputs[{:?}] must be a list of values",
            truncate(&self.b.cols[self.col].name)
        ));
        self.b.fail(e)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut row = 0usize;
        loop {
            if row >= self.b.limits.max_rows {
                // One more value means one row too many.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let e = RequestError::TooManyRows {
                        limit: self.b.limits.max_rows,
                    };
                    return Err(self.b.fail(e));
                }
                return Ok(());
            }
            if let Err(e) = self.b.check_values(self.b.cols.len(), row + 1) {
                return Err(self.b.fail(e));
            }
            let seed = CellSeed {
                b: &mut *self.b,
                col: self.col,
                row,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            row += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.wrong())
    }
    refuse_scalars!(this, _what => this.wrong());
}

/// One row: a list of values or a record.
struct RowSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
    lists: bool,
    records: bool,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl RowSeed<'_, '_> {
    fn wrong<E: de::Error>(self, found: &str) -> E {
        let sort = match (self.lists, self.records) {
            (true, true) => "a list or an object",
            (true, false) => "a list",
            _ => "an object",
        };
        let e = RequestError::Shape(format!(
            "row {} is {found}: a row must be {sort}",
            self.b.n_rows
        ));
        self.b.fail(e)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.lists {
            return Err(self.wrong("a list"));
        }
        let b = self.b;
        let row = match b.start_row(RowSort::List) {
            Ok(row) => row,
            Err(e) => return Err(b.fail(e)),
        };
        if !b.ready {
            if let Err(e) = b.set_unnamed() {
                return Err(b.fail(e));
            }
        }
        let expected = b.cols.len();
        let mut found = 0usize;
        while found < expected {
            let seed = CellSeed {
                b: &mut *b,
                col: found,
                row,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            found += 1;
        }
        if found == expected {
            while seq.next_element::<IgnoredAny>()?.is_some() {
                found += 1;
            }
        }
        if found != expected {
            let e = if row == 0 && b.unnamed {
                RequestError::ColumnCount {
                    found,
                    expected,
                    names: if b.expect.schema.is_some() || b.expect.feature_names.is_some() {
                        b.cols.iter().map(|c| c.name.clone()).collect()
                    } else {
                        Vec::new()
                    },
                }
            } else {
                RequestError::Ragged {
                    row,
                    found,
                    expected,
                }
            };
            return Err(b.fail(e));
        }
        b.n_rows += 1;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if !self.records {
            return Err(self.wrong("an object"));
        }
        let b = self.b;
        let row = match b.start_row(RowSort::Record) {
            Ok(row) => row,
            Err(e) => return Err(b.fail(e)),
        };
        b.ready = true;
        while let Some(col) = map.next_key_seed(KeySeed { b: &mut *b, row })? {
            map.next_value_seed(CellSeed {
                b: &mut *b,
                col,
                row,
            })?;
        }
        for i in 0..b.cols.len() {
            if b.cols[i].len == row {
                if let Err(e) = b.push(i, row, Cell::Absent) {
                    return Err(b.fail(e));
                }
            }
        }
        b.n_rows += 1;
        Ok(())
    }

    refuse_scalars!(this, what => this.wrong(what));
}

/// A record's key: the position of its column (a new column for a new key).
struct KeySeed<'b, 'e> {
    b: &'b mut Builder<'e>,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        let found = match self.b.index.get(key) {
            Some(&i) if self.b.cols[i].len > self.row => Err(RequestError::Shape(format!(
                "record {} holds the key {:?} twice",
                self.row,
                truncate(key)
            ))),
            Some(&i) => Ok(i),
            None => self.b.add_column(key),
        };
        found.map_err(|e| self.b.fail(e))
    }
}

/// One value.
struct CellSeed<'b, 'e> {
    b: &'b mut Builder<'e>,
    col: usize,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_, '_> {
    fn put<E: de::Error>(self, cell: Cell<'_>) -> Result<(), E> {
        self.b
            .push(self.col, self.row, cell)
            .map_err(|e| self.b.fail(e))
    }

    fn nested<E: de::Error>(self, what: &str) -> E {
        let e = RequestError::Shape(format!(
            "row {}, column {:?} holds {what}: a value must be a number, a string, a boolean or null",
            self.row,
            truncate(&self.b.cols[self.col].name)
        ));
        self.b.fail(e)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number, a string, a boolean or null")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(Cell::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(Cell::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put(Cell::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(Cell::Num(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(Cell::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.put(Cell::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.put(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.nested("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.nested("an object"))
    }
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
