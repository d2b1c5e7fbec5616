//! Properties of the request parsers: a random frame written in every JSON shape (and as
//! CSV) parses back to the same frame, and no bytes or JSON make them panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};
use skvault_frame::{
    Column, ColumnKind, ColumnSpec, DictBuilder, Frame, InputSchema, SchemaSource, Value,
};
use skvault_serve::request::{parse, Expect, Limits, Media};

/// One column: numbers or text, each cell possibly missing.
#[derive(Debug, Clone)]
enum Col {
    Num(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

#[derive(Debug, Clone)]
struct Table {
    names: Vec<String>,
    cols: Vec<Col>,
    rows: usize,
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        Just(0.1),
    ]
}

/// Text that no reader takes for a number or a missing value (it ends in `x`), with the
/// characters CSV must quote.
fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,\"\u{e9}]{0,6}x"
}

fn table() -> impl Strategy<Value = Table> {
    (1usize..6, 1usize..7).prop_flat_map(|(n_cols, rows)| {
        let col = prop_oneof![
            prop::collection::vec(prop::option::weighted(0.8, finite()), rows).prop_map(Col::Num),
            prop::collection::vec(prop::option::weighted(0.8, word()), rows).prop_map(Col::Text),
        ];
        prop::collection::vec(col, n_cols).prop_map(move |cols| Table {
            names: (0..cols.len()).map(|i| format!("c{i} é")).collect(),
            cols,
            rows,
        })
    })
}

impl Table {
    fn schema(&self) -> InputSchema {
        InputSchema {
            source: SchemaSource::User,
            columns: self
                .names
                .iter()
                .zip(&self.cols)
                .map(|(name, col)| ColumnSpec {
                    name: name.clone(),
                    dtype: None,
                    kind: match col {
                        Col::Num(_) => ColumnKind::Number,
                        Col::Text(_) => ColumnKind::Text,
                    },
                    categories: None,
                    ordered: None,
                })
                .collect(),
        }
    }

    /// The frame the parsers must give; `missing` is what a missing text cell becomes.
    fn frame(&self, missing: &Value) -> Frame {
        let columns = self
            .names
            .iter()
            .zip(&self.cols)
            .map(|(name, col)| match col {
                Col::Num(v) => Column::Numeric(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect()),
                Col::Text(v) => {
                    let mut b = DictBuilder::new(name);
                    for x in v {
                        b.push(
                            x.as_ref()
                                .map_or_else(|| missing.clone(), |s| Value::Str(s.clone())),
                        )
                        .unwrap();
                    }
                    Column::Dict(b.finish())
                }
            })
            .collect();
        Frame::new(self.names.clone(), columns).unwrap()
    }

    fn cell(&self, col: usize, row: usize) -> Json {
        match &self.cols[col] {
            Col::Num(v) => v[row].map_or(Json::Null, |x| json!(x)),
            Col::Text(v) => v[row].as_ref().map_or(Json::Null, |s| json!(s)),
        }
    }

    fn rows(&self) -> Vec<Json> {
        (0..self.rows)
            .map(|r| Json::Array((0..self.cols.len()).map(|c| self.cell(c, r)).collect()))
            .collect()
    }

    /// Records; with `omit_nulls`, a missing value is an absent key.
    fn records(&self, omit_nulls: bool) -> Vec<Json> {
        (0..self.rows)
            .map(|r| {
                let mut m = Map::new();
                for (c, name) in self.names.iter().enumerate() {
                    let v = self.cell(c, r);
                    if !(omit_nulls && v.is_null()) {
                        m.insert(name.clone(), v);
                    }
                }
                Json::Object(m)
            })
            .collect()
    }

    fn columns(&self) -> Json {
        let mut m = Map::new();
        for (c, name) in self.names.iter().enumerate() {
            m.insert(
                name.clone(),
                Json::Array((0..self.rows).map(|r| self.cell(c, r)).collect()),
            );
        }
        Json::Object(m)
    }

    fn csv(&self) -> String {
        let field = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out: Vec<String> = vec![self
            .names
            .iter()
            .map(|n| field(n))
            .collect::<Vec<_>>()
            .join(",")];
        for r in 0..self.rows {
            let cells: Vec<String> = self
                .cols
                .iter()
                .map(|c| match c {
                    Col::Num(v) => v[r].map_or(String::new(), |x| format!("{x:?}")),
                    Col::Text(v) => v[r].as_deref().map_or(String::new(), field),
                })
                .collect();
            out.push(cells.join(","));
        }
        out.join("\n") + "\n"
    }
}

/// Frames equal value by value, columns matched by name (records may reorder them when a
/// key is first absent), NaN equal to NaN.
fn same(a: &Frame, b: &Frame) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.n_rows(), b.n_rows());
    prop_assert_eq!(a.n_cols(), b.n_cols());
    for (name, x) in a.names().iter().zip(a.columns()) {
        let y = b.column(name);
        prop_assert!(y.is_some(), "no column {}", name);
        match (x, y.unwrap()) {
            (Column::Numeric(x), Column::Numeric(y)) => {
                for (p, q) in x.iter().zip(y) {
                    prop_assert!(
                        p == q || (p.is_nan() && q.is_nan()),
                        "{}: {} != {}",
                        name,
                        p,
                        q
                    );
                }
            }
            (Column::Dict(x), Column::Dict(y)) => {
                for row in 0..x.len() {
                    prop_assert_eq!(x.get(row), y.get(row), "{} row {}", name, row);
                }
            }
            (x, y) => prop_assert!(false, "{}: {:?} vs {:?}", name, x, y),
        }
    }
    Ok(())
}

fn run(media: Media, body: Vec<u8>, schema: &InputSchema) -> Result<Frame, String> {
    let expect = Expect {
        schema: Some(schema),
        feature_names: None,
        n_features: schema.columns.len(),
    };
    parse(media, Bytes::from(body), &expect, &Limits::rows(100)).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_shape_parses_back_to_the_frame(t in table()) {
        let schema = t.schema();
        let names: Vec<Json> = t.names.iter().map(|n| json!(n)).collect();
        let with_null = t.frame(&Value::None);
        let bodies = [
            json!({"dataframe_split": {"columns": names, "data": t.rows()}}),
            json!({"dataframe_split": {"data": t.rows(), "index": [], "columns": names}}),
            json!({"dataframe_split": {"data": t.rows()}}),
            json!({"dataframe_records": t.records(false)}),
            json!({"inputs": t.rows()}),
            json!({"inputs": t.records(false)}),
            json!({"inputs": t.columns()}),
            json!({"instances": t.rows()}),
            json!({"instances": t.records(false), "params": {}}),
        ];
        for body in bodies {
            let text = body.to_string();
            let frame = run(Media::Json, text.clone().into_bytes(), &schema);
            prop_assert!(frame.is_ok(), "{}: {:?}", text, frame);
            same(&with_null, &frame.unwrap())?;
        }
        // An absent key is NaN in a text column, as pandas fills it. A column absent from
        // every record is missing altogether.
        let omitted = run(Media::Json, json!({"dataframe_records": t.records(true)}).to_string().into_bytes(), &schema);
        let all_missing = t.cols.iter().any(|c| match c {
            Col::Num(v) => v.iter().all(Option::is_none),
            Col::Text(v) => v.iter().all(Option::is_none),
        });
        if all_missing {
            prop_assert!(omitted.is_err());
        } else {
            same(&t.frame(&Value::NaN), &omitted.unwrap())?;
        }
    }

    #[test]
    fn csv_parses_back_to_the_frame(t in table()) {
        // A line of one empty cell is blank, and blank lines hold no row (as in pandas).
        let blank_line = t.cols.len() == 1 && (0..t.rows).any(|r| t.cell(0, r).is_null());
        prop_assume!(!blank_line);
        // An empty CSV cell is missing: NaN, in a text column as pandas reads it.
        let frame = run(Media::Csv, t.csv().into_bytes(), &t.schema());
        prop_assert!(frame.is_ok(), "{}: {:?}", t.csv(), frame);
        same(&t.frame(&Value::NaN), &frame.unwrap())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), pick in 0usize..4) {
        let t = Table { names: vec!["a".into(), "b".into()], cols: vec![Col::Num(vec![]), Col::Text(vec![])], rows: 0 };
        let media = [Media::Json, Media::Csv, Media::Parquet, Media::Npy][pick];
        let _ = run(media, body, &t.schema());
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), key in 0usize..6) {
        let t = Table { names: vec!["a".into(), "b".into()], cols: vec![Col::Num(vec![]), Col::Text(vec![])], rows: 0 };
        let keys = ["dataframe_split", "dataframe_records", "inputs", "instances", "params", "a"];
        for body in [json!({keys[key]: value.clone()}), value.clone()] {
            if let Ok(frame) = run(Media::Json, body.to_string().into_bytes(), &t.schema()) {
                prop_assert!(frame.n_rows() > 0);
                prop_assert!(t.schema().check(&frame).is_ok());
            }
        }
    }
}

/// Any JSON, biased towards the request's own names and small shapes.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        finite().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("columns".to_string()),
            Just("data".to_string()),
            "[a-z0-9.]{0,4}"
        ]
        .prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let key = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("columns".to_string()),
            Just("data".to_string()),
            Just("index".to_string()),
            "[a-z]{0,3}"
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}
