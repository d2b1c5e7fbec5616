//! `.npy` input (any numeric dtype, either byte order, C or Fortran order) and output.

use skvault_format::dtype::{DType, Kind};
use skvault_format::element::{self, Element};

use crate::{err, Table, TableError};

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Value of `key` in a `.npy` header dict (`{'descr': '<f8', 'fortran_order': False, ...}`).
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}':"))? + key.len() + 3;
    let rest = header.get(start..)?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(stripped) = rest.strip_prefix('\'') {
        stripped.find('\'')? + 2
    } else {
        rest.find([',', '}'])?
    };
    rest.get(..end).map(str::trim)
}

/// The dtype of a `.npy` header if an input may have it (bool, integers, float32, float64),
/// with its element size; `None` for any other dtype, so a header can never declare an
/// element size of zero (which would let any shape pass the length check) or one that is not
/// a real number. The descr is parsed by the manifest's own dtype parser.
fn input_dtype(descr: &str) -> Option<(DType, usize)> {
    let dtype = DType::parse_scalar(descr, "descr").ok()?;
    let DType::Scalar { kind, count, .. } = &dtype else {
        return None;
    };
    let size = usize::try_from(*count).ok()?;
    let real = matches!(
        (kind, count),
        (Kind::Bool, 1) | (Kind::Int | Kind::UInt, 1 | 2 | 4 | 8) | (Kind::Float, 4 | 8)
    );
    real.then_some((dtype, size))
}

/// Reads a numeric 2-d `.npy` file (any byte order, C or Fortran order).
pub fn read_npy(bytes: &[u8]) -> Result<Table, TableError> {
    if bytes.get(..6) != Some(NPY_MAGIC) {
        return err("not a .npy file (bad magic bytes)");
    }
    let major = bytes.get(6).copied().unwrap_or(0);
    let (len, start): (usize, usize) = match major {
        1 => (
            usize::from(u16::from_le_bytes([
                bytes.get(8).copied().unwrap_or(0),
                bytes.get(9).copied().unwrap_or(0),
            ])),
            10,
        ),
        2 | 3 => {
            let b: [u8; 4] = bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| TableError("truncated .npy header".into()))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return err(format!(".npy format version {v} is not supported")),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| TableError("truncated or non-text .npy header".into()))?;
    let descr = header_value(header, "descr")
        .map(|d| d.trim_matches('\''))
        .ok_or_else(|| TableError(".npy header has no descr".into()))?;
    let (dtype, size) = input_dtype(descr).ok_or_else(|| {
        TableError(format!(
            ".npy dtype {descr:?} is not numeric or not supported: input must be bool, integer, float32 or float64 (object, text and structured arrays cannot be input)"
        ))
    })?;
    let fortran = match header_value(header, "fortran_order") {
        Some("True") => true,
        Some("False") => false,
        _ => return err(".npy header has no fortran_order"),
    };
    let shape_text = header_value(header, "shape")
        .ok_or_else(|| TableError(".npy header has no shape".into()))?;
    let dims: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| TableError(format!("bad .npy shape {shape_text}")))?;
    let [n_rows, n_cols] = dims.as_slice() else {
        return err(format!(
            "the input must be a 2-d array (rows x features), found shape {shape_text}"
        ));
    };
    let (n_rows, n_cols) = (*n_rows, *n_cols);
    let body = &bytes[(start + len).min(bytes.len())..];
    let expected = n_rows
        .checked_mul(n_cols)
        .and_then(|n| n.checked_mul(size))
        .ok_or_else(|| TableError("the .npy shape is too large".into()))?;
    if body.len() != expected {
        return err(format!(
            "the .npy data has {} bytes, but shape {shape_text} of {descr} needs {expected}",
            body.len()
        ));
    }
    let mut data = Vec::with_capacity(n_rows * n_cols);
    for i in 0..n_rows {
        for j in 0..n_cols {
            let idx = if fortran {
                j * n_rows + i
            } else {
                i * n_cols + j
            };
            let b = &body[idx * size..(idx + 1) * size];
            let value = element::decode(&dtype, b).and_then(Element::as_f64);
            data.push(value.ok_or_else(|| TableError(format!("bad {descr} element")))?);
        }
    }
    Ok(Table {
        data,
        n_rows,
        n_cols,
        names: None,
    })
}

/// A `.npy` file (format 1.0) holding `data` with the given dtype and shape.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_fortran_order() {
        let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = npy_bytes("<f8", &[2, 3], &data);
        assert_eq!(bytes.len() % 64, 48); // header padded to 64 (data is 48 bytes)
        let t = read_npy(&bytes).unwrap();
        assert_eq!((t.n_rows, t.n_cols), (2, 3));
        assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // The same bytes read as Fortran order: element (i, j) is at j * 2 + i.
        let mut f = bytes.clone();
        let at = f.windows(5).position(|w| w == b"False").unwrap();
        f[at..at + 5].copy_from_slice(b"True ");
        let t = read_npy(&f).unwrap();
        assert_eq!(t.data, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn npy_refuses_bad_input() {
        let data = vec![0u8; 16];
        assert!(read_npy(&npy_bytes("|O", &[2, 1], &data)).is_err());
        // 1-d input is refused: rows x features is required.
        assert!(read_npy(&npy_bytes("<f8", &[2], &data))
            .unwrap_err()
            .0
            .contains("2-d"));
        assert!(read_npy(&npy_bytes("<f8", &[2, 2], &data))
            .unwrap_err()
            .0
            .contains("needs 32"));
        assert!(read_npy(b"not npy").is_err());
    }

    #[test]
    fn npy_refuses_dtypes_of_no_or_unknown_size() {
        // An element size of 0 would make any shape "match" an empty body, and the reader
        // would then reserve rows x columns values: it must be refused before that.
        for descr in ["<f0", "<i0", "<f16", "<f2", "<c16", "=f8", "<U8"] {
            let e = read_npy(&npy_bytes(descr, &[1 << 30, 1 << 20], &[])).unwrap_err();
            assert!(e.0.contains("not numeric"), "{descr}: {e}");
        }
    }
}
