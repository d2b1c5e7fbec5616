//! What the request handlers share: the served models (each in a slot that hot reload
//! swaps), the metrics, the token and the limits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::config::{Limits, LogFormat};
use crate::metrics::Metrics;
use crate::source::{Fingerprint, Loaded, Spec};

/// A reload that failed: the slot keeps serving the model it had.
#[derive(Debug, Clone)]
pub struct Problem {
    pub at: String,
    pub message: String,
    /// The source as it was when it failed: not tried again until it changes.
    pub fingerprint: Option<Fingerprint>,
}

impl Problem {
    /// The `last_reload_error` of `/health` and `/v1/models`.
    pub fn to_json(&self) -> Value {
        json!({"at": self.at, "message": self.message})
    }
}

/// One served model. Requests take the current `Arc<Loaded>` once and keep it to the end,
/// so a swap never changes the model under a request in flight.
pub struct Slot {
    pub spec: Spec,
    pub current: ArcSwap<Loaded>,
    pub problem: Mutex<Option<Problem>>,
    pub reloads: AtomicU64,
}

impl Slot {
    pub fn new(spec: Spec, loaded: Arc<Loaded>) -> Slot {
        Slot {
            spec,
            current: ArcSwap::new(loaded),
            problem: Mutex::new(None),
            reloads: AtomicU64::new(0),
        }
    }

    pub fn problem(&self) -> Option<Problem> {
        self.problem.lock().map(|p| p.clone()).unwrap_or(None)
    }

    pub fn set_problem(&self, problem: Option<Problem>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    /// The model's entry in `GET /v1/models`.
    pub fn describe(&self) -> Value {
        let loaded = self.current.load();
        let mut info = loaded.info.clone();
        if let Value::Object(map) = &mut info {
            map.insert(
                "reloads".into(),
                json!(self.reloads.load(Ordering::Relaxed)),
            );
            map.insert(
                "last_reload_error".into(),
                json!(self.problem().map(|p| p.to_json())),
            );
        }
        info
    }
}

pub struct AppState {
    pub slots: BTreeMap<String, Slot>,
    pub metrics: Metrics,
    /// The accepted bearer tokens (several during a rotation).
    pub tokens: Vec<Vec<u8>>,
    pub limits: Limits,
    pub log: LogFormat,
    /// Cleared once shutdown starts: `/ready` answers 503 while requests drain.
    pub accepting: AtomicBool,
    /// The registry the read-only registry page shows (`--ui`), if any.
    pub ui: Option<Arc<skvault_registry::Registry>>,
    /// The keys the registry page verifies signatures with (none: shown unverified).
    pub trusted: Arc<[skvault_sign::PublicKey]>,
}

impl AppState {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }
}
