//! Hot reload (`--watch INTERVAL`): a thread looks at every model's source each interval
//! (a file's identity and stamp; the version a registry selector resolves to). When it
//! changed, the new model is loaded and checked in full (digests, validation rows) and only
//! then swapped in; requests in flight keep the model they started with. A source that
//! fails to load leaves the old model serving, is logged and shown by `/health`, and is not
//! tried again until it changes once more.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use skvault_registry::Registry;

use crate::observe::event;
use crate::source::{current_fingerprint, load};
use crate::state::{AppState, Problem, Slot};

/// Checks every slot once.
pub fn check_all(state: &AppState, registry: Option<&Registry>) {
    for (name, slot) in &state.slots {
        check_slot(state, name, slot, registry);
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

fn check_slot(state: &AppState, name: &str, slot: &Slot, registry: Option<&Registry>) {
    let current = slot.current.load();
    let seen = match current_fingerprint(&slot.spec, registry) {
        Ok(f) => f,
        Err(message) => {
            // A file being replaced, a registry briefly unreachable: keep serving.
            let known = slot.problem().is_some_and(|p| p.message == message);
            if !known {
                event(
                    state.log,
                    "source unavailable",
                    json!({"model": name, "error": message}),
                );
                slot.set_problem(Some(Problem {
                    at: now(),
                    message,
                    fingerprint: None,
                }));
            }
            return;
        }
    };
    if seen == current.fingerprint {
        if slot.problem().is_some_and(|p| p.fingerprint.is_none()) {
            slot.set_problem(None);
        }
        return;
    }
    if slot
        .problem()
        .is_some_and(|p| p.fingerprint.as_ref() == Some(&seen))
    {
        return;
    }
    match load(&slot.spec, registry) {
        Ok(loaded) => {
            let version = loaded.version;
            let digest = loaded.digest.clone();
            slot.current.store(loaded);
            slot.reloads.fetch_add(1, Ordering::Relaxed);
            slot.set_problem(None);
            state.metrics.reload(name, true);
            event(
                state.log,
                "reloaded",
                json!({"model": name, "version": version, "digest": digest}),
            );
        }
        Err(e) => {
            let message = e.to_string();
            state.metrics.reload(name, false);
            event(
                state.log,
                "reload failed, still serving the previous model",
                json!({"model": name, "error": message}),
            );
            slot.set_problem(Some(Problem {
                at: now(),
                message,
                fingerprint: Some(seen),
            }));
        }
    }
}

/// Runs [`check_all`] every `interval` on its own thread (registry calls block) until
/// `stop` is notified.
pub fn spawn(
    state: Arc<AppState>,
    registry: Option<Arc<Registry>>,
    interval: Duration,
    stop: std::sync::mpsc::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("skvault-watch".into())
        .spawn(move || loop {
            match stop.recv_timeout(interval) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    check_all(&state, registry.as_deref());
                }
                _ => return,
            }
        })
}
