//! The manifest's JSON text, written straight from the typed manifest: byte for byte what
//! `serde_json::to_vec(&manifest.to_json())` gives (members in the same order, the same
//! escapes and number forms), without building a `serde_json::Value` of the whole tree
//! first. For a 500-tree forest that tree of maps was a fifth of a save's own work.
//!
//! Leaves that already are JSON values (dtypes, column transforms, floats, the metadata) and
//! every string go through serde_json itself, so escapes and number forms cannot drift.
//! `Manifest::to_json` stays the reference; a property test compares the two.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::codec::Filter;
use crate::dtype::DType;
use crate::float_json::f64_to_json;
use crate::manifest::{ArrayEntry, Blob, Manifest, Order, Pack, Placement};
use crate::node::{Construct, Id, Node, Object};

/// The text of a manifest being written, with the JSON nesting depth reached (as
/// [`crate::node::json_depth`] counts it) and where each array's digest is.
pub(crate) struct ManifestText {
    pub(crate) bytes: Vec<u8>,
    pub(crate) depth: usize,
    /// The offset in `bytes` of each array's 64 hex digits, in table order.
    pub(crate) digest_at: Vec<usize>,
}

/// Writes `manifest` as JSON text.
pub(crate) fn write(manifest: &Manifest) -> serde_json::Result<ManifestText> {
    let mut w = Writer {
        out: Vec::with_capacity(64 * (manifest.arrays.len() + 1) * 4),
        level: 0,
        depth: 0,
        digest_at: Vec::with_capacity(manifest.arrays.len()),
        dtypes: Vec::new(),
    };
    w.manifest(manifest)?;
    Ok(ManifestText {
        bytes: w.out,
        depth: w.depth,
        digest_at: w.digest_at,
    })
}

/// Nesting depth of a JSON object with these members, as `json_depth` counts it.
fn map_depth(m: &Map<String, Value>) -> usize {
    1 + m.values().map(crate::node::json_depth).max().unwrap_or(0)
}

struct Writer<'m> {
    out: Vec<u8>,
    /// Containers open around the current position.
    level: usize,
    /// The deepest `level` reached.
    depth: usize,
    digest_at: Vec<usize>,
    /// The text and depth of each distinct dtype written so far (at most [`DTYPES_KEPT`]): a
    /// forest's thousand arrays have three dtypes, and the node struct's JSON value took a
    /// tenth of the text's writing when built for each of them.
    dtypes: Vec<(&'m DType, Vec<u8>, usize)>,
}

/// Distinct dtypes whose text a manifest's writer keeps; past them, each is written anew
/// (a linear search stays cheap).
const DTYPES_KEPT: usize = 16;

impl<'m> Writer<'m> {
    fn open(&mut self, c: u8) {
        self.out.push(c);
        self.level += 1;
        self.depth = self.depth.max(self.level);
    }

    fn close(&mut self, c: u8) {
        self.out.push(c);
        self.level -= 1;
    }

    /// A member's key (a name that needs no escape), after a comma unless it is the first.
    fn key(&mut self, first: bool, key: &'static str) {
        if !first {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn comma(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
    }

    fn str(&mut self, s: &str) -> serde_json::Result<()> {
        serde_json::to_writer(&mut self.out, s)
    }

    fn value(&mut self, v: &Value) -> serde_json::Result<()> {
        self.depth = self.depth.max(self.level + crate::node::json_depth(v));
        serde_json::to_writer(&mut self.out, v)
    }

    /// A dtype's JSON form, as `self.value(&dtype.to_json())` writes it.
    fn dtype(&mut self, dtype: &'m DType) -> serde_json::Result<()> {
        let at = match self.dtypes.iter().position(|(d, _, _)| *d == dtype) {
            Some(at) => at,
            None => {
                let value = dtype.to_json();
                if self.dtypes.len() >= DTYPES_KEPT {
                    return self.value(&value);
                }
                let text = serde_json::to_vec(&value)?;
                self.dtypes
                    .push((dtype, text, crate::node::json_depth(&value)));
                self.dtypes.len() - 1
            }
        };
        let (_, text, depth) = &self.dtypes[at];
        self.depth = self.depth.max(self.level + depth);
        self.out.extend_from_slice(text);
        Ok(())
    }

    fn uint(&mut self, n: u64) -> serde_json::Result<()> {
        serde_json::to_writer(&mut self.out, &n)
    }

    /// Base64 text needs no escape.
    fn base64(&mut self, bytes: &[u8]) {
        self.out.push(b'"');
        self.out.extend_from_slice(B64.encode(bytes).as_bytes());
        self.out.push(b'"');
    }

    fn manifest(&mut self, m: &'m Manifest) -> serde_json::Result<()> {
        self.open(b'{');
        self.key(true, "writer");
        self.str(&m.writer)?;
        self.key(false, "metadata");
        self.depth = self.depth.max(self.level + map_depth(&m.metadata));
        serde_json::to_writer(&mut self.out, &m.metadata)?;
        self.key(false, "arrays");
        self.open(b'[');
        for (i, entry) in m.arrays.iter().enumerate() {
            self.comma(i == 0);
            self.array_entry(entry)?;
        }
        self.close(b']');
        if !m.packs.is_empty() {
            self.key(false, "packs");
            self.open(b'[');
            for (i, pack) in m.packs.iter().enumerate() {
                self.comma(i == 0);
                self.pack(pack)?;
            }
            self.close(b']');
        }
        self.key(false, "root");
        self.node(&m.root, None)?;
        if let Some(v) = &m.validation {
            self.key(false, "validation");
            self.node(v, None)?;
        }
        self.close(b'}');
        Ok(())
    }

    fn digest(&mut self, digest: &[u8; 32]) {
        self.out.push(b'"');
        let at = self.out.len();
        self.digest_at.push(at);
        self.out.resize(at + 64, 0);
        if let Some(slot) = self.out.get_mut(at..) {
            write_hex(slot, digest);
        }
        self.out.push(b'"');
    }

    fn array_entry(&mut self, e: &'m ArrayEntry) -> serde_json::Result<()> {
        self.open(b'{');
        self.key(true, "dtype");
        self.dtype(&e.dtype)?;
        self.key(false, "shape");
        self.uints(&e.shape)?;
        self.key(false, "order");
        self.out.extend_from_slice(match e.order {
            Order::C => b"\"C\"",
            Order::F => b"\"F\"",
        });
        match &e.placement {
            Placement::Stored(blob) => self.blob(blob, Some(&e.digest))?,
            Placement::Packed { pack, .. } => {
                self.key(false, "pack");
                self.uint(*pack as u64)?;
                self.key(false, "raw_length");
                self.uint(e.raw_length)?;
                self.key(false, "digest");
                self.digest(&e.digest);
            }
        }
        self.close(b'}');
        Ok(())
    }

    fn pack(&mut self, p: &Pack) -> serde_json::Result<()> {
        self.open(b'{');
        self.blob_members(&p.blob, None, true)?;
        self.close(b'}');
        Ok(())
    }

    /// A blob's members inside an entry that already has some (see `Blob::write_json`).
    fn blob(&mut self, b: &Blob, digest: Option<&[u8; 32]>) -> serde_json::Result<()> {
        self.blob_members(b, digest, false)
    }

    fn blob_members(
        &mut self,
        b: &Blob,
        digest: Option<&[u8; 32]>,
        first: bool,
    ) -> serde_json::Result<()> {
        self.key(first, "offset");
        self.uint(b.offset)?;
        self.key(false, "length");
        self.uint(b.length)?;
        self.key(false, "codec");
        self.str(b.codec.name())?;
        self.key(false, "raw_length");
        self.uint(b.raw_length)?;
        if let Some(d) = digest {
            self.key(false, "digest");
            self.digest(d);
        }
        if b.filter != Filter::None {
            self.key(false, "filter");
            self.str(b.filter.name())?;
        }
        if b.filter == Filter::Columns {
            self.key(false, "columns");
            self.open(b'[');
            for (i, c) in b.columns.iter().enumerate() {
                self.comma(i == 0);
                self.value(&c.to_json())?;
            }
            self.close(b']');
        }
        Ok(())
    }

    fn uints(&mut self, items: &[u64]) -> serde_json::Result<()> {
        self.open(b'[');
        for (i, n) in items.iter().enumerate() {
            self.comma(i == 0);
            self.uint(*n)?;
        }
        self.close(b']');
        Ok(())
    }

    fn seq(&mut self, items: &'m [Node]) -> serde_json::Result<()> {
        self.open(b'[');
        for (i, n) in items.iter().enumerate() {
            self.comma(i == 0);
            self.node(n, None)?;
        }
        self.close(b']');
        Ok(())
    }

    fn pairs(&mut self, items: &'m [(Node, Node)]) -> serde_json::Result<()> {
        self.open(b'[');
        for (i, (k, v)) in items.iter().enumerate() {
            self.comma(i == 0);
            self.open(b'[');
            self.node(k, None)?;
            self.out.push(b',');
            self.node(v, None)?;
            self.close(b']');
        }
        self.close(b']');
        Ok(())
    }

    /// Closes an object node, with the `id` a `Shared` wrapper gives it as its last member.
    fn end_object(&mut self, id: Option<Id>) -> serde_json::Result<()> {
        if let Some(id) = id {
            self.key(false, "id");
            self.uint(id)?;
        }
        self.close(b'}');
        Ok(())
    }

    /// `{"tag":` : the start of a node written as a one-key object (more may follow).
    fn tag(&mut self, tag: &'static str) {
        self.open(b'{');
        self.key(true, tag);
    }

    /// A node as `Node::to_json` writes it. `id` is the identity of the `Shared` wrappers
    /// around it, the outermost one's: `to_json` inserts each wrapper's `"id"` into the
    /// object inside (appended, or replacing the inner wrapper's in place, which is last too),
    /// and nothing into a node whose JSON is not an object.
    fn node(&mut self, node: &'m Node, id: Option<Id>) -> serde_json::Result<()> {
        match node {
            Node::None => self.out.extend_from_slice(b"null"),
            Node::Bool(true) => self.out.extend_from_slice(b"true"),
            Node::Bool(false) => self.out.extend_from_slice(b"false"),
            Node::Int(i) => serde_json::to_writer(&mut self.out, i)?,
            Node::Str(s) => self.str(s)?,
            Node::Shared { id: inner, node } => return self.node(node, id.or(Some(*inner))),
            Node::BigInt(s) => {
                self.tag("int");
                self.str(s)?;
                return self.end_object(id);
            }
            Node::Float(x) => {
                self.tag("float");
                self.value(&f64_to_json(*x))?;
                return self.end_object(id);
            }
            Node::Complex(re, im) => {
                self.tag("complex");
                self.open(b'[');
                self.value(&f64_to_json(*re))?;
                self.out.push(b',');
                self.value(&f64_to_json(*im))?;
                self.close(b']');
                return self.end_object(id);
            }
            Node::StrSurrogates(b) | Node::Bytes(b) | Node::ByteArray(b) => {
                self.tag(match node {
                    Node::StrSurrogates(_) => "str_surrogatepass",
                    Node::Bytes(_) => "bytes",
                    _ => "bytearray",
                });
                self.base64(b);
                return self.end_object(id);
            }
            Node::Ellipsis => {
                self.tag("const");
                self.out.extend_from_slice(b"\"Ellipsis\"");
                return self.end_object(id);
            }
            Node::Slice(parts) => {
                self.tag("slice");
                self.seq(parts.as_slice())?;
                return self.end_object(id);
            }
            Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
                self.tag(match node {
                    Node::List(_) => "list",
                    Node::Tuple(_) => "tuple",
                    Node::Set(_) => "set",
                    _ => "frozenset",
                });
                self.seq(items)?;
                return self.end_object(id);
            }
            Node::Dict(items) => {
                self.tag("dict");
                self.pairs(items)?;
                return self.end_object(id);
            }
            Node::Array(index) => {
                self.tag("array");
                self.uint(*index as u64)?;
                return self.end_object(id);
            }
            Node::ObjArray { shape, items } => {
                self.tag("objarray");
                self.seq(items)?;
                self.key(false, "shape");
                self.uints(shape)?;
                return self.end_object(id);
            }
            Node::Scalar { dtype, data } => {
                self.tag("scalar");
                self.dtype(dtype)?;
                self.key(false, "data");
                self.base64(data);
                return self.end_object(id);
            }
            Node::DType(dt) => {
                self.tag("dtype");
                self.dtype(dt)?;
                return self.end_object(id);
            }
            Node::Global(name) => {
                self.tag("global");
                self.str(name)?;
                return self.end_object(id);
            }
            Node::Ref(target) => {
                self.tag("ref");
                self.uint(*target)?;
                return self.end_object(id);
            }
            Node::Object(obj) => {
                self.object(obj)?;
                return self.end_object(id);
            }
            Node::RandomState(state) | Node::Generator(state) => {
                self.tag(match node {
                    Node::RandomState(_) => "random_state",
                    _ => "generator",
                });
                self.node(state, None)?;
                return self.end_object(id);
            }
            Node::BitGenerator { kind, state } => {
                self.tag("bit_generator");
                self.str(kind)?;
                self.key(false, "state");
                self.node(state, None)?;
                return self.end_object(id);
            }
        }
        Ok(())
    }

    /// An object's members, the closing brace left to the caller (see `Object::to_json`).
    fn object(&mut self, obj: &'m Object) -> serde_json::Result<()> {
        self.tag("object");
        self.str(&obj.class)?;
        match &obj.construct {
            Construct::New { args, kwargs } => {
                if !args.is_empty() {
                    self.key(false, "new");
                    self.seq(args)?;
                }
                if !kwargs.is_empty() {
                    self.key(false, "kwargs");
                    self.pairs(kwargs)?;
                }
            }
            Construct::Call { args } => {
                self.key(false, "call");
                self.seq(args)?;
            }
            Construct::Base { base, value } => {
                self.key(false, "base");
                self.str(base.name())?;
                self.key(false, "basestate");
                self.node(value, None)?;
            }
        }
        if let Some(state) = &obj.state {
            match attrs(state) {
                Some(items) => {
                    self.key(false, "attrs");
                    self.open(b'{');
                    for (i, (k, v)) in items.iter().enumerate() {
                        self.comma(i == 0);
                        self.str(k)?;
                        self.out.push(b':');
                        self.node(v, None)?;
                    }
                    self.close(b'}');
                }
                None => {
                    self.key(false, "state");
                    self.node(state, None)?;
                }
            }
        }
        if !obj.list_items.is_empty() {
            self.key(false, "listitems");
            self.seq(&obj.list_items)?;
        }
        if !obj.dict_items.is_empty() {
            self.key(false, "dictitems");
            self.pairs(&obj.dict_items)?;
        }
        Ok(())
    }
}

/// The members of a state written as `attrs`: a dict whose keys are all distinct strings
/// (the rule of `node::as_attrs`).
fn attrs(state: &Node) -> Option<Vec<(&str, &Node)>> {
    let Node::Dict(items) = state else {
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Node::Str(k) = k else { return None };
        out.push((k.as_str(), v));
    }
    let distinct = if out.len() <= 16 {
        out.iter()
            .enumerate()
            .all(|(i, (k, _))| out.iter().take(i).all(|(seen, _)| seen != k))
    } else {
        // foldhash, not SipHash: an estimator's attributes pass here on every save.
        let mut seen = foldhash::HashSet::with_capacity_and_hasher(out.len(), Default::default());
        out.iter().all(|(k, _)| seen.insert(*k))
    };
    distinct.then_some(out)
}

/// `digest` as 64 lowercase hex digits into `slot` (its first 64 bytes): how the manifest
/// holds digests, written here and over a placeholder once a deferred digest is known.
pub(crate) fn write_hex(slot: &mut [u8], digest: &[u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in slot.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::codec::Codec;
    use crate::columns::Column;
    use crate::dtype::Kind;
    use crate::node::BaseType;
    use crate::testing::{node_dtype, scalar, structured};

    fn obj(construct: Construct, state: Option<Node>) -> Node {
        Node::Object(Box::new(Object {
            class: "m.C".into(),
            construct,
            state,
            list_items: vec![Node::Int(1)],
            dict_items: vec![(Node::Str("k".into()), Node::None)],
        }))
    }

    fn shared(id: Id, node: Node) -> Node {
        Node::Shared {
            id,
            node: Box::new(node),
        }
    }

    /// Every kind of node, the `Shared` cases (an object inside, a plain value inside, a
    /// wrapper inside a wrapper) and the states that are and are not written as `attrs`.
    fn every_node() -> Node {
        let f8 = scalar(Kind::Float, 8);
        let many: Vec<(Node, Node)> = (0..20)
            .map(|i| (Node::Str(format!("k{}", i % 19)), Node::Int(i)))
            .collect();
        Node::List(vec![
            Node::None,
            Node::Bool(true),
            Node::Bool(false),
            Node::Int(i64::MIN),
            Node::BigInt("-123456789012345678901234".into()),
            Node::Float(0.1),
            Node::Float(f64::NAN),
            Node::Float(f64::from_bits(0x7ff0_0000_0000_0001)),
            Node::Float(f64::NEG_INFINITY),
            Node::Complex(-0.0, 1e300),
            Node::Str("é\"\\\n\u{1}\u{7f}日本\u{1F600}".into()),
            Node::StrSurrogates(vec![0xed, 0xa0, 0x80]),
            Node::Bytes(vec![0, 1, 255]),
            Node::ByteArray(vec![]),
            Node::Ellipsis,
            Node::Slice(Box::new([Node::None, Node::Int(3), Node::Int(-1)])),
            Node::Tuple(vec![]),
            Node::Set(vec![Node::Int(1)]),
            Node::FrozenSet(vec![Node::Str("a".into())]),
            Node::Dict(vec![(Node::Int(1), Node::List(vec![]))]),
            Node::Array(0),
            Node::ObjArray {
                shape: vec![2, 1],
                items: vec![Node::None, Node::Str("x".into())],
            },
            Node::Scalar {
                dtype: f8.clone(),
                data: 1.5f64.to_le_bytes().to_vec(),
            },
            Node::DType(node_dtype()),
            Node::Global("numpy.float64".into()),
            shared(7, Node::List(vec![])),
            Node::Ref(7),
            shared(8, Node::Str("not an object".into())),
            shared(9, Node::Int(3)),
            shared(10, shared(11, Node::Dict(vec![]))),
            shared(12, shared(13, Node::None)),
            obj(
                Construct::New {
                    args: vec![Node::Int(1)],
                    kwargs: vec![(Node::Str("a".into()), Node::Int(2))],
                },
                Some(Node::Dict(vec![
                    (Node::Str("x".into()), Node::Int(1)),
                    (Node::Str("y\"".into()), Node::None),
                ])),
            ),
            obj(
                Construct::New {
                    args: vec![],
                    kwargs: vec![],
                },
                // A repeated key: `state`, not `attrs`.
                Some(Node::Dict(vec![
                    (Node::Str("x".into()), Node::Int(1)),
                    (Node::Str("x".into()), Node::Int(2)),
                ])),
            ),
            obj(Construct::Call { args: vec![] }, Some(Node::Dict(many))),
            obj(
                Construct::Call { args: vec![] },
                Some(Node::Dict(vec![(Node::Int(1), Node::Int(2))])),
            ),
            shared(
                14,
                obj(
                    Construct::Base {
                        base: BaseType::Dict,
                        value: Box::new(Node::Dict(vec![])),
                    },
                    Some(Node::Tuple(vec![])),
                ),
            ),
            Node::RandomState(Box::new(Node::Dict(vec![]))),
            Node::Generator(Box::new(Node::BitGenerator {
                kind: "PCG64".into(),
                state: Box::new(Node::Dict(vec![])),
            })),
        ])
    }

    fn entry(placement: Placement) -> ArrayEntry {
        ArrayEntry {
            dtype: node_dtype(),
            shape: vec![3],
            order: Order::F,
            raw_length: 120,
            digest: [0xa5; 32],
            placement,
        }
    }

    #[test]
    fn the_text_is_the_json_of_to_json_byte_for_byte() {
        let blob = |filter, columns| Blob {
            offset: 64,
            length: 100,
            codec: Codec::Zstd,
            filter,
            raw_length: 120,
            columns,
        };
        let column = Column {
            field: "left_child".into(),
            delta: true,
            width: Some(2),
        };
        let mut metadata = Map::new();
        metadata.insert("z".into(), json!({"nested": [1, 2.5, null, "é"]}));
        metadata.insert("a".into(), json!(true));
        let manifest = Manifest {
            writer: "skvault test".into(),
            root: every_node(),
            validation: Some(Node::Tuple(vec![Node::Ref(7)])),
            arrays: vec![
                entry(Placement::Stored(blob(Filter::Columns, vec![column]))),
                entry(Placement::Stored(blob(Filter::Fields, vec![]))),
                entry(Placement::Packed { pack: 0, start: 0 }),
            ],
            packs: vec![Pack {
                blob: blob(Filter::None, vec![]),
                members: vec![2],
            }],
            metadata,
        };
        let value = manifest.to_json();
        let want = serde_json::to_vec(&value).unwrap();
        let text = write(&manifest).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text.bytes),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(text.depth, crate::node::json_depth(&value));
        assert_eq!(text.digest_at.len(), 3);
        for at in text.digest_at {
            assert_eq!(
                &text.bytes[at - 1..at + 65],
                format!("\"{}\"", "a5".repeat(32)).as_bytes()
            );
        }
    }

    #[test]
    fn dtypes_past_those_kept_and_deeper_than_their_first_use_are_the_same_too() {
        // More distinct dtypes than the writer keeps the text of, each used twice; the
        // first one also once more, deeper than anything else in the manifest: the text and
        // the depth must not depend on the keeping.
        let dtypes: Vec<DType> = (1..=DTYPES_KEPT as u64 + 4)
            .map(|n| structured(vec![("a", scalar(Kind::Bytes, n), 0)], n))
            .collect();
        let deep = Node::Scalar {
            dtype: dtypes[0].clone(),
            data: vec![0; 1],
        };
        let deep = (0..4).fold(deep, |n, _| Node::List(vec![n]));
        let root = Node::List(
            dtypes
                .iter()
                .flat_map(|d| [Node::DType(d.clone()), Node::DType(d.clone())])
                .chain([deep])
                .collect(),
        );
        let arrays = dtypes
            .iter()
            .map(|d| ArrayEntry {
                dtype: d.clone(),
                ..entry(Placement::Packed { pack: 0, start: 0 })
            })
            .collect();
        let manifest = Manifest {
            writer: String::new(),
            root,
            validation: None,
            arrays,
            packs: vec![],
            metadata: Map::new(),
        };
        let value = manifest.to_json();
        let text = write(&manifest).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text.bytes),
            String::from_utf8_lossy(&serde_json::to_vec(&value).unwrap())
        );
        assert_eq!(text.depth, crate::node::json_depth(&value));
    }

    #[test]
    fn a_manifest_without_packs_or_validation_is_the_same_too() {
        let manifest = Manifest {
            writer: String::new(),
            root: Node::None,
            validation: None,
            arrays: vec![],
            packs: vec![],
            metadata: Map::new(),
        };
        let value = manifest.to_json();
        let text = write(&manifest).unwrap();
        assert_eq!(text.bytes, serde_json::to_vec(&value).unwrap());
        // The top-level object, and the empty metadata object and array table in it.
        assert_eq!(text.depth, 2);
        assert_eq!(text.depth, crate::node::json_depth(&value));
    }
}
