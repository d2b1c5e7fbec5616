//! Native inference on small hand-made files (no Python): the float32 threshold rule, NaN
//! routing, refused inputs, and hostile trees refused at open time.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_format::testing::{record, TreeSpec};
use skvault_format::SkvFile;
use skvault_infer::{InferError, MatrixView, Model, Prediction};

fn open(spec: &TreeSpec) -> Result<Model, InferError> {
    Model::from_file(&SkvFile::from_bytes(spec.bytes().unwrap()).unwrap())
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
    let model = open(&TreeSpec::regressor()).unwrap();
    // 0.1 as float32 is 0.100000001490116..., above the float64 threshold 0.1: it goes right,
    // exactly as scikit-learn's float32(x) <= 0.1 does. The float32 just below goes left.
    let below = f64::from(f32::from_bits(0.1f32.to_bits() - 1));
    let rows = [0.1, 0.0, below, 0.0, 0.1f64 - 1e-12, 9.0, -1e30, 0.0];
    assert_eq!(predict(&model, &rows), vec![3.0, 1.0, 3.0, 1.0]);
}

#[test]
fn nan_follows_missing_go_to_left() {
    let model = open(&TreeSpec::regressor()).unwrap();
    // Root sends NaN left; node 1 sends NaN right.
    assert_eq!(
        predict(&model, &[f64::NAN, 0.0, 0.0, f64::NAN]),
        vec![1.0, 2.0]
    );
}

#[test]
fn refused_inputs() {
    let model = open(&TreeSpec::regressor()).unwrap();
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

fn malformed(spec: TreeSpec, needle: &str) {
    match open(&spec) {
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
    let mut s = TreeSpec::regressor();
    s.nodes[1] = record(0, 3, 1, 5.0, 0); // a cycle back to the root
    malformed(s, "children");
    let mut s = TreeSpec::regressor();
    s.nodes[0] = record(1, 99, 0, 0.1, 0); // a child beyond the array
    malformed(s, "children");
    let mut s = TreeSpec::regressor();
    s.nodes[0] = record(1, 4, 2, 0.1, 0); // feature 2 of 2
    malformed(s, "feature");
    let mut s = TreeSpec::regressor();
    s.nodes[0] = record(1, 4, -1, 0.1, 0);
    malformed(s, "feature");
    let mut s = TreeSpec::regressor();
    s.values.pop(); // 4 value rows for 5 nodes
    malformed(s, "values");
    let mut s = TreeSpec::regressor();
    s.n_features = 0;
    malformed(s, "n_features_in_");
}

#[test]
fn unknown_classes_are_unsupported_with_their_path() {
    let mut s = TreeSpec::regressor();
    s.class = "sklearn.svm._classes.SVR";
    match open(&s) {
        Err(InferError::Unsupported { class, path, .. }) => {
            assert_eq!(class, "sklearn.svm._classes.SVR");
            assert_eq!(path, "/root");
        }
        other => panic!("{other:?}"),
    }
}

fn open_root(root: skvault_format::Node) -> Result<Model, InferError> {
    let bytes = skvault_format::prepare(
        root,
        &[],
        serde_json::Map::new(),
        skvault_format::WriteOptions::default(),
    )
    .unwrap()
    .to_vec()
    .unwrap();
    Model::from_file(&SkvFile::from_bytes(bytes).unwrap())
}

#[test]
fn an_estimator_without_fitted_attributes_is_not_fitted() {
    use skvault_format::testing::object;
    use skvault_format::Node;

    // The parameters of an unfitted estimator only: no name ends with `_`.
    let unfitted = object(
        "sklearn.tree._classes.DecisionTreeRegressor",
        vec![
            ("max_depth", Node::None),
            ("_sklearn_version", Node::Str("1.9.1".into())),
        ],
    );
    match open_root(unfitted) {
        Err(e @ InferError::NotFitted { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("DecisionTreeRegressor is not fitted"),
                "{message}"
            );
            assert!(message.starts_with("/root:"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // One fitted attribute present and another missing: a damaged (or hostile) file.
    let damaged = object(
        "sklearn.tree._classes.DecisionTreeRegressor",
        vec![("n_features_in_", Node::Int(2))],
    );
    assert!(matches!(
        open_root(damaged),
        Err(InferError::Malformed { .. })
    ));
}
