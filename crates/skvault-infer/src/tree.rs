//! scikit-learn's `Tree` (the fitted `tree_` of every decision tree), re-laid out for inference.
//!
//! scikit-learn casts X to float32 and compares `float32(x) <= threshold` with a float64
//! threshold; a NaN goes to the side named by the node's `missing_go_to_left`. Here each
//! threshold is replaced once, at open time, by the largest float32 not above it: for every
//! float32 `x`, `x <= floor32(t)` exactly when `f64(x) <= t`, so traversal compares float32
//! with float32 and nodes shrink to 16 bytes (threshold, feature, left, right), contiguous.
//!
//! Split nodes come first, in scikit-learn's order; each leaf follows as a node whose two
//! children are itself, so a row that reached a leaf stays there whatever it is compared
//! with. Traversal is then the same branch-free step repeated the tree's depth times: rows
//! go in lanes of 16, stepped together, and no lane ever waits on a branch. A branch on
//! "this row reached a leaf" mispredicts about once per row and tree, and every mispredict
//! throws away the other lanes' memory loads in flight; the fixed step count costs a few
//! extra (cache-hot) steps for the rows whose leaf is shallow, far less than those flushes.
//!
//! The same layout serves HistGradientBoosting's predictors with float64 thresholds
//! (`Tree<f64>`: they compare the float64 X). Rows are copied into [`Rows`], padded to a
//! power-of-two stride and to whole groups of lanes, so that the step's loads need no bounds
//! check the compiler cannot remove, and rows without NaN (checked while copying) take a step
//! without the NaN test. A step is then about a dozen instructions: on HistGradientBoosting
//! (200 trees of 31 leaves, 10,000 rows, one thread) this took 6.4 ms where the 8-lane
//! checked step took 8.3 ms and 16 lanes 5.6 ms (32 lanes: 7.1 ms), measured back to back.

use skvault_format::dtype::{ByteOrder, Kind};
use skvault_format::DType;

use crate::error::{malformed, Result};
use crate::state::{field8, Obj, Records, LE_F8, LE_I8};

/// Set in `FastNode::feature` of split nodes that send NaN to the left.
pub(crate) const MISSING_LEFT: u32 = 1 << 31;
const FEATURE_MASK: u32 = !MISSING_LEFT;
/// Rows stepped together.
const LANES: usize = 16;

impl<T: Threshold> FastNode<T> {
    /// The node a row whose value of this node's feature is `x` goes to (itself for a
    /// leaf). Without `NAN` the caller knows that no value is NaN.
    #[inline(always)]
    fn next<const NAN: bool>(&self, x: T) -> u32 {
        // Branch-free: the comparison is a coin flip, a branch on it mispredicts half the
        // time. `|` and `&` on bools do not short-circuit.
        let left = if NAN {
            (x <= self.threshold) | (x.is_nan() & (self.feature >= MISSING_LEFT))
        } else {
            x <= self.threshold
        };
        let mask = 0u32.wrapping_sub(u32::from(left));
        self.right ^ ((self.left ^ self.right) & mask)
    }
}

/// Rows laid out for traversal: each padded to `stride` values (a power of two, at least
/// the row length), and padded with rows of zeros to whole groups of lanes. `nan` says
/// whether any value is NaN (traversal skips NaN handling when none is).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows<T> {
    data: Vec<T>,
    stride: usize,
    nan: bool,
}

impl<T: Threshold> Rows<T> {
    /// `n_rows` rows `src` (`nf` values each) converted by `cast`.
    pub fn new<S: Copy>(src: &[S], n_rows: usize, nf: usize, cast: impl Fn(S) -> T) -> Rows<T> {
        let mut rows = Rows::default();
        rows.fill(src, n_rows, nf, cast);
        rows
    }

    /// Refills with `n_rows` rows `src` (`nf` values each), reusing the buffer.
    pub fn fill<S: Copy>(&mut self, src: &[S], n_rows: usize, nf: usize, cast: impl Fn(S) -> T) {
        // At least 8 values, so that the common strides are few (see `Tree::leaves`).
        let stride = nf.max(8).next_power_of_two();
        let padded = n_rows.div_ceil(LANES).max(1) * LANES;
        self.data.clear();
        self.data.resize(padded * stride, T::default());
        let mut nan = false;
        if nf > 0 {
            for (dst, row) in self.data.chunks_exact_mut(stride).zip(src.chunks_exact(nf)) {
                for (d, v) in dst.iter_mut().zip(row) {
                    *d = cast(*v);
                    nan |= d.is_nan();
                }
            }
        }
        self.stride = stride;
        self.nan = nan;
    }

    /// Refills with the single row `src` and no padding rows, for [`Tree::leaves_across`]
    /// (which reads row 0 alone), not for [`Tree::leaves`] (which steps whole groups of
    /// rows). A one-hot encoded row is often thousands of values wide: 16 rows of padding
    /// would be a quarter of a megabyte to clear for every single-row call.
    pub fn fill_one<S: Copy>(&mut self, src: &[S], nf: usize, cast: impl Fn(S) -> T) {
        let stride = nf.max(8).next_power_of_two();
        self.data.clear();
        self.data.resize(stride, T::default());
        let mut nan = false;
        for (d, v) in self.data.iter_mut().zip(src.iter().take(nf)) {
            *d = cast(*v);
            nan |= d.is_nan();
        }
        self.stride = stride;
        self.nan = nan;
    }

    /// The first row, padded to the stride (a power of two).
    pub fn values(&self) -> &[T] {
        self.data.get(..self.stride).unwrap_or(&[])
    }

    /// Whether any value is NaN.
    pub fn has_nan(&self) -> bool {
        self.nan
    }

    /// Rows, padding included: the length of the `leaf` slice traversal fills.
    pub fn padded_rows(&self) -> usize {
        self.data.len() / self.stride.max(1)
    }
}

/// What a node's threshold is compared with: float32 for scikit-learn's `Tree`, float64
/// for HistGradientBoosting's predictors (which compare the float64 X).
pub(crate) trait Threshold: Copy + PartialOrd + Default + std::fmt::Debug {
    fn is_nan(self) -> bool;
}

impl Threshold for f32 {
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Threshold for f64 {
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// One node. A split node's `left` and `right` are above its own index (so traversal
/// reaches a leaf); a leaf's are its own index (so it stays there).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct FastNode<T> {
    threshold: T,
    feature: u32,
    left: u32,
    right: u32,
}

/// What the leaf values are, which decides their width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeKind {
    /// `n_outputs == 1`; each leaf holds `value[node, 0, :n_classes]`.
    Classifier { n_classes: usize },
    /// Each leaf holds `value[node, :, 0]` (one value per output).
    Regressor { n_outputs: usize },
}

/// Leaf values other than the tree's own `value` array.
pub(crate) enum LeafValues<'a> {
    /// `value[node]` of a one-output regression tree, times `scale` (gradient boosting).
    Scaled(f64),
    /// One value per node, given by the caller (isolation forest path lengths).
    PerNode(&'a dyn Fn(usize) -> Option<f64>),
}

/// A validated tree: every split node's children point forward, every leaf points to
/// itself, every feature index is below `n_features`, every leaf has `width` values.
#[derive(Debug, Clone)]
pub(crate) struct Tree<T = f32> {
    /// `splits` split nodes, then one node per leaf (leaf `k` is node `splits + k`).
    nodes: Vec<FastNode<T>>,
    splits: u32,
    /// The most steps from the root to a leaf.
    depth: u32,
    /// Steps between checks for "every lane is at a leaf": few for shallow, lopsided trees
    /// (gradient boosting's), more for deep ones whose rows mostly go deep.
    round: u32,
    /// Leaf values, `width` per leaf, in leaf order (scikit-learn's node order).
    values: Vec<f64>,
    width: usize,
}

/// The largest float32 that is not above `t` (NaN stays NaN: it compares false either way).
pub fn floor_f32(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) > t {
        // r > t, so r is not -inf; step one float32 towards -inf.
        if r == 0.0 {
            -f32::from_bits(1)
        } else if r > 0.0 {
            f32::from_bits(r.to_bits() - 1)
        } else {
            f32::from_bits(r.to_bits() + 1)
        }
    } else {
        r
    }
}

const TREE_LEAF: i64 = -1;

/// The fields of a tree's node records that prediction reads, one vector each.
struct NodeColumns {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<i64>,
    threshold: Vec<f64>,
    missing_left: Vec<i64>,
}

impl NodeColumns {
    fn read(nodes: &Records<'_>) -> Result<NodeColumns> {
        const U1: DType = DType::Scalar {
            order: ByteOrder::NotApplicable,
            kind: Kind::UInt,
            count: 1,
        };
        let links = [
            ("left_child", LE_I8),
            ("right_child", LE_I8),
            ("feature", LE_I8),
            ("threshold", LE_F8),
        ];
        // Trees written before scikit-learn 1.3 have no missing-value support: NaN goes right.
        let has_missing = nodes.has("missing_go_to_left");
        // The node records are most of a forest's file: one pass reading every field where
        // it lies, when they have scikit-learn's dtypes, instead of a pass per column.
        let one_pass = if has_missing {
            let [l, r, f, t] = links;
            nodes
                .fields_of([l, r, f, t, ("missing_go_to_left", U1)])
                .map(|(whole, size, [l, r, f, t, m])| (whole, size, [l, r, f, t], Some(m)))
        } else {
            nodes
                .fields_of(links)
                .map(|(whole, size, at)| (whole, size, at, None))
        };
        let Some((whole, itemsize, [l, r, f, t], m)) = one_pass else {
            return Ok(NodeColumns {
                left: nodes.i64_column("left_child")?,
                right: nodes.i64_column("right_child")?,
                feature: nodes.i64_column("feature")?,
                threshold: nodes.f64_column("threshold")?,
                missing_left: if has_missing {
                    nodes.i64_column("missing_go_to_left")?
                } else {
                    vec![0; nodes.len]
                },
            });
        };
        let mut out = NodeColumns {
            left: Vec::with_capacity(nodes.len),
            right: Vec::with_capacity(nodes.len),
            feature: Vec::with_capacity(nodes.len),
            threshold: Vec::with_capacity(nodes.len),
            missing_left: Vec::with_capacity(nodes.len),
        };
        for record in whole.chunks_exact(itemsize) {
            out.left.push(i64::from_le_bytes(field8(record, l)));
            out.right.push(i64::from_le_bytes(field8(record, r)));
            out.feature.push(i64::from_le_bytes(field8(record, f)));
            out.threshold.push(f64::from_le_bytes(field8(record, t)));
            let missing = m.and_then(|m| record.get(m)).map_or(0, |b| i64::from(*b));
            out.missing_left.push(missing);
        }
        Ok(out)
    }
}

impl Tree {
    /// Reads `tree_` of a fitted tree estimator (`est`), whose `n_features_in_` is `n_features`.
    pub fn from_estimator(est: &Obj<'_, '_>, n_features: usize, kind: TreeKind) -> Result<Tree> {
        Self::build(est, n_features, kind, None)
    }

    /// A one-output regression tree whose leaves hold `leaves` instead of `value`.
    pub fn with_leaf_values(
        est: &Obj<'_, '_>,
        n_features: usize,
        leaves: LeafValues<'_>,
    ) -> Result<Tree> {
        Self::build(
            est,
            n_features,
            TreeKind::Regressor { n_outputs: 1 },
            Some(leaves),
        )
    }

    fn build(
        est: &Obj<'_, '_>,
        n_features: usize,
        kind: TreeKind,
        leaves: Option<LeafValues<'_>>,
    ) -> Result<Tree> {
        let tree = Obj::new(est.ctx, est.object("tree_")?, est.sub("tree_"));
        if tree.class() != "sklearn.tree._tree.Tree" {
            return Err(malformed(
                &tree.path,
                format!("tree_ is a {}", tree.class()),
            ));
        }
        let path = tree.path.clone();
        let nodes = tree.ctx.records(tree.req("nodes")?, &tree.sub("nodes"))?;
        let n = nodes.len;
        if n == 0 || n >= (FEATURE_MASK as usize) {
            return Err(malformed(&path, format!("{n} nodes")));
        }
        if tree.attr("node_count").is_some() && tree.usize("node_count")? != n {
            return Err(malformed(&path, "node_count differs from the nodes array"));
        }
        let NodeColumns {
            left,
            right,
            feature,
            threshold,
            missing_left,
        } = NodeColumns::read(&nodes)?;
        let values = tree.f64_array("values")?;
        let (n_outputs, max_classes) = match values.shape.as_slice() {
            [rows, o, c] if *rows == n => (*o, *c),
            other => {
                return Err(malformed(
                    &tree.sub("values"),
                    format!("shape {other:?}, expected ({n}, n_outputs, max_n_classes)"),
                ))
            }
        };
        let width = match kind {
            TreeKind::Classifier { n_classes } => {
                if n_outputs != 1 || n_classes > max_classes || n_classes == 0 {
                    return Err(malformed(
                        &tree.sub("values"),
                        format!("values of shape {:?} for {n_classes} classes", values.shape),
                    ));
                }
                n_classes
            }
            TreeKind::Regressor { n_outputs: k } => {
                if n_outputs != k || max_classes != 1 {
                    return Err(malformed(
                        &tree.sub("values"),
                        format!("values of shape {:?} for {k} outputs", values.shape),
                    ));
                }
                k
            }
        };
        let stride = n_outputs * max_classes;
        // The same link and feature checks as `skvault.load`'s (guard::tree): every node is a
        // leaf on both sides or has two children after it, below `n`, so walks end.
        let depth = crate::guard::tree::structure(&left, &right, &feature, n_features, &path)?;
        // Split nodes first, then leaves, each in scikit-learn's order, so a child that
        // follows its parent there also follows it here.
        let is_leaf = |i: usize| left[i] == TREE_LEAF;
        let n_splits = (0..n).filter(|i| !is_leaf(*i)).count() as u32;
        let mut index = Vec::with_capacity(n);
        let (mut next_split, mut next_leaf) = (0u32, n_splits);
        for i in 0..n {
            let counter = if is_leaf(i) {
                &mut next_leaf
            } else {
                &mut next_split
            };
            index.push(*counter);
            *counter += 1;
        }
        let mut fast = Vec::with_capacity(n);
        let mut leaf_nodes = Vec::with_capacity(n - n_splits as usize);
        let mut leaf_values = Vec::new();
        for i in 0..n {
            if is_leaf(i) {
                let row = &values.data[i * stride..(i + 1) * stride];
                match (&leaves, kind) {
                    (Some(LeafValues::Scaled(scale)), _) => leaf_values.push(scale * row[0]),
                    (Some(LeafValues::PerNode(f)), _) => leaf_values.push(
                        f(i).ok_or_else(|| malformed(&path, format!("no value for leaf {i}")))?,
                    ),
                    (None, TreeKind::Classifier { .. }) => {
                        leaf_values.extend_from_slice(&row[..width])
                    }
                    (None, TreeKind::Regressor { .. }) => leaf_values.extend_from_slice(row),
                }
                leaf_nodes.push(FastNode {
                    threshold: 0.0,
                    feature: 0,
                    left: index[i],
                    right: index[i],
                });
                continue;
            }
            // Checked by `structure`: children in (i, n), feature below n_features.
            let (lc, rc, f) = (left[i] as usize, right[i] as usize, feature[i] as u64);
            if f >= u64::from(FEATURE_MASK) {
                return Err(malformed(
                    &path,
                    format!("node {i} splits on feature {f}, beyond what native trees index"),
                ));
            }
            let mut feat = f as u32;
            if missing_left[i] != 0 {
                feat |= MISSING_LEFT;
            }
            fast.push(FastNode {
                threshold: floor_f32(threshold[i]),
                feature: feat,
                left: index[lc],
                right: index[rc],
            });
        }
        fast.extend(leaf_nodes);
        Ok(Tree {
            nodes: fast,
            splits: n_splits,
            // depth < n < FEATURE_MASK, checked above.
            depth: depth as u32,
            round: 4,
            values: leaf_values,
            width,
        })
    }

    /// The nodes as an exporter sees them (see [`crate::view::TreeView`]): the split nodes
    /// first, in their order here (root 0), then the leaves in leaf order, so that every
    /// child still follows its parent. A tree whose root is a leaf is that one leaf.
    pub fn view(&self) -> crate::view::TreeView<'_> {
        use crate::view::NodeView;
        let splits = self.splits as usize;
        let n_leaves = self.values.len().checked_div(self.width).unwrap_or(0);
        let nodes = self.nodes[..splits]
            .iter()
            .map(|n| NodeView::Split {
                feature: (n.feature & FEATURE_MASK) as usize,
                threshold: n.threshold,
                missing_left: n.feature >= MISSING_LEFT,
                left: n.left as usize,
                right: n.right as usize,
            })
            .chain((0..n_leaves).map(|leaf| NodeView::Leaf(self.values(leaf as u32))))
            .collect();
        crate::view::TreeView { nodes }
    }
}

/// One node of a tree given as arrays (see [`Tree::from_nodes`]).
pub(crate) struct SplitNode<T> {
    pub threshold: T,
    pub feature: u32,
    pub missing_left: bool,
    pub left: usize,
    pub right: usize,
}

impl<T: Threshold> Tree<T> {
    /// A one-output tree from its nodes in any order where children follow their parent
    /// (`None` for a leaf, whose value is `leaf_value(i)`), root first. `None` when a child
    /// does not follow its parent or is out of range, or a feature is at least
    /// `n_features`: the caller validated these already, this is the second lock.
    pub fn from_nodes(
        nodes: &[Option<SplitNode<T>>],
        n_features: usize,
        leaf_value: impl Fn(usize) -> f64,
    ) -> Option<Tree<T>> {
        let n = nodes.len();
        if n == 0 || n >= FEATURE_MASK as usize {
            return None;
        }
        let n_splits = nodes.iter().filter(|x| x.is_some()).count() as u32;
        let mut index = Vec::with_capacity(n);
        let (mut next_split, mut next_leaf) = (0u32, n_splits);
        for node in nodes {
            let counter = if node.is_some() {
                &mut next_split
            } else {
                &mut next_leaf
            };
            index.push(*counter);
            *counter += 1;
        }
        // Depth of each node: children follow their parent, so one pass in index order.
        let mut node_depth = vec![0u32; n];
        let mut depth = 0;
        let mut fast = Vec::with_capacity(n);
        let mut leaves = Vec::new();
        let mut values = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            match node {
                None => {
                    leaves.push(FastNode {
                        threshold: T::default(),
                        feature: 0,
                        left: index[i],
                        right: index[i],
                    });
                    values.push(leaf_value(i));
                }
                Some(s) => {
                    let ok = |c: usize| c > i && c < n;
                    if !ok(s.left) || !ok(s.right) || s.feature as usize >= n_features {
                        return None;
                    }
                    if s.feature >= MISSING_LEFT {
                        return None;
                    }
                    let d = node_depth[i] + 1;
                    node_depth[s.left] = node_depth[s.left].max(d);
                    node_depth[s.right] = node_depth[s.right].max(d);
                    depth = depth.max(d);
                    let flag = if s.missing_left { MISSING_LEFT } else { 0 };
                    fast.push(FastNode {
                        threshold: s.threshold,
                        feature: s.feature | flag,
                        left: index[s.left],
                        right: index[s.right],
                    });
                }
            }
        }
        fast.extend(leaves);
        Some(Tree {
            nodes: fast,
            splits: n_splits,
            depth,
            round: 2,
            values,
            width: 1,
        })
    }

    /// Nodes, splits and leaves.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i` (the root is 0): `Some((threshold, feature with the missing-value flag,
    /// left, right))` for a split, `None` for a leaf; `None` outside the tree.
    pub fn split(&self, i: u32) -> Option<Option<(T, u32, u32, u32)>> {
        let node = self.nodes.get(i as usize)?;
        Some((i < self.splits).then_some((node.threshold, node.feature, node.left, node.right)))
    }

    /// The ordinal of leaf node `i` among the leaves (what traversal returns).
    pub fn leaf_ordinal(&self, i: u32) -> Option<u32> {
        i.checked_sub(self.splits)
    }

    /// The most steps from the root to a leaf.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Sends NaN right at every node, ignoring `missing_go_to_left`: what gradient
    /// boosting's `predict_stages` does (it compares `x <= threshold` only).
    pub fn ignore_missing(&mut self) {
        for n in &mut self.nodes {
            n.feature &= FEATURE_MASK;
        }
    }

    /// Renames features: the tree was fitted on `X[:, map]` (bagging with max_features).
    /// Every entry of `map` must be below the row length the tree will see.
    pub fn remap_features(&mut self, map: &[usize]) -> Option<()> {
        for n in &mut self.nodes[..self.splits as usize] {
            let f = *map.get((n.feature & FEATURE_MASK) as usize)?;
            let f = u32::try_from(f).ok().filter(|f| *f < MISSING_LEFT)?;
            n.feature = f | (n.feature & MISSING_LEFT);
        }
        Some(())
    }

    /// The leaf (ordinal) reached by each row of `rows` into `leaf` (one entry per row of
    /// `rows`, padding included).
    pub fn leaves(&self, rows: &Rows<T>, leaf: &mut [u32]) {
        let n = leaf.len();
        self.visit(rows, |r, l| {
            if r < n {
                leaf[r] = l;
            }
        });
    }

    /// Calls `emit(row, leaf)` with the leaf (ordinal) reached by each row of `rows`, padding
    /// rows included, in row order.
    #[inline]
    pub fn visit(&self, rows: &Rows<T>, emit: impl FnMut(usize, u32)) {
        // The row stride as a constant where it is a common one: the compiler then sees
        // that every value index is within the group and drops the bounds checks.
        match (rows.nan, rows.stride) {
            (false, 8) => self.visit_with::<false, 8>(rows, emit),
            (false, 16) => self.visit_with::<false, 16>(rows, emit),
            (false, 32) => self.visit_with::<false, 32>(rows, emit),
            (false, 64) => self.visit_with::<false, 64>(rows, emit),
            (false, _) => self.visit_with::<false, 0>(rows, emit),
            (true, _) => self.visit_with::<true, 0>(rows, emit),
        }
    }

    /// `visit` for rows of `S` values (`S` a power of two), or of `rows.stride` if `S` is 0.
    #[inline(always)]
    fn visit_with<const NAN: bool, const S: usize>(
        &self,
        rows: &Rows<T>,
        mut emit: impl FnMut(usize, u32),
    ) {
        // Indices were validated when the tree was built: children are within `nodes`,
        // features below the row length (the stride, a power of two, is at least that).
        let stride = if S == 0 { rows.stride } else { S };
        let mask = stride - 1;
        let round = self.round.max(1);
        for (g, group) in rows.data.chunks_exact(LANES * stride).enumerate() {
            let group = &group[..LANES * stride];
            let mut at = [0u32; LANES];
            // Steps in rounds; after each, one well-predicted branch ends the group once all
            // its rows are at leaves (a group rarely needs the full depth).
            let mut left = self.depth;
            while left > 0 {
                for _ in 0..left.min(round) {
                    for (i, a) in at.iter_mut().enumerate() {
                        // Always `Some`; a branch (predicted) keeps the check out of the
                        // chain of dependent loads, where a clamp would lengthen it.
                        if let Some(node) = self.nodes.get(*a as usize) {
                            let x = group[i * stride + (node.feature as usize & mask)];
                            *a = node.next::<NAN>(x);
                        }
                    }
                }
                left = left.saturating_sub(round);
                if at.iter().all(|a| *a >= self.splits) {
                    break;
                }
            }
            for (i, a) in at.into_iter().enumerate() {
                emit(g * LANES + i, a.wrapping_sub(self.splits));
            }
        }
    }

    /// The leaf of one row (`rows` holds one) in each of `trees`, into
    /// `leaf`: the trees are stepped together, so a single row still overlaps its memory
    /// loads.
    pub fn leaves_across(trees: &[Tree<T>], rows: &Rows<T>, leaf: &mut [u32]) {
        if rows.nan {
            Self::across_with::<true>(trees, rows, leaf);
        } else {
            Self::across_with::<false>(trees, rows, leaf);
        }
    }

    fn across_with<const NAN: bool>(trees: &[Tree<T>], rows: &Rows<T>, leaf: &mut [u32]) {
        let stride = rows.stride;
        let mask = stride - 1;
        let row = &rows.data[..stride];
        let mut left = trees.iter().map(|t| t.depth).max().unwrap_or(0);
        leaf.fill(0);
        while left > 0 {
            for _ in 0..left.min(4) {
                for (tree, at) in trees.iter().zip(leaf.iter_mut()) {
                    if let Some(node) = tree.nodes.get(*at as usize) {
                        *at = node.next::<NAN>(row[node.feature as usize & mask]);
                    }
                }
            }
            left = left.saturating_sub(4);
            if trees.iter().zip(leaf.iter()).all(|(t, a)| *a >= t.splits) {
                break;
            }
        }
        for (tree, at) in trees.iter().zip(leaf.iter_mut()) {
            *at = at.wrapping_sub(tree.splits);
        }
    }

    /// The tree with `width` values a leaf, made from its one (tests of wider leaves).
    #[cfg(test)]
    pub(crate) fn widened(mut self, width: usize) -> Tree<T> {
        assert_eq!(self.width, 1);
        self.values = (self.values.iter())
            .flat_map(|v| (0..width).map(move |j| v * 3.0 + j as f64 / 7.0))
            .collect();
        self.width = width;
        self
    }

    /// The values of leaf `leaf` (its ordinal); `None` past the last leaf.
    pub fn values_checked(&self, leaf: u32) -> Option<&[f64]> {
        let start = (leaf as usize).checked_mul(self.width)?;
        self.values.get(start..start.checked_add(self.width)?)
    }

    /// Adds to `acc` the values of the leaf each of `trees` reached (`leaves`, one ordinal
    /// per tree), tree by tree in order: the sum scikit-learn's forest makes on one thread.
    pub fn add_leaf_values(
        trees: &[Tree<T>],
        leaves: impl IntoIterator<Item = u32>,
        acc: &mut [f64],
    ) {
        for (tree, l) in trees.iter().zip(leaves) {
            for (a, v) in acc.iter_mut().zip(tree.values(l)) {
                *a += *v;
            }
        }
    }

    /// Adds the values of leaf `leaf[r]` to row `r` of `out` (`width` values a row), for as
    /// many rows as both hold. Widths of one and two (regressors, binary classifiers) are
    /// fixed-size loops: summing a generic slice per row cost a sixth of a 500-tree forest's
    /// batch.
    pub fn add_values(&self, leaf: &[u32], out: &mut [f64]) {
        match self.width {
            1 => {
                for (l, a) in leaf.iter().zip(out.iter_mut()) {
                    *a += self.values[*l as usize];
                }
            }
            2 => {
                for (l, a) in leaf.iter().zip(out.chunks_exact_mut(2)) {
                    let s = *l as usize * 2;
                    let v = &self.values[s..s + 2];
                    a[0] += v[0];
                    a[1] += v[1];
                }
            }
            w => {
                for (l, a) in leaf.iter().zip(out.chunks_exact_mut(w)) {
                    for (a, v) in a.iter_mut().zip(self.values(*l)) {
                        *a += *v;
                    }
                }
            }
        }
    }

    /// The values of a leaf found by `leaves`.
    #[inline]
    pub fn values(&self, leaf: u32) -> &[f64] {
        let start = leaf as usize * self.width;
        &self.values[start..start + self.width]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Node records laid out as scikit-learn's (`<i8` links and feature, `<f8` threshold,
    /// `u1` missing_go_to_left at 56, other fields between), or without missing_go_to_left
    /// (trees from before scikit-learn 1.3), or with big-endian links (read column by
    /// column): the same columns every way.
    #[test]
    fn node_columns_are_read_in_one_pass_or_by_column_alike() {
        let left = [1i64, -1, 3, -1, -1];
        let right = [2i64, -1, 4, -1, -1];
        let feature = [0i64, -2, 3, -2, -2];
        let threshold = [0.5f64, -2.0, f64::NAN, -0.0, 1e300];
        let missing = [1u8, 0, 0, 1, 0];
        let layouts: [(bool, ByteOrder); 3] = [
            (true, ByteOrder::Little),
            (false, ByteOrder::Little),
            (true, ByteOrder::Big),
        ];
        for (with_missing, links) in layouts {
            let int = |order| DType::Scalar {
                order,
                kind: Kind::Int,
                count: 8,
            };
            let mut fields = vec![
                ("left_child", int(links), 0),
                ("right_child", int(links), 8),
                ("feature", LE_I8, 16),
                ("threshold", LE_F8, 24),
                ("impurity", LE_F8, 32),
            ];
            if with_missing {
                let u1 = DType::Scalar {
                    order: ByteOrder::NotApplicable,
                    kind: Kind::UInt,
                    count: 1,
                };
                fields.push(("missing_go_to_left", u1, 56));
            }
            let DType::Structured { fields, .. } = skvault_format::testing::structured(fields, 64)
            else {
                unreachable!("testing::structured makes a structured dtype")
            };
            let mut bytes = Vec::new();
            for i in 0..left.len() {
                let mut record = [0xa5u8; 64];
                let link = |v: i64| match links {
                    ByteOrder::Big => v.to_be_bytes(),
                    _ => v.to_le_bytes(),
                };
                record[0..8].copy_from_slice(&link(left[i]));
                record[8..16].copy_from_slice(&link(right[i]));
                record[16..24].copy_from_slice(&feature[i].to_le_bytes());
                record[24..32].copy_from_slice(&threshold[i].to_le_bytes());
                record[56] = missing[i];
                bytes.extend_from_slice(&record);
            }
            let got = NodeColumns::read(&Records::for_tests(fields, 64, bytes)).unwrap();
            let what = format!("missing field {with_missing}, links {links:?}");
            assert_eq!(got.left, left, "{what}");
            assert_eq!(got.right, right, "{what}");
            assert_eq!(got.feature, feature, "{what}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.threshold), bits(&threshold), "{what}");
            let want: Vec<i64> = if with_missing {
                missing.iter().map(|m| i64::from(*m)).collect()
            } else {
                vec![0; left.len()]
            };
            assert_eq!(got.missing_left, want, "{what}");
        }
    }

    #[test]
    fn floor_f32_is_the_largest_float32_not_above() {
        let cases = [
            0.1,
            -0.1,
            0.0,
            -0.0,
            1.0,
            1e-45,
            -1e-45,
            1e300,
            -1e300,
            3.4028235677973366e38,
            f64::INFINITY,
            f64::NEG_INFINITY,
            2.5000000000000004,
        ];
        for t in cases {
            let f = floor_f32(t);
            assert!(f64::from(f) <= t, "{t}: {f}");
            // The next float32 up is above t.
            let up = if f == f32::INFINITY {
                f32::INFINITY
            } else if f >= 0.0 {
                f32::from_bits(if f == 0.0 { 1 } else { f.to_bits() + 1 })
            } else {
                f32::from_bits(f.to_bits() - 1)
            };
            assert!(f == f32::INFINITY || f64::from(up) > t, "{t}: {f} {up}");
        }
        assert!(floor_f32(f64::NAN).is_nan());
    }

    /// `add_values`' fixed-width loops (one and two values a leaf) and its general one add
    /// the same values as `values`, to the row each leaf belongs to, bit for bit.
    #[test]
    fn leaf_values_are_added_to_their_rows_at_every_width() {
        // A root splitting feature 0, its right child feature 1: three leaves.
        let split = |feature, left, right| {
            Some(SplitNode {
                threshold: 0.0f32,
                feature,
                missing_left: false,
                left,
                right,
            })
        };
        let nodes = [split(0, 1, 2), None, split(1, 3, 4), None, None];
        let one = Tree::from_nodes(&nodes, 2, |i| 1.0 / (i as f64 + 3.0)).unwrap();
        let leaf = [2u32, 0, 1, 1, 2];
        for width in [1, 2, 3, 5] {
            let tree = if width > 1 {
                one.clone().widened(width)
            } else {
                one.clone()
            };
            let start: Vec<f64> = (0..leaf.len() * width).map(|i| i as f64 * 0.1).collect();
            let mut got = start.clone();
            tree.add_values(&leaf, &mut got);
            let want: Vec<f64> = (start.chunks(width).zip(leaf))
                .flat_map(|(row, l)| row.iter().zip(tree.values(l)).map(|(a, v)| a + v))
                .collect();
            assert_eq!(got, want, "width {width}");
            assert_ne!(got, start, "width {width}");
        }
    }

    #[test]
    fn comparison_matches_float64_semantics() {
        // Exhaustive near a threshold that is not a float32.
        let t = 0.3f64;
        let ft = floor_f32(t);
        let mut x = 0.29999f32;
        while x < 0.30001 {
            assert_eq!(x <= ft, f64::from(x) <= t, "{x}");
            x = f32::from_bits(x.to_bits() + 1);
        }
    }
}
