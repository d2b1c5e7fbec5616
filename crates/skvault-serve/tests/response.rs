//! Predictions to bodies: format negotiation, and JSON/CSV/NPY bodies of real models that
//! read back as the values the model returned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use bytes::Bytes;
use skvault_format::SkvFile;
use skvault_infer::{Labels, Matrix, MatrixView, Method, Model, Output, Prediction};
use skvault_serve::request::{parse, Expect, Limits, Media};
use skvault_serve::response::{encode, Accept};
use skvault_table::predictions;

#[test]
fn negotiation_follows_accept_weights_and_the_format_parameter() {
    let cases = [
        (None, None, Accept::Json),
        (Some(""), None, Accept::Json),
        (Some("*/*"), None, Accept::Json),
        (Some("application/json"), None, Accept::Json),
        (Some("text/csv"), None, Accept::Csv),
        (Some("text/*"), None, Accept::Csv),
        (Some("application/x-npy"), None, Accept::Npy),
        (Some("image/png, text/csv;q=0.2"), None, Accept::Csv),
        (
            Some("application/x-npy;q=0.5, text/csv;q=0.9"),
            None,
            Accept::Csv,
        ),
        (Some("text/csv;q=0.5, application/json"), None, Accept::Json),
        (Some("text/csv, application/json"), None, Accept::Csv),
        (Some("image/png"), Some("npy"), Accept::Npy),
        (None, Some("CSV"), Accept::Csv),
        (Some("text/csv"), Some("json"), Accept::Json),
        (Some("application/json;q=0, */*;q=0.1"), None, Accept::Csv),
        (
            Some("application/json;q=0, application/*"),
            None,
            Accept::Npy,
        ),
    ];
    for (header, query, expected) in cases {
        assert_eq!(
            Accept::negotiate(header, query).unwrap(),
            expected,
            "{header:?} {query:?}"
        );
    }
    for (header, query) in [
        (Some("image/png"), None),
        (Some("text/csv;q=0"), None),
        (Some("text/csv;q=nonsense"), None),
        (Some("text/csv;q=0, text/*"), None),
        (None, Some("xml")),
    ] {
        let err = Accept::negotiate(header, query).unwrap_err();
        assert_eq!((err.status(), err.kind()), (406, "not_acceptable"));
        let shown = header.or(query).unwrap();
        assert!(err.to_string().contains(shown), "{err}");
    }
}

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/model")
        .join(name)
}

/// The models of the fuzz corpus that native inference opens.
fn models() -> Vec<(String, Model, SkvFile)> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let file = SkvFile::open(&path).unwrap();
        if let Ok(model) = Model::from_file(&file) {
            out.push((path.display().to_string(), model, file));
        }
    }
    assert!(out.len() >= 5, "the model corpus shrank");
    out
}

/// The JSON body's predictions against what the model returned, value by value.
fn assert_json_matches(body: &[u8], output: &Output, model: &Model, label: &str) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    let obj = json.as_object().unwrap();
    assert_eq!(obj.len(), 1, "{label}");
    let got = obj["predictions"].as_array().unwrap();
    let number = |v: &serde_json::Value, want: f64| {
        if want.is_finite() {
            assert_eq!(v.as_f64(), Some(want), "{label}");
        } else {
            assert!(v.is_null(), "{label}: {v} for {want}");
        }
    };
    match output {
        Output::Prediction(Prediction::Labels(idx)) => {
            assert_eq!(got.len(), idx.len());
            let labels = &model.classes().unwrap().labels;
            for (v, &i) in got.iter().zip(idx) {
                match labels {
                    Labels::Int(l) => assert_eq!(v.as_i64(), Some(l[i]), "{label}"),
                    Labels::Float(l) => number(v, l[i]),
                    Labels::Bool(l) => assert_eq!(v.as_bool(), Some(l[i]), "{label}"),
                    Labels::Str(l) => assert_eq!(v.as_str(), Some(l[i].as_str()), "{label}"),
                }
            }
        }
        Output::Prediction(Prediction::Values(m)) | Output::Matrix(m) => {
            assert_eq!(got.len(), m.n_rows, "{label}");
            for (r, v) in got.iter().enumerate() {
                if m.flat {
                    number(v, m.data[r]);
                } else {
                    let row = v.as_array().unwrap();
                    assert_eq!(row.len(), m.n_cols, "{label}");
                    for (x, &want) in row.iter().zip(m.row(r)) {
                        number(x, want);
                    }
                }
            }
        }
    }
}

#[test]
fn every_corpus_model_and_method_encodes_as_the_cli_writes_and_json_reads_back() {
    let mut checked = 0;
    for (name, model, _) in models() {
        let n = model.n_features();
        // Rows of ordinary numbers, with a NaN where the model allows it.
        let rows: Vec<f64> = (0..3 * n).map(|i| (i % 7) as f64 * 0.37 - 1.0).collect();
        let x = MatrixView::new(&rows, 3, n).unwrap();
        for &method in model.methods() {
            let Ok(output) = model.call(method, &x) else {
                continue;
            };
            let label = format!("{name} {}", method.name());
            let json = encode(output.clone(), &model, method, Accept::Json);
            assert_eq!(json.content_type, "application/json");
            assert_json_matches(&json.body, &output, &model, &label);

            let table = predictions::Output::from_infer(output.clone(), &model).unwrap();
            let csv = encode(output.clone(), &model, method, Accept::Csv);
            let headers = predictions::column_names(&table, &model, method);
            assert_eq!(csv.body, predictions::to_csv(&table, &headers), "{label}");
            assert!(csv.content_type.starts_with("text/csv"));
            let npy = encode(output, &model, method, Accept::Npy);
            assert_eq!(npy.body, predictions::to_npy(&table), "{label}");
            assert_eq!(npy.content_type, "application/x-npy");
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} model methods were encoded");
}

#[test]
fn non_finite_values_are_null_and_floats_round_trip() {
    let model = Model::from_file(&SkvFile::open(&corpus("seed-tree.skv")).unwrap()).unwrap();
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
        1e-7,
        -0.0,
        1e300,
        f64::MIN_POSITIVE,
        2.0f64.sqrt(),
        123_456_789.0,
    ];
    let output = Output::Matrix(Matrix::from_vec(values.to_vec(), 5, 2));
    let body = encode(output.clone(), &model, Method::Transform, Accept::Json).body;
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.starts_with("{\"predictions\":[[null,null],[null,0.1]"),
        "{text}"
    );
    assert_json_matches(&body, &output, &model, "hand-made");
    let flat = Output::Prediction(Prediction::Values(Matrix::column(values.to_vec())));
    let body = encode(flat.clone(), &model, Method::Predict, Accept::Json).body;
    assert_json_matches(&body, &flat, &model, "flat");
}

/// A request in JSON through the model's schema, prediction, and the answer in JSON: the
/// server's whole path without HTTP.
#[test]
fn a_mixed_type_pipeline_answers_a_records_request() {
    let file = SkvFile::open(&corpus("text-impute-constant-indicator-ordinal-forest.skv")).unwrap();
    let model = Model::from_file(&file).unwrap();
    let schema: skvault_frame::InputSchema =
        serde_json::from_value(file.manifest().metadata["input_schema"].clone()).unwrap();
    let mut record = serde_json::Map::new();
    for col in &schema.columns {
        let value = match (&col.kind, &col.categories) {
            (skvault_frame::ColumnKind::Text, _) => serde_json::json!("zzz-unseen"),
            (skvault_frame::ColumnKind::Category, Some(c)) => serde_json::to_value(&c[0]).unwrap(),
            (skvault_frame::ColumnKind::Category, None) => serde_json::json!("a"),
            _ => serde_json::json!(1.5),
        };
        record.insert(col.name.clone(), value);
    }
    let body = serde_json::json!({"dataframe_records": [record.clone(), record]}).to_string();
    let expect = Expect {
        schema: Some(&schema),
        feature_names: model.feature_names(),
        n_features: model.n_features(),
    };
    let frame = parse(Media::Json, Bytes::from(body), &expect, &Limits::rows(100)).unwrap();
    let output = model.call_frame(Method::PredictProba, &frame).unwrap();
    let encoded = encode(output.clone(), &model, Method::PredictProba, Accept::Json);
    assert_json_matches(&encoded.body, &output, &model, "pipeline");
    let json: serde_json::Value = serde_json::from_slice(&encoded.body).unwrap();
    // Two equal rows, two classes each, probabilities summing to one.
    let rows = json["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], rows[1]);
    let sum: f64 = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-12, "{sum}");
}
