//! Predictions to response bodies: JSON (MLflow's `{"predictions": ...}`), CSV and `.npy`.
//!
//! # Choosing the format
//! A `?format=json|csv|npy` query parameter, when present, MUST name one of the three and
//! wins. Otherwise the `Accept` header is read as RFC 9110 says (media ranges with `q`
//! weights; the highest weight wins, the first listed on a tie): `application/json`,
//! `text/csv` and `application/x-npy` are served, `*/*` and `application/*` mean JSON,
//! `text/*` CSV (a type refused by name with `q=0` is not given through a wildcard). No header (or an empty one) means JSON. A header that accepts none of them
//! (`Accept: image/png`) is answered 406.
//!
//! # JSON
//! `{"predictions": [...]}`: a classifier's labels as the JSON values of its classes (integers,
//! floats, `true`/`false`, strings); a 1-d output (a regressor's `predict`, a binary
//! `decision_function`) as a list of numbers; a 2-d output (`predict_proba`, `transform`) as a
//! list of rows, each a list of numbers. Floats are written in their shortest text that reads
//! back as the same f64. NaN and infinities have no JSON form and are written `null`, as
//! pandas' `to_json` writes them (a client that needs them asks for CSV or `.npy`).
//!
//! # CSV and `.npy`
//! Exactly what `skvault predict` writes ([`skvault_table::predictions`]): a header line then
//! one line per row; `.npy` with the dtype of the classes for labels, `<f8` otherwise.

use std::io::Write as _;

use skvault_infer::{Labels, Matrix, Method, Model, Prediction};
use skvault_table::predictions;

use crate::request::RequestError;

/// The format of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Csv,
    Npy,
}

impl Accept {
    /// The format to answer in (see the module docs).
    pub fn negotiate(
        accept_header: Option<&str>,
        format_query: Option<&str>,
    ) -> Result<Accept, RequestError> {
        if let Some(format) = format_query {
            return match format.trim().to_ascii_lowercase().as_str() {
                "json" => Ok(Accept::Json),
                "csv" => Ok(Accept::Csv),
                "npy" => Ok(Accept::Npy),
                _ => Err(RequestError::NotAcceptable {
                    found: format!("format={}", shorten(format)),
                }),
            };
        }
        let Some(header) = accept_header.filter(|h| !h.trim().is_empty()) else {
            return Ok(Accept::Json);
        };
        let ranges: Vec<(String, f32)> = header
            .split(',')
            .map(|range| {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                    .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
                    .filter(|q| q.is_finite() && (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
                (media, q)
            })
            .collect();
        // A type refused by name (`q=0`) is not given through a wildcard either.
        let exact = |media: &str| match media {
            "application/json" => Some(Accept::Json),
            "text/csv" => Some(Accept::Csv),
            "application/x-npy" => Some(Accept::Npy),
            _ => None,
        };
        let refused: Vec<Accept> = ranges
            .iter()
            .filter(|(_, q)| *q == 0.0)
            .filter_map(|(m, _)| exact(m))
            .collect();
        let mut best: Option<(f32, Accept)> = None;
        for (media, q) in &ranges {
            let candidates: &[Accept] = match media.as_str() {
                "*/*" => &[Accept::Json, Accept::Csv, Accept::Npy],
                "application/*" => &[Accept::Json, Accept::Npy],
                "text/*" => &[Accept::Csv],
                m => match exact(m) {
                    Some(Accept::Json) => &[Accept::Json],
                    Some(Accept::Csv) => &[Accept::Csv],
                    Some(Accept::Npy) => &[Accept::Npy],
                    None => continue,
                },
            };
            let Some(&accept) = candidates.iter().find(|a| !refused.contains(a)) else {
                continue;
            };
            if *q > 0.0 && best.is_none_or(|(b, _)| *q > b) {
                best = Some((*q, accept));
            }
        }
        best.map(|(_, a)| a)
            .ok_or_else(|| RequestError::NotAcceptable {
                found: shorten(header),
            })
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Accept::Json => "application/json",
            Accept::Csv => "text/csv; charset=utf-8",
            Accept::Npy => "application/x-npy",
        }
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

/// A response body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Encodes what `method` of `model` returned in the format `accept`. Labels of a model
/// without classes (which no valid model file gives) are written as their indices.
pub fn encode(
    output: skvault_infer::Output,
    model: &Model,
    method: Method,
    accept: Accept,
) -> Encoded {
    let body = match accept {
        Accept::Json => json(&output, model),
        Accept::Csv | Accept::Npy => {
            let output = table_output(output, model);
            if accept == Accept::Csv {
                let headers = predictions::column_names(&output, model, method);
                predictions::to_csv(&output, &headers)
            } else {
                predictions::to_npy(&output)
            }
        }
    };
    Encoded {
        content_type: accept.content_type(),
        body,
    }
}

fn table_output(output: skvault_infer::Output, model: &Model) -> predictions::Output {
    let indices = match output {
        skvault_infer::Output::Prediction(Prediction::Labels(idx)) => {
            match model.classes().cloned() {
                Some(classes) => return predictions::Output::Labels(idx, classes),
                None => idx,
            }
        }
        skvault_infer::Output::Prediction(Prediction::Values(m))
        | skvault_infer::Output::Matrix(m) => return predictions::Output::Values(m),
    };
    predictions::Output::Values(Matrix::column(
        indices.into_iter().map(|i| i as f64).collect(),
    ))
}

/// `{"predictions": ...}` written straight into one buffer.
fn json(output: &skvault_infer::Output, model: &Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"predictions\":[");
    match output {
        skvault_infer::Output::Prediction(Prediction::Labels(idx)) => {
            json_labels(&mut out, idx, model.classes().map(|c| &c.labels));
        }
        skvault_infer::Output::Prediction(Prediction::Values(m))
        | skvault_infer::Output::Matrix(m) => json_matrix(&mut out, m),
    }
    out.extend_from_slice(b"]}");
    out
}

fn json_labels(out: &mut Vec<u8>, idx: &[usize], labels: Option<&Labels>) {
    for (n, &i) in idx.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        match labels {
            Some(Labels::Int(v)) => write_int(out, v.get(i).copied()),
            Some(Labels::Float(v)) => write_float(out, v.get(i).copied().unwrap_or(f64::NAN)),
            Some(Labels::Bool(v)) => out.extend_from_slice(match v.get(i) {
                Some(true) => b"true",
                Some(false) => b"false",
                None => b"null",
            }),
            Some(Labels::Str(v)) => match v.get(i) {
                Some(s) => write_str(out, s),
                None => out.extend_from_slice(b"null"),
            },
            None => write_int(out, i64::try_from(i).ok()),
        }
    }
}

fn json_matrix(out: &mut Vec<u8>, m: &Matrix) {
    if m.flat || m.n_cols == 0 {
        for (n, &v) in m.data.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_float(out, v);
        }
        return;
    }
    for (r, row) in m.data.chunks_exact(m.n_cols).enumerate() {
        if r > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (n, &v) in row.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_float(out, v);
        }
        out.push(b']');
    }
}

fn write_int(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        // Writing to a Vec cannot fail.
        Some(v) => drop(write!(out, "{v}")),
        None => out.extend_from_slice(b"null"),
    }
}

/// The shortest text that reads back as `v` (Rust's `{:?}` is round-trip exact and always
/// valid JSON for a finite float: `1.0`, `1e-7`, `1e21`); `null` for NaN and infinities.
fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        drop(write!(out, "{v:?}"));
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a str to a Vec cannot fail.
    drop(serde_json::to_writer(&mut *out, s));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(idx: &[usize], labels: Option<&Labels>) -> serde_json::Value {
        let mut out = Vec::new();
        out.push(b'[');
        json_labels(&mut out, idx, labels);
        out.push(b']');
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    #[test]
    fn labels_are_the_json_values_of_their_classes() {
        let text = Labels::Str(vec!["cat".into(), "d\"og\n\u{e9}".into()]);
        assert_eq!(
            labels(&[1, 0, 1], Some(&text)),
            serde_json::json!(["d\"og\n\u{e9}", "cat", "d\"og\n\u{e9}"])
        );
        let flags = Labels::Bool(vec![false, true]);
        assert_eq!(
            labels(&[1, 0], Some(&flags)),
            serde_json::json!([true, false])
        );
        let floats = Labels::Float(vec![0.5, -1e-9, f64::NAN]);
        assert_eq!(
            labels(&[0, 1, 2], Some(&floats)),
            serde_json::json!([0.5, -1e-9, null])
        );
        let ints = Labels::Int(vec![-3, i64::MAX]);
        assert_eq!(
            labels(&[1, 0], Some(&ints)),
            serde_json::json!([i64::MAX, -3])
        );
        // Without classes (no valid file gives that), the indices.
        assert_eq!(labels(&[2, 0], None), serde_json::json!([2, 0]));
        assert_eq!(labels(&[], Some(&ints)), serde_json::json!([]));
    }
}
