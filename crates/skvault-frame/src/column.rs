//! Columns: numeric, or dictionary-coded (distinct values plus one code per row).

use std::collections::HashMap;

use crate::{FrameError, Result};

/// One distinct value of a dictionary-coded column.
///
/// The missing markers stay apart because scikit-learn keeps them apart: in an `object`
/// column, `None` and NaN become different categories of an encoder, and pandas' `pd.NA`
/// is a third value. `Num` is never NaN (a NaN is [`Value::NaN`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Python's `None` (JSON `null`).
    None,
    /// A float NaN (`np.nan`, `float("nan")`).
    NaN,
    /// pandas' `pd.NA` (missing in nullable and `string` columns).
    NA,
}

impl Value {
    /// A number as a value: NaN becomes [`Value::NaN`].
    pub fn number(v: f64) -> Value {
        if v.is_nan() {
            Value::NaN
        } else {
            Value::Num(v)
        }
    }

    /// Whether this is one of the missing markers.
    pub fn is_missing(&self) -> bool {
        matches!(self, Value::None | Value::NaN | Value::NA)
    }

    /// The value as a float the way numpy converts an object array to float64 (`None`
    /// and `pd.NA` become NaN, booleans 0 and 1); `None` for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(v) => Some(*v),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::None | Value::NaN | Value::NA => Some(f64::NAN),
            Value::Str(_) => None,
        }
    }

    /// The key under which Python's sets and dicts would find this value: `1`, `1.0` and
    /// `True` are one key, as are `0.0` and `-0.0`.
    fn key(&self) -> Key<'_> {
        match self {
            Value::Str(s) => Key::Str(s),
            Value::Num(v) => Key::Num(normalized_bits(*v)),
            Value::Bool(b) => Key::Num(normalized_bits(f64::from(u8::from(*b)))),
            Value::None => Key::None,
            Value::NaN => Key::NaN,
            Value::NA => Key::NA,
        }
    }
}

fn normalized_bits(v: f64) -> u64 {
    if v == 0.0 {
        0.0f64.to_bits()
    } else {
        v.to_bits()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Str(&'a str),
    Num(u64),
    None,
    NaN,
    NA,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OwnedKey {
    Str(String),
    Num(u64),
    None,
    NaN,
    NA,
}

impl From<Key<'_>> for OwnedKey {
    fn from(k: Key<'_>) -> Self {
        match k {
            Key::Str(s) => OwnedKey::Str(s.to_string()),
            Key::Num(b) => OwnedKey::Num(b),
            Key::None => OwnedKey::None,
            Key::NaN => OwnedKey::NaN,
            Key::NA => OwnedKey::NA,
        }
    }
}

/// A dictionary-coded column: `codes[row]` indexes `values`. Built through
/// [`DictColumn::new`] (which checks every code) or a [`DictBuilder`].
#[derive(Debug, Clone, PartialEq)]
pub struct DictColumn {
    values: Vec<Value>,
    codes: Vec<u32>,
}

/// The most distinct values a dictionary may hold (codes are `u32`).
pub const MAX_DICTIONARY: usize = u32::MAX as usize;

impl DictColumn {
    /// Checks that every code indexes `values`; `column` names the column in the error.
    pub fn new(column: &str, values: Vec<Value>, codes: Vec<u32>) -> Result<DictColumn> {
        if values.len() > MAX_DICTIONARY {
            return Err(FrameError::DictionaryTooLarge {
                column: column.to_string(),
                max: MAX_DICTIONARY,
            });
        }
        if let Some((row, &code)) = codes
            .iter()
            .enumerate()
            .find(|(_, &c)| c as usize >= values.len())
        {
            return Err(FrameError::Code {
                column: column.to_string(),
                row,
                code,
                len: values.len(),
            });
        }
        Ok(DictColumn { values, codes })
    }

    /// The distinct values (some may be unused, as a pandas category column's may).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// One code per row, each a valid index into [`values`](Self::values).
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The value at `row` (`row < len()` is the caller's invariant).
    pub fn get(&self, row: usize) -> &Value {
        &self.values[self.codes[row] as usize]
    }

    /// The first row whose value is text, with that text.
    pub(crate) fn first_text(&self) -> Option<(usize, &str)> {
        self.codes
            .iter()
            .enumerate()
            .find_map(|(row, &c)| match &self.values[c as usize] {
                Value::Str(s) => Some((row, s.as_str())),
                _ => None,
            })
    }

    /// Whether any row holds a value of the given sort.
    pub(crate) fn any_row(&self, pred: impl Fn(&Value) -> bool) -> bool {
        let used: Vec<bool> = self.values.iter().map(pred).collect();
        self.codes.iter().any(|&c| used[c as usize])
    }
}

/// Builds a dictionary column one row at a time, giving equal values (in Python's sense)
/// one code.
#[derive(Debug)]
pub struct DictBuilder {
    column: String,
    index: HashMap<OwnedKey, u32>,
    values: Vec<Value>,
    codes: Vec<u32>,
}

impl DictBuilder {
    pub fn new(column: &str) -> DictBuilder {
        DictBuilder {
            column: column.to_string(),
            index: HashMap::new(),
            values: Vec::new(),
            codes: Vec::new(),
        }
    }

    pub fn with_capacity(column: &str, rows: usize) -> DictBuilder {
        let mut b = DictBuilder::new(column);
        b.codes.reserve(rows);
        b
    }

    /// Appends one row.
    pub fn push(&mut self, value: Value) -> Result<()> {
        let code = match self.index.get(&OwnedKey::from(value.key())) {
            Some(&code) => code,
            None => {
                let code = u32::try_from(self.values.len())
                    .ok()
                    .filter(|&c| (c as usize) < MAX_DICTIONARY)
                    .ok_or_else(|| FrameError::DictionaryTooLarge {
                        column: self.column.clone(),
                        max: MAX_DICTIONARY,
                    })?;
                self.index.insert(value.key().into(), code);
                self.values.push(value);
                code
            }
        };
        self.codes.push(code);
        Ok(())
    }

    pub fn finish(self) -> DictColumn {
        DictColumn {
            values: self.values,
            codes: self.codes,
        }
    }
}

/// One column of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers, NaN for a missing value (nullable integers, booleans and floats alike, as
    /// scikit-learn's `check_array` converts them).
    Numeric(Vec<f64>),
    /// Text, categories, or object values of mixed sorts.
    Dict(DictColumn),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Dict(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_a_code_as_in_python_sets() {
        let mut b = DictBuilder::new("c");
        for v in [
            Value::Num(1.0),
            Value::Bool(true),
            Value::Num(0.0),
            Value::Num(-0.0),
            Value::Str("a".into()),
            Value::Str("a".into()),
        ] {
            b.push(v).unwrap();
        }
        let d = b.finish();
        assert_eq!(d.codes(), &[0, 0, 1, 1, 2, 2]);
        assert_eq!(d.values().len(), 3);
        // The first spelling seen is the one kept.
        assert_eq!(d.values()[0], Value::Num(1.0));
    }

    #[test]
    fn missing_markers_stay_apart() {
        let mut b = DictBuilder::new("c");
        for v in [
            Value::None,
            Value::NaN,
            Value::NA,
            Value::None,
            Value::number(f64::NAN),
        ] {
            b.push(v).unwrap();
        }
        let d = b.finish();
        assert_eq!(d.codes(), &[0, 1, 2, 0, 1]);
        assert!(d.values().iter().all(Value::is_missing));
    }

    #[test]
    fn codes_outside_the_dictionary_are_refused_with_the_row() {
        let err = DictColumn::new("city", vec![Value::Str("x".into())], vec![0, 0, 1]).unwrap_err();
        assert_eq!(
            err,
            FrameError::Code {
                column: "city".into(),
                row: 2,
                code: 1,
                len: 1
            }
        );
        assert!(err.to_string().contains("\"city\""));
    }

    #[test]
    fn numpy_float_conversion_of_values() {
        assert_eq!(Value::Bool(true).as_f64(), Some(1.0));
        assert!(Value::None.as_f64().is_some_and(f64::is_nan));
        assert!(Value::NA.as_f64().is_some_and(f64::is_nan));
        assert_eq!(Value::Str("1".into()).as_f64(), None);
    }
}
