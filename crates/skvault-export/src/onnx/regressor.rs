//! Float32 tree ensembles (`--dtype float32`) as `TreeEnsembleRegressor` (ai.onnx.ml, the
//! float attributes of opset 1), the operator skl2onnx writes.
//!
//! Unlike `TreeEnsemble` (opset 5), whose leaves carry one target each, a leaf here adds any
//! number of weights: a forest of `n` outputs is written once, not once per output, which is
//! what makes onnxruntime's float32 forests fast. Splits are the thresholds inference uses
//! (the largest float32 not above scikit-learn's), so a float32 `x` takes exactly
//! scikit-learn's path; NaN follows `nodes_missing_value_tracks_true`.

use skvault_infer::{NodeView, TreeView};

use crate::error::{unsupported, Result};
use crate::proto::AttributeProto;

/// The attributes of one `TreeEnsembleRegressor` node, gathered tree by tree.
#[derive(Default)]
pub(super) struct Float32Ensemble {
    n_trees: i64,
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    values: Vec<f32>,
    modes: Vec<&'static str>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_tree_ids: Vec<i64>,
    target_node_ids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
}

impl Float32Ensemble {
    /// Adds `tree`: each leaf adds its value number `value` to output column `target`, for
    /// every `(value, target)` of `outputs`. Node ids are the tree's own node indices.
    pub(super) fn add(&mut self, tree: &TreeView<'_>, outputs: &[(usize, i64)]) -> Result<()> {
        let id = self.n_trees;
        self.n_trees += 1;
        let n = tree.nodes.len();
        for (i, node) in tree.nodes.iter().enumerate() {
            self.tree_ids.push(id);
            self.node_ids.push(i as i64);
            match node {
                NodeView::Split {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => {
                    if *left >= n || *right >= n {
                        return Err(unsupported(
                            "a tree",
                            Some(format!("node {i} has a child outside the tree")),
                        ));
                    }
                    self.feature_ids.push(*feature as i64);
                    self.values.push(*threshold);
                    self.modes.push("BRANCH_LEQ");
                    self.true_ids.push(*left as i64);
                    self.false_ids.push(*right as i64);
                    self.missing_true.push(i64::from(*missing_left));
                }
                NodeView::Leaf(values) => {
                    self.feature_ids.push(0);
                    self.values.push(0.0);
                    self.modes.push("LEAF");
                    self.true_ids.push(0);
                    self.false_ids.push(0);
                    self.missing_true.push(0);
                    for &(value, target) in outputs {
                        let v = values.get(value).copied().ok_or_else(|| {
                            unsupported(
                                "a tree",
                                Some(format!("leaf {i} has no value for output {value}")),
                            )
                        })?;
                        self.target_tree_ids.push(id);
                        self.target_node_ids.push(i as i64);
                        self.target_ids.push(target);
                        // Leaf values round to the nearest float32: the documented 1e-5
                        // relative tolerance of float32 graphs.
                        self.target_weights.push(v as f32);
                    }
                }
            }
        }
        Ok(())
    }

    /// The node's attributes: SUM of the trees into `n_targets` float columns, no base
    /// values and no post transform (the rest of the graph runs in double).
    pub(super) fn attributes(self, n_targets: usize) -> Vec<AttributeProto> {
        vec![
            AttributeProto::string("aggregate_function", "SUM"),
            AttributeProto::int("n_targets", n_targets as i64),
            AttributeProto::string("post_transform", "NONE"),
            AttributeProto::ints("nodes_treeids", self.tree_ids),
            AttributeProto::ints("nodes_nodeids", self.node_ids),
            AttributeProto::ints("nodes_featureids", self.feature_ids),
            AttributeProto::floats("nodes_values", self.values),
            AttributeProto::strings("nodes_modes", &self.modes),
            AttributeProto::ints("nodes_truenodeids", self.true_ids),
            AttributeProto::ints("nodes_falsenodeids", self.false_ids),
            AttributeProto::ints("nodes_missing_value_tracks_true", self.missing_true),
            AttributeProto::ints("target_treeids", self.target_tree_ids),
            AttributeProto::ints("target_nodeids", self.target_node_ids),
            AttributeProto::ints("target_ids", self.target_ids),
            AttributeProto::floats("target_weights", self.target_weights),
        ]
    }
}
