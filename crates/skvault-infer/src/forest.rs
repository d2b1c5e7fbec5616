//! Decision trees and forests of them (RandomForest*, ExtraTrees*).
//!
//! A forest sums the per-tree outputs in tree order starting from zero, then divides by the
//! number of trees, as scikit-learn does with `n_jobs=None`: the results are bit-identical.
//! Rows are processed in blocks (tree-major inside a block, so one tree's nodes stay in
//! cache); large inputs spread the blocks over rayon's threads, each block keeping the tree
//! order, so parallelism never changes a result.

use rayon::prelude::*;
use skvault_format::Node;

use crate::classes::{read_classes, Classes};
use crate::error::{malformed, unsupported, InferError, Result};
use crate::estimator::{Boxed, Estimator, Method};
use crate::matrix::{check_input, Finite, Matrix, MatrixView, Prediction};
use crate::state::Obj;
use crate::tree::{Tree, TreeKind};

/// Most rows per block: a tree is walked for a whole block before the next tree, so its
/// nodes stay in cache; the block's float32 rows (and a few arrays per row) stay in L2.
const MAX_BLOCK: usize = 4096;
/// Below this many row-tree visits, threads cost more than they save.
const PARALLEL_WORK: usize = 1 << 14;

const TREE_CLASSIFIERS: &[&str] = &[
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
];
const TREE_REGRESSORS: &[&str] = &[
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeRegressor",
];
const FOREST_CLASSIFIERS: &[&str] = &[
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
];
const FOREST_REGRESSORS: &[&str] = &[
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
];

#[derive(Debug)]
pub(crate) struct TreeEnsemble {
    class: String,
    n_features: usize,
    trees: Vec<Tree>,
    width: usize,
    /// Forests average (sum from zero, then divide); a single tree returns its leaf values.
    average: bool,
    classes: Option<Classes>,
    allow_nan: bool,
}

/// Builds the estimator if `o` is a tree or forest class; `None` for other classes.
pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let class = o.class();
    let is = |list: &[&str]| list.contains(&class);
    let est = if is(TREE_CLASSIFIERS) || is(TREE_REGRESSORS) {
        single_tree(o, is(TREE_CLASSIFIERS))?
    } else if is(FOREST_CLASSIFIERS) || is(FOREST_REGRESSORS) {
        forest(o, is(FOREST_CLASSIFIERS))?
    } else {
        return Ok(None);
    };
    Ok(Some(Box::new(est)))
}

/// `n_features_in_`, `n_outputs_` and, for classifiers, `classes_` and the tree kind.
fn header(o: &Obj<'_, '_>, classifier: bool) -> Result<(usize, TreeKind, Option<Classes>)> {
    let n_features = o.usize("n_features_in_")?;
    if n_features == 0 {
        return Err(malformed(&o.path, "n_features_in_ is 0"));
    }
    let n_outputs = o.usize("n_outputs_")?;
    if n_outputs == 0 {
        return Err(malformed(&o.path, "n_outputs_ is 0"));
    }
    if !classifier {
        return Ok((n_features, TreeKind::Regressor { n_outputs }, None));
    }
    if n_outputs != 1 {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some("multi-output classification".into()),
        ));
    }
    // Before scikit-learn 1.4, classifier trees stored weighted class counts, not fractions,
    // and normalised them in predict_proba: refuse rather than return counts, unless
    // `skvault convert` recorded that it turned them into fractions.
    if let (Some(Node::Str(v)), false) = (o.attr("_sklearn_version"), o.ctx.tree_values_migrated())
    {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(u32::MAX));
        if let (Some(major), Some(minor)) = (parts.next(), parts.next()) {
            if (major, minor) < (1, 4) {
                return Err(unsupported(
                    o.class(),
                    &o.path,
                    Some(format!(
                        "fitted with scikit-learn {v} (< 1.4: tree values are counts)"
                    )),
                ));
            }
        }
    }
    let classes = read_classes(o.ctx, o.req("classes_")?, &o.sub("classes_"))?;
    if classes.is_empty() {
        return Err(malformed(&o.sub("classes_"), "no classes"));
    }
    let n_classes = classes.len();
    Ok((
        n_features,
        TreeKind::Classifier { n_classes },
        Some(classes),
    ))
}

fn single_tree(o: &Obj<'_, '_>, classifier: bool) -> Result<TreeEnsemble> {
    let (n_features, kind, classes) = header(o, classifier)?;
    let tree = Tree::from_estimator(o, n_features, kind)?;
    // ExtraTree* accept NaN only with the random splitter (their default).
    let allow_nan = !o.class().contains("ExtraTree") || o.str("splitter")? == "random";
    Ok(TreeEnsemble {
        class: o.class().to_string(),
        n_features,
        width: tree.width(),
        trees: vec![tree],
        average: false,
        classes,
        allow_nan,
    })
}

fn forest(o: &Obj<'_, '_>, classifier: bool) -> Result<TreeEnsemble> {
    let (n_features, kind, classes) = header(o, classifier)?;
    let members = o.seq("estimators_")?;
    if members.is_empty() {
        return Err(malformed(&o.sub("estimators_"), "no trees"));
    }
    let allowed = if classifier {
        TREE_CLASSIFIERS
    } else {
        TREE_REGRESSORS
    };
    let mut trees = Vec::with_capacity(members.len());
    for (i, node) in members.into_iter().enumerate() {
        let path = format!("{}/{i}", o.sub("estimators_"));
        let obj = o
            .ctx
            .object(node)
            .ok_or_else(|| malformed(&path, "expected a tree estimator"))?;
        let t = Obj::new(o.ctx, obj, path.clone());
        if !allowed.contains(&t.class()) {
            return Err(unsupported(t.class(), &path, Some("in a forest".into())));
        }
        if t.usize("n_features_in_")? != n_features {
            return Err(malformed(&path, "tree and forest differ in n_features_in_"));
        }
        trees.push(Tree::from_estimator(&t, n_features, kind)?);
    }
    let width = trees.first().map_or(0, Tree::width);
    Ok(TreeEnsemble {
        class: o.class().to_string(),
        n_features,
        trees,
        width,
        average: true,
        classes,
        allow_nan: true,
    })
}

/// X as float32 (rounded to nearest, as numpy's `astype`). Infinity, which is also what a
/// float64 beyond float32's range becomes, is refused unless `finite` is `Any`; NaN is
/// refused when `finite` is `All`.
pub(crate) fn to_f32(class: &str, x: &MatrixView<'_>, finite: Finite) -> Result<Vec<f32>> {
    let n_cols = x.n_cols().max(1);
    let mut out = Vec::with_capacity(x.data().len());
    for (pos, v) in x.data().iter().enumerate() {
        let f = *v as f32;
        let refused = match finite {
            Finite::Any => false,
            Finite::AllowNan => f.is_infinite(),
            Finite::All => !f.is_finite(),
        };
        if refused {
            let message = if f.is_nan() {
                "Input X contains NaN".to_string()
            } else {
                "Input X contains infinity or a value too large for dtype('float32')".to_string()
            };
            return Err(InferError::InvalidValue {
                class: class.to_string(),
                row: pos / n_cols,
                column: pos % n_cols,
                message,
            });
        }
        out.push(f);
    }
    Ok(out)
}

impl TreeEnsemble {
    /// The summed (forest) or copied (single tree) leaf values of rows `x32`, into `out`.
    fn block(&self, x32: &[f32], out: &mut [f64]) {
        let (nf, w) = (self.n_features, self.width);
        let mut leaf = vec![0u32; x32.len() / nf];
        if !self.average {
            self.trees[0].leaves(x32, nf, &mut leaf);
            for (l, acc) in leaf.iter().zip(out.chunks_exact_mut(w)) {
                acc.copy_from_slice(self.trees[0].values(*l));
            }
            return;
        }
        if leaf.len() < 8 {
            // Few rows: step 8 trees together per row instead of 8 rows per tree.
            let mut at = [0u32; 8];
            for (row, acc) in x32.chunks_exact(nf).zip(out.chunks_exact_mut(w)) {
                for group in self.trees.chunks(8) {
                    let at = &mut at[..group.len()];
                    Tree::leaves_across(group, row, at);
                    // Summed in tree order, as below.
                    for (tree, l) in group.iter().zip(at.iter()) {
                        for (a, v) in acc.iter_mut().zip(tree.values(*l)) {
                            *a += *v;
                        }
                    }
                }
            }
            return;
        }
        for tree in &self.trees {
            tree.leaves(x32, nf, &mut leaf);
            for (l, acc) in leaf.iter().zip(out.chunks_exact_mut(w)) {
                for (a, v) in acc.iter_mut().zip(tree.values(*l)) {
                    *a += *v;
                }
            }
        }
    }

    /// Leaf values averaged over the trees: predict_proba for classifiers, predict for regressors.
    fn raw(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(&self.class, x, self.n_features, Finite::Any)?;
        let finite = if self.allow_nan {
            Finite::AllowNan
        } else {
            Finite::All
        };
        let x32 = to_f32(&self.class, x, finite)?;
        let n_rows = x.n_rows();
        let (nf, w) = (self.n_features, self.width);
        let mut out = Matrix::zeros(n_rows, w);
        run_blocks(&x32, nf, &mut out.data, w, self.trees.len(), |xb, o| {
            self.block(xb, o)
        });
        if self.average {
            let n = self.trees.len() as f64;
            out.data.iter_mut().for_each(|v| *v /= n);
        }
        Ok(out)
    }
}

/// Runs `f` on blocks of rows (input `x` with `nf` columns, output `out` with `w` columns),
/// on rayon's threads when there is enough work (`n_trees` visits per row), in blocks of
/// equal size, a multiple of the thread count in number. Each block is computed whole by
/// one call and rows never interact, so threads never change a result.
pub(crate) fn run_blocks<T: Sync>(
    x: &[T],
    nf: usize,
    out: &mut [f64],
    w: usize,
    n_trees: usize,
    f: impl Fn(&[T], &mut [f64]) + Sync,
) {
    let (nf, w) = (nf.max(1), w.max(1));
    let n_rows = out.len() / w;
    if n_rows == 0 {
        return;
    }
    if n_rows.saturating_mul(n_trees) < PARALLEL_WORK {
        f(x, out);
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    let n_blocks = n_rows.div_ceil(MAX_BLOCK).div_ceil(threads) * threads;
    let block = n_rows.div_ceil(n_blocks).max(1);
    out.par_chunks_mut(block * w)
        .zip(x.par_chunks(block * nf))
        .for_each(|(o, xb)| f(xb, o));
}

/// Index of the first largest value of each row (numpy's `argmax`).
pub(crate) fn argmax_rows(m: &Matrix) -> Vec<usize> {
    (0..m.n_rows)
        .map(|i| {
            let row = m.row(i);
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                // numpy's argmax returns the first NaN if there is one.
                if v.is_nan() {
                    return j;
                }
                if *v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

impl Estimator for TreeEnsemble {
    fn class(&self) -> &str {
        &self.class
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn methods(&self) -> &'static [Method] {
        if self.classes.is_some() {
            &[Method::Predict, Method::PredictProba]
        } else {
            &[Method::Predict]
        }
    }

    fn classes(&self) -> Option<&Classes> {
        self.classes.as_ref()
    }

    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        let raw = self.raw(x)?;
        if self.classes.is_some() {
            return Ok(Prediction::Labels(argmax_rows(&raw)));
        }
        let mut raw = raw;
        raw.flat = raw.n_cols == 1;
        Ok(Prediction::Values(raw))
    }

    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.classes.is_none() {
            return Err(crate::estimator::not_available(
                &self.class,
                Method::PredictProba,
            ));
        }
        self.raw(x)
    }

    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Trees {
            class: &self.class,
            n_features: self.n_features,
            trees: self.trees.iter().map(Tree::view).collect(),
            width: self.width,
            average: self.average,
            classes: self.classes.as_ref(),
            allow_nan: self.allow_nan,
        }
    }
}
