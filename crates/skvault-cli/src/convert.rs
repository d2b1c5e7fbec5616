//! `skvault convert OLD NEW.skv`: a pickle or joblib file becomes a `.skv` file, without
//! importing or calling anything. Exit code 0 when converted, 1 when refused (unsafe or
//! untrusted content, the scan report says why), 2 on other errors.

use std::path::Path;

use skvault_format::{Codec, TrustSet, WriteOptions};
use skvault_pickle::{ConvertOptions, ScanOptions, Step};

use crate::{interrupt, progress, CliError};

pub struct Args<'a> {
    pub src: &'a Path,
    pub dst: &'a Path,
    pub trust: &'a [String],
    pub compress: Option<&'a str>,
    pub level: Option<Level>,
    /// Print the result as one JSON document instead of text.
    pub json: bool,
}

/// `--level`: a number, or `archive` (zstd's level for files written once and kept, as
/// `dump(..., level="archive")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Number(i32),
    Archive,
}

/// Parses `--level` (clap's value parser).
pub fn parse_level(s: &str) -> Result<Level, String> {
    if s == "archive" {
        return Ok(Level::Archive);
    }
    s.parse::<i32>()
        .map(Level::Number)
        .map_err(|_| format!("{s:?} is neither a number nor \"archive\""))
}

/// The codec's level for `level`: `archive` only names a zstd level.
fn level_for(level: Option<Level>, codec: Codec) -> Result<Option<i32>, CliError> {
    match level {
        None => Ok(None),
        Some(Level::Number(n)) => Ok(Some(n)),
        Some(Level::Archive) if codec == Codec::Zstd => {
            Ok(Some(skvault_format::codec::ARCHIVE_ZSTD_LEVEL))
        }
        Some(Level::Archive) => Err(CliError::Input {
            message: "--level archive is a zstd level: use it with --compress zstd".into(),
        }),
    }
}

/// The codec `--compress` names (`none` or absent: no compression).
pub(crate) fn codec(name: Option<&str>) -> Result<Codec, CliError> {
    match name {
        None | Some("none") => Ok(Codec::None),
        Some(name) => name
            .parse::<Codec>()
            .map_err(|e| CliError::UnknownCodec { name: e.0 }),
    }
}

pub fn run(args: &Args<'_>) -> Result<u8, CliError> {
    let codec = codec(args.compress)?;
    let level = level_for(args.level, codec)?;
    let options = ConvertOptions {
        scan: ScanOptions {
            trust: TrustSet::new(args.trust.iter().cloned())?,
            ..ScanOptions::default()
        },
        write: WriteOptions { codec, level },
    };
    // Reading, scanning and converting report no sizes: a spinner names the step. Writing
    // reports the bytes of the output written so far, against the output's length.
    let size = std::fs::metadata(args.src).map(|m| m.len()).unwrap_or(0);
    let mut bar = progress::spinner_unless(args.json, size, "reading");
    let mut writing = false;
    let mut on_step = |step: Step| {
        match step {
            Step::Decompressing => bar.set_message("reading"),
            Step::Scanning => bar.set_message("scanning"),
            Step::Converting => bar.set_message("converting"),
            Step::Writing { done, total } => {
                if !writing {
                    writing = true;
                    progress::next_step(&mut bar, total, "writing");
                }
                bar.set_position(done);
            }
        }
        interrupt::check()
    };
    let result = skvault_pickle::convert_file_checked(args.src, args.dst, &options, &mut on_step);
    progress::end(&bar, result.is_ok());
    let c = result?;
    if args.json {
        let migrations: Vec<serde_json::Value> = c
            .migrations
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "what": m.what, "count": m.count, "first_path": m.first_path}))
            .collect();
        crate::output::print_json(&serde_json::json!({
            "source": args.src.display().to_string(),
            "output": args.dst.display().to_string(),
            "format": c.report.format.name(),
            "arrays": c.arrays,
            "bytes": c.bytes_written,
            "sklearn_versions": c.sklearn_versions,
            "migrations": migrations,
        }))?;
        return Ok(0);
    }
    let versions = if c.sklearn_versions.is_empty() {
        String::new()
    } else {
        format!(", saved by scikit-learn {}", c.sklearn_versions.join(", "))
    };
    outln!(
        "{} -> {}: converted ({}, {} arrays, {} bytes{versions})",
        args.src.display(),
        args.dst.display(),
        c.report.format.name(),
        c.arrays,
        c.bytes_written
    );
    for m in &c.migrations {
        let more = match m.count {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        outln!("    migrated {}{more}: {}", m.first_path, m.what);
    }
    Ok(0)
}
