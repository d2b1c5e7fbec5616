//! OneHotEncoder and OrdinalEncoder over numeric categories.
//!
//! Inputs are numbers, so only encoders fitted on numeric columns are supported (text
//! categories are refused at open time). A category matches by value (`-0.0 == 0.0`);
//! NaN matches a NaN category, which scikit-learn always sorts last.

use crate::error::{malformed, unsupported, InferError, Result};
use crate::estimator::{Boxed, Estimator, Method};
use crate::matrix::{check_input, Finite, Matrix, MatrixView};
use crate::preprocess::float_arrays;
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

/// Index of `v` among `cats`.
fn find(cats: &[f64], v: f64) -> Option<usize> {
    if v.is_nan() {
        cats.iter().position(|c| c.is_nan())
    } else {
        cats.iter().position(|c| *c == v)
    }
}

fn common(o: &Obj<'_, '_>) -> Result<(usize, Vec<Vec<f64>>)> {
    if o.attr("_infrequent_enabled").is_some() && o.bool("_infrequent_enabled")? {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some("infrequent categories".into()),
        ));
    }
    let n = o.usize("n_features_in_")?;
    let cats = float_arrays(o, "categories_")?;
    if cats.len() != n {
        return Err(malformed(
            &o.sub("categories_"),
            format!("{} lists for {n} features", cats.len()),
        ));
    }
    Ok((n, cats))
}

fn unknown(class: &str, row: usize, column: usize, v: f64) -> InferError {
    InferError::InvalidValue {
        class: class.to_string(),
        row,
        column,
        message: format!("Found unknown category {v} during transform"),
    }
}

#[derive(Debug)]
struct OneHot {
    n_features: usize,
    categories: Vec<Vec<f64>>,
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
        None | Some(skvault_format::Node::None) => vec![None; n],
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
                    Some(d) if d >= 0 && (d as u64) < c.len() as u64 => Ok(Some(d as usize)),
                    Some(d) => Err(malformed(&o.sub("drop_idx_"), format!("index {d}"))),
                })
                .collect::<Result<_>>()?
        }
    };
    let mut offsets = Vec::with_capacity(n);
    let mut n_out = 0usize;
    for (c, d) in categories.iter().zip(&drop) {
        offsets.push(n_out);
        n_out += c.len() - usize::from(d.is_some());
    }
    Ok(OneHot {
        n_features: n,
        categories,
        drop,
        offsets,
        n_out,
        ignore_unknown,
    })
}

impl Estimator for OneHot {
    fn class(&self) -> &str {
        ONE_HOT
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::OneHot {
            class: ONE_HOT,
            n_features: self.n_features,
            categories: &self.categories,
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
        check_input(ONE_HOT, x, self.n_features, Finite::AllowNan)?;
        let mut out = Matrix::zeros(x.n_rows(), self.n_out);
        for (i, row) in x.rows().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let Some(k) = find(&self.categories[j], *v) else {
                    if self.ignore_unknown {
                        continue;
                    }
                    return Err(unknown(ONE_HOT, i, j, *v));
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

#[derive(Debug)]
struct Ordinal {
    n_features: usize,
    categories: Vec<Vec<f64>>,
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
        categories,
        unknown_value,
        encoded_missing,
    })
}

impl Estimator for Ordinal {
    fn class(&self) -> &str {
        ORDINAL
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Ordinal {
            class: ORDINAL,
            n_features: self.n_features,
            categories: &self.categories,
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
        check_input(ORDINAL, x, self.n_features, Finite::AllowNan)?;
        let mut out = Vec::with_capacity(x.data().len());
        for (i, row) in x.rows().enumerate() {
            for (j, v) in row.iter().enumerate() {
                out.push(match find(&self.categories[j], *v) {
                    Some(_) if v.is_nan() => self.encoded_missing,
                    Some(k) => k as f64,
                    None => self
                        .unknown_value
                        .ok_or_else(|| unknown(ORDINAL, i, j, *v))?,
                });
            }
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.n_features))
    }
}
