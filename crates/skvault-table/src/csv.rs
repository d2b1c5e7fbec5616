//! CSV input (RFC 4180, optional header) and the quoting of CSV output fields.

use skvault_frame::{Column, DictBuilder, Frame, Value};

use crate::{err, Table, TableError};

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

/// The cells pandas' `read_csv` reads as missing by default (`na_values`): a text column
/// read here holds NaN where pandas would, so encoders see what they saw in fit.
const PANDAS_NA: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Reads CSV text with a header line into a frame. A column named in `text` keeps its
/// cells as text (pandas' missing spellings become NaN); any other column is numeric when
/// every cell is a number (empty cells NaN), else it holds numbers and text as they are, and
/// a model that needs numbers there names it. `text` is the model's input schema's text and
/// category columns, so `"00123"` stays a postal code where the model saw text.
pub fn read_csv_frame(text: &str, text_columns: &[&str]) -> Result<Frame, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = csv_records(text)?;
    if records.is_empty() {
        return err("the input is empty: no rows");
    }
    let names: Vec<String> = records
        .remove(0)
        .into_iter()
        .map(|c| c.trim().to_string())
        .collect();
    if records.is_empty() {
        return err("the input has a header but no rows");
    }
    let n_cols = names.len();
    if let Some(i) = records.iter().position(|r| r.len() != n_cols) {
        return err(format!(
            "line {}: {} cells, but the header has {n_cols}",
            i + 2,
            records[i].len()
        ));
    }
    let n_rows = records.len();
    let mut columns = Vec::with_capacity(n_cols);
    for (j, name) in names.iter().enumerate() {
        let cells = records.iter().map(|r| r[j].as_str());
        let numbers: Option<Vec<f64>> = if text_columns.contains(&name.as_str()) {
            None
        } else {
            cells.clone().map(cell).collect()
        };
        columns.push(match numbers {
            Some(v) => Column::Numeric(v),
            None => {
                let as_text = text_columns.contains(&name.as_str());
                let mut b = DictBuilder::with_capacity(name, n_rows);
                for c in cells {
                    let value = if PANDAS_NA.contains(&c) {
                        Value::NaN
                    } else if as_text {
                        Value::Str(c.to_string())
                    } else {
                        cell(c).map_or_else(|| Value::Str(c.to_string()), Value::number)
                    };
                    b.push(value).map_err(|e| TableError(e.to_string()))?;
                }
                Column::Dict(b.finish())
            }
        });
    }
    Frame::new(names, columns).map_err(|e| TableError(e.to_string()))
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
    fn csv_frames_keep_text_columns_as_text() {
        let f = read_csv_frame(
            "zip,city,n,mixed\n00123,Lyon,1,2\n,NA,,x\n",
            &["zip", "city"],
        )
        .unwrap();
        assert_eq!(f.names(), ["zip", "city", "n", "mixed"]);
        let Column::Dict(zip) = &f.columns()[0] else {
            panic!("zip is text")
        };
        assert_eq!(zip.get(0), &Value::Str("00123".into()));
        assert_eq!(zip.get(1), &Value::NaN);
        let Column::Dict(city) = &f.columns()[1] else {
            panic!("city is text")
        };
        assert_eq!(city.get(1), &Value::NaN);
        let Column::Numeric(n) = &f.columns()[2] else {
            panic!("n is numeric")
        };
        assert!(n[0] == 1.0 && n[1].is_nan());
        // A column the schema does not call text, holding text: numbers and text as they are.
        let Column::Dict(mixed) = &f.columns()[3] else {
            panic!("mixed holds text")
        };
        assert_eq!(
            (mixed.get(0), mixed.get(1)),
            (&Value::Num(2.0), &Value::Str("x".into()))
        );
        let e = f.numeric_matrix(&[2, 3]).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"mixed\" holds text (\"x\" at row 1)"),
            "{e}"
        );
    }

    #[test]
    fn csv_frames_need_a_header_and_equal_rows() {
        assert!(read_csv_frame("a,b\n", &[])
            .unwrap_err()
            .0
            .contains("no rows"));
        assert!(read_csv_frame("a,b\n1,2\n3\n", &[])
            .unwrap_err()
            .0
            .contains("line 3"));
        assert!(read_csv_frame("a,a\n1,2\n", &[])
            .unwrap_err()
            .0
            .contains("twice"));
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
}
