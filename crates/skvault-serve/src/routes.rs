//! The HTTP API (docs/SERVE.md): prediction, the model list, health, readiness, metrics and
//! the OpenAPI document. Every error is a JSON body naming the problem ([`ApiError`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use skvault_infer::Method;

use crate::error::ApiError;
use crate::request::{self, Expect, Media};
use crate::response::{self, Accept};
use crate::source::Loaded;
use crate::state::AppState;

pub type Shared = Arc<AppState>;

/// Requests with more rows than this are predicted off the async workers (rayon may
/// spread them over every core); smaller ones are answered where they arrive.
const INLINE_BYTES: usize = 64 << 10;

/// What a prediction handler tells the request log and the metrics (a response
/// extension, read by `observe`).
#[derive(Debug, Clone)]
pub struct Note {
    /// The served model's name, or empty when the request named no served model.
    pub model: String,
    /// The method, or empty when the request named none that is valid.
    pub method: &'static str,
    pub rows: u64,
    pub version: Option<u64>,
    pub error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    method: Option<String>,
    format: Option<String>,
    model: Option<String>,
}

fn with_note(mut response: Response, note: Note) -> Response {
    response.extensions_mut().insert(note);
    response
}

fn failed(e: ApiError, mut note: Note) -> Response {
    note.error = Some(e.code);
    with_note(e.into_response(), note)
}

/// `POST /invocations`: MLflow's endpoint. With several models, `?model=NAME` chooses.
pub async fn invocations(
    State(state): State<Shared>,
    query: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = match &query {
        Ok(Query(Params { model: Some(m), .. })) => Some(m.clone()),
        _ if state.slots.len() == 1 => state.slots.keys().next().cloned(),
        _ => None,
    };
    let Some(name) = name else {
        let names: Vec<&String> = state.slots.keys().collect();
        return failed(
            ApiError::bad_request(
                "model_required",
                format!(
                    "this server serves {} models: choose one with ?model=NAME ({names:?}) or \
                     POST /v1/models/NAME/predict",
                    names.len()
                ),
            ),
            blank_note(),
        );
    };
    predict(state, name, query, headers, body).await
}

/// `POST /v1/models/{name}/predict`.
pub async fn predict_named(
    State(state): State<Shared>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match name {
        Ok(Path(name)) => predict(state, name, query, headers, body).await,
        Err(e) => failed(
            ApiError::bad_request("bad_path", e.body_text()),
            blank_note(),
        ),
    }
}

fn blank_note() -> Note {
    Note {
        model: String::new(),
        method: "",
        rows: 0,
        version: None,
        error: None,
    }
}

async fn predict(
    state: Shared,
    name: String,
    query: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut note = blank_note();
    let Some(slot) = state.slot(&name) else {
        let names: Vec<&String> = state.slots.keys().collect();
        return failed(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_model",
                format!("no model named {name:?} is served (served: {names:?})"),
            ),
            note,
        );
    };
    note.model = name;
    let Query(params) = match query {
        Ok(q) => q,
        Err(e) => {
            return failed(
                ApiError::bad_request(
                    "bad_query",
                    format!("{} (accepted: method, format, model)", e.body_text()),
                ),
                note,
            )
        }
    };
    // One model for the whole request, even if a reload swaps the slot meanwhile.
    let loaded = slot.current.load_full();
    note.version = loaded.version;
    let method = match choose_method(&loaded, params.method.as_deref()) {
        Ok(m) => m,
        Err(e) => return failed(e, note),
    };
    note.method = method.name();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let media = match Media::from_content_type(content_type) {
        Ok(m) => m,
        Err(e) => return failed(e.into(), note),
    };
    let accept_header = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let accept = match Accept::negotiate(accept_header, params.format.as_deref()) {
        Ok(a) => a,
        Err(e) => return failed(e.into(), note),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "bad_body"
            };
            return failed(ApiError::new(status, code, e.body_text()), note);
        }
    };
    let max_rows = state.limits.max_rows;
    let result = if body.len() <= INLINE_BYTES {
        answer(&loaded, method, media, accept, body, max_rows)
    } else {
        let loaded = Arc::clone(&loaded);
        tokio::task::spawn_blocking(move || answer(&loaded, method, media, accept, body, max_rows))
            .await
            .unwrap_or_else(|e| {
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the prediction task failed: {e}"),
                ))
            })
    };
    match result {
        Ok((encoded, rows)) => {
            note.rows = rows;
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(encoded.content_type),
                )],
                encoded.body,
            )
                .into_response();
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&loaded.digest) {
                h.insert("skvault-model-digest", v);
            }
            if let Some(v) = loaded.version {
                h.insert("skvault-model-version", HeaderValue::from(v));
            }
            with_note(response, note)
        }
        Err(e) => failed(e, note),
    }
}

fn choose_method(loaded: &Loaded, asked: Option<&str>) -> Result<Method, ApiError> {
    let names = || {
        loaded
            .model
            .methods()
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let method = match asked {
        None => Method::Predict,
        Some(text) => Method::from_name(text).ok_or_else(|| {
            ApiError::bad_request(
                "unknown_method",
                format!("unknown method {text:?} (this model has: {})", names()),
            )
        })?,
    };
    if !loaded.model.has(method) {
        return Err(ApiError::bad_request(
            "unknown_method",
            format!(
                "{} has no method {} (it has: {})",
                loaded.model.class(),
                method.name(),
                names()
            ),
        ));
    }
    Ok(method)
}

/// Parse, check, predict, encode: the whole request path after HTTP.
fn answer(
    loaded: &Loaded,
    method: Method,
    media: Media,
    accept: Accept,
    body: Bytes,
    max_rows: usize,
) -> Result<(response::Encoded, u64), ApiError> {
    let expect = Expect {
        schema: loaded.schema.as_ref(),
        feature_names: loaded.model.feature_names(),
        n_features: loaded.model.n_features(),
    };
    let frame = request::parse(media, body, &expect, &request::Limits::rows(max_rows))?;
    let rows = frame.n_rows() as u64;
    let output = loaded.model.call_frame(method, &frame)?;
    Ok((
        response::encode(output, &loaded.model, method, accept),
        rows,
    ))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// `GET /v1/models`.
pub async fn models(State(state): State<Shared>) -> Response {
    let list: Vec<serde_json::Value> = state.slots.values().map(|s| s.describe()).collect();
    json_response(StatusCode::OK, &json!({ "models": list }))
}

/// `GET /v1/models/{name}`.
pub async fn model(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match state.slot(&name) {
        Some(slot) => json_response(StatusCode::OK, &slot.describe()),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!("no model named {name:?} is served"),
        )
        .into_response(),
    }
}

/// `GET /health`: the process answers. `degraded` when a reload failed (the model that
/// was serving still serves; the failure is named).
pub async fn health(State(state): State<Shared>) -> Response {
    let mut degraded = false;
    let models: serde_json::Map<String, serde_json::Value> = state
        .slots
        .iter()
        .map(|(name, slot)| {
            let loaded = slot.current.load();
            let problem = slot.problem();
            degraded |= problem.is_some();
            (
                name.clone(),
                json!({
                    "version": loaded.version,
                    "digest": loaded.digest,
                    "last_reload_error": problem.map(|p| p.to_json()),
                }),
            )
        })
        .collect();
    let status = if degraded { "degraded" } else { "ok" };
    json_response(
        StatusCode::OK,
        &json!({ "status": status, "models": models }),
    )
}

/// `GET /ready`: every model is loaded and the server takes requests (503 once it drains).
pub async fn ready(State(state): State<Shared>) -> Response {
    if state.accepting.load(Ordering::SeqCst) {
        json_response(
            StatusCode::OK,
            &json!({"ready": true, "models": state.slots.len()}),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "reason": "shutting down"}),
        )
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

/// Any other path.
pub async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {method} {} (see /openapi.json)", uri.path()),
    )
    .into_response()
}

/// A known path with the wrong HTTP method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {} (see /openapi.json)",
            uri.path()
        ),
    )
    .into_response()
}
