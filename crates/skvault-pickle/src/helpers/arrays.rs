//! numpy arrays in their pickled forms: `_reconstruct` + state (protocols 0-4),
//! `_frombuffer` (protocol 5), joblib's raw arrays, and masked arrays.

use std::borrow::Cow;

use skvault_format::{DType, Node, Order};

use super::{bytes_of, callable, flag, no_state, only_state, ARRAY_CLASSES};
use crate::error::Result;
use crate::lower::{ConvertedArray, Lowerer};
use crate::value::{How, Instance, Item, RawArray, V};

fn push_array<'a>(
    l: &mut Lowerer<'_, 'a>,
    dtype: DType,
    shape: Vec<u64>,
    order: Order,
    data: Cow<'a, [u8]>,
) -> Result<Node> {
    let count = shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
    let expected = count.and_then(|n| n.checked_mul(dtype.itemsize()));
    if expected != Some(data.len() as u64) {
        return Err(l.fail(format!(
            "array of shape {shape:?} needs {expected:?} bytes, the pickle has {}",
            data.len()
        )));
    }
    if matches!(data, Cow::Owned(_)) {
        l.charge(data.len())?;
    }
    l.arrays.push(ConvertedArray {
        dtype,
        shape,
        order,
        data,
    });
    Ok(Node::Array(l.arrays.len() - 1))
}

fn shape_of(l: &Lowerer<'_, '_>, v: V) -> Result<Vec<u64>> {
    let arena = l.arena;
    let dims = match arena.tuple(v) {
        Some(dims) => dims,
        None => {
            return arena
                .u64(v)
                .map(|d| vec![d])
                .ok_or_else(|| l.fail("bad array shape"))
        }
    };
    dims.iter()
        .map(|d| arena.u64(*d))
        .collect::<Option<_>>()
        .ok_or_else(|| l.fail("array dimensions must be non-negative integers"))
}

fn check_array_class(l: &Lowerer<'_, '_>, v: V) -> Result<()> {
    let name = l.arena.global(v).map(|g| g.qualified());
    match name {
        Some(n) if ARRAY_CLASSES.contains(&n.as_str()) => Ok(()),
        Some(n) => Err(l.fail(format!("numpy array subclass {n} is not supported"))),
        None => Err(l.fail("numpy array without a class")),
    }
}

/// The array numpy's state `(shape, dtype, is_fortran, data)` describes.
fn array_from_state(
    l: &mut Lowerer<'_, '_>,
    shape: V,
    dt_v: V,
    fortran: V,
    data: V,
) -> Result<Node> {
    let arena = l.arena;
    let shape = shape_of(l, shape)?;
    let fortran = flag(fortran).ok_or_else(|| l.fail("is_fortran must be a bool"))?;
    let dt = l.dtype(dt_v)?;
    if dt.has_object {
        let dtype = dt.converted.map_err(|e| l.fail(e))?;
        if dtype != DType::object() {
            return Err(l.fail("structured arrays with object fields are not supported"));
        }
        let items = match arena.get(data) {
            Some(Item::List(items)) => items,
            _ => return Err(l.fail("an object array's data must be a list")),
        };
        let count = shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
        if count != Some(items.len() as u64) {
            return Err(l.fail("object array items do not match its shape"));
        }
        let items = l.all(items)?;
        return Ok(Node::ObjArray { shape, items });
    }
    let dtype = dt.converted.map_err(|e| l.fail(e))?;
    let data = bytes_of(l, data)?;
    let order = if fortran { Order::F } else { Order::C };
    push_array(l, dtype, shape, order, data)
}

/// `_reconstruct(ndarray, (0,), b'b')` + BUILD `(version, shape, dtype, is_fortran, data)`.
pub(super) fn reconstruct(l: &mut Lowerer<'_, '_>, inst: &Instance, args: &[V]) -> Result<Node> {
    let arena = l.arena;
    let [cls, ..] = args else {
        return Err(l.fail("_reconstruct without a class"));
    };
    check_array_class(l, *cls)?;
    l.no_extras(inst, "a numpy array")?;
    let state = only_state(l, inst, "a numpy array")?;
    let st = arena
        .tuple(state)
        .ok_or_else(|| l.fail("numpy array state is not a tuple"))?;
    match st {
        [_, s, d, f, x] | [s, d, f, x] => array_from_state(l, *s, *d, *f, *x),
        _ => Err(l.fail("numpy array state has an unknown layout")),
    }
}

/// A 0-d array as the numpy scalar it holds (a masked array's fill value), in any of the
/// forms an array takes in a pickle.
fn scalar_of_0d(l: &mut Lowerer<'_, '_>, v: V) -> Result<Node> {
    let arena = l.arena;
    if v == V::None {
        return Ok(Node::None);
    }
    let before = l.arrays.len();
    let node = match arena.get(v) {
        Some(Item::Array(raw)) => raw_array(l, raw)?,
        Some(Item::Instance(inst)) if inst.how == How::Reduce => {
            let q = callable(arena, inst).unwrap_or_default();
            let args = l.args(inst)?;
            if q.ends_with("multiarray._reconstruct") {
                reconstruct(l, inst, args)?
            } else if q.ends_with("numeric._frombuffer") {
                frombuffer(l, inst, args)?
            } else {
                return Err(l.fail("a masked array's fill value must be an array"));
            }
        }
        _ => return Err(l.fail("a masked array's fill value must be an array")),
    };
    match node {
        Node::Array(_) => {
            let a = l
                .arrays
                .pop()
                .filter(|a| l.arrays.len() == before && a.shape.is_empty())
                .ok_or_else(|| l.fail("a masked array's fill value must be 0-d"))?;
            Ok(Node::Scalar {
                dtype: a.dtype,
                data: a.data.into_owned(),
            })
        }
        Node::ObjArray { mut items, shape } if shape.is_empty() && items.len() == 1 => {
            Ok(items.pop().unwrap_or(Node::None))
        }
        _ => Err(l.fail("a masked array's fill value must be 0-d")),
    }
}

/// `numpy.ma.core._mareconstruct(MaskedArray, ndarray, (0,), 'b')` + BUILD
/// `(version, shape, dtype, is_fortran, data, mask bytes, fill value)`, as `walk.rs` writes a
/// masked array: `MaskedArray(data, mask, None, False, True, 0, fill_value, True, False)`.
pub(super) fn masked_array(
    l: &mut Lowerer<'_, '_>,
    i: u32,
    inst: &Instance,
    args: &[V],
) -> Result<Node> {
    let arena = l.arena;
    let [subtype, base, ..] = args else {
        return Err(l.fail("_mareconstruct needs (subtype, baseclass, shape, type)"));
    };
    let class = arena.global(*subtype).map(|g| g.qualified());
    if !matches!(
        class.as_deref(),
        Some("numpy.ma.MaskedArray" | "numpy.ma.core.MaskedArray")
    ) {
        return Err(l.fail("only numpy.ma.MaskedArray masked arrays are supported"));
    }
    check_array_class(l, *base)?;
    l.no_extras(inst, "a masked array")?;
    let state = only_state(l, inst, "a masked array")?;
    let st = arena
        .tuple(state)
        .ok_or_else(|| l.fail("masked array state is not a tuple"))?;
    let [_, shape, dt_v, fortran, data, mask, fill] = st else {
        return Err(l.fail("masked array state has an unknown layout"));
    };
    let (shape, dt_v, fortran, data, mask, fill) = (*shape, *dt_v, *fortran, *data, *mask, *fill);
    let call = l.unbound(i, |l| {
        let data = array_from_state(l, shape, dt_v, fortran, data)?;
        let dims = shape_of(l, shape)?;
        let mask_dtype = DType::parse_scalar("|b1", "mask").map_err(|e| l.fail(e.to_string()))?;
        let dt = l.dtype(dt_v)?;
        if matches!(dt.converted, Ok(DType::Structured { .. })) {
            return Err(l.fail("masked arrays of structured dtypes are not supported"));
        }
        let order = if flag(fortran) == Some(true) {
            Order::F
        } else {
            Order::C
        };
        let mask_bytes = bytes_of(l, mask)?;
        let mask = push_array(l, mask_dtype, dims, order, mask_bytes)?;
        let fill = scalar_of_0d(l, fill)?;
        Ok(vec![
            data,
            mask,
            Node::None,
            Node::Bool(false),
            Node::Bool(true),
            Node::Int(0),
            fill,
            Node::Bool(true),
            Node::Bool(false),
        ])
    })?;
    Ok(Node::Object(Box::new(skvault_format::Object {
        class: "numpy.ma.MaskedArray".into(),
        construct: skvault_format::Construct::Call { args: call },
        state: None,
        list_items: Vec::new(),
        dict_items: Vec::new(),
    })))
}

/// Protocol 5: `_frombuffer(buffer, dtype, shape, order)`.
pub(super) fn frombuffer(l: &mut Lowerer<'_, '_>, inst: &Instance, args: &[V]) -> Result<Node> {
    let arena = l.arena;
    no_state(l, inst, "a numpy array")?;
    let [buf, dt_v, shape, order] = args else {
        return Err(l.fail("_frombuffer needs (buffer, dtype, shape, order)"));
    };
    let dt = l.dtype(*dt_v)?;
    let dtype = dt.converted.map_err(|e| l.fail(e))?;
    if dt.has_object {
        return Err(l.fail("_frombuffer with an object dtype"));
    }
    let shape = shape_of(l, *shape)?;
    let order = match arena.str(*order) {
        Some("F") => Order::F,
        Some("C") => Order::C,
        _ => return Err(l.fail("_frombuffer order must be 'C' or 'F'")),
    };
    let data = bytes_of(l, *buf)?;
    push_array(l, dtype, shape, order, data)
}

/// An array joblib stored raw after its wrapper.
pub fn raw_array<'a>(l: &mut Lowerer<'_, 'a>, raw: &RawArray<'a>) -> Result<Node> {
    let arena = l.arena;
    let wrapper = arena
        .instance(V::Item(raw.wrapper))
        .ok_or_else(|| l.fail("joblib array without its wrapper"))?;
    let attrs = crate::joblib::attributes(arena, wrapper).map_err(|e| l.fail(e))?;
    let subclass = attrs
        .iter()
        .find(|(k, _)| k == "subclass")
        .map(|(_, v)| *v)
        .ok_or_else(|| l.fail("joblib array without a subclass"))?;
    check_array_class(l, subclass)?;
    let dt = l.dtype(raw.dtype)?;
    let dtype = dt.converted.map_err(|e| l.fail(e))?;
    let order = if raw.fortran { Order::F } else { Order::C };
    push_array(l, dtype, raw.shape.clone(), order, Cow::Borrowed(raw.data))
}
