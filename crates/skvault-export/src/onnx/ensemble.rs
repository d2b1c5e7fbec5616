//! Tree models (trees, forests, gradient boosting, HistGradientBoosting, isolation forest)
//! as `TreeEnsemble` (ai.onnx.ml opset 5) nodes, or, for float32 trees (`--dtype
//! float32`), `TreeEnsembleRegressor` nodes (see `regressor.rs`).

use skvault_infer::{HistNodeView, HistTreeView, Labels, NodeView, TreeView, View};

use super::regressor::Float32Ensemble;
use super::{Graph, Out, ML};
use crate::error::{unsupported, Result};
use crate::proto::{data_type, AttributeProto, TensorProto};

/// `TreeEnsemble`'s `aggregate_function`: SUM.
const AGGREGATE_SUM: i64 = 1;
/// `TreeEnsemble`'s node modes.
const BRANCH_LEQ: u8 = 0;
const BRANCH_MEMBER: u8 = 6;

impl Graph {
    pub(super) fn trees(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::Trees {
            trees,
            width,
            average,
            classes,
            ..
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let width = *width;
        // scikit-learn's float32(X): as double so that TreeEnsemble's output is double, or
        // as float with `float32_trees`.
        let x64 = self.float32_input(view.class(), x);
        // A binary classifier's leaves hold [p0, p1] with p0 = 1 - p1 (fractions since
        // scikit-learn 1.4): a float32 ensemble sums p1 alone (one target, onnxruntime's
        // fastest path) and the graph forms [1 - p1, p1] in double, which differs from
        // scikit-learn's p0 by double rounding, far inside the float32 tolerance.
        let binary = self.legacy_trees() && classes.is_some() && width == 2;
        let sum = if self.legacy_trees() {
            let outputs: Vec<(usize, i64)> = if binary {
                vec![(1, 0)]
            } else {
                (0..width).map(|j| (j, j as i64)).collect()
            };
            let mut e = Float32Ensemble::default();
            for tree in trees {
                e.add(tree, &outputs)?;
            }
            self.tree_ensemble_regressor(e, &x64, outputs.len())
        } else {
            let mut e = Ensemble::default();
            for tree in trees {
                // TreeEnsemble's leaves carry one target each: the tree is written once per
                // output column, each copy with that column's leaf values.
                for target in 0..width {
                    e.add(tree, target, target as i64)?;
                }
            }
            self.tree_ensemble(e, &x64, width, self.float32_trees)
        };
        let raw = if *average {
            // scikit-learn sums the trees from zero, then divides by their number.
            let n = self.f64s(vec![], &[trees.len() as f64]);
            self.op("Div", &[&sum, &n], vec![])
        } else {
            sum
        };
        let raw = if binary { self.two_columns(&raw) } else { raw };
        match classes {
            Some(c) => {
                let index = self.argmax(&raw);
                Ok(Out::classifier(index, Some(raw), c.labels.clone()))
            }
            None => Ok(Out::Regressor {
                values: raw,
                k: width,
                flat: width == 1,
            }),
        }
    }

    pub(super) fn hist(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::HistGradientBoosting { preprocessor, .. } = view else {
            return Err(unsupported(view.class(), None));
        };
        let input = match preprocessor {
            None => x.to_string(),
            Some(p) => match self.emit(p, x)? {
                Out::Transform(t, _) => t,
                _ => return Err(unsupported(p.class(), Some("as a preprocessor".into()))),
            },
        };
        self.hist_trees(view, &input)
    }

    /// HistGradientBoosting's trees and link on `input`, its preprocessor already applied.
    pub(super) fn hist_trees(&mut self, view: &View<'_>, input: &str) -> Result<Out> {
        let View::HistGradientBoosting {
            trees,
            k,
            baseline,
            classes,
            exp_link,
            ..
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let k = *k;
        let mut e = Ensemble::default();
        for (i, tree) in trees.iter().enumerate() {
            e.add_hist(tree, i % k.max(1))?;
        }
        // HistGradientBoosting compares float64 values: its trees stay double.
        let sum = self.tree_ensemble(e, input, k, false);
        let b = self.f64s(vec![k as i64], baseline);
        let raw = self.op("Add", &[&sum, &b], vec![]);
        let Some(c) = classes else {
            let values = if *exp_link {
                self.op("Exp", &[&raw], vec![])
            } else {
                raw
            };
            return Ok(Out::Regressor {
                values,
                k,
                flat: true,
            });
        };
        // HistGradientBoostingClassifier predicts class 1 when raw > 0.
        Ok(self.boosted_classifier(&raw, k, "Greater", c.labels.clone()))
    }

    pub(super) fn gradient_boosting(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::GradientBoosting {
            trees,
            k,
            init,
            classes,
            ..
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let k = *k;
        let x64 = self.float32_input(view.class(), x);
        let sum = if self.legacy_trees() {
            let mut e = Float32Ensemble::default();
            for (i, tree) in trees.iter().enumerate() {
                e.add(tree, &[(0, (i % k.max(1)) as i64)])?;
            }
            self.tree_ensemble_regressor(e, &x64, k)
        } else {
            let mut e = Ensemble::default();
            for (i, tree) in trees.iter().enumerate() {
                e.add(tree, 0, (i % k.max(1)) as i64)?;
            }
            self.tree_ensemble(e, &x64, k, self.float32_trees)
        };
        let b = self.f64s(vec![k as i64], init);
        let raw = self.op("Add", &[&sum, &b], vec![]);
        let Some(c) = classes else {
            return Ok(Out::Regressor {
                values: raw,
                k,
                flat: true,
            });
        };
        // GradientBoostingClassifier predicts class 1 when raw >= 0.
        Ok(self.boosted_classifier(&raw, k, "GreaterOrEqual", c.labels.clone()))
    }

    /// The `TreeEnsemble` node of `e` on `x`: the sum of the trees, double `[N, n_targets]`.
    /// With `float32`, `x` is float and the node runs in float (thresholds rounded down to
    /// float32, which keeps every comparison of a float32 `x` exact; leaf values and sums
    /// in float32), its sum cast to double.
    fn tree_ensemble(&mut self, e: Ensemble, x: &str, n_targets: usize, float32: bool) -> String {
        let sum = self.name("tree_sum");
        let attrs = e.attributes(n_targets, float32);
        self.op_to("TreeEnsemble", ML, &[x], &sum, attrs);
        self.tree_ensemble_nodes += 1;
        if float32 {
            return self.cast(&sum, data_type::DOUBLE);
        }
        sum
    }

    /// Float32 trees are written as `TreeEnsembleRegressor` unless the graph must avoid it
    /// (see [`Graph::legacy_trees_off`]).
    fn legacy_trees(&self) -> bool {
        self.float32_trees && !self.legacy_trees_off
    }

    /// The `TreeEnsembleRegressor` node of `e` on the float `x`: the float32 sum of the
    /// trees, cast to double `[N, n_targets]`.
    fn tree_ensemble_regressor(&mut self, e: Float32Ensemble, x: &str, n_targets: usize) -> String {
        let sum = self.name("tree_sum");
        self.op_to(
            "TreeEnsembleRegressor",
            ML,
            &[x],
            &sum,
            e.attributes(n_targets),
        );
        self.legacy_tree_nodes += 1;
        self.cast(&sum, data_type::DOUBLE)
    }

    /// The labels and probabilities of boosted raw scores: `raw <compare> 0` and
    /// `[1 - expit, expit]` for one column, argmax and softmax for several.
    fn boosted_classifier(&mut self, raw: &str, k: usize, compare: &str, labels: Labels) -> Out {
        if k == 1 {
            let (index, p) = self.binary_with(raw, compare);
            let p = self.op("Sigmoid", &[&p], vec![]);
            let proba = self.two_columns(&p);
            return Out::classifier(index, Some(proba), labels);
        }
        let index = self.argmax(raw);
        let proba = self.softmax(raw);
        Out::classifier(index, Some(proba), labels)
    }

    pub(super) fn isolation_forest(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::IsolationForest {
            trees,
            denominator,
            offset,
            ..
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let x64 = self.float32_input(view.class(), x);
        let depths = if self.legacy_trees() {
            let mut e = Float32Ensemble::default();
            for tree in trees {
                e.add(tree, &[(0, 0)])?;
            }
            self.tree_ensemble_regressor(e, &x64, 1)
        } else {
            let mut e = Ensemble::default();
            for tree in trees {
                e.add(tree, 0, 0)?;
            }
            self.tree_ensemble(e, &x64, 1, self.float32_trees)
        };
        // score_samples = -(2 ** -(depths / denominator)); scikit-learn takes the quotient
        // as 1 when the denominator is 0 (a single training sample). Depths are finite.
        let q = if *denominator != 0.0 {
            let d = self.f64s(vec![], &[*denominator]);
            self.op("Div", &[&depths, &d], vec![])
        } else {
            let zero = self.f64s(vec![], &[0.0]);
            let one = self.f64s(vec![], &[1.0]);
            let z = self.op("Mul", &[&depths, &zero], vec![]);
            self.op("Add", &[&z, &one], vec![])
        };
        let minus_q = self.op("Neg", &[&q], vec![]);
        let two = self.f64s(vec![], &[2.0]);
        let p = self.op("Pow", &[&two, &minus_q], vec![]);
        let samples = self.op("Neg", &[&p], vec![]);
        let off = self.f64s(vec![], &[*offset]);
        let decision = self.op("Sub", &[&samples, &off], vec![]);
        // predict: -1 (index 0) where decision < 0, else 1 (index 1).
        let zero = self.f64s(vec![], &[0.0]);
        let outlier = self.op("Less", &[&decision, &zero], vec![]);
        let inlier = self.op("Not", &[&outlier], vec![]);
        let index = self.cast(&inlier, data_type::INT64);
        let index = self.flatten(&index);
        let scores = self.flatten(&decision);
        Ok(Out::Classifier {
            index,
            proba: None,
            scores: Some(scores),
            labels: Labels::Int(vec![-1, 1]),
        })
    }

    /// X rounded to float32 (as scikit-learn's trees see it) and back to double, or left in
    /// float32 for trees that run in float (`float32_trees`).
    pub(super) fn float32_input(&mut self, class: &str, x: &str) -> String {
        let x32 = self.cast(x, data_type::FLOAT);
        if self.float32_trees {
            self.float32_notes.push(format!(
                "{class}: X is rounded to float32 as scikit-learn does and the trees run in float32 (thresholds rounded down, comparisons exact; leaf values and their sums in float32, then double)"
            ));
            return x32;
        }
        self.float32_notes.push(format!(
            "{class}: X is rounded to float32 before the tree comparisons, exactly as scikit-learn does; leaf values and sums are double"
        ));
        self.cast(&x32, data_type::DOUBLE)
    }
}

/// The attributes of one `TreeEnsemble` node, gathered tree by tree.
#[derive(Default)]
pub(super) struct Ensemble {
    featureids: Vec<i64>,
    splits: Vec<f64>,
    modes: Vec<u8>,
    missing_true: Vec<i64>,
    true_ids: Vec<i64>,
    true_leafs: Vec<i64>,
    false_ids: Vec<i64>,
    false_leafs: Vec<i64>,
    roots: Vec<i64>,
    leaf_targets: Vec<i64>,
    leaf_weights: Vec<f64>,
    /// The sets of the BRANCH_MEMBER nodes, in node order, separated by NaN.
    membership: Vec<f64>,
}

impl Ensemble {
    /// Adds one copy of `tree` whose leaves carry their value number `value` to output
    /// column `target`.
    pub(super) fn add(&mut self, tree: &TreeView<'_>, value: usize, target: i64) -> Result<()> {
        let base = self.featureids.len() as i64;
        // Global index of each tree node: interior nodes and leaves are numbered apart.
        let mut interior = vec![-1i64; tree.nodes.len()];
        let mut leaf = vec![-1i64; tree.nodes.len()];
        let mut n_interior = 0i64;
        let mut leaves = Vec::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            match n {
                NodeView::Split { .. } => {
                    interior[i] = base + n_interior;
                    n_interior += 1;
                }
                NodeView::Leaf(values) => {
                    let v = values.get(value).copied().ok_or_else(|| {
                        unsupported(
                            "a tree",
                            Some(format!("leaf {i} has no value for output {value}")),
                        )
                    })?;
                    leaf[i] = (self.leaf_weights.len() + leaves.len()) as i64;
                    leaves.push(v);
                }
            }
        }
        let child = |c: usize| -> (i64, i64) {
            match (interior.get(c), leaf.get(c)) {
                (Some(&i), _) if i >= 0 => (i, 0),
                (_, Some(&l)) => (l, 1),
                _ => (-1, 0),
            }
        };
        if n_interior == 0 {
            // A tree that is one leaf: TreeEnsemble's roots are interior nodes, so a split
            // whose two branches reach that leaf stands for it.
            let l = leaf.first().copied().unwrap_or(-1);
            self.push_split(0, 0.0, false, (l, 1), (l, 1));
        } else {
            for n in &tree.nodes {
                if let NodeView::Split {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } = n
                {
                    let (t, f) = (child(*left), child(*right));
                    self.push_split(*feature as i64, f64::from(*threshold), *missing_left, t, f);
                }
            }
        }
        self.roots.push(base);
        for v in leaves {
            self.leaf_targets.push(target);
            self.leaf_weights.push(v);
        }
        Ok(())
    }

    /// Adds a HistGradientBoosting predictor whose leaves add to output column `target`.
    pub(super) fn add_hist(&mut self, tree: &HistTreeView, target: usize) -> Result<()> {
        let base = self.featureids.len() as i64;
        let mut interior = vec![-1i64; tree.nodes.len()];
        let mut leaf = vec![-1i64; tree.nodes.len()];
        let mut n_interior = 0i64;
        let mut leaves = Vec::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            if let HistNodeView::Leaf(v) = n {
                leaf[i] = (self.leaf_weights.len() + leaves.len()) as i64;
                leaves.push(*v);
            } else {
                interior[i] = base + n_interior;
                n_interior += 1;
            }
        }
        let child = |c: usize| -> (i64, i64) {
            match (interior.get(c), leaf.get(c)) {
                (Some(&i), _) if i >= 0 => (i, 0),
                (_, Some(&l)) => (l, 1),
                _ => (-1, 0),
            }
        };
        if n_interior == 0 {
            let l = leaf.first().copied().unwrap_or(-1);
            self.push_split(0, 0.0, false, (l, 1), (l, 1));
        }
        for n in &tree.nodes {
            match n {
                HistNodeView::Leaf(_) => {}
                HistNodeView::Numeric {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => {
                    self.push_split(
                        *feature as i64,
                        *threshold,
                        *missing_left,
                        child(*left),
                        child(*right),
                    );
                }
                HistNodeView::Categorical {
                    feature,
                    left_categories,
                    known_categories,
                    missing_left,
                    left,
                    right,
                } => {
                    let (l, r) = (child(*left), child(*right));
                    if !*missing_left {
                        // Members go left; NaN, negative and unknown categories go right.
                        self.push_member(*feature as i64, left_categories, l, r);
                    } else {
                        // Only known categories outside the left set go right: test for
                        // those, so that everything else (NaN included) takes the false branch.
                        let right_set: Vec<u8> = known_categories
                            .iter()
                            .copied()
                            .filter(|c| !left_categories.contains(c))
                            .collect();
                        if right_set.is_empty() {
                            self.push_split(*feature as i64, 0.0, true, l, l);
                        } else {
                            self.push_member(*feature as i64, &right_set, r, l);
                        }
                    }
                }
            }
        }
        self.roots.push(base);
        for v in leaves {
            self.leaf_targets.push(target as i64);
            self.leaf_weights.push(v);
        }
        Ok(())
    }

    /// A BRANCH_MEMBER node: `x` in `set` takes `t`; anything else, NaN included, `f`.
    fn push_member(&mut self, feature: i64, set: &[u8], t: (i64, i64), f: (i64, i64)) {
        if !self.membership.is_empty() {
            self.membership.push(f64::NAN);
        }
        self.membership.extend(set.iter().map(|c| f64::from(*c)));
        self.featureids.push(feature);
        self.splits.push(0.0);
        self.modes.push(BRANCH_MEMBER);
        self.missing_true.push(0);
        self.true_ids.push(t.0);
        self.true_leafs.push(t.1);
        self.false_ids.push(f.0);
        self.false_leafs.push(f.1);
    }

    fn push_split(
        &mut self,
        feature: i64,
        split: f64,
        missing_left: bool,
        t: (i64, i64),
        f: (i64, i64),
    ) {
        self.featureids.push(feature);
        self.splits.push(split);
        self.modes.push(BRANCH_LEQ);
        self.missing_true.push(i64::from(missing_left));
        self.true_ids.push(t.0);
        self.true_leafs.push(t.1);
        self.false_ids.push(f.0);
        self.false_leafs.push(f.1);
    }

    pub(super) fn attributes(self, n_targets: usize, float32: bool) -> Vec<AttributeProto> {
        let n = self.splits.len() as i64;
        let nl = self.leaf_weights.len() as i64;
        let values = |dims: Vec<i64>, v: &[f64], round_down: bool| {
            if !float32 {
                return TensorProto::f64s("", dims, v);
            }
            let narrowed: Vec<f32> = v
                .iter()
                .map(|&x| {
                    if round_down {
                        skvault_infer::floor_f32(x)
                    } else {
                        x as f32
                    }
                })
                .collect();
            TensorProto::f32s("", dims, &narrowed)
        };
        let mut attrs = Vec::new();
        if !self.membership.is_empty() {
            let nm = self.membership.len() as i64;
            attrs.push(AttributeProto::tensor(
                "membership_values",
                values(vec![nm], &self.membership, false),
            ));
        }
        attrs.extend([
            AttributeProto::int("aggregate_function", AGGREGATE_SUM),
            AttributeProto::int("n_targets", n_targets as i64),
            AttributeProto::int("post_transform", 0),
            AttributeProto::ints("tree_roots", self.roots),
            AttributeProto::ints("nodes_featureids", self.featureids),
            AttributeProto::tensor("nodes_splits", values(vec![n], &self.splits, true)),
            AttributeProto::tensor("nodes_modes", TensorProto::u8s("", &self.modes)),
            AttributeProto::ints("nodes_missing_value_tracks_true", self.missing_true),
            AttributeProto::ints("nodes_truenodeids", self.true_ids),
            AttributeProto::ints("nodes_trueleafs", self.true_leafs),
            AttributeProto::ints("nodes_falsenodeids", self.false_ids),
            AttributeProto::ints("nodes_falseleafs", self.false_leafs),
            AttributeProto::ints("leaf_targetids", self.leaf_targets),
            AttributeProto::tensor("leaf_weights", values(vec![nl], &self.leaf_weights, false)),
        ]);
        attrs
    }
}
