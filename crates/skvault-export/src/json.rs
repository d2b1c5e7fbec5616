//! `.skv` <-> portable JSON (see docs/EXPORT.md and docs/export.schema.json).
//!
//! The document is the file's manifest with every array reference resolved to its data:
//! `root` (and `validation`) are the object tree exactly as the manifest writes it (floats
//! tagged, NaN payloads kept), and `arrays[i]` holds dtype, shape, order and the elements as
//! nested lists in logical (C index) order. Array elements: integers and bools as JSON
//! numbers and booleans; floats as the shortest decimal that reads back to the same bits
//! (float32 as the shortest float32 decimal), NaN as `"nan"` (the canonical quiet NaN) or
//! `"nan:<hex bits>"`, infinities as `"inf"` / `"-inf"`; complex as `[re, im]`; byte
//! strings as base64; text as strings; records as lists of their fields in dtype order;
//! sub-arrays as nested lists.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use skvault_format::dtype::{ByteOrder, Kind};
use skvault_format::element::{self, Element};
use skvault_format::float_json::{
    f32_from_text, f32_to_json, f64_from_text, f64_to_json, FloatTextError,
};
use skvault_format::node::Decoder;
use skvault_format::{ArrayInput, DType, Manifest, Order, SkvFile, TrustSet, WriteOptions};

use crate::error::{document, ExportError, Result};

/// The `format` member of every document.
pub const FORMAT: &str = "skvault-json";
pub const VERSION: u64 = 1;

/// Progress: (array bytes done, array bytes in all).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// The JSON values of the document's arrays may number this many per raw byte ...
pub const VALUES_PER_BYTE: u64 = 4;
/// ... plus this many, for empty and zero-width arrays.
pub const VALUES_SLACK: u64 = 1 << 22;

/// How many JSON values (elements, records, lists) one element of `dtype` becomes, saturating.
fn values_per_element(dtype: &DType) -> u64 {
    match dtype {
        DType::Scalar { .. } => 1,
        DType::Structured { fields, .. } => fields.iter().fold(1u64, |acc, f| {
            acc.saturating_add(values_per_element(&f.dtype))
        }),
        DType::SubArray { base, shape } => nested_values(shape, values_per_element(base)),
    }
}

/// The JSON values of an array of `shape`, each element `per_element` values: the elements
/// plus every nested list, counting the lists a zero dimension still makes (`[[], []]`).
fn nested_values(shape: &[u64], per_element: u64) -> u64 {
    let extent = skvault_format::manifest::extent(shape).unwrap_or(u64::MAX);
    extent
        .saturating_mul(per_element)
        .saturating_add(extent.saturating_mul(2))
}

/// The portable JSON document of an open `.skv` file.
///
/// Its size is bounded before any array is converted: the values it would hold (elements,
/// records, nested lists) at most [`VALUES_PER_BYTE`] per raw byte of the arrays plus
/// [`VALUES_SLACK`], so that empty shapes, zero-width dtypes and records of many
/// zero-width fields cannot make it explode.
pub fn to_document(file: &SkvFile, progress: Progress<'_>) -> Result<Value> {
    document_checked(file, &mut |done, total| {
        progress(done, total);
        Ok(())
    })
}

/// [`to_document`] with a callback that may stop it between two arrays.
pub(crate) fn document_checked(
    file: &SkvFile,
    progress: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<Value> {
    let m: &Manifest = file.manifest();
    let total: u64 = m
        .arrays
        .iter()
        .map(|e| e.raw_length)
        .fold(0, u64::saturating_add);
    let values = m
        .arrays
        .iter()
        .map(|e| nested_values(&e.shape, values_per_element(&e.dtype)))
        .fold(0, u64::saturating_add);
    let max = total
        .saturating_mul(VALUES_PER_BYTE)
        .saturating_add(VALUES_SLACK);
    if values > max {
        return Err(ExportError::LimitExceeded {
            limit: "JSON values of the arrays (elements, records and lists)",
            max,
        });
    }
    let mut done = 0u64;
    let mut arrays = Vec::with_capacity(m.arrays.len());
    for (i, entry) in m.arrays.iter().enumerate() {
        let raw = file.read_array(i, true)?;
        let path = format!("/arrays/{i}/data");
        let data = array_to_json(&entry.dtype, &entry.shape, entry.order, &raw, &path)?;
        arrays.push(json!({
            "dtype": entry.dtype.to_json(),
            "shape": entry.shape,
            "order": match entry.order { Order::C => "C", Order::F => "F" },
            "data": data,
        }));
        done += entry.raw_length;
        progress(done, total)?;
    }
    let mut doc = Map::new();
    doc.insert("format".into(), FORMAT.into());
    doc.insert("version".into(), VERSION.into());
    doc.insert("writer".into(), m.writer.clone().into());
    doc.insert("metadata".into(), Value::Object(m.metadata.clone()));
    doc.insert("root".into(), m.root.to_json());
    if let Some(v) = &m.validation {
        doc.insert("validation".into(), v.to_json());
    }
    doc.insert("arrays".into(), Value::Array(arrays));
    Ok(Value::Object(doc))
}

/// Writes the JSON document of `src` (a `.skv` file) to `out`, atomically.
pub fn export_json(src: &Path, out: &Path, progress: Progress<'_>) -> Result<()> {
    crate::refuse_input_as_output(out, src)?;
    let file = SkvFile::open(src)?;
    let doc = to_document(&file, progress)?;
    crate::write_atomic(out, |w: &mut dyn Write| {
        serde_json::to_writer(&mut *w, &doc).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// Reads a JSON document back into `.skv` bytes, refusing names outside `trust` (the check
/// `skvault.load` makes) and anything the reader would refuse.
pub fn from_document(doc: Value, trust: &TrustSet, options: WriteOptions) -> Result<Vec<u8>> {
    let Value::Object(mut m) = doc else {
        return Err(document("", "the document must be a JSON object"));
    };
    match m.remove("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        _ => return Err(document("/format", format!("must be \"{FORMAT}\""))),
    }
    match m.remove("version").as_ref().and_then(Value::as_u64) {
        Some(VERSION) => {}
        _ => return Err(document("/version", format!("must be {VERSION}"))),
    }
    let metadata = match m.remove("metadata") {
        Some(Value::Object(md)) => md,
        None => Map::new(),
        Some(_) => return Err(document("/metadata", "must be an object")),
    };
    let Some(Value::Array(arrays)) = m.remove("arrays") else {
        return Err(document("/arrays", "must be a list"));
    };
    let mut decoder = Decoder::new(arrays.len());
    let root = decoder.decode(
        m.remove("root")
            .ok_or_else(|| document("/root", "missing"))?,
        "/root",
    )?;
    let validation = match m.remove("validation") {
        Some(v) => Some(decoder.decode(v, "/validation")?),
        None => None,
    };
    let mut untrusted = trust.untrusted_names(&root);
    if let Some(v) = &validation {
        untrusted.extend(trust.untrusted_names(v));
    }
    if !untrusted.is_empty() {
        untrusted.sort();
        untrusted.dedup();
        return Err(ExportError::Untrusted { names: untrusted });
    }
    let mut layouts = Vec::with_capacity(arrays.len());
    let mut blobs = Vec::with_capacity(arrays.len());
    for (i, a) in arrays.into_iter().enumerate() {
        let path = format!("/arrays/{i}");
        let Value::Object(mut a) = a else {
            return Err(document(&path, "must be an object"));
        };
        let dtype = DType::from_json(
            a.get("dtype").unwrap_or(&Value::Null),
            &format!("{path}/dtype"),
        )?;
        let shape: Vec<u64> = match a.get("shape") {
            Some(Value::Array(s)) => s
                .iter()
                .map(|d| {
                    d.as_u64().ok_or_else(|| {
                        document(
                            &format!("{path}/shape"),
                            "must be a list of non-negative integers",
                        )
                    })
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(document(
                    &format!("{path}/shape"),
                    "must be a list of non-negative integers",
                ))
            }
        };
        let order = match a.get("order").and_then(Value::as_str) {
            Some("C") | None => Order::C,
            Some("F") => Order::F,
            Some(_) => return Err(document(&format!("{path}/order"), "must be \"C\" or \"F\"")),
        };
        let data = a
            .remove("data")
            .ok_or_else(|| document(&format!("{path}/data"), "missing"))?;
        let bytes = array_from_json(&dtype, &shape, order, data, &format!("{path}/data"))?;
        layouts.push((dtype, shape, order));
        blobs.push(bytes);
    }
    let inputs: Vec<ArrayInput<'_>> = layouts
        .iter()
        .zip(&blobs)
        .map(|((dtype, shape, order), data)| ArrayInput {
            dtype: dtype.clone(),
            shape: shape.clone(),
            order: *order,
            data,
        })
        .collect();
    let prepared =
        skvault_format::prepare_with_validation(root, validation, &inputs, metadata, options)?;
    let bytes = prepared.to_vec()?;
    // Everything the reader checks (layout, dtypes against the allow-list, unreferenced
    // arrays), before anything reaches the disk.
    SkvFile::from_bytes(bytes.clone())?;
    Ok(bytes)
}

/// Reads the JSON document at `src` and writes the `.skv` file `out`, atomically.
pub fn import_json(src: &Path, out: &Path, trust: &TrustSet, options: WriteOptions) -> Result<()> {
    crate::refuse_input_as_output(out, src)?;
    let text = std::fs::read(src).map_err(|source| ExportError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    let doc = skvault_format::strict_json::from_slice(&text)
        .map_err(|e| document("", format!("not JSON: {e}")))?;
    let bytes = from_document(doc, trust, options)?;
    crate::write_atomic(out, |w: &mut dyn Write| w.write_all(&bytes))
}

/// The byte offset in the raw data of the element at C index `i` (F-ordered arrays store
/// the first index fastest).
fn storage_index(i: usize, shape: &[usize], order: Order) -> usize {
    if order == Order::C || shape.len() < 2 {
        return i;
    }
    let mut rest = i;
    let mut idx = vec![0usize; shape.len()];
    for (d, n) in shape.iter().enumerate().rev() {
        let n = (*n).max(1);
        idx[d] = rest % n;
        rest /= n;
    }
    let mut pos = 0;
    let mut stride = 1;
    for (d, n) in shape.iter().enumerate() {
        pos += idx[d] * stride;
        stride *= *n;
    }
    pos
}

fn usize_shape(shape: &[u64], path: &str) -> Result<(Vec<usize>, usize)> {
    let dims: Vec<usize> = shape
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| document(path, "shape too large")))
        .collect::<Result<_>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .ok_or_else(|| document(path, "shape too large"))?;
    Ok((dims, count))
}

fn array_to_json(
    dtype: &DType,
    shape: &[u64],
    order: Order,
    raw: &[u8],
    path: &str,
) -> Result<Value> {
    let (dims, count) = usize_shape(shape, path)?;
    let size = usize::try_from(dtype.itemsize()).map_err(|_| document(path, "itemsize"))?;
    let mut flat = Vec::with_capacity(count);
    for i in 0..count {
        let at = storage_index(i, &dims, order) * size;
        let bytes = raw
            .get(at..at + size)
            .ok_or_else(|| document(path, "array shorter than its shape"))?;
        flat.push(elem_to_json(dtype, bytes, path)?);
    }
    Ok(nest(flat, &dims))
}

/// Splits `flat` (C order) into nested lists of `dims`.
fn nest(flat: Vec<Value>, dims: &[usize]) -> Value {
    match dims {
        [] => flat.into_iter().next().unwrap_or(Value::Null),
        [_] => Value::Array(flat),
        [first, rest @ ..] => {
            let inner: usize = rest.iter().product();
            if inner == 0 {
                return Value::Array((0..*first).map(|_| nest(Vec::new(), rest)).collect());
            }
            let mut it = flat.into_iter();
            let mut out = Vec::with_capacity(*first);
            for _ in 0..*first {
                let chunk: Vec<Value> = it.by_ref().take(inner).collect();
                out.push(nest(chunk, rest));
            }
            Value::Array(out)
        }
    }
}

fn elem_to_json(dtype: &DType, bytes: &[u8], path: &str) -> Result<Value> {
    match dtype {
        DType::Scalar { .. } => {
            let element = element::decode(dtype, bytes).ok_or_else(|| {
                document(
                    path,
                    format!("dtype {} has no JSON encoding", dtype.to_json()),
                )
            })?;
            Ok(match element {
                Element::Bool(b) => Value::Bool(b),
                Element::Int(i) => json!(i),
                Element::UInt(u) => json!(u),
                Element::F64(x) => f64_to_json(x),
                Element::F32(x) => f32_to_json(x),
                Element::Complex128(re, im) => json!([f64_to_json(re), f64_to_json(im)]),
                Element::Complex64(re, im) => json!([f32_to_json(re), f32_to_json(im)]),
                Element::Bytes(b) | Element::Void(b) => Value::String(B64.encode(b)),
                Element::Unicode(text) => {
                    let mut s = String::new();
                    // The text ends at its first NUL (numpy's padding).
                    for unit in text.code_units().take_while(|u| *u != 0) {
                        s.push(
                            char::from_u32(unit)
                                .ok_or_else(|| document(path, "invalid code point"))?,
                        );
                    }
                    Value::String(s)
                }
            })
        }
        DType::Structured { fields, .. } => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let start =
                    usize::try_from(f.offset).map_err(|_| document(path, "field offset"))?;
                let size = usize::try_from(f.dtype.itemsize())
                    .map_err(|_| document(path, "field size"))?;
                let b = bytes
                    .get(start..start + size)
                    .ok_or_else(|| document(path, "field outside its record"))?;
                out.push(elem_to_json(&f.dtype, b, path)?);
            }
            Ok(Value::Array(out))
        }
        DType::SubArray { base, shape } => array_to_json(base, shape, Order::C, bytes, path),
    }
}

fn array_from_json(
    dtype: &DType,
    shape: &[u64],
    order: Order,
    data: Value,
    path: &str,
) -> Result<Vec<u8>> {
    // The reader's bounds (at most 64 dimensions, numpy's size limit, few empty rows),
    // before anything is allocated; the elements themselves are then counted from the
    // document's lists, never from the declared shape.
    if shape.len() > 64 {
        return Err(document(path, "more than 64 dimensions"));
    }
    skvault_format::manifest::check_shape(shape, dtype.itemsize())
        .map_err(|m| document(path, m))?;
    let (dims, count) = usize_shape(shape, path)?;
    let size = usize::try_from(dtype.itemsize()).map_err(|_| document(path, "itemsize"))?;
    let mut flat = Vec::new();
    flatten(data, &dims, path, &mut flat)?;
    if flat.len() != count {
        return Err(document(path, "the lists do not hold the shape's elements"));
    }
    let total = count
        .checked_mul(size)
        .ok_or_else(|| document(path, "array too large"))?;
    let mut raw = vec![0u8; total];
    for (i, v) in flat.into_iter().enumerate() {
        let at = storage_index(i, &dims, order) * size;
        let slot = raw
            .get_mut(at..at + size)
            .ok_or_else(|| document(path, "element outside the array"))?;
        elem_from_json(dtype, v, slot, &format!("{path}/{i}"))?;
    }
    Ok(raw)
}

/// Checks that `v` is nested lists of exactly `dims` and collects the elements in C order.
fn flatten(v: Value, dims: &[usize], path: &str, out: &mut Vec<Value>) -> Result<()> {
    match dims {
        [] => {
            out.push(v);
            Ok(())
        }
        [n, rest @ ..] => {
            let Value::Array(items) = v else {
                return Err(document(
                    path,
                    format!("expected a list of {n} items (shape)"),
                ));
            };
            if items.len() != *n {
                return Err(document(
                    path,
                    format!("{} items where the shape says {n}", items.len()),
                ));
            }
            for (i, item) in items.into_iter().enumerate() {
                flatten(item, rest, &format!("{path}/{i}"), out)?;
            }
            Ok(())
        }
    }
}

/// A float in the document: a JSON number, or a string form (`skvault_format::float_json`).
fn json_float<T>(
    v: &Value,
    path: &str,
    number: impl FnOnce(f64) -> T,
    text: impl FnOnce(&str) -> std::result::Result<T, FloatTextError>,
) -> Result<T> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(number)
            .ok_or_else(|| document(path, "expected a number")),
        Value::String(s) => text(s).map_err(|e| document(path, e.to_string())),
        _ => Err(document(path, "expected a number")),
    }
}

/// The float64 `v` stands for, bit-exact: `"nan:<16 hex digits>"` keeps its payload.
fn json_to_f64(v: &Value, path: &str) -> Result<f64> {
    json_float(v, path, |x| x, f64_from_text)
}

/// The float32 `v` stands for, bit-exact: `"nan:<8 hex digits>"` keeps its payload.
fn json_to_f32(v: &Value, path: &str) -> Result<f32> {
    json_float(v, path, |x| x as f32, f32_from_text)
}

fn complex_parts<'v>(v: &'v Value, path: &str) -> Result<(&'v Value, &'v Value)> {
    match v.as_array().map(Vec::as_slice) {
        Some([re, im]) => Ok((re, im)),
        _ => Err(document(path, "expected [real, imag]")),
    }
}

/// The number `v` stands for as an element of the numeric scalar dtype `kind`/`width`;
/// `None` for the other dtypes.
fn json_number(v: &Value, kind: Kind, width: u64, path: &str) -> Result<Option<Element<'static>>> {
    Ok(Some(match (kind, width) {
        (Kind::Bool, 1) => Element::Bool(
            v.as_bool()
                .ok_or_else(|| document(path, "expected true or false"))?,
        ),
        (Kind::Int, 1 | 2 | 4 | 8) => Element::Int(
            v.as_i64()
                .ok_or_else(|| document(path, "expected an integer"))?,
        ),
        (Kind::UInt, 1 | 2 | 4 | 8) => Element::UInt(
            v.as_u64()
                .ok_or_else(|| document(path, "expected a non-negative integer"))?,
        ),
        (Kind::Float, 8) => Element::F64(json_to_f64(v, path)?),
        (Kind::Float, 4) => Element::F32(json_to_f32(v, path)?),
        (Kind::Complex, 16) => {
            let (re, im) = complex_parts(v, path)?;
            Element::Complex128(json_to_f64(re, path)?, json_to_f64(im, path)?)
        }
        (Kind::Complex, 8) => {
            let (re, im) = complex_parts(v, path)?;
            Element::Complex64(json_to_f32(re, path)?, json_to_f32(im, path)?)
        }
        _ => return Ok(None),
    }))
}

fn elem_from_json(dtype: &DType, v: Value, out: &mut [u8], path: &str) -> Result<()> {
    match dtype {
        DType::Scalar { order, kind, count } => {
            let big = *order == ByteOrder::Big;
            let n = *count as usize;
            if let Some(number) = json_number(&v, *kind, *count, path)? {
                // Only integers can be out of their width's range.
                return element::encode(dtype, number, out)
                    .map_err(|_| document(path, format!("{v} does not fit in {n} bytes")));
            }
            match kind {
                Kind::Bytes | Kind::Void => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| document(path, "expected base64 text"))?;
                    let b = B64
                        .decode(s)
                        .map_err(|e| document(path, format!("invalid base64: {e}")))?;
                    if b.len() > out.len() {
                        return Err(document(
                            path,
                            format!("{} bytes do not fit in {}", b.len(), out.len()),
                        ));
                    }
                    out[..b.len()].copy_from_slice(&b);
                }
                Kind::Unicode => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| document(path, "expected a string"))?;
                    let chars: Vec<char> = s.chars().collect();
                    if chars.len() > n {
                        return Err(document(
                            path,
                            format!("{} characters do not fit in {n}", chars.len()),
                        ));
                    }
                    for (slot, c) in out.chunks_exact_mut(4).zip(chars) {
                        let b = if big {
                            u32::from(c).to_be_bytes()
                        } else {
                            u32::from(c).to_le_bytes()
                        };
                        slot.copy_from_slice(&b);
                    }
                }
                _ => {
                    return Err(document(
                        path,
                        format!("dtype {} has no JSON encoding", dtype.to_json()),
                    ))
                }
            }
            Ok(())
        }
        DType::Structured { fields, .. } => {
            let Value::Array(items) = v else {
                return Err(document(
                    path,
                    format!("expected a record of {} fields", fields.len()),
                ));
            };
            if items.len() != fields.len() {
                return Err(document(
                    path,
                    format!("{} values for {} fields", items.len(), fields.len()),
                ));
            }
            for (f, item) in fields.iter().zip(items) {
                let start =
                    usize::try_from(f.offset).map_err(|_| document(path, "field offset"))?;
                let size = usize::try_from(f.dtype.itemsize())
                    .map_err(|_| document(path, "field size"))?;
                let slot = out
                    .get_mut(start..start + size)
                    .ok_or_else(|| document(path, "field outside its record"))?;
                elem_from_json(&f.dtype, item, slot, &format!("{path}/{}", f.name))?;
            }
            Ok(())
        }
        DType::SubArray { base, shape } => {
            let raw = array_from_json(base, shape, Order::C, v, path)?;
            if raw.len() != out.len() {
                return Err(document(path, "sub-array size"));
            }
            out.copy_from_slice(&raw);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_bit_exact() {
        let values = [
            0.1,
            -0.0,
            1e-310,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001),
            2.5000000000000004,
        ];
        for x in values {
            let v = f64_to_json(x);
            let text = serde_json::to_string(&v).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                json_to_f64(&back, "").unwrap().to_bits(),
                x.to_bits(),
                "{x} as {text}"
            );
        }
        let singles = [
            0.1f32,
            -0.0,
            1e-45,
            f32::MAX,
            16777217.0,
            f32::NAN,
            f32::from_bits(0xffc0_0001),
            f32::INFINITY,
        ];
        for x in singles {
            let v = f32_to_json(x);
            let text = serde_json::to_string(&v).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                json_to_f32(&back, "").unwrap().to_bits(),
                x.to_bits(),
                "{x} as {text}"
            );
        }
        assert_eq!(serde_json::to_string(&f32_to_json(0.1)).unwrap(), "0.1");
    }

    #[test]
    fn fortran_order_maps_logical_to_storage() {
        // A 2x3 F-ordered array stores column by column.
        let dims = [2, 3];
        let got: Vec<usize> = (0..6).map(|i| storage_index(i, &dims, Order::F)).collect();
        assert_eq!(got, vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn wrong_shapes_are_refused() {
        let dt = DType::parse_scalar("<f8", "").unwrap();
        let err = array_from_json(
            &dt,
            &[2, 2],
            Order::C,
            json!([[1.0, 2.0], [3.0]]),
            "/arrays/0/data",
        )
        .unwrap_err();
        assert!(err.to_string().contains("/arrays/0/data/1"), "{err}");
        let ok = array_from_json(
            &dt,
            &[2, 2],
            Order::C,
            json!([[1.0, 2.0], [3.0, "nan"]]),
            "",
        )
        .unwrap();
        assert_eq!(ok.len(), 32);
    }

    #[test]
    fn big_endian_complex_keeps_real_then_imaginary() {
        // Each part is big-endian on its own: reversing the whole element would swap them.
        let dt = DType::parse_scalar(">c16", "").unwrap();
        let mut raw = 1f64.to_be_bytes().to_vec();
        raw.extend(2f64.to_be_bytes());
        let doc = array_to_json(&dt, &[1], Order::C, &raw, "").unwrap();
        assert_eq!(doc, json!([[1.0, 2.0]]));
        assert_eq!(array_from_json(&dt, &[1], Order::C, doc, "").unwrap(), raw);
    }

    #[test]
    fn byte_strings_round_trip_as_base64() {
        let dt = DType::parse_scalar("|S4", "").unwrap();
        let raw = b"ab\0\0\xff\x00\x01z";
        let doc = array_to_json(&dt, &[2], Order::C, raw, "").unwrap();
        assert_eq!(doc, json!(["YWIAAA==", "/wABeg=="]));
        assert_eq!(array_from_json(&dt, &[2], Order::C, doc, "").unwrap(), raw);
        let err = array_from_json(&dt, &[1], Order::C, json!(["abc"]), "").unwrap_err();
        assert!(err.to_string().contains("invalid base64"), "{err}");
    }
}
