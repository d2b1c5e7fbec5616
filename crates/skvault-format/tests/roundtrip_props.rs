//! Property tests: whatever tree and arrays the writer accepts, the reader gives back exactly
//! (floats bit for bit), every digest verifies, and the same input always writes the same bytes.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// `#[test]` functions themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map};
use skvault_format::manifest::Placement;
use skvault_format::{
    prepare_with_validation, ArrayInput, Codec, Construct, DType, Node, Object, Order, SkvFile,
    WriteOptions,
};

// ------------------------------------------------------------------ strategies

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        // Every bit pattern: NaNs with payloads and either sign, subnormals, infinities.
        any::<u64>().prop_map(f64::from_bits),
        Just(-0.0),
        Just(0.0),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(-1),
        any::<i64>()
    ]
}

/// Integers outside the i64 range, in canonical decimal form.
fn big_int() -> impl Strategy<Value = String> {
    prop_oneof![
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(|u| u.to_string()),
        "-?[1-9][0-9]{19,60}",
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Node::None),
        any::<bool>().prop_map(Node::Bool),
        int().prop_map(Node::Int),
        big_int().prop_map(Node::BigInt),
        float().prop_map(Node::Float),
        (float(), float()).prop_map(|(re, im)| Node::Complex(re, im)),
        any::<String>().prop_map(Node::Str),
        "[a-zé日本\u{1F600}\u{0}\"\\\\]{0,8}".prop_map(Node::Str),
        vec(any::<u8>(), 0..24).prop_map(Node::Bytes),
        vec(any::<u8>(), 0..24).prop_map(Node::ByteArray),
        Just(Node::Ellipsis),
        // A placeholder: `link` turns it into a ref to an id declared before it.
        any::<u64>().prop_map(Node::Ref),
    ]
}

fn qualified_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,6}(\\.[A-Za-z_][A-Za-z0-9_]{0,6}){1,3}"
}

fn tree() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        let items = || vec(inner.clone(), 0..6);
        let pairs = || vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            items().prop_map(Node::List),
            items().prop_map(Node::Tuple),
            items().prop_map(Node::Set),
            items().prop_map(Node::FrozenSet),
            pairs().prop_map(Node::Dict),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| Node::Slice(Box::new([a, b, c]))),
            // Shared containers get their ids from `link`.
            items().prop_map(|items| Node::Shared {
                id: 0,
                node: Box::new(Node::List(items)),
            }),
            pairs().prop_map(|pairs| Node::Shared {
                id: 0,
                node: Box::new(Node::Dict(pairs)),
            }),
            (
                qualified_name(),
                items(),
                vec(("[a-z_]{1,6}", inner.clone()), 0..4),
                items(),
            )
                .prop_map(|(class, args, attrs, list_items)| {
                    Node::Object(Box::new(Object {
                        class,
                        construct: Construct::New {
                            args,
                            kwargs: vec![],
                        },
                        state: Some(Node::Dict(
                            attrs.into_iter().map(|(k, v)| (Node::Str(k), v)).collect(),
                        )),
                        list_items,
                        dict_items: vec![],
                    }))
                }),
            (qualified_name(), items()).prop_map(|(class, args)| {
                Node::Object(Box::new(Object {
                    class,
                    construct: Construct::Call { args },
                    state: None,
                    list_items: vec![],
                    dict_items: vec![],
                }))
            }),
        ]
    })
}

/// Numbers shared nodes in decoding order and points each placeholder ref at an id declared
/// before it (or turns it into `None` when there is none yet).
fn link(node: &mut Node, declared: &mut Vec<u64>) {
    let mut each = |n: &mut Node| link(n, declared);
    match node {
        Node::Ref(k) => {
            *node = match declared.len() as u64 {
                0 => Node::None,
                n => Node::Ref(declared[(*k % n) as usize]),
            };
        }
        Node::Shared { id, node } => {
            *id = declared.len() as u64 + 1;
            declared.push(*id);
            link(node, declared);
        }
        Node::Slice(parts) => parts.iter_mut().for_each(&mut each),
        Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
            items.iter_mut().for_each(&mut each)
        }
        Node::Dict(pairs) => pairs.iter_mut().for_each(|(k, v)| {
            link(k, declared);
            link(v, declared);
        }),
        Node::Object(obj) => {
            match &mut obj.construct {
                Construct::New { args, .. } | Construct::Call { args } => {
                    args.iter_mut().for_each(&mut each)
                }
                Construct::Base { value, .. } => each(value),
            }
            if let Some(state) = &mut obj.state {
                link(state, declared);
            }
            obj.list_items.iter_mut().for_each(|n| link(n, declared));
        }
        _ => {}
    }
}

const DTYPES: [&str; 8] = ["<f8", "<f4", "<i8", "<i4", "|u1", "|b1", "<c16", "struct"];

fn dtype(name: &str) -> DType {
    let v = if name == "struct" {
        json!({"fields": [["a", "<i4", 0], ["b", "<f8", 8]], "itemsize": 16, "aligned": true})
    } else {
        json!(name)
    };
    DType::from_json(&v, "/").unwrap()
}

#[derive(Debug, Clone)]
struct TestArray {
    dtype: DType,
    shape: Vec<u64>,
    order: Order,
    data: Vec<u8>,
}

fn array() -> impl Strategy<Value = TestArray> {
    (
        proptest::sample::select(DTYPES.as_slice()),
        vec(0u64..9, 0..=3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(name, shape, fortran, compressible)| {
            let dtype = dtype(name);
            let len = (shape.iter().product::<u64>() * dtype.itemsize()) as usize;
            // Few distinct byte values compress, so both the codec and the fallback to raw run.
            let byte = if compressible {
                (0u8..3).boxed()
            } else {
                any::<u8>().boxed()
            };
            let order = if fortran { Order::F } else { Order::C };
            vec(byte, len).prop_map(move |data| TestArray {
                dtype: dtype.clone(),
                shape: shape.clone(),
                order,
                data,
            })
        })
}

fn codec() -> impl Strategy<Value = Codec> {
    proptest::sample::select(vec![Codec::None, Codec::Zstd, Codec::Lz4])
}

// ------------------------------------------------------------------ comparison

/// Structural equality with floats compared bit for bit (`==` would equate 0.0 with -0.0 and
/// no NaN with anything).
fn same(a: &Node, b: &Node) -> bool {
    let all =
        |x: &[Node], y: &[Node]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    let pairs = |x: &[(Node, Node)], y: &[(Node, Node)]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|((k, v), (l, w))| same(k, l) && same(v, w))
    };
    match (a, b) {
        (Node::Float(x), Node::Float(y)) => x.to_bits() == y.to_bits(),
        (Node::Complex(x, y), Node::Complex(z, w)) => {
            x.to_bits() == z.to_bits() && y.to_bits() == w.to_bits()
        }
        (Node::List(x), Node::List(y))
        | (Node::Tuple(x), Node::Tuple(y))
        | (Node::Set(x), Node::Set(y))
        | (Node::FrozenSet(x), Node::FrozenSet(y)) => all(x, y),
        (Node::Slice(x), Node::Slice(y)) => all(x.as_slice(), y.as_slice()),
        (Node::Dict(x), Node::Dict(y)) => pairs(x, y),
        (Node::Shared { id: i, node: x }, Node::Shared { id: j, node: y }) => i == j && same(x, y),
        (Node::Object(x), Node::Object(y)) => {
            let construct = match (&x.construct, &y.construct) {
                (Construct::New { args: a, kwargs: k }, Construct::New { args: b, kwargs: l }) => {
                    all(a, b) && pairs(k, l)
                }
                (Construct::Call { args: a }, Construct::Call { args: b }) => all(a, b),
                (Construct::Base { base: a, value: v }, Construct::Base { base: b, value: w }) => {
                    a == b && same(v, w)
                }
                _ => false,
            };
            let state = match (&x.state, &y.state) {
                (Some(s), Some(t)) => same(s, t),
                (None, None) => true,
                _ => false,
            };
            x.class == y.class
                && construct
                && state
                && all(&x.list_items, &y.list_items)
                && pairs(&x.dict_items, &y.dict_items)
        }
        _ => a == b,
    }
}

// ------------------------------------------------------------------ properties

fn write(root: Node, validation: Option<Node>, arrays: &[TestArray], codec: Codec) -> Vec<u8> {
    let inputs: Vec<ArrayInput<'_>> = arrays
        .iter()
        .map(|a| ArrayInput {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            data: &a.data,
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert("note".into(), json!("proptest"));
    let options = WriteOptions { codec, level: None };
    prepare_with_validation(root, validation, &inputs, metadata, options)
        .unwrap()
        .to_vec()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn trees_and_arrays_round_trip_exactly(
        mut tree in tree(),
        mut validation in proptest::option::of(tree()),
        arrays in vec(array(), 0..5),
        codec in codec(),
        arrays_in_validation in any::<bool>(),
    ) {
        let refs = Node::List((0..arrays.len()).map(Node::Array).collect());
        let mut declared = Vec::new();
        link(&mut tree, &mut declared);
        let mut root = Node::Tuple(vec![tree, Node::None]);
        if let Some(v) = &mut validation {
            link(v, &mut declared);
        }
        // Each array is referenced exactly once, from one of the two trees.
        match (&mut validation, arrays_in_validation) {
            (Some(v), true) => *v = Node::Tuple(vec![v.clone(), refs]),
            _ => {
                if let Node::Tuple(items) = &mut root {
                    items[1] = refs;
                }
            }
        }

        let bytes = write(root.clone(), validation.clone(), &arrays, codec);
        let again = write(root.clone(), validation.clone(), &arrays, codec);
        prop_assert!(bytes == again, "the writer is not deterministic");

        let file = SkvFile::from_bytes(bytes.clone()).unwrap();
        let m = file.manifest();
        prop_assert!(same(&m.root, &root), "root differs:\n{:?}\n{:?}", m.root, root);
        match (&m.validation, &validation) {
            (Some(got), Some(want)) => prop_assert!(same(got, want), "validation differs"),
            (None, None) => {}
            (got, want) => prop_assert!(false, "validation {:?} vs {:?}", got, want),
        }
        prop_assert_eq!(m.arrays.len(), arrays.len());
        for (i, (entry, a)) in m.arrays.iter().zip(&arrays).enumerate() {
            prop_assert_eq!(&entry.dtype, &a.dtype);
            prop_assert_eq!(&entry.shape, &a.shape);
            prop_assert_eq!(entry.order, a.order);
            let blob = entry.stored().or_else(|| match entry.placement {
                Placement::Packed { pack, .. } => m.packs.get(pack).map(|p| &p.blob),
                Placement::Stored(_) => None,
            });
            let used = blob.map(|b| b.codec);
            prop_assert!(used == Some(codec) || used == Some(Codec::None));
            prop_assert!(codec != Codec::None || m.packs.is_empty(), "packs only with a codec");
            prop_assert_eq!(&file.read_array(i, true).unwrap(), &a.data);
            prop_assert_eq!(&file.read_array(i, false).unwrap(), &a.data);
        }
        file.verify().unwrap();

        // The manifest's text is written without a `serde_json::Value` tree: it must be the
        // very bytes of the `Value` that `to_json` describes.
        let reference = serde_json::to_vec(&m.to_json()).unwrap();
        prop_assert!(m.to_bytes().unwrap() == reference, "the manifest text differs from to_json's");

        // What the reader decoded writes back to the very same bytes.
        let rewritten = write(m.root.clone(), m.validation.clone(), &arrays, codec);
        prop_assert!(rewritten == bytes, "decode + encode changed the file");
    }

    #[test]
    fn files_round_trip_through_disk_and_mmap(
        arrays in vec(array(), 1..4),
        codec in codec(),
    ) {
        let root = Node::List((0..arrays.len()).map(Node::Array).collect());
        let bytes = write(root, None, &arrays, codec);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.skv");
        std::fs::write(&path, &bytes).unwrap();
        for file in [SkvFile::open(&path).unwrap(), SkvFile::open_mmap(&path).unwrap()] {
            for (i, a) in arrays.iter().enumerate() {
                prop_assert_eq!(&file.read_array(i, true).unwrap(), &a.data);
            }
            file.verify().unwrap();
        }
    }
}

/// Rebuilds a tree bottom-up through `map_children`, counting the nodes it sees.
fn rebuild(node: Node, seen: &mut usize) -> Node {
    *seen += 1;
    skvault_format::node::map_children(node, &mut |n| rebuild(n, seen))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `map_children` reaches every node `walk` visits, each once, and an identity rewrite
    /// gives the same tree back.
    #[test]
    fn map_children_reaches_every_node_once(tree in tree()) {
        let mut walked = 0usize;
        skvault_format::node::walk(&tree, &mut |_| walked += 1);
        let mut seen = 0usize;
        let rebuilt = rebuild(tree.clone(), &mut seen);
        prop_assert_eq!(seen, walked);
        // Compared through JSON: NaN != NaN for `PartialEq`, floats are kept bit-exact there.
        prop_assert_eq!(rebuilt.to_json(), tree.to_json());
    }
}
