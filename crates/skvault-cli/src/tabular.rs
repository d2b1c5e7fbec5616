//! Reading input matrices (`.npy`, CSV) and writing outputs (`.npy`, CSV) for `skvault predict`.
//!
//! Both readers validate everything before allocating in proportion to declared sizes:
//! a `.npy` header's shape must match the bytes that follow, exactly.

use std::fmt;

/// A problem with an input or output table, with enough detail for a user to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

fn err<T>(message: impl Into<String>) -> Result<T, TableError> {
    Err(TableError(message.into()))
}

/// A row-major f64 table, with column names when the input had a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub data: Vec<f64>,
    pub n_rows: usize,
    pub n_cols: usize,
    pub names: Option<Vec<String>>,
}

// ---------------------------------------------------------------- .npy

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

/// Decodes one element of a numeric `.npy` dtype.
fn element(descr: &str, b: &[u8]) -> Option<f64> {
    let (order, kind) = descr.split_at(1);
    let big = order == ">";
    macro_rules! num {
        ($t:ty) => {{
            let a = b.try_into().ok()?;
            (if big {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }) as f64
        }};
    }
    Some(match kind {
        "f8" => num!(f64),
        "f4" => num!(f32),
        "i8" => num!(i64),
        "i4" => num!(i32),
        "i2" => num!(i16),
        "i1" => num!(i8),
        "u8" => num!(u64),
        "u4" => num!(u32),
        "u2" => num!(u16),
        "u1" => num!(u8),
        "b1" => f64::from(u8::from(*b.first()? != 0)),
        _ => return None,
    })
}

fn itemsize(descr: &str) -> Option<usize> {
    let size = descr.get(2..)?.parse().ok()?;
    let known = matches!(descr.get(1..2)?, "f" | "i" | "u" | "b")
        && matches!(descr.get(..1)?, "<" | ">" | "|");
    known.then_some(size)
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
    let size = itemsize(descr).ok_or_else(|| {
        TableError(format!(
            ".npy dtype {descr:?} is not numeric (object, text and structured arrays cannot be input)"
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
            data.push(element(descr, b).ok_or_else(|| TableError(format!("bad {descr} element")))?);
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

// ---------------------------------------------------------------- CSV

/// Splits CSV text into records of fields (RFC 4180: quotes, doubled quotes, CRLF).
fn csv_records(text: &str) -> Result<Vec<Vec<String>>, TableError> {
    let mut records = Vec::new();
    let mut field = String::new();
    let mut record = Vec::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line = 1usize;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() => in_quotes = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) if chars.peek() == Some(&'\n') => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
            }
            ('\n', true) => {
                field.push(c);
                line += 1;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return err(format!("unterminated quoted field at line {line}"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    // Blank lines carry no row.
    records.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    Ok(records)
}

/// A CSV cell as a number: Rust's float syntax plus `nan`/`inf` spellings; empty is NaN.
fn cell(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return Some(f64::NAN);
    }
    t.parse::<f64>().ok()
}

/// Reads CSV text. The first line is a header when any of its cells is not a number.
pub fn read_csv(text: &str) -> Result<Table, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = csv_records(text)?;
    if records.is_empty() {
        return err("the input is empty: no rows");
    }
    let names = if records[0].iter().any(|c| cell(c).is_none()) {
        Some(
            records
                .remove(0)
                .into_iter()
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let n_cols = names
        .as_ref()
        .map_or_else(|| records.first().map_or(0, Vec::len), Vec::len);
    if records.is_empty() {
        return err("the input has a header but no rows");
    }
    let first_line = if names.is_some() { 2 } else { 1 };
    let mut data = Vec::with_capacity(records.len() * n_cols);
    for (i, r) in records.iter().enumerate() {
        if r.len() != n_cols {
            return err(format!(
                "line {}: {} cells, but the {} has {n_cols}",
                i + first_line,
                r.len(),
                if names.is_some() {
                    "header"
                } else {
                    "first row"
                }
            ));
        }
        for (j, c) in r.iter().enumerate() {
            let v = cell(c).ok_or_else(|| {
                let col = names
                    .as_ref()
                    .and_then(|n| n.get(j))
                    .map_or_else(|| format!("column {}", j + 1), |n| format!("column {n:?}"));
                TableError(format!(
                    "line {}, {col}: {:?} is not a number",
                    i + first_line,
                    c.trim()
                ))
            })?;
            data.push(v);
        }
    }
    Ok(Table {
        n_rows: records.len(),
        data,
        n_cols,
        names,
    })
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_header() {
        let t = read_csv("a,\"b,c\"\n1,2\n3,nan\n").unwrap();
        assert_eq!(t.names, Some(vec!["a".into(), "b,c".into()]));
        assert_eq!(t.n_rows, 2);
        assert!(t.data[3].is_nan());
        let t = read_csv("1,2\r\n3,4").unwrap();
        assert_eq!((t.names, t.data), (None, vec![1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn csv_errors_name_the_line_and_column() {
        let e = read_csv("a,b\n1,2\n3,x\n").unwrap_err();
        assert!(e.0.contains("line 3") && e.0.contains("\"b\""), "{e}");
        assert!(read_csv("1,2\n3\n").unwrap_err().0.contains("line 2"));
        assert!(read_csv("").unwrap_err().0.contains("empty"));
        assert!(read_csv("a,b\n").unwrap_err().0.contains("no rows"));
        assert!(read_csv("\"a\n").unwrap_err().0.contains("unterminated"));
    }

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
}
