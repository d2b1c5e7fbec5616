//! Valid files built with the writer, shared by the integration tests and the fuzz seeds.
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

use serde_json::{json, Map, Value};
use skvault_format::manifest::{Header, FLAG_COLUMNS, FLAG_PACKS, FORMAT_MAJOR};
use skvault_format::node::BaseType;
use skvault_format::testing::object;
use skvault_format::write::digest;
use skvault_format::{
    prepare_with_validation, ArrayInput, Codec, Construct, DType, FormatError, Node, Object, Order,
    SkvFile, WriteOptions,
};

pub const CODECS: [Codec; 3] = [Codec::None, Codec::Zstd, Codec::Lz4];

pub fn dtype(v: Value) -> DType {
    DType::from_json(&v, "/").expect("test dtype")
}

/// The arrays of `sample_file`: `<f8` C order, `<i4` Fortran order, a structured dtype with
/// padding, a zero-length array and a blob too small to compress. The first three compress
/// (the writer then keeps the codec), so every codec path is exercised.
pub fn sample_arrays() -> Vec<(DType, Vec<u64>, Order, Vec<u8>)> {
    let f64s: Vec<u8> = (0..64)
        .flat_map(|i| (f64::from(i % 13) * 0.25).to_le_bytes())
        .collect();
    // Stored column by column: element (r, c) of a 6x11 array is at c * 6 + r.
    let i32s: Vec<u8> = (0..66)
        .flat_map(|k: i32| {
            let (r, c) = (k % 6, k / 6);
            (r * 100 + c).to_le_bytes()
        })
        .collect();
    let records: Vec<u8> = (0..20i64)
        .flat_map(|i| {
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&(i * 3).to_le_bytes());
            rec[8..12].copy_from_slice(&(i as f32 / 2.0).to_le_bytes());
            rec
        })
        .collect();
    vec![
        (dtype(json!("<f8")), vec![8, 8], Order::C, f64s),
        (dtype(json!("<i4")), vec![6, 11], Order::F, i32s),
        (
            dtype(json!({
                "fields": [["x", "<i8", 0], ["y", "<f4", 8]],
                "itemsize": 16,
                "aligned": true
            })),
            vec![20],
            Order::C,
            records,
        ),
        // A dtype of its own: no two arrays here share one, so the writer puts none of them in
        // a pack and every array keeps a blob of its own. `packed_file` has packs.
        (dtype(json!("<f4")), vec![0, 3], Order::C, Vec::new()),
        (dtype(json!("|u1")), vec![5], Order::C, vec![1, 2, 3, 4, 5]),
    ]
}

fn s(x: &str) -> Node {
    Node::Str(x.into())
}

pub fn sample_tree() -> Node {
    object(
        "sklearn.linear_model._base.LinearRegression",
        vec![
            ("coef_", Node::Array(0)),
            (
                "params",
                Node::Shared {
                    id: 1,
                    node: Box::new(Node::Dict(vec![
                        (s("alpha"), Node::Float(0.5)),
                        (
                            s("tags"),
                            Node::List(vec![
                                s("é ü 日本"),
                                Node::Int(i64::MIN),
                                Node::Tuple(vec![Node::Bool(true), Node::None]),
                            ]),
                        ),
                    ])),
                },
            ),
            ("same_params", Node::Ref(1)),
            (
                "blocks",
                Node::List(vec![
                    Node::Tuple(vec![Node::Array(1), Node::Array(2)]),
                    Node::Dict(vec![(Node::Int(3), Node::Array(3))]),
                    Node::List(vec![Node::List(vec![Node::Array(4)])]),
                ]),
            ),
            ("raw", Node::Bytes(vec![0, 0xff, 7])),
        ],
    )
}

pub fn metadata() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sklearn_version".into(), json!("1.5.2"));
    m
}

pub fn write(root: Node, arrays: &[(DType, Vec<u64>, Order, Vec<u8>)], codec: Codec) -> Vec<u8> {
    write_with_validation(root, None, arrays, codec)
}

pub fn write_with_validation(
    root: Node,
    validation: Option<Node>,
    arrays: &[(DType, Vec<u64>, Order, Vec<u8>)],
    codec: Codec,
) -> Vec<u8> {
    let inputs: Vec<ArrayInput<'_>> = arrays
        .iter()
        .map(|(dtype, shape, order, data)| ArrayInput {
            dtype: dtype.clone(),
            shape: shape.clone(),
            order: *order,
            data,
        })
        .collect();
    let options = WriteOptions { codec, level: None };
    prepare_with_validation(root, validation, &inputs, metadata(), options)
        .expect("prepare")
        .to_vec()
        .expect("to_vec")
}

/// The main valid file: `sample_tree` with `sample_arrays`, written with `codec`.
pub fn sample_file(codec: Codec) -> Vec<u8> {
    write(sample_tree(), &sample_arrays(), codec)
}

/// A file with no arrays whose tree uses every node kind of the format.
pub fn all_kinds_file() -> Vec<u8> {
    let float_dtype = dtype(json!("<f8"));
    let state = Node::Dict(vec![
        (s("bit_generator"), s("PCG64")),
        (
            s("state"),
            Node::Dict(vec![
                (
                    s("state"),
                    Node::BigInt("123456789012345678901234567890".into()),
                ),
                (s("inc"), Node::BigInt("-98765432109876543210".into())),
            ]),
        ),
    ]);
    let root = Node::List(vec![
        Node::Complex(f64::INFINITY, -0.0),
        Node::Float(f64::from_bits(0x7ff0_0000_0000_0001)),
        Node::Float(f64::NAN),
        Node::Float(f64::NEG_INFINITY),
        Node::StrSurrogates(vec![0xed, 0xa0, 0x80]),
        Node::ByteArray(vec![1, 2, 3]),
        Node::Ellipsis,
        Node::Slice(Box::new([Node::Int(1), Node::None, Node::Int(-1)])),
        Node::Set(vec![Node::Int(1), s("a")]),
        Node::FrozenSet(vec![Node::Int(2)]),
        Node::ObjArray {
            shape: vec![2, 1],
            items: vec![s("x"), Node::None],
        },
        Node::Scalar {
            dtype: float_dtype.clone(),
            data: 1.5f64.to_le_bytes().to_vec(),
        },
        Node::DType(float_dtype),
        Node::DType(DType::object()),
        Node::Global("numpy.log1p".into()),
        Node::Shared {
            id: 7,
            node: Box::new(Node::RandomState(Box::new(Node::Dict(vec![(
                s("pos"),
                Node::Int(3),
            )])))),
        },
        Node::Ref(7),
        Node::Generator(Box::new(Node::BitGenerator {
            kind: "PCG64".into(),
            state: Box::new(state),
        })),
        Node::Object(Box::new(Object {
            class: "collections.OrderedDict".into(),
            construct: Construct::Base {
                base: BaseType::Dict,
                value: Box::new(Node::Dict(vec![(s("k"), Node::Int(1))])),
            },
            state: None,
            list_items: vec![Node::Int(4)],
            dict_items: vec![(s("k2"), Node::Int(2))],
        })),
        Node::Object(Box::new(Object {
            class: "datetime.timedelta".into(),
            construct: Construct::Call {
                args: vec![Node::Int(1)],
            },
            state: Some(Node::Tuple(vec![Node::None])),
            list_items: vec![],
            dict_items: vec![],
        })),
        Node::Object(Box::new(Object {
            class: "evil.Payload".into(),
            construct: Construct::New {
                args: vec![Node::Global("os.system".into())],
                kwargs: vec![(s("cmd"), s("true"))],
            },
            state: None,
            list_items: vec![],
            dict_items: vec![],
        })),
    ]);
    write(root, &[], Codec::None)
}

/// A model tree and a validation tree (samples and expected outputs) that share ids and
/// split the array table between them.
pub fn validation_file() -> Vec<u8> {
    let arrays = sample_arrays();
    let root = Node::Shared {
        id: 1,
        node: Box::new(object(
            "sklearn.linear_model._base.LinearRegression",
            vec![("coef_", Node::Array(0)), ("intercept_", Node::Array(4))],
        )),
    };
    let validation = Node::Dict(vec![
        (s("X"), Node::Array(1)),
        (s("y"), Node::Array(2)),
        (s("empty"), Node::Array(3)),
        (s("model"), Node::Ref(1)),
    ]);
    write_with_validation(root, Some(validation), &arrays, Codec::Zstd)
}

/// The files committed as the fuzz seed corpus (`fuzz/corpus/read/`), each under 4 KiB.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("seed-sample-none.skv", sample_file(Codec::None)),
        ("seed-sample-zstd.skv", sample_file(Codec::Zstd)),
        ("seed-sample-lz4.skv", sample_file(Codec::Lz4)),
        ("seed-all-node-kinds.skv", all_kinds_file()),
        ("seed-validation-tree.skv", validation_file()),
        ("seed-empty.skv", write(Node::None, &[], Codec::None)),
        ("seed-packs-zstd.skv", packed_file(Codec::Zstd)),
        ("seed-packs-lz4.skv", packed_file(Codec::Lz4)),
        ("seed-tree-nodes-zstd.skv", tree_nodes_file()),
        ("seed-float-records-zstd.skv", float_records_file()),
        (
            "seed-embedded-signature.skv",
            embedded(&sample_file(Codec::None), b"{}"),
        ),
    ]
}

/// scikit-learn's tree node record (`sklearn.tree._tree.NODE_DTYPE`).
pub fn node_dtype() -> DType {
    dtype(json!({
        "fields": [
            ["left_child", "<i8", 0], ["right_child", "<i8", 8], ["feature", "<i8", 16],
            ["threshold", "<f8", 24], ["impurity", "<f8", 32], ["n_node_samples", "<i8", 40],
            ["weighted_n_node_samples", "<f8", 48], ["missing_go_to_left", "|u1", 56]
        ],
        "itemsize": 64
    }))
}

/// The node records of a complete binary tree of `depth` levels below the root, in the
/// depth-first order scikit-learn builds them (children after their parent, leaves -1),
/// with features and thresholds drawn from `seed`.
pub fn tree_nodes(depth: u32, seed: u64) -> Vec<u8> {
    fn grow(depth: u32, samples: i64, seed: &mut u64, out: &mut Vec<[u8; 64]>) -> i64 {
        let me = out.len() as i64;
        out.push([0; 64]);
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (left, right, feature) = if depth == 0 {
            (-1, -1, -2)
        } else {
            let left = grow(depth - 1, samples / 2, seed, out);
            let right = grow(depth - 1, samples - samples / 2, seed, out);
            (left, right, (*seed >> 60) as i64)
        };
        let threshold = if depth == 0 {
            -2.0
        } else {
            (*seed >> 40) as f64 / 1e6
        };
        let rec = &mut out[me as usize];
        rec[..8].copy_from_slice(&left.to_le_bytes());
        rec[8..16].copy_from_slice(&right.to_le_bytes());
        rec[16..24].copy_from_slice(&feature.to_le_bytes());
        rec[24..32].copy_from_slice(&threshold.to_le_bytes());
        rec[32..40].copy_from_slice(&(0.5 / (depth as f64 + 1.0)).to_le_bytes());
        rec[40..48].copy_from_slice(&samples.to_le_bytes());
        rec[48..56].copy_from_slice(&(samples as f64).to_le_bytes());
        rec[56] = (*seed >> 63) as u8;
        me
    }
    let mut out = Vec::new();
    let mut seed = seed;
    grow(depth, 1000, &mut seed, &mut out);
    out.concat()
}

/// Three trees' node arrays, packed and written with zstd: the columns filter (format 1.4)
/// with delta-coded, narrowed child columns and narrowed features and counts.
pub fn tree_nodes_file() -> Vec<u8> {
    let arrays: Vec<_> = [(5, 1), (6, 2), (4, 3)]
        .into_iter()
        .map(|(depth, seed)| {
            let data = tree_nodes(depth, seed);
            let n = (data.len() / 64) as u64;
            (node_dtype(), vec![n], Order::C, data)
        })
        .collect();
    let root = Node::List((0..arrays.len()).map(Node::Array).collect());
    write(root, &arrays, Codec::Zstd)
}

/// Records without integer fields: the writer splits them with the `fields` filter alone.
pub fn float_records_file() -> Vec<u8> {
    let dtype = dtype(json!({"fields": [["y", "<f4", 0], ["z", "<f8", 8]], "itemsize": 16}));
    let data: Vec<u8> = (0..100u8)
        .flat_map(|i| {
            let mut rec = [0u8; 16];
            rec[..4].copy_from_slice(&f32::from(i % 7).to_le_bytes());
            rec[8..].copy_from_slice(&f64::from(i / 3).to_le_bytes());
            rec
        })
        .collect();
    write(
        Node::Array(0),
        &[(dtype, vec![100], Order::C, data)],
        Codec::Zstd,
    )
}

/// `signed` with `bundle` embedded as FORMAT.md 2.5 lays it out (the container does not
/// look inside the bundle).
pub fn embedded(signed: &[u8], bundle: &[u8]) -> Vec<u8> {
    use skvault_format::manifest::Header;
    use skvault_format::trailer::Trailer;
    let header = Header::parse(&signed[..64], signed.len() as u64).unwrap();
    let mut out = Trailer::embedded_header(&header).to_bytes().to_vec();
    out.extend_from_slice(&signed[64..]);
    out.extend_from_slice(bundle);
    out.extend_from_slice(&Trailer::footer(bundle.len() as u64, header.minor));
    out
}

/// Arrays that the writer puts in packs (format 1.2) when it compresses: `<f8` arrays 0, 2
/// and 7 (7 empty), structured arrays 1 and 3 (the fields filter with zstd), `<i2` arrays 4
/// and 5 (too small to compress: a pack with codec none); array 6, alone of its dtype,
/// keeps a blob of its own.
pub fn packed_arrays() -> Vec<(DType, Vec<u64>, Order, Vec<u8>)> {
    let floats = |n: usize, step: f64| -> Vec<u8> {
        (0..n)
            .flat_map(|i| (f64::from(u32::try_from(i % 7).unwrap_or(0)) * step).to_le_bytes())
            .collect()
    };
    let record = dtype(json!({"fields": [["a", "<i4", 0], ["b", "<f8", 8]], "itemsize": 16}));
    let records = |n: i32| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let mut rec = [0u8; 16];
                rec[..4].copy_from_slice(&(i * 2).to_le_bytes());
                rec[8..].copy_from_slice(&f64::from(i % 5).to_le_bytes());
                rec
            })
            .collect()
    };
    vec![
        (dtype(json!("<f8")), vec![40], Order::C, floats(40, 0.5)),
        (record.clone(), vec![30], Order::C, records(30)),
        (dtype(json!("<f8")), vec![3, 10], Order::F, floats(30, 0.25)),
        (record, vec![25], Order::C, records(25)),
        (
            dtype(json!("<i2")),
            vec![6],
            Order::C,
            vec![1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0],
        ),
        (dtype(json!("<i2")), vec![0], Order::C, Vec::new()),
        (
            dtype(json!("|u1")),
            vec![300],
            Order::C,
            (0..300u32).map(|i| (i % 11) as u8).collect(),
        ),
        (dtype(json!("<f8")), vec![0], Order::C, Vec::new()),
    ]
}

/// `packed_arrays` under a list of their refs, written with `codec`.
pub fn packed_file(codec: Codec) -> Vec<u8> {
    let arrays = packed_arrays();
    let root = Node::List((0..arrays.len()).map(Node::Array).collect());
    write(root, &arrays, codec)
}

pub fn open(bytes: Vec<u8>) -> Result<SkvFile, FormatError> {
    SkvFile::from_bytes(bytes)
}

/// The error a hostile file must produce; fails the test if the reader accepts it.
pub fn open_err(bytes: Vec<u8>) -> FormatError {
    match open(bytes) {
        Ok(f) => panic!("the reader accepted a hostile file: {f:?}"),
        Err(e) => e,
    }
}

/// Splits a valid file into its manifest JSON and its data section.
pub fn split(file: &[u8]) -> (Value, Vec<u8>) {
    let layout = Layout::of(file);
    let header = Header::parse(&file[..64], file.len() as u64).unwrap();
    let text = header
        .manifest_text(&file[64..layout.manifest_end as usize])
        .unwrap();
    let manifest = serde_json::from_slice(&text).unwrap();
    (manifest, file[layout.data_start as usize..].to_vec())
}

/// A valid header for a plain `manifest`: what a writer writes for a manifest that is not
/// compressed (version 1.0, no flags; version 1.2 and flag `PACKS` when the manifest has
/// `packs`; version 1.4 and flag `COLUMNS` when a blob has the columns filter), the
/// manifest's length and digest.
pub fn header_for(manifest: &[u8]) -> Header {
    let (minor, flags) = version_for(&serde_json::from_slice(manifest).unwrap_or(Value::Null));
    Header {
        major: FORMAT_MAJOR,
        minor,
        flags,
        manifest_len: manifest.len() as u64,
        manifest_digest: digest(manifest),
        manifest_raw_len: 0,
    }
}

/// The minor version and flags (besides `MANIFEST_ZSTD`) the features of `manifest` need.
pub fn version_for(manifest: &Value) -> (u16, u32) {
    let packs = manifest.get("packs").is_some();
    let columns = ["arrays", "packs"].iter().any(|table| {
        manifest
            .get(table)
            .and_then(Value::as_array)
            .is_some_and(|blobs| {
                blobs
                    .iter()
                    .any(|b| b.get("filter") == Some(&"columns".into()))
            })
    });
    let flags = if packs { FLAG_PACKS } else { 0 } | if columns { FLAG_COLUMNS } else { 0 };
    let minor = if columns {
        4
    } else if packs {
        2
    } else {
        0
    };
    (minor, flags)
}

/// `header`, the manifest bytes, zero padding to the next 64-byte boundary, then `data`
/// as the data section.
pub fn container_with(header: &Header, manifest: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(manifest);
    out.resize(out.len().next_multiple_of(64), 0);
    out.extend_from_slice(data);
    out
}

/// A container around arbitrary manifest bytes whose header digest matches them.
pub fn container(manifest: &[u8], data: &[u8]) -> Vec<u8> {
    container_with(&header_for(manifest), manifest, data)
}

/// Re-serializes a (possibly hostile) manifest into a container that passes the digest check,
/// so that the check under test is the one that has to catch the lie.
pub fn rebuild(manifest: &Value, data: &[u8]) -> Vec<u8> {
    container(&serde_json::to_vec(manifest).unwrap(), data)
}

/// Offsets of the parts of a valid file, for tests that cut or flip bytes in one part.
#[derive(Debug, Clone)]
pub struct Layout {
    pub manifest_len: u64,
    /// End of the manifest: `64 + manifest_len`.
    pub manifest_end: u64,
    pub data_start: u64,
    /// `(absolute start, length)` of each blob, in file order.
    pub blobs: Vec<(u64, u64)>,
    pub file_len: u64,
}

impl Layout {
    pub fn of(file: &[u8]) -> Layout {
        let f = skvault_format::SkvFile::from_bytes(file.to_vec()).expect("a valid file");
        let data_start = f.header().data_start();
        let blobs = f
            .manifest()
            .blobs()
            .map(|(_, b)| (data_start + b.offset, b.length))
            .collect();
        Layout {
            manifest_len: f.header().manifest_len,
            manifest_end: 64 + f.header().manifest_len,
            data_start,
            blobs,
            file_len: file.len() as u64,
        }
    }

    /// Zero padding: after the manifest and after each blob up to the next 64-byte boundary
    /// (the last blob ends the file).
    pub fn padding(&self) -> Vec<std::ops::Range<u64>> {
        let mut out = Vec::with_capacity(self.blobs.len() + 1);
        out.push(self.manifest_end..self.data_start.min(self.file_len));
        for &(start, len) in &self.blobs {
            let end = start + len;
            out.push(end..end.next_multiple_of(64).min(self.file_len));
        }
        out.retain(|r| !r.is_empty());
        out
    }
}
