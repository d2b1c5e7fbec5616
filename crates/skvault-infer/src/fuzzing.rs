//! What the `model` fuzz target does with its input, shared with the replay test
//! (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use skvault_format::SkvFile;

use crate::{MatrixView, Model};

/// Opens `bytes`, runs the state checks `skvault.load` makes first ([`crate::guard::check`]),
/// builds the native model and, if that works, runs every method it has on a small matrix
/// and a small frame, and re-checks the file's validation rows. Returns whether the model was built. Must never panic, overflow the
/// stack or allocate without bound, whatever the input.
pub fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(file) = SkvFile::from_bytes(bytes) else {
        return false;
    };
    // What `skvault.load` checks before building anything: the state of trusted classes
    // with compiled code (it must refuse or accept, never panic).
    let _ = crate::guard::check(&file);
    let Ok(model) = Model::from_file(&file) else {
        return false;
    };
    // A model with very many columns is valid; predicting on it is only slow.
    let cols = model.n_features();
    if (1..=256).contains(&cols) {
        let data: Vec<f64> = (0..3 * cols)
            .map(|i| [0.5, -1.0, 2.0, f64::NAN][i % 4])
            .collect();
        if let Ok(x) = MatrixView::new(&data, 3, cols) {
            for m in model.methods() {
                let _ = model.call(*m, &x);
            }
        }
    }
    // The same methods on a frame: a text and a numeric value per named column (text
    // reaches the encoders a file describes), and the file's validation rows, rebuilt.
    if (1..=256).contains(&cols) {
        let names: Vec<String> = match model.feature_names() {
            Some(n) => n.to_vec(),
            None => (0..cols).map(|i| format!("x{i}")).collect(),
        };
        let columns = (0..names.len())
            .map(|i| {
                if i % 2 == 0 {
                    let mut b = skvault_frame::DictBuilder::new("c");
                    for v in ["a", "", "0.5"] {
                        let _ = b.push(skvault_frame::Value::Str(v.into()));
                    }
                    skvault_frame::Column::Dict(b.finish())
                } else {
                    skvault_frame::Column::Numeric(vec![0.5, f64::NAN, -1.0])
                }
            })
            .collect();
        if let Ok(frame) = skvault_frame::Frame::new(names, columns) {
            for m in model.methods() {
                let _ = model.call_frame(*m, &frame);
            }
        }
    }
    let _ = crate::validation::check(&model, &file);
    let _ = model.view();
    true
}

/// Small valid model files the fuzz targets and replay tests start from: a tree, a
/// FeatureUnion whose members share one identity through refs, a pipeline of a scaler and
/// PolynomialFeatures.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use skvault_format::testing::{object, TreeSpec};
    use skvault_format::{prepare, Node, WriteOptions};
    let write = |root: Node| {
        prepare(root, &[], serde_json::Map::new(), WriteOptions::default())
            .and_then(|p| p.to_vec())
            .unwrap_or_default()
    };
    let identity = object(
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        vec![("n_features_in_", Node::Int(2))],
    );
    let tuple = |name: &str, n: Node| Node::Tuple(vec![Node::Str(name.into()), n]);
    let shared = object(
        "sklearn.pipeline.FeatureUnion",
        vec![(
            "transformer_list",
            Node::List(vec![
                tuple(
                    "a",
                    Node::Shared {
                        id: 0,
                        node: Box::new(identity),
                    },
                ),
                tuple("b", Node::Ref(0)),
            ]),
        )],
    );
    let poly = object(
        "sklearn.preprocessing._polynomial.PolynomialFeatures",
        vec![
            ("n_features_in_", Node::Int(2)),
            ("include_bias", Node::Bool(true)),
            ("interaction_only", Node::Bool(false)),
            ("_min_degree", Node::Int(0)),
            ("_max_degree", Node::Int(2)),
            ("n_output_features_", Node::Int(6)),
        ],
    );
    let pipeline = object(
        "sklearn.pipeline.Pipeline",
        vec![(
            "steps",
            Node::List(vec![tuple("union", shared.clone()), tuple("poly", poly)]),
        )],
    );
    vec![
        (
            "seed-tree.skv",
            TreeSpec::regressor().bytes().unwrap_or_default(),
        ),
        ("seed-shared-union.skv", write(shared)),
        ("seed-pipeline-poly.skv", write(pipeline)),
    ]
}

/// One structure-aware mutation of the manifest of an uncompressed `.skv` file, with the
/// header's length and digest rewritten so that the reader gets past its digest check: a
/// number set to a boundary value, a node replaced by a ref or by a copy of another, a
/// list item duplicated or removed. `None` when `bytes` is not such a file.
pub fn mutate_manifest(rng: &mut skvault_format::fuzzing::Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let len = usize::try_from(u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?)).ok()?;
    let text = bytes.get(64..64usize.checked_add(len)?)?;
    let data_start = (64 + len).div_ceil(64) * 64;
    let data = bytes.get(data_start..)?;
    let mut doc: Value = serde_json::from_slice(text).ok()?;
    let mut paths = Vec::new();
    collect_pointers(&doc, String::new(), &mut paths);
    for _ in 0..1 + rng.below(3) {
        let target = rng.pick(&paths).clone();
        let donor = rng.pick(&paths).clone();
        let donor = doc.pointer(&donor).cloned().unwrap_or(Value::Null);
        let Some(slot) = doc.pointer_mut(&target) else {
            continue;
        };
        const NUMBERS: [u64; 10] = [
            0,
            1,
            2,
            3,
            64,
            (1 << 20) + 1,
            1 << 31,
            1 << 62,
            i64::MAX as u64,
            u64::MAX,
        ];
        *slot = match rng.below(6) {
            0 => Value::from(*rng.pick(&NUMBERS)),
            1 => serde_json::json!({"ref": rng.below(4)}),
            2 => donor,
            3 => match slot.take() {
                Value::Array(mut items) if !items.is_empty() => {
                    let i = rng.below(items.len());
                    let copy = items[i].clone();
                    for _ in 0..1 + rng.below(64) {
                        items.push(copy.clone());
                    }
                    Value::Array(items)
                }
                other => other,
            },
            4 => match slot.take() {
                Value::Array(mut items) if !items.is_empty() => {
                    items.remove(rng.below(items.len()));
                    Value::Array(items)
                }
                other => other,
            },
            _ => Value::from(
                rng.pick(&["|V0", "|S0", "<U0", "<f8", "<i8", "|u1"])
                    .to_string(),
            ),
        };
    }
    let text = serde_json::to_vec(&doc).ok()?;
    let mut out = bytes.get(..64)?.to_vec();
    out[16..24].copy_from_slice(&(text.len() as u64).to_le_bytes());
    out[24..56].copy_from_slice(&skvault_format::write::digest(&text));
    out.extend_from_slice(&text);
    out.resize(out.len().div_ceil(64) * 64, 0);
    out.extend_from_slice(data);
    Some(out)
}

fn collect_pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    if out.len() > 4096 {
        return;
    }
    match v {
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                collect_pointers(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                collect_pointers(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}
