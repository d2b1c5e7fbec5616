//! `skvault scan`: a verdict for every pickle, joblib or `.skv` file, never executing them.
//!
//! Exit code: 0 when every file is safe, 1 when any is unsafe or unknown, 2 when a file could
//! not be read at all (missing, unreadable) and none is unsafe.

use std::path::PathBuf;

use serde_json::{json, Value};
use skvault_pickle::{FileError, FileScan, GlobalKind, ScanOptions, ScanReport, Verdict};

use crate::{progress, CliError};

#[derive(Default)]
struct Tally {
    safe: usize,
    unknown: usize,
    unsafe_: usize,
    errors: usize,
}

pub fn run(paths: &[PathBuf], trust: &[String], as_json: bool) -> Result<u8, CliError> {
    let options = ScanOptions {
        trust: skvault_format::TrustSet::new(trust.iter().cloned())?,
        ..ScanOptions::default()
    };
    // No bar for --json: its readers are programs.
    let bar = if as_json {
        indicatif::ProgressBar::hidden()
    } else {
        progress::bytes_bar(progress::count_bytes(paths), "scanning")
    };
    let mut tally = Tally::default();
    let mut files: Vec<Value> = Vec::new();
    let skipped = skvault_pickle::scan_paths(paths, &options, &mut |scan: FileScan| {
        bar.inc(scan.size);
        match &scan.result {
            Ok(r) => match r.verdict {
                Verdict::Safe => tally.safe += 1,
                Verdict::Unknown => tally.unknown += 1,
                Verdict::Unsafe => tally.unsafe_ += 1,
            },
            Err(_) => tally.errors += 1,
        }
        if as_json {
            files.push(file_json(&scan));
        } else {
            bar.suspend(|| print_file(&scan));
        }
    });
    progress::end(&bar, true);
    let summary = json!({
        "files": tally.safe + tally.unknown + tally.unsafe_ + tally.errors,
        "safe": tally.safe,
        "unknown": tally.unknown,
        "unsafe": tally.unsafe_,
        "errors": tally.errors,
        "skipped": skipped,
    });
    if as_json {
        let out = json!({"files": files, "summary": summary});
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        outln!(
            "{} file(s): {} safe, {} unknown, {} unsafe, {} error(s){}",
            summary["files"],
            tally.safe,
            tally.unknown,
            tally.unsafe_,
            tally.errors,
            if skipped > 0 {
                format!(" ({skipped} skipped in folders: not pickles)")
            } else {
                String::new()
            }
        );
    }
    Ok(if tally.unsafe_ > 0 {
        1
    } else if tally.errors > 0 {
        2
    } else if tally.unknown > 0 {
        1
    } else {
        0
    })
}

fn file_json(scan: &FileScan) -> Value {
    let mut v = match &scan.result {
        Ok(r) => r.to_json(),
        Err(e) => json!({"verdict": "error", "error": e.to_string()}),
    };
    if let Value::Object(m) = &mut v {
        m.insert("path".into(), json!(scan.path.display().to_string()));
        m.insert("size".into(), json!(scan.size));
    }
    v
}

fn print_file(scan: &FileScan) {
    let path = scan.path.display();
    let r = match &scan.result {
        Ok(r) => r,
        Err(FileError::Io { source, .. }) => {
            outln!("{path}: ERROR: {source}");
            return;
        }
        Err(FileError::NotAPickle { reason, .. }) => {
            outln!("{path}: ERROR: not a pickle or joblib file: {reason}");
            return;
        }
        Err(e) => {
            outln!("{path}: ERROR: {e}");
            return;
        }
    };
    outln!(
        "{path}: {} ({})",
        r.verdict.as_str().to_uppercase(),
        describe(r)
    );
    let mut globals: Vec<_> = r.globals.iter().collect();
    // Most severe first, then in order of appearance.
    globals.sort_by_key(|g| std::cmp::Reverse(g.kind));
    for g in globals {
        let kind = match g.kind {
            GlobalKind::Dangerous => "DANGEROUS",
            GlobalKind::Unknown => "unknown",
            GlobalKind::Safe => "safe",
        };
        let times = if g.count > 1 {
            format!(" x{}", g.count)
        } else {
            String::new()
        };
        outln!("    {kind:<9}  {}{times}", g.qualified());
    }
    for issue in &r.issues {
        outln!("    issue      {issue}");
    }
    if let Some(e) = &r.error {
        outln!("    error      {e}");
    }
}

fn describe(r: &ScanReport) -> String {
    let mut parts = vec![r.format.name().to_string()];
    if let Some(p) = r.protocol {
        parts.push(format!("protocol {p}"));
    }
    if r.pickles > 1 {
        parts.push(format!("{} pickles", r.pickles));
    }
    if r.joblib_arrays > 0 {
        parts.push(format!("{} joblib arrays skipped", r.joblib_arrays));
    }
    parts.push(format!("{} global(s)", r.globals.len()));
    parts.join(", ")
}
