//! scipy sparse matrices and arrays: the checks of scipy's `check_format(full_check=True)`,
//! done before scipy's C++ kernels (which trust `indptr` and `indices`) ever see the state.
//!
//! The loader then builds the matrix with the class's constructor from exactly these parts
//! (`cls((data, indices, indptr), shape=...)` or `cls((data, coords), shape=...)`), never
//! by setting attributes: a `shape` set through the property would reshape unchecked data.

use skvault_format::dtype::Kind;
use skvault_format::{DType, Node};

use crate::error::{malformed, Result};
use crate::state::{node_int, seq_items, Obj};

/// The attributes a compressed (CSR/CSC) matrix's state may hold.
pub const COMPRESSED_KEYS: &[&str] = &[
    "_shape",
    "maxprint",
    "indptr",
    "indices",
    "data",
    "_has_sorted_indices",
    "_has_canonical_format",
];
/// The attributes a COO matrix's state may hold (`coords` since scipy 1.13, `row`/`col` before).
pub const COO_KEYS: &[&str] = &[
    "_shape",
    "maxprint",
    "coords",
    "row",
    "col",
    "data",
    "has_canonical_format",
];

fn is_compressed(class: &str) -> Option<bool> {
    let short = class.rsplit('.').next()?;
    match short {
        "csr_matrix" | "csr_array" => Some(true),
        "csc_matrix" | "csc_array" => Some(false),
        _ => None,
    }
}

pub(super) fn check(o: &Obj<'_, '_>) -> Result<()> {
    let path = &o.path;
    match &o.obj.construct {
        skvault_format::Construct::New { args, kwargs } if args.is_empty() && kwargs.is_empty() => {
        }
        _ => {
            return Err(malformed(
                path,
                "a sparse matrix is created empty, then given its parts",
            ))
        }
    }
    if !o.obj.list_items.is_empty() || !o.obj.dict_items.is_empty() {
        return Err(malformed(path, "a sparse matrix has no items"));
    }
    let Some(Node::Dict(items)) = o.obj.state.as_ref().map(|s| o.ctx.resolve(s)) else {
        return Err(malformed(
            path,
            "the state of a sparse matrix must be a dict",
        ));
    };
    let compressed = is_compressed(o.class());
    let allowed = if compressed.is_some() {
        COMPRESSED_KEYS
    } else {
        COO_KEYS
    };
    for (k, _) in items {
        match o.ctx.resolve(k) {
            Node::Str(k) if allowed.contains(&k.as_str()) => {}
            other => {
                return Err(malformed(
                    path,
                    format!("unexpected attribute {other:?} in the state of a sparse matrix"),
                ))
            }
        }
    }
    let shape = shape(o)?;
    let nnz = data_len(o)?;
    let nnz64 = nnz as u64;
    match compressed {
        Some(csr) => {
            let [rows, cols] = shape.as_slice() else {
                return Err(malformed(&o.sub("_shape"), "must have 2 dimensions"));
            };
            let (major, minor) = if csr { (*rows, *cols) } else { (*cols, *rows) };
            let indptr = index_array(o, "indptr", &[major, minor, nnz64])?;
            if indptr.len() != major as usize + 1 {
                return Err(malformed(
                    &o.sub("indptr"),
                    format!("{} entries, expected {}", indptr.len(), major + 1),
                ));
            }
            if indptr.first() != Some(&0) || indptr.last() != Some(&(nnz as i64)) {
                return Err(malformed(
                    &o.sub("indptr"),
                    "must start at 0 and end at nnz",
                ));
            }
            if indptr.windows(2).any(|w| w[0] > w[1]) {
                return Err(malformed(&o.sub("indptr"), "must not decrease"));
            }
            let indices = index_array(o, "indices", &[major, minor, nnz64])?;
            if indices.len() != nnz {
                return Err(malformed(&o.sub("indices"), "one index per stored value"));
            }
            in_range(&indices, minor, &o.sub("indices"))
        }
        None => {
            let coords: Vec<&Node> = match (o.attr("coords"), o.attr("row"), o.attr("col")) {
                (Some(c), None, None) => seq_items(o.ctx, c)
                    .ok_or_else(|| malformed(&o.sub("coords"), "must be a tuple of arrays"))?,
                (None, Some(r), Some(c)) => vec![r, c],
                _ => return Err(malformed(path, "needs coords (or row and col)")),
            };
            if coords.len() != shape.len() {
                return Err(malformed(path, "one coordinate array per dimension"));
            }
            for (d, (node, dim)) in coords.iter().zip(&shape).enumerate() {
                let p = format!("{}/coords[{d}]", path);
                let (s, v) = o.ctx.i64_array(node, &p)?;
                check_index_dtype(o, node, &p, &[*dim, nnz as u64])?;
                if s != [nnz] {
                    return Err(malformed(&p, "one coordinate per stored value"));
                }
                in_range(&v, *dim, &p)?;
            }
            Ok(())
        }
    }
}

/// `_shape`: a tuple of non-negative integers, each below 2^62 (their product is not stored).
fn shape(o: &Obj<'_, '_>) -> Result<Vec<u64>> {
    let p = o.sub("_shape");
    let items =
        seq_items(o.ctx, o.req("_shape")?).ok_or_else(|| malformed(&p, "must be a tuple"))?;
    if items.is_empty() || items.len() > 64 {
        return Err(malformed(&p, "must have 1 to 64 dimensions"));
    }
    items
        .into_iter()
        .map(|n| {
            node_int(n)
                .and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v < 1 << 62)
                .ok_or_else(|| malformed(&p, "dimensions must be integers in [0, 2^62)"))
        })
        .collect()
}

/// The number of stored values: `data` is a 1-d array of numbers.
fn data_len(o: &Obj<'_, '_>) -> Result<usize> {
    let p = o.sub("data");
    let Node::Array(index) = o.req("data")? else {
        return Err(malformed(&p, "must be a numeric array"));
    };
    let e = o.ctx.entry(*index, &p)?;
    let numeric = matches!(
        e.dtype,
        DType::Scalar {
            kind: Kind::Bool | Kind::Int | Kind::UInt | Kind::Float | Kind::Complex,
            ..
        }
    );
    match e.shape.as_slice() {
        [n] if numeric => usize::try_from(*n).map_err(|_| malformed(&p, "too long")),
        _ => Err(malformed(&p, "must be a 1-d numeric array")),
    }
}

/// A 1-d index array of a signed integer dtype wide enough for every value in `bounds`.
fn index_array(o: &Obj<'_, '_>, name: &str, bounds: &[u64]) -> Result<Vec<i64>> {
    let p = o.sub(name);
    let node = o.req(name)?;
    check_index_dtype(o, node, &p, bounds)?;
    let (shape, v) = o.ctx.i64_array(node, &p)?;
    if shape.len() != 1 {
        return Err(malformed(&p, "must be 1-d"));
    }
    Ok(v)
}

fn check_index_dtype(o: &Obj<'_, '_>, node: &Node, path: &str, bounds: &[u64]) -> Result<()> {
    let Node::Array(index) = o.ctx.resolve(node) else {
        return Err(malformed(path, "must be an integer array"));
    };
    let e = o.ctx.entry(*index, path)?;
    let max = match e.dtype {
        DType::Scalar {
            kind: Kind::Int,
            count: 4,
            ..
        } => i32::MAX as u64,
        DType::Scalar {
            kind: Kind::Int,
            count: 8,
            ..
        } => i64::MAX as u64,
        _ => return Err(malformed(path, "must be an int32 or int64 array")),
    };
    if bounds.iter().any(|b| *b > max) {
        return Err(malformed(path, "index dtype too narrow for the matrix"));
    }
    Ok(())
}

fn in_range(v: &[i64], bound: u64, path: &str) -> Result<()> {
    match v
        .iter()
        .find(|i| u64::try_from(**i).map_or(true, |i| i >= bound))
    {
        Some(bad) => Err(malformed(path, format!("index {bad} outside [0, {bound})"))),
        None => Ok(()),
    }
}
