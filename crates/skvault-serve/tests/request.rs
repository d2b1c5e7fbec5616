//! Request bodies to frames: every JSON shape, CSV, Parquet and `.npy`, with and without a
//! schema, and one refusal per error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use skvault_frame::{Column, DictBuilder, Frame, InputSchema, Value};
use skvault_serve::request::{parse, Expect, Limits, Media, RequestError};

fn schema() -> InputSchema {
    serde_json::from_str(
        r#"{"source": "validation", "columns": [
            {"name": "age", "dtype": "float64", "kind": "number"},
            {"name": "city", "dtype": "str", "kind": "text"},
            {"name": "id", "dtype": "int64", "kind": "unused"}
        ]}"#,
    )
    .unwrap()
}

fn text(name: &str, values: Vec<Value>) -> Column {
    let mut b = DictBuilder::new(name);
    for v in values {
        b.push(v).unwrap();
    }
    Column::Dict(b.finish())
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

const LIMITS: Limits = Limits {
    max_rows: 1000,
    max_values: 100_000,
};

fn with_schema(body: &str) -> Result<Frame, RequestError> {
    let schema = schema();
    let expect = Expect {
        schema: Some(&schema),
        feature_names: None,
        n_features: 3,
    };
    parse(
        Media::Json,
        Bytes::copy_from_slice(body.as_bytes()),
        &expect,
        &LIMITS,
    )
}

fn numeric_model(body: &str, media: Media, limits: &Limits) -> Result<Frame, RequestError> {
    let expect = Expect {
        schema: None,
        feature_names: None,
        n_features: 2,
    };
    parse(
        media,
        Bytes::copy_from_slice(body.as_bytes()),
        &expect,
        limits,
    )
}

/// Frames equal value by value (NaN equal to NaN, which `Frame`'s `PartialEq` does not say).
fn assert_same(a: &Frame, b: &Frame) {
    assert_eq!(a.names(), b.names());
    assert_eq!(a.n_rows(), b.n_rows());
    for (name, (x, y)) in a.names().iter().zip(a.columns().iter().zip(b.columns())) {
        match (x, y) {
            (Column::Numeric(x), Column::Numeric(y)) => {
                assert_eq!(x.len(), y.len());
                for (p, q) in x.iter().zip(y) {
                    assert!(p == q || (p.is_nan() && q.is_nan()), "{name}: {p} != {q}");
                }
            }
            (Column::Dict(x), Column::Dict(y)) => {
                for row in 0..x.len() {
                    assert_eq!(x.get(row), y.get(row), "{name} row {row}");
                }
            }
            _ => panic!("column {name}: {x:?} and {y:?} are of different sorts"),
        }
    }
}

/// The frame every shape below describes: two rows, a missing age and a missing city.
fn expected_people() -> Frame {
    Frame::new(
        vec!["age".into(), "city".into(), "id".into()],
        vec![
            Column::Numeric(vec![31.0, f64::NAN]),
            text("city", vec![s("Lyon"), Value::None]),
            text("id", vec![Value::Num(1.0), Value::Num(2.0)]),
        ],
    )
    .unwrap()
}

#[test]
fn every_json_shape_gives_the_same_frame() {
    let bodies = [
        r#"{"dataframe_split": {"columns": ["age", "city", "id"], "index": [0, 1],
            "data": [[31, "Lyon", 1], [null, null, 2]]}}"#,
        // data before columns, as a hand-written body may put it.
        r#"{"dataframe_split": {"data": [[31, "Lyon", 1], [null, null, 2]],
            "columns": ["age", "city", "id"]}}"#,
        // no columns: the schema's names in order.
        r#"{"dataframe_split": {"data": [[31, "Lyon", 1], [null, null, 2]]}}"#,
        r#"{"dataframe_records": [{"age": 31, "city": "Lyon", "id": 1},
            {"age": null, "city": null, "id": 2}]}"#,
        r#"{"inputs": [[31, "Lyon", 1], [null, null, 2]]}"#,
        r#"{"inputs": [{"age": 31, "city": "Lyon", "id": 1}, {"age": null, "city": null, "id": 2}]}"#,
        r#"{"inputs": {"age": [31, null], "city": ["Lyon", null], "id": [1, 2]}}"#,
        r#"{"instances": [[31, "Lyon", 1], [null, null, 2]]}"#,
        r#"{"instances": [{"age": 31, "city": "Lyon", "id": 1}, {"age": null, "city": null, "id": 2}],
            "params": {}}"#,
        r#"{"params": null, "instances": [{"id": 1, "city": "Lyon", "age": 31.0},
            {"age": null, "city": null, "id": 2}]}"#,
    ];
    let expected = expected_people();
    for body in bodies {
        let frame = with_schema(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        let mut names = frame.names().to_vec();
        names.sort();
        assert_eq!(names, ["age", "city", "id"], "{body}");
        // Records may order keys differently: compare each column by name.
        let reordered = Frame::new(
            expected.names().to_vec(),
            expected
                .names()
                .iter()
                .map(|n| frame.column(n).unwrap().clone())
                .collect(),
        )
        .unwrap();
        assert_same(&reordered, &expected);
    }
}

#[test]
fn records_follow_pandas_for_absent_keys() {
    // pandas.DataFrame(records): every key seen, in order; an absent key is NaN, even in an
    // object column, while an explicit null there stays None.
    let frame = with_schema(
        r#"{"dataframe_records": [{"city": "Lyon"}, {"age": 40, "city": null}, {"age": 41}]}"#,
    )
    .unwrap();
    let expected = Frame::new(
        vec!["city".into(), "age".into()],
        vec![
            text("city", vec![s("Lyon"), Value::None, Value::NaN]),
            Column::Numeric(vec![f64::NAN, 40.0, 41.0]),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
}

#[test]
fn booleans_and_numeric_text_convert_as_pandas_and_numpy_do() {
    let frame = with_schema(
        r#"{"inputs": {"age": [true, false, "1.5", " 2e1 "], "city": [true, "x", 3, "y"]}}"#,
    );
    // A number in a text column is refused by the schema check ...
    assert_eq!(frame.unwrap_err().kind(), "wrong_dtype");
    // ... booleans and numeric text in a numeric column are numbers.
    // ... booleans and numeric text in a numeric column are numbers; a column the model
    // does not read keeps every value as it is.
    let frame = with_schema(
        r#"{"inputs": {"age": [true, false, "1.5", " 2e1 "], "city": ["x", "x", null, "y"],
            "id": [true, "x", null, 3]}}"#,
    )
    .unwrap();
    let expected = Frame::new(
        vec!["age".into(), "city".into(), "id".into()],
        vec![
            Column::Numeric(vec![1.0, 0.0, 1.5, 20.0]),
            text("city", vec![s("x"), s("x"), Value::None, s("y")]),
            text(
                "id",
                vec![Value::Bool(true), s("x"), Value::None, Value::Num(3.0)],
            ),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
}

#[test]
fn a_model_without_names_takes_columns_by_position() {
    let frame = numeric_model(
        r#"{"dataframe_split": {"columns": [0, 1], "data": [[1, 2], [3, 4]]}}"#,
        Media::Json,
        &LIMITS,
    )
    .unwrap();
    let expected = Frame::new(
        vec!["0".into(), "1".into()],
        vec![
            Column::Numeric(vec![1.0, 3.0]),
            Column::Numeric(vec![2.0, 4.0]),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
    let frame = numeric_model(r#"{"instances": [[1, 2], [3, 4]]}"#, Media::Json, &LIMITS).unwrap();
    assert_same(&frame, &expected);
}

#[test]
fn feature_names_name_unnamed_rows_and_are_required_of_named_ones() {
    let names = vec!["a".to_string(), "b".to_string()];
    let expect = Expect {
        schema: None,
        feature_names: Some(&names),
        n_features: 2,
    };
    let run = |body: &str| parse(Media::Json, Bytes::from(body.to_string()), &expect, &LIMITS);
    let frame = run(r#"{"inputs": [[1, 2]]}"#).unwrap();
    assert_eq!(frame.names(), ["a", "b"]);
    // Extra columns are allowed (and may hold text: the model does not read them).
    let frame = run(r#"{"dataframe_records": [{"b": 2, "a": 1, "note": "x"}]}"#).unwrap();
    assert_eq!(frame.n_cols(), 3);
    let err = run(r#"{"dataframe_records": [{"b": 2}]}"#).unwrap_err();
    assert_eq!(err, RequestError::MissingColumns(vec!["a".into()]));
    let err = run(r#"{"dataframe_records": [{"a": "one", "b": 2}]}"#).unwrap_err();
    assert_eq!(err.kind(), "wrong_dtype");
    assert!(err.to_string().contains("\"one\""), "{err}");
}

// --- one refusal per error ----------------------------------------------------------------

#[test]
fn content_types() {
    let ok = [
        ("application/json", Media::Json),
        ("Application/JSON; charset=UTF-8", Media::Json),
        ("text/csv", Media::Csv),
        ("text/csv; header=present", Media::Csv),
        ("application/vnd.apache.parquet", Media::Parquet),
        ("application/x-parquet", Media::Parquet),
        ("application/x-npy", Media::Npy),
    ];
    for (ct, media) in ok {
        assert_eq!(Media::from_content_type(Some(ct)).unwrap(), media, "{ct}");
    }
    for ct in [
        Some("image/png"),
        Some("application/octet-stream"),
        Some("application/json; charset=latin-1"),
        None,
    ] {
        let err = Media::from_content_type(ct).unwrap_err();
        assert_eq!(err.status(), 415);
        assert_eq!(err.kind(), "unsupported_media_type");
        let message = err.to_string();
        assert!(message.contains("text/csv"), "{message}");
        if let Some(ct) = ct {
            assert!(message.contains(ct), "{message}");
        }
    }
}

/// Status, kind and a piece of the message of the error a body gets.
fn refused(body: &str) -> (u16, &'static str, String) {
    let err = with_schema(body).unwrap_err();
    (err.status(), err.kind(), err.to_string())
}

#[test]
fn malformed_json() {
    for body in [
        "{\"inputs\": [[1, \"a\", 1]",
        "",
        "{\"inputs\": [[1e999, \"a\", 1]]}",
        "{\"inputs\": [[1, \"a\", 1]]} x",
    ] {
        let (status, kind, _) = refused(body);
        assert_eq!((status, kind), (400, "malformed_json"), "{body}");
    }
}

#[test]
fn bodies_of_the_wrong_shape_name_what_they_found() {
    let cases = [
        ("[1, 2]", "a list"),
        ("{}", "none of"),
        (
            r#"{"inputs": [[1, "a", 1]], "instances": []}"#,
            "both \"inputs\" and \"instances\"",
        ),
        (r#"{"columns": []}"#, "unknown key \"columns\""),
        (r#"{"inputs": 3}"#, "inputs is a number"),
        (
            r#"{"dataframe_records": {"age": [1]}}"#,
            "dataframe_records is an object",
        ),
        (
            r#"{"inputs": [[1, [2], 3]]}"#,
            "column \"city\" holds a list",
        ),
        (
            r#"{"inputs": [{"age": 1}, [1, "a", 2]]}"#,
            "row 1 is a list, but row 0 is an object",
        ),
        (r#"{"inputs": [1, 2]}"#, "row 0 is a number"),
        (
            r#"{"dataframe_split": {"columns": ["age"]}}"#,
            "has no \"data\"",
        ),
        (
            r#"{"dataframe_split": {"columns": [["a"]], "data": []}}"#,
            "list of names",
        ),
        (
            r#"{"dataframe_split": {"data": [], "dtypes": {}}}"#,
            "\"dtypes\"",
        ),
        (
            r#"{"inputs": {"age": 1}}"#,
            "inputs[\"age\"] must be a list",
        ),
        (
            r#"{"inputs": [{"age": 1, "age": 2}]}"#,
            "the key \"age\" twice",
        ),
        (r#"{"inputs": [{}]}"#, "no keys"),
    ];
    for (body, part) in cases {
        let (status, kind, message) = refused(body);
        assert_eq!(
            (status, kind),
            (400, "bad_request_shape"),
            "{body}: {message}"
        );
        assert!(message.contains(part), "{body}: {message}");
    }
}

#[test]
fn params_are_refused_unless_empty() {
    let (status, kind, _) = refused(r#"{"inputs": [[1, "a", 1]], "params": {"x": 1}}"#);
    assert_eq!((status, kind), (400, "params_not_supported"));
    assert!(with_schema(r#"{"inputs": [[1, "a", 1]], "params": {}}"#).is_ok());
}

#[test]
fn ragged_rows_and_columns() {
    let (status, kind, message) = refused(r#"{"inputs": [[1, "a", 1], [2, "b"]]}"#);
    assert_eq!((status, kind), (400, "ragged_rows"));
    assert_eq!(message, "row 1 has 2 values, but the rows have 3 columns");
    let (_, kind, _) = refused(r#"{"inputs": [[1, "a", 1], [2, "b", 3, 4]]}"#);
    assert_eq!(kind, "ragged_rows");
    let (_, kind, message) = refused(r#"{"inputs": {"age": [1, 2], "city": ["a"]}}"#);
    assert_eq!(kind, "ragged_rows");
    assert!(
        message.contains("\"city\" has 1 values, but column \"age\" has 2"),
        "{message}"
    );
}

#[test]
fn unnamed_rows_must_have_the_models_column_count() {
    let (status, kind, message) = refused(r#"{"inputs": [[1, "a"]]}"#);
    assert_eq!((status, kind), (400, "wrong_column_count"));
    assert_eq!(
        message,
        "the input has 2 columns, but the model takes 3 (age, city, id)"
    );
    let err = numeric_model("1,2,3\n", Media::Csv, &LIMITS).unwrap_err();
    assert_eq!(err.kind(), "wrong_column_count");
    let err =
        numeric_model(r#"{"dataframe_records": [{"a": 1}]}"#, Media::Json, &LIMITS).unwrap_err();
    assert_eq!(err.kind(), "wrong_column_count");
}

#[test]
fn duplicate_columns() {
    let (status, kind, message) =
        refused(r#"{"dataframe_split": {"columns": ["age", "age"], "data": [[1, 2]]}}"#);
    assert_eq!((status, kind), (400, "duplicate_columns"));
    assert!(message.contains("\"age\" appears twice"));
    let err = numeric_model("a,a\n1,2\n", Media::Csv, &LIMITS).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn missing_columns_are_all_named() {
    let (status, kind, message) = refused(r#"{"dataframe_records": [{"other": 1}]}"#);
    assert_eq!((status, kind), (400, "missing_columns"));
    assert_eq!(
        message,
        "columns \"age\", \"city\" are missing from the input"
    );
}

#[test]
fn text_for_a_number_names_column_row_and_value() {
    let long = "x".repeat(100);
    let body = format!(r#"{{"inputs": [[1, "a", 1], ["{long}", "b", 2]]}}"#);
    let err = with_schema(&body).unwrap_err();
    assert_eq!((err.status(), err.kind()), (400, "wrong_dtype"));
    match &err {
        RequestError::TextForNumber { column, row, value } => {
            assert_eq!((column.as_str(), *row), ("age", 1));
            assert!(value.len() < 50 && value.ends_with("..."), "{value}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .contains("could not convert string to float"));
}

#[test]
fn numbers_for_text_are_refused_by_the_schema() {
    let (status, kind, message) = refused(r#"{"inputs": [[1, 2, 1]]}"#);
    assert_eq!((status, kind), (400, "wrong_dtype"));
    assert!(message.contains("\"city\" holds numbers"), "{message}");
}

#[test]
fn no_rows() {
    for body in [
        r#"{"inputs": []}"#,
        r#"{"dataframe_split": {"columns": ["age", "city"], "data": []}}"#,
        r#"{"inputs": {"age": [], "city": []}}"#,
    ] {
        let (status, kind, _) = refused(body);
        assert_eq!((status, kind), (400, "no_rows"), "{body}");
    }
    let err = numeric_model("a,b\n", Media::Csv, &LIMITS).unwrap_err();
    assert_eq!(err.kind(), "malformed_csv");
}

#[test]
fn too_many_rows_is_413_in_every_shape() {
    let limits = Limits {
        max_rows: 2,
        max_values: 100,
    };
    let three_rows = [
        (r#"{"instances": [[1, 2], [3, 4], [5, 6]]}"#, Media::Json),
        (
            r#"{"dataframe_records": [{"0": 1, "1": 2}, {"0": 1, "1": 2}, {"0": 1, "1": 2}]}"#,
            Media::Json,
        ),
        (
            r#"{"inputs": {"0": [1, 2, 3], "1": [1, 2, 3]}}"#,
            Media::Json,
        ),
        ("1,2\n3,4\n5,6\n", Media::Csv),
        ("\"a\",b\n1,2\n3,4\n5,6\n", Media::Csv),
    ];
    for (body, media) in three_rows {
        let err = numeric_model(body, media, &limits).unwrap_err();
        assert_eq!((err.status(), err.kind()), (413, "too_many_rows"), "{body}");
    }
    // Two rows pass.
    assert!(numeric_model(r#"{"instances": [[1, 2], [3, 4]]}"#, Media::Json, &limits).is_ok());
    let npy = skvault_table::npy_bytes("<f8", &[3, 2], &[0u8; 48]);
    let expect = Expect {
        schema: None,
        feature_names: None,
        n_features: 2,
    };
    let err = parse(Media::Npy, Bytes::from(npy), &expect, &limits).unwrap_err();
    assert_eq!(err.status(), 413);
}

#[test]
fn records_bringing_new_keys_are_bounded_by_the_values_limit() {
    let limits = Limits {
        max_rows: 1000,
        max_values: 50,
    };
    let records: Vec<String> = (0..20).map(|i| format!(r#"{{"k{i}": 1}}"#)).collect();
    let body = format!(r#"{{"dataframe_records": [{}]}}"#, records.join(","));
    let err = numeric_model(&body, Media::Json, &limits).unwrap_err();
    assert_eq!((err.status(), err.kind()), (413, "too_many_values"));
}

// --- CSV, Parquet, .npy -------------------------------------------------------------------

#[test]
fn csv_with_a_header_keeps_the_schemas_text_columns_as_text() {
    let schema = schema();
    let expect = Expect {
        schema: Some(&schema),
        feature_names: None,
        n_features: 3,
    };
    let body = "city,age\n00123,31\n,40\n";
    let frame = parse(Media::Csv, Bytes::from(body), &expect, &LIMITS).unwrap();
    let expected = Frame::new(
        vec!["city".into(), "age".into()],
        vec![
            text("city", vec![s("00123"), Value::NaN]),
            Column::Numeric(vec![31.0, 40.0]),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
    let err = parse(
        Media::Csv,
        Bytes::from("city,age\nx,old\n"),
        &expect,
        &LIMITS,
    )
    .unwrap_err();
    assert_eq!(err.kind(), "wrong_dtype");
    let err = parse(
        Media::Csv,
        Bytes::from_static(b"a,\xff\n1,2\n"),
        &expect,
        &LIMITS,
    )
    .unwrap_err();
    assert_eq!((err.status(), err.kind()), (400, "malformed_csv"));
    let err = parse(
        Media::Csv,
        Bytes::from("city,age\n\"x,1\n"),
        &expect,
        &LIMITS,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unterminated"), "{err}");
}

#[test]
fn csv_without_a_header_takes_the_models_names() {
    let names = vec!["a".to_string(), "b".to_string()];
    let expect = Expect {
        schema: None,
        feature_names: Some(&names),
        n_features: 2,
    };
    let frame = parse(Media::Csv, Bytes::from("1,2\n3,\n"), &expect, &LIMITS).unwrap();
    let expected = Frame::new(
        names.clone(),
        vec![
            Column::Numeric(vec![1.0, 3.0]),
            Column::Numeric(vec![2.0, f64::NAN]),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
    // Without a schema, text in a column the model reads is named before prediction.
    let err = parse(Media::Csv, Bytes::from("a,b\n1,x\n"), &expect, &LIMITS).unwrap_err();
    assert_eq!(err.kind(), "wrong_dtype");
    assert!(err.to_string().contains("\"b\""), "{err}");
}

#[test]
fn npy_bodies_are_numeric_rows_in_the_models_order() {
    let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let npy = skvault_table::npy_bytes("<f8", &[2, 2], &data);
    let frame = numeric_model_bytes(Media::Npy, npy.clone()).unwrap();
    let expected = Frame::new(
        vec!["0".into(), "1".into()],
        vec![
            Column::Numeric(vec![1.0, 3.0]),
            Column::Numeric(vec![2.0, 4.0]),
        ],
    )
    .unwrap();
    assert_same(&frame, &expected);
    let err = numeric_model_bytes(Media::Npy, npy[..npy.len() - 1].to_vec()).unwrap_err();
    assert_eq!((err.status(), err.kind()), (400, "malformed_npy"));
}

fn numeric_model_bytes(media: Media, body: Vec<u8>) -> Result<Frame, RequestError> {
    let expect = Expect {
        schema: None,
        feature_names: None,
        n_features: 2,
    };
    parse(media, Bytes::from(body), &expect, &LIMITS)
}

/// A Parquet file of `age` (double) and `city` (optional UTF-8 string).
fn people_parquet(ages: &[f64], cities: &[Option<&str>]) -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    let schema = Arc::new(
        parse_message_type("message people { required double age; optional binary city (UTF8); }")
            .unwrap(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut out,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<DoubleType>()
        .write_batch(ages, None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = cities
        .iter()
        .flatten()
        .map(|c| ByteArray::from(*c))
        .collect();
    let levels: Vec<i16> = cities.iter().map(|c| i16::from(c.is_some())).collect();
    col.typed::<ByteArrayType>()
        .write_batch(&values, Some(&levels), None)
        .unwrap();
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    out
}

#[test]
fn parquet_bodies_with_text_columns() {
    let schema = schema();
    let expect = Expect {
        schema: Some(&schema),
        feature_names: None,
        n_features: 3,
    };
    let body = people_parquet(&[31.0, 40.5], &[Some("Lyon"), None]);
    let frame = parse(Media::Parquet, Bytes::from(body), &expect, &LIMITS).unwrap();
    assert_eq!(frame.names(), ["age", "city"]);
    assert_eq!(
        frame.column("age"),
        Some(&Column::Numeric(vec![31.0, 40.5]))
    );
    match frame.column("city") {
        Some(Column::Dict(d)) => {
            assert_eq!(d.get(0), &s("Lyon"));
            assert!(d.get(1).is_missing());
        }
        other => panic!("{other:?}"),
    }
    let err = parse(
        Media::Parquet,
        Bytes::from_static(b"PAR1 not parquet PAR1"),
        &expect,
        &LIMITS,
    )
    .unwrap_err();
    assert_eq!((err.status(), err.kind()), (400, "malformed_parquet"));
    let limits = Limits {
        max_rows: 1,
        max_values: 100,
    };
    let body = people_parquet(&[31.0, 40.5], &[Some("Lyon"), None]);
    let err = parse(Media::Parquet, Bytes::from(body), &expect, &limits).unwrap_err();
    assert_eq!(err.status(), 413);
}
