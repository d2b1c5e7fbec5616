//! One row through many trees: the trees of an ensemble re-laid out, once when the model is
//! built, for walking a single row (a latency-bound call).
//!
//! [`Tree`]'s layout (split nodes first, then leaves) serves blocks of rows, where each
//! tree's nodes stay in cache while a block walks it. One row through a forest is a chain of
//! dependent loads per tree instead, and its time goes into the step itself:
//!
//! - every tree's nodes in one array, so that a step needs no per-tree lookup, in preorder
//!   with each left child right after its parent (going left often stays in the same cache
//!   line), leaves in place;
//! - a leaf's children are itself: a row at a leaf stays there whatever it is compared with,
//!   and every tree takes the same branch-free step (a branch on the comparison mispredicts
//!   half the time, throwing away the other trees' loads in flight). The child is loaded at
//!   an index computed from the comparison, which the compiler cannot turn into a branch as
//!   it may a select between two loaded values;
//! - a leaf's feature field holds the leaf's ordinal in its tree (any value is a valid
//!   feature once masked by the row stride), so the walk's end gives the leaf directly;
//! - when every tree has one or two values a leaf (a regressor, a binary classifier), the
//!   values follow their leaf in a slot of their own ([`INLINE_WIDTH`]): the walk's end
//!   reads them from the line it has just loaded, where a lookup in the tree's own values
//!   would be one more cache miss per tree on the row's path (a 500-tree forest's row spent
//!   1.5 of its 9.4 µs summing them);
//! - trees go in groups of [`ACROSS`] (the last one filled up with a one-leaf tree), stepped
//!   together for more loads in flight, each group for its deepest tree's depth, known here,
//!   checking every few steps whether any tree moved (all at leaves);
//! - the row is a fixed-size array for the common strides: no bounds check on its values.
//!
//! Results are, for each tree, the values of its leaf (bit for bit the tree's own), or the
//! leaf ordinal [`Tree::leaves_across`] finds when they are not laid out: the same trees,
//! the same comparisons (`x <= threshold`, NaN to the side of the node's flag).

use crate::tree::{Rows, Tree, MISSING_LEFT};

/// Trees stepped together for one row: more loads in flight. On bench/native.py's forest
/// (one thread, [`Tree`]'s layout) 16 took 25 µs a row, 8 took 29 µs and 4 took 41 µs.
pub(crate) const ACROSS: usize = 16;

/// Steps between checks for "every tree of the group is at a leaf".
const ROUND: u32 = 4;

/// One node: a split goes to `child[1]` (the next node) when `x <= threshold` (or when `x`
/// is NaN and `feature` has [`MISSING_LEFT`]), else to `child[0]`. A leaf has both children
/// its own index, a NaN threshold and its ordinal (below [`MISSING_LEFT`]) as `feature`.
/// Indices are of the slots being laid out; the bytes of [`Store`] hold them as byte offsets.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Node {
    threshold: f32,
    feature: u32,
    /// `[right, left]`: indexed by the comparison (not selected between, see [`step`]).
    child: [u32; 2],
}

/// Most values a leaf may have for them to be laid out after it: one slot of [`NODE`]
/// bytes. Wider leaves (classifiers of three classes or more) are summed from their trees.
pub(crate) const INLINE_WIDTH: usize = 2;

/// The trees of an ensemble in the layout above.
#[derive(Debug)]
pub(crate) struct Across {
    /// The nodes, 16 bytes each: threshold, feature, `child` as byte offsets into these
    /// bytes (native byte order: a step adds no multiplication to its chain); with
    /// `inline` above 0, each leaf is followed by a slot of its `inline` values (`f64`,
    /// native byte order, zero-filled).
    nodes: Store,
    /// Values laid out after each leaf (1 or 2), or 0 when the walk gives leaf ordinals.
    inline: usize,
    /// The byte offset of each tree's root, in tree order.
    roots: Vec<u32>,
    /// The steps each group of [`ACROSS`] trees takes: its deepest tree's depth.
    steps: Vec<u32>,
    /// The steps of all groups, each counted once per tree: the work of one row.
    work: u64,
}

/// Bytes of one node in [`Store`].
const NODE: usize = 16;

/// Node bytes from which they go in memory of their own with huge pages advised: a row's
/// path through a large forest touches thousands of 4 KiB pages, more than the TLB holds,
/// and each miss is a page walk (two-level on a virtual machine) on the step's chain.
const HUGE_FROM: usize = 4 << 20;

/// Where the nodes' bytes live: the heap, or (large forests) an anonymous mapping advised
/// to use transparent huge pages (a hint: where the kernel declines it, pages stay small).
#[derive(Debug)]
enum Store {
    Heap(Vec<u8>),
    Mapped(memmap2::MmapMut),
}

impl Store {
    fn new(bytes: Vec<u8>) -> Store {
        if bytes.len() < HUGE_FROM {
            return Store::Heap(bytes);
        }
        let Ok(mut map) = memmap2::MmapMut::map_anon(bytes.len()) else {
            return Store::Heap(bytes);
        };
        // Advised before the pages are first touched (by the copy), so that they are
        // allocated huge; refused advice leaves small pages, the same as the heap's.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        map.copy_from_slice(&bytes);
        Store::Mapped(map)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Store::Heap(v) => v,
            Store::Mapped(m) => m,
        }
    }
}

impl Across {
    /// The layout of `trees`; `None` when their nodes' byte offsets do not fit in `u32` (4
    /// GiB of nodes; the caller then walks them as [`Tree`]s).
    pub fn new(trees: &[Tree<f32>]) -> Option<Across> {
        let width = trees.first().map_or(0, Tree::width);
        let inline =
            if (1..=INLINE_WIDTH).contains(&width) && trees.iter().all(|t| t.width() == width) {
                width
            } else {
                0
            };
        // Nodes, and (inline) a value slot for each leaf: at most one per node.
        let total = trees.iter().try_fold(0usize, |n, t| {
            n.checked_add(t.node_count().checked_mul(1 + usize::from(inline > 0))?)
        })?;
        if total.checked_add(2)?.checked_mul(NODE)? > u32::MAX as usize {
            return None;
        }
        let mut nodes = Vec::with_capacity(total + 2);
        let mut roots = Vec::with_capacity(trees.len().next_multiple_of(ACROSS));
        for tree in trees {
            roots.push(u32::try_from(nodes.len()).ok()?);
            preorder(tree, inline, &mut nodes)?;
        }
        // The last group is filled up with a tree of one leaf, so that every group has
        // `ACROSS` trees (a loop of fixed length); their leaves are not returned.
        let pad = u32::try_from(nodes.len()).ok()?;
        nodes.push(Slot::Node(Node {
            threshold: f32::NAN,
            feature: 0,
            child: [pad; 2],
        }));
        if inline > 0 {
            nodes.push(Slot::Values([0.0; INLINE_WIDTH]));
        }
        roots.resize(trees.len().next_multiple_of(ACROSS), pad);
        let roots = roots
            .into_iter()
            .map(offset)
            .collect::<Option<Vec<u32>>>()?;
        let mut steps = Vec::with_capacity(trees.len().div_ceil(ACROSS));
        let mut work = 0u64;
        for group in trees.chunks(ACROSS) {
            let deepest = group.iter().map(Tree::depth).max().unwrap_or(0);
            steps.push(deepest);
            work = work.saturating_add(u64::from(deepest).saturating_mul(group.len() as u64));
        }
        let mut bytes = Vec::with_capacity(nodes.len().checked_mul(NODE)?);
        for slot in &nodes {
            match slot {
                Slot::Node(n) => {
                    bytes.extend_from_slice(&n.threshold.to_ne_bytes());
                    bytes.extend_from_slice(&n.feature.to_ne_bytes());
                    for c in n.child {
                        bytes.extend_from_slice(&offset(c)?.to_ne_bytes());
                    }
                }
                Slot::Values(v) => {
                    for x in v {
                        bytes.extend_from_slice(&x.to_ne_bytes());
                    }
                }
            }
        }
        // Freed before the mapping is made: a large forest's layout is tens of megabytes.
        drop(nodes);
        Some(Across {
            nodes: Store::new(bytes),
            inline,
            roots,
            steps,
            work,
        })
    }

    /// The steps of one row (each group's steps counted once per tree): its work.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// Words a walk gives for each tree: the leaf's values when they are laid out
    /// (`f64::to_bits`, one per value), else one, the leaf's ordinal in its tree.
    pub fn words(&self) -> usize {
        self.inline.max(1)
    }

    /// Adds the leaves that a walk found for `trees` (the trees this layout was made of,
    /// [`words`](Self::words) words each in `found`) to `acc`, in tree order: the sum
    /// scikit-learn's forest makes with one thread, bit for bit.
    pub fn add_leaves(&self, trees: &[Tree<f32>], found: &[u64], acc: &mut [f64]) {
        if self.has_values() {
            return self.add_values(found, acc);
        }
        Tree::add_leaf_values(trees, found.iter().map(|l| *l as u32), acc);
    }

    /// Adds the leaf values that the one row of `row` reaches in `trees` (the trees this
    /// layout was made of) to `acc`, walking every group on the calling thread; `found` is
    /// scratch of [`words`](Self::words) words per tree.
    pub fn add_row(
        &self,
        trees: &[Tree<f32>],
        row: &Rows<f32>,
        found: &mut [u64],
        acc: &mut [f64],
    ) {
        self.walk_groups(0, row, found);
        self.add_leaves(trees, found, acc);
    }

    /// Whether a walk gives the leaves' values (else their ordinals).
    pub fn has_values(&self) -> bool {
        self.inline > 0
    }

    /// [`add_leaves`](Self::add_leaves) for a layout with values: needs no trees.
    pub fn add_values(&self, found: &[u64], acc: &mut [f64]) {
        for values in found.chunks_exact(self.words()) {
            for (a, v) in acc.iter_mut().zip(values) {
                *a += f64::from_bits(*v);
            }
        }
    }

    /// What the one row of `row` reaches in each tree from group `first` on, into `found`
    /// ([`words`](Self::words) words per tree, as many trees as it holds), on the calling
    /// thread; the caller sums them in tree order ([`add_leaves`](Self::add_leaves)). A
    /// large forest shares its groups with a second thread through `crate::pair`.
    pub fn walk_groups(&self, first: usize, row: &Rows<f32>, found: &mut [u64]) {
        // The row stride as a constant where it is a common one: masked features then index
        // a fixed-size array without a bounds check.
        let data = row.values();
        match (row.has_nan(), data.len()) {
            (false, 8) => self.walk_with::<false, 8>(first, data, found),
            (false, 16) => self.walk_with::<false, 16>(first, data, found),
            (false, 32) => self.walk_with::<false, 32>(first, data, found),
            (false, 64) => self.walk_with::<false, 64>(first, data, found),
            (false, _) => self.walk_with::<false, 0>(first, data, found),
            (true, _) => self.walk_with::<true, 0>(first, data, found),
        }
    }

    /// `walk` for a row of `S` values (a power of two), or of `data.len()` if `S` is 0.
    #[inline(always)]
    fn walk_with<const NAN: bool, const S: usize>(
        &self,
        first: usize,
        data: &[f32],
        found: &mut [u64],
    ) {
        let nodes = self.nodes.bytes();
        let words = self.words();
        let stride = if S == 0 { data.len() } else { S };
        if stride == 0 {
            return;
        }
        let mask = stride - 1;
        // With `S`, the row as an array (a masked index needs no check); without, empty.
        let Ok(fixed) = <&[f32; S]>::try_from(if S == 0 { &data[..0] } else { data }) else {
            return;
        };
        let groups = self.roots.chunks_exact(ACROSS).zip(&self.steps).skip(first);
        for ((roots, steps), out) in groups.zip(found.chunks_mut(ACROSS * words)) {
            let Ok(mut at) = <[u32; ACROSS]>::try_from(roots) else {
                return;
            };
            let mut left = *steps;
            while left > 0 {
                let round = left.min(ROUND);
                for _ in 1..round {
                    step_all::<NAN, S, false>(nodes, data, fixed, mask, &mut at);
                }
                left -= round;
                if !step_all::<NAN, S, true>(nodes, data, fixed, mask, &mut at) {
                    break;
                }
            }
            if self.inline > 0 {
                // The slot after the leaf: its values.
                for (o, a) in out.chunks_mut(words).zip(at.iter()) {
                    let slot = values_at(nodes, a.wrapping_add(NODE as u32)).unwrap_or_default();
                    for (w, v) in o.iter_mut().zip(slot) {
                        *w = v;
                    }
                }
            } else {
                for (o, a) in out.iter_mut().zip(at.iter()) {
                    *o = node_at(nodes, *a).map_or(0, |node| u64::from(node.feature));
                }
            }
        }
    }
}

/// One step of every tree of a group (`at`: their nodes' offsets); with `WATCH`, `true` if
/// any moved (not all at leaves).
#[inline(always)]
fn step_all<const NAN: bool, const S: usize, const WATCH: bool>(
    nodes: &[u8],
    data: &[f32],
    fixed: &[f32; S],
    mask: usize,
    at: &mut [u32; ACROSS],
) -> bool {
    let mut moved = 0u32;
    for a in at.iter_mut() {
        // Always `Some` (children and leaves were checked when laid out); a predicted
        // branch keeps the check off the chain of loads.
        if let Some(node) = node_at(nodes, *a) {
            let x = if S == 0 {
                data.get(node.feature as usize & mask)
                    .copied()
                    .unwrap_or_default()
            } else {
                fixed[node.feature as usize & S.wrapping_sub(1)]
            };
            let next = step::<NAN>(node, x);
            if WATCH {
                moved |= next ^ *a;
            }
            *a = next;
        }
    }
    moved != 0
}

/// The byte offset in [`Store`] of slot `i`; `None` past `u32`.
fn offset(i: u32) -> Option<u32> {
    i.checked_mul(NODE as u32)
}

/// A node of the bytes of [`Store`], read at byte offset `at`.
#[derive(Clone, Copy)]
struct NodeRef {
    threshold: f32,
    feature: u32,
    /// `child` as one word: `child[0]` in the low half.
    children: u64,
}

#[inline(always)]
fn node_at(nodes: &[u8], at: u32) -> Option<NodeRef> {
    let at = at as usize;
    // Checked against the last node's offset first: one comparison with a value kept in a
    // register, after which the compiler knows the slice below to be in bounds.
    if at > nodes.len().checked_sub(NODE)? {
        return None;
    }
    let n: &[u8; NODE] = nodes.get(at..at + NODE)?.try_into().ok()?;
    let word = |i: usize| u32::from_ne_bytes([n[i], n[i + 1], n[i + 2], n[i + 3]]);
    Some(NodeRef {
        threshold: f32::from_bits(word(0)),
        feature: word(4),
        children: u64::from(word(8)) | (u64::from(word(12)) << 32),
    })
}

/// The value slot at byte offset `at` (the one after a leaf) as words (`f64::to_bits`);
/// `None` past the end.
#[inline(always)]
fn values_at(nodes: &[u8], at: u32) -> Option<[u64; INLINE_WIDTH]> {
    let at = at as usize;
    let n: &[u8; NODE] = nodes.get(at..at + NODE)?.try_into().ok()?;
    let (a, b) = n.split_at(8);
    Some([
        u64::from_ne_bytes(a.try_into().ok()?),
        u64::from_ne_bytes(b.try_into().ok()?),
    ])
}

/// Where a row at node `node` (whose value of the node's feature is `x`) goes: the offset
/// of its child.
#[inline(always)]
fn step<const NAN: bool>(node: NodeRef, x: f32) -> u32 {
    // Branch-free: the comparison is a coin flip, a branch on it mispredicts half the time
    // (and throws away the other trees' loads in flight). The comparison shifts the child
    // it picks out of the two as one word, which the compiler makes a load at an offset
    // computed from the comparison; a select between two loaded values, however written,
    // it may turn into a branch (and a conditional move, `select_unpredictable`, was
    // slower). Written so, a row of bench/native.py's forest took 151,000 instructions
    // (callgrind), against 163,000 with an index into the child bytes computed the same
    // way. `|` and `&` on bools do not short-circuit.
    let left = if NAN {
        (x <= node.threshold) | (x.is_nan() & (node.feature >= MISSING_LEFT))
    } else {
        x <= node.threshold
    };
    (node.children >> (32 * u32::from(left))) as u32
}

/// One 16-byte slot of the layout: a node, or the values of the leaf before it.
enum Slot {
    Node(Node),
    Values([f64; INLINE_WIDTH]),
}

/// Appends `tree`'s nodes to `out` in preorder, each left child right after its parent,
/// and with `inline` above 0 each leaf's values (that many) in a slot after it. `None` if
/// an index does not fit (checked by the caller), a leaf ordinal reaches [`MISSING_LEFT`]
/// or a leaf has fewer values than `inline`.
fn preorder(tree: &Tree<f32>, inline: usize, out: &mut Vec<Slot>) -> Option<()> {
    // A node reached twice (two parents: not a tree) would be laid out twice, and a chain
    // of them doubles at every level: at most the tree's node count is laid out.
    let mut left_to_lay = tree.node_count();
    // (node of `tree`, index in `out` of the parent whose right child it is, if it is one).
    let mut stack: Vec<(u32, Option<usize>)> = vec![(0, None)];
    while let Some((i, parent)) = stack.pop() {
        left_to_lay = left_to_lay.checked_sub(1)?;
        let me = u32::try_from(out.len()).ok()?;
        if let Some(p) = parent {
            match out.get_mut(p)? {
                Slot::Node(n) => n.child[0] = me,
                Slot::Values(_) => return None,
            }
        }
        match tree.split(i)? {
            Some((threshold, feature, left, right)) => {
                out.push(Slot::Node(Node {
                    threshold,
                    feature,
                    child: [0, me.checked_add(1)?],
                }));
                // The left subtree first (popped next), then the right one.
                stack.push((right, Some(me as usize)));
                stack.push((left, None));
            }
            None => {
                let ordinal = tree.leaf_ordinal(i)?;
                if ordinal >= MISSING_LEFT {
                    return None;
                }
                out.push(Slot::Node(Node {
                    threshold: f32::NAN,
                    feature: ordinal,
                    child: [me; 2],
                }));
                if inline > 0 {
                    let mut slot = [0.0; INLINE_WIDTH];
                    let values = tree.values_checked(ordinal)?;
                    slot.get_mut(..inline)?
                        .copy_from_slice(values.get(..inline)?);
                    out.push(Slot::Values(slot));
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Across, Store, ACROSS, HUGE_FROM, INLINE_WIDTH};
    use crate::forest::row_leaves;
    use crate::tree::{Rows, SplitNode, Tree};
    use skvault_format::fuzzing::Rng;

    /// A random tree in preorder (as scikit-learn's) or with the right subtree first, some
    /// splits sending NaN left; thresholds from a few values so that ties happen.
    fn grow(rng: &mut Rng, nf: usize, depth: u32, out: &mut Vec<Option<SplitNode<f32>>>) {
        let me = out.len();
        out.push(None);
        if depth == 0 || rng.below(4) == 0 {
            return;
        }
        let threshold = rng.below(7) as f32 - 3.0;
        let feature = rng.below(nf) as u32;
        let missing_left = rng.below(2) == 0;
        let swap = rng.below(2) == 0;
        let first = out.len();
        grow(rng, nf, depth - 1, out);
        let second = out.len();
        grow(rng, nf, depth - 1, out);
        let (left, right) = if swap {
            (second, first)
        } else {
            (first, second)
        };
        out[me] = Some(SplitNode {
            threshold,
            feature,
            missing_left,
            left,
            right,
        });
    }

    pub(crate) fn forest(rng: &mut Rng, n_trees: usize, nf: usize) -> Vec<Tree<f32>> {
        (0..n_trees)
            .map(|_| {
                let mut nodes = Vec::new();
                let depth = 1 + rng.below(12) as u32;
                grow(rng, nf, depth, &mut nodes);
                // Values whose sum depends on its order (as probabilities' do).
                Tree::from_nodes(&nodes, nf, |i| 1.0 / (i as f64 + 3.0)).unwrap()
            })
            .collect()
    }

    /// The same leaves as the trees walked one by one, for every row stride (the fixed-size
    /// ones and the general one), with and without NaN, ties included, and a number of
    /// trees that leaves the last group part empty; their values where they are laid out
    /// (one and two a leaf, bit for bit), their ordinals where not (three), and the same
    /// sums either way.
    #[test]
    fn leaves_match_the_trees() {
        let mut rng = Rng::new(0x5eed);
        for (nf, width) in [1, 5, 8, 20, 33, 64, 100]
            .into_iter()
            .zip([1, 2, 3].into_iter().cycle())
        {
            for n_trees in [1, ACROSS - 1, ACROSS, 3 * ACROSS + 5] {
                let trees: Vec<_> = forest(&mut rng, n_trees, nf)
                    .into_iter()
                    .map(|t| if width > 1 { t.widened(width) } else { t })
                    .collect();
                let across = Across::new(&trees).unwrap();
                assert_eq!(
                    across.words(),
                    if width <= INLINE_WIDTH { width } else { 1 }
                );
                let mut row = Rows::default();
                for r in 0..40 {
                    let x: Vec<f32> = (0..nf)
                        .map(|_| match rng.below(10) {
                            0 if r % 2 == 0 => f32::NAN,
                            v => v as f32 - 4.5 + (rng.below(2) as f32) * 0.5,
                        })
                        .collect();
                    row.fill_one(&x, nf, |v| v);
                    let mut leaf = vec![0; n_trees];
                    row_leaves(&trees, &row, &mut leaf);
                    let want: Vec<u64> = if across.words() == 1 && width > 1 {
                        leaf.iter().map(|l| u64::from(*l)).collect()
                    } else {
                        let values = trees.iter().zip(&leaf).flat_map(|(t, l)| t.values(*l));
                        values.map(|v| v.to_bits()).collect()
                    };
                    let mut got = vec![7; n_trees * across.words()];
                    across.walk_groups(0, &row, &mut got);
                    assert_eq!(got, want, "nf {nf}, {n_trees} trees, row {x:?}");
                    let mut sum = vec![0.5; width];
                    for (t, l) in trees.iter().zip(&leaf) {
                        for (s, v) in sum.iter_mut().zip(t.values(*l)) {
                            *s += *v;
                        }
                    }
                    let mut acc = vec![0.5; width];
                    across.add_leaves(&trees, &got, &mut acc);
                    assert_eq!(acc, sum);
                }
            }
        }
    }

    /// A large layout goes to its own mapping (huge pages advised) with the same bytes; a
    /// small one stays on the heap.
    #[test]
    fn large_layouts_are_mapped_with_the_same_bytes() {
        let mut rng = Rng::new(0xb16);
        let big: Vec<u8> = (0..HUGE_FROM + 16).map(|_| rng.below(256) as u8).collect();
        let store = Store::new(big.clone());
        assert!(matches!(store, Store::Mapped(_)));
        assert_eq!(store.bytes(), &big[..]);
        let small = big[..HUGE_FROM - 16].to_vec();
        let store = Store::new(small.clone());
        assert!(matches!(store, Store::Heap(_)));
        assert_eq!(store.bytes(), &small[..]);
    }

    /// A node with two parents (not a tree: its subtree would be laid out twice, and a chain
    /// of them doubles at every level) is refused; the caller walks the trees as they are.
    #[test]
    fn a_shared_child_is_refused() {
        let split = |left, right| {
            Some(SplitNode {
                threshold: 0.0f32,
                feature: 0,
                missing_left: false,
                left,
                right,
            })
        };
        let nodes = vec![split(1, 2), split(2, 3), None, None];
        let tree = Tree::from_nodes(&nodes, 1, |_| 0.0).unwrap();
        assert!(Across::new(&[tree]).is_none());
    }
}
