//! The `.skv` container: a JSON manifest (object tree + array table + metadata)
//! followed by 64-byte-aligned array blobs, each with its own codec and BLAKE3
//! digest. `docs/FORMAT.md` is the specification; this crate implements it
//! with no Python involved.
// Unsafe code is allowed only where a SAFETY note justifies it: mapping files (`read.rs`),
// writing into caller-owned buffers through `fill::Destination` (`fill.rs`) and the writeback
// hint of durable writes (`atomic.rs`).
#![deny(unsafe_code)]

pub mod atomic;
pub mod codec;
pub mod columns;
pub mod converted;
pub mod dtype;
pub mod element;
pub mod error;
pub mod fill;
pub mod float_json;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod load_plan;
pub mod manifest;
mod manifest_text;
pub mod node;
pub mod per_process;
pub mod pointer;
pub mod read;
pub mod stdlib;
pub mod strict_json;
#[doc(hidden)]
pub mod testing;
pub mod threads;
pub mod trailer;
pub mod trust;
mod wire;
pub mod write;

pub use codec::Codec;
pub use dtype::DType;
pub use error::{DecodeError, FormatError, Result};
pub use manifest::{ArrayEntry, Manifest, Order};
pub use node::{Construct, Node, Object};
pub use read::{PaddingCheck, SkvFile};
pub use trust::TrustSet;
pub use write::{prepare, prepare_with_validation, ArrayInput, WriteOptions};
