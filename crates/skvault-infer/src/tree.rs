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
//! go in lanes of 8, stepped together, and no lane ever waits on a branch. A branch on
//! "this row reached a leaf" mispredicts about once per row and tree, and every mispredict
//! throws away the other lanes' memory loads in flight; the fixed step count costs a few
//! extra (cache-hot) steps for the rows whose leaf is shallow, far less than those flushes.

use crate::error::{malformed, Result};
use crate::state::Obj;

/// Set in `FastNode::feature` of split nodes that send NaN to the left.
const MISSING_LEFT: u32 = 1 << 31;
const FEATURE_MASK: u32 = !MISSING_LEFT;
/// Rows stepped together.
const LANES: usize = 8;

/// One node. A split node's `left` and `right` are above its own index (so traversal
/// reaches a leaf); a leaf's are its own index (so it stays there).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct FastNode {
    threshold: f32,
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
pub(crate) struct Tree {
    /// `splits` split nodes, then one node per leaf (leaf `k` is node `splits + k`).
    nodes: Vec<FastNode>,
    splits: u32,
    /// The most steps from the root to a leaf.
    depth: u32,
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
        let left = nodes.i64_column("left_child")?;
        let right = nodes.i64_column("right_child")?;
        let feature = nodes.i64_column("feature")?;
        let threshold = nodes.f64_column("threshold")?;
        // Trees written before scikit-learn 1.3 have no missing-value support: NaN goes right.
        let missing_left = if nodes.has("missing_go_to_left") {
            nodes.i64_column("missing_go_to_left")?
        } else {
            vec![0; n]
        };
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
            values: leaf_values,
            width,
        })
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

    /// The leaf (ordinal) reached by each row of `rows` (float32, `nf` columns each), into
    /// `leaf`.
    pub fn leaves(&self, rows: &[f32], nf: usize, leaf: &mut [u32]) {
        // Indices were validated when the tree was built: children are within `nodes`,
        // features below `nf`.
        let n = leaf.len();
        let mut groups = leaf.chunks_exact_mut(LANES);
        for (g, out) in groups.by_ref().enumerate() {
            let base = g * LANES;
            let mut at = [0u32; LANES];
            // Steps in rounds of 4; after each, one well-predicted branch ends the group
            // once all its rows are at leaves (a group rarely needs the full depth).
            let mut left = self.depth;
            while left > 0 {
                for _ in 0..left.min(4) {
                    for (i, a) in at.iter_mut().enumerate() {
                        *a = self.step(rows, nf, base + i, *a);
                    }
                }
                left = left.saturating_sub(4);
                if at.iter().all(|a| *a >= self.splits) {
                    break;
                }
            }
            for (o, a) in out.iter_mut().zip(at) {
                *o = a - self.splits;
            }
        }
        let tail = groups.into_remainder();
        let base = n - tail.len();
        for (i, o) in tail.iter_mut().enumerate() {
            let mut a = 0;
            for _ in 0..self.depth {
                a = self.step(rows, nf, base + i, a);
            }
            *o = a - self.splits;
        }
    }

    /// The node that row `r` goes to from node `at` (itself for a leaf).
    #[inline(always)]
    fn step(&self, rows: &[f32], nf: usize, r: usize, at: u32) -> u32 {
        let node = self.nodes[at as usize];
        let x = rows[r * nf + (node.feature & FEATURE_MASK) as usize];
        // Branch-free: the comparison is a coin flip, a branch on it mispredicts half the
        // time. `|` and `&` on bools do not short-circuit.
        let left = (x <= node.threshold) | (x.is_nan() & (node.feature >= MISSING_LEFT));
        let mask = 0u32.wrapping_sub(u32::from(left));
        node.right ^ ((node.left ^ node.right) & mask)
    }

    /// The leaf of one row in each of `trees` (at most 8 of them), into `leaf`: the trees
    /// are stepped together, so a single row still overlaps its memory loads.
    pub fn leaves_across(trees: &[Tree], row: &[f32], leaf: &mut [u32]) {
        let mut left = trees.iter().map(|t| t.depth).max().unwrap_or(0);
        leaf.fill(0);
        while left > 0 {
            for _ in 0..left.min(4) {
                for (tree, at) in trees.iter().zip(leaf.iter_mut()) {
                    *at = tree.step(row, 0, 0, *at);
                }
            }
            left = left.saturating_sub(4);
            if trees.iter().zip(leaf.iter()).all(|(t, a)| *a >= t.splits) {
                break;
            }
        }
        for (tree, at) in trees.iter().zip(leaf.iter_mut()) {
            *at -= tree.splits;
        }
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

    /// The values of a leaf found by `leaves`.
    #[inline]
    pub fn values(&self, leaf: u32) -> &[f64] {
        let start = leaf as usize * self.width;
        &self.values[start..start + self.width]
    }
}

#[cfg(test)]
mod tests {
    use super::floor_f32;

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
