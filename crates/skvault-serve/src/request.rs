//! TEMPORARY lead stub (replaced by the helper's module).
use bytes::Bytes;
use skvault_frame::{Column, DictBuilder, Frame, InputSchema, Value};

#[derive(Debug, Clone, Copy)]
pub enum Media {
    Json,
    Csv,
    Parquet,
    Npy,
}
impl Media {
    pub fn from_content_type(ct: Option<&str>) -> Result<Media, RequestError> {
        match ct.map(|c| c.split(';').next().unwrap_or("").trim()) {
            Some("application/json") => Ok(Media::Json),
            Some("text/csv") => Ok(Media::Csv),
            other => Err(RequestError::Unsupported(format!("{other:?}"))),
        }
    }
}
pub struct Expect<'a> {
    pub schema: Option<&'a InputSchema>,
    pub feature_names: Option<&'a [String]>,
    pub n_features: usize,
}
pub struct Limits {
    pub max_rows: usize,
}
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("unsupported media type {0}")]
    Unsupported(String),
    #[error("{0}")]
    Bad(String),
}
impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Unsupported(_) => 415,
            _ => 400,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Unsupported(_) => "unsupported_media_type",
            _ => "bad_request",
        }
    }
}
pub fn parse(
    media: Media,
    body: Bytes,
    expect: &Expect<'_>,
    _limits: &Limits,
) -> Result<Frame, RequestError> {
    let bad = |m: String| RequestError::Bad(m);
    match media {
        Media::Csv => {
            let text = std::str::from_utf8(&body).map_err(|e| bad(e.to_string()))?;
            let tc = expect.schema.map(|s| s.text_columns()).unwrap_or_default();
            return skvault_table::read_csv_frame(text, &tc).map_err(|e| bad(e.to_string()));
        }
        Media::Json => {}
        _ => return Err(bad("no".into())),
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
    let (names, rows): (Vec<String>, Vec<serde_json::Value>) =
        if let Some(s) = v.get("dataframe_split") {
            let names = s
                .get("columns")
                .and_then(|c| c.as_array())
                .ok_or_else(|| bad("columns".into()))?
                .iter()
                .map(|c| c.as_str().unwrap_or("").to_string())
                .collect();
            (
                names,
                s.get("data")
                    .and_then(|d| d.as_array())
                    .cloned()
                    .unwrap_or_default(),
            )
        } else if let Some(r) = v.get("inputs").and_then(|d| d.as_array()) {
            let names = match (expect.schema, expect.feature_names) {
                (Some(s), _) => s.columns.iter().map(|c| c.name.clone()).collect(),
                (None, Some(f)) => f.to_vec(),
                _ => (0..expect.n_features).map(|i| i.to_string()).collect(),
            };
            (names, r.clone())
        } else {
            return Err(bad("no known key".into()));
        };
    if rows.is_empty() {
        return Err(bad("no rows".into()));
    }
    let text: Vec<&str> = expect.schema.map(|s| s.text_columns()).unwrap_or_default();
    let mut columns = Vec::new();
    for (j, name) in names.iter().enumerate() {
        if text.contains(&name.as_str()) {
            let mut b = DictBuilder::new(name);
            for r in &rows {
                match r.get(j) {
                    Some(serde_json::Value::String(s)) => {
                        b.push_str(s).map_err(|e| bad(e.to_string()))?
                    }
                    Some(serde_json::Value::Number(n)) => b
                        .push(Value::number(n.as_f64().unwrap_or(f64::NAN)))
                        .map_err(|e| bad(e.to_string()))?,
                    _ => b.push(Value::None).map_err(|e| bad(e.to_string()))?,
                }
            }
            columns.push(Column::Dict(b.finish()));
        } else {
            let mut c = Vec::new();
            for r in &rows {
                match r.get(j) {
                    Some(serde_json::Value::Number(n)) => c.push(n.as_f64().unwrap_or(f64::NAN)),
                    Some(serde_json::Value::Null) => c.push(f64::NAN),
                    other => return Err(bad(format!("column {name}: not a number: {other:?}"))),
                }
            }
            columns.push(Column::Numeric(c));
        }
    }
    let frame = Frame::new(names, columns).map_err(|e| bad(e.to_string()))?;
    if let Some(s) = expect.schema {
        s.check(&frame).map_err(|e| bad(e.to_string()))?;
    }
    Ok(frame)
}
