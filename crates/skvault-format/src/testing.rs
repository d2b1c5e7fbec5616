//! Hand-made `.skv` files for the tests of the crates that read them (native inference,
//! export): a small scikit-learn tree written without Python, whose parts a test can break.
//! Not part of the API.

use serde_json::Map;

use crate::dtype::{ByteOrder, Field, Kind};
use crate::{prepare, ArrayInput, Construct, DType, Node, Object, Order, WriteOptions};

/// A numeric dtype of `count` bytes (little-endian when that matters).
pub fn scalar(kind: Kind, count: u64) -> DType {
    let order = if count == 1 {
        ByteOrder::NotApplicable
    } else {
        ByteOrder::Little
    };
    DType::Scalar { order, kind, count }
}

/// An unaligned structured dtype of `(name, dtype, offset)` fields.
pub fn structured(fields: Vec<(&str, DType, u64)>, itemsize: u64) -> DType {
    DType::Structured {
        fields: fields
            .into_iter()
            .map(|(name, dtype, offset)| Field {
                name: name.into(),
                dtype,
                offset,
            })
            .collect(),
        itemsize,
        aligned: false,
    }
}

/// scikit-learn's `Tree` node record (the fields a reader uses, 40 bytes).
pub fn node_dtype() -> DType {
    structured(
        vec![
            ("left_child", scalar(Kind::Int, 8), 0),
            ("right_child", scalar(Kind::Int, 8), 8),
            ("feature", scalar(Kind::Int, 8), 16),
            ("threshold", scalar(Kind::Float, 8), 24),
            ("missing_go_to_left", scalar(Kind::UInt, 1), 32),
        ],
        40,
    )
}

/// One node record: left, right, feature, threshold, missing_go_to_left.
pub fn record(l: i64, r: i64, f: i64, t: f64, m: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(40);
    for v in [l, r, f] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&t.to_le_bytes());
    b.push(m);
    b.extend_from_slice(&[0; 7]);
    b
}

/// An object created with `__new__` whose state is the dict of `attrs`.
pub fn object(class: &str, attrs: Vec<(&str, Node)>) -> Node {
    Node::Object(Box::new(Object {
        class: class.into(),
        construct: Construct::New {
            args: vec![],
            kwargs: vec![],
        },
        state: Some(Node::Dict(
            attrs
                .into_iter()
                .map(|(k, v)| (Node::Str(k.into()), v))
                .collect(),
        )),
        list_items: vec![],
        dict_items: vec![],
    }))
}

/// A one-output regression tree estimator.
pub struct TreeSpec {
    pub class: &'static str,
    pub nodes: Vec<Vec<u8>>,
    pub values: Vec<f64>,
    pub n_features: i64,
}

impl TreeSpec {
    /// A DecisionTreeRegressor on 2 features: x0 <= 0.1 ? (x1 <= 5 ? 1 : 2) : 3, NaN in x0
    /// left (node 1 sends NaN right).
    pub fn regressor() -> TreeSpec {
        TreeSpec {
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

    /// The `.skv` file of the estimator.
    pub fn bytes(&self) -> crate::Result<Vec<u8>> {
        let nodes: Vec<u8> = self.nodes.concat();
        let values: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let arrays = [
            ArrayInput {
                dtype: node_dtype(),
                shape: vec![self.nodes.len() as u64],
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
            vec![("nodes", Node::Array(0)), ("values", Node::Array(1))],
        );
        let root = object(
            self.class,
            vec![
                ("n_features_in_", Node::Int(self.n_features)),
                ("n_outputs_", Node::Int(1)),
                ("tree_", tree),
            ],
        );
        prepare(root, &arrays, Map::new(), WriteOptions::default())?.to_vec()
    }
}
