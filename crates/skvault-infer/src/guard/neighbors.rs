//! scikit-learn's `KDTree`/`BallTree` and the `DistanceMetric` classes they hold.
//!
//! A tree's `__setstate__` takes a 13-tuple `(data, idx_array, node_data, node_bounds,
//! leaf_size, n_levels, n_nodes, n_trims, n_leaves, n_splits, n_calls, dist_metric,
//! sample_weight)` as is. The queries (compiled with bounds checks off) then read
//! `node_data[i]` for the root and for children `2i+1`, `2i+2` of every non-leaf node,
//! `idx_array[idx_start..idx_end]` of every leaf, `data[idx_array[k]]` rows of `d` values,
//! `node_bounds[.., i, 0..d]` and `sample_weight[idx_array[k]]`, and call the metric's
//! `dist(x, y, d)` with the tree's `d`. A metric sizes nothing from `d`: SEuclidean reads
//! `vec[0..d]`, weighted Minkowski `vec[0..d]`, Mahalanobis `mat[0..d, 0..d]` and writes
//! `buffer[0..d]` (allocated with `mat.shape[0]` entries). A `None` metric is called all the
//! same. So every index must stay inside its array and the metric must be sized for `d`.
//!
//! Outside a tree, `DistanceMetric.pairwise` checks the input's width against `vec`
//! (SEuclidean, weighted Minkowski) or `mat.shape[0]` (Mahalanobis) first; Mahalanobis then
//! reads `mat[i, j]` for `i, j < mat.shape[0]`, so `mat` must be square.

use skvault_format::dtype::{ByteOrder, Field, Kind};
use skvault_format::{Construct, DType, Node};

use super::Checked;
use crate::error::{malformed, Result};
use crate::state::{node_float, node_int, Ctx, Obj};

const METRICS: &str = "sklearn.metrics._dist_metrics.";
const KD: &str = "sklearn.neighbors._kd_tree.";
const BALL: &str = "sklearn.neighbors._ball_tree.";
/// Levels beyond this would need more nodes than any array can hold.
const MAX_LEVELS: i64 = 48;

/// The metric classes a KD tree accepts (its `VALID_METRICS`), without the width suffix.
const KD_METRICS: &[&str] = &[
    "EuclideanDistance",
    "ManhattanDistance",
    "ChebyshevDistance",
    "MinkowskiDistance",
];
/// The metric classes a ball tree accepts (its `VALID_METRICS`), without the width suffix.
const BALL_METRICS: &[&str] = &[
    "BrayCurtisDistance",
    "CanberraDistance",
    "ChebyshevDistance",
    "DiceDistance",
    "EuclideanDistance",
    "HammingDistance",
    "HaversineDistance",
    "JaccardDistance",
    "MahalanobisDistance",
    "ManhattanDistance",
    "MinkowskiDistance",
    "PyFuncDistance",
    "RogersTanimotoDistance",
    "RussellRaoDistance",
    "SEuclideanDistance",
    "SokalMichenerDistance",
    "SokalSneathDistance",
];
/// Every concrete metric class, without the width suffix.
pub(super) const METRIC_CLASSES: &[&str] = &[
    "BrayCurtisDistance",
    "CanberraDistance",
    "ChebyshevDistance",
    "DiceDistance",
    "EuclideanDistance",
    "HammingDistance",
    "HaversineDistance",
    "JaccardDistance",
    "KulsinskiDistance",
    "MahalanobisDistance",
    "ManhattanDistance",
    "MatchingDistance",
    "MinkowskiDistance",
    "PyFuncDistance",
    "RogersTanimotoDistance",
    "RussellRaoDistance",
    "SEuclideanDistance",
    "SokalMichenerDistance",
    "SokalSneathDistance",
];

/// Float width of the `...64` and `...32` variants, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    W64,
    W32,
}

impl Width {
    fn bytes(self) -> u64 {
        match self {
            Width::W64 => 8,
            Width::W32 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kd {
    Kd,
    Ball,
}

/// The tree classes: `KDTree` is `KDTree64`; `BinaryTree64`/`32` of each module are the
/// same compiled code as the tree classes that derive from them.
fn tree_kind(class: &str) -> Option<(Kd, Width)> {
    let (kind, short) = if let Some(s) = class.strip_prefix(KD) {
        (
            Kd::Kd,
            s.strip_prefix("KDTree")
                .or_else(|| s.strip_prefix("BinaryTree"))?,
        )
    } else if let Some(s) = class.strip_prefix(BALL) {
        (
            Kd::Ball,
            s.strip_prefix("BallTree")
                .or_else(|| s.strip_prefix("BinaryTree"))?,
        )
    } else {
        return None;
    };
    let width = match short {
        "" if !class.ends_with("BinaryTree") => Width::W64,
        "64" => Width::W64,
        "32" => Width::W32,
        _ => return None,
    };
    Some((kind, width))
}

/// The metric's short name without suffix and its width; `None` for the abstract classes.
fn metric_kind(class: &str) -> Option<(&str, Width)> {
    let short = class.strip_prefix(METRICS)?;
    let (base, width) = if let Some(b) = short.strip_suffix("64") {
        (b, Width::W64)
    } else {
        (short.strip_suffix("32")?, Width::W32)
    };
    METRIC_CLASSES.contains(&base).then_some((base, width))
}

/// Objects created with `newObj(cls)`: no arguments, no items, a tuple state.
fn tuple_state<'f>(o: &Obj<'_, 'f>, what: &str) -> Result<Vec<&'f Node>> {
    let empty_new = matches!(&o.obj.construct, Construct::New { args, kwargs } if args.is_empty() && kwargs.is_empty());
    if !empty_new || !o.obj.list_items.is_empty() || !o.obj.dict_items.is_empty() {
        return Err(malformed(
            &o.path,
            format!("{what} is created empty, then given its state tuple"),
        ));
    }
    match o.obj.state.as_ref().map(|s| o.ctx.resolve(s)) {
        Some(Node::Tuple(items)) => Ok(items.iter().map(|n| o.ctx.resolve(n)).collect()),
        _ => Err(malformed(
            &o.path,
            format!("the state of {what} must be a tuple"),
        )),
    }
}

/// A float array of exactly `bytes` wide elements; returns its shape.
fn float_array<'f>(ctx: &Ctx<'f>, node: &'f Node, path: &str, bytes: u64) -> Result<Vec<usize>> {
    let (dtype, shape) = ctx.array_meta(node, path)?;
    match dtype {
        DType::Scalar {
            kind: Kind::Float,
            count,
            ..
        } if *count == bytes => Ok(shape),
        _ => Err(malformed(
            path,
            format!("expected a float{} array", bytes * 8),
        )),
    }
}

/// scikit-learn's `NodeData` record, exactly as the compiled struct lays it out.
fn node_data_dtype() -> Vec<Field> {
    let int = DType::Scalar {
        order: ByteOrder::Little,
        kind: Kind::Int,
        count: 8,
    };
    let float = DType::Scalar {
        order: ByteOrder::Little,
        kind: Kind::Float,
        count: 8,
    };
    let f = |name: &str, dtype: &DType, offset: u64| Field {
        name: name.into(),
        dtype: dtype.clone(),
        offset,
    };
    vec![
        f("idx_start", &int, 0),
        f("idx_end", &int, 8),
        f("is_leaf", &int, 16),
        f("radius", &float, 24),
    ]
}

fn small_int(
    node: &Node,
    path: &str,
    what: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64> {
    node_int(node).filter(|v| range.contains(v)).ok_or_else(|| {
        malformed(
            path,
            format!(
                "{what} must be an integer in [{}, {}]",
                range.start(),
                range.end()
            ),
        )
    })
}

/// Checks a KD or ball tree and the metric it holds (recorded in `checked` with the tree's
/// dimension, so that the metric is not checked again alone, and a metric shared by trees
/// of different dimensions is refused).
pub(super) fn check_tree(o: &Obj<'_, '_>, checked: &mut Checked) -> Result<()> {
    let Some((kind, width)) = tree_kind(o.class()) else {
        return Err(malformed(&o.path, "not a neighbors tree"));
    };
    let path = &o.path;
    let state = tuple_state(o, "a neighbors tree")?;
    let [data, idx_array, node_data, node_bounds, leaf_size, n_levels, n_nodes, n_trims, n_leaves, n_splits, n_calls, metric, sample_weight] =
        state.as_slice()
    else {
        return Err(malformed(
            path,
            "the state of a neighbors tree has 13 items",
        ));
    };
    let sub = |name: &str| format!("{path}/{name}");

    // data: (n, d), n >= 1 and d >= 1 (the queries take &data[0, 0]).
    let shape = float_array(o.ctx, data, &sub("data"), width.bytes())?;
    let [n, d] = shape.as_slice() else {
        return Err(malformed(&sub("data"), "must have 2 dimensions"));
    };
    let (n, d) = (*n, *d);
    if n == 0 || d == 0 {
        return Err(malformed(&sub("data"), "must not be empty"));
    }

    check_permutation(o, idx_array, &sub("idx_array"), n)?;

    let nodes = check_nodes(o, [n_levels, n_nodes, node_data], path, n)?;

    // node_bounds: (2, n_nodes, d) for KD trees (lower, upper), (1, n_nodes, d) for ball trees.
    let rows = match kind {
        Kd::Kd => 2,
        Kd::Ball => 1,
    };
    let p = sub("node_bounds");
    let bounds = float_array(o.ctx, node_bounds, &p, width.bytes())?;
    if bounds != [rows, nodes, d] {
        return Err(malformed(
            &p,
            format!("shape {bounds:?}, expected ({rows}, {nodes}, {d})"),
        ));
    }

    small_int(leaf_size, &sub("leaf_size"), "leaf_size", 1..=i64::MAX)?;
    for (node, name) in [
        (n_trims, "n_trims"),
        (n_leaves, "n_leaves"),
        (n_splits, "n_splits"),
        (n_calls, "n_calls"),
    ] {
        small_int(node, &sub(name), name, 0..=i64::from(i32::MAX))?;
    }

    match sample_weight {
        Node::None => {}
        other => {
            let p = sub("sample_weight");
            let shape = o.ctx.numeric_shape(other, &p)?;
            if shape != [n] {
                return Err(malformed(&p, format!("shape {shape:?}, expected ({n},)")));
            }
        }
    }

    check_tree_metric(o, metric, (kind, width), d, checked)
}

/// `idx_array`: a permutation of 0..n, of intp.
fn check_permutation<'f>(o: &Obj<'_, 'f>, idx_array: &'f Node, p: &str, n: usize) -> Result<()> {
    let (dtype, _) = o.ctx.array_meta(idx_array, p)?;
    if !matches!(
        dtype,
        DType::Scalar {
            kind: Kind::Int,
            count: 8,
            ..
        }
    ) {
        return Err(malformed(p, "must be an int64 array"));
    }
    let (idx_shape, idx) = o.ctx.i64_array(idx_array, p)?;
    if idx_shape != [n] {
        return Err(malformed(
            p,
            format!("shape {idx_shape:?}, expected ({n},)"),
        ));
    }
    let mut seen = vec![false; n];
    for v in &idx {
        match usize::try_from(*v).ok().and_then(|i| seen.get_mut(i)) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(malformed(
                    p,
                    format!("must be a permutation of 0..{n} (found {v})"),
                ))
            }
        }
    }
    Ok(())
}

/// `n_levels`, `n_nodes` and `node_data`: a complete binary tree of `n_levels` levels whose
/// nodes cover points of 0..n; the node count.
fn check_nodes<'f>(
    o: &Obj<'_, 'f>,
    [n_levels, n_nodes, node_data]: [&'f Node; 3],
    path: &str,
    n: usize,
) -> Result<usize> {
    let sub = |name: &str| format!("{path}/{name}");
    let n_levels = small_int(n_levels, &sub("n_levels"), "n_levels", 1..=MAX_LEVELS)?;
    let n_nodes = small_int(n_nodes, &sub("n_nodes"), "n_nodes", 1..=i64::MAX)?;
    if n_nodes != (1i64 << n_levels) - 1 {
        return Err(malformed(
            path,
            format!("n_nodes {n_nodes} is not 2^n_levels - 1 for n_levels {n_levels}"),
        ));
    }
    let p = sub("node_data");
    let (dtype, _) = o.ctx.array_meta(node_data, &p)?;
    let layout_ok = matches!(dtype, DType::Structured { fields, itemsize: 32, .. } if *fields == node_data_dtype());
    if !layout_ok {
        return Err(malformed(
            &p,
            "must have scikit-learn's NodeData layout (idx_start, idx_end, is_leaf: int64; radius: float64)",
        ));
    }
    let records = o.ctx.records(node_data, &p)?;
    if i64::try_from(records.len).ok() != Some(n_nodes) {
        return Err(malformed(
            &p,
            format!("{} nodes, but n_nodes is {n_nodes}", records.len),
        ));
    }
    let starts = records.i64_column("idx_start")?;
    let ends = records.i64_column("idx_end")?;
    let leaves = records.i64_column("is_leaf")?;
    let nodes = records.len;
    for i in 0..nodes {
        let (s, e) = (starts[i], ends[i]);
        let in_range = usize::try_from(s)
            .ok()
            .zip(usize::try_from(e).ok())
            .is_some_and(|(s, e)| s <= e && e <= n);
        if !in_range {
            return Err(malformed(
                &p,
                format!("node {i} covers points {s}..{e}, not inside 0..{n}"),
            ));
        }
        // Children of node i are 2i+1 and 2i+2; a node without both is a leaf.
        if leaves[i] == 0
            && i.checked_mul(2)
                .and_then(|c| c.checked_add(2))
                .is_none_or(|c| c >= nodes)
        {
            return Err(malformed(
                &p,
                format!("node {i} is not a leaf but its children would be beyond {nodes} nodes"),
            ));
        }
    }
    Ok(nodes)
}

/// The metric of a tree: an allowed class of the tree's width, sized for `d` (checked once
/// per metric object, see [`check_tree`]).
fn check_tree_metric<'f>(
    o: &Obj<'_, 'f>,
    metric: &'f Node,
    (kind, width): (Kd, Width),
    d: usize,
    checked: &mut Checked,
) -> Result<()> {
    let path = &o.path;
    let sub = |name: &str| format!("{path}/{name}");
    let p = sub("dist_metric");
    let m = o
        .ctx
        .object(metric)
        .ok_or_else(|| malformed(&p, "must be a DistanceMetric object"))?;
    let allowed = match kind {
        Kd::Kd => KD_METRICS,
        Kd::Ball => BALL_METRICS,
    };
    match metric_kind(&m.class) {
        Some((base, w)) if w == width && allowed.contains(&base) => {}
        _ => {
            return Err(malformed(
                &p,
                format!(
                    "{} is not a metric of {}",
                    m.class,
                    o.class().rsplit('.').next().unwrap_or_default()
                ),
            ))
        }
    }
    match checked.n_features(m) {
        Some(known) if known == d => Ok(()),
        Some(known) => Err(malformed(
            &p,
            format!("shared by trees of {known} and {d} dimensions"),
        )),
        None => {
            check_metric(&Obj::new(o.ctx, m, p), Some(d))?;
            checked.insert(m, d);
            Ok(())
        }
    }
}

/// Checks a distance metric: its state is `(p, vec, mat)` (and `func, kwargs` for
/// `PyFuncDistance`), with `vec` 1-d and `mat` 2-d float64. With `dims`, the metric is
/// called with vectors of that many values (inside a tree) and must be sized for them.
pub(super) fn check_metric(o: &Obj<'_, '_>, dims: Option<usize>) -> Result<()> {
    let path = &o.path;
    let Some((base, _)) = metric_kind(o.class()) else {
        return Err(malformed(
            path,
            format!("{} is abstract: scikit-learn never creates one", o.class()),
        ));
    };
    let state = tuple_state(o, "a distance metric")?;
    let pyfunc = base == "PyFuncDistance";
    let (p, vec, mat, rest) = match (state.as_slice(), pyfunc) {
        ([p, vec, mat], false) => (*p, *vec, *mat, None),
        ([p, vec, mat, func, kwargs], true) => (*p, *vec, *mat, Some((*func, *kwargs))),
        _ => {
            return Err(malformed(
                path,
                format!(
                    "the state of {base} is (p, vec, mat{})",
                    if pyfunc { ", func, kwargs" } else { "" }
                ),
            ))
        }
    };
    let sub = |name: &str| format!("{path}/{name}");
    // p: a positive number or infinity (ChebyshevDistance); the KD tree raises to 1/p.
    if !node_float(p).is_some_and(|p| p > 0.0) {
        return Err(malformed(&sub("p"), "must be a positive number"));
    }
    let vec_shape = float_array(o.ctx, vec, &sub("vec"), 8)?;
    let [vec_len] = vec_shape.as_slice() else {
        return Err(malformed(&sub("vec"), "must have 1 dimension"));
    };
    let mat_shape = float_array(o.ctx, mat, &sub("mat"), 8)?;
    let [rows, cols] = mat_shape.as_slice() else {
        return Err(malformed(&sub("mat"), "must have 2 dimensions"));
    };
    match base {
        "MahalanobisDistance" => {
            if rows != cols || *rows == 0 {
                return Err(malformed(
                    &sub("mat"),
                    format!("must be square and not empty, found ({rows}, {cols})"),
                ));
            }
            if let Some(d) = dims.filter(|d| d != rows) {
                return Err(malformed(
                    &sub("mat"),
                    format!("is ({rows}, {cols}) but the tree has {d} dimensions"),
                ));
            }
        }
        "SEuclideanDistance" => {
            if let Some(d) = dims.filter(|d| d != vec_len) {
                return Err(malformed(
                    &sub("vec"),
                    format!("has {vec_len} variances but the tree has {d} dimensions"),
                ));
            }
        }
        "MinkowskiDistance" => {
            // No weights is an empty vec (size 0); weights are one per dimension.
            if let Some(d) = dims.filter(|d| *vec_len != 0 && d != vec_len) {
                return Err(malformed(
                    &sub("vec"),
                    format!("has {vec_len} weights but the tree has {d} dimensions"),
                ));
            }
        }
        _ => {}
    }
    if let Some((func, kwargs)) = rest {
        if !matches!(func, Node::Global(_)) {
            return Err(malformed(&sub("func"), "must name a function"));
        }
        let plain = match kwargs {
            Node::Dict(items) => items
                .iter()
                .all(|(k, _)| matches!(o.ctx.resolve(k), Node::Str(_))),
            Node::None => false,
            _ => false,
        };
        if !plain {
            return Err(malformed(&sub("kwargs"), "must be a dict with string keys"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_and_metric_names() {
        assert_eq!(
            tree_kind("sklearn.neighbors._kd_tree.KDTree"),
            Some((Kd::Kd, Width::W64))
        );
        assert_eq!(
            tree_kind("sklearn.neighbors._ball_tree.BallTree32"),
            Some((Kd::Ball, Width::W32))
        );
        assert_eq!(
            tree_kind("sklearn.neighbors._ball_tree.BinaryTree64"),
            Some((Kd::Ball, Width::W64))
        );
        assert_eq!(tree_kind("sklearn.neighbors._kd_tree.BinaryTree"), None);
        assert_eq!(tree_kind("sklearn.neighbors._kd_tree.NodeHeap"), None);
        assert_eq!(
            metric_kind("sklearn.metrics._dist_metrics.MahalanobisDistance32"),
            Some(("MahalanobisDistance", Width::W32))
        );
        assert_eq!(
            metric_kind("sklearn.metrics._dist_metrics.DistanceMetric64"),
            None
        );
    }
}
