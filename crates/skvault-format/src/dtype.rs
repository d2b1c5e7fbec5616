//! Array element types allowed in a `.skv` file.
//!
//! Only plain-old-data types exist here: booleans, integers, floats, complex
//! numbers, fixed-width byte and unicode strings, and structured (record)
//! types built from them, such as scikit-learn's tree node struct. There is
//! no object dtype: arrays of Python objects live in the object tree.
//!
//! JSON forms (see docs/FORMAT.md):
//! - scalar: numpy's `dtype.str`, e.g. `"<f8"`, `"|b1"`, `"|S5"`, `"<U3"`;
//! - structured: `{"fields": [[name, dtype, offset], ...], "itemsize": n, "aligned": bool}`;
//! - sub-array (only as a field type): `{"subarray": dtype, "shape": [..]}`.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::error::{FormatError, Result};
use crate::pointer::Pointer;
use crate::strict_json::{Json, Obj};

/// Largest itemsize accepted for any dtype: numpy's own limit (2^31 - 1 bytes).
pub const MAX_ITEMSIZE: u64 = (1 << 31) - 1;
/// Largest number of fields in one structured dtype.
pub const MAX_FIELDS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
    /// `|`: single-byte types and byte strings, where order does not apply.
    NotApplicable,
}

impl ByteOrder {
    fn char(self) -> char {
        match self {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
            ByteOrder::NotApplicable => '|',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    UInt,
    Float,
    Complex,
    /// `S`: fixed-width bytes; the number is the width in bytes.
    Bytes,
    /// `U`: fixed-width UCS-4 text; the number is the width in characters.
    Unicode,
    /// `V`: raw bytes (padding inside structured types, opaque records).
    Void,
    /// `O`: Python objects. Only as the value of a dtype node (`dtype=object` in a parameter),
    /// never as the type of array bytes.
    Object,
}

impl Kind {
    fn char(self) -> char {
        match self {
            Kind::Bool => 'b',
            Kind::Int => 'i',
            Kind::UInt => 'u',
            Kind::Float => 'f',
            Kind::Complex => 'c',
            Kind::Bytes => 'S',
            Kind::Unicode => 'U',
            Kind::Void => 'V',
            Kind::Object => 'O',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub dtype: DType,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DType {
    /// `count` is bytes for every kind but `Unicode`, where it is characters.
    Scalar {
        order: ByteOrder,
        kind: Kind,
        count: u64,
    },
    Structured {
        fields: Vec<Field>,
        itemsize: u64,
        aligned: bool,
    },
    SubArray {
        base: Box<DType>,
        shape: Vec<u64>,
    },
}

impl DType {
    /// Size in bytes of one element. Always validated to be at most `MAX_ITEMSIZE`.
    pub fn itemsize(&self) -> u64 {
        match self {
            DType::Scalar {
                kind: Kind::Unicode,
                count,
                ..
            } => count.saturating_mul(4),
            DType::Scalar { count, .. } => *count,
            DType::Structured { itemsize, .. } => *itemsize,
            DType::SubArray { base, shape } => shape
                .iter()
                .fold(base.itemsize(), |acc, d| acc.saturating_mul(*d)),
        }
    }

    /// numpy's `dtype.alignment` on 64-bit platforms: the natural alignment of numbers
    /// (complex: of their parts), 4 for `U`, 1 for `b1`, `S` and `V`; a sub-array's is its
    /// base's; an aligned struct's is the largest of its fields', an unaligned one's 1.
    pub fn alignment(&self) -> u64 {
        match self {
            DType::Scalar { kind, count, .. } => match kind {
                Kind::Int | Kind::UInt | Kind::Float => (*count).max(1),
                Kind::Complex => (*count / 2).max(1),
                Kind::Unicode => 4,
                Kind::Object => 8,
                Kind::Bool | Kind::Bytes | Kind::Void => 1,
            },
            DType::Structured {
                fields, aligned, ..
            } => match aligned {
                true => fields
                    .iter()
                    .map(|f| f.dtype.alignment())
                    .max()
                    .unwrap_or(1),
                false => 1,
            },
            DType::SubArray { base, .. } => base.alignment(),
        }
    }

    /// For a structured dtype, the `(offset, size)` of each field; `None` for other dtypes.
    pub fn field_ranges(&self) -> Option<Vec<(u64, u64)>> {
        match self {
            DType::Structured { fields, .. } => Some(
                fields
                    .iter()
                    .map(|f| (f.offset, f.dtype.itemsize()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The byte ranges the `fields` filter splits records into, when it applies.
    pub fn field_segments(&self) -> Option<Vec<(usize, usize)>> {
        crate::codec::segments(&self.field_ranges()?, self.itemsize())
    }

    /// numpy's `dtype.str` for scalar types.
    pub fn scalar_str(&self) -> Option<String> {
        match self {
            DType::Scalar {
                kind: Kind::Object, ..
            } => Some("|O".into()),
            DType::Scalar { order, kind, count } => {
                Some(format!("{}{}{}", order.char(), kind.char(), count))
            }
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            DType::Scalar { .. } => Value::String(self.scalar_str().unwrap_or_default()),
            DType::Structured {
                fields,
                itemsize,
                aligned,
            } => {
                let fields: Vec<Value> = fields
                    .iter()
                    .map(|f| json!([f.name, f.dtype.to_json(), f.offset]))
                    .collect();
                let mut m = Map::new();
                m.insert("fields".into(), Value::Array(fields));
                m.insert("itemsize".into(), json!(itemsize));
                m.insert("aligned".into(), json!(aligned));
                Value::Object(m)
            }
            DType::SubArray { base, shape } => {
                let mut m = Map::new();
                m.insert("subarray".into(), base.to_json());
                m.insert("shape".into(), json!(shape));
                Value::Object(m)
            }
        }
    }

    /// Parses and validates a dtype from its JSON form. `path` locates it for error messages.
    pub fn from_json(value: &Value, path: &str) -> Result<DType> {
        Self::from_json_at(&Json::from(value), &Pointer::Root(path))
    }

    /// [`DType::from_json`] for the reader's parsed manifest.
    pub fn from_json_at(value: &Json, path: &Pointer) -> Result<DType> {
        parse(value, path, false)
    }

    /// Like `from_json_at`, but also accepts the object dtype `"|O"`: for dtype values in the tree.
    pub fn from_json_allow_object(value: &Json, path: &Pointer) -> Result<DType> {
        if value.as_str() == Some("|O") {
            return Ok(DType::object());
        }
        Self::from_json_at(value, path)
    }

    /// numpy's object dtype (`dtype('O')`).
    pub fn object() -> DType {
        DType::Scalar {
            order: ByteOrder::NotApplicable,
            kind: Kind::Object,
            count: 8,
        }
    }

    /// Parses numpy's `dtype.str` of a scalar type (`"<f8"`).
    pub fn parse_scalar(s: &str, path: &str) -> Result<DType> {
        parse_scalar(s, &Pointer::Root(path))
    }
}

fn err(path: &Pointer, message: impl Into<String>) -> FormatError {
    FormatError::DType {
        path: path.to_string(),
        message: message.into(),
    }
}

fn parse(value: &Json, path: &Pointer, as_field: bool) -> Result<DType> {
    match value {
        Json::Str(s) => parse_scalar(s, path),
        Json::Object(m) if m.contains_key("fields") => parse_structured(m, path),
        Json::Object(m) if m.contains_key("subarray") => {
            if !as_field {
                return Err(err(
                    path,
                    "a sub-array dtype is only allowed as a field type",
                ));
            }
            parse_subarray(m, path)
        }
        _ => Err(err(
            path,
            "expected a dtype string or a structured/sub-array object",
        )),
    }
}

fn parse_scalar(s: &str, path: &Pointer) -> Result<DType> {
    let mut chars = s.chars();
    let order = match chars.next() {
        Some('<') => ByteOrder::Little,
        Some('>') => ByteOrder::Big,
        Some('|') => ByteOrder::NotApplicable,
        _ => {
            return Err(err(
                path,
                format!("{s:?}: must start with a byte order '<', '>' or '|'"),
            ))
        }
    };
    let kind = match chars.next() {
        Some('b') => Kind::Bool,
        Some('i') => Kind::Int,
        Some('u') => Kind::UInt,
        Some('f') => Kind::Float,
        Some('c') => Kind::Complex,
        Some('S') => Kind::Bytes,
        Some('U') => Kind::Unicode,
        Some('V') => Kind::Void,
        Some('O') => return Err(err(path, "object dtype is not allowed in array blobs")),
        _ => return Err(err(path, format!("{s:?}: unknown dtype kind"))),
    };
    let digits = chars.as_str();
    let canonical = !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'));
    if !canonical {
        return Err(err(path, format!("{s:?}: size must be a decimal number")));
    }
    let count: u64 = digits
        .parse()
        .map_err(|_| err(path, format!("{s:?}: size must be a decimal number")))?;
    let sizes_ok = match kind {
        Kind::Bool => count == 1,
        Kind::Int | Kind::UInt => matches!(count, 1 | 2 | 4 | 8),
        Kind::Float => matches!(count, 2 | 4 | 8),
        Kind::Complex => matches!(count, 8 | 16),
        // Zero widths exist: numpy.str_('') has dtype <U0.
        Kind::Bytes | Kind::Void => count <= MAX_ITEMSIZE,
        Kind::Object => false,
        Kind::Unicode => count <= MAX_ITEMSIZE / 4,
    };
    if !sizes_ok {
        return Err(err(path, format!("{s:?}: size not allowed for this kind")));
    }
    let single_byte =
        matches!(kind, Kind::Bytes | Kind::Void) || (count == 1 && kind != Kind::Unicode);
    let order_ok = if single_byte {
        order == ByteOrder::NotApplicable
    } else {
        order != ByteOrder::NotApplicable
    };
    if !order_ok {
        return Err(err(
            path,
            format!("{s:?}: byte order does not match the kind (numpy writes it differently)"),
        ));
    }
    Ok(DType::Scalar { order, kind, count })
}

fn get_u64(m: &Obj, key: &str, path: &Pointer) -> Result<u64> {
    m.get(key)
        .and_then(Json::as_u64)
        .ok_or_else(|| err(path, format!("'{key}' must be a non-negative integer")))
}

fn parse_structured(m: &Obj, path: &Pointer) -> Result<DType> {
    for key in m.keys() {
        if !matches!(key, "fields" | "itemsize" | "aligned") {
            return Err(err(
                path,
                format!("unknown key '{key}' in structured dtype"),
            ));
        }
    }
    let itemsize = get_u64(m, "itemsize", path)?;
    if itemsize > MAX_ITEMSIZE {
        return Err(err(
            path,
            format!("itemsize {itemsize} exceeds {MAX_ITEMSIZE}"),
        ));
    }
    let aligned = match m.get("aligned") {
        None => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(err(path, "'aligned' must be a boolean")),
    };
    let raw_fields = m
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| err(path, "'fields' must be a list"))?;
    if raw_fields.is_empty() || raw_fields.len() > MAX_FIELDS {
        return Err(err(
            path,
            format!("a structured dtype needs 1 to {MAX_FIELDS} fields"),
        ));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(raw_fields.len());
    let mut names: HashSet<&str> = HashSet::with_capacity(raw_fields.len());
    let mut max_align = 1u64;
    let fields_path = path.key("fields");
    for (i, f) in raw_fields.iter().enumerate() {
        let fpath = fields_path.index(i);
        let parts = f
            .as_array()
            .filter(|p| p.len() == 3)
            .ok_or_else(|| err(&fpath, "a field must be [name, dtype, offset]"))?;
        let (name, dt, offset) = match parts {
            [Json::Str(name), dt, off @ (Json::Int(_) | Json::UInt(_) | Json::Float(_))] => {
                (name, dt, off.as_u64())
            }
            _ => return Err(err(&fpath, "a field must be [name, dtype, offset]")),
        };
        let offset = offset.ok_or_else(|| err(&fpath, "offset must be a non-negative integer"))?;
        // A set, not a scan of `fields`: a scan is quadratic in MAX_FIELDS per dtype.
        if name.is_empty() || !names.insert(name) {
            return Err(err(
                &fpath,
                format!("field name {name:?} is empty or repeated"),
            ));
        }
        let dtype = parse(dt, &fpath, true)?;
        let end = offset
            .checked_add(dtype.itemsize())
            .filter(|end| *end <= itemsize)
            .ok_or_else(|| {
                err(
                    &fpath,
                    format!("field {name:?} does not fit in itemsize {itemsize}"),
                )
            })?;
        debug_assert!(end <= itemsize);
        // numpy refuses (`np.dtype(..., align=True)`) an aligned struct with a field off
        // its alignment, or whose itemsize is not a multiple of the largest alignment.
        let align = dtype.alignment();
        if aligned && offset % align != 0 {
            return Err(err(
                &fpath,
                format!("field {name:?} at offset {offset} of an aligned dtype is not a multiple of its alignment {align}"),
            ));
        }
        max_align = max_align.max(align);
        fields.push(Field {
            name: name.to_string(),
            dtype,
            offset,
        });
    }
    if aligned && itemsize % max_align != 0 {
        return Err(err(
            path,
            format!("itemsize {itemsize} of an aligned dtype is not a multiple of its alignment {max_align}"),
        ));
    }
    Ok(DType::Structured {
        fields,
        itemsize,
        aligned,
    })
}

fn parse_subarray(m: &Obj, path: &Pointer) -> Result<DType> {
    for key in m.keys() {
        if !matches!(key, "subarray" | "shape") {
            return Err(err(path, format!("unknown key '{key}' in sub-array dtype")));
        }
    }
    let base = m
        .get("subarray")
        .ok_or_else(|| err(path, "missing 'subarray'"))?;
    let base = parse(base, &path.key("subarray"), false)?;
    let shape = m
        .get("shape")
        .and_then(Json::as_array)
        .ok_or_else(|| err(path, "'shape' must be a list"))?;
    if shape.is_empty() || shape.len() > 32 {
        return Err(err(path, "a sub-array shape needs 1 to 32 dimensions"));
    }
    // numpy refuses a sub-array of a zero-width string or void ("invalid itemsize in
    // generic type tuple"), and any shape whose dimensions, zeros counted as 1, times the
    // base's itemsize pass a C int, even when a 0 makes the product 0.
    if matches!(
        base,
        DType::Scalar {
            kind: Kind::Bytes | Kind::Unicode | Kind::Void,
            count: 0,
            ..
        }
    ) {
        return Err(err(path, "a sub-array of a zero-width dtype"));
    }
    let mut dims = Vec::with_capacity(shape.len());
    let mut extent = base.itemsize().max(1);
    for d in shape {
        let d = d
            .as_u64()
            .ok_or_else(|| err(path, "sub-array dimensions must be non-negative integers"))?;
        extent = extent
            .checked_mul(d.max(1))
            .filter(|t| *t <= MAX_ITEMSIZE)
            .ok_or_else(|| err(path, "sub-array is too large"))?;
        dims.push(d);
    }
    Ok(DType::SubArray {
        base: Box::new(base),
        shape: dims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_round_trip() {
        for s in [
            "<f8", ">i4", "|b1", "|u1", "|i1", "<c16", "|S7", "<U3", "|V16", "<f2",
        ] {
            let dt = DType::from_json(&json!(s), "/").unwrap();
            assert_eq!(dt.to_json(), json!(s));
        }
        assert_eq!(DType::parse_scalar("<U3", "/").unwrap().itemsize(), 12);
        // numpy.str_('') and friends: zero-width strings exist.
        assert_eq!(DType::parse_scalar("<U0", "/").unwrap().itemsize(), 0);
        assert_eq!(DType::parse_scalar("|S0", "/").unwrap().itemsize(), 0);
    }

    #[test]
    fn rejects_object_and_odd_sizes() {
        for s in [
            "|O",
            "|O8",
            "<f16",
            "<i3",
            "|b2",
            "f8",
            "<f",
            "<f8x",
            "<x8",
            "<i1",
            "|f8",
            "|S00",
            "<U01",
            "|S2147483648",
            "",
        ] {
            assert!(
                DType::from_json(&json!(s), "/").is_err(),
                "{s} must be rejected"
            );
        }
    }

    #[test]
    fn structured_fields_must_fit() {
        let ok =
            json!({"fields": [["a", "<i8", 0], ["b", "<f8", 8]], "itemsize": 16, "aligned": true});
        let dt = DType::from_json(&ok, "/").unwrap();
        assert_eq!(dt.itemsize(), 16);
        assert_eq!(dt.to_json(), ok);
        let overflow = json!({"fields": [["a", "<i8", 12]], "itemsize": 16});
        assert!(DType::from_json(&overflow, "/").is_err());
        let huge_offset = json!({"fields": [["a", "<i8", u64::MAX]], "itemsize": 16});
        assert!(DType::from_json(&huge_offset, "/").is_err());
        let dup = json!({"fields": [["a", "<i8", 0], ["a", "<i8", 8]], "itemsize": 16});
        assert!(DType::from_json(&dup, "/").is_err());
    }

    #[test]
    fn subarray_only_inside_struct_and_bounded() {
        let top = json!({"subarray": "<f8", "shape": [3]});
        assert!(DType::from_json(&top, "/").is_err());
        let ok =
            json!({"fields": [["v", {"subarray": "<f8", "shape": [2, 3]}, 0]], "itemsize": 48});
        assert_eq!(DType::from_json(&ok, "/").unwrap().itemsize(), 48);
        let huge = json!({"fields": [["v", {"subarray": "<f8", "shape": [1u64 << 40, 1u64 << 40]}, 0]], "itemsize": 48});
        assert!(DType::from_json(&huge, "/").is_err());
    }
}
