//! OneHotEncoder, OrdinalEncoder and TargetEncoder, over numbers and over text.
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
use crate::estimator::{frame_input, Boxed, Estimator, Method, Output};
use crate::matrix::{check_input, Finite, Matrix, MatrixView};
use crate::state::{node_float, node_int, node_value, seq_items, Obj};
use crate::view::{TextKey, TextLookup, View};

const ONE_HOT: &str = "sklearn.preprocessing._encoders.OneHotEncoder";
const ORDINAL: &str = "sklearn.preprocessing._encoders.OrdinalEncoder";

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        ONE_HOT => Box::new(one_hot(o)?),
        ORDINAL => Box::new(ordinal(o)?),
        TARGET => Box::new(target(o)?),
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
                        node_value(o.ctx.resolve(item)).ok_or_else(|| {
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

/// Infrequent categories of one feature (`min_frequency` / `max_categories`): where each
/// category goes once they are grouped, and the first infrequent category, which unknown
/// values become.
#[derive(Debug, Clone)]
struct Grouping {
    /// `_default_to_infrequent_mappings[i]`: category index -> grouped index.
    mapping: Option<Vec<usize>>,
    /// `_infrequent_indices[i][0]`.
    first_infrequent: Option<usize>,
    /// The number of categories once infrequent ones are one group.
    n_groups: usize,
}

/// An optional index array per feature (`None` items allowed).
fn index_lists(o: &Obj<'_, '_>, name: &str, n: usize) -> Result<Vec<Option<Vec<usize>>>> {
    let path = o.sub(name);
    let items = seq_items(o.ctx, o.req(name)?)
        .filter(|items| items.len() == n)
        .ok_or_else(|| malformed(&path, format!("expected one entry per feature ({n})")))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, node)| {
            if matches!(node, Node::None) {
                return Ok(None);
            }
            let item_path = format!("{path}/{i}");
            let values: Vec<i64> = match seq_items(o.ctx, node) {
                Some(v) => v
                    .into_iter()
                    .map(|x| node_int(x).ok_or_else(|| malformed(&item_path, "expected indices")))
                    .collect::<Result<_>>()?,
                None => o.ctx.i64_array(node, &item_path)?.1,
            };
            values
                .into_iter()
                .map(|v| {
                    usize::try_from(v)
                        .map_err(|_| malformed(&item_path, format!("negative index {v}")))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        })
        .collect()
}

fn common(o: &Obj<'_, '_>, ordinal: bool) -> Result<(usize, Vec<Categories>, Vec<Grouping>)> {
    let n = o.usize("n_features_in_")?;
    let cats = categories(o, n)?;
    let enabled = o.attr("_infrequent_enabled").is_some() && o.bool("_infrequent_enabled")?;
    if !enabled {
        let plain = cats
            .iter()
            .map(|c| Grouping {
                mapping: None,
                first_infrequent: None,
                n_groups: c.values.len(),
            })
            .collect();
        return Ok((n, cats, plain));
    }
    let infrequent = index_lists(o, "_infrequent_indices", n)?;
    let mappings = index_lists(o, "_default_to_infrequent_mappings", n)?;
    let groupings = cats
        .iter()
        .zip(infrequent.into_iter().zip(mappings))
        .enumerate()
        .map(|(i, (c, (inf, mapping)))| {
            let len = c.values.len();
            let path = format!("{}/{i}", o.sub("_default_to_infrequent_mappings"));
            // OrdinalEncoder leaves its missing category (NaN, last) out of the mapping.
            let mapped = if ordinal && c.values.last() == Some(&Value::NaN) {
                len - 1
            } else {
                len
            };
            if let Some(m) = &mapping {
                if m.len() != mapped || m.iter().any(|&g| g >= len) {
                    return Err(malformed(
                        &path,
                        format!("expected {mapped} indices below {len}"),
                    ));
                }
            }
            let n_infrequent = inf.as_ref().map_or(0, Vec::len);
            let first_infrequent = match inf.as_deref() {
                None => None,
                Some([first, ..]) if *first < len && n_infrequent <= len => Some(*first),
                Some(_) => {
                    return Err(malformed(
                        &format!("{}/{i}", o.sub("_infrequent_indices")),
                        "expected category indices",
                    ))
                }
            };
            Ok(Grouping {
                mapping,
                first_infrequent,
                n_groups: len - n_infrequent.saturating_sub(1),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((n, cats, groupings))
}

/// How unknown values are treated (`handle_unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnUnknown {
    Error,
    /// All zeros (OneHotEncoder) or `unknown_value` (OrdinalEncoder).
    Ignore,
    /// `infrequent_if_exist` and `warn`: the infrequent group when the feature has one.
    Infrequent,
}

/// scikit-learn's `_transform` + `_map_infrequent_categories` for one feature: each row's
/// (grouped) index and whether it counts (`X_mask`). `keep` is a category index left out
/// of the grouping (OrdinalEncoder's missing category).
fn grouped_indices(
    class: &str,
    j: usize,
    cats: &Categories,
    grouping: &Grouping,
    column: &Column,
    on_unknown: OnUnknown,
    keep: Option<usize>,
) -> Result<Vec<(usize, bool)>> {
    let located = cats.locate(column);
    let mut out = Vec::with_capacity(located.len());
    for (i, k) in located.into_iter().enumerate() {
        match group_one(grouping, k, on_unknown, keep) {
            Some(g) => out.push(g),
            None => return Err(unknown(class, i, j, &value_at(column, i))),
        }
    }
    Ok(out)
}

/// [`grouped_indices`] for one value at category index `k` (`None`: unknown); `None` when
/// scikit-learn raises on it.
fn group_one(
    grouping: &Grouping,
    k: Option<usize>,
    on_unknown: OnUnknown,
    keep: Option<usize>,
) -> Option<(usize, bool)> {
    let (raw, valid) = match k {
        Some(k) => (k, true),
        None if on_unknown == OnUnknown::Error => return None,
        None => match grouping.first_infrequent {
            Some(first) => (first, on_unknown == OnUnknown::Infrequent),
            None => (0, false),
        },
    };
    // Indices below the mapping's length were checked at build time; only OrdinalEncoder's
    // missing category (kept out of the grouping) lies beyond it.
    let grouped = match &grouping.mapping {
        Some(m) if keep != Some(raw) => m.get(raw).copied().unwrap_or(raw),
        _ => raw,
    };
    Some((grouped, valid))
}

/// The categories of a text feature as exporters see them, or why they cannot.
fn text_keys(cats: &Categories) -> std::result::Result<Vec<TextKey<'_>>, &'static str> {
    Ok(cats
        .values
        .iter()
        .map(|v| match v {
            Value::Str(s) => TextKey::Text(s),
            Value::None | Value::NaN | Value::NA => TextKey::Missing,
            Value::Num(x) => TextKey::Number(*x),
            Value::Bool(b) => TextKey::Number(f64::from(u8::from(*b))),
        })
        .collect())
}

/// The export tables of encoders fitted on text: per feature, each category's code given
/// by `code` (from its grouped index and whether it counts), unknown values coded as
/// `code` says for [`group_one`]'s answer (`None`: scikit-learn raises).
fn text_lookups<'a>(
    cats: &'a [Categories],
    groupings: &[Grouping],
    on_unknown: OnUnknown,
    ordinal: bool,
    width: impl Fn(usize) -> usize,
    code: impl Fn(usize, Option<(usize, bool)>, Option<usize>) -> f64,
) -> std::result::Result<Vec<TextLookup<'a>>, &'static str> {
    if cats.iter().any(|c| !c.text) {
        return Err("an encoder with both text and numeric features is not exported");
    }
    cats.iter()
        .zip(groupings)
        .enumerate()
        .map(|(j, (c, g))| {
            let missing =
                (ordinal && c.values.last() == Some(&Value::NaN)).then(|| c.values.len() - 1);
            let keys = text_keys(c)?;
            let codes = (0..c.values.len())
                .map(|k| code(j, group_one(g, Some(k), on_unknown, missing), missing))
                .collect();
            let unknown = code(j, group_one(g, None, on_unknown, missing), missing);
            Ok(TextLookup {
                keys,
                codes,
                unknown,
                width: width(j),
            })
        })
        .collect()
}

/// Why exporters cannot describe numeric categories (see `numeric_categories`).
fn unexportable(_cats: &[Categories]) -> &'static str {
    "infrequent categories of numeric features are not exported yet"
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

/// What the encoders share: their input columns in, a matrix out.
trait Encode {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix>;
}

/// `transform` of an encoder on a numeric matrix.
fn encode_matrix<E: Encode>(
    e: &E,
    class: &str,
    cats: &[Categories],
    x: &MatrixView<'_>,
) -> Result<Matrix> {
    let columns = matrix_columns(class, x, cats)?;
    e.encode(&columns.iter().collect::<Vec<_>>(), x.n_rows())
}

/// `transform` (an encoder's only method) on the frame's columns at `cols`.
fn encode_frame<E: Encode>(
    e: &E,
    class: &str,
    n: usize,
    method: Method,
    frame: &Frame,
    cols: &[usize],
) -> Result<Output> {
    if method != Method::Transform {
        return Err(crate::estimator::not_available(class, method));
    }
    let columns = frame_columns(class, frame, cols, n).map_err(|e| name_column(e, frame, cols))?;
    e.encode(&columns, frame.n_rows())
        .map(Output::Matrix)
        .map_err(|e| name_column(e, frame, cols))
}

/// scikit-learn names an encoder's input column by position ("in column 0"); on a frame
/// the column's name is known too, and is what a caller of a DataFrame pipeline recognises.
fn name_column(err: InferError, frame: &Frame, cols: &[usize]) -> InferError {
    match err {
        InferError::InvalidValue {
            class,
            row,
            column,
            message,
        } => {
            let named = cols
                .get(column)
                .and_then(|c| frame.names().get(*c))
                .map(|name| format!("{message} (input column {name:?})"))
                .unwrap_or(message);
            InferError::InvalidValue {
                class,
                row,
                column,
                message: named,
            }
        }
        other => other,
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
    let columns = frame_input(class, frame, cols, n)?;
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
    groupings: Vec<Grouping>,
    /// The categories as numbers, for exporters, when no feature was fitted on text.
    numeric: Option<Vec<Vec<f64>>>,
    /// Per feature, the dropped (grouped) index: `_drop_idx_after_grouping`.
    drop: Vec<Option<usize>>,
    /// First output column of each feature.
    offsets: Vec<usize>,
    n_out: usize,
    on_unknown: OnUnknown,
    /// After [`Estimator::keep_outputs`]: each output column's place among the kept ones
    /// (`None` if dropped), and their number.
    kept: Option<(Vec<Option<u32>>, usize)>,
}

/// `_drop_idx_after_grouping` (or `drop_idx_` where scikit-learn did not write it): per
/// feature, `None` or an index below the feature's number of groups.
fn dropped(o: &Obj<'_, '_>, groupings: &[Grouping]) -> Result<Vec<Option<usize>>> {
    let n = groupings.len();
    let name = if o.attr("_drop_idx_after_grouping").is_some() {
        "_drop_idx_after_grouping"
    } else {
        "drop_idx_"
    };
    let items: Vec<Option<i64>> = match o.attr(name) {
        None | Some(Node::None) => return Ok(vec![None; n]),
        Some(node) => match seq_items(o.ctx, node) {
            Some(v) => v
                .into_iter()
                .map(|x| match x {
                    Node::None => Ok(None),
                    x => node_int(x)
                        .map(Some)
                        .ok_or_else(|| malformed(&o.sub(name), "expected indices or None")),
                })
                .collect::<Result<_>>()?,
            None => o
                .ctx
                .i64_array(node, &o.sub(name))?
                .1
                .into_iter()
                .map(Some)
                .collect(),
        },
    };
    if items.len() != n {
        return Err(malformed(&o.sub(name), "one entry per feature"));
    }
    items
        .into_iter()
        .zip(groupings)
        .map(|(d, g)| match d {
            None => Ok(None),
            Some(d) if d >= 0 && (d as u64) < g.n_groups as u64 => Ok(Some(d as usize)),
            Some(d) => Err(malformed(&o.sub(name), format!("index {d}"))),
        })
        .collect()
}

fn one_hot(o: &Obj<'_, '_>) -> Result<OneHot> {
    let (n, categories, groupings) = common(o, false)?;
    let on_unknown = match o.str("handle_unknown")? {
        "error" => OnUnknown::Error,
        "ignore" => OnUnknown::Ignore,
        "warn" | "infrequent_if_exist" => OnUnknown::Infrequent,
        other => return Err(malformed(&o.sub("handle_unknown"), other.to_string())),
    };
    let drop = dropped(o, &groupings)?;
    let mut offsets = Vec::with_capacity(n);
    let mut n_out = 0usize;
    for (g, d) in groupings.iter().zip(&drop) {
        offsets.push(n_out);
        n_out += g.n_groups - usize::from(d.is_some());
    }
    let grouped = groupings.iter().any(|g| g.mapping.is_some());
    Ok(OneHot {
        n_features: n,
        numeric: numeric_categories(&categories).filter(|_| !grouped),
        categories,
        groupings,
        drop,
        offsets,
        n_out,
        on_unknown,
        kept: None,
    })
}

impl Encode for OneHot {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix> {
        let width = self.kept.as_ref().map_or(self.n_out, |(_, w)| *w);
        let mut out = Matrix::zeros(n_rows, width);
        for (j, column) in columns.iter().enumerate() {
            let rows = grouped_indices(
                ONE_HOT,
                j,
                &self.categories[j],
                &self.groupings[j],
                column,
                self.on_unknown,
                None,
            )?;
            for (i, (g, valid)) in rows.into_iter().enumerate() {
                let col = match self.drop[j] {
                    _ if !valid => continue,
                    Some(d) if d == g => continue,
                    Some(d) if g > d => g - 1,
                    _ => g,
                };
                let col = self.offsets[j] + col;
                let col = match &self.kept {
                    None => col,
                    Some((map, _)) => match map[col] {
                        None => continue,
                        Some(k) => k as usize,
                    },
                };
                out.data[i * width + col] = 1.0;
            }
        }
        Ok(out)
    }
}

impl OneHot {
    /// The export tables: a category's code is its output column (after grouping and
    /// `drop`), `-1` for none; unknown values as `handle_unknown` says (an error becomes
    /// all zeros, docs/EXPORT.md).
    fn text_view(&self) -> View<'_> {
        let n_out = |j: usize| {
            let next = self.offsets.get(j + 1).copied().unwrap_or(self.n_out);
            next - self.offsets[j]
        };
        let code = |j: usize, g: Option<(usize, bool)>, _: Option<usize>| match (g, self.drop[j]) {
            (None, _) | (Some((_, false)), _) => -1.0,
            (Some((g, true)), Some(d)) if g == d => -1.0,
            (Some((g, true)), Some(d)) if g > d => (g - 1) as f64,
            (Some((g, true)), _) => g as f64,
        };
        match text_lookups(
            &self.categories,
            &self.groupings,
            self.on_unknown,
            false,
            n_out,
            code,
        ) {
            Ok(features) => View::TextEncoder {
                class: ONE_HOT,
                n_features: self.n_features,
                features,
                one_hot: true,
            },
            Err(reason) => View::Unexportable {
                class: ONE_HOT,
                reason,
            },
        }
    }
}

impl Estimator for OneHot {
    fn class(&self) -> &str {
        ONE_HOT
    }
    fn view(&self) -> crate::view::View<'_> {
        if self.categories.iter().any(|c| c.text) {
            return self.text_view();
        }
        let Some(numeric) = &self.numeric else {
            return crate::view::View::Unexportable {
                class: ONE_HOT,
                reason: unexportable(&self.categories),
            };
        };
        crate::view::View::OneHot {
            class: ONE_HOT,
            n_features: self.n_features,
            categories: numeric,
            drop: &self.drop,
            error_on_unknown: self.on_unknown == OnUnknown::Error,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        encode_matrix(self, ONE_HOT, &self.categories, x)
    }
    fn n_outputs(&self) -> Option<usize> {
        Some(self.kept.as_ref().map_or(self.n_out, |(_, w)| *w))
    }
    /// Every value is still looked up (an unknown category still raises); only the kept
    /// columns are written. Once only.
    fn keep_outputs(&mut self, keep: &[usize]) -> bool {
        if self.kept.is_some() {
            return false;
        }
        let Some(map) = crate::estimator::places(keep, self.n_out) else {
            return false;
        };
        self.kept = Some((map, keep.len()));
        true
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        encode_frame(self, ONE_HOT, self.n_features, method, frame, cols)
    }
}

#[derive(Debug)]
struct Ordinal {
    n_features: usize,
    categories: Vec<Categories>,
    groupings: Vec<Grouping>,
    numeric: Option<Vec<Vec<f64>>>,
    /// `handle_unknown="use_encoded_value"`: the value of unknown categories.
    unknown_value: Option<f64>,
    encoded_missing: f64,
}

fn ordinal(o: &Obj<'_, '_>) -> Result<Ordinal> {
    let (n, categories, groupings) = common(o, true)?;
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
    let grouped = groupings.iter().any(|g| g.mapping.is_some());
    Ok(Ordinal {
        n_features: n,
        numeric: numeric_categories(&categories).filter(|_| !grouped),
        categories,
        groupings,
        unknown_value,
        encoded_missing,
    })
}

impl Encode for Ordinal {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix> {
        let n = columns.len();
        let on_unknown = match self.unknown_value {
            Some(_) => OnUnknown::Ignore,
            None => OnUnknown::Error,
        };
        let mut out = vec![0.0; n_rows * n];
        for (j, column) in columns.iter().enumerate() {
            let cats = &self.categories[j];
            // Only a NaN category, always last, is "missing" to scikit-learn's
            // OrdinalEncoder (`is_scalar_nan`); None is an ordinary category. It is left out
            // of the infrequent grouping, and the comparison with it is made after grouping,
            // as scikit-learn makes it.
            let missing = cats
                .values
                .len()
                .checked_sub(1)
                .filter(|&last| cats.values[last] == Value::NaN);
            let rows = grouped_indices(
                ORDINAL,
                j,
                cats,
                &self.groupings[j],
                column,
                on_unknown,
                missing,
            )?;
            for (i, (g, valid)) in rows.into_iter().enumerate() {
                out[i * n + j] = match (valid, self.unknown_value) {
                    (false, Some(v)) => v,
                    _ if Some(g) == missing => self.encoded_missing,
                    _ => g as f64,
                };
            }
        }
        Ok(Matrix::from_vec(out, n_rows, n))
    }
}

impl Ordinal {
    /// The export tables: a category's code is its output value; unknown values give
    /// `unknown_value`, or NaN where scikit-learn raises (docs/EXPORT.md).
    fn text_view(&self) -> View<'_> {
        let on_unknown = match self.unknown_value {
            Some(_) => OnUnknown::Ignore,
            None => OnUnknown::Error,
        };
        let code = |_: usize, g: Option<(usize, bool)>, missing: Option<usize>| match g {
            None => f64::NAN,
            Some((_, false)) => self.unknown_value.unwrap_or(f64::NAN),
            Some((g, true)) if Some(g) == missing => self.encoded_missing,
            Some((g, true)) => g as f64,
        };
        match text_lookups(
            &self.categories,
            &self.groupings,
            on_unknown,
            true,
            |_| 1,
            code,
        ) {
            Ok(features) => View::TextEncoder {
                class: ORDINAL,
                n_features: self.n_features,
                features,
                one_hot: false,
            },
            Err(reason) => View::Unexportable {
                class: ORDINAL,
                reason,
            },
        }
    }
}

impl Estimator for Ordinal {
    fn class(&self) -> &str {
        ORDINAL
    }
    fn view(&self) -> crate::view::View<'_> {
        if self.categories.iter().any(|c| c.text) {
            return self.text_view();
        }
        let Some(numeric) = &self.numeric else {
            return crate::view::View::Unexportable {
                class: ORDINAL,
                reason: unexportable(&self.categories),
            };
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
        encode_matrix(self, ORDINAL, &self.categories, x)
    }
    fn n_outputs(&self) -> Option<usize> {
        Some(self.n_features)
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        encode_frame(self, ORDINAL, self.n_features, method, frame, cols)
    }
}

const TARGET: &str = "sklearn.preprocessing._target_encoder.TargetEncoder";

/// TargetEncoder's `transform` (not `fit_transform`, whose cross fitting only happens in
/// fit): each category becomes its learnt encoding, one column per feature (per feature and
/// class for a multiclass target), unknown values the target mean.
#[derive(Debug)]
struct Target {
    n_features: usize,
    categories: Vec<Categories>,
    /// `encodings_`: feature `f`, class `c` at `f * k + c`.
    encodings: Vec<Vec<f64>>,
    /// The target mean per class (one value unless multiclass).
    means: Vec<f64>,
}

fn target(o: &Obj<'_, '_>) -> Result<Target> {
    let n = o.usize("n_features_in_")?;
    let categories = categories(o, n)?;
    let multiclass = o.str("target_type_")? == "multiclass";
    let means = if multiclass {
        let a = o.f64_array("target_mean_")?;
        if a.shape.len() != 1 || a.data.is_empty() {
            return Err(malformed(
                &o.sub("target_mean_"),
                "expected one mean per class",
            ));
        }
        a.data
    } else {
        vec![o.float("target_mean_")?]
    };
    let k = means.len();
    let path = o.sub("encodings_");
    let items = seq_items(o.ctx, o.req("encodings_")?)
        .filter(|items| Some(items.len()) == n.checked_mul(k))
        .ok_or_else(|| malformed(&path, format!("expected {n} x {k} arrays")))?;
    let encodings = items
        .into_iter()
        .enumerate()
        .map(|(e, node)| {
            let item_path = format!("{path}/{e}");
            let expected = categories[e / k].values.len();
            let a = o.ctx.f64_array(node, &item_path)?;
            if a.shape != [expected] {
                return Err(malformed(
                    &item_path,
                    format!("expected {expected} encodings"),
                ));
            }
            Ok(a.data)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Target {
        n_features: n,
        categories,
        encodings,
        means,
    })
}

impl Encode for Target {
    fn encode(&self, columns: &[&Column], n_rows: usize) -> Result<Matrix> {
        let k = self.means.len();
        let n_out = columns.len() * k;
        let mut out = vec![0.0; n_rows * n_out];
        for (f, column) in columns.iter().enumerate() {
            let located = self.categories[f].locate(column);
            for c in 0..k {
                let e = f * k + c;
                let encoding = &self.encodings[e];
                for (i, idx) in located.iter().enumerate() {
                    out[i * n_out + e] = idx.map_or(self.means[c], |idx| encoding[idx]);
                }
            }
        }
        Ok(Matrix::from_vec(out, n_rows, n_out))
    }
}

impl Estimator for Target {
    fn class(&self) -> &str {
        TARGET
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Unexportable {
            class: TARGET,
            reason: "TargetEncoder is not exported yet",
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        encode_matrix(self, TARGET, &self.categories, x)
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        encode_frame(self, TARGET, self.n_features, method, frame, cols)
    }
}
