//! k-means: `predict` and `transform` validate `X` against `n_features_in_`, then hand `X` and
//! the centers to Cython/BLAS kernels that take the feature count from `X` and read
//! `n_features` values of every center row. A center narrower than `X` is read out of bounds.
//! So every center (`cluster_centers_`, and each node's `center` in BisectingKMeans' tree)
//! must have exactly `n_features_in_` values.

use skvault_format::Node;

use crate::error::{malformed, Result};
use crate::state::{node_int, Obj};

const BISECTING_TREE: &str = "sklearn.cluster._bisect_k_means._BisectingTree";
/// BisectingKMeans' tree is binary with one node per split: far shallower than this.
const MAX_DEPTH: usize = 1 << 12;

pub(super) fn check(o: &Obj<'_, '_>) -> Result<()> {
    let Some(nf) = o.attr("n_features_in_") else {
        return Ok(());
    };
    let nf = node_int(nf)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| malformed(&o.sub("n_features_in_"), "expected a count"))?;
    if let Some(centers) = o.attr("cluster_centers_") {
        match o
            .ctx
            .numeric_shape(centers, &o.sub("cluster_centers_"))?
            .as_slice()
        {
            [k, f] if *k >= 1 && *f == nf => {}
            other => {
                return Err(malformed(
                    &o.sub("cluster_centers_"),
                    format!("shape {other:?}, expected (n_clusters, {nf})"),
                ))
            }
        }
    }
    if let Some(tree) = o.attr("_bisecting_tree") {
        let mut stack = vec![(tree, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            let Some(t) = o.ctx.object(node) else {
                continue;
            };
            let path = o.sub("_bisecting_tree");
            if t.class != BISECTING_TREE || depth > MAX_DEPTH {
                return Err(malformed(
                    &path,
                    "expected a _BisectingTree of bounded depth",
                ));
            }
            let t = Obj::new(o.ctx, t, path);
            let center = t.numeric_shape("center")?;
            if center != [nf] {
                return Err(malformed(
                    &t.sub("center"),
                    format!("shape {center:?}, expected ({nf},)"),
                ));
            }
            for side in ["left", "right"] {
                match t.attr(side) {
                    None | Some(Node::None) => {}
                    Some(child) => stack.push((child, depth + 1)),
                }
            }
        }
    }
    Ok(())
}
