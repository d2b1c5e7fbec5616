//! `skvault serve`: an HTTP model server over native inference (no Python in the request
//! path), for models in `.skv` files or in a registry.
//!
//! The request path: the body is parsed into one typed [`skvault_frame::Frame`]
//! ([`request`]), checked against the model's recorded input schema, predicted by
//! [`skvault_infer::Model::call_frame`], and encoded as JSON, CSV or NPY ([`response`]).
//! `docs/SERVE.md` documents the API; `openapi.json` (served at `/openapi.json`) describes it.
#![forbid(unsafe_code)]

mod auth;
pub mod config;
pub mod error;
pub mod metrics;
mod observe;
mod reload;
pub mod request;
pub mod response;
mod routes;
mod server;
pub mod source;
mod state;
pub mod ui;

pub use config::{Limits, LogFormat, ServeConfig};
pub use error::{ApiError, ServeError};
pub use server::{app, run};
pub use source::Spec;
