//! Reduce callables as object construction: `copyreg`'s helpers, Cython's and
//! scikit-learn's `__new__` helpers, and classes called with arguments.

use skvault_format::node::BaseType;
use skvault_format::{Construct, Node, Object};

use super::Lowerer;
use crate::error::{PickleError, Result};
use crate::names::{is_helper, looks_like_class};
use crate::value::{Global, How, Instance, Item, V};

impl Lowerer<'_, '_> {
    pub(super) fn reduce(
        &mut self,
        i: u32,
        inst: &Instance,
        g: &Global,
        args: &[V],
    ) -> Result<(String, Construct)> {
        let q = g.qualified();
        let new = |args| Construct::New {
            args,
            kwargs: Vec::new(),
        };
        match (q.as_str(), args) {
            ("copyreg._reconstructor", [cls, base, state]) => {
                let class = self.class_of(*cls)?;
                let base_name = self.arena.global(*base).map(Global::qualified);
                let construct = match (base_name.as_deref(), *state) {
                    (Some("builtins.object"), V::None) => new(Vec::new()),
                    (Some(b), _) => {
                        let base = b
                            .strip_prefix("builtins.")
                            .and_then(BaseType::from_name)
                            .ok_or_else(|| {
                                self.fail(format!(
                                    "{class} derives from {b}, which skvault cannot rebuild"
                                ))
                            })?;
                        let value = Box::new(self.unbound(i, |l| l.lower(*state))?);
                        Construct::Base { base, value }
                    }
                    (None, _) => return Err(self.fail("copyreg._reconstructor needs a base class")),
                };
                Ok((class, construct))
            }
            ("copyreg.__newobj__", [cls, rest @ ..]) => {
                let class = self.class_of(*cls)?;
                let args = self.unbound(i, |l| l.all(rest))?;
                Ok((class, new(args)))
            }
            ("copyreg.__newobj_ex__", [cls, pos, kw]) => {
                let class = self.class_of(*cls)?;
                let pos = self
                    .arena
                    .tuple(*pos)
                    .ok_or_else(|| self.fail("__newobj_ex__ arguments are not a tuple"))?;
                let kw = match self.arena.get(*kw) {
                    Some(Item::Dict(pairs)) => pairs,
                    _ => return Err(self.fail("__newobj_ex__ keywords are not a dict")),
                };
                let args = self.unbound(i, |l| l.all(pos))?;
                let kwargs = self.unbound(i, |l| l.pairs(kw))?;
                Ok((class, Construct::New { args, kwargs }))
            }
            // Cython's automatic pickling: `__pyx_unpickle_X(cls, checksum, state)` is
            // `cls.__new__(cls)` plus the state; the object node carries it as its state.
            (_, [cls, _checksum, _state]) if g.name.starts_with("__pyx_unpickle_") => {
                Ok((self.class_of(*cls)?, new(Vec::new())))
            }
            // scikit-learn's neighbors trees and distance metrics: `newObj(cls)`.
            (_, [cls]) if g.name == "newObj" && g.module.starts_with("sklearn.") => {
                Ok((self.class_of(*cls)?, new(Vec::new())))
            }
            _ if is_helper(&q) => Err(self.fail(format!("unexpected arguments to {q}"))),
            _ if looks_like_class(g) => {
                let class = self.class_name(g)?;
                if inst.how != How::Reduce && args.is_empty() {
                    // INST / OBJ without arguments: `cls.__new__(cls)`.
                    return Ok((class, new(Vec::new())));
                }
                let args = self.unbound(i, |l| l.all(args))?;
                Ok((class, Construct::Call { args }))
            }
            _ => Err(PickleError::NotAClass {
                path: self.path(),
                callable: q,
                offset: inst.offset,
            }),
        }
    }

    /// The object node: construction, then state, list items and dict items, in `walk.rs`'s
    /// order. `inner_state` is a state that came with the construction (Cython).
    pub fn object(
        &mut self,
        i: u32,
        inst: &Instance,
        class: String,
        construct: Construct,
        inner_state: Option<V>,
    ) -> Result<Node> {
        let short = class.rsplit('.').next().unwrap_or(&class).to_string();
        self.path.push(short);
        let out = self.object_inner(i, inst, class, construct, inner_state);
        self.path.pop();
        out
    }

    fn object_inner(
        &mut self,
        _i: u32,
        inst: &Instance,
        class: String,
        construct: Construct,
        inner_state: Option<V>,
    ) -> Result<Node> {
        let arena = self.arena;
        let pyx_state = arena
            .global(inst.callable)
            .filter(|g| g.name.starts_with("__pyx_unpickle_"))
            .and_then(|_| arena.tuple(inst.args))
            .and_then(|a| a.get(2).copied())
            // `()` is the state of a Cython class without attributes (scikit-learn < 1.6
            // pickled its loss helpers that way): setting it does nothing.
            .filter(|s| *s != V::None && arena.tuple(*s).is_none_or(|t| !t.is_empty()));
        let states: Vec<V> = inner_state
            .into_iter()
            .chain(pyx_state)
            .chain(inst.states.iter().copied())
            .collect();
        let state = match states.as_slice() {
            [] => None,
            [s] => Some(self.lower(*s)?),
            _ => return Err(self.fail(format!("{class} has its state set more than once"))),
        };
        if !inst.set_items.is_empty() {
            return Err(self.fail(format!(
                "{class} gets set items (ADDITEMS), which skvault cannot rebuild"
            )));
        }
        let list_items = self.all(&inst.list_items)?;
        let dict_items = self.pairs(&inst.dict_items)?;
        Ok(Node::Object(Box::new(Object {
            class,
            construct,
            state,
            list_items,
            dict_items,
        })))
    }
}
