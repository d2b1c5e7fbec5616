//! scikit-learn's Cython `Tree` and the estimators that call it without checking input.
//!
//! `Tree.apply`/`predict`/`decision_path` follow `left_child`/`right_child` and read
//! `X[i, feature]` with bounds checks off; `compute_feature_importances` writes
//! `importances[feature]` into an array of `n_features`; `Tree.__cinit__` copies
//! `n_outputs` class counts. So: children must follow their parent and stay below the node
//! count (no cycles, no escape), features must be below the tree's `n_features`, leaves
//! are leaves on both sides, `values` has one row per node, and the tree's `n_features`
//! must equal the feature count its holder validates `X` against (forests and gradient
//! boosting call the tree with `check_input=False`).

use skvault_format::Node;

use super::Checked;
use crate::error::{malformed, Result};
use crate::state::{field8, node_int, seq_items, Obj};

const TREE: &str = "sklearn.tree._tree.Tree";
const LEAF: i64 = -1;
/// Feature and node counts beyond this are refused (scikit-learn uses intp, we keep room).
const MAX_COUNT: i64 = 1 << 40;

/// Estimators whose Python code calls a tree's compiled code on `X` checked only against
/// the estimator's own `n_features_in_`, by qualified-name prefix.
const HOLDER_PREFIXES: &[&str] = &[
    "sklearn.tree._classes.",
    "sklearn.ensemble._forest.",
    "sklearn.ensemble._gb.",
    "sklearn.ensemble._iforest.",
];

pub(super) fn is_holder(class: &str) -> bool {
    HOLDER_PREFIXES.iter().any(|p| class.starts_with(p))
}

/// The array a `Tree` object's state names directly as its `nodes`, if any.
pub(super) fn nodes_array(obj: &skvault_format::Object) -> Option<usize> {
    if obj.class != TREE {
        return None;
    }
    let Some(Node::Dict(items)) = &obj.state else {
        return None;
    };
    items.iter().find_map(|(k, v)| match (k, v) {
        (Node::Str(k), Node::Array(i)) if k == "nodes" => Some(*i),
        _ => None,
    })
}

/// An integer argument or attribute in [0, MAX_COUNT].
fn count(node: Option<&Node>, path: &str, what: &str) -> Result<usize> {
    node.and_then(node_int)
        .filter(|v| (0..=MAX_COUNT).contains(v))
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| malformed(path, format!("{what} must be an integer in [0, 2^40]")))
}

/// Checks a `Tree` object; `n_features` is what its holder validates `X` against, when known.
/// Returns the tree's feature count.
pub(super) fn check_tree(o: &Obj<'_, '_>, n_features: Option<usize>) -> Result<usize> {
    let path = &o.path;
    let skvault_format::Construct::Call { args } = &o.obj.construct else {
        return Err(malformed(
            path,
            "Tree must be created by Tree(n_features, n_classes, n_outputs)",
        ));
    };
    let [nf, n_classes, n_outputs] = args.as_slice() else {
        return Err(malformed(path, "Tree takes 3 arguments"));
    };
    let nf = count(Some(o.ctx.resolve(nf)), path, "n_features")?;
    let n_outputs = count(Some(o.ctx.resolve(n_outputs)), path, "n_outputs")?;
    if n_outputs == 0 {
        return Err(malformed(path, "n_outputs must be at least 1"));
    }
    if let Some(expected) = n_features {
        if nf != expected {
            return Err(malformed(
                path,
                format!("the tree has {nf} features but its estimator validates X for {expected}"),
            ));
        }
    }
    let (shape, classes) = o.ctx.i64_array(n_classes, &format!("{path}/n_classes"))?;
    if shape != [n_outputs] || classes.iter().any(|c| !(1..=MAX_COUNT).contains(c)) {
        return Err(malformed(
            path,
            format!("n_classes must hold {n_outputs} positive counts"),
        ));
    }
    let max_classes = classes.iter().copied().max().unwrap_or(1) as usize;
    let node_count = count(o.attr("node_count"), path, "node_count")?;
    let nodes = o.ctx.records(o.req("nodes")?, &o.sub("nodes"))?;
    if nodes.len != node_count {
        return Err(malformed(path, "node_count differs from the nodes array"));
    }
    let depth = match nodes.le_i64_fields(["left_child", "right_child", "feature"]) {
        // One pass over the records, reading the three fields where they lie: a forest's
        // node arrays are most of its file, and this runs on every load.
        Some((whole, itemsize, at)) => {
            links_in_records(whole, itemsize, at, nodes.len, nf, &o.sub("nodes"))?
        }
        None => {
            let left = nodes.i64_column("left_child")?;
            let right = nodes.i64_column("right_child")?;
            let feature = nodes.i64_column("feature")?;
            structure(&left, &right, &feature, nf, &o.sub("nodes"))?
        }
    };
    let max_depth = count(o.attr("max_depth"), path, "max_depth")?;
    if max_depth < depth {
        return Err(malformed(
            path,
            format!("max_depth {max_depth} is below the depth of the nodes ({depth})"),
        ));
    }
    let values = o.numeric_shape("values")?;
    if values != [node_count, n_outputs, max_classes] {
        return Err(malformed(
            &o.sub("values"),
            format!(
                "shape {:?}, expected ({node_count}, {n_outputs}, {max_classes})",
                values
            ),
        ));
    }
    Ok(nf)
}

/// Checks the links of a node array: a node is a leaf (both children -1) or has two
/// children that follow it and stay below the node count, and splits on a feature below
/// `n_features`. Returns the depth. Children after parents means every walk ends.
pub(crate) fn structure(
    left: &[i64],
    right: &[i64],
    feature: &[i64],
    n_features: usize,
    path: &str,
) -> Result<usize> {
    let n = left.len().min(right.len()).min(feature.len());
    let at = |column: &[i64], i: usize| column.get(i).copied().unwrap_or(LEAF);
    let node = |i: usize| (at(left, i), at(right, i), at(feature, i));
    links(node, n, n_features, path)
}

/// [`structure`] over the `(left, right, feature)` of nodes `0..n`, as `node(i)` gives them.
///
/// The first pass has no branch that depends on the data (leaves and splits alternate
/// unpredictably, and this runs over every node of a forest on each load): it only notes
/// whether some node is wrong. A wrong node is then looked for, and reported, by
/// [`links_checked`].
fn links(
    node: impl Fn(usize) -> (i64, i64, i64),
    n: usize,
    n_features: usize,
    path: &str,
) -> Result<usize> {
    let Some(last) = n.checked_sub(1) else {
        return Ok(0);
    };
    let mut depth = vec![0usize; n];
    let mut max = 0;
    let mut bad = false;
    for i in 0..n {
        let (l, r, f) = node(i);
        bad |= link(&mut depth, &mut max, i, last, (l, r, f), n_features);
    }
    if bad {
        return links_checked(node, n, n_features, path);
    }
    Ok(max)
}

/// [`links`] over the `n` records of a node array (`itemsize` bytes each, in `whole`) whose
/// three `<i8` fields are at `at`, read where they lie, in a plain loop over the records:
/// 28 instructions a node, against 87 through an iterator adapter over them (a 500-tree
/// forest has two million nodes, checked on every load).
fn links_in_records(
    whole: &[u8],
    itemsize: usize,
    at: [usize; 3],
    n: usize,
    n_features: usize,
    path: &str,
) -> Result<usize> {
    let fits = |offset: usize| offset.checked_add(8).is_some_and(|end| end <= itemsize);
    if !at.iter().all(|a| fits(*a)) {
        return Err(malformed(path, "a node field lies outside its record"));
    }
    let Some(records) = n.checked_mul(itemsize).and_then(|len| whole.get(..len)) else {
        return Err(malformed(path, format!("fewer than {n} records")));
    };
    let Some(last) = n.checked_sub(1) else {
        return Ok(0);
    };
    // Each field is within its record: a plain loop over the records reads them with no
    // check per node.
    let [l_at, r_at, f_at] = at;
    let read = |record: &[u8], offset: usize| i64::from_le_bytes(field8(record, offset));
    let mut depth = vec![0usize; n];
    let mut max = 0;
    let mut bad = false;
    for (i, record) in records.chunks_exact(itemsize).enumerate() {
        let fields = (read(record, l_at), read(record, r_at), read(record, f_at));
        bad |= link(&mut depth, &mut max, i, last, fields, n_features);
    }
    if bad {
        let node = |i: usize| {
            let record = records.get(i * itemsize..).unwrap_or(&[]);
            (read(record, l_at), read(record, r_at), read(record, f_at))
        };
        return links_checked(node, n, n_features, path);
    }
    Ok(max)
}

/// One node of [`links`]: notes its depth in `depth` (for its children) and `max` (a leaf),
/// without a branch on the data. Returns whether the node is wrong; a wrong node writes
/// somewhere in bounds, and the caller throws the result away.
#[inline(always)]
fn link(
    depth: &mut [usize],
    max: &mut usize,
    i: usize,
    last: usize,
    (l, r, f): (i64, i64, i64),
    n_features: usize,
) -> bool {
    let d = depth.get(i).copied().unwrap_or(0);
    let leaf = (l == LEAF) & (r == LEAF);
    // A child follows its parent and stays below the count: `i < c <= last` as one
    // unsigned comparison (a negative `c` wraps above any count).
    let span = (last - i.min(last)) as u64;
    let follows = |c: i64| (c as u64).wrapping_sub(i as u64 + 1) < span;
    let split = follows(l) & follows(r) & ((f as u64) < n_features as u64);
    *max = if leaf { (*max).max(d) } else { *max };
    let (lc, rc) = if split {
        (l as usize, r as usize)
    } else {
        (i, i)
    };
    let next = if split { d + 1 } else { d };
    if let Some(slot) = depth.get_mut(lc.min(last)) {
        *slot = next;
    }
    if let Some(slot) = depth.get_mut(rc.min(last)) {
        *slot = next;
    }
    !(leaf | split)
}

/// [`links`] node by node, stopping at the first wrong one, which it reports.
fn links_checked(
    node: impl Fn(usize) -> (i64, i64, i64),
    n: usize,
    n_features: usize,
    path: &str,
) -> Result<usize> {
    let mut depth = vec![0usize; n];
    let mut max = 0;
    for i in 0..n {
        let (l, r, f) = node(i);
        if l == LEAF || r == LEAF {
            if l != r {
                return Err(malformed(
                    path,
                    format!("node {i} has children {l} and {r}"),
                ));
            }
            max = max.max(depth[i]);
            continue;
        }
        let child = |c: i64| usize::try_from(c).ok().filter(|c| *c > i && *c < n);
        let (Some(lc), Some(rc)) = (child(l), child(r)) else {
            return Err(malformed(
                path,
                format!("node {i} has children {l} and {r} (they must follow it, below {n})"),
            ));
        };
        if usize::try_from(f).map_or(true, |f| f >= n_features) {
            return Err(malformed(
                path,
                format!("node {i} splits on feature {f}, not below {n_features}"),
            ));
        }
        depth[lc] = depth[i] + 1;
        depth[rc] = depth[i] + 1;
    }
    Ok(max)
}

/// A tree estimator's `tree_`, an ensemble's `estimators_` (lists or arrays of tree
/// estimators, as in gradient boosting): every tree must have the holder's feature count,
/// or, with `estimators_features_` (IsolationForest, bagging), that of its feature subset.
pub(super) fn check_holder(o: &Obj<'_, '_>, checked: &mut Checked) -> Result<()> {
    let Some(nf_node) = o.attr("n_features_in_") else {
        // Not fitted (or not a fitted estimator): nothing will call the trees.
        return Ok(());
    };
    let nf = count(Some(nf_node), &o.path, "n_features_in_")?;
    if let Some(node) = o.attr("tree_") {
        if let Some(t) = o.ctx.object(node).filter(|t| t.class == TREE) {
            tree_of(o, t, &o.sub("tree_"), nf, checked)?;
        }
    }
    let Some(estimators) = o.attr("estimators_") else {
        return Ok(());
    };
    let subsets = match o.attr("estimators_features_") {
        Some(node) => seq_items(o.ctx, node),
        None => None,
    };
    if o.class().starts_with("sklearn.ensemble._gb.") {
        gb_width(o, estimators)?;
    }
    let mut flat = Vec::new();
    flatten(o, estimators, &mut flat, 0);
    for (i, est) in flat.iter().enumerate() {
        let e = Obj::new(o.ctx, est, format!("{}/estimators_[{i}]", o.path));
        let Some(t) = e.attr("tree_").and_then(|n| o.ctx.object(n)) else {
            continue;
        };
        if t.class != TREE {
            continue;
        }
        let expected = match &subsets {
            Some(s) => {
                let node = s
                    .get(i)
                    .ok_or_else(|| malformed(&o.path, "fewer feature subsets than estimators"))?;
                let (shape, feats) = o.ctx.i64_array(node, &o.sub("estimators_features_"))?;
                if feats
                    .iter()
                    .any(|f| usize::try_from(*f).map_or(true, |f| f >= nf))
                {
                    return Err(malformed(
                        &o.sub("estimators_features_"),
                        "feature out of range",
                    ));
                }
                shape.first().copied().unwrap_or(0)
            }
            None => nf,
        };
        tree_of(o, t, &e.sub("tree_"), expected, checked)?;
    }
    Ok(())
}

/// Gradient boosting's `predict_stages` adds tree `k` of every stage to column `k` of the raw
/// predictions with no bounds check; those have `n_trees_per_iteration_` columns (init
/// "zero") or as many as the init estimator's output: 1, or its classes for multiclass.
/// So `estimators_` is (n_stages, K) with K the width the Python code allocates.
fn gb_width(o: &Obj<'_, '_>, estimators: &Node) -> Result<()> {
    let path = o.sub("estimators_");
    let Node::ObjArray { shape, .. } = o.ctx.resolve(estimators) else {
        return Err(malformed(&path, "expected an object array of trees"));
    };
    let [_, k] = shape.as_slice() else {
        return Err(malformed(&path, "expected 2 dimensions"));
    };
    let k = usize::try_from(*k).map_err(|_| malformed(&path, "too wide"))?;
    let per_iteration = count(
        o.attr("n_trees_per_iteration_"),
        &o.path,
        "n_trees_per_iteration_",
    )?;
    if k != per_iteration || k == 0 {
        return Err(malformed(
            &path,
            format!("{k} trees per stage for {per_iteration} outputs"),
        ));
    }
    if k > 1 {
        let init_width = match o.attr("init_") {
            Some(Node::Str(s)) if s == "zero" => k,
            Some(init) => o
                .ctx
                .object(init)
                .map(|i| Obj::new(o.ctx, i, o.sub("init_")))
                .and_then(|i| i.attr("classes_").and_then(|c| class_count(&i, c)))
                .ok_or_else(|| {
                    malformed(
                        &o.sub("init_"),
                        "a multiclass init estimator needs classes_",
                    )
                })?,
            None => return Err(malformed(&o.path, "missing init_")),
        };
        if init_width != k {
            return Err(malformed(
                &o.sub("init_"),
                format!("predicts {init_width} columns for {k} trees per stage"),
            ));
        }
    }
    Ok(())
}

fn class_count(o: &Obj<'_, '_>, classes: &Node) -> Option<usize> {
    match o.ctx.resolve(classes) {
        Node::Array(index) => match o
            .ctx
            .entry(*index, &o.sub("classes_"))
            .ok()?
            .shape
            .as_slice()
        {
            [n] => usize::try_from(*n).ok(),
            _ => None,
        },
        Node::ObjArray { items, .. } => Some(items.len()),
        _ => seq_items(o.ctx, classes).map(|v| v.len()),
    }
}

/// Checks `tree` once, then only that its feature count is `n_features` for every other holder.
fn tree_of(
    o: &Obj<'_, '_>,
    tree: &skvault_format::Object,
    path: &str,
    n_features: usize,
    checked: &mut Checked,
) -> Result<()> {
    match checked.n_features(tree) {
        Some(nf) if nf == n_features => Ok(()),
        Some(nf) => Err(malformed(
            path,
            format!("the tree has {nf} features but its estimator validates X for {n_features}"),
        )),
        None => {
            let nf = check_tree(&Obj::new(o.ctx, tree, path.to_string()), Some(n_features))?;
            checked.insert(tree, nf);
            Ok(())
        }
    }
}

/// The estimator objects of a list, tuple or (nested) object array.
fn flatten<'f>(
    o: &Obj<'_, 'f>,
    node: &'f Node,
    out: &mut Vec<&'f skvault_format::Object>,
    depth: usize,
) {
    if depth > 4 {
        return;
    }
    match o.ctx.resolve(node) {
        Node::List(items) | Node::Tuple(items) | Node::ObjArray { items, .. } => {
            for item in items {
                flatten(o, item, out, depth + 1);
            }
        }
        Node::Object(obj) => out.push(obj),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid tree of `n` nodes in scikit-learn's order (depth first, children after their
    /// parent) shaped by `seed`, as `(left, right, feature)`.
    fn grown(n: usize, seed: u64) -> Vec<(i64, i64, i64)> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut nodes = vec![(LEAF, LEAF, -2); 1];
        let mut open = vec![0usize];
        while let Some(i) = open.pop() {
            if nodes.len() + 2 > n || next() % 3 == 0 {
                continue;
            }
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes.push((LEAF, LEAF, -2));
            nodes.push((LEAF, LEAF, -2));
            nodes[i] = (l as i64, r as i64, (next() % 5) as i64);
            open.push(r);
            open.push(l);
        }
        nodes
    }

    fn both(nodes: &[(i64, i64, i64)], n_features: usize) -> (Result<usize>, Result<usize>) {
        let n = nodes.len();
        let node = |i: usize| nodes[i];
        let fast = links(node, n, n_features, "/t");
        let slow = links_checked(node, n, n_features, "/t");
        (fast, slow)
    }

    /// The branch-free pass accepts exactly the trees the node-by-node one accepts, with the
    /// same depth, and reports the same first wrong node.
    #[test]
    fn links_agrees_with_the_node_by_node_check() {
        let message = |r: Result<usize>| match r {
            Ok(depth) => format!("ok {depth}"),
            Err(e) => e.to_string(),
        };
        let odd = [LEAF, -2, 0, 1, 2, 3, 7, 40, i64::MAX, i64::MIN];
        for seed in 0..200u64 {
            let tree = grown(1 + (seed as usize * 7) % 60, seed);
            let (fast, slow) = both(&tree, 5);
            assert!(fast.is_ok(), "seed {seed}");
            assert_eq!(message(fast), message(slow));
            // One field of one node changed to an odd value: the same verdict either way.
            let mut bad = tree.clone();
            let at = seed as usize % bad.len();
            let value = odd[(seed as usize / 3) % odd.len()];
            match seed % 3 {
                0 => bad[at].0 = value,
                1 => bad[at].1 = value,
                _ => bad[at].2 = value,
            }
            let (fast, slow) = both(&bad, 5);
            assert_eq!(message(fast), message(slow), "seed {seed}");
            let (fast, slow) = both(&tree, 2);
            assert_eq!(message(fast), message(slow), "seed {seed}");
        }
        assert_eq!(message(both(&[], 1).0), "ok 0");
    }

    /// `nodes` as records of `itemsize` bytes with the three fields at `at` (the rest 0xee).
    fn records(nodes: &[(i64, i64, i64)], itemsize: usize, at: [usize; 3]) -> Vec<u8> {
        let mut out = vec![0xee; nodes.len() * itemsize];
        for (record, (l, r, f)) in out.chunks_exact_mut(itemsize).zip(nodes) {
            for (offset, value) in at.iter().zip([l, r, f]) {
                record[*offset..*offset + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    /// Read from records, as scikit-learn lays them out or otherwise, the nodes give the
    /// verdict and depth they give read one by one.
    #[test]
    fn links_in_records_agrees_with_links() {
        let message = |r: Result<usize>| match r {
            Ok(depth) => format!("ok {depth}"),
            Err(e) => e.to_string(),
        };
        let layouts = [(64, [0, 8, 16]), (48, [24, 0, 40]), (24, [16, 8, 0])];
        for seed in 0..100u64 {
            let mut tree = grown(1 + (seed as usize * 7) % 60, seed);
            if seed % 2 == 1 {
                let at = seed as usize % tree.len();
                tree[at].0 = [LEAF, 0, -7, 1 << 41][(seed as usize / 2) % 4];
            }
            let node = |i: usize| tree[i];
            let want = message(links(node, tree.len(), 5, "/t"));
            for (itemsize, at) in layouts {
                let whole = records(&tree, itemsize, at);
                let got = links_in_records(&whole, itemsize, at, tree.len(), 5, "/t");
                assert_eq!(message(got), want, "seed {seed}, layout {at:?}");
            }
        }
        // A field past the end of its record, or fewer records than nodes: refused, not read
        // elsewhere.
        let tree = grown(9, 3);
        let whole = records(&tree, 24, [0, 8, 16]);
        let refused =
            |whole: &[u8], at| message(links_in_records(whole, 24, at, tree.len(), 5, "/t"));
        assert!(refused(&whole, [0, 8, 20]).contains("outside its record"));
        let short = &whole[..whole.len() - 24];
        assert!(refused(short, [0, 8, 16]).contains(&format!("fewer than {} records", tree.len())));
        assert_eq!(
            links_in_records(&[], 24, [0, 8, 16], 0, 5, "/t").ok(),
            Some(0)
        );
    }
}
