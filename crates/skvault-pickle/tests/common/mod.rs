//! Shared by the integration tests: the Python-built corpus and tree comparison.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use skvault_format::node::map_children;
use skvault_format::{DType, Node, Order, SkvFile};

/// The project's interpreter: `SKVAULT_PYTHON`, else the repository's `.venv`.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKVAULT_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    venv.exists().then_some(venv)
}

/// Set to `1` to skip the tests of the Python-built corpus on purpose (a machine without the
/// project's venv). Without it, a missing interpreter or package fails them: a skip must be
/// asked for, never a silent green.
pub const SKIP_VAR: &str = "SKVAULT_SKIP_PYTHON_CORPUS";

/// Why the corpus cannot be built: a failure, or `None` (with a SKIPPED line on stderr)
/// when `SKVAULT_SKIP_PYTHON_CORPUS=1` asks to skip.
fn unavailable(why: &str) -> Option<PathBuf> {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("SKIPPED ({SKIP_VAR}=1): {why}: the Python-built corpus tests did not run");
        return None;
    }
    panic!(
        "{why}: run `make build` (it makes .venv with skvault), set SKVAULT_PYTHON to such \
         an interpreter, or set {SKIP_VAR}=1 to skip the Python-built corpus tests"
    );
}

/// Runs `tests/fixtures/make_fixtures.py` once per test binary; `None` only when
/// `SKVAULT_SKIP_PYTHON_CORPUS=1` asks to skip (see [`SKIP_VAR`]).
pub fn corpus() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let Some(py) = python() else {
            return unavailable("no Python interpreter at .venv/bin/python");
        };
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pickle-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_fixtures.py");
        let status = Command::new(&py)
            .arg(&script)
            .arg(&out)
            .status()
            .expect("running make_fixtures.py");
        if status.code() == Some(77) {
            return unavailable(&format!(
                "{} lacks numpy, scikit-learn, joblib or skvault",
                py.display()
            ));
        }
        assert!(status.success(), "make_fixtures.py failed");
        Some(out)
    })
    .as_deref()
}

/// Corpora of test runs that are over (their process is gone).
fn remove_stale_corpora(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("pickle-corpus-") else {
            continue;
        };
        if Path::new("/proc").exists() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub expect: String,
    pub skv: Option<String>,
    pub kind: String,
    pub protocol: Option<u64>,
    pub compression: Option<String>,
}

pub fn index(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("index.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().to_string(),
            expect: e["expect"].as_str().unwrap().to_string(),
            skv: e["skv"].as_str().map(str::to_string),
            kind: e["kind"].as_str().unwrap().to_string(),
            protocol: e["protocol"].as_u64(),
            compression: e["compression"].as_str().map(str::to_string),
        })
        .collect()
}

/// An array as compared: layout and bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayInfo {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub order: Order,
    pub data: Vec<u8>,
}

pub fn read_skv(path: &Path) -> (Node, Vec<ArrayInfo>) {
    let file = SkvFile::from_bytes(std::fs::read(path).unwrap()).unwrap();
    let m = file.manifest();
    let arrays = m
        .arrays
        .iter()
        .enumerate()
        .map(|(i, a)| ArrayInfo {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            data: file.read_array(i, true).unwrap(),
        })
        .collect();
    (m.root.clone(), arrays)
}

/// Arrays inlined (layout + bytes), ids renumbered in document order.
pub fn canonical(node: Node, arrays: &[ArrayInfo]) -> Node {
    fn go(node: Node, arrays: &[ArrayInfo], ids: &mut HashMap<u64, u64>) -> Node {
        match node {
            Node::Array(i) => {
                let a = &arrays[i];
                Node::Tuple(vec![
                    Node::Str("__array__".into()),
                    Node::DType(a.dtype.clone()),
                    Node::List(a.shape.iter().map(|d| Node::Int(*d as i64)).collect()),
                    Node::Str(format!("{:?}", a.order)),
                    Node::Bytes(a.data.clone()),
                ])
            }
            Node::Shared { id, node } => {
                let new = ids.len() as u64;
                ids.insert(id, new);
                Node::Shared {
                    id: new,
                    node: Box::new(go(*node, arrays, ids)),
                }
            }
            Node::Ref(id) => Node::Ref(*ids.get(&id).expect("ref before its declaration")),
            other => map_children(other, &mut |n| go(n, arrays, ids)),
        }
    }
    go(node, arrays, &mut HashMap::new())
}

/// References replaced by copies of what they refer to (joblib writes a shared array once per
/// reference, so only the expanded trees can be equal).
pub fn expanded(node: Node) -> Node {
    fn go(node: Node, seen: &mut HashMap<u64, Option<Node>>) -> Node {
        match node {
            Node::Shared { id, node } => {
                seen.insert(id, None);
                let inner = go(*node, seen);
                seen.insert(id, Some(inner.clone()));
                inner
            }
            Node::Ref(id) => match seen.get(&id) {
                Some(Some(n)) => n.clone(),
                _ => Node::Str("<cycle>".into()),
            },
            other => map_children(other, &mut |n| go(n, seen)),
        }
    }
    go(node, &mut HashMap::new())
}

/// First differing place of two JSON values, for readable failures.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("{path}/{k}: only in the first")),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &format!("{path}/{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}/{k}: only in the second"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: lengths {} and {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}/{i}")))
        }
        _ if a == b => None,
        _ => {
            let show = |v: &Value| v.to_string().chars().take(200).collect::<String>();
            Some(format!("{path}: {} != {}", show(a), show(b)))
        }
    }
}

/// PROTO 2, a `NumpyArrayWrapper` for a float64 array of `n` elements with joblib's alignment
/// padding, up to its BUILD (the raw bytes follow in the stream).
pub fn joblib_wrapper(n: u8) -> Vec<u8> {
    let mut p = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
    p.extend(b"X\x08\x00\x00\x00subclasscnumpy\nndarray\n");
    p.extend(b"X\x05\x00\x00\x00shapeK");
    p.push(n);
    p.extend(b"\x85X\x05\x00\x00\x00orderX\x01\x00\x00\x00C");
    p.extend(b"X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R");
    p.extend(b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    p.extend(b"X\x1b\x00\x00\x00numpy_array_alignment_bytesK\x10ub");
    p
}
