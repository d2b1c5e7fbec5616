//! Named columns of equal length.

use std::collections::HashSet;

use crate::column::Column;
use crate::{FrameError, Result};

/// Named columns of equal length (checked when built).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    names: Vec<String>,
    columns: Vec<Column>,
    n_rows: usize,
}

impl Frame {
    /// Checks that every column has a distinct name and the same length. A frame without
    /// columns has no rows.
    pub fn new(names: Vec<String>, columns: Vec<Column>) -> Result<Frame> {
        if names.len() != columns.len() {
            return Err(FrameError::NameCount {
                names: names.len(),
                values: columns.len(),
            });
        }
        let mut seen = HashSet::with_capacity(names.len());
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(FrameError::DuplicateName(dup.clone()));
        }
        let n_rows = columns.first().map_or(0, Column::len);
        if let Some((name, col)) = names.iter().zip(&columns).find(|(_, c)| c.len() != n_rows) {
            return Err(FrameError::Length {
                column: name.clone(),
                found: col.len(),
                first: names[0].clone(),
                expected: n_rows,
            });
        }
        Ok(Frame {
            names,
            columns,
            n_rows,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows in `rows` of every column, under the same names: a frame of `rows.len()`
    /// rows (`rows` within `0..n_rows()`: the caller's invariant, else a panic).
    pub fn slice_rows(&self, rows: std::ops::Range<usize>) -> Frame {
        Frame {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.slice(rows.clone())).collect(),
            n_rows: rows.len(),
        }
    }

    /// The position of the column called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.position(name).map(|i| &self.columns[i])
    }

    /// Every column as one row-major f64 matrix (see [`numeric_matrix`](Self::numeric_matrix)).
    pub fn to_matrix(&self) -> Result<Vec<f64>> {
        let all: Vec<usize> = (0..self.columns.len()).collect();
        self.numeric_matrix(&all)
    }

    /// The columns at `positions` (in that order; out-of-range positions are the caller's
    /// bug and panic) as a row-major f64 matrix, converted the way numpy converts an object
    /// array to float64: missing markers become NaN, booleans 0 and 1, numeric text its
    /// number, and other text is refused naming the column and the first row that holds it.
    pub fn numeric_matrix(&self, positions: &[usize]) -> Result<Vec<f64>> {
        let n_cols = positions.len();
        let size = self
            .n_rows
            .checked_mul(n_cols)
            .filter(|&s| s <= isize::MAX as usize / 8)
            .ok_or(FrameError::TooLarge {
                rows: self.n_rows,
                columns: n_cols,
            })?;
        let mut out = vec![0.0f64; size];
        for (j, &p) in positions.iter().enumerate() {
            match &self.columns[p] {
                Column::Numeric(values) => {
                    for (row, v) in values.iter().enumerate() {
                        out[row * n_cols + j] = *v;
                    }
                }
                Column::Dict(d) => {
                    if let Some((row, text)) = d.first_text() {
                        return Err(FrameError::TextForNumber {
                            column: self.names[p].clone(),
                            row,
                            value: text.to_string(),
                        });
                    }
                    let as_f64: Vec<f64> = d
                        .values()
                        .iter()
                        .map(|v| v.as_f64().unwrap_or(f64::NAN))
                        .collect();
                    for (row, &code) in d.codes().iter().enumerate() {
                        out[row * n_cols + j] = as_f64[code as usize];
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::{DictBuilder, Value};

    fn dict(name: &str, values: Vec<Value>) -> Column {
        let mut b = DictBuilder::new(name);
        for v in values {
            b.push(v).unwrap();
        }
        Column::Dict(b.finish())
    }

    #[test]
    fn columns_of_different_lengths_are_refused_by_name() {
        let err = Frame::new(
            vec!["a".into(), "b".into()],
            vec![Column::Numeric(vec![1.0, 2.0]), Column::Numeric(vec![1.0])],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"b\" has 1 rows, but column \"a\" has 2"
        );
    }

    #[test]
    fn duplicate_names_and_missing_names_are_refused() {
        let two = || vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![2.0])];
        assert_eq!(
            Frame::new(vec!["a".into(), "a".into()], two()).unwrap_err(),
            FrameError::DuplicateName("a".into())
        );
        assert!(matches!(
            Frame::new(vec!["a".into()], two()).unwrap_err(),
            FrameError::NameCount {
                names: 1,
                values: 2
            }
        ));
    }

    #[test]
    fn numeric_matrix_is_row_major_in_the_order_asked() {
        let f = Frame::new(
            vec!["a".into(), "b".into(), "c".into()],
            vec![
                Column::Numeric(vec![1.0, 2.0]),
                dict("b", vec![Value::Num(3.0), Value::None]),
                dict("c", vec![Value::Bool(true), Value::NA]),
            ],
        )
        .unwrap();
        let m = f.numeric_matrix(&[2, 0, 1]).unwrap();
        assert_eq!(m[..3], [1.0, 1.0, 3.0]);
        assert!(m[3].is_nan() && m[4] == 2.0 && m[5].is_nan());
    }

    #[test]
    fn text_where_numbers_are_needed_names_column_row_and_value() {
        let f = Frame::new(
            vec!["age".into(), "city".into()],
            vec![
                Column::Numeric(vec![1.0, 2.0]),
                dict(
                    "city",
                    vec![Value::Str("1.5".into()), Value::Str("Paris".into())],
                ),
            ],
        )
        .unwrap();
        let err = f.to_matrix().unwrap_err();
        assert_eq!(
            err,
            FrameError::TextForNumber {
                column: "city".into(),
                row: 1,
                value: "Paris".into()
            }
        );
        assert!(err
            .to_string()
            .contains("could not convert string to float"));
        // Columns without text still convert.
        assert_eq!(f.numeric_matrix(&[0]).unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn unused_text_in_a_dictionary_is_not_an_error() {
        // A pandas category column may list categories no row uses.
        let d = crate::DictColumn::new(
            "c",
            vec![Value::Str("unused".into()), Value::Num(2.0)],
            vec![1, 1],
        )
        .unwrap();
        let f = Frame::new(vec!["c".into()], vec![Column::Dict(d)]).unwrap();
        assert_eq!(f.to_matrix().unwrap(), vec![2.0, 2.0]);
    }

    #[test]
    fn a_slice_keeps_names_values_and_the_rows_asked() {
        let f = Frame::new(
            vec!["n".into(), "t".into()],
            vec![
                Column::Numeric(vec![1.0, 2.0, 3.0, 4.0]),
                dict(
                    "t",
                    vec![
                        Value::Str("a".into()),
                        Value::Str("b".into()),
                        Value::None,
                        Value::Str("a".into()),
                    ],
                ),
            ],
        )
        .unwrap();
        let s = f.slice_rows(1..3);
        assert_eq!(s.n_rows(), 2);
        assert_eq!(s.names(), f.names());
        assert_eq!(s.columns()[0], Column::Numeric(vec![2.0, 3.0]));
        let Column::Dict(d) = &s.columns()[1] else {
            panic!("a dictionary column stays one");
        };
        assert_eq!(d.get(0), &Value::Str("b".into()));
        assert_eq!(d.get(1), &Value::None);
        assert_eq!(f.slice_rows(4..4).n_rows(), 0);
    }
}
