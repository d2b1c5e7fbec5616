//! The `skvault` command line, as a library: the `skvault` binary and the Python
//! console script (through `skvault._native.cli_main`) both run `run_cli`.
#![forbid(unsafe_code)]

#[macro_use]
mod output;

pub mod convert;
pub mod diff;
pub mod docs;
mod error;
pub mod export;
pub mod inspect;
pub mod predict;
mod progress;
pub mod registry;
pub mod requirements;
pub mod scan;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::error::CliError;

#[derive(Parser)]
#[command(
    name = "skvault",
    version,
    about = "Safe, fast persistence for scikit-learn models",
    after_help = "Documentation: `skvault docs` lists the pages, `skvault docs TOPIC` prints one."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a .skv file holds: classes, arrays, environment, untrusted names. Builds nothing.
    Inspect {
        file: PathBuf,
        /// Print the whole manifest as JSON instead of a summary.
        #[arg(long)]
        json: bool,
        /// List every array, not only the largest.
        #[arg(long)]
        all: bool,
        /// Print only the estimator's get_params() as JSON (to rebuild it with Estimator(**params)).
        #[arg(long, conflicts_with = "json")]
        params: bool,
    },
    /// Check every digest (manifest and arrays); exit 1 naming the first bad array.
    Verify { file: PathBuf },
    /// Show what differs between two files: parameters, versions, metrics, arrays by digest.
    Diff { a: PathBuf, b: PathBuf },
    /// Tell whether pickle, joblib or .skv files are dangerous, without running them. Exit 0
    /// when all are safe, 1 when any is unsafe or unknown, 2 when a file cannot be read.
    Scan {
        /// Files and folders (scanned recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        /// Also rate this qualified name safe (repeatable).
        #[arg(long = "trust", value_name = "NAME")]
        trust: Vec<String>,
    },
    /// Convert a pickle or joblib file into a .skv file, without importing or calling anything.
    /// Exit 0 when converted, 1 when refused (unsafe or untrusted content), 2 on errors.
    Convert {
        src: PathBuf,
        dst: PathBuf,
        /// Trust this qualified name as well (repeatable).
        #[arg(long = "trust", value_name = "NAME")]
        trust: Vec<String>,
        /// Compress arrays: zstd or lz4 (default: none, for zero-copy loading).
        #[arg(long)]
        compress: Option<String>,
        /// Compression level.
        #[arg(long, requires = "compress")]
        level: Option<i32>,
    },
    /// Export a .skv model to ONNX (ai.onnx + ai.onnx.ml, double precision) or to portable
    /// JSON. Exit 0 when written, 1 when refused (unsupported estimator), 2 on errors.
    Export(export::ExportArgs),
    /// Turn a JSON document written by `skvault export --format json` back into a .skv file,
    /// through the same trust checks as load. Exit 0 when written, 1 when refused, 2 on errors.
    Import(export::ImportArgs),
    /// Predict with native inference (no Python): INPUT .npy or .csv, OUTPUT .npy or .csv.
    Predict(predict::PredictArgs),
    /// Versions, aliases and tags of models in a folder or S3 bucket (see `skvault docs
    /// registry`).
    Registry(registry::RegistryArgs),
    /// Print a pip requirements file pinning the package versions FILE was saved with
    /// (scikit-learn, numpy, scipy and any other recorded package): `pip install -r` of it
    /// rebuilds the environment to load it in.
    Requirements { file: PathBuf },
    /// Print skvault's documentation: the list of pages, or the page TOPIC.
    Docs {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(docs::names()))]
        topic: Option<String>,
    },
}

/// Parses `args` (including the program name) and runs the command. Returns the exit code:
/// 0 on success, 2 on errors (clap's own usage errors also exit 2).
pub fn run_cli<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    output::reset();
    let code = run(args);
    output::finish(code)
}

fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match execute(cli.command) {
        Ok(code) => code,
        Err(e) => error::report(&e),
    }
}

fn execute(command: Command) -> Result<u8, CliError> {
    match command {
        Command::Inspect {
            file,
            json,
            all,
            params,
        } => inspect::run(&file, json, all, params).map(|()| 0),
        Command::Verify { file } => verify(&file),
        Command::Diff { a, b } => diff::run(&a, &b),
        Command::Scan { paths, json, trust } => scan::run(&paths, &trust, json),
        Command::Convert {
            src,
            dst,
            trust,
            compress,
            level,
        } => convert::run(&convert::Args {
            src: &src,
            dst: &dst,
            trust: &trust,
            compress: compress.as_deref(),
            level,
        }),
        Command::Export(args) => export::run_export(&args),
        Command::Import(args) => export::run_import(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Registry(args) => registry::run(args),
        Command::Requirements { file } => requirements::run(&file),
        Command::Docs { topic } => docs::run(topic.as_deref()),
    }
}

/// `skvault verify`: 0 when every digest matches, 1 on a mismatch (named), 2 on other errors.
fn verify(path: &std::path::Path) -> Result<u8, CliError> {
    use skvault_format::FormatError;
    let file = match skvault_format::SkvFile::open(path) {
        Err(FormatError::ManifestDigestMismatch) => {
            errln!(
                "{}: FAILED: the manifest digest does not match",
                path.display()
            );
            return Ok(1);
        }
        other => other?,
    };
    match file.verify() {
        Ok(()) => {
            outln!(
                "{}: OK ({} arrays)",
                path.display(),
                file.manifest().arrays.len()
            );
            Ok(0)
        }
        Err(e @ (FormatError::DigestMismatch { .. } | FormatError::Codec { .. })) => {
            let index = match &e {
                FormatError::DigestMismatch { index } | FormatError::Codec { index, .. } => *index,
                _ => 0,
            };
            let what = inspect::array_paths(file.manifest())
                .remove(&index)
                .unwrap_or_else(|| format!("array {index}"));
            errln!("{}: FAILED: {e} ({what})", path.display());
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
