//! What the card draws from the fitted state: feature importances and tree shapes of tree
//! models, coefficient magnitudes of linear models, found in the final estimator (the last
//! step of a pipeline).
//!
//! Feature importances are scikit-learn's `feature_importances_` computed from the tree
//! arrays as scikit-learn does (mean decrease in impurity, weighted by the samples reaching
//! each node): per tree `Tree.compute_feature_importances`; forests average the normalised
//! importances of their trees that have more than one node; gradient boosting averages the
//! unnormalised ones over every stage's trees that have more than one node; then each is
//! normalised to sum to 1.

use skvault_format::{Node, Object};

use crate::state::Ctx;

/// Facts about the final estimator that the card shows as pictures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    /// The class these facts are about (the final step of a pipeline).
    pub class: String,
    /// The pipeline step's name, when the estimator is one.
    pub step: Option<String>,
    pub importances: Option<Vec<f64>>,
    /// Depth and leaf count of each tree.
    pub tree_depths: Vec<u64>,
    pub tree_leaves: Vec<u64>,
    /// Mean |coefficient| per feature over the outputs (classes), and the number of outputs.
    pub coef_magnitudes: Option<(Vec<f64>, usize)>,
}

/// One sklearn `Tree`'s nodes, as its arrays hold them.
struct TreeNodes {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<i64>,
    impurity: Vec<f64>,
    weight: Vec<f64>,
}

impl TreeNodes {
    fn read(ctx: &Ctx<'_>, tree: &Object) -> Option<TreeNodes> {
        let records = ctx.records(ctx.attr(tree, "nodes")?)?;
        Some(TreeNodes {
            left: records.i64_column("left_child")?,
            right: records.i64_column("right_child")?,
            feature: records.i64_column("feature")?,
            impurity: records.f64_column("impurity")?,
            weight: records.f64_column("weighted_n_node_samples")?,
        })
    }

    fn len(&self) -> usize {
        self.left.len()
    }

    /// `Tree.compute_feature_importances(normalize)`; `None` on a node pointing outside the
    /// tree or a feature outside `0..n_features`.
    fn importances(&self, n_features: usize, normalize: bool) -> Option<Vec<f64>> {
        let mut out = vec![0.0; n_features];
        for i in 0..self.len() {
            let left = self.left[i];
            if left == -1 {
                continue;
            }
            let l = usize::try_from(left).ok()?;
            let r = usize::try_from(self.right[i]).ok()?;
            let f = usize::try_from(self.feature[i]).ok()?;
            let decrease = self.weight[i] * self.impurity[i]
                - self.weight.get(l)? * self.impurity.get(l)?
                - self.weight.get(r)? * self.impurity.get(r)?;
            *out.get_mut(f)? += decrease;
        }
        let root = *self.weight.first()?;
        for v in &mut out {
            *v /= root;
        }
        if normalize {
            let total: f64 = out.iter().sum();
            if total > 0.0 {
                for v in &mut out {
                    *v /= total;
                }
            }
        }
        Some(out)
    }

    /// Depth (the root at 0) and number of leaves, walking from the root; `None` when a
    /// child index is out of range or the walk meets more nodes than the tree has (a cycle).
    fn shape(&self) -> Option<(u64, u64)> {
        let (mut depth, mut leaves, mut seen) = (0u64, 0u64, 0usize);
        let mut stack = vec![(0usize, 0u64)];
        while let Some((i, d)) = stack.pop() {
            seen += 1;
            if seen > self.len() {
                return None;
            }
            depth = depth.max(d);
            let left = *self.left.get(i)?;
            if left == -1 {
                leaves += 1;
                continue;
            }
            stack.push((usize::try_from(left).ok()?, d + 1));
            stack.push((usize::try_from(*self.right.get(i)?).ok()?, d + 1));
        }
        Some((depth, leaves))
    }
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// The `Tree` object of a fitted decision tree estimator.
fn tree_of<'f>(ctx: &Ctx<'f>, est: &'f Node) -> Option<&'f Object> {
    let est = ctx.object(est)?;
    ctx.object(ctx.attr(est, "tree_")?)
}

/// The structure of the file's model (`root` is the tree's root object).
pub fn of_model(ctx: &Ctx<'_>, root: &Node) -> Option<Structure> {
    let mut obj = ctx.object(root)?;
    let mut step = None;
    // The final step of a pipeline (nested pipelines included), a bounded number of levels.
    for _ in 0..8 {
        if short(&obj.class) != "Pipeline" {
            break;
        }
        let steps = ctx.items(ctx.attr(obj, "steps")?)?;
        let last = ctx.items(steps.last()?)?;
        step = match ctx.resolve(last.first()?) {
            Node::Str(name) => Some(name.clone()),
            _ => None,
        };
        obj = ctx.object(last.get(1)?)?;
    }
    let n_features = ctx
        .attr(obj, "n_features_in_")
        .and_then(|n| ctx.int(n))
        .and_then(|n| usize::try_from(n).ok());
    let mut s = Structure {
        class: obj.class.clone(),
        step,
        ..Structure::default()
    };
    let name = short(&obj.class);
    if matches!(
        name,
        "DecisionTreeClassifier"
            | "DecisionTreeRegressor"
            | "ExtraTreeClassifier"
            | "ExtraTreeRegressor"
    ) {
        // A tree whose arrays do not read leaves the structure without pictures (the card
        // says so) rather than without its class.
        let tree = ctx
            .attr(obj, "tree_")
            .and_then(|t| ctx.object(t))
            .and_then(|t| TreeNodes::read(ctx, t));
        if let Some(tree) = tree {
            s.importances = n_features.and_then(|n| tree.importances(n, true));
            push_shape(&mut s, &tree);
        }
    } else if matches!(
        name,
        "RandomForestClassifier"
            | "RandomForestRegressor"
            | "ExtraTreesClassifier"
            | "ExtraTreesRegressor"
            | "IsolationForest"
            | "GradientBoostingClassifier"
            | "GradientBoostingRegressor"
    ) {
        let boosting = name.starts_with("GradientBoosting");
        let mut relevant: Vec<Vec<f64>> = Vec::new();
        let mut ok = true;
        for est in ctx.items(ctx.attr(obj, "estimators_")?)? {
            let Some(tree) = tree_of(ctx, est).and_then(|t| TreeNodes::read(ctx, t)) else {
                ok = false;
                continue;
            };
            push_shape(&mut s, &tree);
            if tree.len() > 1 {
                match n_features.and_then(|n| tree.importances(n, !boosting)) {
                    Some(imp) => relevant.push(imp),
                    None => ok = false,
                }
            }
        }
        // IsolationForest has no feature_importances_ in scikit-learn: shapes only.
        if ok && name != "IsolationForest" {
            s.importances = n_features.map(|n| mean_normalised(&relevant, n));
        }
    } else if name.starts_with("HistGradientBoosting") {
        for stage in ctx.items(ctx.attr(obj, "_predictors")?)? {
            for pred in ctx.items(stage).unwrap_or_default() {
                let Some(pred) = ctx.object(pred) else {
                    continue;
                };
                let Some(nodes) = ctx.attr(pred, "nodes").and_then(|n| ctx.records(n)) else {
                    continue;
                };
                if let (Some(depth), Some(leaf)) =
                    (nodes.i64_column("depth"), nodes.i64_column("is_leaf"))
                {
                    let max = depth.iter().copied().max().unwrap_or(0);
                    s.tree_depths.push(u64::try_from(max).unwrap_or(0));
                    s.tree_leaves
                        .push(leaf.iter().filter(|v| **v != 0).count() as u64);
                }
            }
        }
    } else if let Some((shape, coef)) = ctx.attr(obj, "coef_").and_then(|c| ctx.f64_array(c)) {
        let (k, n) = match shape.as_slice() {
            [n] => (1, *n),
            [k, n] => (*k, *n),
            _ => return Some(s),
        };
        if k > 0 && n > 0 {
            let mags = (0..n)
                .map(|j| {
                    (0..k)
                        .map(|i| coef.get(i * n + j).map_or(0.0, |v| v.abs()))
                        .sum::<f64>()
                        / k as f64
                })
                .collect();
            s.coef_magnitudes = Some((mags, k));
        }
    }
    Some(s)
}

fn push_shape(s: &mut Structure, tree: &TreeNodes) {
    if let Some((depth, leaves)) = tree.shape() {
        s.tree_depths.push(depth);
        s.tree_leaves.push(leaves);
    }
}

/// The mean of `rows` (zeros when there are none), normalised to sum to 1 when it can be.
fn mean_normalised(rows: &[Vec<f64>], n: usize) -> Vec<f64> {
    let mut mean = vec![0.0; n];
    if rows.is_empty() {
        return mean;
    }
    for row in rows {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= rows.len() as f64;
    }
    let total: f64 = mean.iter().sum();
    if total > 0.0 {
        for m in &mut mean {
            *m /= total;
        }
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump() -> TreeNodes {
        // Root splits on feature 1 into two leaves; impurity 0.5 -> 0 and 0.
        TreeNodes {
            left: vec![1, -1, -1],
            right: vec![2, -1, -1],
            feature: vec![1, -2, -2],
            impurity: vec![0.5, 0.0, 0.0],
            weight: vec![10.0, 5.0, 5.0],
        }
    }

    #[test]
    fn a_stump_gives_all_importance_to_its_feature() {
        let imp = stump().importances(3, true);
        assert_eq!(imp, Some(vec![0.0, 1.0, 0.0]));
        assert_eq!(stump().importances(3, false), Some(vec![0.0, 0.5, 0.0]));
        assert_eq!(stump().shape(), Some((1, 2)));
    }

    #[test]
    fn hostile_trees_give_no_numbers_instead_of_panicking() {
        let mut t = stump();
        t.feature[0] = 7; // outside n_features
        assert_eq!(t.importances(3, true), None);
        let mut t = stump();
        t.left[0] = 0; // a cycle back to the root
        assert_eq!(t.shape(), None);
        let mut t = stump();
        t.right[0] = 99;
        assert_eq!(t.importances(3, true), None);
        assert_eq!(t.shape(), None);
    }

    proptest::proptest! {
        /// Any node arrays a file can hold (children anywhere, cycles, features out of
        /// range, any floats): the pictures' numbers are computed or refused, never a panic
        /// or an endless walk.
        #[test]
        fn any_node_arrays_give_numbers_or_none(
            nodes in proptest::collection::vec(
                (-3i64..40, -3i64..40, -3i64..12, proptest::num::f64::ANY, proptest::num::f64::ANY),
                0..40,
            ),
            n_features in 0usize..12,
        ) {
            let t = TreeNodes {
                left: nodes.iter().map(|n| n.0).collect(),
                right: nodes.iter().map(|n| n.1).collect(),
                feature: nodes.iter().map(|n| n.2).collect(),
                impurity: nodes.iter().map(|n| n.3).collect(),
                weight: nodes.iter().map(|n| n.4).collect(),
            };
            if let Some(imp) = t.importances(n_features, true) {
                proptest::prop_assert_eq!(imp.len(), n_features);
            }
            if let Some((depth, leaves)) = t.shape() {
                proptest::prop_assert!(depth < t.len() as u64 && leaves <= t.len() as u64);
            }
        }
    }
}
