//! Progress bars on stderr (hidden when stderr is not a terminal, or for small jobs).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

/// Jobs smaller than this finish before a bar would be worth drawing.
const MIN_BYTES: u64 = 32 << 20;

/// A byte-counting bar, hidden below `MIN_BYTES` or off a terminal.
pub fn bytes_bar(total: u64, what: &'static str) -> ProgressBar {
    if total < MIN_BYTES {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
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
