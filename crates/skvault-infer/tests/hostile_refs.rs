//! Trees that shared references turn into deep chains, exponential DAGs and cycles, and
//! state sizes that would be allocated before being checked: each is refused at open time
//! with a typed error naming the bound, quickly, without exhausting the stack or memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::Map;
use skvault_format::testing::object;
use skvault_format::{prepare, Node, SkvFile, WriteOptions};
use skvault_infer::{InferError, MatrixView, Model, Prediction, MAX_DEPTH};

const IDENTITY: &str = "sklearn.preprocessing._function_transformer.FunctionTransformer";
const UNION: &str = "sklearn.pipeline.FeatureUnion";

fn identity() -> Node {
    object(IDENTITY, vec![("n_features_in_", Node::Int(2))])
}

fn union(members: Vec<Node>) -> Node {
    let list = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| Node::Tuple(vec![Node::Str(format!("m{i}")), m]))
        .collect();
    object(UNION, vec![("transformer_list", Node::List(list))])
}

fn shared(id: u64, node: Node) -> Node {
    Node::Shared {
        id,
        node: Box::new(node),
    }
}

/// A FeatureUnion whose members are refs to the last of `levels` unions declared in its
/// `_levels` attribute; level 0 is an identity, level k has `width` refs to level k-1.
fn layered(levels: u64, width: usize) -> Result<Model, InferError> {
    let mut decl = vec![shared(0, identity())];
    for k in 1..levels {
        decl.push(shared(k, union(vec![Node::Ref(k - 1); width])));
    }
    let top = object(
        UNION,
        vec![
            ("_levels", Node::List(decl)),
            (
                "transformer_list",
                Node::List(vec![Node::Tuple(vec![
                    Node::Str("top".into()),
                    Node::Ref(levels - 1),
                ])]),
            ),
        ],
    );
    open(top)
}

fn open(root: Node) -> Result<Model, InferError> {
    let bytes = prepare(root, &[], Map::new(), WriteOptions::default())
        .unwrap()
        .to_vec()
        .unwrap();
    Model::from_file(&SkvFile::from_bytes(bytes).unwrap())
}

fn transform(model: &Model) -> Vec<f64> {
    let x = [1.0, 2.0, 3.0, 4.0];
    model
        .transform(&MatrixView::new(&x, 2, 2).unwrap())
        .unwrap()
        .data
}

fn limit(r: Result<Model, InferError>, needle: &str) {
    match r {
        Err(InferError::LimitExceeded { limit, .. }) => assert!(limit.contains(needle), "{limit}"),
        other => panic!("expected LimitExceeded({needle}), got {other:?}"),
    }
}

#[test]
fn a_chain_of_refs_deeper_than_the_limit_is_refused() {
    let start = Instant::now();
    // 5,000 levels: the red-team file that overflowed the stack.
    limit(layered(5_000, 1), "nesting depth");
    limit(layered(MAX_DEPTH as u64 + 2, 1), "nesting depth");
    assert!(start.elapsed() < Duration::from_secs(20));
    // Just inside the limit, the chain is a model (each union passes its input through).
    let model = layered(MAX_DEPTH as u64 - 2, 1).unwrap();
    assert_eq!(transform(&model), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn a_dag_of_shared_levels_is_built_once_and_bounded() {
    let start = Instant::now();
    // 64 levels of two refs each: 2^64 estimators if rebuilt, 2^64 columns wide (deeper
    // than the nesting limit too); 40 levels stay within it and pass the work bound.
    limit(layered(64, 2), "");
    limit(layered(40, 2), "model work");
    assert!(start.elapsed() < Duration::from_secs(20));
    // A few shared levels are a valid model, identical to its copies written out.
    let model = layered(4, 2).unwrap();
    let copies = {
        let mut node = identity();
        for _ in 1..4 {
            node = union(vec![node.clone(), node]);
        }
        open(union(vec![node])).unwrap()
    };
    assert_eq!(transform(&model), transform(&copies));
    assert_eq!(transform(&model).len(), 2 * 8 * 2);
}

#[test]
fn a_member_that_contains_itself_is_refused() {
    let looped = shared(
        0,
        union(vec![object(
            "sklearn.pipeline.Pipeline",
            vec![(
                "steps",
                Node::List(vec![Node::Tuple(vec![Node::Str("s".into()), Node::Ref(0)])]),
            )],
        )]),
    );
    match open(looped) {
        Err(InferError::Malformed { message, .. }) => {
            assert!(message.contains("cycle"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

fn polynomial(n_features: i64) -> Node {
    object(
        "sklearn.preprocessing._polynomial.PolynomialFeatures",
        vec![
            ("n_features_in_", Node::Int(n_features)),
            ("include_bias", Node::Bool(true)),
            ("interaction_only", Node::Bool(false)),
            ("_min_degree", Node::Int(0)),
            ("_max_degree", Node::Int(2)),
            ("n_output_features_", Node::Int(6)),
        ],
    )
}

#[test]
fn polynomial_features_are_bounded_before_allocation() {
    // The file's own numbers: 51 GB, 5.5 GB and a capacity-overflow panic before.
    for n in [1i64 << 31, 1 << 21, (1 << 20) + 1, i64::MAX] {
        let start = Instant::now();
        match open(polynomial(n)) {
            Err(InferError::Unsupported { detail, .. }) => {
                assert!(detail.unwrap().contains("too many output features"))
            }
            other => panic!("{n}: {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{n}");
    }
    let model = open(polynomial(2)).unwrap();
    let x = [2.0, 3.0];
    let out = model
        .transform(&MatrixView::new(&x, 1, 2).unwrap())
        .unwrap();
    assert_eq!(out.data, vec![1.0, 2.0, 3.0, 4.0, 6.0, 9.0]);
    let _ = Prediction::Values;
}
