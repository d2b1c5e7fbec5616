//! Native model -> ONNX graph (`ai.onnx` opset 21, `ai.onnx.ml` opset 5, IR version 10).
//!
//! The input `X` is `double [N, n_features]`. Every operator runs in double except where
//! scikit-learn itself works in float32: trees cast X to float32 and compare with the
//! float64 threshold, which the graph reproduces exactly by casting X to float then back to
//! double before `TreeEnsemble` (whose splits are the thresholds inference uses: the
//! largest float32 not above scikit-learn's, see skvault-infer's `tree.rs`). Leaf values,
//! sums and outputs stay double. See docs/EXPORT.md.

use prost::Message;
use skvault_infer::{
    ColumnOpView, HistNodeView, HistTreeView, Labels, LinearLink, Model, NodeView, TreeView, View,
};

use crate::error::{unsupported, Result};
use crate::proto::{
    data_type, AttributeProto, Dim, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};

pub const IR_VERSION: i64 = 10;
pub const OPSET_ONNX: i64 = 21;
pub const OPSET_ML: i64 = 5;
const ML: &str = "ai.onnx.ml";

/// `TreeEnsemble`'s `aggregate_function`: SUM.
const AGGREGATE_SUM: i64 = 1;
/// `TreeEnsemble`'s node modes.
const BRANCH_LEQ: u8 = 0;
const BRANCH_MEMBER: u8 = 6;

/// The input's name.
pub const INPUT: &str = "X";

/// Builds the ONNX model bytes of `model`.
pub fn to_onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    Ok(to_onnx(model)?.encode_to_vec())
}

/// What an estimator's subgraph produces.
enum Out {
    /// A transformer's output, `n` columns.
    Transform(String, usize),
    /// A classifier: the index of the predicted class (int64 [N]) and, if it has
    /// `predict_proba`, probabilities (double [N, n_classes]).
    Classifier {
        index: String,
        proba: Option<String>,
        labels: Labels,
    },
    /// A regressor: double [N, k], or [N] when `flat`.
    Regressor {
        values: String,
        k: usize,
        flat: bool,
    },
}

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
    /// Where float32 enters (for the metadata).
    float32_notes: Vec<String>,
}

impl Graph {
    fn name(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_{}", self.next)
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.name(&op.to_ascii_lowercase());
        self.op_to(op, "", inputs, &out, attrs);
        out
    }

    fn op_to(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        out: &str,
        attrs: Vec<AttributeProto>,
    ) {
        let name = self.name(op);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name,
            op_type: op.to_string(),
            attribute: attrs,
            domain: domain.to_string(),
        });
    }

    fn op_ml(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.name(&op.to_ascii_lowercase());
        self.op_to(op, ML, inputs, &out, attrs);
        out
    }

    fn f64s(&mut self, dims: Vec<i64>, values: &[f64]) -> String {
        let name = self.name("c");
        self.inits.push(TensorProto::f64s(&name, dims, values));
        name
    }

    fn i64s(&mut self, dims: Vec<i64>, values: &[i64]) -> String {
        let name = self.name("c");
        self.inits.push(TensorProto::i64s(&name, dims, values));
        name
    }

    fn emit(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        match view {
            View::Trees { .. } => self.trees(view, x),
            View::HistGradientBoosting { .. } => self.hist(view, x),
            View::GradientBoosting { .. } => self.gradient_boosting(view, x),
            View::Stack { blocks, .. } => {
                let mut parts = Vec::new();
                let mut width = 0;
                for b in blocks {
                    let input = match b.columns {
                        Some(cols) => {
                            let idx: Vec<i64> = cols.iter().map(|c| *c as i64).collect();
                            let idx = self.i64s(vec![idx.len() as i64], &idx);
                            self.op("Gather", &[x, &idx], vec![AttributeProto::int("axis", 1)])
                        }
                        None => x.to_string(),
                    };
                    let (mut out, n) = match &b.est {
                        None => (input, b.columns.map_or(0, <[usize]>::len)),
                        Some(e) => match self.emit(e, &input)? {
                            Out::Transform(t, n) => (t, n),
                            _ => {
                                return Err(unsupported(
                                    e.class(),
                                    Some("a member that is not a transformer".into()),
                                ))
                            }
                        },
                    };
                    if b.columns.is_none() && b.est.is_none() {
                        return Err(unsupported(
                            view.class(),
                            Some("a passthrough member without columns".into()),
                        ));
                    }
                    if let Some(w) = b.weight {
                        let w = self.f64s(vec![], &[w]);
                        out = self.op("Mul", &[&out, &w], vec![]);
                    }
                    width += n;
                    parts.push(out);
                }
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                let out = self.op("Concat", &refs, vec![AttributeProto::int("axis", 1)]);
                Ok(Out::Transform(out, width))
            }
            View::Identity { n_features, .. } => Ok(Out::Transform(x.to_string(), *n_features)),
            View::Ordinal {
                n_features,
                categories,
                unknown_value,
                encoded_missing,
                ..
            } => {
                let mut cols = Vec::new();
                for (j, cats) in categories.iter().enumerate() {
                    let idx = self.i64s(vec![1], &[j as i64]);
                    let col = self.op("Gather", &[x, &idx], vec![AttributeProto::int("axis", 1)]);
                    let (keys, values): (Vec<f64>, Vec<f64>) = cats
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| !c.is_nan())
                        .map(|(i, c)| (*c, i as f64))
                        .unzip();
                    // scikit-learn raises on unknown categories without an unknown_value;
                    // a graph cannot: they become NaN (see docs/EXPORT.md).
                    let default = unknown_value.unwrap_or(f64::NAN);
                    let coded = self.op_ml(
                        "LabelEncoder",
                        &[&col],
                        vec![
                            AttributeProto::tensor(
                                "keys_tensor",
                                TensorProto::f64s("", vec![keys.len() as i64], &keys),
                            ),
                            AttributeProto::tensor(
                                "values_tensor",
                                TensorProto::f64s("", vec![values.len() as i64], &values),
                            ),
                            AttributeProto::tensor(
                                "default_tensor",
                                TensorProto::f64s("", vec![1], &[default]),
                            ),
                        ],
                    );
                    let nan_value = if cats.iter().any(|c| c.is_nan()) {
                        *encoded_missing
                    } else {
                        default
                    };
                    let is_nan = self.op("IsNaN", &[&col], vec![]);
                    let nv = self.f64s(vec![], &[nan_value]);
                    cols.push(self.op("Where", &[&is_nan, &nv, &coded], vec![]));
                }
                let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
                let out = self.op("Concat", &refs, vec![AttributeProto::int("axis", 1)]);
                Ok(Out::Transform(out, *n_features))
            }
            View::Linear { .. } => self.linear(view, x),
            View::ColumnOps {
                n_features, ops, ..
            } => {
                let mut cur = x.to_string();
                for op in ops {
                    cur = match op {
                        ColumnOpView::Sub(c) => self.column(&cur, "Sub", c),
                        ColumnOpView::Div(c) => self.column(&cur, "Div", c),
                        ColumnOpView::Mul(c) => self.column(&cur, "Mul", c),
                        ColumnOpView::Add(c) => self.column(&cur, "Add", c),
                        ColumnOpView::Clip(a, b) => {
                            let lo = self.f64s(vec![], &[*a]);
                            let hi = self.f64s(vec![], &[*b]);
                            self.op("Clip", &[&cur, &lo, &hi], vec![])
                        }
                    };
                }
                Ok(Out::Transform(cur, *n_features))
            }
            View::Pipeline {
                transforms, last, ..
            } => {
                let mut cur = x.to_string();
                let mut width = None;
                for t in transforms {
                    match self.emit(t, &cur)? {
                        Out::Transform(next, n) => {
                            cur = next;
                            width = Some(n);
                        }
                        _ => {
                            return Err(unsupported(
                                t.class(),
                                Some("a pipeline step that is not a transformer".into()),
                            ))
                        }
                    }
                }
                match last {
                    Some(l) => self.emit(l, &cur),
                    None => Ok(Out::Transform(cur, width.unwrap_or(0))),
                }
            }
            View::Opaque { class } => Err(unsupported(class, None)),
        }
    }

    fn column(&mut self, x: &str, op: &str, c: &[f64]) -> String {
        let c = self.f64s(vec![c.len() as i64], c);
        self.op(op, &[x, &c], vec![])
    }

    fn trees(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
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
        // scikit-learn's float32(X), as double so that TreeEnsemble's output is double.
        let x64 = self.float32_input(view.class(), x);
        let mut e = Ensemble::default();
        for tree in trees {
            // TreeEnsemble's leaves carry one target each: the tree is written once per
            // output column, each copy with that column's leaf values.
            for target in 0..width {
                e.add(tree, target, target as i64)?;
            }
        }
        let sum = self.name("tree_sum");
        let attrs = e.attributes(width);
        self.op_to("TreeEnsemble", ML, &[&x64], &sum, attrs);
        let raw = if *average {
            // scikit-learn sums the trees from zero, then divides by their number.
            let n = self.f64s(vec![], &[trees.len() as f64]);
            self.op("Div", &[&sum, &n], vec![])
        } else {
            sum
        };
        match classes {
            Some(c) => {
                let index = self.op(
                    "ArgMax",
                    &[&raw],
                    vec![
                        AttributeProto::int("axis", 1),
                        AttributeProto::int("keepdims", 0),
                    ],
                );
                Ok(Out::Classifier {
                    index,
                    proba: Some(raw),
                    labels: c.labels.clone(),
                })
            }
            None => Ok(Out::Regressor {
                values: raw,
                k: width,
                flat: width == 1,
            }),
        }
    }

    fn hist(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::HistGradientBoosting {
            preprocessor,
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
        let input = match preprocessor {
            None => x.to_string(),
            Some(p) => match self.emit(p, x)? {
                Out::Transform(t, _) => t,
                _ => return Err(unsupported(p.class(), Some("as a preprocessor".into()))),
            },
        };
        let mut e = Ensemble::default();
        for (i, tree) in trees.iter().enumerate() {
            e.add_hist(tree, i % k.max(1))?;
        }
        let sum = self.name("tree_sum");
        let attrs = e.attributes(k);
        self.op_to("TreeEnsemble", ML, &[&input], &sum, attrs);
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
        let labels = c.labels.clone();
        if k == 1 {
            let (index, p) = self.binary(&raw);
            let p = self.op("Sigmoid", &[&p], vec![]);
            let proba = self.two_columns(&p);
            return Ok(Out::Classifier {
                index,
                proba: Some(proba),
                labels,
            });
        }
        let index = self.op(
            "ArgMax",
            &[&raw],
            vec![
                AttributeProto::int("axis", 1),
                AttributeProto::int("keepdims", 0),
            ],
        );
        let proba = self.op("Softmax", &[&raw], vec![AttributeProto::int("axis", 1)]);
        Ok(Out::Classifier {
            index,
            proba: Some(proba),
            labels,
        })
    }

    fn gradient_boosting(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
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
        let mut e = Ensemble::default();
        for (i, tree) in trees.iter().enumerate() {
            e.add(tree, 0, (i % k.max(1)) as i64)?;
        }
        let sum = self.name("tree_sum");
        let attrs = e.attributes(k);
        self.op_to("TreeEnsemble", ML, &[&x64], &sum, attrs);
        let b = self.f64s(vec![k as i64], init);
        let raw = self.op("Add", &[&sum, &b], vec![]);
        let Some(c) = classes else {
            return Ok(Out::Regressor {
                values: raw,
                k,
                flat: true,
            });
        };
        let labels = c.labels.clone();
        if k == 1 {
            // GradientBoostingClassifier predicts class 1 when raw >= 0.
            let (index, p) = self.binary_with(&raw, "GreaterOrEqual");
            let p = self.op("Sigmoid", &[&p], vec![]);
            let proba = self.two_columns(&p);
            return Ok(Out::Classifier {
                index,
                proba: Some(proba),
                labels,
            });
        }
        let index = self.op(
            "ArgMax",
            &[&raw],
            vec![
                AttributeProto::int("axis", 1),
                AttributeProto::int("keepdims", 0),
            ],
        );
        let proba = self.op("Softmax", &[&raw], vec![AttributeProto::int("axis", 1)]);
        Ok(Out::Classifier {
            index,
            proba: Some(proba),
            labels,
        })
    }

    /// X rounded to float32 and back to double, as scikit-learn's trees see it.
    fn float32_input(&mut self, class: &str, x: &str) -> String {
        let x32 = self.op(
            "Cast",
            &[x],
            vec![AttributeProto::int("to", i64::from(data_type::FLOAT))],
        );
        self.float32_notes.push(format!(
            "{class}: X is rounded to float32 before the tree comparisons, exactly as scikit-learn does; leaf values and sums are double"
        ));
        self.op(
            "Cast",
            &[&x32],
            vec![AttributeProto::int("to", i64::from(data_type::DOUBLE))],
        )
    }

    /// The class index of a one-column score (`score > 0`), and the score itself.
    fn binary(&mut self, scores: &str) -> (String, String) {
        self.binary_with(scores, "Greater")
    }

    fn binary_with(&mut self, scores: &str, compare: &str) -> (String, String) {
        let zero = self.f64s(vec![], &[0.0]);
        let pos = self.op(compare, &[scores, &zero], vec![]);
        let idx = self.op(
            "Cast",
            &[&pos],
            vec![AttributeProto::int("to", i64::from(data_type::INT64))],
        );
        let flat_shape = self.i64s(vec![1], &[-1]);
        let index = self.op("Reshape", &[&idx, &flat_shape], vec![]);
        (index, scores.to_string())
    }

    /// `[1 - p, p]` of a one-column probability, as scikit-learn builds binary probabilities.
    fn two_columns(&mut self, p: &str) -> String {
        let one = self.f64s(vec![], &[1.0]);
        let q = self.op("Sub", &[&one, p], vec![]);
        self.op("Concat", &[&q, p], vec![AttributeProto::int("axis", 1)])
    }

    fn linear(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::Linear {
            class,
            n_features,
            coef,
            intercept,
            k,
            flat,
            classes,
            link,
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let (d, k) = (*n_features, *k);
        let mut coef_t = vec![0.0; d * k];
        for (j, row) in coef.chunks_exact(d.max(1)).enumerate() {
            for (i, w) in row.iter().enumerate() {
                coef_t[i * k + j] = *w;
            }
        }
        let w = self.f64s(vec![d as i64, k as i64], &coef_t);
        let b = self.f64s(vec![k as i64], intercept);
        let xw = self.op("MatMul", &[x, &w], vec![]);
        let scores = self.op("Add", &[&xw, &b], vec![]);
        let Some(c) = classes else {
            return Ok(Out::Regressor {
                values: scores,
                k,
                flat: *flat,
            });
        };
        let labels = c.labels.clone();
        if k == 1 {
            let (index, _) = self.binary(&scores);
            let p = match link {
                LinearLink::None => None,
                LinearLink::Logistic | LinearLink::OvrLogistic => {
                    Some(self.op("Sigmoid", &[&scores], vec![]))
                }
                LinearLink::ModifiedHuber => Some(self.modified_huber(&scores)),
            };
            let proba = p.map(|p| self.two_columns(&p));
            return Ok(Out::Classifier {
                index,
                proba,
                labels,
            });
        }
        let index = self.op(
            "ArgMax",
            &[&scores],
            vec![
                AttributeProto::int("axis", 1),
                AttributeProto::int("keepdims", 0),
            ],
        );
        let proba = match link {
            LinearLink::None => None,
            LinearLink::Logistic => {
                Some(self.op("Softmax", &[&scores], vec![AttributeProto::int("axis", 1)]))
            }
            LinearLink::OvrLogistic => {
                let p = self.op("Sigmoid", &[&scores], vec![]);
                let axes = self.i64s(vec![1], &[1]);
                let s = self.op(
                    "ReduceSum",
                    &[&p, &axes],
                    vec![AttributeProto::int("keepdims", 1)],
                );
                Some(self.op("Div", &[&p, &s], vec![]))
            }
            LinearLink::ModifiedHuber => {
                return Err(unsupported(
                    class,
                    Some("multiclass modified_huber probabilities".into()),
                ))
            }
        };
        Ok(Out::Classifier {
            index,
            proba,
            labels,
        })
    }

    fn modified_huber(&mut self, s: &str) -> String {
        let lo = self.f64s(vec![], &[-1.0]);
        let hi = self.f64s(vec![], &[1.0]);
        let c = self.op("Clip", &[s, &lo, &hi], vec![]);
        let one = self.f64s(vec![], &[1.0]);
        let two = self.f64s(vec![], &[2.0]);
        let a = self.op("Add", &[&c, &one], vec![]);
        self.op("Div", &[&a, &two], vec![])
    }
}

/// The attributes of one `TreeEnsemble` node, gathered tree by tree.
#[derive(Default)]
struct Ensemble {
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
    fn add(&mut self, tree: &TreeView<'_>, value: usize, target: i64) -> Result<()> {
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
    fn add_hist(&mut self, tree: &HistTreeView, target: usize) -> Result<()> {
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

    fn attributes(self, n_targets: usize) -> Vec<AttributeProto> {
        let n = self.splits.len() as i64;
        let nl = self.leaf_weights.len() as i64;
        let mut attrs = Vec::new();
        if !self.membership.is_empty() {
            let nm = self.membership.len() as i64;
            attrs.push(AttributeProto::tensor(
                "membership_values",
                TensorProto::f64s("", vec![nm], &self.membership),
            ));
        }
        attrs.extend([
            AttributeProto::int("aggregate_function", AGGREGATE_SUM),
            AttributeProto::int("n_targets", n_targets as i64),
            AttributeProto::int("post_transform", 0),
            AttributeProto::ints("tree_roots", self.roots),
            AttributeProto::ints("nodes_featureids", self.featureids),
            AttributeProto::tensor("nodes_splits", TensorProto::f64s("", vec![n], &self.splits)),
            AttributeProto::tensor("nodes_modes", TensorProto::u8s("", &self.modes)),
            AttributeProto::ints("nodes_missing_value_tracks_true", self.missing_true),
            AttributeProto::ints("nodes_truenodeids", self.true_ids),
            AttributeProto::ints("nodes_trueleafs", self.true_leafs),
            AttributeProto::ints("nodes_falsenodeids", self.false_ids),
            AttributeProto::ints("nodes_falseleafs", self.false_leafs),
            AttributeProto::ints("leaf_targetids", self.leaf_targets),
            AttributeProto::tensor(
                "leaf_weights",
                TensorProto::f64s("", vec![nl], &self.leaf_weights),
            ),
        ]);
        attrs
    }
}

fn json_string_list(items: &[String]) -> String {
    serde_json::Value::Array(
        items
            .iter()
            .map(|s| serde_json::Value::String(s.clone()))
            .collect(),
    )
    .to_string()
}

/// The ONNX model of `model`.
pub fn to_onnx(model: &Model) -> Result<ModelProto> {
    let view = model.view();
    let nf = model.n_features();
    let mut g = Graph::default();
    let out = g.emit(&view, INPUT)?;
    let n = Dim::Param("N");
    let mut outputs = Vec::new();
    let mut meta: Vec<(String, String)> = Vec::new();
    match out {
        Out::Classifier {
            index,
            proba,
            labels,
        } => {
            let (tensor, elem) = match &labels {
                Labels::Int(v) => (
                    TensorProto::i64s("", vec![v.len() as i64], v),
                    data_type::INT64,
                ),
                Labels::Float(v) => (
                    TensorProto::f64s("", vec![v.len() as i64], v),
                    data_type::DOUBLE,
                ),
                Labels::Str(v) => (TensorProto::strings("", v), data_type::STRING),
                Labels::Bool(v) => {
                    let ints: Vec<i64> = v.iter().map(|b| i64::from(*b)).collect();
                    (
                        TensorProto::i64s("", vec![v.len() as i64], &ints),
                        data_type::INT64,
                    )
                }
            };
            let classes = g.name("classes");
            g.inits.push(TensorProto {
                name: classes.clone(),
                ..tensor
            });
            g.op_to(
                "Gather",
                "",
                &[&classes, &index],
                "label",
                vec![AttributeProto::int("axis", 0)],
            );
            outputs.push(ValueInfoProto::tensor("label", elem, &[n]));
            let class_text: Vec<String> = match &labels {
                Labels::Int(v) => v.iter().map(|x| x.to_string()).collect(),
                Labels::Float(v) => v.iter().map(|x| skvault_infer::format_float(*x)).collect(),
                Labels::Str(v) => v.clone(),
                Labels::Bool(v) => v
                    .iter()
                    .map(|b| (if *b { "True" } else { "False" }).to_string())
                    .collect(),
            };
            if matches!(labels, Labels::Bool(_)) {
                meta.push((
                    "skvault.label_encoding".into(),
                    "bool labels as int64 0/1".into(),
                ));
            }
            meta.push(("skvault.classes".into(), json_string_list(&class_text)));
            if let Some(p) = proba {
                g.op_to("Identity", "", &[&p], "probabilities", vec![]);
                outputs.push(ValueInfoProto::tensor(
                    "probabilities",
                    data_type::DOUBLE,
                    &[n, Dim::Value(class_text.len() as i64)],
                ));
            }
        }
        Out::Regressor { values, k, flat } => {
            if flat {
                let shape = g.i64s(vec![1], &[-1]);
                g.op_to("Reshape", "", &[&values, &shape], "prediction", vec![]);
                outputs.push(ValueInfoProto::tensor(
                    "prediction",
                    data_type::DOUBLE,
                    &[n],
                ));
            } else {
                g.op_to("Identity", "", &[&values], "prediction", vec![]);
                outputs.push(ValueInfoProto::tensor(
                    "prediction",
                    data_type::DOUBLE,
                    &[n, Dim::Value(k as i64)],
                ));
            }
        }
        Out::Transform(t, k) => {
            g.op_to("Identity", "", &[&t], "transformed", vec![]);
            outputs.push(ValueInfoProto::tensor(
                "transformed",
                data_type::DOUBLE,
                &[n, Dim::Value(k as i64)],
            ));
        }
    }
    let output_names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    meta.push(("skvault.class".into(), model.class().to_string()));
    meta.push(("skvault.input".into(), format!("{INPUT}: double [N, {nf}]")));
    meta.push(("skvault.outputs".into(), json_string_list(&output_names)));
    if let Some(names) = model.feature_names() {
        meta.push(("skvault.feature_names".into(), json_string_list(names)));
    }
    meta.push((
        "skvault.float32".into(),
        if g.float32_notes.is_empty() {
            "none: every operator runs in double".into()
        } else {
            g.float32_notes.join("; ")
        },
    ));
    meta.push((
        "skvault.tolerance".into(),
        "labels identical to scikit-learn; values within 1e-12 relative (docs/EXPORT.md)".into(),
    ));
    let graph = GraphProto {
        node: g.nodes,
        name: "skvault".into(),
        initializer: g.inits,
        doc_string: format!("{} exported by skvault", model.class()),
        input: vec![ValueInfoProto::tensor(
            INPUT,
            data_type::DOUBLE,
            &[n, Dim::Value(nf as i64)],
        )],
        output: outputs,
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "skvault".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: String::new(),
        graph: Some(graph),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_ONNX,
            },
            OperatorSetIdProto {
                domain: ML.into(),
                version: OPSET_ML,
            },
        ],
        metadata_props: meta
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
    })
}
