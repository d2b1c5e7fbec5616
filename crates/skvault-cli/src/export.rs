//! `skvault export MODEL.skv OUT [--format onnx|json]` and `skvault import DOC.json MODEL.skv`
//! (see docs/EXPORT.md). Exit 0 when written, 1 when refused (an estimator the ONNX exporter
//! does not support, untrusted names in a document), 2 on other errors. Nothing is written
//! on failure.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use skvault_export::ExportError;
use skvault_format::{Codec, TrustSet, WriteOptions};

use crate::progress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Onnx,
    Json,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The .skv model.
    pub src: PathBuf,
    /// The output file.
    pub out: PathBuf,
    /// onnx or json (default: json for a .json output, else onnx).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A document written by `skvault export --format json`.
    pub src: PathBuf,
    /// The .skv file to write.
    pub out: PathBuf,
    /// Trust this qualified name as well (repeatable), as `skvault.load(trusted=...)`.
    #[arg(long = "trust", value_name = "NAME")]
    pub trust: Vec<String>,
    /// Compress arrays: zstd or lz4 (default: none).
    #[arg(long)]
    pub compress: Option<String>,
}

/// The format an output path implies when `--format` is not given.
pub fn format_for(out: &Path, format: Option<Format>) -> Format {
    format.unwrap_or_else(|| {
        if out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Format::Json
        } else {
            Format::Onnx
        }
    })
}

fn refused(e: &ExportError) -> bool {
    matches!(
        e,
        ExportError::Unsupported { .. } | ExportError::Untrusted { .. }
    ) || matches!(
        e,
        ExportError::Infer(skvault_infer::InferError::Unsupported { .. })
    )
}

fn report(e: ExportError) -> Result<u8, String> {
    if refused(&e) {
        errln!("skvault: refused: {e}");
        Ok(1)
    } else {
        Err(e.to_string())
    }
}

pub fn run_export(args: &ExportArgs) -> Result<u8, String> {
    let size = std::fs::metadata(&args.src).map(|m| m.len()).unwrap_or(0);
    let bar = progress::bytes_bar(size, "exporting");
    let result = match format_for(&args.out, args.format) {
        Format::Onnx => skvault_export::export_onnx(&args.src, &args.out).map(|n| (n, "ONNX")),
        Format::Json => {
            let mut on = |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            };
            skvault_export::export_json(&args.src, &args.out, &mut on).map(|()| {
                let n = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
                (n, "JSON")
            })
        }
    };
    bar.finish_and_clear();
    match result {
        Ok((n, what)) => {
            outln!(
                "{} -> {}: {what}, {n} bytes",
                args.src.display(),
                args.out.display()
            );
            Ok(0)
        }
        Err(e) => report(e),
    }
}

pub fn run_import(args: &ImportArgs) -> Result<u8, String> {
    let codec = match args.compress.as_deref() {
        None => Codec::None,
        Some(name) => name.parse::<Codec>().map_err(|e| e.to_string())?,
    };
    let trust = TrustSet::new(args.trust.iter().cloned()).map_err(|e| e.to_string())?;
    let options = WriteOptions { codec, level: None };
    match skvault_export::import_json(&args.src, &args.out, &trust, options) {
        Ok(()) => {
            let n = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
            outln!(
                "{} -> {}: imported, {n} bytes",
                args.src.display(),
                args.out.display()
            );
            Ok(0)
        }
        Err(e) => report(e),
    }
}
