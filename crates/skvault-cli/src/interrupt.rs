//! Ctrl-C (SIGINT) during a command: long commands stop between two units of work (a
//! chunk written, a batch of rows, a blob), their atomic writers remove the temporary file,
//! and the command exits 130 (128 + SIGINT, as shells report it) with one line on stderr.
//!
//! The command line usually runs inside the Python interpreter (`skvault._native.cli_main`),
//! whose own SIGINT handler only raises `KeyboardInterrupt` when Python code runs, never
//! while Rust works. So a handler of our own sets a flag that any thread can read; it is
//! chained to the handler that was there before (Python's, which the binding then clears),
//! and a second Ctrl-C while the flag is set ends the process at once, for a step that never
//! checks the flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::SigId;

/// The exit status of an interrupted command.
pub const EXIT_INTERRUPTED: u8 = 130;

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Whether Ctrl-C was pressed since the command started.
pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}

/// `Err` (an `Interrupted` I/O error) once Ctrl-C was pressed: the `?` between units of work.
pub fn check() -> std::io::Result<()> {
    if requested() {
        Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "interrupted",
        ))
    } else {
        Ok(())
    }
}

/// The handlers for one command; dropping it removes them (the Python front may run many
/// commands in one process).
pub struct Guard(Vec<SigId>);

impl Guard {
    /// Clears the flag and installs the handlers. Without them (an error from the OS) Ctrl-C
    /// keeps its usual effect, which is no reason to refuse to run the command.
    pub fn install() -> Guard {
        flag().store(false, Ordering::Relaxed);
        let mut ids = Vec::new();
        // In this order: on the second signal the shutdown sees the flag the first one set.
        let second = signal_hook::flag::register_conditional_shutdown(
            SIGINT,
            i32::from(EXIT_INTERRUPTED),
            Arc::clone(flag()),
        );
        ids.extend(second);
        ids.extend(signal_hook::flag::register(SIGINT, Arc::clone(flag())));
        Guard(ids)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// SIGTERM treated as Ctrl-C, for as long as it lives: for commands whose output must not be
/// left half-written when a job scheduler stops them (streaming `skvault predict`). Other
/// commands keep SIGTERM's default (the process ends at once; their atomic writers leave at
/// most a `.skvault-*.tmp` file).
pub struct TermGuard(Vec<SigId>);

impl TermGuard {
    pub fn install() -> TermGuard {
        let mut ids = Vec::new();
        ids.extend(signal_hook::flag::register_conditional_shutdown(
            SIGTERM,
            i32::from(EXIT_INTERRUPTED),
            Arc::clone(flag()),
        ));
        ids.extend(signal_hook::flag::register(SIGTERM, Arc::clone(flag())));
        TermGuard(ids)
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
