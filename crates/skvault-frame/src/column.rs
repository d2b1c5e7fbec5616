//! Columns: numeric, or dictionary-coded (distinct values plus one code per row).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

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

    /// The value as a float the way numpy converts an object array to float64: `None`
    /// and `pd.NA` become NaN, booleans 0 and 1, and text that Python's `float()` reads
    /// (`"12.5"`, `" 1e3 "`, `"1_000"`, `"nan"`, `"-inf"`) its number; `None` for other
    /// text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(v) => Some(*v),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::None | Value::NaN | Value::NA => Some(f64::NAN),
            Value::Str(s) => python_float(s),
        }
    }

    /// The key under which Python's sets and dicts would find this value: `1`, `1.0` and
    /// `True` are one key, as are `0.0` and `-0.0`; the missing markers are three keys.
    pub fn key(&self) -> ValueKey {
        match self {
            Value::Str(s) => ValueKey::Str(s.clone()),
            Value::Num(v) => ValueKey::Num(normalized_bits(*v)),
            Value::Bool(b) => ValueKey::Num(normalized_bits(f64::from(u8::from(*b)))),
            Value::None => ValueKey::None,
            Value::NaN => ValueKey::NaN,
            Value::NA => ValueKey::NA,
        }
    }
}

/// Python's `float(str)`: surrounding whitespace ignored, single underscores allowed
/// between digits, `inf`/`infinity`/`nan` in any case with a sign.
fn python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let cleaned;
    let t = if t.contains('_') {
        let b = t.as_bytes();
        let ok = b.iter().enumerate().all(|(i, &c)| {
            c != b'_'
                || (i > 0
                    && i + 1 < b.len()
                    && b[i - 1].is_ascii_digit()
                    && b[i + 1].is_ascii_digit())
        });
        if !ok {
            return None;
        }
        cleaned = t.replace('_', "");
        cleaned.as_str()
    } else {
        t
    };
    t.parse::<f64>().ok()
}

fn normalized_bits(v: f64) -> u64 {
    if v == 0.0 {
        0.0f64.to_bits()
    } else if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// A [`Value`] as a hash key with Python's equality (see [`Value::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueKey {
    Str(String),
    Num(u64),
    None,
    NaN,
    NA,
}

/// A dictionary-coded column: `codes[row]` indexes `values`. Built through
/// [`DictColumn::new`] (which checks every code) or a [`DictBuilder`]. The values are shared
/// between a column and its [slices](Self::slice).
#[derive(Debug, Clone, PartialEq)]
pub struct DictColumn {
    values: Arc<Vec<Value>>,
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
        Ok(DictColumn {
            values: Arc::new(values),
            codes,
        })
    }

    /// The rows in `rows` (within `0..len()`: the caller's invariant, else a panic), with
    /// the same values and codes.
    pub fn slice(&self, rows: Range<usize>) -> DictColumn {
        DictColumn {
            values: Arc::clone(&self.values),
            codes: self.codes[rows].to_vec(),
        }
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

    /// The first row whose value is text that is not a number, with that text.
    pub(crate) fn first_text(&self) -> Option<(usize, &str)> {
        self.codes
            .iter()
            .enumerate()
            .find_map(|(row, &c)| match &self.values[c as usize] {
                v @ Value::Str(s) if v.as_f64().is_none() => Some((row, s.as_str())),
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
    /// Text values by their text, looked up without allocating (most rows repeat a value).
    strs: HashMap<String, u32>,
    /// Every other value by its key.
    index: HashMap<ValueKey, u32>,
    values: Vec<Value>,
    codes: Vec<u32>,
}

impl DictBuilder {
    pub fn new(column: &str) -> DictBuilder {
        DictBuilder {
            column: column.to_string(),
            strs: HashMap::new(),
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
        if let Value::Str(text) = &value {
            if let Some(&code) = self.strs.get(text.as_str()) {
                self.codes.push(code);
                return Ok(());
            }
            let code = self.new_code()?;
            self.strs.insert(text.clone(), code);
            self.values.push(value);
            self.codes.push(code);
            return Ok(());
        }
        let key = value.key();
        let code = match self.index.get(&key) {
            Some(&code) => code,
            None => {
                let code = self.new_code()?;
                self.index.insert(key, code);
                self.values.push(value);
                code
            }
        };
        self.codes.push(code);
        Ok(())
    }

    /// Appends one row of text, allocating only for a text not seen before.
    pub fn push_str(&mut self, text: &str) -> Result<()> {
        match self.strs.get(text) {
            Some(&code) => {
                self.codes.push(code);
                Ok(())
            }
            None => self.push(Value::Str(text.to_string())),
        }
    }

    fn new_code(&self) -> Result<u32> {
        u32::try_from(self.values.len())
            .ok()
            .filter(|&c| (c as usize) < MAX_DICTIONARY)
            .ok_or_else(|| FrameError::DictionaryTooLarge {
                column: self.column.clone(),
                max: MAX_DICTIONARY,
            })
    }

    pub fn finish(self) -> DictColumn {
        DictColumn {
            values: Arc::new(self.values),
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

    /// The rows in `rows` (within `0..len()`: the caller's invariant, else a panic).
    pub fn slice(&self, rows: Range<usize>) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(v[rows].to_vec()),
            Column::Dict(d) => Column::Dict(d.slice(rows)),
        }
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
        assert_eq!(Value::Str("x1".into()).as_f64(), None);
    }

    #[test]
    fn text_converts_as_python_float_reads_it() {
        let f = |s: &str| Value::Str(s.into()).as_f64();
        assert_eq!(f("12.5"), Some(12.5));
        assert_eq!(f(" \t1e3\n"), Some(1000.0));
        assert_eq!(f("1_000.5"), Some(1000.5));
        assert_eq!(f("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(f("NaN").is_some_and(f64::is_nan));
        for bad in ["", "1__0", "_1", "1_", "1,5", "twelve", "0x10"] {
            assert_eq!(f(bad), None, "{bad:?}");
        }
    }
}
