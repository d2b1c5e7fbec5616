//! Native model -> ONNX graph (`ai.onnx` opset 21, `ai.onnx.ml` opset 5, IR version 10;
//! `ai.onnx.ml` opset 4 for float32 trees, whose `TreeEnsembleRegressor` opset 5 deprecates).
//!
//! The input `X` is `double [N, n_features]`; a model that reads text takes one `[N, 1]`
//! input per column instead (see `frame.rs`). Every operator runs in double except where
//! scikit-learn itself works in float32: trees cast X to float32 and compare with the
//! float64 threshold, which the graph reproduces exactly by casting X to float then back to
//! double before `TreeEnsemble` (whose splits are the thresholds inference uses: the
//! largest float32 not above scikit-learn's, see skvault-infer's `tree.rs`). Leaf values,
//! sums and outputs stay double. With `--dtype float32` the trees run in float32 as
//! `TreeEnsembleRegressor` (see `regressor.rs`). See docs/EXPORT.md.

use prost::Message;
use skvault_infer::{BlockView, Labels, LinearLink, Model, View};

mod ensemble;
mod frame;
mod regressor;
mod transform;

pub use frame::MISSING_TEXT;
use frame::{FrameOut, Kind, Part};

use crate::error::{unsupported, Result};
use crate::proto::{
    data_type, AttributeProto, Dim, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};

pub const IR_VERSION: i64 = 10;
pub const OPSET_ONNX: i64 = 21;
pub const OPSET_ML: i64 = 5;
/// The `ai.onnx.ml` opset of a graph with float32 trees: `TreeEnsembleRegressor` (opset 3)
/// is deprecated from opset 5 on; `LabelEncoder`'s tensor attributes need opset 4.
pub const OPSET_ML_FLOAT32_TREES: i64 = 4;
const ML: &str = "ai.onnx.ml";

/// The input's name.
pub const INPUT: &str = "X";

/// Builds the ONNX model bytes of `model`.
pub fn to_onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    to_onnx_bytes_with(model, OnnxOptions::default())
}

/// [`to_onnx_bytes`] with options.
pub fn to_onnx_bytes_with(model: &Model, options: OnnxOptions) -> Result<Vec<u8>> {
    Ok(to_onnx_with(model, options)?.encode_to_vec())
}

/// How a model is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    /// Trees, forests, gradient boosting and isolation forests run in float32 (`--dtype
    /// float32`): what onnxruntime runs fastest, as skl2onnx writes them. Comparisons stay
    /// exact (thresholds rounded down to float32); leaf values and sums lose float64's
    /// precision. HistGradientBoosting, which compares float64 values, stays double.
    pub float32_trees: bool,
}

/// What an estimator's subgraph produces.
enum Out {
    /// A transformer's output, `n` columns.
    Transform(String, usize),
    /// A classifier: the index of the predicted class (int64 [N]), and, if it has them,
    /// probabilities (double [N, n_classes]) and scores (`decision_function`, double [N]).
    Classifier {
        index: String,
        proba: Option<String>,
        scores: Option<String>,
        labels: Labels,
    },
    /// A regressor: double [N, k], or [N] when `flat`.
    Regressor {
        values: String,
        k: usize,
        flat: bool,
    },
}

impl Out {
    fn classifier(index: String, proba: Option<String>, labels: Labels) -> Out {
        Out::Classifier {
            index,
            proba,
            scores: None,
            labels,
        }
    }
}

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
    /// Where float32 enters (for the metadata).
    float32_notes: Vec<String>,
    /// Tree ensembles run in float32 ([`OnnxOptions::float32_trees`]).
    float32_trees: bool,
    /// Float32 trees as `TreeEnsemble` (opset 5) instead of `TreeEnsembleRegressor`: for a
    /// graph that also needs `TreeEnsemble` (a model cannot import two `ai.onnx.ml` opsets).
    legacy_trees_off: bool,
    /// How many `TreeEnsemble` nodes the graph has.
    tree_ensemble_nodes: usize,
    /// How many `TreeEnsembleRegressor` nodes the graph has.
    legacy_tree_nodes: usize,
    /// Models that read text: the type of each input column, once a step has read it.
    input_kinds: Vec<Option<Kind>>,
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

    /// Columns `idx` of a `[N, d]` tensor.
    fn gather_columns(&mut self, x: &str, idx: &[usize]) -> String {
        let idx: Vec<i64> = idx.iter().map(|c| *c as i64).collect();
        let idx = self.i64s(vec![idx.len() as i64], &idx);
        self.op("Gather", &[x, &idx], vec![AttributeProto::int("axis", 1)])
    }

    /// The tensors side by side (axis 1).
    fn concat(&mut self, parts: &[String]) -> String {
        if let [one] = parts {
            return one.clone();
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.op("Concat", &refs, vec![AttributeProto::int("axis", 1)])
    }

    fn cast(&mut self, x: &str, to: i32) -> String {
        self.op("Cast", &[x], vec![AttributeProto::int("to", i64::from(to))])
    }

    /// The index of each row's largest value (the first on ties, as numpy's argmax).
    fn argmax(&mut self, x: &str) -> String {
        self.op(
            "ArgMax",
            &[x],
            vec![
                AttributeProto::int("axis", 1),
                AttributeProto::int("keepdims", 0),
            ],
        )
    }

    fn softmax(&mut self, x: &str) -> String {
        self.op("Softmax", &[x], vec![AttributeProto::int("axis", 1)])
    }

    /// `x @ w.T` for `w` given as `k` rows (row-major).
    fn matmul_transposed(&mut self, x: &str, w: &[f64], k: usize) -> String {
        let d = w.len().checked_div(k).unwrap_or(0);
        let mut t = vec![0.0; d * k];
        for (j, row) in w.chunks_exact(d.max(1)).enumerate() {
            for (i, v) in row.iter().enumerate() {
                t[i * k + j] = *v;
            }
        }
        let t = self.f64s(vec![d as i64, k as i64], &t);
        self.op("MatMul", &[x, &t], vec![])
    }

    fn emit(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        match view {
            View::Trees { .. } => self.trees(view, x),
            View::HistGradientBoosting { .. } => self.hist(view, x),
            View::GradientBoosting { .. } => self.gradient_boosting(view, x),
            View::IsolationForest { .. } => self.isolation_forest(view, x),
            View::Linear { .. } => self.linear(view, x),
            View::Stack { blocks, .. } => self.stack(view.class(), blocks, x),
            View::Pipeline {
                transforms, last, ..
            } => self.pipeline(transforms, last.as_deref(), x),
            View::Identity { n_features, .. } => Ok(Out::Transform(x.to_string(), *n_features)),
            View::Ordinal {
                categories,
                unknown_value,
                encoded_missing,
                ..
            } => Ok(self.ordinal(x, categories, *unknown_value, *encoded_missing)),
            View::ColumnOps {
                n_features, ops, ..
            } => Ok(self.column_ops(x, *n_features, ops)),
            View::OneHot {
                class,
                categories,
                drop,
                ..
            } => self.one_hot(class, x, categories, drop),
            View::Normalizer {
                n_features, norm, ..
            } => Ok(self.normalizer(x, *n_features, *norm)),
            View::Imputer { .. } => self.imputer(view, x),
            View::Pca {
                components,
                k,
                offset,
                scale,
                ..
            } => Ok(self.pca(x, components, *k, offset, *scale)),
            View::Polynomial {
                class,
                columns,
                keep,
                ..
            } => self.polynomial(class, x, columns, keep),
            View::TextEncoder { class, .. } | View::TextImputer { class, .. } => Err(unsupported(
                class,
                Some("text columns inside a step that takes numbers".into()),
            )),
            View::Opaque { class } => Err(unsupported(class, None)),
            View::Unexportable { class, reason } => Err(unsupported(class, Some((*reason).into()))),
        }
    }

    /// ColumnTransformer / FeatureUnion: each block on its columns, weighted, side by side.
    fn stack(&mut self, class: &str, blocks: &[BlockView<'_>], x: &str) -> Result<Out> {
        let mut parts = Vec::new();
        let mut width = 0;
        for b in blocks {
            let input = match b.columns {
                Some(cols) => self.gather_columns(x, cols),
                None => x.to_string(),
            };
            let (mut out, n) = match &b.est {
                None => match b.columns {
                    Some(cols) => (input, cols.len()),
                    None => {
                        return Err(unsupported(
                            class,
                            Some("a passthrough member without columns".into()),
                        ))
                    }
                },
                Some(e) => self.transformer(e, &input, "a member that is not a transformer")?,
            };
            if let Some(w) = b.weight {
                let w = self.f64s(vec![], &[w]);
                out = self.op("Mul", &[&out, &w], vec![]);
            }
            width += n;
            parts.push(out);
        }
        Ok(Out::Transform(self.concat(&parts), width))
    }

    fn pipeline(
        &mut self,
        transforms: &[View<'_>],
        last: Option<&View<'_>>,
        x: &str,
    ) -> Result<Out> {
        let mut cur = x.to_string();
        let mut width = None;
        for t in transforms {
            let (next, n) =
                self.transformer(t, &cur, "a pipeline step that is not a transformer")?;
            cur = next;
            width = Some(n);
        }
        match last {
            Some(l) => self.emit(l, &cur),
            None => Ok(Out::Transform(cur, width.unwrap_or(0))),
        }
    }

    /// The output of `view`, which must be a transformer (`role` says where it stands).
    fn transformer(&mut self, view: &View<'_>, x: &str, role: &str) -> Result<(String, usize)> {
        match self.emit(view, x)? {
            Out::Transform(t, n) => Ok((t, n)),
            _ => Err(unsupported(view.class(), Some(role.into()))),
        }
    }

    /// The class index of a one-column score (`score > 0`), and the score itself.
    fn binary(&mut self, scores: &str) -> (String, String) {
        self.binary_with(scores, "Greater")
    }

    fn binary_with(&mut self, scores: &str, compare: &str) -> (String, String) {
        let zero = self.f64s(vec![], &[0.0]);
        let pos = self.op(compare, &[scores, &zero], vec![]);
        let idx = self.cast(&pos, data_type::INT64);
        (self.flatten(&idx), scores.to_string())
    }

    /// A `[N, 1]` tensor as `[N]`.
    fn flatten(&mut self, x: &str) -> String {
        let shape = self.i64s(vec![1], &[-1]);
        self.op("Reshape", &[x, &shape], vec![])
    }

    /// `[1 - p, p]` of a one-column probability, as scikit-learn builds binary probabilities.
    fn two_columns(&mut self, p: &str) -> String {
        let one = self.f64s(vec![], &[1.0]);
        let q = self.op("Sub", &[&one, p], vec![]);
        self.op("Concat", &[&q, p], vec![AttributeProto::int("axis", 1)])
    }

    fn linear(&mut self, view: &View<'_>, x: &str) -> Result<Out> {
        let View::Linear {
            coef,
            intercept,
            k,
            flat,
            classes,
            link,
            ..
        } = view
        else {
            return Err(unsupported(view.class(), None));
        };
        let k = *k;
        let xw = self.matmul_transposed(x, coef, k);
        let b = self.f64s(vec![k as i64], intercept);
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
            return Ok(Out::classifier(index, proba, labels));
        }
        let index = self.argmax(&scores);
        let proba = match link {
            LinearLink::None => None,
            LinearLink::Logistic => Some(self.softmax(&scores)),
            LinearLink::OvrLogistic => {
                let p = self.op("Sigmoid", &[&scores], vec![]);
                let s = self.row_sums(&p);
                Some(self.op("Div", &[&p, &s], vec![]))
            }
            LinearLink::ModifiedHuber => {
                // Rows whose clipped scores are all -1 sum to zero: scikit-learn makes them
                // uniform (ones divided by the number of classes).
                let p = self.modified_huber(&scores);
                let s = self.row_sums(&p);
                let zero = self.f64s(vec![], &[0.0]);
                let all_zero = self.op("Equal", &[&s, &zero], vec![]);
                let one = self.f64s(vec![], &[1.0]);
                let n = self.f64s(vec![], &[k as f64]);
                let p = self.op("Where", &[&all_zero, &one, &p], vec![]);
                let s = self.op("Where", &[&all_zero, &n, &s], vec![]);
                Some(self.op("Div", &[&p, &s], vec![]))
            }
        };
        Ok(Out::classifier(index, proba, labels))
    }

    /// The sum of each row, `[N, 1]`.
    fn row_sums(&mut self, x: &str) -> String {
        let axes = self.i64s(vec![1], &[1]);
        self.op(
            "ReduceSum",
            &[x, &axes],
            vec![AttributeProto::int("keepdims", 1)],
        )
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
    to_onnx_with(model, OnnxOptions::default())
}

/// [`to_onnx`] with options.
pub fn to_onnx_with(model: &Model, options: OnnxOptions) -> Result<ModelProto> {
    let proto = to_onnx_graph(model, options, false)?;
    if needs_one_ml_opset(&proto) {
        // TreeEnsembleRegressor and TreeEnsemble cannot share a model: write the float32
        // trees as TreeEnsemble too (float tensors, the same splits and tolerance).
        return to_onnx_graph(model, options, true);
    }
    Ok(proto)
}

/// Whether `proto` holds both `TreeEnsemble` and `TreeEnsembleRegressor`.
fn needs_one_ml_opset(proto: &ModelProto) -> bool {
    let Some(graph) = &proto.graph else {
        return false;
    };
    let has = |op: &str| graph.node.iter().any(|n| n.op_type == op);
    has("TreeEnsemble") && has("TreeEnsembleRegressor")
}

fn to_onnx_graph(
    model: &Model,
    options: OnnxOptions,
    legacy_trees_off: bool,
) -> Result<ModelProto> {
    let view = model.view();
    let mut g = Graph {
        float32_trees: options.float32_trees,
        legacy_trees_off,
        ..Graph::default()
    };
    if frame::reads_text(&view) {
        return to_onnx_frame(model, &view, g);
    }
    let nf = model.n_features();
    let out = g.emit(&view, INPUT)?;
    let n = Dim::Param("N");
    let mut meta: Vec<(String, String)> = Vec::new();
    let outputs = graph_outputs(&mut g, out, &mut meta);
    let output_names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    let input_note = format!("{INPUT}: double [N, {nf}]");
    meta.extend(model_metadata(model, &g, &output_names, input_note));
    let opset = ml_opset(&g);
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
    Ok(model_proto(graph, meta, opset))
}

/// A model that reads text: one `[N, 1]` input per column it reads (string or double),
/// named after the column (see [`frame::sanitize`]).
fn to_onnx_frame(model: &Model, view: &View<'_>, mut g: Graph) -> Result<ModelProto> {
    let nf = model.n_features();
    let parts = (0..nf).map(Part::Input).collect();
    let out = match g.frame_emit(view, parts)? {
        FrameOut::Out(o) => o,
        FrameOut::Parts(p) => {
            let (t, n) = g.numbers(&p, model.class())?;
            Out::Transform(t, n)
        }
    };
    let mut meta: Vec<(String, String)> = Vec::new();
    let outputs = graph_outputs(&mut g, out, &mut meta);
    let output_names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    // Input names: the sanitized column names, made unique and kept apart from every
    // name the graph already uses.
    let mut taken: std::collections::HashSet<String> = g
        .nodes
        .iter()
        .flat_map(|n| n.output.iter().cloned())
        .chain(g.inits.iter().map(|t| t.name.clone()))
        .chain(output_names.iter().cloned())
        .collect();
    let mut inputs = Vec::new();
    let mut described = Vec::new();
    let mut renames = std::collections::HashMap::new();
    for (j, kind) in g.input_kinds.iter().enumerate() {
        let Some(kind) = kind else { continue };
        let column = match model.feature_names() {
            Some(names) => names.get(j).cloned().unwrap_or_else(|| format!("x{j}")),
            None => format!("x{j}"),
        };
        let base = frame::sanitize(&column);
        let mut name = base.clone();
        let mut k = 1;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        let (elem, type_name) = match kind {
            Kind::Text => (data_type::STRING, "string"),
            Kind::Number => (data_type::DOUBLE, "double"),
        };
        inputs.push(ValueInfoProto::tensor(
            &name,
            elem,
            &[Dim::Param("N"), Dim::Value(1)],
        ));
        described.push(serde_json::json!({"name": name, "column": column, "type": type_name}));
        renames.insert(frame::placeholder(j), name);
    }
    for node in &mut g.nodes {
        for i in &mut node.input {
            if let Some(n) = renames.get(i.as_str()) {
                *i = n.clone();
            }
        }
    }
    let input_note = serde_json::Value::Array(described).to_string();
    let opset = ml_opset(&g);
    meta.extend(model_metadata(model, &g, &output_names, input_note));
    meta.push((
        "skvault.missing_text".into(),
        format!("{MISSING_TEXT:?}: a missing value (None, NaN, pd.NA) of a text column"),
    ));
    let graph = GraphProto {
        node: g.nodes,
        name: "skvault".into(),
        initializer: g.inits,
        doc_string: format!("{} exported by skvault", model.class()),
        input: inputs,
        output: outputs,
    };
    Ok(model_proto(graph, meta, opset))
}

/// Names the graph's outputs after what the model is and describes them.
fn graph_outputs(g: &mut Graph, out: Out, meta: &mut Vec<(String, String)>) -> Vec<ValueInfoProto> {
    let n = Dim::Param("N");
    let mut outputs = Vec::new();
    match out {
        Out::Classifier {
            index,
            proba,
            scores,
            labels,
        } => return classifier_outputs(g, index, proba, scores, labels, meta),
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
    outputs
}

/// The classifier's outputs: `label` (its classes gathered by the predicted index), and
/// `probabilities` and `scores` when it has them; the class list goes into `meta`.
fn classifier_outputs(
    g: &mut Graph,
    index: String,
    proba: Option<String>,
    scores: Option<String>,
    labels: Labels,
    meta: &mut Vec<(String, String)>,
) -> Vec<ValueInfoProto> {
    let n = Dim::Param("N");
    let mut outputs = Vec::new();
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
    if let Some(s) = scores {
        g.op_to("Identity", "", &[&s], "scores", vec![]);
        outputs.push(ValueInfoProto::tensor("scores", data_type::DOUBLE, &[n]));
    }
    outputs
}

/// What the model is, for a reader of the ONNX file (`metadata_props`).
fn model_metadata(
    model: &Model,
    g: &Graph,
    output_names: &[String],
    input_note: String,
) -> Vec<(String, String)> {
    let mut meta = Vec::new();
    meta.push(("skvault.class".into(), model.class().to_string()));
    meta.push(("skvault.input".into(), input_note));
    meta.push(("skvault.outputs".into(), json_string_list(output_names)));
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
        if g.float32_trees {
            "float32 trees: labels identical to scikit-learn except where two classes' scores are within float32 rounding; values within 1e-5 relative (skvault docs export)"
        } else {
            "labels identical to scikit-learn; values within 1e-12 relative (skvault docs export)"
        }
        .into(),
    ));
    meta
}

/// The `ai.onnx.ml` opset `g` needs: 4 where it has `TreeEnsembleRegressor` (and no
/// `TreeEnsemble`, which [`to_onnx_with`] sees to), else 5.
fn ml_opset(g: &Graph) -> i64 {
    if g.legacy_tree_nodes > 0 && g.tree_ensemble_nodes == 0 {
        OPSET_ML_FLOAT32_TREES
    } else {
        OPSET_ML
    }
}

/// The model proto around `graph`, with the opsets it uses.
fn model_proto(graph: GraphProto, meta: Vec<(String, String)>, ml_opset: i64) -> ModelProto {
    ModelProto {
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
                version: ml_opset,
            },
        ],
        metadata_props: meta
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(ops: &[&str]) -> ModelProto {
        let node = ops
            .iter()
            .map(|op| NodeProto {
                op_type: (*op).to_string(),
                domain: ML.into(),
                ..Default::default()
            })
            .collect();
        let graph = GraphProto {
            node,
            ..Default::default()
        };
        model_proto(graph, Vec::new(), OPSET_ML)
    }

    #[test]
    fn float32_trees_import_ml_opset_4_unless_the_graph_also_needs_tree_ensemble() {
        let mut g = Graph::default();
        assert_eq!(ml_opset(&g), OPSET_ML);
        g.legacy_tree_nodes = 1;
        assert_eq!(ml_opset(&g), OPSET_ML_FLOAT32_TREES);
        g.tree_ensemble_nodes = 1;
        assert_eq!(ml_opset(&g), OPSET_ML);
        // Such a graph is written again with the float32 trees as TreeEnsemble.
        assert!(needs_one_ml_opset(&graph_of(&[
            "TreeEnsemble",
            "TreeEnsembleRegressor"
        ])));
        assert!(!needs_one_ml_opset(&graph_of(&[
            "LabelEncoder",
            "TreeEnsembleRegressor"
        ])));
        assert!(!needs_one_ml_opset(&graph_of(&["TreeEnsemble"])));
    }
}
