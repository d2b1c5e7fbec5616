//! OneHotEncoder and OrdinalEncoder, over numbers and over text.
//!
//! Categories are values with Python's equality (`skvault_frame::Value`): `1`, `1.0` and
//! `True` are one category, `None`, NaN and `pd.NA` three different ones, as in the sets
//! scikit-learn builds them with. A feature fitted on text (an `object` array of
//! categories) reads text from a [`Frame`] column; the numeric matrix methods refuse it.
//! A dictionary-coded column is encoded once per distinct value, then per row by code.

use std::collections::HashMap;

use skvault_format::Node;
use skvault_frame::{Column, Frame, Value, ValueKey};

use crate::error::{malformed, unsupported, InferError, Result};
use crate::estimator::{Boxed, Estimator, Method, Output};
use crate::matrix::{check_input, Finite, Matrix, MatrixView};
use crate::state::{node_float, node_int, seq_items, Obj};

const ONE_HOT: &str = "sklearn.preprocessing._encoders.OneHotEncoder";
const ORDINAL: &str = "sklearn.preprocessing._encoders.OrdinalEncoder";

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        ONE_HOT => Box::new(one_hot(o)?),
        ORDINAL => Box::new(ordinal(o)?),
        _ => return Ok(None),
    };
    Ok(Some(est))
}

/// One feature's categories, in scikit-learn's order, and where each is.
#[derive(Debug)]
struct Categories {
    values: Vec<Value>,
    index: HashMap<ValueKey, usize>,
    /// Fitted on an `object` array (text, or mixed values).
    text: bool,
}

impl Categories {
    fn new(values: Vec<Value>, text: bool, path: &str) -> Result<Categories> {
        let mut index = HashMap::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            if index.insert(v.key(), i).is_some() {
                return Err(malformed(
                    path,
                    format!("category {} appears twice", show(v)),
                ));
            }
        }
        Ok(Categories {
            values,
            index,
            text,
        })
    }

    fn find(&self, v: &Value) -> Option<usize> {
        self.index.get(&v.key()).copied()
    }

    /// Where each row's value is among the categories (`None`: unknown), for a column of
    /// `n_rows` values.
    fn locate(&self, column: &Column) -> Vec<Option<usize>> {
        match column {
            Column::Numeric(v) => v.iter().map(|x| self.find(&Value::number(*x))).collect(),
            Column::Dict(d) => {
                let per_value: Vec<Option<usize>> =
                    d.values().iter().map(|v| self.find(v)).collect();
                d.codes().iter().map(|&c| per_value[c as usize]).collect()
            }
        }
    }
}

/// A value as Python would print it in scikit-learn's messages.
fn show(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("'{s}'"),
        Value::Num(x) => crate::classes::format_float(*x),
        Value::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Value::None => "None".into(),
        Value::NaN => "nan".into(),
        Value::NA => "<NA>".into(),
    }
}

/// An item of an `object` array of categories.
fn category_value(node: &Node) -> Option<Value> {
    match node {
        Node::Str(s) => Some(Value::Str(s.clone())),
        Node::None => Some(Value::None),
        Node::Bool(b) => Some(Value::Bool(*b)),
        other => node_float(other).map(Value::number),
    }
}

/// `categories_`: one array per feature, numeric or `object`.
fn categories(o: &Obj<'_, '_>, n: usize) -> Result<Vec<Categories>> {
    let name = "categories_";
    let items = seq_items(o.ctx, o.req(name)?)
        .ok_or_else(|| malformed(&o.sub(name), "expected a list of arrays"))?;
    if items.len() != n {
        return Err(malformed(
            &o.sub(name),
            format!("{} lists for {n} features", items.len()),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, node)| {
            let path = format!("{}/{i}", o.sub(name));
            if let Node::ObjArray { shape, items } = o.ctx.resolve(node) {
                if shape.len() != 1 {
                    return Err(malformed(&path, "categories must be 1-d"));
                }
                o.ctx.budget().note(items.len());
                let values = items
                    .iter()
                    .map(|item| {
                        category_value(o.ctx.resolve(item)).ok_or_else(|| {
                            unsupported(
                                o.class(),
                                &o.path,
                                Some(format!(
                                    "a category of feature {i} is neither text, a number nor None"
                                )),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Categories::new(values, true, &path);
            }
            let a = o.ctx.f64_array(node, &path)?;
            if a.shape.len() != 1 {
                return Err(malformed(&path, "categories must be 1-d"));
            }
            Categories::new(
                a.data.into_iter().map(Value::number).collect(),
                false,
                &path,
            )
        })
        .collect()
}

fn common(o: &Obj<'_, '_>) -> Result<(usize, Vec<Categories>)> {
    if o.attr("_infrequent_enabled").is_some() && o.bool("_infrequent_enabled")? {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some("infrequent categories".into()),
        ));
    }
    let n = o.usize("n_features_in_")?;
    let cats = categories(o, n)?;
    Ok((n, cats))
}

/// The numeric categories of every feature, for exporters (`None` when one is text).
fn numeric_categories(cats: &[Categories]) -> Option<Vec<Vec<f64>>> {
    cats.iter()
        .map(|c| {
            (!c.text).then(|| {
                c.values
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
        })
        .collect()
}

fn unknown(class: &str, row: usize, column: usize, v: &Value) -> InferError {
    InferError::InvalidValue {
        class: class.to_string(),
        row,
        column,
        message: format!(
            "Found unknown categories [{}] in column {column} during transform",
            show(v)
        ),
    }
}

/// The value of `column` at `row`, for messages.
fn value_at(column: &Column, row: usize) -> Value {
    match column {
        Column::Numeric(v) => Value::number(v[row]),
        Column::Dict(d) => d.get(row).clone(),
    }
}

/// The numeric matrix as columns, refused for features fitted on text (their values come
/// from a frame).
fn matrix_columns(class: &str, x: &MatrixView<'_>, cats: &[Categories]) -> Result<Vec<Column>> {
    check_input(class, x, cats.len(), Finite::AllowNan)?;
    if let Some(j) = cats.iter().position(|c| c.text) {
        return Err(InferError::InvalidValue {
            class: class.to_string(),
            row: 0,
            column: j,
            message: "this feature was fitted on text: pass a DataFrame (or a table) whose column holds text".into(),
        });
    }
    Ok((0..x.n_cols())
        .map(|j| Column::Numeric(x.rows().map(|r| r[j]).collect()))
        .collect())
}

/// The frame's columns at `cols`, checked as scikit-learn checks an encoder's input
/// (the number of columns; infinity refused in numeric columns).
fn frame_columns<'f>(
    class: &str,
    frame: &'f Frame,
    cols: &[usize],
    n: usize,
) -> Result<Vec<&'f Column>> {
    if cols.len() != n {
        return Err(InferError::FeatureCount {
            class: class.to_string(),
            expected: n,
            found: cols.len(),
        });
    }
    let columns: Vec<&Column> = cols.iter().map(|&p| &frame.columns()[p]).collect();
    for (j, c) in columns.iter().enumerate() {
        if let Column::Numeric(v) = c {
            if let Some(row) = v.iter().position(|x| x.is_infinite()) {
                return Err(InferError::InvalidValue {
                    class: class.to_string(),
                    row,
                    column: j,
                    message: "Input contains infinity or a value too large for dtype('float64')"
                        .into(),
                });
            }
        }
    }
    Ok(columns)
}

#[derive(Debug)]
struct OneHot {
    n_features: usize,
    categories: Vec<Categories>,
    /// The categories as numbers, for exporters, when no feature was fitted on text.
    numeric: Option<Vec<Vec<f64>>>,
    /// Per feature, the dropped category index.
    drop: Vec<Option<usize>>,
    /// First output column of each feature.
    offsets: Vec<usize>,
    n_out: usize,
    ignore_unknown: bool,
}

fn one_hot(o: &Obj<'_, '_>) -> Result<OneHot> {
    let (n, categories) = common(o)?;
    let ignore_unknown = match o.str("handle_unknown")? {
        "error" => false,
        "ignore" | "warn" | "infrequent_if_exist" => true,
        other => return Err(malformed(&o.sub("handle_unknown"), other.to_string())),
    };
    let drop: Vec<Option<usize>> = match o.attr("drop_idx_") {
        None | Some(Node::None) => vec![None; n],
        Some(node) => {
            let items = seq_items(o.ctx, node).map(|v| v.into_iter().map(node_int).collect());
            let items: Vec<Option<i64>> = match items {
                Some(v) => v,
                None => {
                    let (_, v) = o.ctx.i64_array(node, &o.sub("drop_idx_"))?;
                    v.into_iter().map(Some).collect()
                }
            };
            if items.len() != n {
                return Err(malformed(&o.sub("drop_idx_"), "one entry per feature"));
            }
            items
                .into_iter()
                .zip(&categories)
                .map(|(d, c)| match d {
                    None => Ok(None),
                    Some(d) if d >= 0 && (d as u64) < c.values.len() as u64 => Ok(Some(d as usize)),
                    Some(d) => Err(malformed(&o.sub("drop_idx_"), format!("index {d}"))),
                })
                .collect::<Result<_>>()?
        }
    };
    let mut offsets = Vec::with_capacity(n);
    let mut n_out = 0usize;
    for (c, d) in categories.iter().zip(&drop) {
        offsets.push(n_out);
        n_out += c.values.len() - usize::from(d.is_some());
    }
    Ok(OneHot {
        n_features: n,
        numeric: numeric_categories(&categories),
        categories,
        drop,
        offsets,
        n_out,
        ignore_unknown,
    })
}

impl OneHot {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix> {
        let mut out = Matrix::zeros(n_rows, self.n_out);
        for (j, column) in columns.iter().enumerate() {
            for (i, k) in self.categories[j].locate(column).into_iter().enumerate() {
                let Some(k) = k else {
                    if self.ignore_unknown {
                        continue;
                    }
                    return Err(unknown(ONE_HOT, i, j, &value_at(column, i)));
                };
                let col = match self.drop[j] {
                    Some(d) if d == k => continue,
                    Some(d) if k > d => k - 1,
                    _ => k,
                };
                out.data[i * self.n_out + self.offsets[j] + col] = 1.0;
            }
        }
        Ok(out)
    }
}

impl Estimator for OneHot {
    fn class(&self) -> &str {
        ONE_HOT
    }
    fn view(&self) -> crate::view::View<'_> {
        let Some(numeric) = &self.numeric else {
            return crate::view::View::Opaque { class: ONE_HOT };
        };
        crate::view::View::OneHot {
            class: ONE_HOT,
            n_features: self.n_features,
            categories: numeric,
            drop: &self.drop,
            error_on_unknown: !self.ignore_unknown,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        let columns = matrix_columns(ONE_HOT, x, &self.categories)?;
        self.encode(&columns.iter().collect::<Vec<_>>(), x.n_rows())
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        if method != Method::Transform {
            return Err(crate::estimator::not_available(ONE_HOT, method));
        }
        let columns = frame_columns(ONE_HOT, frame, cols, self.n_features)?;
        self.encode(&columns, frame.n_rows()).map(Output::Matrix)
    }
}

#[derive(Debug)]
struct Ordinal {
    n_features: usize,
    categories: Vec<Categories>,
    numeric: Option<Vec<Vec<f64>>>,
    /// `handle_unknown="use_encoded_value"`: the value of unknown categories.
    unknown_value: Option<f64>,
    encoded_missing: f64,
}

fn ordinal(o: &Obj<'_, '_>) -> Result<Ordinal> {
    let (n, categories) = common(o)?;
    let unknown_value = match o.str("handle_unknown")? {
        "error" => None,
        "use_encoded_value" => Some(
            node_float(o.req("unknown_value")?)
                .ok_or_else(|| malformed(&o.sub("unknown_value"), "expected a number"))?,
        ),
        other => return Err(malformed(&o.sub("handle_unknown"), other.to_string())),
    };
    let encoded_missing = node_float(o.req("encoded_missing_value")?)
        .ok_or_else(|| malformed(&o.sub("encoded_missing_value"), "expected a number"))?;
    Ok(Ordinal {
        n_features: n,
        numeric: numeric_categories(&categories),
        categories,
        unknown_value,
        encoded_missing,
    })
}

impl Ordinal {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix> {
        let n = columns.len();
        let mut out = vec![0.0; n_rows * n];
        for (j, column) in columns.iter().enumerate() {
            let cats = &self.categories[j];
            for (i, k) in cats.locate(column).into_iter().enumerate() {
                // Only a NaN category is "missing" to scikit-learn's OrdinalEncoder
                // (`is_scalar_nan`); None is an ordinary category.
                out[i * n + j] = match k {
                    Some(k) if cats.values[k] == Value::NaN => self.encoded_missing,
                    Some(k) => k as f64,
                    None => match self.unknown_value {
                        Some(v) => v,
                        None => return Err(unknown(ORDINAL, i, j, &value_at(column, i))),
                    },
                };
            }
        }
        Ok(Matrix::from_vec(out, n_rows, n))
    }
}

impl Estimator for Ordinal {
    fn class(&self) -> &str {
        ORDINAL
    }
    fn view(&self) -> crate::view::View<'_> {
        let Some(numeric) = &self.numeric else {
            return crate::view::View::Opaque { class: ORDINAL };
        };
        crate::view::View::Ordinal {
            class: ORDINAL,
            n_features: self.n_features,
            categories: numeric,
            unknown_value: self.unknown_value,
            encoded_missing: self.encoded_missing,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        let columns = matrix_columns(ORDINAL, x, &self.categories)?;
        self.encode(&columns.iter().collect::<Vec<_>>(), x.n_rows())
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        if method != Method::Transform {
            return Err(crate::estimator::not_available(ORDINAL, method));
        }
        let columns = frame_columns(ORDINAL, frame, cols, self.n_features)?;
        self.encode(&columns, frame.n_rows()).map(Output::Matrix)
    }
}
