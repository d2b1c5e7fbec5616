//! TEMPORARY lead stub (replaced by the helper's module).
use crate::request::RequestError;
use skvault_infer::{Labels, Method, Model, Output, Prediction};
#[derive(Debug, Clone, Copy)]
pub enum Accept {
    Json,
    Csv,
    Npy,
}
impl Accept {
    pub fn negotiate(_h: Option<&str>, _q: Option<&str>) -> Result<Accept, RequestError> {
        Ok(Accept::Json)
    }
}
pub struct Encoded {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}
pub fn encode(output: Output, model: &Model, _method: Method, _accept: Accept) -> Encoded {
    let v = match output {
        Output::Prediction(Prediction::Labels(idx)) => {
            let c = model.classes().map(|c| &c.labels);
            serde_json::Value::Array(
                idx.iter()
                    .map(|&i| match c {
                        Some(Labels::Int(v)) => serde_json::json!(v[i]),
                        Some(Labels::Str(v)) => serde_json::json!(v[i]),
                        Some(Labels::Float(v)) => serde_json::json!(v[i]),
                        Some(Labels::Bool(v)) => serde_json::json!(v[i]),
                        None => serde_json::Value::Null,
                    })
                    .collect(),
            )
        }
        Output::Prediction(Prediction::Values(m)) | Output::Matrix(m) => {
            if m.flat {
                serde_json::json!(m.data)
            } else {
                serde_json::Value::Array(
                    (0..m.n_rows).map(|i| serde_json::json!(m.row(i))).collect(),
                )
            }
        }
    };
    Encoded {
        content_type: "application/json",
        body: serde_json::json!({"predictions": v})
            .to_string()
            .into_bytes(),
    }
}
