//! Native inference on small hand-made files (no Python): the float32 threshold rule, NaN
//! routing, refused inputs, and hostile trees refused at open time.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Map;
use skvault_format::dtype::{ByteOrder, Field, Kind};
use skvault_format::{
    prepare, ArrayInput, Construct, DType, Node, Object, Order, SkvFile, WriteOptions,
};
use skvault_infer::{InferError, MatrixView, Model, Prediction};

fn scalar(kind: Kind, count: u64) -> DType {
    let order = if count == 1 {
        ByteOrder::NotApplicable
    } else {
        ByteOrder::Little
    };
    DType::Scalar { order, kind, count }
}

fn node_dtype() -> DType {
    let f = |name: &str, dtype: DType, offset: u64| Field {
        name: name.into(),
        dtype,
        offset,
    };
    DType::Structured {
        fields: vec![
            f("left_child", scalar(Kind::Int, 8), 0),
            f("right_child", scalar(Kind::Int, 8), 8),
            f("feature", scalar(Kind::Int, 8), 16),
            f("threshold", scalar(Kind::Float, 8), 24),
            f("missing_go_to_left", scalar(Kind::UInt, 1), 32),
        ],
        itemsize: 40,
        aligned: false,
    }
}

/// One node record: left, right, feature, threshold, missing_go_to_left.
fn record(l: i64, r: i64, f: i64, t: f64, m: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&l.to_le_bytes());
    b.extend_from_slice(&r.to_le_bytes());
    b.extend_from_slice(&f.to_le_bytes());
    b.extend_from_slice(&t.to_le_bytes());
    b.push(m);
    b.extend_from_slice(&[0; 7]);
    b
}

fn attrs(items: Vec<(&str, Node)>) -> Option<Node> {
    Some(Node::Dict(
        items
            .into_iter()
            .map(|(k, v)| (Node::Str(k.into()), v))
            .collect(),
    ))
}

fn object(class: &str, state: Option<Node>) -> Node {
    Node::Object(Box::new(Object {
        class: class.into(),
        construct: Construct::New {
            args: vec![],
            kwargs: vec![],
        },
        state,
        list_items: vec![],
        dict_items: vec![],
    }))
}

/// A DecisionTreeRegressor on 2 features: x0 <= 0.1 ? (x1 <= 5 ? 1 : 2) : 3, NaN in x0 left.
struct Spec {
    class: &'static str,
    nodes: Vec<Vec<u8>>,
    values: Vec<f64>,
    n_features: i64,
}

impl Spec {
    fn regressor() -> Spec {
        Spec {
            class: "sklearn.tree._classes.DecisionTreeRegressor",
            nodes: vec![
                record(1, 4, 0, 0.1, 1),
                record(2, 3, 1, 5.0, 0),
                record(-1, -1, -2, -2.0, 0),
                record(-1, -1, -2, -2.0, 0),
                record(-1, -1, -2, -2.0, 0),
            ],
            values: vec![0.0, 0.0, 1.0, 2.0, 3.0],
            n_features: 2,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let nodes: Vec<u8> = self.nodes.concat();
        let values: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let n = self.nodes.len() as u64;
        let arrays = [
            ArrayInput {
                dtype: node_dtype(),
                shape: vec![n],
                order: Order::C,
                data: &nodes,
            },
            ArrayInput {
                dtype: scalar(Kind::Float, 8),
                shape: vec![self.values.len() as u64, 1, 1],
                order: Order::C,
                data: &values,
            },
        ];
        let tree = object(
            "sklearn.tree._tree.Tree",
            attrs(vec![("nodes", Node::Array(0)), ("values", Node::Array(1))]),
        );
        let root = object(
            self.class,
            attrs(vec![
                ("n_features_in_", Node::Int(self.n_features)),
                ("n_outputs_", Node::Int(1)),
                ("tree_", tree),
            ]),
        );
        let prepared = prepare(root, &arrays, Map::new(), WriteOptions::default()).unwrap();
        let mut out = Vec::new();
        prepared.write_to(&mut out, &mut |_| {}).unwrap();
        out
    }

    fn open(&self) -> Result<Model, InferError> {
        Model::from_file(&SkvFile::from_bytes(self.bytes()).unwrap())
    }
}

fn predict(model: &Model, rows: &[f64]) -> Vec<f64> {
    let x = MatrixView::new(rows, rows.len() / 2, 2).unwrap();
    match model.predict(&x).unwrap() {
        Prediction::Values(m) => m.data,
        Prediction::Labels(_) => panic!("a regressor returns values"),
    }
}

#[test]
fn thresholds_compare_as_float32_against_float64() {
    let model = Spec::regressor().open().unwrap();
    // 0.1 as float32 is 0.100000001490116..., above the float64 threshold 0.1: it goes right,
    // exactly as scikit-learn's float32(x) <= 0.1 does. The float32 just below goes left.
    let below = f64::from(f32::from_bits(0.1f32.to_bits() - 1));
    let rows = [0.1, 0.0, below, 0.0, 0.1f64 - 1e-12, 9.0, -1e30, 0.0];
    assert_eq!(predict(&model, &rows), vec![3.0, 1.0, 3.0, 1.0]);
}

#[test]
fn nan_follows_missing_go_to_left() {
    let model = Spec::regressor().open().unwrap();
    // Root sends NaN left; node 1 sends NaN right.
    assert_eq!(
        predict(&model, &[f64::NAN, 0.0, 0.0, f64::NAN]),
        vec![1.0, 2.0]
    );
}

#[test]
fn refused_inputs() {
    let model = Spec::regressor().open().unwrap();
    let bad = [f64::INFINITY, 0.0];
    let x = MatrixView::new(&bad, 1, 2).unwrap();
    assert!(matches!(
        model.predict(&x),
        Err(InferError::InvalidValue {
            row: 0,
            column: 0,
            ..
        })
    ));
    // Beyond float32's range is infinity after the cast, refused too.
    let big = [0.0, 1e39];
    let x = MatrixView::new(&big, 1, 2).unwrap();
    assert!(matches!(
        model.predict(&x),
        Err(InferError::InvalidValue { column: 1, .. })
    ));
    let three = [0.0; 3];
    let x = MatrixView::new(&three, 1, 3).unwrap();
    assert!(matches!(
        model.predict(&x),
        Err(InferError::FeatureCount {
            expected: 2,
            found: 3,
            ..
        })
    ));
    assert!(matches!(
        MatrixView::new(&three, 2, 2),
        Err(InferError::Shape { .. })
    ));
    assert!(matches!(
        model.predict_proba(&MatrixView::new(&[0.0, 0.0], 1, 2).unwrap()),
        Err(InferError::NotAvailable { .. })
    ));
}

fn malformed(spec: Spec, needle: &str) {
    match spec.open() {
        Err(InferError::Malformed { message, path }) => {
            assert!(
                message.contains(needle) || path.contains(needle),
                "{path}: {message}"
            )
        }
        other => panic!("expected Malformed({needle}), got {other:?}"),
    }
}

#[test]
fn hostile_trees_are_refused_at_open() {
    let mut s = Spec::regressor();
    s.nodes[1] = record(0, 3, 1, 5.0, 0); // a cycle back to the root
    malformed(s, "children");
    let mut s = Spec::regressor();
    s.nodes[0] = record(1, 99, 0, 0.1, 0); // a child beyond the array
    malformed(s, "children");
    let mut s = Spec::regressor();
    s.nodes[0] = record(1, 4, 2, 0.1, 0); // feature 2 of 2
    malformed(s, "feature");
    let mut s = Spec::regressor();
    s.nodes[0] = record(1, 4, -1, 0.1, 0);
    malformed(s, "feature");
    let mut s = Spec::regressor();
    s.values.pop(); // 4 value rows for 5 nodes
    malformed(s, "values");
    let mut s = Spec::regressor();
    s.n_features = 0;
    malformed(s, "n_features_in_");
}

#[test]
fn unknown_classes_are_unsupported_with_their_path() {
    let mut s = Spec::regressor();
    s.class = "sklearn.svm._classes.SVR";
    match s.open() {
        Err(InferError::Unsupported { class, path, .. }) => {
            assert_eq!(class, "sklearn.svm._classes.SVR");
            assert_eq!(path, "/root");
        }
        other => panic!("{other:?}"),
    }
}
