//! HistGradientBoosting{Classifier,Regressor}: the `TreePredictor`s of `_predictors`.
//!
//! X stays float64 (`x <= num_threshold`). NaN goes to the side `missing_go_to_left` names.
//! Categorical splits test the category's bit in the node's `raw_left_cat_bitsets` row;
//! a category that is known (in `_bin_mapper.bin_thresholds_`) but not in the left set
//! goes right; negative and unknown categories are treated as missing. Categories are
//! converted to a byte as scikit-learn's Cython code does on x86-64 (truncation, then the
//! low 8 bits). When the estimator has a `_preprocessor` (categorical features given by
//! name or detected from dtypes), X goes through it first, as scikit-learn does.
//! Raw predictions are `0 + baseline`, then each predictor's value added in iteration
//! order: bit-identical to scikit-learn.
//!
//! Models without categorical splits are evaluated on integer codes of the rows with bit
//! vectors (`quant.rs`) for 8 rows and more, when their trees fit that layout (at most 32
//! leaves, 255 thresholds a column), and otherwise walked in [`Tree`]'s layout (float64
//! thresholds, rows stepped in lanes, see `tree.rs`); the node-by-node walk of
//! [`Hist::value`] remains for categorical splits and is the reference both are tested
//! against.

use skvault_format::Node;
use skvault_frame::Frame;

use crate::boosting::proba_from_raw;
use crate::classes::{read_classes, Classes};
use crate::error::{malformed, unsupported, Result};
use crate::estimator::{
    call, not_available, numeric_input, transform_frame, Boxed, BuildNested, Estimator, Method,
    Output, PREDICT_ONLY, SCORED_CLASSIFIER,
};
use crate::forest::{argmax_rows, row_leaves, run_blocks, run_blocks_of};
use crate::matrix::{check_input, Finite, Matrix, MatrixView, Prediction};
use crate::numeric::RowSum;
use crate::quant::{QuantForest, QuantSplit};
use crate::state::{seq_items, Obj};
use crate::tree::{Rows, SplitNode, Tree};

const CLASSIFIER: &str =
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier";
const REGRESSOR: &str =
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor";
const PREDICTOR: &str = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor";

type Bitset = [u32; 8];

/// `nested` builds the `_preprocessor` (a ColumnTransformer) when there is one.
pub(crate) fn build(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        CLASSIFIER => Box::new(hist(o, true, nested)?),
        REGRESSOR => Box::new(hist(o, false, nested)?),
        _ => return Ok(None),
    };
    Ok(Some(est))
}

#[derive(Debug, Clone, Copy)]
enum Split {
    Leaf,
    Numeric,
    Categorical,
}

#[derive(Debug, Clone, Copy)]
struct HistNode {
    value: f64,
    threshold: f64,
    feature: u32,
    left: u32,
    right: u32,
    bitset: u32,
    split: Split,
    missing_left: bool,
}

#[derive(Debug)]
pub(crate) struct HistTree {
    nodes: Vec<HistNode>,
    left_cats: Vec<Bitset>,
}

fn in_bitset(b: &Bitset, v: u8) -> bool {
    (b[usize::from(v / 32)] >> (v % 32)) & 1 == 1
}

/// `<unsigned char>x` for a non-negative double, as compiled for x86-64: truncation to a
/// 32-bit integer (out of range gives 0x80000000), then the low byte.
fn category_byte(x: f64) -> u8 {
    let i: i32 = if x < 2_147_483_648.0 {
        x as i32
    } else {
        i32::MIN
    };
    i as u8
}

#[derive(Debug, Clone, Copy)]
enum Link {
    Identity,
    Exp,
}

#[derive(Debug)]
struct Hist {
    class: String,
    n_features: usize,
    preprocessor: Option<Boxed>,
    /// Columns after preprocessing.
    n_columns: usize,
    /// Iteration-major, `k` per iteration.
    trees: Vec<HistTree>,
    /// The same trees laid out for traversal in lanes (see [`Tree`]), when no node splits
    /// on a category.
    fast: Option<Vec<Tree<f64>>>,
    /// The same trees over integer-coded rows (see `quant.rs`), for blocks of rows, when they
    /// fit that layout.
    quant: Option<QuantForest>,
    k: usize,
    baseline: Vec<f64>,
    /// Known categories of each categorical column, and the column -> bitset map.
    known: Vec<Bitset>,
    known_index: Vec<Option<usize>>,
    classes: Option<Classes>,
    link: Link,
}

fn bitsets(o: &Obj<'_, '_>, name: &str) -> Result<Vec<Bitset>> {
    let (shape, data) = o.ctx.i64_array(o.req(name)?, &o.sub(name))?;
    match shape.as_slice() {
        [_, 8] => {}
        other => {
            return Err(malformed(
                &o.sub(name),
                format!("shape {other:?}, expected (n, 8)"),
            ))
        }
    }
    data.chunks_exact(8)
        .map(|c| {
            let mut b = [0u32; 8];
            for (dst, v) in b.iter_mut().zip(c) {
                *dst = u32::try_from(*v).map_err(|_| malformed(&o.sub(name), "not a u32"))?;
            }
            Ok(b)
        })
        .collect()
}

pub(crate) fn predictor(
    o: &Obj<'_, '_>,
    n_columns: usize,
    categorical: &[bool],
) -> Result<HistTree> {
    if o.class() != PREDICTOR {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some("in _predictors".into()),
        ));
    }
    let rec = o.ctx.records(o.req("nodes")?, &o.sub("nodes"))?;
    let n = rec.len;
    if n == 0 || n >= u32::MAX as usize {
        return Err(malformed(&o.sub("nodes"), format!("{n} nodes")));
    }
    let value = rec.f64_column("value")?;
    let feature = rec.i64_column("feature_idx")?;
    let threshold = rec.f64_column("num_threshold")?;
    let missing = rec.i64_column("missing_go_to_left")?;
    let left = rec.i64_column("left")?;
    let right = rec.i64_column("right")?;
    let is_leaf = rec.i64_column("is_leaf")?;
    let is_cat = rec.i64_column("is_categorical")?;
    let bitset = rec.i64_column("bitset_idx")?;
    let left_cats = bitsets(o, "raw_left_cat_bitsets")?;
    let path = o.sub("nodes");
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mut node = HistNode {
            value: value[i],
            threshold: threshold[i],
            feature: 0,
            left: 0,
            right: 0,
            bitset: 0,
            split: Split::Leaf,
            missing_left: missing[i] != 0,
        };
        if is_leaf[i] == 0 {
            // Children after their parent (the predictor is written in preorder): traversal ends.
            let ok = |c: i64| c > i as i64 && (c as u64) < n as u64;
            if !ok(left[i]) || !ok(right[i]) {
                return Err(malformed(&path, format!("node {i}: children out of order")));
            }
            let f = usize::try_from(feature[i])
                .ok()
                .filter(|f| *f < n_columns)
                .ok_or_else(|| malformed(&path, format!("node {i}: feature {}", feature[i])))?;
            node.feature = f as u32;
            node.left = left[i] as u32;
            node.right = right[i] as u32;
            node.split = if is_cat[i] != 0 {
                let b = usize::try_from(bitset[i])
                    .ok()
                    .filter(|b| *b < left_cats.len());
                if b.is_none() || !categorical.get(f).copied().unwrap_or(false) {
                    return Err(malformed(&path, format!("node {i}: bad categorical split")));
                }
                node.bitset = bitset[i] as u32;
                Split::Categorical
            } else {
                Split::Numeric
            };
        }
        nodes.push(node);
    }
    Ok(HistTree { nodes, left_cats })
}

/// The tree in [`Tree`]'s layout, or `None` if it has a categorical split. Numeric nodes
/// compare as [`Hist::value`] does: NaN to the `missing_go_to_left` side, else
/// `x <= threshold`, both in float64.
fn fast_tree(tree: &HistTree, n_columns: usize) -> Option<Tree<f64>> {
    if n_columns == 0 {
        return None;
    }
    let nodes = tree
        .nodes
        .iter()
        .map(|n| match n.split {
            Split::Leaf => Some(None),
            Split::Numeric => Some(Some(SplitNode {
                threshold: n.threshold,
                feature: n.feature,
                missing_left: n.missing_left,
                left: n.left as usize,
                right: n.right as usize,
            })),
            Split::Categorical => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Tree::from_nodes(&nodes, n_columns, |i| tree.nodes[i].value)
}

/// The trees over integer-coded rows, or `None` if one of them does not fit that layout (see
/// `quant.rs`) or has a categorical split.
fn quant_forest(trees: &[HistTree], n_columns: usize) -> Option<QuantForest> {
    let nodes = trees
        .iter()
        .map(|t| {
            t.nodes
                .iter()
                .map(|n| match n.split {
                    Split::Leaf => Some(None),
                    Split::Numeric => Some(Some(QuantSplit {
                        threshold: n.threshold,
                        feature: n.feature as usize,
                        missing_left: n.missing_left,
                        left: n.left as usize,
                        right: n.right as usize,
                    })),
                    Split::Categorical => None,
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    QuantForest::new(&nodes, n_columns, |t, i| trees[t].nodes[i].value)
}

fn hist(o: &Obj<'_, '_>, classifier: bool, nested: BuildNested) -> Result<Hist> {
    let n_features = o.usize("n_features_in_")?;
    let preprocessor = match o.attr("_preprocessor") {
        None | Some(Node::None) => None,
        Some(node) => Some(nested(o.ctx, node, &o.sub("_preprocessor"))?),
    };
    let mapper = Obj::new(o.ctx, o.object("_bin_mapper")?, o.sub("_bin_mapper"));
    let categorical: Vec<bool> = match mapper.attr("is_categorical_") {
        None | Some(Node::None) => vec![false; n_features],
        Some(node) => {
            let (_, v) = o.ctx.i64_array(node, &mapper.sub("is_categorical_"))?;
            v.into_iter().map(|b| b != 0).collect()
        }
    };
    let n_columns = categorical.len();
    if preprocessor.is_none() && n_columns != n_features {
        return Err(malformed(
            &mapper.path,
            "is_categorical_ does not match n_features_in_",
        ));
    }
    // make_known_categories_bitsets(): the known raw categories of each categorical column.
    let thresholds = seq_items(o.ctx, mapper.req("bin_thresholds_")?)
        .filter(|t| t.len() == n_columns)
        .ok_or_else(|| malformed(&mapper.sub("bin_thresholds_"), "one entry per column"))?;
    let mut known = Vec::new();
    let mut known_index = vec![None; n_columns];
    for (f, is_cat) in categorical.iter().enumerate() {
        if !is_cat {
            continue;
        }
        let cats = o
            .ctx
            .f64_array(thresholds[f], &mapper.sub("bin_thresholds_"))?
            .data;
        let mut b = [0u32; 8];
        for c in cats {
            let v = category_byte(c.max(0.0));
            b[usize::from(v / 32)] |= 1 << (v % 32);
        }
        known_index[f] = Some(known.len());
        known.push(b);
    }
    let classes = if classifier {
        Some(read_classes(o.ctx, o.req("classes_")?, &o.sub("classes_"))?)
    } else {
        None
    };
    let k = o.usize("n_trees_per_iteration_")?;
    let expected_k = match &classes {
        Some(c) if c.len() == 2 => 1,
        Some(c) => c.len(),
        None => 1,
    };
    if k != expected_k || k == 0 {
        return Err(malformed(&o.path, format!("{k} trees per iteration")));
    }
    let baseline = o.f64_array("_baseline_prediction")?;
    if baseline.data.len() != k {
        return Err(malformed(
            &o.sub("_baseline_prediction"),
            "one value per tree of an iteration",
        ));
    }
    let link = if classifier {
        Link::Identity
    } else {
        let loss = o.object("_loss")?;
        let loss = Obj::new(o.ctx, loss, o.sub("_loss"));
        match loss.object("link")?.class.as_str() {
            "sklearn._loss.link.IdentityLink" => Link::Identity,
            "sklearn._loss.link.LogLink" => Link::Exp,
            other => return Err(unsupported(other, &loss.sub("link"), None)),
        }
    };
    let mut trees = Vec::new();
    for (i, iteration) in o.seq("_predictors")?.into_iter().enumerate() {
        let p = format!("{}/{i}", o.sub("_predictors"));
        let members = seq_items(o.ctx, iteration)
            .filter(|m| m.len() == k)
            .ok_or_else(|| malformed(&p, format!("expected {k} predictors")))?;
        for (j, m) in members.into_iter().enumerate() {
            let pj = format!("{p}/{j}");
            let obj = o
                .ctx
                .object(m)
                .ok_or_else(|| malformed(&pj, "expected a TreePredictor"))?;
            trees.push(predictor(
                &Obj::new(o.ctx, obj, pj),
                n_columns,
                &categorical,
            )?);
        }
    }
    let fast = trees
        .iter()
        .map(|t| fast_tree(t, n_columns))
        .collect::<Option<Vec<_>>>();
    let quant = quant_forest(&trees, n_columns);
    Ok(Hist {
        class: o.class().to_string(),
        n_features,
        preprocessor,
        n_columns,
        trees,
        fast,
        quant,
        k,
        baseline: baseline.data,
        known,
        known_index,
        classes,
        link,
    })
}

impl Hist {
    fn value(&self, tree: &HistTree, row: &[f64]) -> f64 {
        // Indices were validated at open time: children point forward, features are below
        // the row length, bitset indices are within their tables.
        let mut node = &tree.nodes[0];
        loop {
            let go_left = match node.split {
                Split::Leaf => return node.value,
                Split::Numeric => {
                    let v = row[node.feature as usize];
                    if v.is_nan() {
                        node.missing_left
                    } else {
                        v <= node.threshold
                    }
                }
                Split::Categorical => {
                    let v = row[node.feature as usize];
                    if v.is_nan() || v < 0.0 {
                        node.missing_left
                    } else {
                        let c = category_byte(v);
                        let known = self.known_index[node.feature as usize]
                            .is_some_and(|k| in_bitset(&self.known[k], c));
                        if in_bitset(&tree.left_cats[node.bitset as usize], c) {
                            true
                        } else if known {
                            false
                        } else {
                            node.missing_left
                        }
                    }
                }
            };
            node = &tree.nodes[if go_left { node.left } else { node.right } as usize];
        }
    }

    fn raw(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(&self.class, x, self.n_features, Finite::Any)?;
        match &self.preprocessor {
            Some(p) => self.raw_encoded(&p.transform(x)?.view()),
            None => self.raw_encoded(x),
        }
    }

    /// Raw predictions from the columns the trees split on (the preprocessor's output).
    fn raw_encoded(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if x.n_cols() != self.n_columns {
            return Err(malformed(
                &self.class,
                "the preprocessor returned the wrong width",
            ));
        }
        let (k, nc) = (self.k, self.n_columns);
        let mut out = Matrix::zeros(x.n_rows(), k);
        for row in out.data.chunks_exact_mut(k) {
            for (o, b) in row.iter_mut().zip(&self.baseline) {
                *o += b;
            }
        }
        let data = x.data();
        if let (Some(quant), true) = (&self.quant, x.n_rows() >= QUANT_MIN_ROWS) {
            run_blocks_of(
                QUANT_BLOCK,
                data,
                nc,
                &mut out.data,
                k,
                quant.n_trees(),
                |rows, acc| quant.add_values(rows, k, acc),
            );
            return Ok(out);
        }
        if let Some(fast) = &self.fast {
            let rows_per_block = 8 * SUB_BLOCK;
            run_blocks_of(
                rows_per_block,
                data,
                nc,
                &mut out.data,
                k,
                fast.len(),
                |rows, acc| fast_block(fast, k, nc, rows, acc),
            );
            return Ok(out);
        }
        let block = |rows: &[f64], acc: &mut [f64]| {
            for iteration in self.trees.chunks_exact(k) {
                for (j, tree) in iteration.iter().enumerate() {
                    for (row, a) in rows.chunks_exact(nc.max(1)).zip(acc.chunks_exact_mut(k)) {
                        a[j] += self.value(tree, row);
                    }
                }
            }
        };
        run_blocks(data, nc, &mut out.data, k, self.trees.len(), block);
        Ok(out)
    }
}

/// Adds the trees' values (iteration-major, `k` per iteration) to the raw predictions
/// `acc` of rows `x` (`nc` columns), each in iteration order, as [`Hist::value`]'s loop.
fn fast_block(trees: &[Tree<f64>], k: usize, nc: usize, x: &[f64], acc: &mut [f64]) {
    let n_rows = acc.len() / k;
    if n_rows < 8 {
        // Few rows: trees side by side (see `row_leaves`). Tree `t` adds to column `t % k`,
        // so each column still sums in iteration order.
        let mut leaf = vec![0u32; trees.len()];
        let mut one = Rows::default();
        for (r, a) in acc.chunks_exact_mut(k).enumerate() {
            one.fill_one(&x[r * nc..(r + 1) * nc], nc, |v| v);
            row_leaves(trees, &one, &mut leaf);
            for (t, (tree, l)) in trees.iter().zip(&leaf).enumerate() {
                a[t % k] += tree.values(*l)[0];
            }
        }
        return;
    }
    // Sub-blocks small enough that their rows stay in the first-level cache while every
    // tree walks them (the trees, a few kilobytes each, come from the second level).
    let mut rows = Rows::default();
    let mut leaf = Vec::new();
    for (xs, accs) in x.chunks(SUB_BLOCK * nc).zip(acc.chunks_mut(SUB_BLOCK * k)) {
        let n = accs.len() / k;
        rows.fill(xs, n, nc, |v| v);
        leaf.resize(rows.padded_rows(), 0);
        for iteration in trees.chunks_exact(k) {
            for (j, tree) in iteration.iter().enumerate() {
                tree.leaves(&rows, &mut leaf);
                for (l, a) in leaf.iter().zip(accs.chunks_exact_mut(k)) {
                    a[j] += tree.values(*l)[0];
                }
            }
        }
    }
}

/// Most rows per block of the coded layout (a block codes its rows once, 16 at a time).
const QUANT_BLOCK: usize = 1024;

/// Rows from which the coded layout is used: fewer go through [`fast_block`],
/// which steps trees side by side for a single row.
const QUANT_MIN_ROWS: usize = 8;

/// Rows per sub-block of [`fast_block`]: 128 rows of 32 float64 are 32 KiB. 10,000 rows of
/// bench/native.py's model took 5.23 ms in sub-blocks of 128 and 5.61 ms in one (one thread).
const SUB_BLOCK: usize = 128;

fn bitset_members(b: &Bitset) -> Vec<u8> {
    (0..=255u8).filter(|v| in_bitset(b, *v)).collect()
}

impl Hist {
    fn tree_view(&self, tree: &HistTree) -> crate::view::HistTreeView {
        use crate::view::HistNodeView;
        let nodes = tree
            .nodes
            .iter()
            .map(|n| match n.split {
                Split::Leaf => HistNodeView::Leaf(n.value),
                Split::Numeric => HistNodeView::Numeric {
                    feature: n.feature as usize,
                    threshold: n.threshold,
                    missing_left: n.missing_left,
                    left: n.left as usize,
                    right: n.right as usize,
                },
                Split::Categorical => HistNodeView::Categorical {
                    feature: n.feature as usize,
                    left_categories: tree
                        .left_cats
                        .get(n.bitset as usize)
                        .map(bitset_members)
                        .unwrap_or_default(),
                    known_categories: self
                        .known_index
                        .get(n.feature as usize)
                        .copied()
                        .flatten()
                        .and_then(|k| self.known.get(k))
                        .map(bitset_members)
                        .unwrap_or_default(),
                    missing_left: n.missing_left,
                    left: n.left as usize,
                    right: n.right as usize,
                },
            })
            .collect();
        crate::view::HistTreeView { nodes }
    }
}

impl Estimator for Hist {
    fn class(&self) -> &str {
        &self.class
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::HistGradientBoosting {
            class: &self.class,
            n_features: self.n_features,
            preprocessor: self.preprocessor.as_ref().map(|p| Box::new(p.view())),
            trees: self.trees.iter().map(|t| self.tree_view(t)).collect(),
            k: self.k,
            baseline: &self.baseline,
            classes: self.classes.as_ref(),
            exp_link: matches!(self.link, Link::Exp),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        if self.classes.is_some() {
            SCORED_CLASSIFIER
        } else {
            PREDICT_ONLY
        }
    }
    fn classes(&self) -> Option<&Classes> {
        self.classes.as_ref()
    }
    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        Ok(self.predict_raw(self.raw(x)?))
    }
    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.check_scored(Method::DecisionFunction)?;
        Ok(self.decision_raw(self.raw(x)?))
    }
    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.check_scored(Method::PredictProba)?;
        Ok(self.proba_raw(self.raw(x)?))
    }
    /// The columns the trees split on, when there are no categorical splits (their known
    /// categories are per column) and no preprocessor (it reads every column).
    fn used_columns(&self) -> Option<Vec<usize>> {
        if self.preprocessor.is_some() || self.fast.is_none() {
            return None;
        }
        let mut used = vec![false; self.n_columns];
        for n in self.trees.iter().flat_map(|t| &t.nodes) {
            if !matches!(n.split, Split::Leaf) {
                *used.get_mut(n.feature as usize)? = true;
            }
        }
        let used: Vec<usize> = (0..self.n_columns).filter(|&f| used[f]).collect();
        (used.len() < self.n_columns).then_some(used)
    }
    fn read_only(&mut self, used: &[usize]) -> bool {
        if self.preprocessor.is_some() {
            return false;
        }
        let Some(map) = crate::estimator::places(used, self.n_columns) else {
            return false;
        };
        let mut trees = Vec::with_capacity(self.trees.len());
        for t in &self.trees {
            let mut nodes = t.nodes.clone();
            for n in nodes.iter_mut().filter(|n| !matches!(n.split, Split::Leaf)) {
                match map.get(n.feature as usize).copied().flatten() {
                    Some(f) => n.feature = f,
                    None => return false,
                }
            }
            let left_cats = t.left_cats.clone();
            trees.push(HistTree { nodes, left_cats });
        }
        let fast = trees.iter().map(|t| fast_tree(t, used.len())).collect();
        let Some(fast) = fast else {
            return false;
        };
        self.quant = quant_forest(&trees, used.len());
        self.known_index = used.iter().map(|&f| self.known_index[f]).collect();
        self.trees = trees;
        self.fast = Some(fast);
        self.n_features = used.len();
        self.n_columns = used.len();
        true
    }
    /// Text and category columns go through the fitted `_preprocessor` (an
    /// OrdinalEncoder in a ColumnTransformer), as scikit-learn's `_preprocess_X` does.
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        let Some(p) = &self.preprocessor else {
            return call(self, method, &numeric_input(self, frame, cols)?.view());
        };
        if !self.methods().contains(&method) {
            return Err(not_available(&self.class, method));
        }
        let raw = self.raw_encoded(&transform_frame(p.as_ref(), frame, cols)?.view())?;
        Ok(match method {
            Method::Predict => Output::Prediction(self.predict_raw(raw)),
            Method::PredictProba => Output::Matrix(self.proba_raw(raw)),
            _ => Output::Matrix(self.decision_raw(raw)),
        })
    }
}

impl Hist {
    fn check_scored(&self, method: Method) -> Result<()> {
        match self.classes {
            Some(_) => Ok(()),
            None => Err(not_available(&self.class, method)),
        }
    }

    fn predict_raw(&self, mut raw: Matrix) -> Prediction {
        if self.classes.is_none() {
            if let Link::Exp = self.link {
                raw.data.iter_mut().for_each(|v| *v = v.exp());
            }
            raw.flat = true;
            return Prediction::Values(raw);
        }
        if self.k == 1 {
            return Prediction::Labels(raw.data.iter().map(|v| usize::from(*v > 0.0)).collect());
        }
        Prediction::Labels(argmax_rows(&raw))
    }

    fn decision_raw(&self, mut raw: Matrix) -> Matrix {
        raw.flat = self.k == 1;
        raw
    }

    fn proba_raw(&self, raw: Matrix) -> Matrix {
        // _raw_predict allocates raw predictions in Fortran order.
        proba_from_raw(raw, RowSum::Sequential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use skvault_format::fuzzing::Rng;

    /// A numeric tree in preorder with up to `budget` leaves; thresholds come from `cuts` so
    /// that rows hit them exactly too.
    fn grow(rng: &mut Rng, nodes: &mut Vec<HistNode>, budget: usize, nc: usize, cuts: &[f64]) {
        let me = nodes.len();
        nodes.push(HistNode {
            value: (rng.below(2001) as f64 - 1000.0) / 997.0,
            threshold: 0.0,
            feature: 0,
            left: 0,
            right: 0,
            bitset: 0,
            split: Split::Leaf,
            missing_left: false,
        });
        if budget < 2 || rng.below(5) == 0 {
            return;
        }
        let left_budget = 1 + rng.below(budget - 1);
        nodes[me].left = nodes.len() as u32;
        grow(rng, nodes, left_budget, nc, cuts);
        nodes[me].right = nodes.len() as u32;
        grow(rng, nodes, budget - left_budget, nc, cuts);
        nodes[me].split = Split::Numeric;
        nodes[me].feature = rng.below(nc) as u32;
        nodes[me].threshold = cuts[rng.below(cuts.len())];
        nodes[me].missing_left = rng.below(2) == 0;
    }

    fn model(k: usize, n_trees: usize, nc: usize, rng: &mut Rng) -> Hist {
        let cuts = [-1.5, -0.25, 0.0, 0.1, 0.7, 2.0, f64::INFINITY];
        let trees: Vec<HistTree> = (0..n_trees * k)
            .map(|_| {
                let mut nodes = Vec::new();
                grow(rng, &mut nodes, 31, nc, &cuts);
                HistTree {
                    nodes,
                    left_cats: Vec::new(),
                }
            })
            .collect();
        let fast = trees
            .iter()
            .map(|t| fast_tree(t, nc))
            .collect::<Option<Vec<_>>>();
        assert!(fast.is_some());
        let quant = quant_forest(&trees, nc);
        Hist {
            class: CLASSIFIER.into(),
            n_features: nc,
            preprocessor: None,
            n_columns: nc,
            trees,
            fast,
            quant,
            k,
            baseline: (0..k).map(|j| j as f64 * 0.3 - 0.1).collect(),
            known: Vec::new(),
            known_index: vec![None; nc],
            classes: None,
            link: Link::Identity,
        }
    }

    /// The integer-coded layout and the lane layout give bit-identical raw predictions to the
    /// node-by-node walk, for single rows and blocks, with and without NaN, on values equal
    /// to the thresholds.
    #[test]
    fn fast_layouts_match_the_node_walk() {
        let mut rng = Rng::new(0x1234_5678);
        let values = [
            -2.0,
            -1.5,
            -0.25,
            0.0,
            -0.0,
            0.1,
            0.5,
            0.7,
            2.0,
            3.0,
            f64::INFINITY,
        ];
        for (k, nc) in [(1, 3), (3, 5), (1, 20), (2, 70)] {
            let mut hist = model(k, 40, nc, &mut rng);
            for (n_rows, nan) in [(1, false), (1, true), (5, true), (300, false), (300, true)] {
                let x: Vec<f64> = (0..n_rows * nc)
                    .map(|_| {
                        if nan && rng.below(6) == 0 {
                            f64::NAN
                        } else {
                            values[rng.below(values.len())]
                        }
                    })
                    .collect();
                let view = MatrixView::new(&x, n_rows, nc).unwrap();
                assert!(hist.quant.is_some());
                let quant = hist.raw_encoded(&view).unwrap();
                let saved_quant = hist.quant.take();
                let fast = hist.raw_encoded(&view).unwrap();
                let saved = hist.fast.take();
                let slow = hist.raw_encoded(&view).unwrap();
                hist.fast = saved;
                hist.quant = saved_quant;
                let bits = |m: &Matrix| m.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let what = format!("k={k} nc={nc} rows={n_rows} nan={nan}");
                assert_eq!(bits(&fast), bits(&slow), "{what}");
                assert_eq!(bits(&quant), bits(&slow), "{what}");
            }
        }
    }

    /// A model made to read its used columns only gives the same raw predictions from
    /// those columns as the whole model from all of them.
    #[test]
    fn a_model_reading_its_used_columns_only_predicts_the_same() {
        let nc = 200;
        let mut whole = model(2, 3, nc, &mut Rng::new(0xfeed));
        let mut narrow = model(2, 3, nc, &mut Rng::new(0xfeed));
        let used = whole.used_columns().unwrap();
        assert!(used.len() < nc / 2, "{} of {nc}", used.len());
        assert!(narrow.read_only(&used));
        assert_eq!(narrow.n_features(), used.len());
        assert_eq!(narrow.used_columns(), None);
        let mut rng = Rng::new(7);
        let n_rows = 100;
        let x: Vec<f64> = (0..n_rows * nc)
            .map(|_| (rng.below(7) as f64 - 3.0) * 0.4)
            .collect();
        let picked: Vec<f64> = x
            .chunks_exact(nc)
            .flat_map(|row| used.iter().map(|&c| row[c]))
            .collect();
        let want = whole
            .raw_encoded(&MatrixView::new(&x, n_rows, nc).unwrap())
            .unwrap();
        let got = narrow
            .raw_encoded(&MatrixView::new(&picked, n_rows, used.len()).unwrap())
            .unwrap();
        assert_eq!(want.data, got.data);
        // Columns that are not all the used ones are refused, the model unchanged.
        assert!(!whole.read_only(&used[1..]));
        assert!(!whole.read_only(&[nc]));
        assert_eq!(whole.n_features(), nc);
        assert!(whole.fast.is_some());
    }
}
