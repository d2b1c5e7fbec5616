//! Errors of `skvault serve`: [`ServeError`] stops the server from starting (a model that
//! cannot be loaded, an address that cannot be bound); [`ApiError`] is one request's 4xx/5xx
//! answer, a JSON body `{"error_code": ..., "message": ...}` (MLflow's error shape).

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::request::RequestError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A model named on the command line could not be loaded or failed its checks.
    #[error("model {name:?}: {message}")]
    Model { name: String, message: String },

    /// Two models would be served under one name.
    #[error("two models are named {name:?}: name them apart with NAME=PATH")]
    DuplicateName { name: String },

    /// A `NAME@SELECTOR` or `NAME=PATH` argument that does not parse.
    #[error("{arg:?}: {reason}")]
    BadSpec { arg: String, reason: String },

    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] skvault_registry::RegistryError),

    /// The token file is missing, unreadable, empty or readable by others.
    #[error("{}: {reason}", path.display())]
    Token { path: PathBuf, reason: String },

    /// The listening socket could not be made.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The runtime or the server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// One request's error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A short stable code (`unknown_model`, `missing_columns`, ...).
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.kind(), e.to_string())
    }
}

impl From<skvault_infer::InferError> for ApiError {
    /// Errors from prediction itself: the input reached the model and the model refused it
    /// (an unknown category under `handle_unknown="error"`, a wrong column count): the
    /// client's to fix, as scikit-learn's `ValueError` would be.
    fn from(e: skvault_infer::InferError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "prediction_refused",
            e.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code, "message": self.message});
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        response
    }
}
