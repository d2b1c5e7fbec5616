//! `skvault export MODEL.skv OUT [--format onnx|json]` and `skvault import DOC.json MODEL.skv`
//! (see docs/EXPORT.md). Exit 0 when written, 1 when refused (an estimator the ONNX exporter
//! does not support, untrusted names in a document), 2 on other errors. Nothing is written
//! on failure.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use skvault_format::{TrustSet, WriteOptions};

use skvault_export::Step;

use crate::{interrupt, progress, CliError};

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
    /// ONNX: float64 (default: every operator in double, values within 1e-12 of
    /// scikit-learn's) or float32 (tree ensembles in float, what onnxruntime runs fastest;
    /// values within 1e-5, see `skvault docs export`).
    #[arg(long, value_enum, default_value = "float64")]
    pub dtype: Dtype,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The precision of an ONNX export's tree ensembles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    Float64,
    Float32,
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
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
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

pub fn run_export(args: &ExportArgs) -> Result<u8, CliError> {
    // Reading the model is a spinner; turning arrays into JSON values counts their raw
    // bytes, and writing counts the output's bytes, each against its own total.
    let size = std::fs::metadata(&args.src).map(|m| m.len()).unwrap_or(0);
    let mut bar = progress::spinner_unless(args.json, size, "reading");
    let mut stage = "reading";
    let mut on_step = |step: Step| {
        let (done, total, what) = match step {
            Step::Arrays { done, total } => (done, total, "converting"),
            Step::Writing { done, total } => (done, total, "writing"),
            _ => return interrupt::check(),
        };
        if stage != what {
            stage = what;
            progress::next_step(&mut bar, total, what);
        }
        bar.set_position(done);
        interrupt::check()
    };
    let result = match format_for(&args.out, args.format) {
        Format::Onnx => {
            let options = skvault_export::OnnxOptions {
                float32_trees: args.dtype == Dtype::Float32,
            };
            skvault_export::export_onnx_checked_with(&args.src, &args.out, options, &mut on_step)
                .map(|n| (n, "ONNX"))
        }
        Format::Json => skvault_export::export_json_checked(&args.src, &args.out, &mut on_step)
            .map(|n| (n, "JSON")),
    };
    progress::end(&bar, result.is_ok());
    let (n, what) = result?;
    if args.json {
        return written_json(&args.src, &args.out, what, n);
    }
    outln!(
        "{} -> {}: {what}, {n} bytes",
        args.src.display(),
        args.out.display()
    );
    Ok(0)
}

pub fn run_import(args: &ImportArgs) -> Result<u8, CliError> {
    let codec = crate::convert::codec(args.compress.as_deref())?;
    let trust = TrustSet::new(args.trust.iter().cloned())?;
    let options = WriteOptions { codec, level: None };
    skvault_export::import_json(&args.src, &args.out, &trust, options)?;
    let n = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    if args.json {
        return written_json(&args.src, &args.out, "skv", n);
    }
    outln!(
        "{} -> {}: imported, {n} bytes",
        args.src.display(),
        args.out.display()
    );
    Ok(0)
}

/// The `--json` report of `export` and `import`: what was read, what was written.
fn written_json(src: &Path, out: &Path, format: &str, bytes: u64) -> Result<u8, CliError> {
    crate::output::print_json(&serde_json::json!({
        "source": src.display().to_string(),
        "output": out.display().to_string(),
        "format": format.to_ascii_lowercase(),
        "bytes": bytes,
    }))?;
    Ok(0)
}
