//! Reduce callables that become tree nodes other than objects: numpy arrays, dtypes, scalars
//! and random generators, builtin containers, and the byte strings of protocols 0 to 2.

mod arrays;
mod random;

use std::borrow::Cow;

use skvault_format::Node;

use crate::error::Result;
use crate::lower::{sorted_if_plain, Lowerer};
use crate::value::{Arena, How, Instance, Item, V};

pub use arrays::raw_array;

/// Classes whose instances `_reconstruct` / joblib may produce as plain arrays.
pub(super) const ARRAY_CLASSES: &[&str] = &["numpy.ndarray"];

/// Helpers whose result has no identity: copied wherever the stream refers to it.
const VALUE_CALLABLES: &[&str] = &[
    "_codecs.encode",
    "builtins.bytes",
    "builtins.complex",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray.scalar",
    "numpy.dtype",
];

/// Helpers whose result has identity (arrays, generators, containers).
const IDENTITY_CALLABLES: &[&str] = &[
    "builtins.bytearray",
    "builtins.frozenset",
    "builtins.set",
    "builtins.slice",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.numeric._frombuffer",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.numeric._frombuffer",
    "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
];

pub(super) fn callable(arena: &Arena<'_>, inst: &Instance) -> Option<String> {
    arena.global(inst.callable).map(|g| g.qualified())
}

pub fn is_value(arena: &Arena<'_>, inst: &Instance) -> bool {
    match (inst.how, callable(arena, inst)) {
        (How::Reduce, Some(q)) => VALUE_CALLABLES.contains(&q.as_str()),
        (How::NewObj, Some(q)) => q == "builtins.complex",
        _ => false,
    }
}

pub fn is_identity_helper(q: &str) -> bool {
    IDENTITY_CALLABLES.contains(&q)
}

fn number(v: V) -> Option<f64> {
    match v {
        V::Float(x) => Some(x),
        V::Int(i) => Some(i as f64),
        V::Bool(b) => Some(f64::from(u8::from(b))),
        _ => None,
    }
}

pub(super) fn flag(v: V) -> Option<bool> {
    match v {
        V::Bool(b) => Some(b),
        V::Int(i @ (0 | 1)) => Some(i == 1),
        _ => None,
    }
}

pub(super) fn only_state(l: &Lowerer<'_, '_>, inst: &Instance, what: &str) -> Result<V> {
    match inst.states.as_slice() {
        [s] => Ok(*s),
        [] => Err(l.fail(format!("{what} without its state"))),
        _ => Err(l.fail(format!("{what} has its state set more than once"))),
    }
}

pub(super) fn no_state(l: &Lowerer<'_, '_>, inst: &Instance, what: &str) -> Result<()> {
    if inst.states.iter().any(|s| *s != V::None) {
        return Err(l.fail(format!("{what} gets a state, which skvault cannot rebuild")));
    }
    l.no_extras(inst, what)
}

/// `str.encode('latin1')`, as `_codecs.encode` does for protocol 0-2 bytes.
fn latin1(l: &Lowerer<'_, '_>, s: &str) -> Result<Vec<u8>> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| l.fail("a latin-1 byte string holds characters above U+00FF"))
}

/// The bytes `v` stands for: a bytes or bytearray value, or the protocol 0-2 spellings.
pub fn bytes_of<'a>(l: &Lowerer<'_, 'a>, v: V) -> Result<Cow<'a, [u8]>> {
    let arena = l.arena;
    match arena.get(v) {
        Some(Item::Bytes(b)) | Some(Item::ByteArray(b)) => Ok(b.clone()),
        Some(Item::Instance(inst)) if inst.how == How::Reduce => {
            let args = l.args(inst)?;
            match (callable(arena, inst).as_deref(), args) {
                (Some("_codecs.encode"), [s, enc]) => {
                    let enc = arena.str(*enc).unwrap_or_default();
                    let s = arena
                        .str(*s)
                        .ok_or_else(|| l.fail("_codecs.encode needs a str"))?;
                    if !matches!(enc, "latin1" | "latin-1") {
                        return Err(l.fail(format!("_codecs.encode with encoding {enc:?}")));
                    }
                    Ok(Cow::Owned(latin1(l, s)?))
                }
                (Some("builtins.bytes"), []) => Ok(Cow::Borrowed(&[])),
                _ => Err(l.fail("expected bytes")),
            }
        }
        _ => Err(l.fail("expected bytes")),
    }
}

/// Values without identity: dtypes, numpy scalars, protocol 0-2 bytes, complex numbers.
pub fn value(l: &mut Lowerer<'_, '_>, v: V, inst: &Instance) -> Result<Node> {
    let arena = l.arena;
    let q = callable(arena, inst).unwrap_or_default();
    let args = l.args(inst)?;
    match q.as_str() {
        "numpy.dtype" => {
            l.no_extras(inst, "a dtype")?;
            let dt = l.dtype(v)?;
            Ok(Node::DType(dt.converted.map_err(|e| l.fail(e))?))
        }
        "numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar" => {
            no_state(l, inst, "a numpy scalar")?;
            let [dt_v, rest @ ..] = args else {
                return Err(l.fail("numpy scalar without a dtype"));
            };
            let dt = l.dtype(*dt_v)?;
            if dt.has_object {
                // `scalar(dtype('O'), obj)` is `obj` itself.
                return l.lower(rest.first().copied().unwrap_or(V::None));
            }
            let dtype = dt.converted.map_err(|e| l.fail(e))?;
            let data = bytes_of(l, rest.first().copied().unwrap_or(V::None))?;
            if data.len() as u64 != dtype.itemsize() {
                return Err(l.fail("numpy scalar bytes do not match its dtype"));
            }
            l.charge(data.len())?;
            Ok(Node::Scalar {
                dtype,
                data: data.into_owned(),
            })
        }
        "_codecs.encode" | "builtins.bytes" => {
            no_state(l, inst, "bytes")?;
            let b = bytes_of(l, v)?;
            l.charge(b.len())?;
            Ok(Node::Bytes(b.into_owned()))
        }
        _ => {
            no_state(l, inst, "a complex number")?;
            match args {
                [re, im] => match (number(*re), number(*im)) {
                    (Some(re), Some(im)) => Ok(Node::Complex(re, im)),
                    _ => Err(l.fail("complex() with non-numbers")),
                },
                _ => Err(l.fail("complex() needs (real, imag)")),
            }
        }
    }
}

fn container_items<'p>(l: &Lowerer<'p, '_>, args: &[V]) -> Result<&'p [V]> {
    let arena = l.arena;
    match args {
        [] => Ok(&[]),
        [it] => match arena.get(*it) {
            Some(Item::List(v) | Item::Tuple(v) | Item::Set(v) | Item::FrozenSet(v)) => Ok(v),
            _ => Err(l.fail("set() of something that is not a list")),
        },
        _ => Err(l.fail("set() takes one argument")),
    }
}

/// Helpers whose result has identity. The caller declares `i` before and wraps the node.
pub fn identity(l: &mut Lowerer<'_, '_>, i: u32, inst: &Instance, q: &str) -> Result<Node> {
    let args = l.args(inst)?;
    match q {
        "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
            arrays::reconstruct(l, inst, args)
        }
        "numpy.core.numeric._frombuffer" | "numpy._core.numeric._frombuffer" => {
            arrays::frombuffer(l, inst, args)
        }
        "numpy.ma.core._mareconstruct" => arrays::masked_array(l, i, inst, args),
        "numpy.random._pickle.__randomstate_ctor" => random::random_state(l, i, inst, args),
        "numpy.random._pickle.__generator_ctor" => random::generator(l, i, inst, args),
        "numpy.random._pickle.__bit_generator_ctor" => random::bit_generator(l, inst, args),
        "builtins.set" => {
            no_state(l, inst, "a set")?;
            let items = container_items(l, args)?;
            Ok(Node::Set(sorted_if_plain(l.all(items)?)))
        }
        "builtins.frozenset" => {
            no_state(l, inst, "a frozenset")?;
            let items = container_items(l, args)?;
            let items = l.unbound(i, |l| l.all(items))?;
            Ok(Node::FrozenSet(sorted_if_plain(items)))
        }
        "builtins.bytearray" => {
            no_state(l, inst, "a bytearray")?;
            let data = match args {
                [] => Vec::new(),
                [b] => bytes_of(l, *b)?.into_owned(),
                [s, enc] if matches!(l.arena.str(*enc), Some("latin-1" | "latin1")) => {
                    let s = l
                        .arena
                        .str(*s)
                        .ok_or_else(|| l.fail("bytearray() of a non-str"))?;
                    latin1(l, s)?
                }
                _ => return Err(l.fail("unsupported bytearray() arguments")),
            };
            l.charge(data.len())?;
            Ok(Node::ByteArray(data))
        }
        _ => {
            no_state(l, inst, "a slice")?;
            let [a, b, c] = args else {
                return Err(l.fail("slice() needs (start, stop, step)"));
            };
            let parts = [l.lower(*a)?, l.lower(*b)?, l.lower(*c)?];
            Ok(Node::Slice(Box::new(parts)))
        }
    }
}
