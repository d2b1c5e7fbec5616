//! HistGradientBoosting's numeric trees evaluated on small integer codes of the rows, every
//! split node of a tree at once, for 16 rows together.
//!
//! **Codes.** A predictor compares `x <= threshold` in float64 (NaN goes to the
//! `missing_go_to_left` side), and its thresholds are few per column: scikit-learn takes
//! them from the bin edges of `_bin_mapper` (at most 254 a column) or writes `+inf` ("split
//! on NaN"). Let `E` be the distinct thresholds of column `f` over all trees, and `code(v)`
//! the number of them strictly below `v`. For every non-NaN `v` and every `t` in `E`,
//! `v <= t` exactly when `code(v) <= code(t)`: when `v <= t` the thresholds below `v` are
//! all below `t`, and when `v > t` they include `t` itself. Infinities and signed zeros need
//! no care: `<` on float64 decides both sides. The codes come from the trees' own
//! thresholds, never from the bin mapper, so nothing rests on scikit-learn's binning.
//! A value is coded twice: `hi = code(v)` with NaN as 256 (above every `code(t)`), and
//! `lo = code(v) + 1` with NaN as 0 (at most every `code(t) + 1`). A node that sends NaN
//! right tests `hi <= code(t)`, one that sends NaN left tests `lo <= code(t) + 1`: the same
//! integer comparison, and no NaN test.
//!
//! **Bit vectors** (QuickScorer, Lucchese et al., SIGIR 2015). Number a tree's leaves from
//! left to right (at most 32) and give each row a 32-bit set of candidate leaves, all set.
//! Each split node whose test is false for the row (the row would go right) clears the
//! leaves of its left subtree. The row's leaf is then the lowest leaf left: it is in no
//! cleared subtree (its path went left at each of its ancestors whose left subtree holds
//! it), and each leaf to its left is in the left subtree of the node where the two paths
//! part, whose test sent the row right. Every node is evaluated, whatever the row's path:
//! no step depends on the previous one, nothing branches on the data, and the work is the
//! tree's node count, not its depth (bench/native.py's trees have 30 splits but are 11
//! levels deep on average and 17 at most, where 16 rows stepped together walk as deep as
//! the deepest of them). 16 rows go together: their codes of one column are 16
//! consecutive `i32`, so a node is a few vector instructions.
//!
//! Models this cannot hold (a categorical split, a tree of more than 32 leaves or that is
//! not a tree, a NaN threshold, a column with more than 255 distinct thresholds) keep the
//! float64 layout.

/// Rows evaluated together.
pub(crate) const LANES: usize = 16;
/// Most leaves of a tree: a row's candidates are a `u32`.
const MAX_LEAVES: usize = 32;
/// Most distinct thresholds in a column: codes are at most 255, and a search of 8 levels
/// reaches them all.
const MAX_THRESHOLDS: usize = 255;
/// `hi` of a NaN (above every `code(t)`), and `lo` of a NaN (at most every `code(t) + 1`).
const NAN_HI: i32 = 256;
const NAN_LO: i32 = 0;
/// Most codes per row (a column's `hi` and `lo` are two): slots are bytes.
const MAX_SLOTS: usize = 256;

/// One node of a tree as the caller gives it (see [`QuantForest::new`]).
pub(crate) struct QuantSplit {
    pub threshold: f64,
    pub feature: usize,
    pub missing_left: bool,
    pub left: usize,
    pub right: usize,
}

/// The thresholds of one column as a complete binary search tree of `2^levels - 1`
/// entries in breadth-first order (Eytzinger's layout): entry `i`'s children are `2i + 1`
/// and `2i + 2`, and the sorted thresholds, padded with `+inf`, fill it from left to
/// right. A search is then `levels` steps of one load, one comparison and one add each.
#[derive(Debug, Clone)]
struct Edges {
    table: Box<[f64; 256]>,
    levels: u32,
}

impl Edges {
    /// `None` for more than `MAX_THRESHOLDS` thresholds.
    fn new(sorted: &[f64]) -> Option<Edges> {
        if sorted.len() > MAX_THRESHOLDS {
            return None;
        }
        let levels = (sorted.len() + 1)
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let mut table = Box::new([f64::INFINITY; 256]);
        // In order: left subtree, node, right subtree. At most 8 levels deep.
        fn fill(table: &mut [f64; 256], size: usize, i: usize, sorted: &[f64], next: &mut usize) {
            if i >= size {
                return;
            }
            fill(table, size, 2 * i + 1, sorted, next);
            table[i] = sorted.get(*next).copied().unwrap_or(f64::INFINITY);
            *next += 1;
            fill(table, size, 2 * i + 2, sorted, next);
        }
        // At most 255 entries: 8 levels.
        let size = (1usize << levels) - 1;
        fill(&mut table, size, 0, sorted, &mut 0);
        Some(Edges { table, levels })
    }

    /// The number of thresholds strictly below `v` (`v` not NaN): at most 255.
    fn code(&self, v: f64) -> i32 {
        let mut at = [0usize];
        self.codes(&[v], &mut at);
        at[0] as i32
    }

    /// [`Self::code`] of each of `v` into `at` (zeros on entry).
    #[inline(always)]
    fn codes<const N: usize>(&self, v: &[f64; N], at: &mut [usize; N]) {
        // The step count as a constant: the loop unrolls (with a count known only at run
        // time, the compiler branched on each comparison).
        match self.levels {
            8 => self.search::<N, 8>(v, at),
            7 => self.search::<N, 7>(v, at),
            6 => self.search::<N, 6>(v, at),
            5 => self.search::<N, 5>(v, at),
            4 => self.search::<N, 4>(v, at),
            3 => self.search::<N, 3>(v, at),
            2 => self.search::<N, 2>(v, at),
            _ => self.search::<N, 1>(v, at),
        }
    }

    /// The searches side by side: each step depends on the previous one, the lanes do not
    /// depend on each other.
    #[inline(always)]
    fn search<const N: usize, const L: u32>(&self, v: &[f64; N], at: &mut [usize; N]) {
        let e = &*self.table;
        for _ in 0..L {
            // Entries read are below 2^L - 1 <= 255: the mask never changes the index.
            for (a, v) in at.iter_mut().zip(v) {
                *a = 2 * *a + 1 + usize::from(e[*a & 255] < *v);
            }
        }
        // After L steps the node index is 2^L - 1 + the count of entries below v.
        for a in at.iter_mut() {
            *a -= (1 << L) - 1;
        }
    }
}

/// A column the trees split on, and where its codes go in a group's codes.
#[derive(Debug, Clone)]
struct Column {
    index: usize,
    edges: Edges,
    hi: Option<u8>,
    lo: Option<u8>,
}

/// A split node: rows whose code in `slot` is above `code` lose the leaves `clear` (those
/// of the node's left subtree).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct MaskNode {
    /// The node's code, and its left subtree's leaves, four times each: the compare and
    /// the mask take them as whole vectors.
    code: [i32; 4],
    clear: [u32; 4],
    slot: u8,
}

/// Trees over coded rows (see the module's comment).
#[derive(Debug, Clone)]
pub(crate) struct QuantForest {
    n_columns: usize,
    columns: Vec<Column>,
    nodes: Vec<MaskNode>,
    /// Per tree, the end of its nodes in `nodes` (they start where the previous ended).
    ends: Vec<usize>,
    /// `MAX_LEAVES` leaf values per tree, in leaf order, padded with zeros.
    values: Vec<f64>,
}

/// Leaf numbers, left to right, of each node's first leaf (`None` if the node is not
/// reached from the root); `None` for the whole tree if a node is reached twice (not a
/// tree) or a child is out of range. Leaves: `tree[i]` is `None`.
fn first_leaves(tree: &[Option<QuantSplit>]) -> Option<(Vec<Option<usize>>, usize)> {
    let mut first = vec![None; tree.len()];
    let mut next = 0;
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        let slot = first.get_mut(i)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(next);
        match tree.get(i)? {
            None => next += 1,
            Some(s) => {
                // Left first: its leaves come before the right subtree's.
                stack.push(s.right);
                stack.push(s.left);
            }
        }
    }
    Some((first, next))
}

impl QuantForest {
    /// The trees (each as its nodes, `None` for a leaf whose value `leaf_value(tree, node)`
    /// gives, root first) over rows of `n_columns` values. `None` when a tree or a column
    /// does not fit the layout, or a node is out of range: the caller then keeps its own
    /// layout.
    pub fn new(
        trees: &[Vec<Option<QuantSplit>>],
        n_columns: usize,
        leaf_value: impl Fn(usize, usize) -> f64,
    ) -> Option<QuantForest> {
        if n_columns == 0 {
            return None;
        }
        let mut thresholds = vec![Vec::new(); n_columns];
        let mut sides = vec![[false; 2]; n_columns];
        for tree in trees {
            for s in tree.iter().flatten() {
                if s.threshold.is_nan() {
                    return None;
                }
                thresholds.get_mut(s.feature)?.push(s.threshold);
                sides[s.feature][usize::from(s.missing_left)] = true;
            }
        }
        let mut columns = Vec::new();
        let mut slot_of = vec![[0u8; 2]; n_columns];
        let mut slots = 0usize;
        for (index, mut t) in thresholds.into_iter().enumerate() {
            if t.is_empty() {
                continue;
            }
            t.sort_by(f64::total_cmp);
            // -0.0 and 0.0 are one threshold: they compare equal.
            t.dedup_by(|a, b| a == b);
            let mut side = |used: bool, side: usize| -> Option<Option<u8>> {
                if !used {
                    return Some(None);
                }
                let slot = u8::try_from(slots).ok()?;
                slot_of[index][side] = slot;
                slots += 1;
                Some(Some(slot))
            };
            let hi = side(sides[index][0], 0)?;
            let lo = side(sides[index][1], 1)?;
            columns.push(Column {
                index,
                edges: Edges::new(&t)?,
                hi,
                lo,
            });
        }
        let mut column_of = vec![None; n_columns];
        for (i, c) in columns.iter().enumerate() {
            column_of[c.index] = Some(i);
        }
        let edges_of = |f: usize| Some(&columns.get((*column_of.get(f)?)?)?.edges);
        let mut nodes = Vec::new();
        let mut ends = Vec::with_capacity(trees.len());
        let mut values = Vec::with_capacity(trees.len() * MAX_LEAVES);
        for (ti, tree) in trees.iter().enumerate() {
            let (first, n_leaves) = first_leaves(tree)?;
            if n_leaves > MAX_LEAVES {
                return None;
            }
            let start = values.len();
            values.resize(start + MAX_LEAVES, 0.0);
            for (i, s) in tree.iter().enumerate() {
                let Some(at) = first[i] else { continue };
                let Some(s) = s else {
                    values[start + at] = leaf_value(ti, i);
                    continue;
                };
                // Reached from the root, so both children were (first_leaves checked them).
                let (a, b) = (first.get(s.left).copied()??, first.get(s.right).copied()??);
                // The left subtree's leaves are a..b: 1 <= b - a, b <= 32.
                let clear = ((1u64 << b) - (1u64 << a)) as u32;
                let code = edges_of(s.feature)?.code(s.threshold);
                let side = usize::from(s.missing_left);
                nodes.push(MaskNode {
                    slot: slot_of[s.feature][side],
                    code: [code + side as i32; 4],
                    clear: [clear; 4],
                });
            }
            ends.push(nodes.len());
        }
        Some(QuantForest {
            n_columns,
            columns,
            nodes,
            ends,
            values,
        })
    }

    pub fn n_trees(&self) -> usize {
        self.ends.len()
    }

    /// Codes the rows `x` (`n_columns` values each, at most `LANES` rows) into `codes`
    /// (one array of lanes per slot). Missing rows are coded as zeros.
    fn code_group(&self, x: &[f64], codes: &mut [[i32; LANES]; MAX_SLOTS]) {
        let nc = self.n_columns.max(1);
        for c in &self.columns {
            let mut v = [0.0f64; LANES];
            for (row, v) in x.chunks_exact(nc).zip(&mut v) {
                *v = row.get(c.index).copied().unwrap_or(0.0);
            }
            let mut at = [0usize; LANES];
            c.edges.codes(&v, &mut at);
            if let Some(s) = c.hi {
                for ((d, a), v) in codes[usize::from(s)].iter_mut().zip(at).zip(&v) {
                    *d = if v.is_nan() { NAN_HI } else { a as i32 };
                }
            }
            if let Some(s) = c.lo {
                for ((d, a), v) in codes[usize::from(s)].iter_mut().zip(at).zip(&v) {
                    *d = if v.is_nan() { NAN_LO } else { a as i32 + 1 };
                }
            }
        }
    }

    /// Adds each tree's value to the raw predictions `acc` (`k` per row) of the rows `x`
    /// (`n_columns` values each): tree `t` adds to column `t % k`, trees in order, so each
    /// column sums in iteration order.
    pub fn add_values(&self, x: &[f64], k: usize, acc: &mut [f64]) {
        let (nc, k) = (self.n_columns.max(1), k.max(1));
        let mut codes = Box::new([[0i32; LANES]; MAX_SLOTS]);
        let mut sums = vec![0.0f64; k * LANES];
        for (xs, accs) in x.chunks(LANES * nc).zip(acc.chunks_mut(LANES * k)) {
            self.code_group(xs, &mut codes);
            // Lane-major per output column, so that a tree adds to 16 consecutive values.
            for (r, row) in accs.chunks_exact(k).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    sums[j * LANES + r] = *v;
                }
            }
            self.add_group(&codes, k, &mut sums);
            for (r, row) in accs.chunks_exact_mut(k).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = sums[j * LANES + r];
                }
            }
        }
    }

    fn add_group(&self, codes: &[[i32; LANES]; MAX_SLOTS], k: usize, sums: &mut [f64]) {
        let mut start = 0;
        for (t, (&end, values)) in self
            .ends
            .iter()
            .zip(self.values.chunks_exact(MAX_LEAVES))
            .enumerate()
        {
            let mut leaves = [u32::MAX; LANES];
            let nodes = self.nodes.get(start..end).unwrap_or(&[]);
            // Two nodes a turn: the leaves stay in the same registers from turn to turn.
            let mut pairs = nodes.chunks_exact(2);
            for pair in &mut pairs {
                for n in pair {
                    apply(n, codes, &mut leaves);
                }
            }
            for n in pairs.remainder() {
                apply(n, codes, &mut leaves);
            }
            start = end;
            let j = t % k;
            if let Some(sum) = sums.get_mut(j * LANES..(j + 1) * LANES) {
                for (s, l) in sum.iter_mut().zip(leaves) {
                    // Never empty (see the module's comment); `& 31` keeps the index in range.
                    *s += values[(l.trailing_zeros() & 31) as usize];
                }
            }
        }
    }
}

/// Clears, in each lane whose code of the node's slot is above the node's code, the node's
/// left subtree's leaves.
#[inline(always)]
fn apply(n: &MaskNode, codes: &[[i32; LANES]; MAX_SLOTS], leaves: &mut [u32; LANES]) {
    let codes = &codes[usize::from(n.slot)];
    for (l, c) in leaves.chunks_exact_mut(4).zip(codes.chunks_exact(4)) {
        for i in 0..4 {
            let right = 0u32.wrapping_sub(u32::from(c[i] > n.code[i]));
            l[i] &= !(right & n.clear[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use skvault_format::fuzzing::Rng;

    /// Thresholds the trees draw from, so that rows hit them exactly too.
    const CUTS: [f64; 9] = [
        -1.5,
        -0.25,
        0.0,
        0.1,
        0.7,
        2.0,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];

    type Nodes = Vec<Option<QuantSplit>>;

    /// A tree in preorder with at most `budget` leaves (its root first).
    fn grow(rng: &mut Rng, nodes: &mut Nodes, budget: usize, nc: usize) {
        let me = nodes.len();
        nodes.push(None);
        if budget < 2 || rng.below(6) == 0 {
            return;
        }
        let left_budget = 1 + rng.below(budget - 1);
        let left = nodes.len();
        grow(rng, nodes, left_budget, nc);
        let right = nodes.len();
        grow(rng, nodes, budget - left_budget, nc);
        nodes[me] = Some(QuantSplit {
            threshold: CUTS[rng.below(CUTS.len())],
            feature: rng.below(nc),
            missing_left: rng.below(2) == 0,
            left,
            right,
        });
    }

    fn leaf_value(t: usize, i: usize) -> f64 {
        ((t * 131 + i * 17) % 1000) as f64 / 997.0 - 0.5
    }

    /// The node-by-node walk of scikit-learn's `_predict_one_from_raw_data`.
    fn walk(tree: &Nodes, row: &[f64]) -> usize {
        let mut i = 0;
        while let Some(s) = &tree[i] {
            let v = row[s.feature];
            let left = if v.is_nan() {
                s.missing_left
            } else {
                v <= s.threshold
            };
            i = if left { s.left } else { s.right };
        }
        i
    }

    /// Raw sums as [`QuantForest::add_values`] makes them, by the node-by-node walk.
    fn reference(trees: &[Nodes], x: &[f64], nc: usize, k: usize, acc: &mut [f64]) {
        for (row, a) in x.chunks_exact(nc).zip(acc.chunks_exact_mut(k)) {
            for (t, tree) in trees.iter().enumerate() {
                a[t % k] += leaf_value(t, walk(tree, row));
            }
        }
    }

    /// Values at, and one float64 step on either side of, every cut, and others.
    fn value() -> impl Strategy<Value = f64> {
        // The next float64 up or down (infinities stay).
        let step = |v: f64, up: bool| {
            let b = v.to_bits();
            if v.is_infinite() {
                v
            } else if v == 0.0 {
                if up {
                    f64::from_bits(1)
                } else {
                    -f64::from_bits(1)
                }
            } else if (v > 0.0) == up {
                f64::from_bits(b + 1)
            } else {
                f64::from_bits(b - 1)
            }
        };
        prop_oneof![
            Just(f64::NAN),
            Just(-0.0),
            prop::sample::select(CUTS.to_vec()),
            (prop::sample::select(CUTS.to_vec()), any::<bool>())
                .prop_map(move |(c, up)| step(c, up)),
            -3.0f64..3.0,
            any::<f64>(),
        ]
    }

    fn check(trees: &[Nodes], nc: usize, k: usize, x: &[f64]) -> Result<(), TestCaseError> {
        let q = QuantForest::new(trees, nc, leaf_value);
        let Some(q) = q else {
            return Err(TestCaseError::fail("the trees fit the layout"));
        };
        let n_rows = x.len() / nc;
        let start: Vec<f64> = (0..n_rows * k).map(|i| i as f64 * 0.25 - 1.0).collect();
        let (mut want, mut got) = (start.clone(), start);
        reference(trees, x, nc, k, &mut want);
        q.add_values(x, k, &mut got);
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&got), bits(&want));
        Ok(())
    }

    proptest! {
        /// Bit-identical to the node-by-node walk on random trees of up to 32 leaves, for
        /// rows with NaN, infinities, signed zeros and values at and next to every
        /// threshold, in whole and partial groups of lanes, one to three outputs.
        #[test]
        fn codes_and_bit_vectors_match_the_node_walk(
            seed in any::<u64>(),
            nc in 1usize..6,
            k in 1usize..4,
            n_trees in 1usize..12,
            values in prop::collection::vec(value(), 1..200),
        ) {
            let mut rng = Rng::new(seed);
            let trees: Vec<Nodes> = (0..n_trees * k)
                .map(|_| {
                    let mut nodes = Vec::new();
                    let budget = 1 + rng.below(MAX_LEAVES);
                    grow(&mut rng, &mut nodes, budget, nc);
                    nodes
                })
                .collect();
            let n_rows = values.len().div_ceil(nc);
            let x: Vec<f64> = values.iter().copied().cycle().take(n_rows * nc).collect();
            check(&trees, nc, k, &x)?;
        }
    }

    fn split(threshold: f64, feature: usize, left: usize, right: usize) -> Option<QuantSplit> {
        Some(QuantSplit {
            threshold,
            feature,
            missing_left: false,
            left,
            right,
        })
    }

    /// A column with 255 distinct thresholds (scikit-learn's most: 254 bin edges and
    /// `+inf`) is coded exactly up to its largest code; one more threshold, or a NaN
    /// threshold, does not fit the layout.
    #[test]
    fn a_column_holds_up_to_255_thresholds() {
        let cuts: Vec<f64> = (0..254)
            .map(|i| i as f64 * 0.5 - 60.0)
            .chain([f64::INFINITY])
            .collect();
        // One stump per threshold.
        let stumps = |cuts: &[f64]| -> Vec<Nodes> {
            cuts.iter()
                .map(|&t| vec![split(t, 0, 1, 2), None, None])
                .collect()
        };
        let mut x: Vec<f64> = cuts.iter().flat_map(|&t| [t, t - 0.25, t + 0.25]).collect();
        x.extend([f64::NAN, f64::NEG_INFINITY, 1e308, -0.0]);
        check(&stumps(&cuts), 1, 1, &x).unwrap();
        let mut more = cuts.clone();
        more.push(1e6);
        assert!(QuantForest::new(&stumps(&more), 1, leaf_value).is_none());
        let nan = vec![vec![split(f64::NAN, 0, 1, 2), None, None]];
        assert!(QuantForest::new(&nan, 1, leaf_value).is_none());
    }

    /// Trees that are not trees of at most 32 leaves over the given columns are refused,
    /// without a panic: the caller keeps its own layout.
    #[test]
    fn trees_out_of_range_or_not_trees_are_refused() {
        let refused = |tree: Nodes, nc: usize| QuantForest::new(&[tree], nc, leaf_value).is_none();
        // A child out of range, a child before its parent (a cycle), a feature out of range.
        assert!(refused(vec![split(0.0, 0, 1, 9), None], 1));
        assert!(refused(
            vec![split(0.0, 0, 1, 2), split(0.0, 0, 0, 2), None],
            1
        ));
        assert!(refused(vec![split(0.0, 3, 1, 2), None, None], 2));
        // A node reached twice (both children of the root are node 1).
        assert!(refused(vec![split(0.0, 0, 1, 1), None], 1));
        // A chain of splits, each with a leaf on the left: one leaf more than splits.
        let chain = |splits: usize| -> Nodes {
            let mut tree = Vec::new();
            for i in 0..splits {
                tree.push(split(i as f64, 0, 2 * i + 1, 2 * i + 2));
                tree.push(None);
            }
            tree.push(None);
            tree
        };
        assert!(refused(chain(32), 1));
        assert!(!refused(chain(31), 1));
        // A tree that is one leaf, and nodes no path reaches, are fine.
        assert!(!refused(vec![None], 1));
        let unreached = vec![
            split(0.0, 0, 1, 2),
            None,
            None,
            split(0.0, 0, 4, 5),
            None,
            None,
        ];
        assert!(!refused(unreached, 1));
    }
}
