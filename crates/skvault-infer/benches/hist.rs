//! `cargo bench -p skvault-infer --bench hist`: a HistGradientBoostingClassifier of the
//! shape of bench/native.py's (binary, 20 features, 64 iterations of 31 leaves: early
//! stopping ends that model at 64 of its 200), built in code, through
//! `Model::predict_proba` on 10,000 rows. Its trees are grown best-first as scikit-learn
//! grows them (lopsided: most splits are of a recent leaf), on thresholds taken from 254
//! edges per feature, as the bin mapper's.

// A benchmark's fixture is test code: a failure to build it is a bug in the benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_format::dtype::Kind;
use skvault_format::testing::{object, scalar, structured};
use skvault_format::{DType, Node, SkvFile};
use skvault_infer::{MatrixView, Model};

const N_TREES: usize = 64;
const N_FEATURES: usize = 20;
const LEAVES: usize = 31;
const EDGES: usize = 254;

fn main() {
    divan::main();
}

mod common;
use common::Rng;

/// The bin edges of every feature: sorted, distinct.
fn edges(rng: &mut Rng) -> Vec<Vec<f64>> {
    (0..N_FEATURES)
        .map(|_| {
            let mut e: Vec<f64> = (0..EDGES).map(|_| rng.normal()).collect();
            e.sort_by(f64::total_cmp);
            e.dedup();
            e
        })
        .collect()
}

/// `TreePredictor.nodes` records (the fields native inference reads, 8 bytes each).
fn predictor_dtype() -> DType {
    let names = [
        ("value", Kind::Float),
        ("feature_idx", Kind::Int),
        ("num_threshold", Kind::Float),
        ("missing_go_to_left", Kind::Int),
        ("left", Kind::Int),
        ("right", Kind::Int),
        ("is_leaf", Kind::Int),
        ("is_categorical", Kind::Int),
        ("bitset_idx", Kind::Int),
    ];
    let fields = names
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| (*name, scalar(*kind, 8), 8 * i as u64))
        .collect();
    structured(fields, 8 * names.len() as u64)
}

/// A tree grown best-first to `LEAVES` leaves, in preorder (left child next), as records.
fn tree(rng: &mut Rng, edges: &[Vec<f64>]) -> Vec<u8> {
    // children[i] = Some((left, right)) once node i is split.
    let mut children: Vec<Option<(usize, usize)>> = vec![None];
    let mut leaves = vec![0usize];
    while leaves.len() < LEAVES {
        // Mostly the newest leaf: lopsided trees, 10 to 17 levels deep.
        let at = if rng.unit() < 0.6 {
            leaves.len() - 1
        } else {
            rng.below(leaves.len())
        };
        let node = leaves.remove(at);
        let (l, r) = (children.len(), children.len() + 1);
        children.extend([None, None]);
        children[node] = Some((l, r));
        leaves.extend([l, r]);
    }
    let mut out = Vec::new();
    let mut order = Vec::new();
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        order.push(i);
        if let Some((l, r)) = children[i] {
            stack.extend([r, l]);
        }
    }
    let mut position = vec![0usize; children.len()];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    for &i in &order {
        let f = rng.below(N_FEATURES);
        let e = &edges[f];
        let (value, feature, threshold, missing, left, right, leaf) = match children[i] {
            None => (rng.normal() * 0.1, 0i64, 0.0, 0i64, 0i64, 0i64, 1i64),
            Some((l, r)) => (
                0.0,
                f as i64,
                e[rng.below(e.len())],
                i64::from(rng.below(2) == 0),
                position[l] as i64,
                position[r] as i64,
                0,
            ),
        };
        out.extend(value.to_le_bytes());
        out.extend(feature.to_le_bytes());
        out.extend(threshold.to_le_bytes());
        for v in [missing, left, right, leaf, 0, 0] {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

type Blobs = Vec<(Vec<u8>, Vec<u64>, DType)>;

fn push(blobs: &mut Blobs, data: Vec<u8>, shape: Vec<u64>, dtype: DType) -> Node {
    blobs.push((data, shape, dtype));
    Node::Array(blobs.len() - 1)
}

fn hist_file() -> Vec<u8> {
    let mut rng = Rng(0x5eed);
    let edges = edges(&mut rng);
    let mut blobs: Blobs = Vec::new();
    let f8 = scalar(Kind::Float, 8);
    let i8 = scalar(Kind::Int, 8);
    let bin_thresholds = edges
        .iter()
        .map(|e| {
            let bytes = e.iter().flat_map(|v| v.to_le_bytes()).collect();
            push(&mut blobs, bytes, vec![e.len() as u64], f8.clone())
        })
        .collect();
    let mut iterations = Vec::new();
    for _ in 0..N_TREES {
        let records = tree(&mut rng, &edges);
        let n = (records.len() / 72) as u64;
        let nodes = push(&mut blobs, records, vec![n], predictor_dtype());
        let bitsets = push(&mut blobs, Vec::new(), vec![0, 8], scalar(Kind::UInt, 4));
        let predictor = object(
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            vec![("nodes", nodes), ("raw_left_cat_bitsets", bitsets)],
        );
        iterations.push(Node::List(vec![predictor]));
    }
    let classes = push(
        &mut blobs,
        [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
        vec![2],
        i8,
    );
    let baseline = push(&mut blobs, 0.1f64.to_le_bytes().to_vec(), vec![1, 1], f8);
    let mapper = object(
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        vec![
            ("is_categorical_", Node::None),
            ("bin_thresholds_", Node::List(bin_thresholds)),
        ],
    );
    let root = object(
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        vec![
            ("n_features_in_", Node::Int(N_FEATURES as i64)),
            ("_bin_mapper", mapper),
            ("classes_", classes),
            ("n_trees_per_iteration_", Node::Int(1)),
            ("_baseline_prediction", baseline),
            ("_predictors", Node::List(iterations)),
        ],
    );
    common::file(root, &blobs)
}

#[divan::bench(sample_count = 20)]
fn hist_10000_rows(bencher: divan::Bencher) {
    let model = Model::from_file(&SkvFile::from_bytes(hist_file()).unwrap()).unwrap();
    let mut rng = Rng(7);
    let x: Vec<f64> = (0..10_000 * N_FEATURES).map(|_| rng.normal()).collect();
    bencher.bench_local(|| {
        let view = MatrixView::new(divan::black_box(&x), 10_000, N_FEATURES).unwrap();
        model.predict_proba(&view).unwrap()
    });
}
