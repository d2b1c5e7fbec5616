//! Transformers: scalers, encoders, Normalizer, SimpleImputer, PCA and PolynomialFeatures.
//!
//! Each returns its output tensor (double `[N, width]`). Element-wise operations follow
//! scikit-learn's order, so the scalers, the encoders, the imputer and the polynomial
//! expansion are bit-identical; row norms and PCA's product sum in an order neither side
//! fixes (docs/EXPORT.md).

use skvault_infer::{ColumnOpView, Norm, PolyColumn, View};

use super::{Graph, Out};
use crate::error::{unsupported, Result};
use crate::proto::{data_type, AttributeProto, TensorProto};

impl Graph {
    pub(super) fn column_ops(
        &mut self,
        x: &str,
        n_features: usize,
        ops: &[ColumnOpView<'_>],
    ) -> Out {
        let mut cur = x.to_string();
        for op in ops {
            cur = match op {
                ColumnOpView::Sub(c) => self.columnwise(&cur, "Sub", c),
                ColumnOpView::Div(c) => self.columnwise(&cur, "Div", c),
                ColumnOpView::Mul(c) => self.columnwise(&cur, "Mul", c),
                ColumnOpView::Add(c) => self.columnwise(&cur, "Add", c),
                ColumnOpView::Clip(a, b) => {
                    let lo = self.f64s(vec![], &[*a]);
                    let hi = self.f64s(vec![], &[*b]);
                    self.op("Clip", &[&cur, &lo, &hi], vec![])
                }
            };
        }
        Out::Transform(cur, n_features)
    }

    /// `x <op> c` with one constant per column.
    fn columnwise(&mut self, x: &str, op: &str, c: &[f64]) -> String {
        let c = self.f64s(vec![c.len() as i64], c);
        self.op(op, &[x, &c], vec![])
    }

    pub(super) fn ordinal(
        &mut self,
        x: &str,
        categories: &[Vec<f64>],
        unknown_value: Option<f64>,
        encoded_missing: f64,
    ) -> Out {
        let mut cols = Vec::new();
        for (j, cats) in categories.iter().enumerate() {
            let col = self.gather_columns(x, &[j]);
            let (keys, values): (Vec<f64>, Vec<f64>) = cats
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_nan())
                .map(|(i, c)| (*c, i as f64))
                .unzip();
            // scikit-learn raises on unknown categories without an unknown_value; a graph
            // cannot: they become NaN (see docs/EXPORT.md).
            let default = unknown_value.unwrap_or(f64::NAN);
            let coded = self.op_ml(
                "LabelEncoder",
                &[&col],
                vec![
                    AttributeProto::tensor(
                        "keys_tensor",
                        TensorProto::f64s("", vec![keys.len() as i64], &keys),
                    ),
                    AttributeProto::tensor(
                        "values_tensor",
                        TensorProto::f64s("", vec![values.len() as i64], &values),
                    ),
                    AttributeProto::tensor(
                        "default_tensor",
                        TensorProto::f64s("", vec![1], &[default]),
                    ),
                ],
            );
            let nan_value = if cats.iter().any(|c| c.is_nan()) {
                encoded_missing
            } else {
                default
            };
            let is_nan = self.op("IsNaN", &[&col], vec![]);
            let nv = self.f64s(vec![], &[nan_value]);
            cols.push(self.op("Where", &[&is_nan, &nv, &coded], vec![]));
        }
        Out::Transform(self.concat(&cols), categories.len())
    }

    /// One-hot columns, built as booleans feature by feature (`Equal` against the
    /// categories, `IsNaN` for a NaN category, the dropped one gathered out), then cast to
    /// double once. An unknown value matches nothing: all zeros, as `handle_unknown="ignore"`.
    pub(super) fn one_hot(
        &mut self,
        class: &str,
        x: &str,
        categories: &[Vec<f64>],
        drop: &[Option<usize>],
    ) -> Result<Out> {
        let mut parts = Vec::new();
        let mut width = 0;
        for (j, cats) in categories.iter().enumerate() {
            let dropped = drop.get(j).copied().flatten();
            let kept: Vec<usize> = (0..cats.len()).filter(|c| Some(*c) != dropped).collect();
            if kept.is_empty() {
                continue;
            }
            let col = self.gather_columns(x, &[j]);
            let numbers: Vec<f64> = cats.iter().copied().filter(|c| !c.is_nan()).collect();
            let mut hits = Vec::new();
            if !numbers.is_empty() {
                let c = self.f64s(vec![1, numbers.len() as i64], &numbers);
                hits.push(self.op("Equal", &[&col, &c], vec![]));
            }
            // scikit-learn sorts a NaN category last.
            if numbers.len() < cats.len() {
                hits.push(self.op("IsNaN", &[&col], vec![]));
            }
            let mut onehot = self.concat(&hits);
            if kept.len() < cats.len() {
                onehot = self.gather_columns(&onehot, &kept);
            }
            width += kept.len();
            parts.push(onehot);
        }
        if parts.is_empty() {
            return Err(unsupported(class, Some("no output columns".into())));
        }
        let all = self.concat(&parts);
        let out = self.cast(&all, data_type::DOUBLE);
        Ok(Out::Transform(out, width))
    }

    /// Each row divided by its norm; a zero norm divides by 1, as scikit-learn's
    /// `_handle_zeros_in_scale`.
    pub(super) fn normalizer(&mut self, x: &str, n_features: usize, norm: Norm) -> Out {
        let axes = self.i64s(vec![1], &[1]);
        let keep = || vec![AttributeProto::int("keepdims", 1)];
        let norms = match norm {
            Norm::L1 => self.op("ReduceL1", &[x, &axes], keep()),
            Norm::L2 => {
                let sq = self.op("ReduceSumSquare", &[x, &axes], keep());
                self.op("Sqrt", &[&sq], vec![])
            }
            Norm::Max => {
                let abs = self.op("Abs", &[x], vec![]);
                self.op("ReduceMax", &[&abs, &axes], keep())
            }
        };
        let zero = self.f64s(vec![], &[0.0]);
        let one = self.f64s(vec![], &[1.0]);
        let is_zero = self.op("Equal", &[&norms, &zero], vec![]);
        let safe = self.op("Where", &[&is_zero, &one, &norms], vec![]);
        Out::Transform(self.op("Div", &[x, &safe], vec![]), n_features)
    }

    /// SimpleImputer: the kept columns with their missing entries filled, then (with
    /// `add_indicator`) 0/1 columns saying where the input was missing.
    pub(super) fn imputer(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::Imputer {
            class,
            n_features,
            missing,
            columns,
            fills,
            indicator,
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let (n_features, missing, indicator) = (*n_features, *missing, *indicator);
        if columns.is_empty() && indicator.is_none_or(|f| f.is_empty()) {
            return Err(unsupported(class, Some("no output columns".into())));
        }
        let mut parts = Vec::new();
        if !columns.is_empty() {
            let kept = self.columns_of(x, n_features, columns);
            let is_missing = self.is_missing(&kept, missing);
            let fills = self.f64s(vec![fills.len() as i64], fills);
            parts.push(self.op("Where", &[&is_missing, &fills, &kept], vec![]));
        }
        let mut width = columns.len();
        if let Some(features) = indicator.filter(|f| !f.is_empty()) {
            // The indicator looks at the input, before imputation.
            let seen = self.columns_of(x, n_features, features);
            let is_missing = self.is_missing(&seen, missing);
            parts.push(self.cast(&is_missing, data_type::DOUBLE));
            width += features.len();
        }
        Ok(Out::Transform(self.concat(&parts), width))
    }

    /// Columns `idx` of `x` (`x` itself when they are all its `n` columns in order).
    fn columns_of(&mut self, x: &str, n: usize, idx: &[usize]) -> String {
        if idx.iter().copied().eq(0..n) {
            x.to_string()
        } else {
            self.gather_columns(x, idx)
        }
    }

    /// Where `x` is missing: NaN when `missing` is `None`, else equal to it.
    fn is_missing(&mut self, x: &str, missing: Option<f64>) -> String {
        match missing {
            None => self.op("IsNaN", &[x], vec![]),
            Some(m) => {
                let m = self.f64s(vec![], &[m]);
                self.op("Equal", &[x, &m], vec![])
            }
        }
    }

    /// `(X @ components.T - offset) / scale`, as scikit-learn's `PCA.transform`.
    pub(super) fn pca(
        &mut self,
        x: &str,
        components: &[f64],
        k: usize,
        offset: &[f64],
        scale: Option<&[f64]>,
    ) -> Out {
        let product = self.matmul_transposed(x, components, k);
        let offset = self.f64s(vec![k as i64], offset);
        let mut out = self.op("Sub", &[&product, &offset], vec![]);
        if let Some(s) = scale {
            let s = self.f64s(vec![k as i64], s);
            out = self.op("Div", &[&out, &s], vec![]);
        }
        Out::Transform(out, k)
    }

    /// PolynomialFeatures: the expansion is built in runs of columns of one kind (the bias,
    /// input columns, products whose sources are already built), one `Mul` per run of
    /// products, so every product is rounded exactly as scikit-learn rounds it.
    pub(super) fn polynomial(
        &mut self,
        class: &str,
        x: &str,
        columns: &[PolyColumn],
        keep: &[usize],
    ) -> Result<Out> {
        let mut parts: Vec<String> = Vec::new();
        let mut built = 0;
        let mut i = 0;
        while i < columns.len() {
            let start = i;
            let part = match columns[i] {
                PolyColumn::One => {
                    i += 1;
                    self.ones_column(x)
                }
                PolyColumn::X(_) => {
                    let mut js = Vec::new();
                    while let Some(PolyColumn::X(j)) = columns.get(i) {
                        js.push(*j);
                        i += 1;
                    }
                    self.gather_columns(x, &js)
                }
                PolyColumn::Prod(..) => {
                    let (mut srcs, mut js) = (Vec::new(), Vec::new());
                    while let Some(PolyColumn::Prod(src, j)) = columns.get(i) {
                        if *src >= built {
                            break;
                        }
                        srcs.push(*src);
                        js.push(*j);
                        i += 1;
                    }
                    if srcs.is_empty() {
                        return Err(unsupported(
                            class,
                            Some(format!("column {start} is built from a later column")),
                        ));
                    }
                    let work = self.concat(&parts);
                    let a = self.gather_columns(&work, &srcs);
                    let b = self.gather_columns(x, &js);
                    self.op("Mul", &[&a, &b], vec![])
                }
            };
            built += i - start;
            parts.push(part);
        }
        if keep.is_empty() || parts.is_empty() {
            return Err(unsupported(class, Some("no output columns".into())));
        }
        let full = self.concat(&parts);
        let out = if keep.iter().copied().eq(0..columns.len()) {
            full
        } else {
            self.gather_columns(&full, keep)
        };
        Ok(Out::Transform(out, keep.len()))
    }

    /// A double `[N, 1]` column of ones, N being the rows of `x`.
    fn ones_column(&mut self, x: &str) -> String {
        let n = self.op(
            "Shape",
            &[x],
            vec![
                AttributeProto::int("start", 0),
                AttributeProto::int("end", 1),
            ],
        );
        let one = self.i64s(vec![1], &[1]);
        let shape = self.op("Concat", &[&n, &one], vec![AttributeProto::int("axis", 0)]);
        self.op(
            "ConstantOfShape",
            &[&shape],
            vec![AttributeProto::tensor(
                "value",
                TensorProto::f64s("", vec![1], &[1.0]),
            )],
        )
    }
}
