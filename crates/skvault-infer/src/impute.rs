//! SimpleImputer fitted on text, MissingIndicator, and the indicator columns that
//! `SimpleImputer(add_indicator=True)` appends.
//!
//! What counts as missing follows scikit-learn's `_get_mask`: with `missing_values=np.nan`
//! only NaN is missing (in an `object` column `None` is an ordinary value, as scikit-learn
//! leaves it); with any other marker, values equal to it (Python's `==`), and a NaN in the
//! input is refused ("Input X contains NaN").

use skvault_format::Node;
use skvault_frame::{Column, DictBuilder, DictColumn, Frame, Value};

use crate::error::{malformed, unsupported, InferError, Result};
use crate::estimator::{frame_input, Boxed, Estimator, Method, Output};
use crate::matrix::{Matrix, MatrixView};
use crate::state::{node_int, node_value, seq_items, Obj};

const IMPUTER: &str = "sklearn.impute._base.SimpleImputer";
const INDICATOR: &str = "sklearn.impute._base.MissingIndicator";

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        // Imputers fitted on numbers are `preprocess`'s; this module takes text.
        IMPUTER if is_text_imputer(o) => Box::new(text_imputer(o)?),
        INDICATOR => Box::new(Indicator::new(o)?),
        _ => return Ok(None),
    };
    Ok(Some(est))
}

/// Fitted on an `object` array (`_fit_dtype`; before scikit-learn recorded it, a statistic
/// that is text). A numeric imputer's statistics may be an `object` array of numbers too
/// (`strategy="constant"`).
fn is_text_imputer(o: &Obj<'_, '_>) -> bool {
    use skvault_format::dtype::{DType, Kind};
    match o.attr("_fit_dtype").map(|n| o.ctx.resolve(n)) {
        Some(Node::DType(DType::Scalar { kind, .. })) => *kind == Kind::Object,
        Some(_) => false,
        None => match o.attr("statistics_").map(|n| o.ctx.resolve(n)) {
            Some(Node::ObjArray { items, .. }) => items
                .iter()
                .any(|i| matches!(o.ctx.resolve(i), Node::Str(_))),
            _ => false,
        },
    }
}

/// `missing_values`: NaN, None, a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marker(Value);

impl Marker {
    fn read(o: &Obj<'_, '_>) -> Result<Marker> {
        let node = o.ctx.resolve(o.req("missing_values")?);
        node_value(node).map(Marker).ok_or_else(|| {
            unsupported(
                o.class(),
                &o.path,
                Some("this missing_values marker".into()),
            )
        })
    }

    fn is_nan(&self) -> bool {
        self.0 == Value::NaN
    }

    fn matches(&self, v: &Value) -> bool {
        if self.is_nan() {
            *v == Value::NaN
        } else {
            v.key() == self.0.key()
        }
    }

    fn matches_f64(&self, v: f64) -> bool {
        self.matches(&Value::number(v))
    }

    /// Refuses a NaN when NaN is not the marker, as `check_array` does.
    fn check_column(&self, class: &str, column: &Column, j: usize) -> Result<()> {
        if self.is_nan() {
            return Ok(());
        }
        let row = match column {
            Column::Numeric(v) => v.iter().position(|x| x.is_nan()),
            Column::Dict(d) => (0..d.len()).find(|&r| *d.get(r) == Value::NaN),
        };
        match row {
            Some(row) => Err(InferError::InvalidValue {
                class: class.to_string(),
                row,
                column: j,
                message: "Input X contains NaN".into(),
            }),
            None => Ok(()),
        }
    }

    /// Per row of `column`, whether it is missing.
    fn mask(&self, column: &Column) -> Vec<bool> {
        match column {
            Column::Numeric(v) => v.iter().map(|x| self.matches_f64(*x)).collect(),
            Column::Dict(d) => {
                let per_value: Vec<bool> = d.values().iter().map(|v| self.matches(v)).collect();
                d.codes().iter().map(|&c| per_value[c as usize]).collect()
            }
        }
    }
}

/// MissingIndicator: one 0/1 column per feature of `features_` (scikit-learn returns
/// booleans; native inference returns them as 0.0 and 1.0).
#[derive(Debug)]
pub(crate) struct Indicator {
    n_features: usize,
    marker: Marker,
    features: Vec<usize>,
    /// `features="missing-only"` with `error_on_new`: a missing value in a feature that had
    /// none in fit is an error.
    error_on_new: bool,
}

impl Indicator {
    pub(crate) fn new(o: &Obj<'_, '_>) -> Result<Indicator> {
        let n = match o.attr("_n_features") {
            Some(node) => node_int(o.ctx.resolve(node))
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| malformed(&o.sub("_n_features"), "expected a count"))?,
            None => o.usize("n_features_in_")?,
        };
        let path = o.sub("features_");
        let node = o.req("features_")?;
        let features: Vec<i64> = match seq_items(o.ctx, node) {
            Some(items) => items
                .into_iter()
                .map(|v| node_int(v).ok_or_else(|| malformed(&path, "expected indices")))
                .collect::<Result<_>>()?,
            None => o.ctx.i64_array(node, &path)?.1,
        };
        let features = features
            .into_iter()
            .map(|f| {
                usize::try_from(f)
                    .ok()
                    .filter(|f| *f < n)
                    .ok_or_else(|| malformed(&path, format!("feature {f} is not below {n}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let missing_only = o.str("features")? == "missing-only";
        Ok(Indicator {
            n_features: n,
            marker: Marker::read(o)?,
            features,
            error_on_new: missing_only && o.bool("error_on_new")?,
        })
    }

    /// The features that get an indicator column, in order (for exporters).
    pub(crate) fn features(&self) -> &[usize] {
        &self.features
    }

    /// The indicator columns for `columns` (all of the estimator's input columns).
    fn columns(&self, columns: &[&Column]) -> Result<Vec<Vec<f64>>> {
        for (j, c) in columns.iter().enumerate() {
            self.marker.check_column(INDICATOR, c, j)?;
        }
        let masks: Vec<Vec<bool>> = columns.iter().map(|c| self.marker.mask(c)).collect();
        if self.error_on_new {
            let new: Vec<usize> = (0..columns.len())
                .filter(|j| !self.features.contains(j) && masks[*j].iter().any(|m| *m))
                .collect();
            if let Some(&first) = new.first() {
                return Err(InferError::InvalidValue {
                    class: INDICATOR.to_string(),
                    row: masks[first].iter().position(|m| *m).unwrap_or(0),
                    column: first,
                    message: format!(
                        "The features {new:?} have missing values in transform but have no missing values in fit."
                    ),
                });
            }
        }
        Ok(self
            .features
            .iter()
            .map(|&f| masks[f].iter().map(|m| f64::from(u8::from(*m))).collect())
            .collect())
    }

    /// The indicator columns of a numeric matrix (for a numeric SimpleImputer).
    pub(crate) fn matrix_columns(&self, x: &MatrixView<'_>) -> Result<Vec<Vec<f64>>> {
        let columns: Vec<Column> = (0..x.n_cols())
            .map(|j| Column::Numeric(x.rows().map(|r| r[j]).collect()))
            .collect();
        self.columns(&columns.iter().collect::<Vec<_>>())
    }
}

/// Appends `extra` columns to a row-major matrix.
pub(crate) fn append_columns(m: Matrix, extra: &[Vec<f64>]) -> Matrix {
    if extra.is_empty() {
        return m;
    }
    let n_cols = m.n_cols + extra.len();
    let mut data = Vec::with_capacity(m.n_rows * n_cols);
    for i in 0..m.n_rows {
        data.extend_from_slice(m.row(i));
        data.extend(extra.iter().map(|c| c[i]));
    }
    Matrix::from_vec(data, m.n_rows, n_cols)
}

impl Estimator for Indicator {
    fn class(&self) -> &str {
        INDICATOR
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Unexportable {
            class: INDICATOR,
            reason: "MissingIndicator is not exported yet",
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        crate::matrix::check_input(
            INDICATOR,
            x,
            self.n_features,
            crate::matrix::Finite::AllowNan,
        )?;
        let cols = self.matrix_columns(x)?;
        Ok(append_columns(Matrix::zeros(x.n_rows(), 0), &cols))
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        if method != Method::Transform {
            return Err(crate::estimator::not_available(INDICATOR, method));
        }
        let columns = frame_input(INDICATOR, frame, cols, self.n_features)?;
        let out = self.columns(&columns)?;
        Ok(Output::Matrix(append_columns(
            Matrix::zeros(frame.n_rows(), 0),
            &out,
        )))
    }
}

/// SimpleImputer fitted on text (`statistics_` an `object` array): missing entries take the
/// column's statistic; its output is a frame for the next step (an encoder).
#[derive(Debug)]
struct TextImputer {
    n_features: usize,
    marker: Marker,
    /// Kept columns (a column whose statistic is NaN is dropped unless
    /// `keep_empty_features`) and their fill values.
    columns: Vec<usize>,
    fills: Vec<Value>,
    indicator: Option<Indicator>,
}

fn text_imputer(o: &Obj<'_, '_>) -> Result<TextImputer> {
    let n = o.usize("n_features_in_")?;
    let path = o.sub("statistics_");
    let items = seq_items(o.ctx, o.req("statistics_")?)
        .ok_or_else(|| malformed(&path, "expected a 1-d array"))?;
    if items.len() != n {
        return Err(malformed(
            &path,
            format!("{} statistics for {n} features", items.len()),
        ));
    }
    let stats = items
        .into_iter()
        .map(|v| {
            node_value(v).ok_or_else(|| {
                unsupported(
                    o.class(),
                    &o.path,
                    Some("a statistic that is not text, a number or None".into()),
                )
            })
        })
        .collect::<Result<Vec<Value>>>()?;
    let keep_empty = o.attr("keep_empty_features").is_some() && o.bool("keep_empty_features")?;
    let (columns, fills) = stats
        .into_iter()
        .enumerate()
        .filter(|(_, s)| keep_empty || *s != Value::NaN)
        .unzip();
    let indicator = match o.attr("indicator_").map(|n| o.ctx.resolve(n)) {
        None | Some(Node::None) => None,
        Some(node) => {
            let obj = o
                .ctx
                .object(node)
                .filter(|obj| obj.class == INDICATOR)
                .ok_or_else(|| malformed(&o.sub("indicator_"), "expected a MissingIndicator"))?;
            Some(Indicator::new(&Obj::new(o.ctx, obj, o.sub("indicator_")))?)
        }
    };
    Ok(TextImputer {
        n_features: n,
        marker: Marker::read(o)?,
        columns,
        fills,
        indicator,
    })
}

impl TextImputer {
    fn impute(&self, name: &str, column: &Column, fill: &Value) -> Result<Column> {
        Ok(Column::Dict(match column {
            Column::Dict(d) => {
                let values = d
                    .values()
                    .iter()
                    .map(|v| {
                        if self.marker.matches(v) {
                            fill.clone()
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                DictColumn::new(name, values, d.codes().to_vec())?
            }
            Column::Numeric(v) => {
                let mut b = DictBuilder::with_capacity(name, v.len());
                for x in v {
                    let value = Value::number(*x);
                    b.push(if self.marker.matches(&value) {
                        fill.clone()
                    } else {
                        value
                    })?;
                }
                b.finish()
            }
        }))
    }

    fn output(&self, frame: &Frame, cols: &[usize]) -> Result<Frame> {
        let columns = frame_input(IMPUTER, frame, cols, self.n_features)?;
        for (j, c) in columns.iter().enumerate() {
            self.marker.check_column(IMPUTER, c, j)?;
        }
        let mut names = Vec::with_capacity(self.columns.len());
        let mut out = Vec::with_capacity(self.columns.len());
        for (&j, fill) in self.columns.iter().zip(&self.fills) {
            let name = frame.names()[cols[j]].clone();
            out.push(self.impute(&name, columns[j], fill)?);
            names.push(name);
        }
        if let Some(ind) = &self.indicator {
            for (f, values) in ind.features.iter().zip(ind.columns(&columns)?) {
                names.push(format!("missingindicator_{}", frame.names()[cols[*f]]));
                out.push(Column::Numeric(values));
            }
        }
        Ok(Frame::new(names, out)?)
    }
}

impl Estimator for TextImputer {
    fn class(&self) -> &str {
        IMPUTER
    }
    fn view(&self) -> crate::view::View<'_> {
        use crate::view::{TextKey, View};
        fn key(v: &Value) -> Option<TextKey<'_>> {
            match v {
                Value::Str(s) => Some(TextKey::Text(s)),
                Value::None | Value::NaN | Value::NA => Some(TextKey::Missing),
                Value::Num(_) | Value::Bool(_) => None,
            }
        }
        let refuse = |reason| View::Unexportable {
            class: IMPUTER,
            reason,
        };
        let (Some(missing), Some(fills)) = (
            key(&self.marker.0),
            self.fills.iter().map(key).collect::<Option<Vec<_>>>(),
        ) else {
            return refuse("a number as missing_values or fill value of a text imputer");
        };
        View::TextImputer {
            class: IMPUTER,
            n_features: self.n_features,
            missing,
            columns: &self.columns,
            fills,
            indicator: self.indicator.as_ref().map(Indicator::features),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, _x: &MatrixView<'_>) -> Result<Matrix> {
        Err(InferError::InvalidValue {
            class: IMPUTER.to_string(),
            row: 0,
            column: 0,
            message: "this imputer was fitted on text: pass a DataFrame (or a table) whose columns hold text".into(),
        })
    }
    fn frame_transform(&self, frame: &Frame, cols: &[usize]) -> Option<Result<Frame>> {
        Some(self.output(frame, cols))
    }
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        if method != Method::Transform {
            return Err(crate::estimator::not_available(IMPUTER, method));
        }
        let out = self.output(frame, cols)?;
        Ok(Output::Matrix(Matrix::from_vec(
            out.to_matrix()?,
            out.n_rows(),
            out.n_cols(),
        )))
    }
}
