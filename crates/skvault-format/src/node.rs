//! The object tree: what a saved Python object graph becomes, and its JSON form.
//!
//! The tree is data only. Building Python objects from it is the loader's job
//! (in the binding crate), and deciding whether that is allowed is `trust`'s.
//! Decoding validates everything that can be checked without the array table:
//! node kinds and keys, integer and float encodings, qualified-name syntax,
//! references to earlier ids, object-array shapes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::dtype::DType;
use crate::error::{FormatError, Result};
use crate::float_json::f64_to_json;
use crate::pointer::Pointer;
use crate::strict_json::{Json, Obj};

/// Identifier of a shared node; `Ref(id)` points back to it.
pub type Id = u64;

/// Bit generators the loader knows how to create itself (the file cannot name others).
pub const BIT_GENERATORS: &[&str] = &["MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"];

/// Longest qualified name accepted.
pub const MAX_NAME_LEN: usize = 512;
/// Longest decimal big integer accepted (digits), so parsing it stays cheap.
pub const MAX_BIGINT_DIGITS: usize = 4300;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside the i64 range, as a canonical decimal string.
    BigInt(String),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    /// A Python `str` holding lone surrogates, as UTF-8 with `surrogatepass`.
    StrSurrogates(Vec<u8>),
    Bytes(Vec<u8>),
    ByteArray(Vec<u8>),
    Ellipsis,
    Slice(Box<[Node; 3]>),
    List(Vec<Node>),
    Tuple(Vec<Node>),
    Set(Vec<Node>),
    FrozenSet(Vec<Node>),
    Dict(Vec<(Node, Node)>),
    /// A numpy array whose bytes are blob `index` of the array table.
    Array(usize),
    /// A numpy array of dtype object: its items in C order.
    ObjArray {
        shape: Vec<u64>,
        items: Vec<Node>,
    },
    /// A numpy scalar: its dtype and its raw bytes.
    Scalar {
        dtype: DType,
        data: Vec<u8>,
    },
    DType(DType),
    /// A class or function referenced by its qualified name (`module.name`).
    Global(String),
    /// The node that declared `id` earlier in document order.
    Ref(Id),
    /// Gives the inner node an identity that later `Ref`s point to.
    Shared {
        id: Id,
        node: Box<Node>,
    },
    Object(Box<Object>),
    /// `numpy.random.RandomState`: the dict of `get_state(legacy=False)`.
    RandomState(Box<Node>),
    /// `numpy.random.Generator` around its bit generator node.
    Generator(Box<Node>),
    /// A numpy bit generator: its kind (one of `BIT_GENERATORS`) and its `state` dict.
    BitGenerator {
        kind: String,
        state: Box<Node>,
    },
}

/// An instance of a class, built the way `__reduce_ex__(4)` and `__setstate__` describe.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Qualified name of the class. The class itself is the only callable used to create the instance.
    pub class: String,
    pub construct: Construct,
    /// Applied with `__setstate__` when the class has one, else merged into `__dict__` (and slots).
    pub state: Option<Node>,
    /// Appended with `extend`/`append` (list subclasses).
    pub list_items: Vec<Node>,
    /// Set with `__setitem__` (dict subclasses).
    pub dict_items: Vec<(Node, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Construct {
    /// `cls.__new__(cls, *args, **kwargs)`.
    New {
        args: Vec<Node>,
        kwargs: Vec<(Node, Node)>,
    },
    /// `cls(*args)`, for classes whose `__reduce__` returns the class itself.
    Call { args: Vec<Node> },
    /// `base.__new__(cls, value)` then `base.__init__(obj, value)` (`copyreg._reconstructor`),
    /// for subclasses of a builtin container such as scipy's `dok_matrix` (a dict).
    Base { base: BaseType, value: Box<Node> },
}

/// The builtin containers a class may derive from with `Construct::Base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseType {
    Dict,
    List,
    Set,
}

impl BaseType {
    pub fn name(self) -> &'static str {
        match self {
            BaseType::Dict => "dict",
            BaseType::List => "list",
            BaseType::Set => "set",
        }
    }

    pub fn from_name(name: &str) -> Option<BaseType> {
        match name {
            "dict" => Some(BaseType::Dict),
            "list" => Some(BaseType::List),
            "set" => Some(BaseType::Set),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- encoding

fn pairs_json(items: &[(Node, Node)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(k, v)| json!([k.to_json(), v.to_json()]))
            .collect(),
    )
}

fn seq_json(items: &[Node]) -> Value {
    Value::Array(items.iter().map(Node::to_json).collect())
}

fn tagged(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    Value::Object(m)
}

impl Node {
    pub fn to_json(&self) -> Value {
        match self {
            Node::None => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => json!(i),
            Node::BigInt(s) => tagged("int", Value::String(s.clone())),
            Node::Float(x) => tagged("float", f64_to_json(*x)),
            Node::Complex(re, im) => tagged("complex", json!([f64_to_json(*re), f64_to_json(*im)])),
            Node::Str(s) => Value::String(s.clone()),
            Node::StrSurrogates(b) => tagged("str_surrogatepass", Value::String(B64.encode(b))),
            Node::Bytes(b) => tagged("bytes", Value::String(B64.encode(b))),
            Node::ByteArray(b) => tagged("bytearray", Value::String(B64.encode(b))),
            Node::Ellipsis => tagged("const", Value::String("Ellipsis".into())),
            Node::Slice(parts) => tagged("slice", seq_json(parts.as_slice())),
            Node::List(items) => tagged("list", seq_json(items)),
            Node::Tuple(items) => tagged("tuple", seq_json(items)),
            Node::Set(items) => tagged("set", seq_json(items)),
            Node::FrozenSet(items) => tagged("frozenset", seq_json(items)),
            Node::Dict(items) => tagged("dict", pairs_json(items)),
            Node::Array(index) => tagged("array", json!(index)),
            Node::ObjArray { shape, items } => {
                let mut v = tagged("objarray", seq_json(items));
                if let Value::Object(m) = &mut v {
                    m.insert("shape".into(), json!(shape));
                }
                v
            }
            Node::Scalar { dtype, data } => {
                let mut v = tagged("scalar", dtype.to_json());
                if let Value::Object(m) = &mut v {
                    m.insert("data".into(), Value::String(B64.encode(data)));
                }
                v
            }
            Node::DType(dt) => tagged("dtype", dt.to_json()),
            Node::Global(name) => tagged("global", Value::String(name.clone())),
            Node::Ref(id) => tagged("ref", json!(id)),
            Node::Shared { id, node } => {
                let mut v = node.to_json();
                if let Value::Object(m) = &mut v {
                    m.insert("id".into(), json!(id));
                }
                v
            }
            Node::Object(obj) => obj.to_json(),
            Node::RandomState(state) => tagged("random_state", state.to_json()),
            Node::Generator(bg) => tagged("generator", bg.to_json()),
            Node::BitGenerator { kind, state } => {
                let mut v = tagged("bit_generator", Value::String(kind.clone()));
                if let Value::Object(m) = &mut v {
                    m.insert("state".into(), state.to_json());
                }
                v
            }
        }
    }

    /// The node itself, or the node a `Shared` wrapper gives an identity to.
    pub fn unshared(&self) -> &Node {
        match self {
            Node::Shared { node, .. } => node,
            other => other,
        }
    }

    /// True for nodes whose JSON form is an object, i.e. that can carry an `id`.
    pub fn can_be_shared(&self) -> bool {
        !matches!(
            self,
            Node::None
                | Node::Bool(_)
                | Node::Int(_)
                | Node::Str(_)
                | Node::Ref(_)
                | Node::Shared { .. }
        )
    }
}

/// A str-keyed dict without identity is written as `attrs` (a JSON object): shallower and readable.
fn as_attrs(state: &Node) -> Option<Value> {
    let Node::Dict(items) = state else {
        return None;
    };
    let mut m = Map::new();
    for (k, v) in items {
        let Node::Str(k) = k else { return None };
        if m.insert(k.clone(), v.to_json()).is_some() {
            return None;
        }
    }
    Some(Value::Object(m))
}

impl Object {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("object".into(), Value::String(self.class.clone()));
        match &self.construct {
            Construct::New { args, kwargs } => {
                if !args.is_empty() {
                    m.insert("new".into(), seq_json(args));
                }
                if !kwargs.is_empty() {
                    m.insert("kwargs".into(), pairs_json(kwargs));
                }
            }
            Construct::Call { args } => {
                m.insert("call".into(), seq_json(args));
            }
            Construct::Base { base, value } => {
                m.insert("base".into(), Value::String(base.name().into()));
                m.insert("basestate".into(), value.to_json());
            }
        }
        if let Some(state) = &self.state {
            match as_attrs(state) {
                Some(attrs) => m.insert("attrs".into(), attrs),
                None => m.insert("state".into(), state.to_json()),
            };
        }
        if !self.list_items.is_empty() {
            m.insert("listitems".into(), seq_json(&self.list_items));
        }
        if !self.dict_items.is_empty() {
            m.insert("dictitems".into(), pairs_json(&self.dict_items));
        }
        Value::Object(m)
    }
}

// ---------------------------------------------------------------- decoding

/// Decodes and validates a tree. `n_arrays` is the length of the array table.
pub struct Decoder {
    n_arrays: usize,
    /// Ids declared so far (keyed by file data: foldhash, seeded per process).
    ids: foldhash::HashSet<Id>,
    array_refs: Vec<bool>,
}

const KIND_KEYS: &[&str] = &[
    "int",
    "float",
    "complex",
    "str_surrogatepass",
    "bytes",
    "bytearray",
    "const",
    "slice",
    "list",
    "tuple",
    "set",
    "frozenset",
    "dict",
    "array",
    "objarray",
    "scalar",
    "dtype",
    "global",
    "ref",
    "object",
    "random_state",
    "generator",
    "bit_generator",
];

fn perr(path: &Pointer, message: impl Into<String>) -> FormatError {
    FormatError::manifest(path.to_string(), message)
}

/// Checks `module.name` syntax: dotted identifiers, at least one dot.
pub fn check_qualified_name(name: &str) -> std::result::Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "qualified name longer than {MAX_NAME_LEN} characters"
        ));
    }
    let mut parts = 0;
    for part in name.split('.') {
        let mut chars = part.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "{name:?} is not a qualified name (module.name of identifiers)"
            ));
        }
        parts += 1;
    }
    if parts < 2 {
        return Err(format!(
            "{name:?} is not a qualified name: it needs a module and a name"
        ));
    }
    Ok(())
}

fn parse_float(v: &Json, path: &Pointer) -> Result<f64> {
    match v {
        // Integral-looking floats written by other tools ("1" instead of "1.0") are accepted.
        Json::Float(_) | Json::Int(_) | Json::UInt(_) => {
            v.as_f64().ok_or_else(|| perr(path, "bad float"))
        }
        Json::Str(s) => crate::float_json::f64_from_text(s).map_err(|e| match e {
            crate::float_json::FloatTextError::NotANan => perr(path, e.to_string()),
            _ => perr(path, format!("{s:?} is not a float encoding")),
        }),
        _ => Err(perr(
            path,
            "a float must be a JSON number or \"nan\", \"inf\", \"-inf\", \"nan:<hex bits>\"",
        )),
    }
}

fn parse_b64(v: &Json, path: &Pointer) -> Result<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| perr(path, "expected a base64 string"))?;
    B64.decode(s)
        .map_err(|e| perr(path, format!("invalid base64: {e}")))
}

fn check_bigint(s: &str, path: &Pointer) -> Result<()> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.len() <= MAX_BIGINT_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'))
        && s != "-0";
    if !canonical {
        return Err(perr(
            path,
            format!("{s:?} is not a canonical decimal integer"),
        ));
    }
    Ok(())
}

fn take_array<'a>(v: Json<'a>, path: &Pointer) -> Result<Vec<Json<'a>>> {
    match v {
        Json::Array(a) => Ok(a),
        _ => Err(perr(path, "expected a list")),
    }
}

/// The kind key `name` is, if it is one.
fn kind_key(name: &str) -> Option<&'static str> {
    KIND_KEYS.iter().copied().find(|k| *k == name)
}

/// The one kind key of a node object, after checking that its other keys belong to that kind.
fn node_kind(m: &Obj, path: &Pointer) -> Result<&'static str> {
    // Each of the node's few keys looked up once (not each kind looked for among them).
    let mut found = m.keys().filter_map(kind_key);
    let kind = match (found.next(), found.next()) {
        (Some(k), None) => k,
        (None, _) => {
            let keys: Vec<&str> = m.keys().collect();
            return Err(perr(path, format!("unknown node kind (keys {keys:?})")));
        }
        (Some(_), Some(_)) => {
            // Named in the order of KIND_KEYS, whatever their order in the text.
            let mut kinds = KIND_KEYS.iter().filter(|k| m.contains_key(k));
            let (a, b) = (kinds.next(), kinds.next());
            return Err(perr(
                path,
                format!(
                    "node has two kinds: '{}' and '{}'",
                    a.unwrap_or(&""),
                    b.unwrap_or(&"")
                ),
            ));
        }
    };
    let allowed: &[&str] = match kind {
        "object" => &[
            "object",
            "new",
            "call",
            "kwargs",
            "base",
            "basestate",
            "state",
            "attrs",
            "listitems",
            "dictitems",
        ],
        "objarray" => &["objarray", "shape"],
        "scalar" => &["scalar", "data"],
        "bit_generator" => &["bit_generator", "state"],
        other => std::slice::from_ref(KIND_KEYS.iter().find(|k| **k == other).unwrap_or(&"")),
    };
    if let Some(extra) = m.keys().find(|k| !allowed.contains(k)) {
        return Err(perr(
            path,
            format!("unknown key '{extra}' in a '{kind}' node"),
        ));
    }
    Ok(kind)
}

/// Values without children: `int` (big), `float`, `complex`, `str_surrogatepass`, `bytes`,
/// `bytearray`, `const`.
fn decode_value(kind: &str, main: &Json, p: &Pointer) -> Result<Node> {
    Ok(match kind {
        "int" => {
            let s = main
                .as_str()
                .ok_or_else(|| perr(p, "expected a decimal string"))?;
            check_bigint(s, p)?;
            match s.parse::<i64>() {
                Ok(i) => Node::Int(i),
                Err(_) => Node::BigInt(s.to_string()),
            }
        }
        "float" => Node::Float(parse_float(main, p)?),
        "complex" => match main.as_array() {
            Some([re, im]) => Node::Complex(parse_float(re, p)?, parse_float(im, p)?),
            _ => return Err(perr(p, "expected [real, imag]")),
        },
        "str_surrogatepass" => Node::StrSurrogates(parse_b64(main, p)?),
        "bytes" => Node::Bytes(parse_b64(main, p)?),
        "bytearray" => Node::ByteArray(parse_b64(main, p)?),
        "const" => match main.as_str() {
            Some("Ellipsis") => Node::Ellipsis,
            _ => return Err(perr(p, "unknown constant")),
        },
        _ => return Err(perr(p, format!("unknown node kind '{kind}'"))),
    })
}

impl Decoder {
    pub fn new(n_arrays: usize) -> Self {
        Decoder {
            n_arrays,
            ids: foldhash::HashSet::default(),
            array_refs: vec![false; n_arrays],
        }
    }

    /// Arrays of the table that no node references.
    pub fn unreferenced_arrays(&self) -> Vec<usize> {
        self.array_refs
            .iter()
            .enumerate()
            .filter_map(|(i, seen)| (!seen).then_some(i))
            .collect()
    }

    /// Decodes a tree given as a `serde_json::Value`; `path` locates it in error messages.
    pub fn decode(&mut self, v: Value, path: &str) -> Result<Node> {
        self.decode_json(Json::from(&v), &Pointer::Root(path))
    }

    /// Decodes a tree parsed by [`Json::parse`].
    pub fn decode_json(&mut self, v: Json, path: &Pointer) -> Result<Node> {
        match v {
            Json::Null => Ok(Node::None),
            Json::Bool(b) => Ok(Node::Bool(b)),
            Json::Str(s) => Ok(Node::Str(s.into_owned())),
            Json::Int(i) => Ok(Node::Int(i)),
            Json::UInt(u) => Ok(match i64::try_from(u) {
                Ok(i) => Node::Int(i),
                Err(_) => Node::BigInt(u.to_string()),
            }),
            Json::Float(_) => Err(perr(
                path,
                "a bare JSON number must be an integer (floats are {\"float\": x})",
            )),
            Json::Array(_) => Err(perr(
                path,
                "a bare JSON list is not a node (use {\"list\": [...]})",
            )),
            Json::Object(m) => self.decode_object(m, path),
        }
    }

    fn decode_seq(&mut self, v: Json, path: &Pointer) -> Result<Vec<Node>> {
        take_array(v, path)?
            .into_iter()
            .enumerate()
            .map(|(i, item)| self.decode_json(item, &path.index(i)))
            .collect()
    }

    fn decode_pairs(&mut self, v: Json, path: &Pointer) -> Result<Vec<(Node, Node)>> {
        let items = take_array(v, path)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, pair) in items.into_iter().enumerate() {
            let p = path.index(i);
            let mut kv = take_array(pair, &p)?;
            if kv.len() != 2 {
                return Err(perr(&p, "a dict item must be [key, value]"));
            }
            let value = kv.pop().unwrap_or(Json::Null);
            let key = kv.pop().unwrap_or(Json::Null);
            let key = self.decode_json(key, &p.index(0))?;
            let value = self.decode_json(value, &p.index(1))?;
            out.push((key, value));
        }
        Ok(out)
    }

    fn decode_object(&mut self, mut m: Obj, path: &Pointer) -> Result<Node> {
        let id = self.declare_id(&mut m, path)?;
        let kind = node_kind(&m, path)?;
        if id.is_some() && kind == "ref" {
            return Err(perr(path, "a ref cannot declare an id"));
        }
        let p = path.key(kind);
        let main = m.remove(kind).unwrap_or(Json::Null);
        let node = match kind {
            "int" | "float" | "complex" | "str_surrogatepass" | "bytes" | "bytearray" | "const" => {
                decode_value(kind, &main, &p)?
            }
            "slice" | "list" | "tuple" | "set" | "frozenset" | "dict" => {
                self.decode_container(kind, main, &p)?
            }
            "array" | "objarray" | "scalar" | "dtype" => {
                self.decode_array(kind, main, &mut m, path)?
            }
            "random_state" | "generator" | "bit_generator" => {
                self.decode_random(kind, main, &mut m, path)?
            }
            "global" => {
                let name = main
                    .as_str()
                    .ok_or_else(|| perr(&p, "expected a qualified name"))?;
                check_qualified_name(name).map_err(|e| perr(&p, e))?;
                Node::Global(name.to_string())
            }
            "ref" => {
                let target = main.as_u64().ok_or_else(|| perr(&p, "expected an id"))?;
                if !self.ids.contains(&target) {
                    return Err(perr(
                        &p,
                        format!("ref to id {target}, which is not declared before it"),
                    ));
                }
                Node::Ref(target)
            }
            "object" => Node::Object(Box::new(self.decode_instance(main, m, path)?)),
            _ => return Err(perr(path, format!("unknown node kind '{kind}'"))),
        };
        Ok(match id {
            // Only nodes written as JSON objects keep their id when re-encoded.
            Some(_) if !node.can_be_shared() => {
                return Err(perr(path, format!("a '{kind}' node cannot declare an id")))
            }
            Some(id) => Node::Shared {
                id,
                node: Box::new(node),
            },
            None => node,
        })
    }

    /// The node's `id`, if it declares one; each id is declared once in the document.
    fn declare_id(&mut self, m: &mut Obj, path: &Pointer) -> Result<Option<Id>> {
        Ok(match m.remove("id") {
            None => None,
            Some(v) => {
                let id = v
                    .as_u64()
                    .ok_or_else(|| perr(path, "'id' must be a non-negative integer"))?;
                if !self.ids.insert(id) {
                    return Err(perr(path, format!("id {id} is declared twice")));
                }
                Some(id)
            }
        })
    }

    /// Containers: `slice`, `list`, `tuple`, `set`, `frozenset`, `dict`.
    fn decode_container(&mut self, kind: &str, main: Json, p: &Pointer) -> Result<Node> {
        Ok(match kind {
            "slice" => {
                let parts = self.decode_seq(main, p)?;
                let parts: [Node; 3] = parts
                    .try_into()
                    .map_err(|_| perr(p, "a slice is [start, stop, step]"))?;
                Node::Slice(Box::new(parts))
            }
            "list" => Node::List(self.decode_seq(main, p)?),
            "tuple" => Node::Tuple(self.decode_seq(main, p)?),
            "set" => Node::Set(self.decode_seq(main, p)?),
            "frozenset" => Node::FrozenSet(self.decode_seq(main, p)?),
            "dict" => Node::Dict(self.decode_pairs(main, p)?),
            _ => return Err(perr(p, format!("unknown node kind '{kind}'"))),
        })
    }

    /// Arrays and their types: `array` (an index into the array table), `objarray`,
    /// numpy `scalar`, `dtype`.
    fn decode_array(
        &mut self,
        kind: &str,
        main: Json,
        m: &mut Obj,
        path: &Pointer,
    ) -> Result<Node> {
        let p = path.key(kind);
        Ok(match kind {
            "array" => {
                let index = main
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|i| *i < self.n_arrays)
                    .ok_or_else(|| {
                        perr(&p, format!("array index must be below {}", self.n_arrays))
                    })?;
                if let Some(seen) = self.array_refs.get_mut(index) {
                    if *seen {
                        return Err(perr(
                            &p,
                            format!("array {index} is referenced twice (use a ref)"),
                        ));
                    }
                    *seen = true;
                }
                Node::Array(index)
            }
            "objarray" => {
                let shape = parse_shape(m.remove("shape").as_ref(), &path.key("shape"))?;
                let items = self.decode_seq(main, &p)?;
                // numpy.empty(shape, dtype=object): 8-byte pointers.
                let count = crate::manifest::check_shape(&shape, 8)
                    .map_err(|m| perr(path, format!("object array: {m}")))?;
                if count != items.len() as u64 {
                    return Err(perr(
                        path,
                        format!("shape {shape:?} needs {count} items, found {}", items.len()),
                    ));
                }
                Node::ObjArray { shape, items }
            }
            "scalar" => {
                let dtype = DType::from_json_at(&main, &p)?;
                let data = parse_b64(&m.remove("data").unwrap_or(Json::Null), &path.key("data"))?;
                if data.len() as u64 != dtype.itemsize() {
                    return Err(perr(path, "scalar data length does not match its dtype"));
                }
                Node::Scalar { dtype, data }
            }
            "dtype" => Node::DType(DType::from_json_allow_object(&main, &p)?),
            _ => return Err(perr(path, format!("unknown node kind '{kind}'"))),
        })
    }

    /// numpy's random state: `random_state`, `generator`, `bit_generator`.
    fn decode_random(
        &mut self,
        kind: &str,
        main: Json,
        m: &mut Obj,
        path: &Pointer,
    ) -> Result<Node> {
        let p = path.key(kind);
        Ok(match kind {
            "random_state" => {
                let state = self.decode_json(main, &p)?;
                if !matches!(state.unshared(), Node::Dict(_) | Node::Ref(_)) {
                    return Err(perr(
                        &p,
                        "a random_state holds a dict (its get_state) or a ref",
                    ));
                }
                Node::RandomState(Box::new(state))
            }
            "generator" => {
                let bg = self.decode_json(main, &p)?;
                if !matches!(bg.unshared(), Node::BitGenerator { .. } | Node::Ref(_)) {
                    return Err(perr(&p, "a generator holds a bit_generator node or a ref"));
                }
                Node::Generator(Box::new(bg))
            }
            "bit_generator" => {
                let kind = main.as_str().unwrap_or_default();
                if !BIT_GENERATORS.contains(&kind) {
                    return Err(perr(&p, format!("unknown bit generator {kind:?}")));
                }
                let state = m
                    .remove("state")
                    .ok_or_else(|| perr(path, "a bit_generator needs its 'state'"))?;
                let state = self.decode_json(state, &path.key("state"))?;
                if !matches!(state.unshared(), Node::Dict(_) | Node::Ref(_)) {
                    return Err(perr(path, "a bit_generator's state is a dict or a ref"));
                }
                Node::BitGenerator {
                    kind: kind.to_string(),
                    state: Box::new(state),
                }
            }
            _ => return Err(perr(path, format!("unknown node kind '{kind}'"))),
        })
    }

    /// `new` (+ `kwargs`), `call` or `base` (+ `basestate`): at most one way to create the object.
    fn decode_construct(&mut self, m: &mut Obj, path: &Pointer) -> Result<Construct> {
        let new = m.remove("new");
        let call = m.remove("call");
        let kwargs = m.remove("kwargs");
        let base = m.remove("base");
        let basestate = m.remove("basestate");
        let ways = [
            new.is_some() || kwargs.is_some(),
            call.is_some(),
            base.is_some() || basestate.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            return Err(perr(
                path,
                "an object has only one of 'new'/'kwargs', 'call' and 'base'/'basestate'",
            ));
        }
        if let Some(call) = call {
            return Ok(Construct::Call {
                args: self.decode_seq(call, &path.key("call"))?,
            });
        }
        if base.is_some() || basestate.is_some() {
            let base = base
                .as_ref()
                .and_then(Json::as_str)
                .and_then(BaseType::from_name)
                .ok_or_else(|| perr(path, "'base' must be \"dict\", \"list\" or \"set\""))?;
            let value = basestate.ok_or_else(|| perr(path, "'base' needs 'basestate'"))?;
            return Ok(Construct::Base {
                base,
                value: Box::new(self.decode_json(value, &path.key("basestate"))?),
            });
        }
        let args = match new {
            Some(v) => self.decode_seq(v, &path.key("new"))?,
            None => Vec::new(),
        };
        let kwargs = match kwargs {
            Some(v) => self.decode_pairs(v, &path.key("kwargs"))?,
            None => Vec::new(),
        };
        Ok(Construct::New { args, kwargs })
    }

    fn decode_instance(&mut self, class: Json, mut m: Obj, path: &Pointer) -> Result<Object> {
        let class = class
            .as_str()
            .ok_or_else(|| perr(path, "'object' must be a qualified class name"))?
            .to_string();
        check_qualified_name(&class).map_err(|e| perr(&path.key("object"), e))?;
        let construct = self.decode_construct(&mut m, path)?;
        let state = match (m.remove("state"), m.remove("attrs")) {
            (Some(_), Some(_)) => {
                return Err(perr(
                    path,
                    "an object has either 'state' or 'attrs', not both",
                ))
            }
            (Some(v), None) => Some(self.decode_json(v, &path.key("state"))?),
            (None, Some(Json::Object(attrs))) => {
                let mut items = Vec::with_capacity(attrs.len());
                let at = path.key("attrs");
                for (k, v) in attrs {
                    let value = self.decode_json(v, &at.key(&k))?;
                    items.push((Node::Str(k.into_owned()), value));
                }
                Some(Node::Dict(items))
            }
            (None, Some(_)) => return Err(perr(path, "'attrs' must be a JSON object")),
            (None, None) => None,
        };
        let list_items = match m.remove("listitems") {
            Some(v) => self.decode_seq(v, &path.key("listitems"))?,
            None => Vec::new(),
        };
        let dict_items = match m.remove("dictitems") {
            Some(v) => self.decode_pairs(v, &path.key("dictitems"))?,
            None => Vec::new(),
        };
        Ok(Object {
            class,
            construct,
            state,
            list_items,
            dict_items,
        })
    }
}

/// Parses a shape: a list of at most 64 non-negative integers.
pub fn parse_shape(v: Option<&Json>, path: &Pointer) -> Result<Vec<u64>> {
    let list = v
        .and_then(Json::as_array)
        .ok_or_else(|| perr(path, "'shape' must be a list of non-negative integers"))?;
    if list.len() > 64 {
        return Err(perr(path, "more than 64 dimensions"));
    }
    list.iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| perr(path, "dimensions must be non-negative integers"))
        })
        .collect()
}

/// Rebuilds `node` with `f` applied to each of its direct children (owned), in document
/// order; leaves come back unchanged. The owned counterpart of [`walk`], for passes that
/// rewrite a tree (dropping unused ids, renumbering them). The children are replaced where
/// they lie (through [`for_each_child_mut`]): no container or box is made again.
pub fn map_children(mut node: Node, f: &mut dyn FnMut(Node) -> Node) -> Node {
    for_each_child_mut(&mut node, &mut |child| {
        let owned = std::mem::replace(child, Node::None);
        *child = f(owned);
    });
    node
}

/// Calls `f` on each direct child of `node`, in document order (the order of [`walk`]).
pub fn for_each_child_mut(node: &mut Node, f: &mut dyn FnMut(&mut Node)) {
    fn pairs(v: &mut [(Node, Node)], f: &mut dyn FnMut(&mut Node)) {
        for (k, x) in v {
            f(k);
            f(x);
        }
    }
    match node {
        Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
            v.iter_mut().for_each(f)
        }
        Node::Dict(v) => pairs(v, f),
        Node::Slice(parts) => parts.iter_mut().for_each(f),
        Node::ObjArray { items, .. } => items.iter_mut().for_each(f),
        Node::Shared { node, .. } => f(node),
        Node::RandomState(n) | Node::Generator(n) => f(n),
        Node::BitGenerator { state, .. } => f(state),
        Node::Object(obj) => {
            match &mut obj.construct {
                Construct::New { args, kwargs } => {
                    args.iter_mut().for_each(&mut *f);
                    pairs(kwargs, f);
                }
                Construct::Call { args } => args.iter_mut().for_each(&mut *f),
                Construct::Base { value, .. } => f(value),
            }
            if let Some(state) = &mut obj.state {
                f(state);
            }
            obj.list_items.iter_mut().for_each(&mut *f);
            pairs(&mut obj.dict_items, f);
        }
        _ => {}
    }
}

/// Sets of plain values (None, bool, int, float, complex, str, including strings with lone
/// surrogates, bytes) are written sorted by their JSON form, so the same set always gives
/// the same tree and the same bytes, whichever writer (the Python walker, the pickle
/// converter) made it.
pub fn sorted_if_plain(mut items: Vec<Node>) -> Vec<Node> {
    let plain = items.iter().all(|n| {
        matches!(
            n,
            Node::None
                | Node::Bool(_)
                | Node::Int(_)
                | Node::BigInt(_)
                | Node::Float(_)
                | Node::Complex(..)
                | Node::Str(_)
                | Node::StrSurrogates(_)
                | Node::Bytes(_)
        )
    });
    if plain {
        items.sort_by_cached_key(|n| n.to_json().to_string());
    }
    items
}

/// Visits every node once, depth first, in document order.
pub fn walk<'a>(node: &'a Node, f: &mut impl FnMut(&'a Node)) {
    f(node);
    let mut each = |n: &'a Node| walk(n, f);
    match node {
        Node::Slice(parts) => parts.iter().for_each(&mut each),
        Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
            items.iter().for_each(&mut each)
        }
        Node::ObjArray { items, .. } => items.iter().for_each(&mut each),
        Node::Dict(items) => items.iter().for_each(|(k, v)| {
            each(k);
            each(v);
        }),
        Node::Shared { node, .. } => each(node),
        Node::RandomState(n) | Node::Generator(n) => each(n),
        Node::BitGenerator { state, .. } => each(state),
        Node::Object(obj) => {
            match &obj.construct {
                Construct::New { args, kwargs } => {
                    args.iter().for_each(&mut each);
                    kwargs.iter().for_each(|(k, v)| {
                        each(k);
                        each(v);
                    });
                }
                Construct::Call { args } => args.iter().for_each(&mut each),
                Construct::Base { value, .. } => each(value),
            }
            if let Some(state) = &obj.state {
                each(state);
            }
            obj.list_items.iter().for_each(&mut each);
            obj.dict_items.iter().for_each(|(k, v)| {
                each(k);
                each(v);
            });
        }
        _ => {}
    }
}

/// Depth of a JSON value (a scalar is 0, `[]` is 1), iteratively, so hostile nesting cannot overflow the stack.
pub fn json_depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => {
                max = max.max(d + 1);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            Value::Object(m) => {
                max = max.max(d + 1);
                stack.extend(m.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_of_any_plain_value_sort_the_same_whatever_their_order() {
        // A string with a lone surrogate (Python's '\ud869') and a complex number are plain:
        // such sets were left in iteration order, which follows the hash seed.
        let items = vec![
            Node::Bool(false),
            Node::StrSurrogates(vec![0xed, 0xa1, 0xa9]),
            Node::Complex(1.0, -2.0),
            Node::Str("a".into()),
        ];
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(sorted_if_plain(items), sorted_if_plain(reversed));
    }

    fn round_trip(node: &Node) -> Node {
        let v = node.to_json();
        Decoder::new(4).decode(v, "").unwrap()
    }

    #[test]
    fn floats_are_bit_exact() {
        for x in [
            0.0,
            -0.0,
            1.5,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            let Node::Float(y) = round_trip(&Node::Float(x)) else {
                panic!()
            };
            assert_eq!(x.to_bits(), y.to_bits(), "{x}");
        }
        let payload = f64::from_bits(0xfff8_0000_0000_0001);
        let Node::Float(y) = round_trip(&Node::Float(payload)) else {
            panic!()
        };
        assert_eq!(payload.to_bits(), y.to_bits());
    }

    #[test]
    fn big_ints_and_canonical_form() {
        let big = Node::BigInt("-123456789012345678901234567890".into());
        assert_eq!(round_trip(&big), big);
        assert_eq!(round_trip(&Node::Int(i64::MIN)), Node::Int(i64::MIN));
        let mut d = Decoder::new(0);
        for bad in ["", "-", "01", "1.5", "1e3", "+1", " 1"] {
            assert!(d.decode(json!({"int": bad}), "").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn objects_round_trip_with_attrs_and_refs() {
        let obj = Node::Shared {
            id: 1,
            node: Box::new(Node::Object(Box::new(Object {
                class: "sklearn.tree._classes.DecisionTreeClassifier".into(),
                construct: Construct::New {
                    args: vec![],
                    kwargs: vec![],
                },
                state: Some(Node::Dict(vec![
                    (Node::Str("max_depth".into()), Node::Int(3)),
                    (Node::Str("self".into()), Node::Ref(1)),
                    (Node::Str("arr".into()), Node::Array(0)),
                ])),
                list_items: vec![],
                dict_items: vec![],
            }))),
        };
        let v = obj.to_json();
        assert!(v.get("attrs").is_some());
        assert_eq!(round_trip(&obj), obj);
    }

    #[test]
    fn refs_must_point_backwards_and_ids_be_unique() {
        let mut d = Decoder::new(0);
        assert!(d.decode(json!({"list": [{"ref": 7}]}), "").is_err());
        let mut d = Decoder::new(0);
        assert!(d
            .decode(
                json!({"list": [{"list": [], "id": 1}, {"list": [], "id": 1}]}),
                ""
            )
            .is_err());
        let mut d = Decoder::new(0);
        assert!(d
            .decode(json!({"list": [{"list": [], "id": 1}, {"ref": 1}]}), "")
            .is_ok());
    }

    #[test]
    fn rejects_unknown_kinds_keys_and_names() {
        let bad = [
            json!({"lambda": "x"}),
            json!({"list": [], "tuple": []}),
            json!({"list": [], "extra": 1}),
            json!({"global": "os"}),
            json!({"global": "os.system()"}),
            json!({"global": "a..b"}),
            json!({"object": "builtins.eval", "new": [], "call": []}),
            json!({"array": 4}),
            json!({"objarray": [1, 2], "shape": [3]}),
            json!({"bit_generator": "Evil", "state": null}),
            json!([1, 2]),
            json!(1.5),
        ];
        for v in bad {
            assert!(Decoder::new(4).decode(v.clone(), "").is_err(), "{v}");
        }
    }

    #[test]
    fn qualified_names() {
        assert!(check_qualified_name("numpy.log1p").is_ok());
        assert!(check_qualified_name("sklearn.base.os.system").is_ok());
        for bad in ["log1p", ".a", "a.", "a.b c", "a.1b", "a.b-c"] {
            assert!(check_qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_depth_counts_nesting() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!([[1], {"a": [2]}])), 3);
    }
}
