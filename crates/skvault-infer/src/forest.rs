//! Decision trees and forests of them (RandomForest*, ExtraTrees*).
//!
//! A forest sums the per-tree outputs in tree order starting from zero, then divides by the
//! number of trees, as scikit-learn does with `n_jobs=None`: the results are bit-identical.
//! Rows are processed in blocks (tree-major inside a block, so one tree's nodes stay in
//! cache); large inputs spread the blocks over rayon's threads, each block keeping the tree
//! order, so parallelism never changes a result.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use skvault_format::{threads, Node};

use crate::across::Across;
use crate::classes::{read_classes, Classes};
use crate::error::{malformed, unsupported, InferError, Result};
use crate::estimator::{Boxed, Estimator, Method};
use crate::matrix::{check_input, Finite, Matrix, MatrixView, Prediction};
use crate::state::Obj;
use crate::tree::{Rows, Threshold, Tree, TreeKind};

/// Most rows per block: a tree is walked for a whole block before the next tree, so each
/// of its nodes is fetched once per block. A deep forest's nodes (tens of megabytes) come
/// from memory, so fewer, larger blocks fetch less: 10,000 rows of the 500-tree forest of
/// bench/native.py took 105 ms in one block and 150 ms in blocks of 3,334 on one thread.
const MAX_BLOCK: usize = 16384;
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
    /// The trees laid out for one row at a time (forests; `None` if they do not fit), built
    /// by the first call on fewer than 8 rows or by [`Estimator::prepare_few_rows`]: batch
    /// scoring never needs it, and it is 16 bytes a node and a leaf (48 MB and about 100 ms,
    /// a third of the native load, on a 500-tree forest of depth 20).
    across: OnceLock<Option<Arc<Across>>>,
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
        across: OnceLock::from(None),
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
        across: OnceLock::new(),
    })
}

/// X as float32 (rounded to nearest, as numpy's `astype`). Infinity, which is also what a
/// float64 beyond float32's range becomes, is refused unless `finite` is `Any`; NaN is
/// refused when `finite` is `All`.
pub(crate) fn to_f32(class: &str, x: &MatrixView<'_>, finite: Finite) -> Result<Vec<f32>> {
    // The conversion, then the check, each a loop without an early exit, which the compiler
    // vectorizes (one loop doing both, leaving at the first refused value, did not: it was a
    // tenth of a one-hot forest's batch).
    let out: Vec<f32> = x.data().iter().map(|v| *v as f32).collect();
    let refused = match finite {
        Finite::Any => None,
        Finite::AllowNan => first_where(&out, f32::is_infinite),
        Finite::All => first_where(&out, |f| !f.is_finite()),
    };
    let Some(pos) = refused else {
        return Ok(out);
    };
    let message = if out[pos].is_nan() {
        "Input X contains NaN"
    } else {
        "Input X contains infinity or a value too large for dtype('float32')"
    };
    let n_cols = x.n_cols().max(1);
    Err(InferError::InvalidValue {
        class: class.to_string(),
        row: pos / n_cols,
        column: pos % n_cols,
        message: message.to_string(),
    })
}

/// The first position where `bad` holds: chunks are tested whole (no early exit inside,
/// so the test vectorizes), and only a chunk that holds one is searched.
fn first_where(values: &[f32], bad: impl Fn(f32) -> bool) -> Option<usize> {
    const CHUNK: usize = 256;
    values.chunks(CHUNK).enumerate().find_map(|(c, chunk)| {
        if !chunk.iter().fold(false, |acc, &f| acc | bad(f)) {
            return None;
        }
        chunk.iter().position(|&f| bad(f)).map(|i| c * CHUNK + i)
    })
}

impl TreeEnsemble {
    /// The one-row layout, built on first use.
    fn across(&self) -> Option<&Arc<Across>> {
        self.across
            .get_or_init(|| Across::new(&self.trees).map(Arc::new))
            .as_ref()
    }

    /// The summed (forest) or copied (single tree) leaf values of rows `x32`, into `out`.
    fn block(&self, x32: &[f32], out: &mut [f64]) {
        let (nf, w) = (self.n_features, self.width);
        if self.average && out.len() / w < 8 {
            // Few rows: trees side by side instead of rows (see `row_leaves`).
            let mut one = Rows::default();
            if let Some(across) = self.across() {
                let mut found = vec![0u64; self.trees.len() * across.words()];
                for (row, acc) in x32.chunks_exact(nf).zip(out.chunks_exact_mut(w)) {
                    one.fill_one(row, nf, |v| v);
                    // Summed in tree order, as below.
                    if crate::pair::worth_it(across) {
                        let row = std::mem::take(&mut one);
                        crate::pair::add_row(across, &self.trees, row, &mut found, acc);
                    } else {
                        across.add_row(&self.trees, &one, &mut found, acc);
                    }
                }
                return;
            }
            let mut leaf = vec![0u32; self.trees.len()];
            for (row, acc) in x32.chunks_exact(nf).zip(out.chunks_exact_mut(w)) {
                one.fill_one(row, nf, |v| v);
                row_leaves(&self.trees, &one, &mut leaf);
                // Summed in tree order, as below.
                Tree::add_leaf_values(&self.trees, leaf.iter().copied(), acc);
            }
            return;
        }
        let rows = Rows::new(x32, out.len() / w, nf, |v| v);
        let mut leaf = vec![0u32; rows.padded_rows()];
        for tree in &self.trees {
            tree.leaves(&rows, &mut leaf);
            if self.average {
                tree.add_values(&leaf, out);
            } else {
                for (l, acc) in leaf.iter().zip(out.chunks_exact_mut(w)) {
                    acc.copy_from_slice(tree.values(*l));
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
    run_blocks_of(MAX_BLOCK, x, nf, out, w, n_trees, f);
}

/// [`run_blocks`] with at most `max_block` rows per block: small trees gain nothing from
/// large blocks, and more blocks let a thread that runs ahead take another.
pub(crate) fn run_blocks_of<T: Sync>(
    max_block: usize,
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
    let n_threads = threads::current_num_threads().max(1);
    let n_blocks = n_rows.div_ceil(max_block.max(1)).div_ceil(n_threads) * n_threads;
    let block = n_rows.div_ceil(n_blocks).max(1);
    threads::install(|| {
        out.par_chunks_mut(block * w)
            .zip(x.par_chunks(block * nf))
            .for_each(|(o, xb)| f(xb, o))
    });
}

/// Steps (the trees' depths added up) below which one row stays on the calling thread:
/// waking a thread costs a few microseconds, about what this many steps take when each
/// misses the cache (a deep forest); small boosted trees stay in cache and under it.
const PARALLEL_STEPS: usize = 8192;

/// Trees stepped together for one row: more loads in flight. On bench/native.py's forest
/// (one thread) 16 took 25 µs a row, 8 took 29 µs and 4 took 41 µs.
const ACROSS: usize = 16;

/// The leaf of `row` in each of `trees`, into `leaf`: 16 trees stepped together so that one
/// row still overlaps its memory loads, and a large forest split over rayon's threads. Only
/// leaf indices are computed in parallel; the caller sums them in tree order.
pub(crate) fn row_leaves<T: Threshold + Send + Sync>(
    trees: &[Tree<T>],
    row: &Rows<T>,
    leaf: &mut [u32],
) {
    let n_threads = threads::current_num_threads().max(1);
    let walk = |trees: &[Tree<T>], leaf: &mut [u32]| {
        for (group, at) in trees.chunks(ACROSS).zip(leaf.chunks_mut(ACROSS)) {
            Tree::leaves_across(group, row, at);
        }
    };
    let steps: usize = trees.iter().map(|t| t.depth() as usize).sum();
    if n_threads == 1 || steps < PARALLEL_STEPS {
        walk(trees, leaf);
        return;
    }
    // Whole groups of `ACROSS` per thread.
    let chunk = trees.len().div_ceil(n_threads).div_ceil(ACROSS) * ACROSS;
    threads::install(|| {
        trees
            .par_chunks(chunk)
            .zip(leaf.par_chunks_mut(chunk))
            .for_each(|(t, l)| walk(t, l))
    });
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

    fn prepare_few_rows(&self) -> bool {
        self.across().is_some()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A forest regressor over `nf` features of random trees (see `across::tests::forest`).
    fn regressor(n_trees: usize, nf: usize) -> TreeEnsemble {
        let mut rng = skvault_format::fuzzing::Rng::new(0xf0e5);
        let trees = crate::across::tests::forest(&mut rng, n_trees, nf);
        TreeEnsemble {
            class: "sklearn.ensemble._forest.RandomForestRegressor".into(),
            n_features: nf,
            width: trees[0].width(),
            trees,
            average: true,
            classes: None,
            allow_nan: true,
            across: OnceLock::new(),
        }
    }

    fn values(p: Prediction) -> Vec<u64> {
        match p {
            Prediction::Values(m) => m.data.iter().map(|v| v.to_bits()).collect(),
            Prediction::Labels(_) => panic!("labels from a regressor"),
        }
    }

    /// Batches leave the one-row layout unbuilt; the first call on a few rows builds it (or
    /// `prepare_few_rows` does), and its answers are those of the batch path, bit for bit.
    #[test]
    fn the_one_row_layout_is_built_on_first_use() {
        let nf = 5;
        let forest = regressor(40, nf);
        let data: Vec<f64> = (0..20 * nf).map(|i| (i % 7) as f64 - 3.0).collect();
        let batch = forest
            .predict(&MatrixView::new(&data, 20, nf).unwrap())
            .unwrap();
        assert!(forest.across.get().is_none(), "built by a batch");
        let few = forest
            .predict(&MatrixView::new(&data[..3 * nf], 3, nf).unwrap())
            .unwrap();
        assert!(matches!(forest.across.get(), Some(Some(_))), "not built");
        assert_eq!(values(few), values(batch)[..3]);

        let prepared = regressor(40, nf);
        assert!(prepared.prepare_few_rows());
        assert!(matches!(prepared.across.get(), Some(Some(_))));
    }

    /// The refused value named is the first one in row-major order, wherever it falls among
    /// the checked chunks; what each `Finite` refuses is as before.
    #[test]
    fn to_f32_names_the_first_refused_value() {
        let (n_rows, n_cols) = (4, 300);
        for at in [0, 1, 255, 256, 257, 599, 1199] {
            let mut data = vec![0.5f64; n_rows * n_cols];
            data[at] = 1e39; // beyond float32: infinity after the cast
            if at + 3 < data.len() {
                data[at + 3] = f64::INFINITY;
            }
            if at > 0 {
                data[at - 1] = f64::NAN; // before it, allowed by AllowNan
            }
            let x = MatrixView::new(&data, n_rows, n_cols).unwrap();
            match to_f32("c", &x, Finite::AllowNan) {
                Err(InferError::InvalidValue { row, column, .. }) => {
                    assert_eq!((row, column), (at / n_cols, at % n_cols), "at {at}");
                }
                other => panic!("at {at}: {other:?}"),
            }
            let nan_first = if at > 0 { at - 1 } else { at };
            match to_f32("c", &x, Finite::All) {
                Err(InferError::InvalidValue { row, column, .. }) => {
                    assert_eq!(row * n_cols + column, nan_first, "at {at}");
                }
                other => panic!("at {at}: {other:?}"),
            }
            let all = to_f32("c", &x, Finite::Any).unwrap();
            assert_eq!(all.len(), data.len());
            assert!(all[at].is_infinite());
        }
        let fine = vec![0.1f64, -2.5, 1e38, 3.0];
        let out = to_f32("c", &MatrixView::new(&fine, 2, 2).unwrap(), Finite::All).unwrap();
        let want: Vec<f32> = fine.iter().map(|v| *v as f32).collect();
        assert_eq!(out, want);
    }
}
