//! Printing without panics. `println!` panics when stdout is a closed pipe
//! (`skvault inspect --json m.skv | head -c 10`); these macros write through
//! [`write_out`] instead, which notes a broken pipe, stops printing, and lets
//! [`finish`] end the command quietly, as ripgrep does. Other write errors (a full disk
//! behind a redirect) are kept and reported once. Messages to stderr ignore failures: there
//! is nowhere left to report them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// `println!` to stdout that never panics (see the module documentation).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout that never panics.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

fn note(err: std::io::Error) {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    } else if let Ok(mut first) = STDOUT_ERROR.lock() {
        first.get_or_insert_with(|| err.to_string());
    }
}

/// Whether the reader of stdout went away: commands may stop producing output early.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

pub fn write_out(args: std::fmt::Arguments<'_>) {
    if stdout_closed() {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        note(e);
    }
}

pub fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Clears the state of an earlier run (the Python front may call `run_cli` many times).
pub fn reset() {
    STDOUT_CLOSED.store(false, Ordering::Relaxed);
    if let Ok(mut first) = STDOUT_ERROR.lock() {
        *first = None;
    }
}

/// Flushes stdout and turns the command's exit code into the process's: unchanged, and
/// silent, when the reader closed the pipe (the output was not wanted any more); 2 with one
/// message when stdout could not be written for another reason.
pub fn finish(code: u8) -> u8 {
    if !stdout_closed() {
        if let Err(e) = std::io::stdout().lock().flush() {
            note(e);
        }
    }
    let failed = STDOUT_ERROR.lock().ok().and_then(|mut first| first.take());
    match failed {
        Some(message) if !stdout_closed() => {
            errln!("skvault: error: writing to stdout: {message}");
            2
        }
        _ => code,
    }
}

/// Prints one JSON document (pretty, with a final newline) on stdout: what every `--json`
/// report writes, and nothing else goes to stdout beside it.
pub fn print_json(value: &serde_json::Value) -> Result<(), serde_json::Error> {
    let text = serde_json::to_string_pretty(value)?;
    write_out(format_args!("{text}\n"));
    Ok(())
}

/// Writes raw bytes on stdout (`skvault predict -o -` with `.npy` output).
pub fn write_out_bytes(bytes: &[u8]) {
    if stdout_closed() {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_all(bytes) {
        note(e);
    }
}
