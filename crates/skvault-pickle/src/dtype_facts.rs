//! What numpy makes of a pickled dtype, and whether numpy's own pickler could have written it.
//!
//! numpy's `dtype.__setstate__` (`arraydescr_setstate`) takes the flags and, for flexible types
//! (`S`, `U`, `V`), the item size from the state as they are: it never recomputes them from the
//! fields. Everything that reads arrays goes by those flags: `ndarray.__setstate__` reads raw
//! bytes unless `NPY_LIST_PICKLE` is set, joblib unpickles a nested pickle only when
//! `dtype.hasobject` (`NPY_ITEM_HASOBJECT`) is set, `numpy.frombuffer` refuses only dtypes with
//! `NPY_ITEM_REFCOUNT`. A dtype with an object field but flags 0 therefore turns file bytes into
//! `PyObject*` pointers. The reader follows numpy (the flags decide, `Facts::has_object`) and
//! calls a dtype forged (`Facts::problem`) when its state is not one numpy's pickler writes for
//! its content: flags, sizes, type string, field layout.

use std::collections::HashSet;

use crate::value::{Arena, Item, V};

/// `NPY_ITEM_HASOBJECT` / `NPY_ITEM_REFCOUNT`.
pub const HASOBJECT: u64 = 0x01;
/// `NPY_LIST_PICKLE`: `ndarray.__setstate__` takes a list of items instead of raw bytes.
pub const LIST_PICKLE: u64 = 0x02;
/// `NPY_NEEDS_INIT`.
const NEEDS_INIT: u64 = 0x08;
/// `NPY_NEEDS_PYAPI`: numpy sets it on every structured dtype.
const NEEDS_PYAPI: u64 = 0x10;
/// `NPY_ALIGNED_STRUCT`: `dtype.isalignedstruct`.
pub const ALIGNED_STRUCT: u64 = 0x80;
/// `NPY_OBJECT_DTYPE_FLAGS`: the flags of `dtype('O')`.
const OBJECT_FLAGS: u64 = 0x3f;
/// `NPY_FROM_FIELDS`: the flags a structured dtype takes from its fields.
const FROM_FIELDS: u64 = NEEDS_INIT | LIST_PICKLE | HASOBJECT | NEEDS_PYAPI;
/// Flags that only make numpy more careful on a dtype without objects (they differ between
/// numpy versions: `U` has `NEEDS_INIT` in numpy 2).
const HARMLESS_WITHOUT_OBJECTS: u64 = NEEDS_INIT | NEEDS_PYAPI;

/// Nesting of dtypes inside dtypes (fields, sub-arrays).
pub(crate) const MAX_NESTING: usize = 16;

/// numpy's view of one dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `dtype.itemsize`: the state's element size for flexible types, else the type's size.
    pub itemsize: u64,
    /// `dtype.flags` as numpy holds them (the state's, or the type string's without a state).
    pub flags: u64,
    /// The dtype holds object references by its content: an `O` somewhere inside.
    pub holds_objects: bool,
    /// Why numpy's pickler never writes this dtype, if it does not.
    pub problem: Option<String>,
}

impl Facts {
    /// `dtype.hasobject`: what numpy and joblib decide by.
    pub fn has_object(&self) -> bool {
        self.flags & HASOBJECT != 0
    }
}

/// Type strings as `dtype.__reduce__` writes them: the kind, then the item size in bytes
/// (characters for `U`).
pub fn parse_typestr(s: &str) -> Option<(char, u64)> {
    let mut chars = s.chars();
    let kind = chars.next().filter(|k| "biufcOSUVMm".contains(*k))?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 10 {
        return None;
    }
    Some((kind, digits.parse().ok()?))
}

/// What `dtype(typestr, False, True)` is before any state: numpy's defaults for the type.
fn defaults(kind: char, size: u64) -> Facts {
    let itemsize = if kind == 'U' {
        size.saturating_mul(4)
    } else {
        size
    };
    let flags = match kind {
        'O' => OBJECT_FLAGS,
        'U' => NEEDS_INIT,
        _ => 0,
    };
    Facts {
        itemsize,
        flags,
        holds_objects: kind == 'O',
        problem: None,
    }
}

/// An integer (or bool) of a dtype's state.
pub(crate) fn int(v: Option<&V>) -> Option<i64> {
    match v? {
        V::Int(i) => Some(*i),
        V::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A C `int`, as `PyArg_ParseTuple`'s `i` takes it.
fn c_int(v: Option<&V>) -> Option<i64> {
    int(v).filter(|i| i32::try_from(*i).is_ok())
}

/// The type string of a `numpy.dtype(typestr, align, copy)` item, if `v` is one created the way
/// numpy's pickler writes it.
pub fn canonical_creation(arena: &Arena<'_>, v: V) -> Result<(char, u64), String> {
    let inst = arena.instance(v).ok_or("expected a numpy dtype")?;
    if !crate::dtype::is_dtype(arena, v) {
        return Err(
            "a numpy dtype made otherwise than by numpy.dtype(typestr, False, True)".into(),
        );
    }
    let args = arena
        .tuple(inst.args)
        .ok_or("numpy.dtype arguments are not a tuple")?;
    let [t, align, copy] = args else {
        return Err("numpy.dtype called with other arguments than (typestr, False, True)".into());
    };
    let typestr = arena.str(*t).ok_or("numpy.dtype needs a type string")?;
    if int(Some(align)) != Some(0) || int(Some(copy)) != Some(1) {
        // Without copy, numpy returns its own shared dtype, and a state would change the
        // dtype of every array in the process.
        return Err("numpy.dtype called with other arguments than (typestr, False, True)".into());
    }
    parse_typestr(typestr).ok_or_else(|| format!("type string {typestr:?} is not one numpy writes"))
}

/// numpy's view of the dtype `v` with the states applied so far. `Err` when the reader cannot
/// tell exactly what numpy makes of it (not a dtype made by numpy's pickler, a state numpy
/// refuses or this reader does not interpret): unsafe for the scanner either way.
pub fn facts(arena: &Arena<'_>, v: V, visits: &mut u64) -> Result<Facts, String> {
    facts_at(arena, v, 0, visits)
}

fn facts_at(arena: &Arena<'_>, v: V, depth: usize, visits: &mut u64) -> Result<Facts, String> {
    *visits += 1;
    if depth > MAX_NESTING {
        return Err("dtype nests too deeply".into());
    }
    if let V::Item(i) = v {
        if let Some(f) = arena.dtype_info.get(&i) {
            return Ok(f.clone());
        }
    }
    let (kind, size) = canonical_creation(arena, v)?;
    let inst = arena.instance(v).ok_or("expected a numpy dtype")?;
    let st = match inst.states.as_slice() {
        [] => return Ok(defaults(kind, size)),
        [s] => arena.tuple(*s).ok_or("dtype state must be a tuple")?,
        _ => return Err("dtype state set twice".into()),
    };
    match (int(st.first()), st.len()) {
        (Some(3), 8) | (Some(4), 9) => {}
        _ => return Err("dtype state of a version numpy does not write (3 or 4)".into()),
    }
    let mut problems: Vec<String> = Vec::new();
    let endian = st.get(1).and_then(|e| arena.str(*e)).unwrap_or_default();
    if !matches!(endian, "<" | ">" | "|" | "=") {
        problems.push(format!("byte order {endian:?}"));
    }
    let subarray = st.get(2).copied().unwrap_or(V::None);
    let names = st.get(3).copied().unwrap_or(V::None);
    let fields = st.get(4).copied().unwrap_or(V::None);
    let elsize = c_int(st.get(5)).ok_or("dtype element size is not a C int")?;
    let alignment = c_int(st.get(6)).ok_or("dtype alignment is not a C int")?;
    let raw_flags = c_int(st.get(7)).ok_or("dtype flags are not a C int")?;
    // numpy once stored the flags in a char: -128..-1 are normalised, other negatives fail.
    let flags = if (-128..0).contains(&raw_flags) {
        raw_flags + 128
    } else {
        raw_flags
    };
    let flags = u64::try_from(flags).map_err(|_| "negative dtype flags")?;
    let flexible = matches!(kind, 'S' | 'U' | 'V');
    let base = defaults(kind, size);
    let itemsize = if flexible {
        u64::try_from(elsize).map_err(|_| "negative element size of a flexible dtype")?
    } else {
        base.itemsize
    };
    // The element size and alignment numpy writes: its own for flexible types, -1 otherwise.
    if flexible && itemsize != base.itemsize {
        problems.push(format!(
            "element size {elsize} where the type string says {}",
            base.itemsize
        ));
    }
    if !flexible && (elsize != -1 || alignment != -1) {
        problems.push("element size or alignment set on a fixed-size type".into());
    }
    if flexible && !(1..=64).contains(&alignment) {
        problems.push(format!("alignment {alignment}"));
    }
    if (names == V::None) != (fields == V::None) {
        return Err("dtype names without fields or fields without names".into());
    }
    let structured = names != V::None;
    if (structured || subarray != V::None) && kind != 'V' {
        problems.push(format!("fields or a sub-array on a {kind:?} dtype"));
    }
    if structured && subarray != V::None {
        problems.push("both fields and a sub-array".into());
    }
    let (expected, holds_objects) = if subarray != V::None {
        let (b, count) = sub_array(arena, subarray, depth, visits)?;
        if let Some(p) = &b.problem {
            problems.push(format!("sub-array base: {p}"));
        }
        if b.itemsize.checked_mul(count) != Some(itemsize) {
            problems.push("sub-array size does not match its element size".into());
        }
        // numpy gives a sub-array dtype its base's flags.
        (b.flags, b.holds_objects)
    } else if structured {
        let (field_flags, holds) =
            struct_fields(arena, names, fields, itemsize, depth, visits, &mut problems)?;
        (
            NEEDS_PYAPI | (field_flags & FROM_FIELDS) | (flags & ALIGNED_STRUCT),
            holds,
        )
    } else {
        (base.flags, base.holds_objects)
    };
    let lenient = if holds_objects {
        0
    } else {
        HARMLESS_WITHOUT_OBJECTS
    };
    if (flags ^ expected) & !lenient != 0 {
        problems.push(format!(
            "flags {flags:#x} where numpy derives {expected:#x} from its {}",
            if structured { "fields" } else { "type" }
        ));
    }
    Ok(Facts {
        itemsize,
        flags,
        holds_objects,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

/// `(base, shape)`: the base's facts and the element count.
fn sub_array(
    arena: &Arena<'_>,
    subarray: V,
    depth: usize,
    visits: &mut u64,
) -> Result<(Facts, u64), String> {
    let [base, shape] = arena
        .tuple(subarray)
        .ok_or("sub-array must be (dtype, shape)")?
    else {
        return Err("sub-array must be (dtype, shape)".into());
    };
    let b = facts_at(arena, *base, depth + 1, visits)?;
    let count = match arena.tuple(*shape) {
        Some(dims) => dims.iter().try_fold(1u64, |acc, d| {
            arena.u64(*d).and_then(|d| acc.checked_mul(d))
        }),
        None => arena.u64(*shape),
    }
    .ok_or("sub-array shape must be non-negative integers")?;
    Ok((b, count))
}

/// The fields' combined flags and whether any holds objects. Every field must lie inside the
/// item, and a field holding objects may not overlap another (numpy refuses to build such a
/// dtype: writing one field would forge the other's pointers).
fn struct_fields(
    arena: &Arena<'_>,
    names: V,
    fields: V,
    itemsize: u64,
    depth: usize,
    visits: &mut u64,
    problems: &mut Vec<String>,
) -> Result<(u64, bool), String> {
    let names = arena.tuple(names).ok_or("dtype names must be a tuple")?;
    let Some(Item::Dict(pairs)) = arena.get(fields) else {
        return Err("dtype fields must be a dict".into());
    };
    if names.len() > skvault_format::dtype::MAX_FIELDS {
        return Err("structured dtype with too many fields".into());
    }
    *visits += pairs.len() as u64;
    // numpy walks the fields dict (not the names) to free objects: both must list the same
    // fields, titles aside. Later entries win, as in a dict.
    let mut entries: Vec<(&str, V)> = Vec::with_capacity(pairs.len());
    for (k, e) in pairs {
        let k = arena.str(*k).ok_or("dtype field names must be str")?;
        entries.retain(|(name, _)| *name != k);
        entries.push((k, *e));
    }
    let get = |name: &str| entries.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
    let mut listed: HashSet<&str> = HashSet::new();
    let mut spans: Vec<(u64, u64, bool)> = Vec::with_capacity(names.len());
    let mut flags = 0u64;
    let mut holds = false;
    for n in names {
        let name = arena.str(*n).ok_or("dtype field names must be str")?;
        if !listed.insert(name) {
            problems.push(format!("field {name:?} listed twice"));
        }
        let entry_v = get(name).ok_or_else(|| format!("field {name:?} missing from fields"))?;
        let entry = arena
            .tuple(entry_v)
            .ok_or("a field must be (dtype, offset[, title])")?;
        let (dt, offset, title) = match entry {
            [dt, offset] => (*dt, *offset, None),
            [dt, offset, title] => (*dt, *offset, Some(*title)),
            _ => return Err("a field must be (dtype, offset[, title])".into()),
        };
        if let Some(t) = title.and_then(|t| arena.str(t)) {
            // The title is a second key for the same entry.
            if get(t) != Some(entry_v) && t != name {
                problems.push(format!(
                    "title {t:?} of field {name:?} is not a key of its own"
                ));
            }
            listed.insert(t);
        }
        let f = facts_at(arena, dt, depth + 1, visits)?;
        if let Some(p) = &f.problem {
            problems.push(format!("field {name:?}: {p}"));
        }
        let offset = c_int(Some(&offset))
            .and_then(|o| u64::try_from(o).ok())
            .ok_or("field offsets must be non-negative C ints")?;
        match offset.checked_add(f.itemsize) {
            Some(end) if end <= itemsize => {}
            _ => problems.push(format!("field {name:?} ends beyond the item")),
        }
        flags |= f.flags;
        holds |= f.holds_objects;
        spans.push((offset, offset.saturating_add(f.itemsize), f.holds_objects));
    }
    if entries.iter().any(|(k, _)| !listed.contains(k)) {
        problems.push("the fields dict holds fields the names do not list".into());
    }
    spans.sort_unstable();
    let (mut end_any, mut end_obj) = (0u64, 0u64);
    for (start, end, obj) in spans {
        if start == end {
            continue;
        }
        if start < end_obj || (obj && start < end_any) {
            problems.push("a field holding objects overlaps another field".into());
            break;
        }
        end_any = end_any.max(end);
        if obj {
            end_obj = end_obj.max(end);
        }
    }
    Ok((flags, holds))
}

/// The dtypes a state refers to (fields and sub-array base): a later BUILD on one of them would
/// change this dtype behind its flags.
pub fn children(arena: &Arena<'_>, state: V) -> Vec<u32> {
    let mut out = Vec::new();
    let Some(st) = arena.tuple(state) else {
        return out;
    };
    if let Some(V::Item(i)) = st
        .get(2)
        .and_then(|s| arena.tuple(*s))
        .and_then(|s| s.first())
    {
        out.push(*i);
    }
    if let Some(Item::Dict(pairs)) = st.get(4).and_then(|f| arena.get(*f)) {
        for (_, e) in pairs {
            if let Some(V::Item(i)) = arena.tuple(*e).and_then(|t| t.first()) {
                out.push(*i);
            }
        }
    }
    out
}
