//! Progress bars on stderr, moved by real units of work (bytes written or read, rows
//! predicted), never by time. Hidden when stderr is not a terminal (piped, redirected, a test
//! harness), for `--json` runs, and for jobs below [`MIN_BYTES`] that end before a bar is
//! worth drawing.
//!
//! A bar's style is set before it gets a draw target, so it is never drawn unstyled. A bar
//! that reached its end is left on screen showing it (`total/total`, the rate); a failed or
//! interrupted one is cleared, so that only the error message remains.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Jobs smaller than this finish before a bar would be worth drawing.
const MIN_BYTES: u64 = 32 << 20;

/// For tests only: overrides [`MIN_BYTES`] (0 shows a bar for any job on a terminal), so that a
/// test can see a bar without writing hundreds of megabytes.
const MIN_BYTES_VAR: &str = "SKVAULT_PROGRESS_MIN_BYTES";

/// Rows per second of native inference are high: below this many rows there is no bar.
const MIN_ROWS: u64 = 1 << 20;

const BYTES_TEMPLATE: &str = "{msg:>10} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})";
const ROWS_TEMPLATE: &str =
    "{msg:>10} [{bar:30}] {human_pos}/{human_len} rows ({per_sec:0}, {eta})";
const SPINNER_TEMPLATE: &str = "{spinner} {msg} ({elapsed})";

/// The smallest job that gets a bar, in bytes.
fn min_bytes() -> u64 {
    std::env::var(MIN_BYTES_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MIN_BYTES)
}

/// Whether a job of `size` (in bytes, or in bytes' worth) gets a bar at all.
fn wanted(size: u64) -> bool {
    size >= min_bytes() && std::io::stderr().is_terminal()
}

fn styled(template: &str) -> ProgressStyle {
    match ProgressStyle::with_template(template) {
        Ok(style) => style.progress_chars("=> "),
        // The templates are constants that parse; a plain bar is the fallback regardless.
        Err(_) => ProgressStyle::default_bar(),
    }
}

/// A bar styled and labelled while still hidden, then shown on stderr.
fn shown(
    len: Option<u64>,
    style: ProgressStyle,
    what: impl Into<Cow<'static, str>>,
) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden())
        .with_style(style)
        .with_message(what);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

/// A byte-counting bar of `total` bytes, hidden below the minimum or off a terminal.
pub fn bytes_bar(total: u64, what: impl Into<Cow<'static, str>>) -> ProgressBar {
    if !wanted(total) {
        return ProgressBar::hidden();
    }
    shown(Some(total), styled(BYTES_TEMPLATE), what)
}

/// A row-counting bar of `total` rows, for a job of `size` bytes of input.
pub fn rows_bar(total: u64, size: u64, what: &'static str) -> ProgressBar {
    if !(wanted(size) || (total >= MIN_ROWS && wanted(0))) {
        return ProgressBar::hidden();
    }
    shown(Some(total), styled(ROWS_TEMPLATE), what)
}

/// A spinner for a step whose size is not known before it ends (reading, scanning), for a job
/// of `size` bytes. Replace it with a byte bar by [`next_step`] when the size is known.
pub fn spinner(size: u64, what: &'static str) -> ProgressBar {
    if !wanted(size) {
        return ProgressBar::hidden();
    }
    let bar = shown(None, styled(SPINNER_TEMPLATE), what);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// [`spinner`], or a hidden bar for a `--json` run (whose readers are programs); the steps
/// after it stay hidden too (see [`next_step`]).
pub fn spinner_unless(json: bool, size: u64, what: &'static str) -> ProgressBar {
    if json {
        ProgressBar::hidden()
    } else {
        spinner(size, what)
    }
}

/// Replaces `bar` (a spinner, or the bar of an earlier step) with a byte bar of `total`
/// bytes, at 0. A new bar rather than new settings: each setting would draw a frame that
/// mixes the old step's values with the new one's.
pub fn next_step(bar: &mut ProgressBar, total: u64, what: &'static str) {
    if bar.is_hidden() {
        return;
    }
    bar.finish_and_clear();
    *bar = shown(Some(total), styled(BYTES_TEMPLATE), what);
}

/// Ends `bar` after its command: left on screen as it stands when the command succeeded (the
/// units of work brought it to its total), cleared when it failed or was interrupted.
pub fn end(bar: &ProgressBar, succeeded: bool) {
    if succeeded {
        // `abandon`, not `finish`: `finish` would set the position to the length, hiding a
        // bar that the work did not bring to its end.
        bar.abandon();
    } else {
        bar.finish_and_clear();
    }
}

/// The bytes of every file under `paths` (for the scan bar's length).
pub fn count_bytes(paths: &[PathBuf]) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| walk(&e.path()))
                        .sum()
                })
                .unwrap_or(0),
            Ok(_) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        }
    }
    paths.iter().map(|p| walk(p)).sum()
}
