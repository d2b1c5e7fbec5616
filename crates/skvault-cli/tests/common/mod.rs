//! Running the real `skvault` binary on fixture files the tests build themselves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Map, Value};
use skvault_format::dtype::Kind;
use skvault_format::testing::{node_dtype, object, record, scalar};
use skvault_format::{prepare, ArrayInput, Node, Order, WriteOptions};

/// The result of one run: exit code, stdout (bytes and text), stderr.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub out: String,
    pub err: String,
}

impl Run {
    /// stdout parsed as one JSON document (fails the test if it is anything else).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.out, self.err
            )
        })
    }
}

/// Runs `skvault ARGS` in `dir` with `env` added, without any registry or AWS setting
/// inherited from the caller's environment.
pub fn skvault_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skvault"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SKVAULT_REGISTRY");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the skvault binary");
    Run {
        code: status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&stdout).into_owned(),
        stdout,
        err: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn skvault(dir: &Path, args: &[&str]) -> Run {
    skvault_env(dir, args, &[])
}

/// A DecisionTreeRegressor on 2 features (`x0 <= 0.1 ? (x1 <= 5 ? leaf1 : leaf2) : leaf3`,
/// `leaves` the three predictions), with `params` as its recorded get_params() and
/// `environment` as its recorded versions.
pub fn tree_model(path: &Path, leaves: [f64; 3], params: Value) -> PathBuf {
    let nodes: Vec<u8> = [
        record(1, 4, 0, 0.1, 1),
        record(2, 3, 1, 5.0, 0),
        record(-1, -1, -2, -2.0, 0),
        record(-1, -1, -2, -2.0, 0),
        record(-1, -1, -2, -2.0, 0),
    ]
    .concat();
    let values: Vec<u8> = [0.0, 0.0, leaves[0], leaves[1], leaves[2]]
        .iter()
        .flat_map(|v: &f64| v.to_le_bytes())
        .collect();
    let arrays = [
        ArrayInput {
            dtype: node_dtype(),
            shape: vec![5],
            order: Order::C,
            data: &nodes,
        },
        ArrayInput {
            dtype: scalar(Kind::Float, 8),
            shape: vec![5, 1, 1],
            order: Order::C,
            data: &values,
        },
    ];
    let tree = object(
        "sklearn.tree._tree.Tree",
        vec![("nodes", Node::Array(0)), ("values", Node::Array(1))],
    );
    let class = "sklearn.tree._classes.DecisionTreeRegressor";
    let root = object(
        class,
        vec![
            ("n_features_in_", Node::Int(2)),
            ("n_outputs_", Node::Int(1)),
            ("tree_", tree),
        ],
    );
    let Value::Object(metadata) = json!({
        "object": class,
        "environment": {"python": "3.11.9", "sklearn": "1.5.2", "numpy": "2.1.0"},
        "estimator": {"params": params, "n_features_in": 2},
    }) else {
        unreachable!()
    };
    let bytes = prepare(root, &arrays, metadata, WriteOptions::default())
        .and_then(|p| p.to_vec())
        .expect("write the fixture");
    std::fs::write(path, bytes).expect("write the fixture file");
    path.to_path_buf()
}

/// The default fixture model.
pub fn model(dir: &Path, name: &str) -> PathBuf {
    tree_model(
        &dir.join(name),
        [1.0, 2.0, 3.0],
        json!({"max_depth": 2, "random_state": 0}),
    )
}

/// A protocol-2 pickle of `{"a": 1}`, written opcode by opcode: a file `convert` reads.
pub fn small_pickle(path: &Path) -> PathBuf {
    let bytes = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
    std::fs::write(path, bytes).expect("write the pickle");
    path.to_path_buf()
}

/// Rows for the fixture model: a header and three rows, one per leaf.
pub fn rows_csv(dir: &Path) -> PathBuf {
    let path = dir.join("rows.csv");
    std::fs::write(&path, "a,b\n0.0,1.0\n0.0,9.0\n1.0,0.0\n").expect("write rows");
    path
}

pub fn empty_metadata() -> Map<String, Value> {
    Map::new()
}

/// Arguments as `&str`, for paths built by the test.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}
