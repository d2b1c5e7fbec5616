//! joblib's arrays: a `NumpyArrayWrapper` object in the pickle, its raw bytes right after it
//! in the file.
//!
//! This mirrors `NumpyUnpickler.load_build` and `NumpyArrayWrapper.read_array` (joblib 1.x):
//! after every BUILD whose object is a wrapper, the array is read from the file (not from the
//! current frame): one padding-length byte and that many padding bytes when the wrapper has
//! `numpy_array_alignment_bytes` (joblib >= 1.2), then `prod(shape) * itemsize` bytes; when
//! `dtype.hasobject` (numpy's flags, not the fields), a whole nested pickle instead. The array replaces the wrapper on the stack.

use crate::dtype_facts;
use crate::error::{PickleError, Result};
use crate::input::Input;
use crate::value::{Arena, How, Instance, Item, RawArray, V, VALUE_COST};
use crate::vm::Machine;

/// `NumpyArrayWrapper.__init__`'s parameters, in order.
const INIT_PARAMS: &[&str] = &[
    "subclass",
    "shape",
    "order",
    "dtype",
    "allow_mmap",
    "numpy_array_alignment_bytes",
];
/// joblib's default `numpy_array_alignment_bytes` (when `__init__` runs).
const DEFAULT_ALIGNMENT: i64 = 16;

/// True if `inst` is a `joblib.numpy_pickle.NumpyArrayWrapper`.
pub fn is_wrapper(arena: &Arena<'_>, inst: &Instance) -> bool {
    arena
        .instance_class(inst)
        .is_some_and(|g| g.module == "joblib.numpy_pickle" && g.name == "NumpyArrayWrapper")
}

/// The wrapper's attributes: `__init__` arguments when the class was called with some, then
/// each BUILD state (a dict, or `(dict, slots)`), as Python would set them.
pub(crate) fn attributes(arena: &Arena<'_>, inst: &Instance) -> Result<Vec<(String, V)>, String> {
    let mut attrs: Vec<(String, V)> = Vec::new();
    let mut set = |k: &str, v: V| {
        attrs.retain(|(name, _)| name != k);
        attrs.push((k.to_string(), v));
    };
    let called = match inst.how {
        How::Reduce => arena
            .global(inst.callable)
            .is_some_and(|g| g.name == "NumpyArrayWrapper"),
        How::Inst | How::Obj => arena.tuple(inst.args).is_some_and(|a| !a.is_empty()),
        How::NewObj | How::NewObjEx => false,
    };
    if called {
        let args = arena
            .tuple(inst.args)
            .ok_or("constructor arguments must be a tuple")?;
        if !(4..=INIT_PARAMS.len()).contains(&args.len()) {
            return Err("NumpyArrayWrapper called with the wrong number of arguments".into());
        }
        set("allow_mmap", V::Bool(false));
        set("numpy_array_alignment_bytes", V::Int(DEFAULT_ALIGNMENT));
        for (name, v) in INIT_PARAMS.iter().zip(args) {
            set(name, *v);
        }
    }
    let mut apply = |state: V| -> Result<(), String> {
        match arena.get(state) {
            Some(Item::Dict(pairs)) => {
                for (k, v) in pairs {
                    let k = arena.str(*k).ok_or("attribute names must be str")?;
                    set(k, *v);
                }
                Ok(())
            }
            _ if state == V::None => Ok(()),
            _ => Err("the state must be a dict".into()),
        }
    };
    for state in &inst.states {
        match arena.tuple(*state) {
            Some([d, slots]) => {
                apply(*d)?;
                apply(*slots)?;
            }
            _ => apply(*state)?,
        }
    }
    Ok(attrs)
}

/// Called after each BUILD in joblib mode: reads the array if `target` is a wrapper and
/// returns what replaces it on the stack.
pub fn after_build<'a>(
    m: &mut Machine<'a, '_>,
    input: &mut Input<'a>,
    target: V,
    offset: u64,
) -> Result<Option<V>> {
    let err = |message: String| PickleError::Joblib { offset, message };
    let (V::Item(wrapper), Some(inst)) = (target, m.arena.instance(target)) else {
        return Ok(None);
    };
    if !is_wrapper(m.arena, inst) {
        return Ok(None);
    }
    if inst.states.len() > 1 {
        return Err(err("BUILD applied twice to one NumpyArrayWrapper".into()));
    }
    let attrs = attributes(m.arena, inst).map_err(err)?;
    m.log.joblib_reads += 1;
    let get = |k: &str| attrs.iter().find(|(name, _)| name == k).map(|(_, v)| *v);
    let dtype_v = get("dtype").ok_or_else(|| err("the wrapper has no dtype".into()))?;
    let shape_v = get("shape").ok_or_else(|| err("the wrapper has no shape".into()))?;
    let shape: Vec<u64> = m
        .arena
        .tuple(shape_v)
        .ok_or_else(|| err("the shape must be a tuple".into()))?
        .iter()
        .map(|d| m.arena.u64(*d))
        .collect::<Option<_>>()
        .ok_or_else(|| err("the shape must be non-negative integers".into()))?;
    let fortran = get("order").and_then(|o| m.arena.str(o)) == Some("F");
    let padded = get("numpy_array_alignment_bytes").is_some_and(|v| v != V::None);
    // numpy's own view, flags included: joblib reads a nested pickle exactly when
    // `dtype.hasobject`, whatever the fields say (a forged dtype is reported at its BUILD).
    let mut visits = 0u64;
    let facts = dtype_facts::facts(m.arena, dtype_v, &mut visits);
    m.arena.charge(VALUE_COST.saturating_mul(visits))?;
    let facts = facts.map_err(|e| err(format!("bad dtype: {e}")))?;
    let (itemsize, has_object) = (facts.itemsize, facts.has_object());
    if has_object {
        // joblib pickles object arrays as a nested pickle in the file, read by a fresh
        // (plain, not joblib) unpickler.
        let mut nested = Machine::new(&mut *m.arena, &mut *m.log, m.limits, false);
        let value = nested.run(input)?;
        return Ok(Some(value));
    }
    if padded {
        let [pad] = input
            .take(1, "joblib padding length")?
            .try_into()
            .map_err(|_| err("padding".into()))?;
        input.take(usize::from(pad), "joblib padding")?;
    }
    let nbytes = shape
        .iter()
        .try_fold(itemsize, |acc, d| acc.checked_mul(*d))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| err("the array size overflows".into()))?;
    if nbytes > input.remaining() {
        return Err(err(format!(
            "the array needs {nbytes} bytes, only {} are left",
            input.remaining()
        )));
    }
    let data = input.take(nbytes, "joblib array data")?;
    let v = m.arena.push(Item::Array(Box::new(RawArray {
        wrapper,
        dtype: dtype_v,
        shape,
        fortran,
        data,
    })))?;
    Ok(Some(v))
}
