//! `cargo bench -p skvault-infer`: a RandomForestClassifier of 500 random trees of depth 20
//! on 20 features (the shape of bench/native.py's forest), built in code, through
//! `Model::predict_proba` on one row (latency) and on 10,000 rows (throughput).

// A benchmark's fixture is test code: a failure to build it is a bug in the benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_format::dtype::Kind;
use skvault_format::testing::{node_dtype, object, record, scalar};
use skvault_format::{DType, Node, SkvFile};
use skvault_infer::{MatrixView, Model};

const N_TREES: usize = 500;
const N_FEATURES: usize = 20;
const MAX_DEPTH: usize = 20;

fn main() {
    divan::main();
}

mod common;
use common::Rng;

/// A tree in scikit-learn's preorder: node records and `value` rows of two class fractions.
/// Nodes split down to depth 8, then with a chance of 0.55 down to depth 20: about 5,000
/// nodes a tree, 2.7 million in all, like bench/native.py's forest (2 million).
fn grow(rng: &mut Rng, depth: usize, nodes: &mut Vec<Vec<u8>>, values: &mut Vec<f64>) -> i64 {
    let me = nodes.len();
    let p = rng.unit();
    values.extend_from_slice(&[p, 1.0 - p]);
    let split = depth < MAX_DEPTH && (depth < 8 || rng.unit() < 0.55);
    if !split {
        nodes.push(record(-1, -1, -2, -2.0, 0));
        return me as i64;
    }
    nodes.push(Vec::new());
    let feature = (rng.next() % N_FEATURES as u64) as i64;
    let threshold = rng.normal();
    let left = grow(rng, depth + 1, nodes, values);
    let right = grow(rng, depth + 1, nodes, values);
    nodes[me] = record(left, right, feature, threshold, 0);
    me as i64
}

fn forest_file() -> Vec<u8> {
    let mut rng = Rng(0x5eed);
    let mut blobs: Vec<(Vec<u8>, Vec<u64>, DType)> = Vec::new();
    let mut trees = Vec::new();
    for _ in 0..N_TREES {
        let (mut nodes, mut values) = (Vec::new(), Vec::new());
        grow(&mut rng, 0, &mut nodes, &mut values);
        let n = nodes.len() as u64;
        blobs.push((nodes.concat(), vec![n], node_dtype()));
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        blobs.push((bytes, vec![n, 1, 2], scalar(Kind::Float, 8)));
        let tree = object(
            "sklearn.tree._tree.Tree",
            vec![
                ("nodes", Node::Array(blobs.len() - 2)),
                ("values", Node::Array(blobs.len() - 1)),
            ],
        );
        trees.push(object(
            "sklearn.tree._classes.DecisionTreeClassifier",
            vec![
                ("n_features_in_", Node::Int(N_FEATURES as i64)),
                ("n_outputs_", Node::Int(1)),
                ("tree_", tree),
            ],
        ));
    }
    let classes: Vec<u8> = [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    blobs.push((classes, vec![2], scalar(Kind::Int, 8)));
    let root = object(
        "sklearn.ensemble._forest.RandomForestClassifier",
        vec![
            ("n_features_in_", Node::Int(N_FEATURES as i64)),
            ("n_outputs_", Node::Int(1)),
            ("classes_", Node::Array(blobs.len() - 1)),
            ("estimators_", Node::List(trees)),
        ],
    );
    common::file(root, &blobs)
}

fn model() -> Model {
    Model::from_file(&SkvFile::from_bytes(forest_file()).unwrap()).unwrap()
}

fn rows(n: usize) -> Vec<f64> {
    let mut rng = Rng(7);
    (0..n * N_FEATURES).map(|_| rng.normal()).collect()
}

#[divan::bench(sample_count = 200)]
fn forest_one_row(bencher: divan::Bencher) {
    let model = model();
    let x = rows(1);
    bencher.bench_local(|| {
        let view = MatrixView::new(divan::black_box(&x), 1, N_FEATURES).unwrap();
        model.predict_proba(&view).unwrap()
    });
}

#[divan::bench(sample_count = 10)]
fn forest_10000_rows(bencher: divan::Bencher) {
    let model = model();
    let x = rows(10_000);
    bencher.bench_local(|| {
        let view = MatrixView::new(divan::black_box(&x), 10_000, N_FEATURES).unwrap();
        model.predict_proba(&view).unwrap()
    });
}
