//! JSON bodies: MLflow's four shapes streamed with serde into column builders, with no
//! intermediate tree (except for a `dataframe_split` whose `data` comes before its
//! `columns`).

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use skvault_frame::{Column, ColumnKind, DictBuilder, Frame, Value};

use super::{model_names, truncate, Expect, Limits, RequestError};

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

/// The JSON request keys, in the order errors list them.
const SHAPES: &str = "\"dataframe_split\", \"dataframe_records\", \"inputs\" or \"instances\"";

pub(super) fn parse_json(
    body: &[u8],
    expect: &Expect<'_>,
    limits: &Limits,
) -> Result<Frame, RequestError> {
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
