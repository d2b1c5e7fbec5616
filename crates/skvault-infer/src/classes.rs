//! A classifier's `classes_`: the labels that `predict` indices point into.

use skvault_format::dtype::Kind;
use skvault_format::element::{self, Element};
use skvault_format::{DType, Node};

use crate::error::{malformed, Result};
use crate::state::{node_float, node_int, Ctx};

/// The labels, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

/// `classes_` with the numpy dtype it had (`"<i8"`, `"<U5"`, `"|O"`, ...), so that a
/// front end can return labels of exactly the dtype scikit-learn returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Classes {
    pub labels: Labels,
    pub dtype: String,
}

impl Classes {
    pub fn len(&self) -> usize {
        match &self.labels {
            Labels::Int(v) => v.len(),
            Labels::Float(v) => v.len(),
            Labels::Bool(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label `i` as text (for CSV output).
    pub fn label_text(&self, i: usize) -> Option<String> {
        Some(match &self.labels {
            Labels::Int(v) => v.get(i)?.to_string(),
            Labels::Float(v) => format_float(*v.get(i)?),
            Labels::Bool(v) => (if *v.get(i)? { "True" } else { "False" }).to_string(),
            Labels::Str(v) => v.get(i)?.clone(),
        })
    }

    /// Label `i` as a number, when labels are numeric (for `.npy` output).
    pub fn label_f64(&self, i: usize) -> Option<f64> {
        match &self.labels {
            Labels::Int(v) => v.get(i).map(|x| *x as f64),
            Labels::Float(v) => v.get(i).copied(),
            Labels::Bool(v) => v.get(i).map(|b| f64::from(u8::from(*b))),
            Labels::Str(_) => None,
        }
    }
}

/// Shortest text that reads back as the same f64 (Rust's `Display` is round-trip exact).
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        (if x > 0.0 { "inf" } else { "-inf" }).into()
    } else {
        format!("{x:?}")
    }
}

fn decode_text(dtype: &DType, bytes: &[u8], path: &str) -> Result<Vec<String>> {
    let width = usize::try_from(dtype.itemsize()).map_err(|_| malformed(path, "bad width"))?;
    if !matches!(
        dtype,
        DType::Scalar {
            kind: Kind::Unicode | Kind::Bytes,
            ..
        }
    ) {
        return Err(malformed(path, "expected a text array"));
    }
    if width == 0 {
        return Ok(Vec::new());
    }
    bytes
        .chunks_exact(width)
        .map(|item| match element::decode(dtype, item) {
            Some(Element::Unicode(text)) => {
                let s = text
                    .code_units()
                    .map(|u| char::from_u32(u).ok_or_else(|| malformed(path, "invalid character")))
                    .collect::<Result<String>>()?;
                // numpy drops trailing NULs of fixed-width strings.
                Ok(s.trim_end_matches('\0').to_string())
            }
            Some(Element::Bytes(b)) => {
                let end = b.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                String::from_utf8(b[..end].to_vec())
                    .map_err(|_| malformed(path, "class labels are not UTF-8"))
            }
            _ => Err(malformed(path, "expected a text array")),
        })
        .collect()
}

/// Reads `classes_` (a 1-d array of numbers or text, or an object array of str or int).
pub(crate) fn read_classes<'f>(ctx: &Ctx<'f>, node: &'f Node, path: &str) -> Result<Classes> {
    match ctx.resolve(node) {
        Node::Array(index) => {
            let (dtype, shape, bytes) = ctx.raw_array(*index, path)?;
            if shape.len() != 1 {
                return Err(malformed(path, "classes_ must be 1-d"));
            }
            let dtype_str = dtype.scalar_str().unwrap_or_default();
            let labels = match &dtype {
                DType::Scalar {
                    kind: Kind::Unicode | Kind::Bytes,
                    ..
                } => Labels::Str(decode_text(&dtype, &bytes, path)?),
                DType::Scalar {
                    kind: Kind::Bool, ..
                } => Labels::Bool(bytes.iter().map(|b| *b != 0).collect()),
                DType::Scalar {
                    kind: Kind::Float, ..
                } => Labels::Float(ctx.f64_array(node, path)?.data),
                DType::Scalar {
                    kind: Kind::Int | Kind::UInt,
                    ..
                } => Labels::Int(ctx.i64_array(node, path)?.1),
                _ => return Err(malformed(path, "unsupported dtype for classes_")),
            };
            let classes = Classes {
                labels,
                dtype: dtype_str,
            };
            if classes.len() != shape[0] {
                return Err(malformed(path, "classes_ length does not match its shape"));
            }
            Ok(classes)
        }
        Node::ObjArray { shape, items } if shape.len() == 1 => {
            let items: Vec<&Node> = items.iter().map(|n| ctx.resolve(n)).collect();
            let labels = if items.iter().all(|n| matches!(n, Node::Str(_))) {
                Labels::Str(
                    items
                        .iter()
                        .filter_map(|n| match n {
                            Node::Str(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect(),
                )
            } else if let Some(ints) = items
                .iter()
                .map(|n| node_int(n))
                .collect::<Option<Vec<_>>>()
            {
                Labels::Int(ints)
            } else if let Some(fl) = items
                .iter()
                .map(|n| node_float(n))
                .collect::<Option<Vec<_>>>()
            {
                Labels::Float(fl)
            } else {
                return Err(malformed(
                    path,
                    "object classes_ must be all str or all numbers",
                ));
            };
            Ok(Classes {
                labels,
                dtype: "|O".into(),
            })
        }
        _ => Err(malformed(path, "classes_ must be an array")),
    }
}
