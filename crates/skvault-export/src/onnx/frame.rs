//! Models fitted on DataFrames with text columns: one graph input per column.
//!
//! A model whose encoders or imputers were fitted on text cannot take one double matrix.
//! Its graph has one `[N, 1]` input per input column the model reads, as skl2onnx gives
//! DataFrame models: a string tensor for a column that reaches a text encoder or imputer,
//! double for the others. A missing text value (None, NaN, `pd.NA`) is fed as the empty
//! string ([`MISSING_TEXT`]). Steps that take numbers see the numeric columns side by side,
//! as the native model does; see docs/EXPORT.md.

use std::collections::HashSet;

use skvault_infer::{TextKey, TextLookup, View};

use super::{Graph, Out};
use crate::error::{unsupported, Result};
use crate::proto::{data_type, AttributeProto, TensorProto};

/// What a missing value of a text column is in a string tensor.
pub const MISSING_TEXT: &str = "";

/// The element type of a graph input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Number,
}

/// Logical columns flowing between steps: an input column (its type decided by the first
/// step that reads it), a text column `[N, 1]` (`true`: an imputer replaced its missing
/// values), or `n` numeric columns `[N, n]`.
#[derive(Debug, Clone)]
pub(super) enum Part {
    Input(usize),
    Text(String, bool),
    Numbers(String, usize),
}

impl Part {
    fn width(&self) -> usize {
        match self {
            Part::Numbers(_, n) => *n,
            _ => 1,
        }
    }
}

/// What a step made of its columns: more columns (a transformer) or the model's output.
pub(super) enum FrameOut {
    Parts(Vec<Part>),
    Out(Out),
}

/// Does the model read text anywhere (then its graph takes one input per column)?
pub(super) fn reads_text(view: &View<'_>) -> bool {
    match view {
        View::TextEncoder { .. } | View::TextImputer { .. } => true,
        View::Pipeline {
            transforms, last, ..
        } => transforms.iter().any(reads_text) || last.as_deref().is_some_and(reads_text),
        View::Stack { blocks, .. } => blocks
            .iter()
            .any(|b| b.est.as_ref().is_some_and(reads_text)),
        View::HistGradientBoosting { preprocessor, .. } => {
            preprocessor.as_deref().is_some_and(reads_text)
        }
        _ => false,
    }
}

/// The placeholder name of input column `j` inside the graph until the inputs are named
/// (`\0` keeps it apart from every name the graph makes and every column name).
pub(super) fn placeholder(j: usize) -> String {
    format!("\0input{j}")
}

/// An ONNX-friendly name for a column: characters outside `[A-Za-z0-9_]` become `_`, and a
/// name that is empty or starts with a digit gets a leading `_`.
pub(super) fn sanitize(column: &str) -> String {
    let mut s: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The key of a text value in a string tensor.
fn key_text<'a>(k: &TextKey<'a>) -> Option<&'a str> {
    match k {
        TextKey::Text(s) => Some(s),
        TextKey::Missing => Some(MISSING_TEXT),
        TextKey::Number(_) => None,
    }
}

/// A feature's input to an encoder: text, or numbers (a feature whose categories are all
/// numbers, such as the 0/1 indicator columns of a text imputer).
enum Feature {
    Text(String),
    Number(String),
}

impl Graph {
    /// Input column `j` read as `kind`: every reader must agree.
    fn input(&mut self, j: usize, kind: Kind, class: &str) -> Result<String> {
        if self.input_kinds.len() <= j {
            self.input_kinds.resize(j + 1, None);
        }
        match self.input_kinds[j] {
            Some(k) if k != kind => Err(unsupported(
                class,
                Some(format!(
                    "input column {j} is read both as text and as numbers"
                )),
            )),
            _ => {
                self.input_kinds[j] = Some(kind);
                Ok(placeholder(j))
            }
        }
    }

    /// The logical columns `idx` of `parts`.
    fn select(&mut self, parts: &[Part], idx: &[usize], class: &str) -> Result<Vec<Part>> {
        let mut at = Vec::new();
        for (p, part) in parts.iter().enumerate() {
            for o in 0..part.width() {
                at.push((p, o));
            }
        }
        idx.iter()
            .map(|&i| {
                let Some(&(p, o)) = at.get(i) else {
                    return Err(unsupported(
                        class,
                        Some(format!("column {i} of {} columns", at.len())),
                    ));
                };
                Ok(match &parts[p] {
                    Part::Numbers(t, n) if *n > 1 => Part::Numbers(self.gather_columns(t, &[o]), 1),
                    other => other.clone(),
                })
            })
            .collect()
    }

    /// The columns as one double matrix, for a step that takes numbers.
    pub(super) fn numbers(&mut self, parts: &[Part], class: &str) -> Result<(String, usize)> {
        let mut tensors = Vec::with_capacity(parts.len());
        let mut width = 0;
        for p in parts {
            tensors.push(match p {
                Part::Input(j) => self.input(*j, Kind::Number, class)?,
                Part::Numbers(t, _) => t.clone(),
                Part::Text(..) => {
                    return Err(unsupported(
                        class,
                        Some("text reaches a step that takes numbers".into()),
                    ))
                }
            });
            width += p.width();
        }
        if tensors.is_empty() {
            return Err(unsupported(class, Some("no input columns".into())));
        }
        Ok((self.concat(&tensors), width))
    }

    /// The columns as string tensors `[N, 1]`, for a step fitted on text.
    fn texts(&mut self, parts: &[Part], class: &str) -> Result<Vec<String>> {
        parts
            .iter()
            .map(|p| match p {
                Part::Input(j) => self.input(*j, Kind::Text, class),
                Part::Text(t, _) => Ok(t.clone()),
                Part::Numbers(..) => Err(unsupported(
                    class,
                    Some("numbers reach a step fitted on text".into()),
                )),
            })
            .collect()
    }

    /// `view` on logical columns.
    pub(super) fn frame_emit(&mut self, view: &View<'_>, parts: Vec<Part>) -> Result<FrameOut> {
        let out = match view {
            View::Pipeline {
                transforms, last, ..
            } => {
                let mut cur = parts;
                for t in transforms {
                    cur =
                        self.frame_transform(t, cur, "a pipeline step that is not a transformer")?;
                }
                return match last.as_deref() {
                    Some(l) => self.frame_emit(l, cur),
                    None => Ok(FrameOut::Parts(cur)),
                };
            }
            View::Stack { class, blocks, .. } => {
                let mut out = Vec::new();
                for b in blocks {
                    let sub = match b.columns {
                        Some(cols) => self.select(&parts, cols, class)?,
                        None => parts.clone(),
                    };
                    let mut got = match &b.est {
                        Some(e) => {
                            self.frame_transform(e, sub, "a member that is not a transformer")?
                        }
                        None => sub,
                    };
                    if let Some(w) = b.weight {
                        let (m, n) = self.numbers(&got, class)?;
                        let w = self.f64s(vec![], &[w]);
                        got = vec![Part::Numbers(self.op("Mul", &[&m, &w], vec![]), n)];
                    }
                    out.extend(got);
                }
                FrameOut::Parts(out)
            }
            View::Identity { .. } => FrameOut::Parts(parts),
            // Said before the columns are checked, so the refusal names the real reason.
            View::Unexportable { class, reason } => {
                return Err(unsupported(class, Some((*reason).into())))
            }
            View::Opaque { class } => return Err(unsupported(class, None)),
            View::TextEncoder {
                class,
                features,
                one_hot,
                ..
            } => {
                let width = parts.iter().map(Part::width).sum::<usize>();
                let parts = self.select(&parts, &(0..width).collect::<Vec<_>>(), class)?;
                if parts.len() != features.len() {
                    return Err(unsupported(
                        class,
                        Some(format!(
                            "{} columns for {} features",
                            parts.len(),
                            features.len()
                        )),
                    ));
                }
                let mut cols = Vec::with_capacity(parts.len());
                for (p, f) in parts.iter().zip(features) {
                    // scikit-learn's imputer replaces only its own kind of missing value
                    // (NaN, not None): the others reach the encoder as its missing
                    // category. A string tensor holds every missing value as "", all of
                    // which the imputer replaced.
                    if matches!(p, Part::Text(_, true)) && f.keys.contains(&TextKey::Missing) {
                        return Err(unsupported(
                            class,
                            Some("a missing category after a SimpleImputer: values missing in another way than its missing_values (None where it imputes NaN) reach the encoder, and a string tensor holds every missing value as \"\"".into()),
                        ));
                    }
                    let numeric = f.keys.iter().all(|k| matches!(k, TextKey::Number(_)));
                    cols.push(match (p, numeric) {
                        (Part::Input(j), true) => {
                            Feature::Number(self.input(*j, Kind::Number, class)?)
                        }
                        (Part::Numbers(t, 1), true) => Feature::Number(t.clone()),
                        (_, false) => {
                            Feature::Text(self.texts(std::slice::from_ref(p), class)?.remove(0))
                        }
                        _ => {
                            return Err(unsupported(
                                class,
                                Some("text reaches a feature fitted on numbers".into()),
                            ))
                        }
                    });
                }
                let (t, n) = self.text_encoder(class, &cols, features, *one_hot)?;
                FrameOut::Parts(vec![Part::Numbers(t, n)])
            }
            View::TextImputer {
                class,
                missing,
                columns,
                fills,
                indicator,
                ..
            } => {
                let cols = self.texts(&parts, class)?;
                FrameOut::Parts(
                    self.text_imputer(class, &cols, *missing, columns, fills, *indicator)?,
                )
            }
            View::HistGradientBoosting {
                preprocessor: Some(p),
                ..
            } => {
                let pre = self.frame_transform(p, parts, "as a preprocessor")?;
                let (m, _) = self.numbers(&pre, view.class())?;
                FrameOut::Out(self.hist_trees(view, &m)?)
            }
            _ => {
                let (m, _) = self.numbers(&parts, view.class())?;
                match self.emit(view, &m)? {
                    Out::Transform(t, n) => FrameOut::Parts(vec![Part::Numbers(t, n)]),
                    other => FrameOut::Out(other),
                }
            }
        };
        Ok(out)
    }

    fn frame_transform(
        &mut self,
        view: &View<'_>,
        parts: Vec<Part>,
        role: &str,
    ) -> Result<Vec<Part>> {
        match self.frame_emit(view, parts)? {
            FrameOut::Parts(p) => Ok(p),
            FrameOut::Out(_) => Err(unsupported(view.class(), Some(role.into()))),
        }
    }

    /// One LabelEncoder (text -> int64) per feature. OneHotEncoder: the code is the output
    /// column, compared with every column index; OrdinalEncoder: the code indexes a table
    /// of output values (so NaN and any double come out exactly).
    fn text_encoder(
        &mut self,
        class: &str,
        cols: &[Feature],
        features: &[TextLookup<'_>],
        one_hot: bool,
    ) -> Result<(String, usize)> {
        let mut parts = Vec::new();
        let mut width = 0;
        for (col, f) in cols.iter().zip(features) {
            // OneHotEncoder: the code is the output column; OrdinalEncoder: an index into
            // the table of output values (the last entry for unknown values).
            let (values, default): (Vec<i64>, i64) = if one_hot {
                (
                    f.codes.iter().map(|c| *c as i64).collect(),
                    f.unknown as i64,
                )
            } else {
                ((0..f.keys.len() as i64).collect(), f.keys.len() as i64)
            };
            let code = match col {
                Feature::Text(col) => self.text_codes(class, col, &f.keys, &values, default)?,
                Feature::Number(col) => self.number_codes(class, col, &f.keys, &values, default)?,
            };
            if one_hot {
                if f.width == 0 {
                    continue;
                }
                let idx: Vec<i64> = (0..f.width as i64).collect();
                let idx = self.i64s(vec![f.width as i64], &idx);
                parts.push(self.op("Equal", &[&code, &idx], vec![]));
            } else {
                let mut table = f.codes.clone();
                table.push(f.unknown);
                let table = self.f64s(vec![table.len() as i64], &table);
                parts.push(self.op(
                    "Gather",
                    &[&table, &code],
                    vec![AttributeProto::int("axis", 0)],
                ));
            }
            width += f.width;
        }
        if parts.is_empty() {
            return Err(unsupported(class, Some("no output columns".into())));
        }
        let all = self.concat(&parts);
        let out = if one_hot {
            self.cast(&all, data_type::DOUBLE)
        } else {
            all
        };
        Ok((out, width))
    }

    /// LabelEncoder (string -> int64) of a text feature: `keys[i]` -> `values[i]`.
    fn text_codes(
        &mut self,
        class: &str,
        col: &str,
        keys: &[TextKey<'_>],
        values: &[i64],
        default: i64,
    ) -> Result<String> {
        let keys: Vec<String> = keys
            .iter()
            .map(|k| key_text(k).map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                unsupported(
                    class,
                    Some("a feature whose categories mix text and numbers".into()),
                )
            })?;
        let mut seen = HashSet::new();
        if let Some(dup) = keys.iter().find(|k| !seen.insert(k.as_str())) {
            let what = if dup.is_empty() {
                "two categories are missing values or the empty string (a string tensor holds missing values as \"\")".to_string()
            } else {
                format!("category {dup:?} appears twice")
            };
            return Err(unsupported(class, Some(what)));
        }
        Ok(self.op_ml(
            "LabelEncoder",
            &[col],
            vec![
                AttributeProto::tensor("keys_tensor", TensorProto::strings("", &keys)),
                AttributeProto::tensor(
                    "values_tensor",
                    TensorProto::i64s("", vec![values.len() as i64], values),
                ),
                AttributeProto::tensor(
                    "default_tensor",
                    TensorProto::i64s("", vec![1], &[default]),
                ),
            ],
        ))
    }

    /// The codes of a feature whose categories are numbers: LabelEncoder (double -> double,
    /// the pair the numeric OrdinalEncoder uses) then Cast to int64.
    fn number_codes(
        &mut self,
        class: &str,
        col: &str,
        keys: &[TextKey<'_>],
        values: &[i64],
        default: i64,
    ) -> Result<String> {
        let numbers: Vec<f64> = keys
            .iter()
            .filter_map(|k| match k {
                TextKey::Number(x) if !x.is_nan() => Some(*x),
                _ => None,
            })
            .collect();
        if numbers.len() != keys.len() {
            return Err(unsupported(
                class,
                Some("a numeric feature of a text encoder with a NaN category".into()),
            ));
        }
        let values: Vec<f64> = values.iter().map(|v| *v as f64).collect();
        let coded = self.op_ml(
            "LabelEncoder",
            &[col],
            vec![
                AttributeProto::tensor(
                    "keys_tensor",
                    TensorProto::f64s("", vec![numbers.len() as i64], &numbers),
                ),
                AttributeProto::tensor(
                    "values_tensor",
                    TensorProto::f64s("", vec![values.len() as i64], &values),
                ),
                AttributeProto::tensor(
                    "default_tensor",
                    TensorProto::f64s("", vec![1], &[default as f64]),
                ),
            ],
        );
        Ok(self.cast(&coded, data_type::INT64))
    }

    /// The kept text columns, the value `missing` replaced by the column's fill.
    fn text_imputer(
        &mut self,
        class: &str,
        cols: &[String],
        missing: TextKey<'_>,
        columns: &[usize],
        fills: &[TextKey<'_>],
        indicator: Option<&[usize]>,
    ) -> Result<Vec<Part>> {
        if columns.is_empty() && indicator.is_none_or(|f| f.is_empty()) {
            return Err(unsupported(class, Some("no output columns".into())));
        }
        let text = |k: &TextKey<'_>| {
            key_text(k).map(str::to_string).ok_or_else(|| {
                unsupported(
                    class,
                    Some("a number as missing_values or fill value".into()),
                )
            })
        };
        let marker = self.name("c");
        self.inits
            .push(TensorProto::strings(&marker, &[text(&missing)?]));
        let mut out = Vec::with_capacity(columns.len());
        for (&j, fill) in columns.iter().zip(fills) {
            let Some(col) = cols.get(j) else {
                return Err(unsupported(class, Some(format!("no input column {j}"))));
            };
            let is_missing = self.op("Equal", &[col, &marker], vec![]);
            let f = self.name("c");
            self.inits.push(TensorProto::strings(&f, &[text(fill)?]));
            let imputed = self.op("Where", &[&is_missing, &f, col], vec![]);
            let replaced = missing == TextKey::Missing && *fill != TextKey::Missing;
            out.push(Part::Text(imputed, replaced));
        }
        if let Some(features) = indicator.filter(|f| !f.is_empty()) {
            // The indicator looks at the input, before imputation.
            let mut flags = Vec::with_capacity(features.len());
            for &j in features {
                let Some(col) = cols.get(j) else {
                    return Err(unsupported(class, Some(format!("no input column {j}"))));
                };
                flags.push(self.op("Equal", &[col, &marker], vec![]));
            }
            let all = self.concat(&flags);
            out.push(Part::Numbers(
                self.cast(&all, data_type::DOUBLE),
                features.len(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn column_names_become_onnx_friendly_names() {
        assert_eq!(sanitize("city"), "city");
        assert_eq!(sanitize("first name"), "first_name");
        assert_eq!(sanitize("1st"), "_1st");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("prix (€)"), "prix____");
    }
}
