//! What the interpreter builds: small copyable values and an arena of items with identity.
//!
//! Every container or object the pickle creates is one arena item, and the stack and memo hold
//! its index: a memoized object fetched twice is the same index twice, which is how shared
//! identity (and cycles) survive into the object tree. Nothing here is ever called.

use std::borrow::Cow;

use crate::error::{PickleError, Result};

/// A value on the stack or in a container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An arena item.
    Item(u32),
}

/// An integer outside the i64 range.
#[derive(Debug, Clone)]
pub enum BigInt<'a> {
    /// Little-endian two's complement bytes (LONG1 / LONG4).
    Le(&'a [u8]),
    /// A canonical decimal string (protocol-0 INT / LONG).
    Dec(String),
}

/// How an instance was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `callable(*args)`.
    Reduce,
    /// `cls.__new__(cls, *args)`.
    NewObj,
    /// `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// `cls(*args)`, or `cls.__new__(cls)` without arguments (INST, protocol 0).
    Inst,
    /// Like `Inst`, with the class taken from the stack (OBJ, protocol 1).
    Obj,
}

impl How {
    pub fn opcode(self) -> &'static str {
        match self {
            How::Reduce => "REDUCE",
            How::NewObj => "NEWOBJ",
            How::NewObjEx => "NEWOBJ_EX",
            How::Inst => "INST",
            How::Obj => "OBJ",
        }
    }
}

/// The result of REDUCE, NEWOBJ(_EX), INST or OBJ, and what later opcodes did to it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub how: How,
    /// The callable or class.
    pub callable: V,
    /// A tuple item (or, for REDUCE, whatever the stream gave).
    pub args: V,
    /// NEWOBJ_EX's keyword arguments.
    pub kwargs: Option<V>,
    /// BUILD states, in order.
    pub states: Vec<V>,
    /// APPEND / APPENDS items.
    pub list_items: Vec<V>,
    /// SETITEM / SETITEMS pairs.
    pub dict_items: Vec<(V, V)>,
    /// ADDITEMS items.
    pub set_items: Vec<V>,
    /// Where the creating opcode is.
    pub offset: u64,
}

/// A numpy array whose bytes joblib stored raw after its `NumpyArrayWrapper`.
#[derive(Debug, Clone)]
pub struct RawArray<'a> {
    /// The wrapper instance.
    pub wrapper: u32,
    pub dtype: V,
    pub shape: Vec<u64>,
    pub fortran: bool,
    pub data: &'a [u8],
}

#[derive(Debug, Clone)]
pub enum Item<'a> {
    BigInt(BigInt<'a>),
    Str(Cow<'a, str>),
    /// A str with lone surrogates, as UTF-8 with `surrogatepass`.
    StrSurrogates(Cow<'a, [u8]>),
    Bytes(Cow<'a, [u8]>),
    ByteArray(Cow<'a, [u8]>),
    List(Vec<V>),
    Tuple(Vec<V>),
    Dict(Vec<(V, V)>),
    Set(Vec<V>),
    FrozenSet(Vec<V>),
    Global(Global),
    Instance(Box<Instance>),
    Array(Box<RawArray<'a>>),
}

impl Item<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Item::BigInt(_) => "int",
            Item::Str(_) | Item::StrSurrogates(_) => "str",
            Item::Bytes(_) => "bytes",
            Item::ByteArray(_) => "bytearray",
            Item::List(_) => "list",
            Item::Tuple(_) => "tuple",
            Item::Dict(_) => "dict",
            Item::Set(_) => "set",
            Item::FrozenSet(_) => "frozenset",
            Item::Global(_) => "global",
            Item::Instance(_) => "object",
            Item::Array(_) => "array",
        }
    }
}

/// A global as the unpickler resolves it: `module` imported, then `name` looked up in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Global {
    pub module: String,
    pub name: String,
}

impl Global {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// Approximate bytes charged per item and per stored value (see `Limits::max_alloc`).
pub const ITEM_COST: u64 = 64;
pub const VALUE_COST: u64 = 16;

/// All items of one file (nested joblib pickles included).
#[derive(Debug, Default)]
pub struct Arena<'a> {
    pub items: Vec<Item<'a>>,
    /// The one empty tuple (CPython's `()` is a singleton).
    pub empty_tuple: Option<V>,
    /// numpy's view of dtype items, recorded at their BUILD (and for joblib arrays).
    pub dtype_info: std::collections::HashMap<u32, crate::dtype_facts::Facts>,
    /// dtypes that a built dtype refers to (fields, sub-array base): numpy's pickler never
    /// changes one afterwards.
    pub frozen_dtypes: std::collections::HashSet<u32>,
    allocated: u64,
    max_alloc: u64,
}

impl<'a> Arena<'a> {
    pub fn new(max_alloc: u64) -> Self {
        Arena {
            items: Vec::new(),
            empty_tuple: None,
            dtype_info: std::collections::HashMap::new(),
            frozen_dtypes: std::collections::HashSet::new(),
            allocated: 0,
            max_alloc,
        }
    }

    /// Accounts for `bytes` more memory, failing past the limit.
    pub fn charge(&mut self, bytes: u64) -> Result<()> {
        self.allocated = self.allocated.saturating_add(bytes);
        if self.allocated > self.max_alloc {
            return Err(PickleError::LimitExceeded {
                what: "memory for pickle values",
                limit: self.max_alloc,
            });
        }
        Ok(())
    }

    pub fn push(&mut self, item: Item<'a>) -> Result<V> {
        self.charge(ITEM_COST)?;
        let index = u32::try_from(self.items.len()).map_err(|_| PickleError::LimitExceeded {
            what: "number of pickle objects",
            limit: u64::from(u32::MAX),
        })?;
        self.items.push(item);
        Ok(V::Item(index))
    }

    pub fn get(&self, v: V) -> Option<&Item<'a>> {
        match v {
            V::Item(i) => self.items.get(i as usize),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, v: V) -> Option<&mut Item<'a>> {
        match v {
            V::Item(i) => self.items.get_mut(i as usize),
            _ => None,
        }
    }

    /// The global `v` is, if it is one.
    pub fn global(&self, v: V) -> Option<&Global> {
        match self.get(v) {
            Some(Item::Global(g)) => Some(g),
            _ => None,
        }
    }

    pub fn instance(&self, v: V) -> Option<&Instance> {
        match self.get(v) {
            Some(Item::Instance(inst)) => Some(inst),
            _ => None,
        }
    }

    pub fn str(&self, v: V) -> Option<&str> {
        match self.get(v) {
            Some(Item::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn tuple(&self, v: V) -> Option<&[V]> {
        match self.get(v) {
            Some(Item::Tuple(items)) => Some(items),
            _ => None,
        }
    }

    /// A non-negative integer that fits in u64 (bools count, as in Python).
    pub fn u64(&self, v: V) -> Option<u64> {
        match v {
            V::Int(i) => u64::try_from(i).ok(),
            V::Bool(b) => Some(u64::from(b)),
            _ => None,
        }
    }

    /// The class an instance was created as, when the stream names it directly: the callable
    /// or class itself, or the class argument of the `copyreg` helpers.
    pub fn instance_class(&self, inst: &Instance) -> Option<&Global> {
        let callable = self.global(inst.callable)?;
        let helper = inst.how == How::Reduce
            && callable.module == "copyreg"
            && matches!(
                callable.name.as_str(),
                "_reconstructor" | "__newobj__" | "__newobj_ex__"
            );
        if helper {
            let first = *self.tuple(inst.args)?.first()?;
            self.global(first)
        } else {
            Some(callable)
        }
    }
}
