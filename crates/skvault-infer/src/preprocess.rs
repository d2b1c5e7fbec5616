//! Scalers, Normalizer, SimpleImputer, PCA and PolynomialFeatures.
//!
//! The scalers apply scikit-learn's in-place operations (`X -= mean_`, `X /= scale_`, ...)
//! in the same order, so their output is bit-identical. Normalizer's l2 norm (einsum) and
//! PCA's projection (BLAS) sum in an order numpy does not fix: see docs/NATIVE.md.

use crate::error::{malformed, unsupported, Result};
use crate::estimator::{Boxed, Estimator, Method};
use crate::matrix::{check_input, Finite, Matrix, MatrixView};
use crate::numeric::{dot, np_sum};
use crate::state::{node_float, Obj};
use crate::view::{Norm, PolyColumn as Col, View};

const TRANSFORM: &[Method] = &[Method::Transform];

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        "sklearn.preprocessing._data.StandardScaler" => Box::new(standard(o)?),
        "sklearn.preprocessing._data.MinMaxScaler" => Box::new(min_max(o)?),
        "sklearn.preprocessing._data.MaxAbsScaler" => Box::new(max_abs(o)?),
        "sklearn.preprocessing._data.RobustScaler" => Box::new(robust(o)?),
        "sklearn.preprocessing._data.Normalizer" => Box::new(normalizer(o)?),
        "sklearn.impute._base.SimpleImputer" => Box::new(imputer(o)?),
        "sklearn.decomposition._pca.PCA" => Box::new(pca(o)?),
        "sklearn.preprocessing._polynomial.PolynomialFeatures" => Box::new(polynomial(o)?),
        _ => return Ok(None),
    };
    Ok(Some(est))
}

/// One in-place column-wise operation.
#[derive(Debug)]
enum Op {
    Sub(Vec<f64>),
    Div(Vec<f64>),
    Mul(Vec<f64>),
    Add(Vec<f64>),
    Clip(f64, f64),
}

/// An attribute name and the operation its array makes.
type MakeOp = fn(Vec<f64>) -> Op;

/// A sequence of column-wise operations (the scalers).
#[derive(Debug)]
struct ColumnOps {
    class: String,
    n_features: usize,
    ops: Vec<Op>,
}

fn column_ops(o: &Obj<'_, '_>, ops: Vec<(&str, MakeOp)>) -> Result<ColumnOps> {
    let n = o.usize("n_features_in_")?;
    let mut out = Vec::new();
    for (name, make) in ops {
        out.push(make(o.f64_shaped(name, &[n])?));
    }
    Ok(ColumnOps {
        class: o.class().to_string(),
        n_features: n,
        ops: out,
    })
}

fn standard(o: &Obj<'_, '_>) -> Result<ColumnOps> {
    let mut ops: Vec<(&str, MakeOp)> = Vec::new();
    if o.bool("with_mean")? {
        ops.push(("mean_", Op::Sub));
    }
    if o.bool("with_std")? && !o.is_none("scale_") {
        ops.push(("scale_", Op::Div));
    }
    column_ops(o, ops)
}

fn clip_range(o: &Obj<'_, '_>) -> Result<Option<(f64, f64)>> {
    if !o
        .attr("clip")
        .is_some_and(|_| o.bool("clip").unwrap_or(false))
    {
        return Ok(None);
    }
    let range = o.seq("feature_range")?;
    match range.as_slice() {
        [a, b] => match (node_float(a), node_float(b)) {
            (Some(a), Some(b)) => Ok(Some((a, b))),
            _ => Err(malformed(&o.sub("feature_range"), "expected two numbers")),
        },
        _ => Err(malformed(&o.sub("feature_range"), "expected two numbers")),
    }
}

fn min_max(o: &Obj<'_, '_>) -> Result<ColumnOps> {
    let mut s = column_ops(o, vec![("scale_", Op::Mul), ("min_", Op::Add)])?;
    if let Some((a, b)) = clip_range(o)? {
        s.ops.push(Op::Clip(a, b));
    }
    Ok(s)
}

fn max_abs(o: &Obj<'_, '_>) -> Result<ColumnOps> {
    let mut s = column_ops(o, vec![("scale_", Op::Div)])?;
    if o.attr("clip").is_some() && o.bool("clip")? {
        s.ops.push(Op::Clip(-1.0, 1.0));
    }
    Ok(s)
}

fn robust(o: &Obj<'_, '_>) -> Result<ColumnOps> {
    let mut ops: Vec<(&str, MakeOp)> = Vec::new();
    if o.bool("with_centering")? {
        ops.push(("center_", Op::Sub));
    }
    if o.bool("with_scaling")? {
        ops.push(("scale_", Op::Div));
    }
    column_ops(o, ops)
}

impl Estimator for ColumnOps {
    fn class(&self) -> &str {
        &self.class
    }
    fn view(&self) -> View<'_> {
        use crate::view::ColumnOpView;
        View::ColumnOps {
            class: &self.class,
            n_features: self.n_features,
            ops: self
                .ops
                .iter()
                .map(|op| match op {
                    Op::Sub(c) => ColumnOpView::Sub(c),
                    Op::Div(c) => ColumnOpView::Div(c),
                    Op::Mul(c) => ColumnOpView::Mul(c),
                    Op::Add(c) => ColumnOpView::Add(c),
                    Op::Clip(a, b) => ColumnOpView::Clip(*a, *b),
                })
                .collect(),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        TRANSFORM
    }
    fn n_outputs(&self) -> Option<usize> {
        Some(self.n_features)
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(&self.class, x, self.n_features, Finite::AllowNan)?;
        let mut out = x.data().to_vec();
        let n = self.n_features.max(1);
        for op in &self.ops {
            for row in out.chunks_exact_mut(n) {
                match op {
                    Op::Sub(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v -= c),
                    Op::Div(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v /= c),
                    Op::Mul(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v *= c),
                    Op::Add(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v += c),
                    // np.clip keeps NaN; f64::clamp does too.
                    Op::Clip(a, b) => row.iter_mut().for_each(|v| *v = v.clamp(*a, *b)),
                }
            }
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.n_features))
    }
}

#[derive(Debug)]
struct Normalizer {
    n_features: usize,
    norm: Norm,
}

fn normalizer(o: &Obj<'_, '_>) -> Result<Normalizer> {
    let norm = match o.str("norm")? {
        "l1" => Norm::L1,
        "l2" => Norm::L2,
        "max" => Norm::Max,
        other => return Err(malformed(&o.sub("norm"), format!("unknown norm {other:?}"))),
    };
    Ok(Normalizer {
        n_features: o.usize("n_features_in_")?,
        norm,
    })
}

impl Estimator for Normalizer {
    fn class(&self) -> &str {
        "sklearn.preprocessing._data.Normalizer"
    }
    fn view(&self) -> View<'_> {
        View::Normalizer {
            class: self.class(),
            n_features: self.n_features,
            norm: self.norm,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        TRANSFORM
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(self.class(), x, self.n_features, Finite::All)?;
        let mut out = x.data().to_vec();
        let mut abs = vec![0.0; self.n_features];
        for row in out.chunks_exact_mut(self.n_features.max(1)) {
            let mut norm = match self.norm {
                Norm::L1 => {
                    abs.iter_mut()
                        .zip(row.iter())
                        .for_each(|(a, v)| *a = v.abs());
                    np_sum(&abs)
                }
                Norm::L2 => dot(row, row).sqrt(),
                Norm::Max => row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.abs())),
            };
            if norm == 0.0 {
                norm = 1.0;
            }
            row.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.n_features))
    }
}

/// SimpleImputer fitted on numbers: missing entries take the column's statistic; columns
/// whose statistic is NaN are dropped unless `keep_empty_features`; `add_indicator`
/// appends MissingIndicator's columns. (Imputers fitted on text are `impute`'s.)
#[derive(Debug)]
struct Imputer {
    n_features: usize,
    /// `None` means NaN.
    missing: Option<f64>,
    /// Kept columns and their fill values.
    columns: Vec<usize>,
    fills: Vec<f64>,
    indicator: Option<crate::impute::Indicator>,
}

fn imputer(o: &Obj<'_, '_>) -> Result<Imputer> {
    let indicator = match o.attr("indicator_").map(|n| o.ctx.resolve(n)) {
        None | Some(skvault_format::Node::None) => None,
        Some(node) => {
            let obj = o
                .ctx
                .object(node)
                .filter(|obj| obj.class == "sklearn.impute._base.MissingIndicator")
                .ok_or_else(|| malformed(&o.sub("indicator_"), "expected a MissingIndicator"))?;
            Some(crate::impute::Indicator::new(&Obj::new(
                o.ctx,
                obj,
                o.sub("indicator_"),
            ))?)
        }
    };
    let n = o.usize("n_features_in_")?;
    let missing = node_float(o.req("missing_values")?).ok_or_else(|| {
        unsupported(
            o.class(),
            &o.path,
            Some("non-numeric missing_values".into()),
        )
    })?;
    let missing = if missing.is_nan() {
        None
    } else {
        Some(missing)
    };
    let stats = o.f64_shaped("statistics_", &[n])?;
    let keep_empty = o.attr("keep_empty_features").is_some() && o.bool("keep_empty_features")?;
    let (columns, fills) = stats
        .into_iter()
        .enumerate()
        .filter(|(_, s)| keep_empty || !s.is_nan())
        .unzip();
    Ok(Imputer {
        n_features: n,
        missing,
        columns,
        fills,
        indicator,
    })
}

impl Estimator for Imputer {
    fn class(&self) -> &str {
        "sklearn.impute._base.SimpleImputer"
    }
    fn view(&self) -> View<'_> {
        View::Imputer {
            class: self.class(),
            n_features: self.n_features,
            missing: self.missing,
            columns: &self.columns,
            fills: &self.fills,
            indicator: self.indicator.as_ref().map(|i| i.features()),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        TRANSFORM
    }
    fn n_outputs(&self) -> Option<usize> {
        let indicators = self.indicator.as_ref().map_or(0, |i| i.features().len());
        Some(self.columns.len() + indicators)
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        let finite = if self.missing.is_none() {
            Finite::AllowNan
        } else {
            Finite::All
        };
        check_input(self.class(), x, self.n_features, finite)?;
        let mut out = Vec::with_capacity(x.n_rows() * self.columns.len());
        for row in x.rows() {
            for (j, fill) in self.columns.iter().zip(&self.fills) {
                let v = row[*j];
                let is_missing = match self.missing {
                    None => v.is_nan(),
                    Some(m) => v == m,
                };
                out.push(if is_missing { *fill } else { v });
            }
        }
        let imputed = Matrix::from_vec(out, x.n_rows(), self.columns.len());
        match &self.indicator {
            Some(ind) => Ok(crate::impute::append_columns(
                imputed,
                &ind.matrix_columns(x)?,
            )),
            None => Ok(imputed),
        }
    }
}

/// PCA: `X @ components_.T - mean_ @ components_.T`, then `/ sqrt(explained_variance_)`
/// (floored at machine epsilon) when whitening.
#[derive(Debug)]
struct Pca {
    n_features: usize,
    components: Vec<f64>,
    k: usize,
    offset: Vec<f64>,
    scale: Option<Vec<f64>>,
}

fn pca(o: &Obj<'_, '_>) -> Result<Pca> {
    let n = o.usize("n_features_in_")?;
    let comps = o.f64_array("components_")?;
    let k = match comps.shape.as_slice() {
        [k, d] if *d == n => *k,
        other => {
            return Err(malformed(
                &o.sub("components_"),
                format!("shape {other:?} for {n} features"),
            ))
        }
    };
    let mean = o.f64_shaped("mean_", &[n])?;
    let offset = comps
        .data
        .chunks_exact(n.max(1))
        .map(|c| dot(&mean, c))
        .collect();
    let scale = if o.bool("whiten")? {
        let ev = o.f64_shaped("explained_variance_", &[k])?;
        Some(ev.iter().map(|v| v.sqrt().max(f64::EPSILON)).collect())
    } else {
        None
    };
    Ok(Pca {
        n_features: n,
        components: comps.data,
        k,
        offset,
        scale,
    })
}

impl Estimator for Pca {
    fn class(&self) -> &str {
        "sklearn.decomposition._pca.PCA"
    }
    fn view(&self) -> View<'_> {
        View::Pca {
            class: self.class(),
            n_features: self.n_features,
            components: &self.components,
            k: self.k,
            offset: &self.offset,
            scale: self.scale.as_deref(),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        TRANSFORM
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(self.class(), x, self.n_features, Finite::All)?;
        let mut out = Vec::with_capacity(x.n_rows() * self.k);
        for row in x.rows() {
            for (j, c) in self
                .components
                .chunks_exact(self.n_features.max(1))
                .enumerate()
            {
                let mut v = dot(row, c) - self.offset[j];
                if let Some(s) = &self.scale {
                    v /= s[j];
                }
                out.push(v);
            }
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.k))
    }
}

/// Most columns PolynomialFeatures may expand to (inputs and products).
const MAX_POLY_COLUMNS: usize = 1 << 20;

/// PolynomialFeatures, building each degree-d column as (a degree d-1 column) * x_j, in
/// scikit-learn's column order, so products are rounded exactly as scikit-learn rounds them.
#[derive(Debug)]
struct Polynomial {
    n_features: usize,
    full: Vec<Col>,
    /// The columns of `full` that are output (all of them unless `min_degree > 1`).
    keep: Vec<usize>,
}

fn polynomial(o: &Obj<'_, '_>) -> Result<Polynomial> {
    let n = o.usize("n_features_in_")?;
    let bias = o.bool("include_bias")?;
    let interaction = o.bool("interaction_only")?;
    let min_degree = o.usize("_min_degree")?;
    let max_degree = o.usize("_max_degree")?;
    let n_out = o.usize("n_output_features_")?;
    let too_big = || unsupported(o.class(), &o.path, Some("too many output features".into()));
    // Every size below comes from the file: bounded before anything is allocated. With a
    // degree of 1 or more the input columns are themselves output columns.
    if max_degree > 64 || n_out > MAX_POLY_COLUMNS || (max_degree >= 1 && n > MAX_POLY_COLUMNS) {
        return Err(too_big());
    }
    let mut full = Vec::new();
    if bias {
        full.push(Col::One);
    }
    if max_degree >= 1 {
        let first = full.len();
        full.extend((0..n).map(Col::X));
        let mut index: Vec<usize> = (first..first + n).collect();
        index.push(full.len());
        for _ in 2..=max_degree {
            let end = index[index.len() - 1];
            let mut new_index = Vec::with_capacity(n + 1);
            for j in 0..n {
                let Some(&at) = index.get(j) else { break };
                new_index.push(full.len());
                let start = if interaction {
                    index.get(j + 1).copied().unwrap_or(end)
                } else {
                    at
                };
                if end <= start {
                    break;
                }
                if full.len().saturating_add(end - start) > MAX_POLY_COLUMNS {
                    return Err(too_big());
                }
                full.extend((start..end).map(|src| Col::Prod(src, j)));
            }
            new_index.push(full.len());
            index = new_index;
        }
    }
    let keep: Vec<usize> = if min_degree > 1 {
        // The bias, then the last columns: the degrees from min_degree up.
        let tail = n_out.saturating_sub(usize::from(bias));
        let cut = full
            .len()
            .checked_sub(tail)
            .ok_or_else(|| malformed(&o.path, "n_output_features_ exceeds the expansion"))?;
        let mut keep: Vec<usize> = if bias { vec![0] } else { Vec::new() };
        keep.extend(cut..full.len());
        keep
    } else {
        (0..full.len()).collect()
    };
    if keep.len() != n_out || n_out == 0 {
        return Err(malformed(
            &o.sub("n_output_features_"),
            format!("{n_out}, but the expansion has {} columns", keep.len()),
        ));
    }
    Ok(Polynomial {
        n_features: n,
        full,
        keep,
    })
}

impl Estimator for Polynomial {
    fn class(&self) -> &str {
        "sklearn.preprocessing._polynomial.PolynomialFeatures"
    }
    fn view(&self) -> View<'_> {
        View::Polynomial {
            class: self.class(),
            n_features: self.n_features,
            columns: &self.full,
            keep: &self.keep,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        TRANSFORM
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(self.class(), x, self.n_features, Finite::All)?;
        let mut out = Vec::with_capacity(x.n_rows() * self.keep.len());
        let mut work = vec![0.0; self.full.len()];
        for row in x.rows() {
            // Sources always precede the columns built from them.
            for c in 0..self.full.len() {
                work[c] = match self.full[c] {
                    Col::One => 1.0,
                    Col::X(j) => row[j],
                    Col::Prod(src, j) => work[src] * row[j],
                };
            }
            out.extend(self.keep.iter().map(|k| work[*k]));
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.keep.len()))
    }
}
