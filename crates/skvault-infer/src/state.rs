//! Typed access to the fitted state in the object tree: attributes, numbers, arrays.
//!
//! Every accessor checks what it reads (node kind, dtype, shape) and reports a
//! `Malformed` error naming the attribute's path; nothing here trusts the file.

use std::borrow::Cow;
use std::collections::HashMap;

use skvault_format::dtype::{ByteOrder, Field, Kind};
use skvault_format::element::{self, Element};
use skvault_format::node::walk;
use skvault_format::{DType, Node, Object, Order, SkvFile};

use crate::budget::Budget;
use crate::error::{malformed, Result};

/// The file and the id table that `Ref` nodes point into.
pub(crate) struct Ctx<'f> {
    file: &'f SkvFile,
    ids: HashMap<u64, &'f Node>,
    /// The id of each node that has one, by the node's address (what `resolve` returns).
    shared: HashMap<*const Node, u64>,
    budget: Budget,
    /// Arrays whose bytes in place (mapped or in-memory file, uncompressed) were hashed
    /// ahead by [`Ctx::verify_ahead`], by index; their digest matched.
    verified: Vec<bool>,
    /// Arrays the loader has read and checked already (see [`crate::guard::Preread`]).
    preread: Option<&'f dyn crate::guard::Preread>,
}

/// A numeric array decoded to f64, in C order.
#[derive(Debug, Clone)]
pub(crate) struct ArrayF64 {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn is_numeric(dtype: &DType) -> bool {
    matches!(
        dtype,
        DType::Scalar {
            kind: Kind::Bool | Kind::Int | Kind::UInt | Kind::Float,
            ..
        }
    ) && !matches!(
        dtype,
        DType::Scalar {
            kind: Kind::Float,
            count: 2,
            ..
        }
    )
}

/// Reorders Fortran-ordered elements (first index fastest) into C order.
fn f_to_c<T: Copy>(data: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len());
    let n = data.len();
    // C index -> multi-index -> F index.
    for c in 0..n {
        let mut rem = c;
        let mut f = 0usize;
        let mut stride = 1usize;
        let mut idx = vec![0usize; shape.len()];
        for (k, d) in shape.iter().enumerate().rev() {
            idx[k] = rem % d.max(&1);
            rem /= d.max(&1);
        }
        for (k, d) in shape.iter().enumerate() {
            f += idx[k] * stride;
            stride *= d;
        }
        out.push(data[f]);
    }
    out
}

impl<'f> Ctx<'f> {
    pub fn new(file: &'f SkvFile) -> Self {
        Ctx::over(file, std::iter::once(&file.manifest().root))
    }

    /// A context whose refs also reach into the validation tree (ids are unique across
    /// both trees, FORMAT.md 5.4).
    pub fn with_validation(file: &'f SkvFile) -> Self {
        Ctx::over(file, file.manifest().trees())
    }

    fn over(file: &'f SkvFile, trees: impl Iterator<Item = &'f Node>) -> Self {
        let mut ids = HashMap::new();
        let mut shared = HashMap::new();
        for tree in trees {
            walk(tree, &mut |n| {
                if let Node::Shared { id, node } = n {
                    ids.insert(*id, &**node);
                    shared.insert(&**node as *const Node, *id);
                }
            });
        }
        Ctx {
            file,
            ids,
            shared,
            budget: Budget::new(file),
            verified: Vec::new(),
            preread: None,
        }
    }

    /// Reads the arrays that `preread` holds from there rather than from the file.
    pub fn with_preread(self, preread: &'f dyn crate::guard::Preread) -> Self {
        Ctx {
            preread: Some(preread),
            ..self
        }
    }

    /// Checks the digests of the arrays among `indices` that lie uncompressed in a mapped or
    /// in-memory file, on rayon's threads, before the checks read them one by one: a forest's
    /// node arrays are most of its file, and hashing them one tree at a time on one thread
    /// was most of a mapped load. The bytes are hashed where they lie, so what the checks
    /// read later is what was hashed (as when [`Ctx::raw`] hashes them itself). An array
    /// whose digest does not match is left unmarked: `raw` hashes it again and reports it
    /// where the checks reach it, as before. Arrays elsewhere are left to `raw`.
    pub fn verify_ahead(&mut self, indices: &[usize]) {
        use rayon::prelude::*;
        let file = self.file;
        let preread = self.preread;
        let in_place: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|i| file.mapped_bytes(*i).is_some())
            .filter(|i| !preread.is_some_and(|p| p.holds(*i)))
            .collect();
        let bytes: usize = in_place
            .iter()
            .filter_map(|i| file.mapped_bytes(*i))
            .map(<[u8]>::len)
            .sum();
        if !skvault_format::write::worth_threads(bytes) {
            return;
        }
        let matched: Vec<usize> = skvault_format::threads::install(|| {
            in_place
                .into_par_iter()
                .filter(|i| file.verify_array(*i).is_ok())
                .collect()
        });
        self.verified = vec![false; file.manifest().arrays.len()];
        for i in matched {
            if let Some(v) = self.verified.get_mut(i) {
                *v = true;
            }
        }
    }

    /// The id of `node` (or of the node it refers to), if it has one.
    pub fn shared_id(&self, node: &'f Node) -> Option<u64> {
        self.shared
            .get(&(self.resolve(node) as *const Node))
            .copied()
    }

    /// The bounds on depth and work of this build (see `budget`).
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Whether `skvault convert` recorded that it turned the class counts of old
    /// classifier trees into fractions (see `skvault_format::converted`).
    pub fn tree_values_migrated(&self) -> bool {
        skvault_format::converted::has_migration(
            &self.file.manifest().metadata,
            skvault_format::converted::TREE_VALUES_FRACTIONS,
        )
    }

    pub fn root(&self) -> &'f Node {
        self.resolve(&self.file.manifest().root)
    }

    /// The node itself, what a `Ref` points to, or what a `Shared` wraps.
    pub fn resolve(&self, node: &'f Node) -> &'f Node {
        match node {
            Node::Ref(id) => self.ids.get(id).copied().unwrap_or(&Node::None),
            Node::Shared { node, .. } => node,
            other => other,
        }
    }

    pub fn object(&self, node: &'f Node) -> Option<&'f Object> {
        match self.resolve(node) {
            Node::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn entry(&self, index: usize, path: &str) -> Result<&'f skvault_format::ArrayEntry> {
        self.file
            .manifest()
            .arrays
            .get(index)
            .ok_or_else(|| malformed(path, format!("array {index} does not exist")))
    }

    fn shape(&self, index: usize, path: &str) -> Result<Vec<usize>> {
        let e = self.entry(index, path)?;
        e.shape
            .iter()
            .map(|d| usize::try_from(*d).map_err(|_| malformed(path, "array too large")))
            .collect()
    }

    /// The raw bytes of array `index` (digest checked) with its entry.
    /// The raw bytes of array `index`, their digest checked: borrowed from the file when it
    /// is in memory or mapped and the array is stored uncompressed (a forest's node arrays
    /// are most of its file: no copy of them), read into a new buffer otherwise.
    fn raw(
        &self,
        index: usize,
        path: &str,
    ) -> Result<(&'f skvault_format::ArrayEntry, Cow<'f, [u8]>)> {
        let e = self.entry(index, path)?;
        // Charged before decoding: an array reached again through a ref costs again.
        self.budget.charge(
            skvault_format::ArrayEntry::count(&e.shape).unwrap_or(u64::MAX),
            path,
        )?;
        if let Some(read) = self.preread.and_then(|p| p.bytes(index)) {
            return Ok((e, Cow::Borrowed(read?)));
        }
        if let Some(bytes) = self.file.mapped_bytes(index) {
            // Hashes these very bytes (the mapped branch of `verify_array`), unless
            // `verify_ahead` already did.
            if !self.verified.get(index).copied().unwrap_or(false) {
                self.file.verify_array(index)?;
            }
            return Ok((e, Cow::Borrowed(bytes)));
        }
        Ok((e, Cow::Owned(self.file.read_array(index, true)?)))
    }

    /// The dtype and shape of an array node, without reading its bytes.
    pub fn array_meta(&self, node: &'f Node, path: &str) -> Result<(&'f DType, Vec<usize>)> {
        let Node::Array(index) = self.resolve(node) else {
            return Err(malformed(path, "expected an array"));
        };
        Ok((&self.entry(*index, path)?.dtype, self.shape(*index, path)?))
    }

    /// The shape of what [`Ctx::f64_array`] accepts, without decoding an array's bytes:
    /// for checks that need only the shape of a numeric array.
    pub fn numeric_shape(&self, node: &'f Node, path: &str) -> Result<Vec<usize>> {
        match self.resolve(node) {
            Node::Array(_) => {
                let (dtype, shape) = self.array_meta(node, path)?;
                if !is_numeric(dtype) {
                    return Err(malformed(
                        path,
                        format!(
                            "expected a numeric array, found dtype {:?}",
                            dtype.to_json()
                        ),
                    ));
                }
                Ok(shape)
            }
            _ => Ok(self.f64_array(node, path)?.shape),
        }
    }

    /// A numeric array (bool, int, uint, float32/64) as f64 in C order.
    pub fn f64_array(&self, node: &'f Node, path: &str) -> Result<ArrayF64> {
        match self.resolve(node) {
            Node::Array(index) => {
                let shape = self.shape(*index, path)?;
                let (e, bytes) = self.raw(*index, path)?;
                if !is_numeric(&e.dtype) {
                    return Err(malformed(
                        path,
                        format!(
                            "expected a numeric array, found dtype {:?}",
                            e.dtype.to_json()
                        ),
                    ));
                }
                let data = match le_f64s(&e.dtype, &bytes) {
                    Some(data) => data,
                    None => each_element(
                        &e.dtype,
                        &bytes,
                        |v| v.as_f64(),
                        || malformed(path, "undecodable element"),
                    )?,
                };
                let data = match e.order {
                    Order::C => data,
                    Order::F => f_to_c(data, &shape),
                };
                Ok(ArrayF64 { shape, data })
            }
            Node::Scalar { dtype, data } => {
                let v = element::decode(dtype, data)
                    .and_then(Element::as_f64)
                    .ok_or_else(|| malformed(path, "not a number"))?;
                Ok(ArrayF64 {
                    shape: vec![],
                    data: vec![v],
                })
            }
            // An object array of numbers (SimpleImputer's statistics_ for strategy="constant").
            Node::ObjArray { shape, items } => {
                self.budget.charge(items.len() as u64, path)?;
                let data = items
                    .iter()
                    .map(|n| node_float(self.resolve(n)))
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| malformed(path, "expected an object array of numbers"))?;
                let shape = shape
                    .iter()
                    .map(|d| usize::try_from(*d).map_err(|_| malformed(path, "array too large")))
                    .collect::<Result<Vec<usize>>>()?;
                Ok(ArrayF64 { shape, data })
            }
            _ => Err(malformed(path, "expected a numeric array")),
        }
    }

    /// An integer array as i64 in C order.
    pub fn i64_array(&self, node: &'f Node, path: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let Node::Array(index) = self.resolve(node) else {
            return Err(malformed(path, "expected an integer array"));
        };
        let shape = self.shape(*index, path)?;
        let (e, bytes) = self.raw(*index, path)?;
        let integral = matches!(
            e.dtype,
            DType::Scalar {
                kind: Kind::Int | Kind::UInt | Kind::Bool,
                ..
            }
        );
        if !integral {
            return Err(malformed(path, "expected an integer array"));
        }
        let data = each_element(
            &e.dtype,
            &bytes,
            |v| v.as_i64(),
            || malformed(path, "integer out of range"),
        )?;
        let data = match e.order {
            Order::C => data,
            Order::F => f_to_c(data, &shape),
        };
        Ok((shape, data))
    }

    /// A 1-d structured array: its fields, its element count and its raw bytes.
    pub fn records(&self, node: &'f Node, path: &str) -> Result<Records<'f>> {
        let Node::Array(index) = self.resolve(node) else {
            return Err(malformed(path, "expected a structured array"));
        };
        let shape = self.shape(*index, path)?;
        let (e, bytes) = self.raw(*index, path)?;
        let DType::Structured {
            fields, itemsize, ..
        } = &e.dtype
        else {
            return Err(malformed(path, "expected a structured array"));
        };
        let [len] = shape.as_slice() else {
            return Err(malformed(path, "expected a 1-d structured array"));
        };
        let itemsize = usize::try_from(*itemsize).map_err(|_| malformed(path, "bad itemsize"))?;
        Ok(Records {
            fields: fields.clone(),
            itemsize,
            len: *len,
            bytes,
            path: path.to_string(),
        })
    }

    /// The dtype and raw bytes of an array whose elements are text or bytes.
    pub fn raw_array(&self, index: usize, path: &str) -> Result<(DType, Vec<usize>, Vec<u8>)> {
        let shape = self.shape(index, path)?;
        let (e, bytes) = self.raw(index, path)?;
        if e.order == Order::F && shape.len() > 1 {
            return Err(malformed(path, "expected a 1-d array"));
        }
        Ok((e.dtype.clone(), shape, bytes.into_owned()))
    }
}

/// `<i8` and `<f8`: what scikit-learn's node records hold on every platform it supports.
pub(crate) const LE_I8: DType = DType::Scalar {
    order: ByteOrder::Little,
    kind: Kind::Int,
    count: 8,
};
pub(crate) const LE_F8: DType = DType::Scalar {
    order: ByteOrder::Little,
    kind: Kind::Float,
    count: 8,
};

/// The 8 bytes at `at` in `record`, for readers that checked the field lies in every record
/// ([`Records::fields_of`]); zeros where it does not.
#[inline]
pub(crate) fn field8(record: &[u8], at: usize) -> [u8; 8] {
    let mut b = [0u8; 8];
    if let Some(src) = at.checked_add(8).and_then(|end| record.get(at..end)) {
        b.copy_from_slice(src);
    }
    b
}

/// A structured array read whole (or borrowed from a mapped file); columns are extracted by
/// field name.
pub(crate) struct Records<'b> {
    fields: Vec<Field>,
    itemsize: usize,
    pub len: usize,
    bytes: Cow<'b, [u8]>,
    path: String,
}

impl Records<'_> {
    /// Records of `itemsize` bytes with `fields`, as many as `bytes` holds whole.
    #[cfg(test)]
    pub(crate) fn for_tests(
        fields: Vec<Field>,
        itemsize: usize,
        bytes: Vec<u8>,
    ) -> Records<'static> {
        Records {
            fields,
            itemsize,
            len: bytes.len() / itemsize,
            bytes: Cow::Owned(bytes),
            path: "/t".into(),
        }
    }

    /// The field called `name`: its dtype, its offset in a record and its size.
    fn numeric_field(&self, name: &str) -> Result<(&DType, usize, usize)> {
        let field = self
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| malformed(&self.path, format!("no field {name:?}")))?;
        let offset = usize::try_from(field.offset).map_err(|_| malformed(&self.path, "offset"))?;
        let size = usize::try_from(field.dtype.itemsize()).unwrap_or(0);
        if !is_numeric(&field.dtype) || self.itemsize == 0 {
            return Err(malformed(
                &self.path,
                format!("field {name:?} is not numeric"),
            ));
        }
        Ok((&field.dtype, offset, size))
    }

    /// The bytes of field `name` (`size` bytes at `offset`) in each record, in order;
    /// `None` for a record that the bytes do not hold whole.
    fn field_bytes(&self, offset: usize, size: usize) -> impl Iterator<Item = Option<&[u8]>> {
        (0..self.len).map(move |i| {
            let start = i.checked_mul(self.itemsize)?.checked_add(offset)?;
            self.bytes.get(start..start.checked_add(size)?)
        })
    }

    /// Field `name` of every record converted by `convert` (`None`: not `what`). Decoded
    /// straight into the output: tree node arrays hold hundreds of thousands of records,
    /// and this runs for several of their fields on every load.
    fn values<T>(
        &self,
        name: &str,
        what: &str,
        convert: impl Fn(Element<'_>) -> Option<T>,
    ) -> Result<Vec<T>> {
        let (dtype, offset, size) = self.numeric_field(name)?;
        let truncated = || malformed(&self.path, format!("field {name:?} is truncated"));
        // No more records than the bytes hold, whatever `len` says.
        let mut out = Vec::with_capacity(self.len.min(self.bytes.len() / self.itemsize));
        for bytes in self.field_bytes(offset, size) {
            let value = bytes
                .and_then(|b| element::decode(dtype, b))
                .ok_or_else(truncated)?;
            out.push(
                convert(value).ok_or_else(|| {
                    malformed(&self.path, format!("field {name:?} is not {what}"))
                })?,
            );
        }
        Ok(out)
    }

    /// Field `name` as 8 little-endian bytes per record, when that is its dtype (`<i8`,
    /// `<f8`: what scikit-learn's node records hold on every platform it supports).
    fn le8<T>(&self, name: &str, kind: Kind, from: fn([u8; 8]) -> T) -> Option<Result<Vec<T>>> {
        let (dtype, offset, _) = self.numeric_field(name).ok()?;
        let wanted = DType::Scalar {
            order: ByteOrder::Little,
            kind,
            count: 8,
        };
        if *dtype != wanted {
            return None;
        }
        // When every one of the `len` records is whole in the bytes and holds the field,
        // record by record over exact chunks: no per-record offset arithmetic or bounds
        // checks, and one allocation of the right size. A tree's guard reads three columns
        // of every node on each load. Anything else takes the checked path below, which
        // reports what is truncated.
        let fits = offset
            .checked_add(8)
            .is_some_and(|end| end <= self.itemsize);
        let whole = self
            .len
            .checked_mul(self.itemsize)
            .and_then(|n| self.bytes.get(..n));
        if let (true, Some(whole)) = (fits, whole) {
            let out = whole
                .chunks_exact(self.itemsize)
                .map(|record| from(field8(record, offset)))
                .collect();
            return Some(Ok(out));
        }
        Some(
            self.field_bytes(offset, 8)
                .map(|b| {
                    b.and_then(|b| b.try_into().ok()).map(from).ok_or_else(|| {
                        malformed(&self.path, format!("field {name:?} is truncated"))
                    })
                })
                .collect(),
        )
    }

    /// The records' bytes as whole records of `itemsize` bytes, with the offsets of
    /// `names` in each, when every one of the `len` records is there and each named field is
    /// a little-endian 8-byte integer (`<i8`, what scikit-learn's node records hold on every
    /// platform it supports): for readers that take several fields of every record in one
    /// pass instead of a column at a time. `None` otherwise (then read columns).
    pub fn le_i64_fields<const N: usize>(
        &self,
        names: [&str; N],
    ) -> Option<(&[u8], usize, [usize; N])> {
        self.fields_of(names.map(|name| (name, LE_I8)))
    }

    /// [`Records::le_i64_fields`] for fields of any dtypes: each named field must have
    /// exactly the dtype given with it.
    pub fn fields_of<const N: usize>(
        &self,
        fields: [(&str, DType); N],
    ) -> Option<(&[u8], usize, [usize; N])> {
        let mut offsets = [0usize; N];
        for ((name, wanted), slot) in fields.iter().zip(offsets.iter_mut()) {
            let (dtype, offset, size) = self.numeric_field(name).ok()?;
            if dtype != wanted || offset.checked_add(size)? > self.itemsize {
                return None;
            }
            *slot = offset;
        }
        let whole = self.bytes.get(..self.len.checked_mul(self.itemsize)?)?;
        Some((whole, self.itemsize, offsets))
    }

    pub fn i64_column(&self, name: &str) -> Result<Vec<i64>> {
        if let Some(fast) = self.le8(name, Kind::Int, i64::from_le_bytes) {
            return fast;
        }
        self.values(name, "integral", |v| v.as_i64())
    }

    pub fn f64_column(&self, name: &str) -> Result<Vec<f64>> {
        if let Some(fast) = self.le8(name, Kind::Float, f64::from_le_bytes) {
            return fast;
        }
        self.values(name, "numeric", |v| v.as_f64())
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }
}

/// An object of the tree with its path, for reading attributes.
pub(crate) struct Obj<'c, 'f> {
    pub ctx: &'c Ctx<'f>,
    pub obj: &'f Object,
    pub path: String,
}

impl<'c, 'f> Obj<'c, 'f> {
    pub fn new(ctx: &'c Ctx<'f>, obj: &'f Object, path: String) -> Self {
        Obj { ctx, obj, path }
    }

    pub fn class(&self) -> &'f str {
        &self.obj.class
    }

    pub fn sub(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// The attribute `name` of the state dict, resolved.
    pub fn attr(&self, name: &str) -> Option<&'f Node> {
        let Some(Node::Dict(items)) = self.obj.state.as_ref().map(|s| self.ctx.resolve(s)) else {
            return None;
        };
        self.ctx.budget.note(items.len());
        items.iter().find_map(|(k, v)| match k {
            Node::Str(k) if k == name => Some(self.ctx.resolve(v)),
            _ => None,
        })
    }

    /// Whether the state has an attribute that `fit` sets: scikit-learn's `check_is_fitted`
    /// rule, a name ending with `_` that does not start with `__`.
    pub fn has_fitted_attribute(&self) -> bool {
        let Some(Node::Dict(items)) = self.obj.state.as_ref().map(|s| self.ctx.resolve(s)) else {
            return false;
        };
        items
            .iter()
            .any(|(k, _)| matches!(k, Node::Str(k) if k.ends_with('_') && !k.starts_with("__")))
    }

    pub fn req(&self, name: &str) -> Result<&'f Node> {
        self.attr(name)
            .ok_or_else(|| malformed(&self.path, format!("missing attribute {name:?}")))
    }

    /// An attribute that is absent or `None`.
    pub fn is_none(&self, name: &str) -> bool {
        matches!(self.attr(name), None | Some(Node::None))
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        node_int(self.req(name)?).ok_or_else(|| malformed(&self.sub(name), "expected an integer"))
    }

    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self.int(name)?;
        usize::try_from(v)
            .map_err(|_| malformed(&self.sub(name), "expected a non-negative integer"))
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        node_float(self.req(name)?).ok_or_else(|| malformed(&self.sub(name), "expected a number"))
    }

    pub fn str(&self, name: &str) -> Result<&'f str> {
        match self.req(name)? {
            Node::Str(s) => Ok(s),
            _ => Err(malformed(&self.sub(name), "expected a string")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.req(name)? {
            Node::Bool(b) => Ok(*b),
            Node::Int(i) => Ok(*i != 0),
            _ => Err(malformed(&self.sub(name), "expected a boolean")),
        }
    }

    pub fn f64_array(&self, name: &str) -> Result<ArrayF64> {
        self.ctx.f64_array(self.req(name)?, &self.sub(name))
    }

    /// The shape of a numeric array attribute (see [`Ctx::numeric_shape`]).
    pub fn numeric_shape(&self, name: &str) -> Result<Vec<usize>> {
        self.ctx.numeric_shape(self.req(name)?, &self.sub(name))
    }

    /// A float array of exactly `shape`.
    pub fn f64_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let a = self.f64_array(name)?;
        if a.shape != shape {
            return Err(malformed(
                &self.sub(name),
                format!("shape {:?}, expected {shape:?}", a.shape),
            ));
        }
        Ok(a.data)
    }

    /// A child object, resolved.
    pub fn object(&self, name: &str) -> Result<&'f Object> {
        self.ctx
            .object(self.req(name)?)
            .ok_or_else(|| malformed(&self.sub(name), "expected an object"))
    }

    /// The items of a list or tuple attribute, resolved.
    pub fn seq(&self, name: &str) -> Result<Vec<&'f Node>> {
        seq_items(self.ctx, self.req(name)?)
            .ok_or_else(|| malformed(&self.sub(name), "expected a list or tuple"))
    }
}

pub(crate) fn seq_items<'f>(ctx: &Ctx<'f>, node: &'f Node) -> Option<Vec<&'f Node>> {
    let resolved = ctx.resolve(node);
    if let Node::List(items) | Node::Tuple(items) | Node::ObjArray { items, .. } = resolved {
        ctx.budget.note(items.len());
    }
    match resolved {
        Node::List(items) | Node::Tuple(items) => {
            Some(items.iter().map(|n| ctx.resolve(n)).collect())
        }
        Node::ObjArray { shape, items } if shape.len() == 1 => {
            Some(items.iter().map(|n| ctx.resolve(n)).collect())
        }
        _ => None,
    }
}

/// A Python int, bool or numpy integer scalar.
pub(crate) fn node_int(node: &Node) -> Option<i64> {
    match node {
        Node::Int(i) => Some(*i),
        Node::Bool(b) => Some(i64::from(*b)),
        Node::Scalar { dtype, data } => element::decode(dtype, data).and_then(Element::as_i64),
        _ => None,
    }
}

/// A plain node as a frame value: text, a number (NaN as [`skvault_frame::Value::NaN`]), a
/// boolean or None; `None` for anything else.
pub(crate) fn node_value(node: &Node) -> Option<skvault_frame::Value> {
    use skvault_frame::Value;
    match node {
        Node::None => Some(Value::None),
        Node::Str(s) => Some(Value::Str(s.clone())),
        Node::Bool(b) => Some(Value::Bool(*b)),
        other => node_float(other).map(Value::number),
    }
}

/// A Python float or int, or a numpy numeric scalar.
pub(crate) fn node_float(node: &Node) -> Option<f64> {
    match node {
        Node::Float(x) => Some(*x),
        Node::Int(i) => Some(*i as f64),
        Node::Bool(b) => Some(f64::from(u8::from(*b))),
        Node::Scalar { dtype, data } => element::decode(dtype, data).and_then(Element::as_f64),
        _ => None,
    }
}

/// Every element of `bytes` (of `dtype`) decoded and converted by `convert`; `error` for the
/// first that cannot be.
fn each_element<T>(
    dtype: &DType,
    bytes: &[u8],
    convert: impl Fn(Element<'_>) -> Option<T>,
    error: impl Fn() -> crate::error::InferError,
) -> Result<Vec<T>> {
    let size = usize::try_from(dtype.itemsize()).unwrap_or(1).max(1);
    bytes
        .chunks_exact(size)
        .map(|chunk| {
            element::decode(dtype, chunk)
                .and_then(&convert)
                .ok_or_else(&error)
        })
        .collect()
}

/// The elements of `bytes` as f64 when `dtype` is a little-endian `<f8`, `<f4`, `<i8` or `<i4`
/// (every array scikit-learn writes on the platforms it supports), each type in a loop of its
/// own; `None` for any other dtype. The general decoder matches the dtype for every element:
/// on a 500-tree forest that was a tenth of a native load.
fn le_f64s(dtype: &DType, bytes: &[u8]) -> Option<Vec<f64>> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    let DType::Scalar {
        order: ByteOrder::Little,
        kind,
        count,
    } = dtype
    else {
        return None;
    };
    Some(match (kind, count) {
        (Kind::Float, 8) => each(bytes, f64::from_le_bytes),
        (Kind::Float, 4) => each(bytes, |a| f64::from(f32::from_le_bytes(a))),
        (Kind::Int, 8) => each(bytes, |a| i64::from_le_bytes(a) as f64),
        (Kind::Int, 4) => each(bytes, |a| f64::from(i32::from_le_bytes(a))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scalar(order: ByteOrder, kind: Kind, count: u64) -> DType {
        DType::Scalar { order, kind, count }
    }

    /// The typed loops give bit for bit what the general decoder gives, NaN payloads, -0.0,
    /// extreme integers and a trailing partial element included; other dtypes are left to it.
    #[test]
    fn little_endian_fast_paths_match_the_general_decoder() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend(f64::NAN.to_le_bytes());
        bytes.extend(f64::from_bits(0x7ff0_0000_0000_0001).to_le_bytes());
        bytes.extend((-0.0f64).to_le_bytes());
        bytes.extend(i64::MIN.to_le_bytes());
        bytes.extend(f32::from_bits(0x7fc0_1234).to_le_bytes());
        bytes.extend([0xff; 4]);
        bytes.push(7); // not a whole element of any of the dtypes
        for (kind, count) in [
            (Kind::Float, 8),
            (Kind::Float, 4),
            (Kind::Int, 8),
            (Kind::Int, 4),
        ] {
            let dtype = scalar(ByteOrder::Little, kind, count);
            let fast = le_f64s(&dtype, &bytes).unwrap();
            let slow: Vec<f64> = bytes
                .chunks_exact(count as usize)
                .map(|c| {
                    element::decode(&dtype, c)
                        .and_then(Element::as_f64)
                        .unwrap()
                })
                .collect();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow), "{kind:?} {count}");
        }
        for other in [
            scalar(ByteOrder::Big, Kind::Float, 8),
            scalar(ByteOrder::Little, Kind::UInt, 8),
            scalar(ByteOrder::Little, Kind::Int, 2),
            scalar(ByteOrder::NotApplicable, Kind::Bool, 1),
        ] {
            assert!(le_f64s(&other, &bytes).is_none(), "{other:?}");
        }
    }

    /// Records of (a: `<i8`, b: `>i8`, c: `<f8`, d: `<i4`, e: `>f8`), the values of row r
    /// being r - 2 (as integers or floats), all in 32 bytes per record.
    fn records(rows: i64) -> Records<'static> {
        let fields = [
            ("a", scalar(ByteOrder::Little, Kind::Int, 8), 0),
            ("b", scalar(ByteOrder::Big, Kind::Int, 8), 8),
            ("c", scalar(ByteOrder::Little, Kind::Float, 8), 16),
            ("d", scalar(ByteOrder::Little, Kind::Int, 4), 24),
            ("e", scalar(ByteOrder::Big, Kind::Float, 4), 28),
        ];
        let mut bytes = Vec::new();
        for r in 0..rows {
            let v = r - 2;
            bytes.extend_from_slice(&v.to_le_bytes());
            bytes.extend_from_slice(&v.to_be_bytes());
            bytes.extend_from_slice(&(v as f64).to_le_bytes());
            bytes.extend_from_slice(&(v as i32).to_le_bytes());
            bytes.extend_from_slice(&(v as f32).to_be_bytes());
        }
        let DType::Structured { fields, .. } =
            skvault_format::testing::structured(fields.into(), 32)
        else {
            unreachable!("testing::structured makes a structured dtype")
        };
        Records {
            fields,
            itemsize: 32,
            len: rows as usize,
            bytes: Cow::Owned(bytes),
            path: "/t".into(),
        }
    }

    #[test]
    fn columns_read_the_same_values_in_every_byte_order_and_width() {
        let r = records(5);
        let want: Vec<i64> = (-2..3).collect();
        for name in ["a", "b", "d"] {
            assert_eq!(r.i64_column(name).unwrap(), want, "{name}");
        }
        let want_f: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        for name in ["a", "b", "c", "d", "e"] {
            assert_eq!(r.f64_column(name).unwrap(), want_f, "{name}");
        }
        let err = r.i64_column("c").unwrap_err().to_string();
        assert!(err.contains("field \"c\" is not integral"), "{err}");
        assert!(r
            .i64_column("z")
            .unwrap_err()
            .to_string()
            .contains("no field \"z\""));
    }

    #[test]
    fn records_the_bytes_do_not_hold_are_truncated_errors() {
        let mut r = records(3);
        r.bytes.to_mut().truncate(2 * 32 + 8); // row 2 keeps its first field only
        assert_eq!(r.i64_column("a").unwrap(), vec![-2, -1, 0]);
        for name in ["b", "c"] {
            let err = r.f64_column(name).unwrap_err().to_string();
            assert!(
                err.contains(&format!("field \"{name}\" is truncated")),
                "{err}"
            );
        }
        r.len = usize::MAX / 8; // a length whose offsets overflow, and no allocation for it
        assert!(r.i64_column("a").is_err());
        assert!(r.f64_column("e").is_err());
    }
}
