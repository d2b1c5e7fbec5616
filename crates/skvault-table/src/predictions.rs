//! What a model returned, as `.npy` or CSV bytes: the one encoding of results that
//! `skvault predict` writes to files and `skvault serve` returns in responses.
//!
//! Labels keep the dtype of the classifier's `classes_` (`<i8`, `<f8`, `|b1`, `<U{n}` in
//! `.npy`; their text in CSV); values are `<f8`, 1-d when scikit-learn returns a 1-d array
//! ([`Matrix::flat`]). CSV has one header line (see [`column_names`]) and floats in their
//! shortest round-trip text ([`format_float`]).

use skvault_infer::{format_float, Classes, Labels, Matrix, Method, Model};

use crate::{csv_field, npy_bytes};

/// What a method returned, ready to be encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A classifier's labels: indices into `Classes`.
    Labels(Vec<usize>, Classes),
    /// Values (regression, probabilities, scores, transformed features).
    Values(Matrix),
}

impl Output {
    /// The output of [`Model::call`] or [`Model::call_frame`], with the model's classes
    /// attached to labels; `None` when labels come from a model without classes (a
    /// malformed model: every classifier has them).
    pub fn from_infer(output: skvault_infer::Output, model: &Model) -> Option<Output> {
        use skvault_infer::Prediction;
        Some(match output {
            skvault_infer::Output::Prediction(Prediction::Labels(idx)) => {
                Output::Labels(idx, model.classes()?.clone())
            }
            skvault_infer::Output::Prediction(Prediction::Values(m))
            | skvault_infer::Output::Matrix(m) => Output::Values(m),
        })
    }

    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        match self {
            Output::Labels(idx, _) => idx.len(),
            Output::Values(m) => m.n_rows,
        }
    }
}

/// The CSV header: `prediction` for labels; the class labels for per-class probabilities
/// and scores; `prediction` (or `<method>`) for a 1-d output; `<method>_<i>` otherwise.
pub fn column_names(output: &Output, model: &Model, method: Method) -> Vec<String> {
    match output {
        Output::Labels(..) => vec!["prediction".into()],
        Output::Values(m) => {
            let by_class = matches!(method, Method::PredictProba | Method::DecisionFunction)
                && !m.flat
                && model.classes().is_some_and(|c| c.len() == m.n_cols);
            if by_class {
                let c = model.classes().map_or(0, Classes::len);
                (0..c)
                    .filter_map(|i| model.classes().and_then(|cl| cl.label_text(i)))
                    .collect()
            } else if m.flat {
                vec![method.name().replace("predict", "prediction")]
            } else {
                (0..m.n_cols)
                    .map(|i| format!("{}_{i}", method.name()))
                    .collect()
            }
        }
    }
}

/// The output as a `.npy` file.
pub fn to_npy(output: &Output) -> Vec<u8> {
    match output {
        Output::Values(m) => {
            let bytes: Vec<u8> = m.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let shape: Vec<usize> = if m.flat {
                vec![m.n_rows]
            } else {
                vec![m.n_rows, m.n_cols]
            };
            npy_bytes("<f8", &shape, &bytes)
        }
        Output::Labels(idx, classes) => {
            let n = [idx.len()];
            match &classes.labels {
                Labels::Int(v) => {
                    let b: Vec<u8> = idx.iter().flat_map(|i| v[*i].to_le_bytes()).collect();
                    npy_bytes("<i8", &n, &b)
                }
                Labels::Float(v) => {
                    let b: Vec<u8> = idx.iter().flat_map(|i| v[*i].to_le_bytes()).collect();
                    npy_bytes("<f8", &n, &b)
                }
                Labels::Bool(v) => {
                    let b: Vec<u8> = idx.iter().map(|i| u8::from(v[*i])).collect();
                    npy_bytes("|b1", &n, &b)
                }
                Labels::Str(v) => {
                    // Fixed-width UCS-4, as numpy stores str arrays.
                    let width = v
                        .iter()
                        .map(|s| s.chars().count())
                        .max()
                        .unwrap_or(0)
                        .max(1);
                    let mut b = Vec::with_capacity(idx.len() * width * 4);
                    for i in idx {
                        let s = &v[*i];
                        let mut count = 0;
                        for c in s.chars() {
                            b.extend_from_slice(&(c as u32).to_le_bytes());
                            count += 1;
                        }
                        b.resize(b.len() + (width - count) * 4, 0);
                    }
                    npy_bytes(&format!("<U{width}"), &n, &b)
                }
            }
        }
    }
}

/// The output as CSV text under `headers` (see [`column_names`]).
pub fn to_csv(output: &Output, headers: &[String]) -> Vec<u8> {
    let mut text = headers
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    match output {
        Output::Labels(idx, classes) => {
            for i in idx {
                text.push_str(&csv_field(&classes.label_text(*i).unwrap_or_default()));
                text.push('\n');
            }
        }
        Output::Values(m) => {
            for i in 0..m.n_rows {
                let row: Vec<String> = m.row(i).iter().map(|v| format_float(*v)).collect();
                text.push_str(&row.join(","));
                text.push('\n');
            }
        }
    }
    text.into_bytes()
}
