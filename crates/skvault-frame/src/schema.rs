//! The input schema: the columns a model was fitted on, as pandas described them.
//!
//! Stored in a `.skv` file's metadata as `input_schema` (docs/FORMAT.md, section 8). It is
//! a description used to check input, never to decide what to import or build.

use serde::{Deserialize, Serialize};

use crate::column::{Column, Value};
use crate::frame::Frame;
use crate::{FrameError, Result};

/// What sort of values a column held at fit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Integers and floats, nullable or not.
    Number,
    /// `bool` and pandas' nullable `boolean`.
    Boolean,
    /// `object`, `str` or `string` columns holding text (and missing values).
    Text,
    /// pandas `category` columns.
    Category,
    /// A column the model never reads (a `ColumnTransformer` drops it): it may be absent,
    /// and holds anything.
    Unused,
}

impl ColumnKind {
    fn described(self) -> &'static str {
        match self {
            ColumnKind::Number => "numbers",
            ColumnKind::Boolean => "booleans",
            ColumnKind::Text => "text",
            ColumnKind::Category => "categories",
            ColumnKind::Unused => "anything",
        }
    }
}

/// One category of a pandas `category` column (categories are never missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CategoryValue {
    Str(String),
    Num(f64),
}

/// One column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    /// The pandas dtype as `str(dtype)` prints it (`"float64"`, `"Int64"`, `"str"`,
    /// `"object"`, `"category"`, ...), when known: a schema derived from the model knows
    /// kinds, not dtypes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    pub kind: ColumnKind,
    /// For `category` columns: the categories, in their order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryValue>>,
    /// For `category` columns: whether the categories are ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered: Option<bool>,
}

impl std::fmt::Display for CategoryValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CategoryValue::Str(s) => write!(f, "{s:?}"),
            CategoryValue::Num(v) => write!(f, "{v}"),
        }
    }
}

/// At most this many categories are listed when a column is shown.
const SHOWN_CATEGORIES: usize = 10;

/// One line for people: `city: str (text)`, `grade: category, ordered ["A", "B"]`.
impl std::fmt::Display for ColumnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.name)?;
        match (&self.dtype, self.kind) {
            (_, ColumnKind::Unused) => write!(f, "unused")?,
            (Some(dtype), ColumnKind::Category) => write!(f, "{dtype}")?,
            (Some(dtype), kind) => write!(f, "{dtype} ({})", kind.described())?,
            (None, kind) => write!(f, "{}", kind.described())?,
        }
        if self.ordered == Some(true) {
            write!(f, ", ordered")?;
        }
        if let Some(cats) = &self.categories {
            let shown: Vec<String> = cats
                .iter()
                .take(SHOWN_CATEGORIES)
                .map(ToString::to_string)
                .collect();
            let more = cats.len().saturating_sub(SHOWN_CATEGORIES);
            write!(f, " [{}", shown.join(", "))?;
            if more > 0 {
                write!(f, ", ... {more} more")?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

/// How the schema was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaSource {
    /// From the DataFrame given as `validation=` (its dtypes exactly).
    Validation,
    /// Derived from the fitted model (encoders' categories, recorded feature names).
    Model,
    /// Given by the user at dump time.
    User,
}

/// The columns a model was fitted on, in fit order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    pub source: SchemaSource,
    pub columns: Vec<ColumnSpec>,
}

impl InputSchema {
    /// The columns whose values are text to the model (`text` and `category` kinds): what a
    /// CSV reader must keep as text.
    pub fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Text | ColumnKind::Category))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Checks `frame` against the schema and returns, for each schema column in order, its
    /// position in the frame (`None` for an absent unused column). Columns are matched by
    /// name; their order in the frame and extra columns do not matter. Every missing column
    /// is named in one error; otherwise the first column whose values are of the wrong sort
    /// is named.
    pub fn check(&self, frame: &Frame) -> Result<Vec<Option<usize>>> {
        let positions: Vec<Option<usize>> = self
            .columns
            .iter()
            .map(|spec| frame.position(&spec.name))
            .collect();
        let missing: Vec<String> = self
            .columns
            .iter()
            .zip(&positions)
            .filter(|(spec, p)| p.is_none() && spec.kind != ColumnKind::Unused)
            .map(|(spec, _)| spec.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(FrameError::MissingColumns(missing));
        }
        for (spec, p) in self.columns.iter().zip(&positions) {
            let Some(p) = *p else { continue };
            if let Some(found) = wrong_sort(spec, &frame.columns()[p]) {
                return Err(FrameError::Kind {
                    column: spec.name.clone(),
                    found,
                    expected: spec.kind.described(),
                    dtype: spec.dtype.clone(),
                });
            }
        }
        Ok(positions)
    }
}

/// What the column holds that `spec` does not allow, if anything. Missing values fit
/// every kind.
fn wrong_sort(spec: &ColumnSpec, column: &Column) -> Option<&'static str> {
    // Text that Python's float() reads counts as a number, as numpy converts it.
    let is_text = |v: &Value| matches!(v, Value::Str(_)) && v.as_f64().is_none();
    let is_number = |v: &Value| matches!(v, Value::Num(_) | Value::Bool(_));
    let numeric_categories = spec
        .categories
        .as_ref()
        .is_some_and(|c| c.iter().all(|v| matches!(v, CategoryValue::Num(_))));
    match (spec.kind, column) {
        (ColumnKind::Unused, _) => None,
        (ColumnKind::Number | ColumnKind::Boolean, Column::Numeric(_)) => None,
        (ColumnKind::Number | ColumnKind::Boolean, Column::Dict(d)) => {
            d.any_row(is_text).then_some("text")
        }
        (ColumnKind::Category, Column::Numeric(_)) if numeric_categories => None,
        (ColumnKind::Category, Column::Dict(d)) if numeric_categories => {
            d.any_row(is_text).then_some("text")
        }
        (ColumnKind::Text | ColumnKind::Category, Column::Numeric(v)) => {
            v.iter().any(|x| !x.is_nan()).then_some("numbers")
        }
        (ColumnKind::Text | ColumnKind::Category, Column::Dict(d)) => {
            d.any_row(is_number).then_some("numbers")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::DictBuilder;

    fn text(name: &str, values: &[Option<&str>]) -> Column {
        let mut b = DictBuilder::new(name);
        for v in values {
            b.push(v.map_or(Value::NaN, |s| Value::Str(s.into())))
                .unwrap();
        }
        Column::Dict(b.finish())
    }

    fn spec(name: &str, dtype: &str, kind: ColumnKind) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            dtype: Some(dtype.into()),
            kind,
            categories: None,
            ordered: None,
        }
    }

    fn schema() -> InputSchema {
        InputSchema {
            source: SchemaSource::Validation,
            columns: vec![
                spec("age", "float64", ColumnKind::Number),
                spec("city", "str", ColumnKind::Text),
            ],
        }
    }

    #[test]
    fn columns_are_matched_by_name_whatever_their_order_and_extras() {
        let f = Frame::new(
            vec!["extra".into(), "city".into(), "age".into()],
            vec![
                Column::Numeric(vec![0.0]),
                text("city", &[Some("Lyon")]),
                Column::Numeric(vec![31.0]),
            ],
        )
        .unwrap();
        assert_eq!(schema().check(&f).unwrap(), vec![Some(2), Some(1)]);
    }

    #[test]
    fn every_missing_column_is_named() {
        let f = Frame::new(vec!["other".into()], vec![Column::Numeric(vec![1.0])]).unwrap();
        let err = schema().check(&f).unwrap_err();
        assert_eq!(
            err,
            FrameError::MissingColumns(vec!["age".into(), "city".into()])
        );
        assert_eq!(
            err.to_string(),
            "columns \"age\", \"city\" are missing from the input"
        );
    }

    #[test]
    fn text_for_a_number_and_numbers_for_text_are_named() {
        let f = Frame::new(
            vec!["age".into(), "city".into()],
            vec![text("age", &[Some("old")]), Column::Numeric(vec![1.0])],
        )
        .unwrap();
        let err = schema().check(&f).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"age\" holds text, but the model was fitted on numbers (float64)"
        );
        let f = Frame::new(
            vec!["age".into(), "city".into()],
            vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![7.0])],
        )
        .unwrap();
        assert_eq!(
            schema().check(&f).unwrap_err().to_string(),
            "column \"city\" holds numbers, but the model was fitted on text (str)"
        );
    }

    #[test]
    fn missing_values_fit_every_kind() {
        // An all-missing column arrives as NaN floats from most sources.
        let f = Frame::new(
            vec!["age".into(), "city".into()],
            vec![text("age", &[None]), Column::Numeric(vec![f64::NAN])],
        )
        .unwrap();
        assert_eq!(schema().check(&f).unwrap(), vec![Some(0), Some(1)]);
    }

    #[test]
    fn numeric_categories_accept_numbers() {
        let s = InputSchema {
            source: SchemaSource::Model,
            columns: vec![ColumnSpec {
                categories: Some(vec![CategoryValue::Num(1.0), CategoryValue::Num(2.0)]),
                ordered: Some(false),
                ..spec("grade", "category", ColumnKind::Category)
            }],
        };
        let f = Frame::new(vec!["grade".into()], vec![Column::Numeric(vec![1.0])]).unwrap();
        assert_eq!(s.check(&f).unwrap(), vec![Some(0)]);
        let f = Frame::new(vec!["grade".into()], vec![text("grade", &[Some("A")])]).unwrap();
        assert!(matches!(
            s.check(&f).unwrap_err(),
            FrameError::Kind { found: "text", .. }
        ));
    }

    #[test]
    fn unused_columns_may_be_absent_or_hold_anything() {
        let mut s = schema();
        s.columns.push(ColumnSpec {
            dtype: None,
            ..spec("dropped", "", ColumnKind::Unused)
        });
        let f = Frame::new(
            vec!["age".into(), "city".into()],
            vec![Column::Numeric(vec![1.0]), text("city", &[Some("x")])],
        )
        .unwrap();
        assert_eq!(s.check(&f).unwrap(), vec![Some(0), Some(1), None]);
        let f = Frame::new(
            vec!["dropped".into(), "age".into(), "city".into()],
            vec![
                text("dropped", &[Some("y")]),
                Column::Numeric(vec![1.0]),
                text("city", &[Some("x")]),
            ],
        )
        .unwrap();
        assert_eq!(s.check(&f).unwrap(), vec![Some(1), Some(2), Some(0)]);
    }

    #[test]
    fn columns_show_in_one_line_each() {
        let cats = (0..12).map(|i| CategoryValue::Num(f64::from(i))).collect();
        let lines: Vec<String> = [
            spec("city", "str", ColumnKind::Text),
            ColumnSpec {
                dtype: None,
                ..spec("age", "", ColumnKind::Number)
            },
            ColumnSpec {
                categories: Some(vec![CategoryValue::Str("A".into())]),
                ordered: Some(true),
                ..spec("grade", "category", ColumnKind::Category)
            },
            ColumnSpec {
                categories: Some(cats),
                ..spec("code", "category", ColumnKind::Category)
            },
            spec("x", "float64", ColumnKind::Unused),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            lines,
            [
                "city: str (text)",
                "age: numbers",
                "grade: category, ordered [\"A\"]",
                "code: category [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 2 more]",
                "x: unused",
            ]
        );
    }

    #[test]
    fn the_schema_reads_back_from_its_json() {
        let json = r#"{"source": "validation", "columns": [
            {"name": "age", "dtype": "Int64", "kind": "number"},
            {"name": "x", "kind": "unused"},
            {"name": "grade", "dtype": "category", "kind": "category",
             "categories": ["A", "B"], "ordered": true, "future": 1}
        ], "future": {}}"#;
        let s: InputSchema = serde_json::from_str(json).unwrap();
        assert_eq!(s.columns[1].dtype, None);
        assert_eq!(s.columns[2].categories.as_ref().map(Vec::len), Some(2));
        assert_eq!(s.columns[2].ordered, Some(true));
        let back: InputSchema = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
