//! Reading fitted state for the card's pictures: attributes of objects, numeric arrays and
//! the columns of structured arrays (a tree's nodes), from the file alone.
//!
//! Everything here is best effort over untrusted data: a value of an unexpected kind,
//! shape or size gives `None` (the card then leaves the picture out and says so), never a
//! panic, and nothing is allocated from a declared size before the bytes are read.

use std::collections::HashMap;

use skvault_format::dtype::Field;
use skvault_format::element::{self, Element};
use skvault_format::{DType, Node, Object, Order, SkvFile};

/// The file and the table of shared nodes that `Ref`s point into.
pub struct Ctx<'f> {
    pub file: &'f SkvFile,
    ids: HashMap<u64, &'f Node>,
}

impl<'f> Ctx<'f> {
    pub fn new(file: &'f SkvFile) -> Self {
        let mut ids = HashMap::new();
        for tree in file.manifest().trees() {
            collect_ids(tree, &mut ids, 0);
        }
        Ctx { file, ids }
    }

    /// The node itself, through `Shared` wrappers and `Ref`s (a bounded number of hops).
    pub fn resolve(&self, mut node: &'f Node) -> &'f Node {
        for _ in 0..64 {
            match node {
                Node::Shared { node: inner, .. } => node = inner,
                Node::Ref(id) => match self.ids.get(id) {
                    Some(target) => node = target,
                    None => return node,
                },
                _ => return node,
            }
        }
        node
    }

    pub fn object(&self, node: &'f Node) -> Option<&'f Object> {
        match self.resolve(node) {
            Node::Object(obj) => Some(obj),
            _ => None,
        }
    }

    /// `obj.<name>` from the object's state dict.
    pub fn attr(&self, obj: &'f Object, name: &str) -> Option<&'f Node> {
        let Some(Node::Dict(items)) = obj.state.as_ref().map(|s| self.resolve(s)) else {
            return None;
        };
        items.iter().find_map(|(k, v)| match self.resolve(k) {
            Node::Str(s) if s == name => Some(self.resolve(v)),
            _ => None,
        })
    }

    pub fn int(&self, node: &'f Node) -> Option<i64> {
        match self.resolve(node) {
            Node::Int(i) => Some(*i),
            Node::Scalar { dtype, data } => element::decode(dtype, data)?.as_i64(),
            _ => None,
        }
    }

    /// The items of a list, tuple or object array.
    pub fn items(&self, node: &'f Node) -> Option<&'f [Node]> {
        match self.resolve(node) {
            Node::List(items) | Node::Tuple(items) => Some(items),
            Node::ObjArray { items, .. } => Some(items),
            _ => None,
        }
    }

    /// A numeric array as f64 in C order, with its shape.
    pub fn f64_array(&self, node: &'f Node) -> Option<(Vec<usize>, Vec<f64>)> {
        let Node::Array(index) = self.resolve(node) else {
            return None;
        };
        let entry = self.file.manifest().arrays.get(*index)?;
        let shape: Vec<usize> = entry
            .shape
            .iter()
            .map(|d| usize::try_from(*d).ok())
            .collect::<Option<_>>()?;
        let bytes = self.file.read_array(*index, true).ok()?;
        let size = usize::try_from(entry.dtype.itemsize()).ok()?;
        if size == 0 || bytes.len() % size != 0 {
            return None;
        }
        let data: Vec<f64> = bytes
            .chunks_exact(size)
            .map(|b| element::decode(&entry.dtype, b).and_then(Element::as_f64))
            .collect::<Option<_>>()?;
        if shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d)) != Some(data.len()) {
            return None;
        }
        Some(match entry.order {
            Order::F if shape.len() == 2 => {
                let (rows, cols) = (shape[0], shape[1]);
                let mut c = vec![0.0; data.len()];
                for (i, v) in data.iter().enumerate() {
                    // Fortran order: index i is (i % rows, i / rows).
                    if let Some(slot) = c.get_mut((i % rows) * cols + i / rows) {
                        *slot = *v;
                    }
                }
                (shape, c)
            }
            _ => (shape, data),
        })
    }

    /// A 1-d structured array (a tree's nodes), read whole.
    pub fn records(&self, node: &'f Node) -> Option<Records> {
        let Node::Array(index) = self.resolve(node) else {
            return None;
        };
        let entry = self.file.manifest().arrays.get(*index)?;
        let DType::Structured {
            fields, itemsize, ..
        } = &entry.dtype
        else {
            return None;
        };
        let [len] = entry.shape.as_slice() else {
            return None;
        };
        let bytes = self.file.read_array(*index, true).ok()?;
        let itemsize = usize::try_from(*itemsize).ok()?;
        let len = usize::try_from(*len).ok()?;
        if itemsize == 0 || len.checked_mul(itemsize) != Some(bytes.len()) {
            return None;
        }
        Some(Records {
            fields: fields.clone(),
            itemsize,
            len,
            bytes,
        })
    }
}

fn collect_ids<'f>(node: &'f Node, ids: &mut HashMap<u64, &'f Node>, depth: usize) {
    // The reader caps nesting already; the bound keeps this walk safe on its own.
    if depth > 512 {
        return;
    }
    if let Node::Shared { id, node: inner } = node {
        ids.insert(*id, inner);
    }
    let mut each = |n: &'f Node| collect_ids(n, ids, depth + 1);
    match node {
        Node::Shared { node: inner, .. } => each(inner),
        Node::List(items)
        | Node::Tuple(items)
        | Node::Set(items)
        | Node::FrozenSet(items)
        | Node::ObjArray { items, .. } => items.iter().for_each(each),
        Node::Dict(items) => {
            for (k, v) in items {
                each(k);
                each(v);
            }
        }
        Node::Object(obj) => {
            if let Some(state) = &obj.state {
                each(state);
            }
            match &obj.construct {
                skvault_format::Construct::New { args, .. }
                | skvault_format::Construct::Call { args } => args.iter().for_each(&mut each),
                skvault_format::Construct::Base { value, .. } => each(value),
            }
            obj.list_items.iter().for_each(&mut each);
            for (k, v) in &obj.dict_items {
                each(k);
                each(v);
            }
        }
        _ => {}
    }
}

/// A structured array; columns are read by field name.
pub struct Records {
    fields: Vec<Field>,
    itemsize: usize,
    pub len: usize,
    bytes: Vec<u8>,
}

impl Records {
    pub fn f64_column(&self, name: &str) -> Option<Vec<f64>> {
        self.column(name, |e| e.as_f64())
    }

    pub fn i64_column(&self, name: &str) -> Option<Vec<i64>> {
        self.column(name, |e| e.as_i64())
    }

    /// Field `name` of every record, each decoded by its dtype and converted by `get`.
    fn column<T>(
        &self,
        name: &str,
        get: impl Fn(element::Element<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let field = self.fields.iter().find(|f| f.name == name)?;
        let offset = usize::try_from(field.offset).ok()?;
        let size = usize::try_from(field.dtype.itemsize()).ok()?;
        (0..self.len)
            .map(|i| {
                let start = i.checked_mul(self.itemsize)?.checked_add(offset)?;
                let b = self.bytes.get(start..start.checked_add(size)?)?;
                get(element::decode(&field.dtype, b)?)
            })
            .collect()
    }
}
