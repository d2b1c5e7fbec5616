//! Backends for the conformance suite and small `.skv` fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use skvault_format::{prepare, ArrayInput, Codec, DType, Node, Order, WriteOptions};
use skvault_registry::testing::{S3Server, BUCKET};
use skvault_registry::Registry;

/// One storage backend with a fresh, empty registry.
pub enum Backend {
    Folder(tempfile::TempDir),
    S3(S3Server),
}

impl Backend {
    pub fn folder() -> Backend {
        Backend::Folder(tempfile::tempdir().unwrap())
    }

    pub fn s3() -> Backend {
        match S3Server::start() {
            Ok(s) => Backend::S3(s),
            Err(e) => panic!("the S3 backend is required: {e}"),
        }
    }

    pub fn uri(&self) -> String {
        match self {
            Backend::Folder(d) => d.path().join("registry").display().to_string(),
            Backend::S3(s) => s.uri("team/models"),
        }
    }

    pub fn open(&self) -> Registry {
        match self {
            Backend::Folder(_) => Registry::open(&self.uri()).unwrap(),
            Backend::S3(s) => Registry::open_with_options(&self.uri(), &s.options()).unwrap(),
        }
    }

    /// Where the object stored under `key` (relative to the registry root) lives on disk:
    /// both backends keep plain files, which lets tests tamper with stored data.
    pub fn file_of(&self, key: &str) -> PathBuf {
        match self {
            Backend::Folder(d) => d.path().join("registry").join(key),
            Backend::S3(s) => s.data.path().join(BUCKET).join("team/models").join(key),
        }
    }

    pub fn scratch(&self) -> &Path {
        match self {
            Backend::Folder(d) => d.path(),
            Backend::S3(s) => s.data.path(),
        }
    }
}

/// `n` float64 values starting at `start`.
pub fn floats(start: f64, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (start + i as f64).to_le_bytes())
        .collect()
}

/// A `.skv` file with one array per entry of `arrays` (float64 bytes) under a dict root.
pub fn skv_bytes(arrays: &[Vec<u8>], codec: Codec, tag: &str) -> Vec<u8> {
    let dtype = DType::parse_scalar("<f8", "/").unwrap();
    let inputs: Vec<ArrayInput<'_>> = arrays
        .iter()
        .map(|a| ArrayInput {
            dtype: dtype.clone(),
            shape: vec![(a.len() / 8) as u64],
            order: Order::C,
            data: a,
        })
        .collect();
    let root = Node::Dict(
        std::iter::once((Node::Str("tag".into()), Node::Str(tag.into())))
            .chain((0..arrays.len()).map(|i| (Node::Str(format!("a{i}")), Node::Array(i))))
            .collect(),
    );
    let mut meta = serde_json::Map::new();
    meta.insert(
        "environment".into(),
        serde_json::json!({"python": "3.11.7", "scikit-learn": "1.9.1"}),
    );
    meta.insert("object".into(), "builtins.dict".into());
    meta.insert("metrics".into(), serde_json::json!({"acc": 0.5}));
    prepare(root, &inputs, meta, WriteOptions { codec, level: None })
        .unwrap()
        .to_vec()
        .unwrap()
}

pub fn write_skv(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, bytes).unwrap();
    p
}
