//! numpy dtypes as pickles write them: `numpy.dtype(typestr, False, True)` (REDUCE) followed
//! by BUILD with numpy's state tuple
//! `(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])`.

use std::collections::HashMap;

use skvault_format::dtype::Field;
use skvault_format::DType;

use crate::dtype_facts::{int, MAX_NESTING};
use crate::value::{Arena, How, Item, V};

/// `NPY_ALIGNED_STRUCT` in the dtype flags: `dtype.isalignedstruct`.
const ALIGNED_STRUCT: i64 = 0x80;
/// dtypes visited by one decoding (fields of fields...): the stream can make one dtype the
/// field of many others, and decoding must stay cheap.
const MAX_VISITS: usize = 100_000;

/// What the reader needs of a dtype.
#[derive(Debug, Clone)]
pub struct NpDtype {
    /// Bytes per element, as numpy computes it (known even for unsupported dtypes).
    pub itemsize: u64,
    /// Object dtype, or a structured dtype with an object field.
    pub has_object: bool,
    /// The skvault form, or why there is none. `Kind::Object` stands for `dtype('O')`.
    pub converted: Result<DType, String>,
}

/// True if `v` is a `numpy.dtype(...)` call.
pub fn is_dtype(arena: &Arena<'_>, v: V) -> bool {
    arena.instance(v).is_some_and(|inst| {
        inst.how == How::Reduce
            && arena
                .global(inst.callable)
                .is_some_and(|g| g.module == "numpy" && g.name == "dtype")
    })
}

/// Decodes the dtype `v` (a field's dtype when `as_field`, which may be a sub-array).
///
/// A dtype that numpy's pickler could not have written (flags or sizes that disagree with its
/// content, see `dtype_facts`) is refused: numpy would read it otherwise than its fields say.
pub fn decode(arena: &Arena<'_>, v: V, as_field: bool) -> Result<NpDtype, String> {
    let facts = crate::dtype_facts::facts(arena, v, &mut 0)?;
    if let Some(problem) = facts.problem {
        return Err(format!("a forged numpy dtype: {problem}"));
    }
    decode_at(arena, v, as_field, 0, &mut 0)
}

fn decode_at(
    arena: &Arena<'_>,
    v: V,
    as_field: bool,
    depth: usize,
    visits: &mut usize,
) -> Result<NpDtype, String> {
    *visits += 1;
    if depth > MAX_NESTING || *visits > MAX_VISITS {
        return Err("dtype nests too deeply or has too many fields".into());
    }
    if !is_dtype(arena, v) {
        return Err("expected a numpy dtype".into());
    }
    let inst = arena.instance(v).ok_or("expected a numpy dtype")?;
    let typestr = arena
        .tuple(inst.args)
        .and_then(|a| a.first())
        .and_then(|t| arena.str(*t))
        .ok_or("numpy.dtype needs a type string")?;
    let state = match inst.states.as_slice() {
        [] => None,
        [s] => Some(arena.tuple(*s).ok_or("dtype state must be a tuple")?),
        _ => return Err("dtype state set twice".into()),
    };
    let mut chars = typestr.chars();
    let kind = chars.next().ok_or("empty dtype string")?;
    let digits: Option<u64> = chars.as_str().parse().ok();
    let Some(st) = state else {
        let size = digits.ok_or_else(|| format!("dtype {typestr:?} without a size"))?;
        let itemsize = if kind == 'U' {
            size.saturating_mul(4)
        } else {
            size
        };
        return scalar(kind, '=', itemsize, digits);
    };
    match (int(st.first()), st.len()) {
        (Some(3), 8) | (Some(4), 9) => {}
        _ => return Err("unsupported dtype state (numpy writes version 3 or 4)".into()),
    }
    let endian = st
        .get(1)
        .and_then(|e| arena.str(*e))
        .and_then(|e| e.chars().next())
        .ok_or("dtype state needs a byte order")?;
    let elsize = int(st.get(5)).ok_or("dtype state needs an element size")?;
    let flags = int(st.get(7)).ok_or("dtype state needs flags")?;
    let names = st.get(3).copied().unwrap_or(V::None);
    let subarray = st.get(2).copied().unwrap_or(V::None);
    if names != V::None {
        return structured(
            arena,
            names,
            st.get(4).copied(),
            elsize,
            flags,
            depth,
            visits,
        );
    }
    if subarray != V::None {
        let parts = arena
            .tuple(subarray)
            .ok_or("sub-array must be (dtype, shape)")?;
        let [base, shape] = parts else {
            return Err("sub-array must be (dtype, shape)".into());
        };
        let base = decode_at(arena, *base, false, depth + 1, visits)?;
        let shape: Vec<u64> = match arena.tuple(*shape) {
            Some(dims) => dims
                .iter()
                .map(|d| arena.u64(*d))
                .collect::<Option<_>>()
                .ok_or("sub-array shape must be non-negative integers")?,
            None => vec![arena.u64(*shape).ok_or("bad sub-array shape")?],
        };
        let itemsize = u64::try_from(elsize).ok().filter(|_| elsize >= 0);
        let itemsize = match itemsize {
            Some(n) => n,
            None => shape
                .iter()
                .try_fold(base.itemsize, |acc, d| acc.checked_mul(*d))
                .ok_or("sub-array too large")?,
        };
        let converted = if as_field {
            base.converted.map(|b| DType::SubArray {
                base: Box::new(b),
                shape,
            })
        } else {
            Err("a sub-array dtype outside a structured dtype".into())
        };
        return Ok(NpDtype {
            itemsize,
            has_object: base.has_object,
            converted,
        });
    }
    let itemsize = match (kind, u64::try_from(elsize).ok()) {
        ('S' | 'V' | 'U', Some(n)) => n,
        ('U', None) => digits
            .ok_or("unicode dtype without size")?
            .saturating_mul(4),
        (_, _) => digits.ok_or_else(|| format!("dtype {typestr:?} without a size"))?,
    };
    scalar(kind, endian, itemsize, digits)
}

fn scalar(kind: char, endian: char, itemsize: u64, digits: Option<u64>) -> Result<NpDtype, String> {
    if kind == 'O' {
        return Ok(NpDtype {
            itemsize: 8,
            has_object: true,
            converted: Ok(DType::object()),
        });
    }
    let count = match kind {
        'U' => itemsize / 4,
        'S' | 'V' => itemsize,
        _ => digits.unwrap_or(itemsize),
    };
    let single = matches!(kind, 'S' | 'V' | 'b') || (matches!(kind, 'i' | 'u') && count == 1);
    let order = match (single, endian) {
        (true, _) => Some('|'),
        (false, '<' | '=') => Some('<'),
        (false, '>') => Some('>'),
        _ => None,
    };
    let converted = match (kind, order) {
        ('M' | 'm', _) => Err("datetime and timedelta dtypes are not supported".to_string()),
        (_, None) => Err(format!("unexpected byte order {endian:?}")),
        (_, Some(order)) => {
            let s = format!("{order}{kind}{count}");
            DType::parse_scalar(&s, "dtype").map_err(|_| format!("dtype {s} is not supported"))
        }
    };
    Ok(NpDtype {
        itemsize,
        has_object: false,
        converted,
    })
}

fn structured(
    arena: &Arena<'_>,
    names: V,
    fields: Option<V>,
    elsize: i64,
    flags: i64,
    depth: usize,
    visits: &mut usize,
) -> Result<NpDtype, String> {
    let names = arena.tuple(names).ok_or("dtype names must be a tuple")?;
    let fields = match fields.and_then(|f| arena.get(f)) {
        Some(Item::Dict(pairs)) => pairs,
        _ => return Err("structured dtype without a fields dict".into()),
    };
    if names.len() > skvault_format::dtype::MAX_FIELDS {
        return Err("structured dtype with too many fields".into());
    }
    // Later entries win, as in a dict.
    let fields: HashMap<&str, V> = fields
        .iter()
        .filter_map(|(k, e)| Some((arena.str(*k)?, *e)))
        .collect();
    let itemsize = u64::try_from(elsize).map_err(|_| "structured dtype without a size")?;
    let mut has_object = false;
    let mut out: Result<Vec<Field>, String> = Ok(Vec::with_capacity(names.len()));
    for n in names {
        let name = arena.str(*n).ok_or("field names must be str")?;
        let entry = fields
            .get(name)
            .and_then(|e| arena.tuple(*e))
            .ok_or_else(|| format!("field {name:?} is missing from the fields dict"))?;
        let (dt, offset, titled) = match entry {
            [dt, offset] => (*dt, *offset, false),
            [dt, offset, _title] => (*dt, *offset, true),
            _ => return Err(format!("field {name:?} must be (dtype, offset)")),
        };
        let field = decode_at(arena, dt, true, depth + 1, visits)?;
        has_object |= field.has_object;
        let offset = arena
            .u64(offset)
            .ok_or("field offsets must be non-negative")?;
        if let Ok(list) = &mut out {
            match (titled, field.converted) {
                (true, _) => {
                    out = Err("structured dtypes with field titles are not supported".into())
                }
                (false, Err(e)) => out = Err(e),
                (false, Ok(dtype)) => list.push(Field {
                    name: name.to_string(),
                    dtype,
                    offset,
                }),
            }
        }
    }
    let converted = out.map(|fields| DType::Structured {
        fields,
        itemsize,
        aligned: flags & ALIGNED_STRUCT != 0,
    });
    // The writer accepts exactly what a reader will: the same validation as the manifest's.
    let converted = converted.and_then(|dt| {
        if has_object {
            return Err("structured dtypes with object fields are not supported".into());
        }
        DType::from_json(&dt.to_json(), "dtype")
            .map(|_| dt)
            .map_err(|e| e.to_string())
    });
    Ok(NpDtype {
        itemsize,
        has_object,
        converted,
    })
}
