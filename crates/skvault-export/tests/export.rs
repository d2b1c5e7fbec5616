//! ONNX and JSON export of small hand-made models (no Python): the graph's structure, the
//! float32 threshold rule, JSON round trips, and refusals that leave no file behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message;
use serde_json::json;
use skvault_export::proto::ModelProto;
use skvault_export::{json as sj, onnx, ExportError};
use skvault_format::testing::TreeSpec;
use skvault_format::{SkvFile, TrustSet, WriteOptions};
use skvault_infer::{MatrixView, Model, Prediction};

/// The hand-made DecisionTreeRegressor of `skvault_format::testing`, as class `class`.
fn regressor_bytes(class: &'static str) -> Vec<u8> {
    let mut spec = TreeSpec::regressor();
    spec.class = class;
    spec.bytes().unwrap()
}

fn model(bytes: Vec<u8>) -> Model {
    Model::from_file(&SkvFile::from_bytes(bytes).unwrap()).unwrap()
}

fn attr<'a>(m: &'a ModelProto, op: &str, name: &str) -> &'a skvault_export::proto::AttributeProto {
    let graph = m.graph.as_ref().unwrap();
    let node = graph.node.iter().find(|n| n.op_type == op).unwrap();
    node.attribute.iter().find(|a| a.name == name).unwrap()
}

fn f64s(t: &skvault_export::proto::TensorProto) -> Vec<f64> {
    t.raw_data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn tree_becomes_a_double_tree_ensemble_with_float32_floor_thresholds() {
    let m = model(regressor_bytes(
        "sklearn.tree._classes.DecisionTreeRegressor",
    ));
    let bytes = onnx::to_onnx_bytes(&m).unwrap();
    let proto = ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(proto.ir_version, onnx::IR_VERSION);
    let opsets: Vec<(String, i64)> = proto
        .opset_import
        .iter()
        .map(|o| (o.domain.clone(), o.version))
        .collect();
    assert!(opsets.contains(&("ai.onnx.ml".into(), 5)));
    let splits = f64s(
        attr(&proto, "TreeEnsemble", "nodes_splits")
            .t
            .as_ref()
            .unwrap(),
    );
    // 0.1 as a float32 is above 0.1: the split is the float32 just below it.
    let below = f64::from(f32::from_bits(0.1f32.to_bits() - 1));
    assert_eq!(splits, vec![below, 5.0]);
    assert_eq!(
        attr(&proto, "TreeEnsemble", "nodes_missing_value_tracks_true").ints,
        vec![1, 0]
    );
    let leaves = f64s(
        attr(&proto, "TreeEnsemble", "leaf_weights")
            .t
            .as_ref()
            .unwrap(),
    );
    assert_eq!(leaves, vec![1.0, 2.0, 3.0]);
    // The root's false branch is leaf 2 (value 3), its true branch interior node 1.
    assert_eq!(
        attr(&proto, "TreeEnsemble", "nodes_falsenodeids").ints,
        vec![2, 1]
    );
    assert_eq!(
        attr(&proto, "TreeEnsemble", "nodes_falseleafs").ints,
        vec![1, 1]
    );
    assert_eq!(
        attr(&proto, "TreeEnsemble", "nodes_trueleafs").ints,
        vec![0, 1]
    );
    // X is cast to float and back before the trees.
    let graph = proto.graph.as_ref().unwrap();
    let casts = graph.node.iter().filter(|n| n.op_type == "Cast").count();
    assert_eq!(casts, 2);
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, vec!["prediction"]);
    let float32 = proto
        .metadata_props
        .iter()
        .find(|p| p.key == "skvault.float32")
        .unwrap();
    assert!(float32.value.contains("float32"));
}

#[test]
fn float32_tree_becomes_a_tree_ensemble_regressor_with_float32_floor_thresholds() {
    let m = model(regressor_bytes(
        "sklearn.tree._classes.DecisionTreeRegressor",
    ));
    let options = onnx::OnnxOptions {
        float32_trees: true,
    };
    let proto =
        ModelProto::decode(onnx::to_onnx_bytes_with(&m, options).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_ref().unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert!(ops.contains(&"TreeEnsembleRegressor"), "{ops:?}");
    assert!(!ops.contains(&"TreeEnsemble"), "{ops:?}");
    // TreeEnsembleRegressor is deprecated from ai.onnx.ml opset 5: the model imports 4.
    let ml: Vec<i64> = proto
        .opset_import
        .iter()
        .filter(|o| o.domain == "ai.onnx.ml")
        .map(|o| o.version)
        .collect();
    assert_eq!(ml, vec![onnx::OPSET_ML_FLOAT32_TREES]);
    let op = "TreeEnsembleRegressor";
    // Nodes in the tree's own order: the leaves' values are 0 (unused).
    let below = f32::from_bits(0.1f32.to_bits() - 1);
    assert_eq!(
        attr(&proto, op, "nodes_values").floats,
        vec![below, 5.0, 0.0, 0.0, 0.0]
    );
    let modes: Vec<&[u8]> = attr(&proto, op, "nodes_modes")
        .strings
        .iter()
        .map(Vec::as_slice)
        .collect();
    assert_eq!(
        modes,
        vec![&b"BRANCH_LEQ"[..], b"BRANCH_LEQ", b"LEAF", b"LEAF", b"LEAF"]
    );
    assert_eq!(
        attr(&proto, op, "nodes_truenodeids").ints,
        vec![1, 2, 0, 0, 0]
    );
    assert_eq!(
        attr(&proto, op, "nodes_falsenodeids").ints,
        vec![4, 3, 0, 0, 0]
    );
    assert_eq!(
        attr(&proto, op, "nodes_missing_value_tracks_true").ints,
        vec![1, 0, 0, 0, 0]
    );
    assert_eq!(attr(&proto, op, "target_nodeids").ints, vec![2, 3, 4]);
    assert_eq!(
        attr(&proto, op, "target_weights").floats,
        vec![1.0, 2.0, 3.0]
    );
    assert_eq!(attr(&proto, op, "n_targets").i, 1);
    // X is cast to float once (no cast back before the trees), the float sum to double.
    let casts = graph.node.iter().filter(|n| n.op_type == "Cast").count();
    assert_eq!(casts, 2);
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, vec!["prediction"]);
}

#[test]
fn unsupported_estimator_is_named_and_nothing_is_written() {
    // A class neither native inference nor the exporter supports.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.skv");
    std::fs::write(
        &src,
        regressor_bytes("sklearn.neighbors._regression.KNeighborsRegressor"),
    )
    .unwrap();
    let out = dir.path().join("m.onnx");
    let err = skvault_export::export_onnx(&src, &out).unwrap_err();
    assert!(err.to_string().contains("KNeighborsRegressor"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_destination_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.skv");
    std::fs::write(
        &src,
        regressor_bytes("sklearn.tree._classes.DecisionTreeRegressor"),
    )
    .unwrap();
    let err =
        skvault_export::export_onnx(&src, &dir.path().join("no/such/dir/m.onnx")).unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
}

fn predict(m: &Model, rows: &[f64]) -> Vec<f64> {
    let x = MatrixView::new(rows, rows.len() / 2, 2).unwrap();
    match m.predict(&x).unwrap() {
        Prediction::Values(v) => v.data,
        Prediction::Labels(_) => panic!("a regressor returns values"),
    }
}

#[test]
fn json_round_trip_is_exact() {
    let bytes = regressor_bytes("sklearn.tree._classes.DecisionTreeRegressor");
    let file = SkvFile::from_bytes(bytes.clone()).unwrap();
    let doc = sj::to_document(&file, &mut |_, _| {}).unwrap();
    assert_eq!(doc["format"], "skvault-json");
    // The node records are lists of fields in dtype order.
    assert_eq!(doc["arrays"][0]["data"][0], json!([1, 4, 0, 0.1, 1]));
    let text = serde_json::to_string(&doc).unwrap();
    let back = sj::from_document(
        serde_json::from_str(&text).unwrap(),
        &TrustSet::new(Vec::<String>::new()).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let a = SkvFile::from_bytes(bytes).unwrap();
    let b = SkvFile::from_bytes(back.clone()).unwrap();
    let digests =
        |f: &SkvFile| -> Vec<[u8; 32]> { f.manifest().arrays.iter().map(|e| e.digest).collect() };
    assert_eq!(digests(&a), digests(&b));
    let rows = [0.1, 0.0, f64::NAN, 9.0, -3.0, 6.0];
    assert_eq!(
        predict(&model(back), &rows),
        predict(&Model::from_file(&a).unwrap(), &rows)
    );
}

#[test]
fn json_with_untrusted_names_or_wrong_shapes_is_refused() {
    let bytes = regressor_bytes("sklearn.tree._classes.DecisionTreeRegressor");
    let file = SkvFile::from_bytes(bytes).unwrap();
    let doc = sj::to_document(&file, &mut |_, _| {}).unwrap();
    let trust = TrustSet::new(Vec::<String>::new()).unwrap();
    let evil: serde_json::Value = serde_json::from_str(
        &doc.to_string()
            .replace("sklearn.tree._classes.DecisionTreeRegressor", "evil.Thing"),
    )
    .unwrap();
    match sj::from_document(evil, &trust, WriteOptions::default()) {
        Err(ExportError::Untrusted { names }) => assert_eq!(names, vec!["evil.Thing".to_string()]),
        other => panic!("{other:?}"),
    }
    let mut short = doc.clone();
    short["arrays"][1]["shape"] = json!([4, 1, 1]);
    match sj::from_document(short, &trust, WriteOptions::default()) {
        Err(ExportError::Document { path, .. }) => assert_eq!(path, "/arrays/1/data"),
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("bad.json");
    std::fs::write(
        &src,
        b"{\"format\": \"skvault-json\", \"version\": 1, \"arrays\": [], \"root\": {\"array\": 3}}",
    )
    .unwrap();
    let out = dir.path().join("bad.skv");
    assert!(skvault_export::import_json(&src, &out, &trust, WriteOptions::default()).is_err());
    assert!(!out.exists());
}
