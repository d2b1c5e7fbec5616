//! The skvault model registry: immutable, numbered versions of `.skv` files with aliases,
//! tags and lineage, stored content-addressed in a folder or an S3-compatible bucket
//! through `object_store`. `docs/REGISTRY.md` describes the layout and the guarantees.
//!
//! The API is blocking (it owns a small tokio runtime), for the CLI and the Python front.
#![forbid(unsafe_code)]

mod admin;
mod cell;
pub mod docs;
pub mod error;
mod fetch;
mod layout;
pub mod names;
mod objects;
mod register;
mod registry;
mod search;
mod signing;
mod skv;
mod store;
#[doc(hidden)]
pub mod testing;

pub use admin::{Usage, DEFAULT_GC_GRACE};
pub use docs::{AliasEntry, FileRef, GcReport, Lineage, VersionDoc, VersionInfo};
pub use error::{RegistryError, Result};
pub use objects::{ObjectEntry, Objects};
pub use register::{RegisterOptions, REUSE_WINDOW};
pub use registry::{NoProgress, Progress, Registry, Selector};
pub use search::{MetricFilter, Op, Query};
pub use store::{Location, DEFAULT_S3_SETTLE, DEFAULT_URI, MAX_DOCUMENT_BYTES};
