//! Interpreter values -> the skvault object tree and its arrays.
//!
//! The tree must be the one `skvault.dump` writes for the live object (the binding crate's
//! `walk.rs`): objects with identity (containers, arrays, instances) are visited depth first in
//! the same order (construction arguments, state, list items, dict items), the first visit
//! declares the object and later ones refer to it, and declarations nothing refers to are
//! dropped. Values without identity (str, bytes, numbers, dtypes, numpy scalars, globals) are
//! copied. Reduce callables are turned into "create this class" exactly as `walk.rs` does;
//! anything else is refused with the name of the callable.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

mod ids;
mod objects;

pub(crate) use skvault_format::node::sorted_if_plain;

use skvault_format::node::check_qualified_name;
use skvault_format::{ArrayInput, Construct, DType, Node, Order};

use crate::error::{PickleError, Result};
use crate::limits::Limits;
use crate::text;
use crate::value::{Arena, BigInt, Global, How, Instance, Item, V};

/// An array of the converted tree: `Node::Array(i)` is `arrays[i]`.
#[derive(Debug, Clone)]
pub struct ConvertedArray<'a> {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub order: Order,
    /// Borrowed from the pickle stream wherever the stream holds the bytes as they are.
    pub data: Cow<'a, [u8]>,
}

/// A converted pickle: the object tree and its arrays, ready for `skvault_format::prepare`.
#[derive(Debug, Clone)]
pub struct Converted<'a> {
    pub root: Node,
    pub arrays: Vec<ConvertedArray<'a>>,
}

impl Converted<'_> {
    /// The arrays as the writer takes them.
    pub fn array_inputs(&self) -> Vec<ArrayInput<'_>> {
        self.arrays
            .iter()
            .map(|a| ArrayInput {
                dtype: a.dtype.clone(),
                shape: a.shape.clone(),
                order: a.order,
                data: &a.data,
            })
            .collect()
    }
}

pub(crate) struct Lowerer<'p, 'a> {
    pub arena: &'p Arena<'a>,
    pub arrays: Vec<ConvertedArray<'a>>,
    declared: HashSet<u32>,
    unbound: HashSet<u32>,
    used: HashSet<u64>,
    depth: usize,
    max_depth: usize,
    spent: u64,
    budget: u64,
    path: Vec<String>,
    dtypes: HashMap<u32, crate::dtype::NpDtype>,
}

/// Converts the value `root` of `arena`.
pub(crate) fn lower<'a>(arena: &Arena<'a>, root: V, limits: &Limits) -> Result<Converted<'a>> {
    let mut l = Lowerer {
        arena,
        arrays: Vec::new(),
        declared: HashSet::new(),
        unbound: HashSet::new(),
        used: HashSet::new(),
        depth: 0,
        max_depth: limits.max_depth,
        spent: 0,
        budget: limits.max_alloc,
        path: Vec::new(),
        dtypes: HashMap::new(),
    };
    let tree = l.lower(root)?;
    let mut ids = HashMap::new();
    let root = ids::renumber(tree, &l.used, &mut ids);
    Ok(Converted {
        root,
        arrays: l.arrays,
    })
}

impl<'p, 'a> Lowerer<'p, 'a> {
    pub fn path(&self) -> String {
        format!("/{}", self.path.join("/"))
    }

    pub fn fail(&self, message: impl Into<String>) -> PickleError {
        PickleError::Convert {
            path: self.path(),
            message: message.into(),
        }
    }

    pub fn charge(&mut self, bytes: usize) -> Result<()> {
        self.spent = self.spent.saturating_add(64 + bytes as u64);
        if self.spent > self.budget {
            return Err(PickleError::LimitExceeded {
                what: "memory for the converted tree",
                limit: self.budget,
            });
        }
        Ok(())
    }

    pub fn lower(&mut self, v: V) -> Result<Node> {
        self.charge(0)?;
        match v {
            V::None => Ok(Node::None),
            V::Bool(b) => Ok(Node::Bool(b)),
            V::Int(i) => Ok(Node::Int(i)),
            V::Float(x) => Ok(Node::Float(x)),
            V::Item(i) => {
                if self.depth >= self.max_depth {
                    return Err(self.fail(format!(
                        "the object graph nests deeper than {} levels",
                        self.max_depth
                    )));
                }
                self.depth += 1;
                let node = self.item(i);
                self.depth -= 1;
                node
            }
        }
    }

    /// The dtype `v` (not a field), decoded once per item.
    pub fn dtype(&mut self, v: V) -> Result<crate::dtype::NpDtype> {
        if let Some(dt) = match v {
            V::Item(i) => self.dtypes.get(&i),
            _ => None,
        } {
            return Ok(dt.clone());
        }
        let dt = crate::dtype::decode(self.arena, v, false).map_err(|e| self.fail(e))?;
        if let V::Item(i) = v {
            self.dtypes.insert(i, dt.clone());
        }
        Ok(dt)
    }

    pub fn all(&mut self, items: &[V]) -> Result<Vec<Node>> {
        items.iter().map(|v| self.lower(*v)).collect()
    }

    fn pairs(&mut self, pairs: &[(V, V)]) -> Result<Vec<(Node, Node)>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = self.lower(*k)?;
            let named: Option<String> = self.arena.str(*k).map(|s| s.chars().take(64).collect());
            let pushed = named.is_some();
            if let Some(name) = named {
                self.path.push(name);
            }
            let value = self.lower(*v);
            if pushed {
                self.path.pop();
            }
            out.push((key, value?));
        }
        Ok(out)
    }

    /// Lowers with `i` marked as not yet constructed: a reference back to it is a cycle that
    /// no loader can rebuild (through a tuple, a frozenset or constructor arguments).
    pub fn unbound<T>(&mut self, i: u32, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.unbound.insert(i);
        let out = f(self);
        self.unbound.remove(&i);
        out
    }

    fn item(&mut self, i: u32) -> Result<Node> {
        let arena = self.arena;
        let item = arena
            .items
            .get(i as usize)
            .ok_or_else(|| self.fail("dangling reference"))?;
        match item {
            Item::BigInt(b) => return self.big_int(b),
            Item::Str(s) => {
                self.charge(s.len())?;
                return Ok(Node::Str(s.to_string()));
            }
            Item::StrSurrogates(b) => {
                self.charge(b.len())?;
                return Ok(Node::StrSurrogates(b.to_vec()));
            }
            Item::Bytes(b) => {
                self.charge(b.len())?;
                return Ok(Node::Bytes(b.to_vec()));
            }
            Item::Global(g) => return self.global(g),
            Item::Instance(inst) if crate::helpers::is_value(arena, inst) => {
                return crate::helpers::value(self, V::Item(i), inst)
            }
            _ => {}
        }
        if self.declared.contains(&i) {
            if self.unbound.contains(&i) {
                return Err(self.fail(format!(
                    "a {} contains itself through a tuple, a frozenset or its own constructor \
                     arguments: no loader can rebuild that cycle",
                    item.type_name()
                )));
            }
            self.used.insert(u64::from(i));
            return Ok(Node::Ref(u64::from(i)));
        }
        self.declared.insert(i);
        let node = match item {
            Item::List(items) => Node::List(self.all(items)?),
            Item::Tuple(items) => Node::Tuple(self.unbound(i, |l| l.all(items))?),
            Item::Dict(pairs) => Node::Dict(self.pairs(pairs)?),
            Item::Set(items) => Node::Set(sorted_if_plain(self.all(items)?)),
            Item::FrozenSet(items) => {
                Node::FrozenSet(sorted_if_plain(self.unbound(i, |l| l.all(items))?))
            }
            Item::ByteArray(b) => {
                self.charge(b.len())?;
                Node::ByteArray(b.to_vec())
            }
            Item::Array(raw) => crate::helpers::raw_array(self, raw)?,
            Item::Instance(inst) => self.instance(i, inst)?,
            _ => return Err(self.fail("unexpected value")),
        };
        Ok(Node::Shared {
            id: u64::from(i),
            node: Box::new(node),
        })
    }

    fn big_int(&mut self, b: &BigInt<'_>) -> Result<Node> {
        let s = match b {
            BigInt::Dec(s) => s.clone(),
            BigInt::Le(bytes) => {
                if let Some(i) = text::le_to_i64(bytes) {
                    return Ok(Node::Int(i));
                }
                text::le_to_decimal(bytes).map_err(|e| self.fail(e))?
            }
        };
        self.charge(s.len())?;
        Ok(match s.parse::<i64>() {
            Ok(i) => Node::Int(i),
            Err(_) => Node::BigInt(s),
        })
    }

    fn global(&mut self, g: &Global) -> Result<Node> {
        let q = g.qualified();
        self.charge(q.len())?;
        if q == "builtins.Ellipsis" {
            return Ok(Node::Ellipsis);
        }
        Ok(Node::Global(self.class_name(g)?))
    }

    /// A name usable in the tree (qualified-name syntax). Whether it may be loaded is the
    /// trust set's decision, as for any tree.
    pub fn class_name(&self, g: &Global) -> Result<String> {
        let q = g.qualified();
        check_qualified_name(&q).map_err(|e| self.fail(e))?;
        Ok(q)
    }

    /// The class a NEWOBJ or helper names.
    pub fn class_of(&self, v: V) -> Result<String> {
        match self.arena.global(v) {
            Some(g) => self.class_name(g),
            None => Err(self.fail("an object's class is not a named class")),
        }
    }

    /// The tuple a REDUCE or NEWOBJ takes its arguments from.
    pub fn args(&self, inst: &Instance) -> Result<&'p [V]> {
        let arena = self.arena;
        arena
            .tuple(inst.args)
            .ok_or_else(|| self.fail(format!("{} arguments are not a tuple", inst.how.opcode())))
    }

    fn instance(&mut self, i: u32, inst: &Instance) -> Result<Node> {
        let arena = self.arena;
        let Some(g) = arena.global(inst.callable) else {
            return Err(self.fail(format!(
                "{} calls a computed object, not a named class",
                inst.how.opcode()
            )));
        };
        let q = g.qualified();
        let args = self.args(inst)?;
        if crate::helpers::is_identity_helper(&q) {
            return crate::helpers::identity(self, i, inst, &q);
        }
        let (class, construct) = match inst.how {
            How::NewObj | How::NewObjEx => {
                let kwargs = match inst.kwargs {
                    None => Vec::new(),
                    Some(k) => match arena.get(k) {
                        Some(Item::Dict(pairs)) => self.unbound(i, |l| l.pairs(pairs))?,
                        _ => return Err(self.fail("NEWOBJ_EX keyword arguments are not a dict")),
                    },
                };
                let args = self.unbound(i, |l| l.all(args))?;
                (self.class_name(g)?, Construct::New { args, kwargs })
            }
            How::Reduce | How::Inst | How::Obj => self.reduce(i, inst, g, args)?,
        };
        self.object(i, inst, class, construct, None)
    }

    /// Fails if later opcodes changed a value that the tree stores as a plain node.
    pub fn no_extras(&self, inst: &Instance, what: &str) -> Result<()> {
        if !inst.list_items.is_empty() || !inst.dict_items.is_empty() || !inst.set_items.is_empty()
        {
            return Err(self.fail(format!(
                "{what} gets items added, which skvault cannot rebuild"
            )));
        }
        Ok(())
    }
}
