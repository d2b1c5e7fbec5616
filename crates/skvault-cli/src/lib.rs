//! The `skvault` command line, as a library: the `skvault` binary and the Python
//! console script (through `skvault._native.cli_main`) both run `run_cli`.

pub mod diff;
pub mod inspect;
pub mod registry;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skvault",
    version,
    about = "Safe, fast persistence for scikit-learn models"
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
    /// Versions, aliases and tags of models in a folder or S3 bucket (see docs/REGISTRY.md).
    Registry(registry::RegistryArgs),
}

/// Parses `args` (including the program name) and runs the command. Returns the exit code:
/// 0 on success, 2 on errors (clap's own usage errors also exit 2).
pub fn run_cli<I, T>(args: I) -> u8
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
    let result = match cli.command {
        Command::Inspect {
            file,
            json,
            all,
            params,
        } => inspect::run(&file, json, all, params).map(|()| 0),
        Command::Verify { file } => verify(&file),
        Command::Diff { a, b } => diff::run(&a, &b),
        Command::Registry(args) => Ok(registry::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skvault: error: {e}");
            2
        }
    }
}

/// `skvault verify`: 0 when every digest matches, 1 on a mismatch (named), 2 on other errors.
fn verify(path: &std::path::Path) -> Result<u8, skvault_format::FormatError> {
    use skvault_format::FormatError;
    let file = match skvault_format::SkvFile::open(path) {
        Err(FormatError::ManifestDigestMismatch) => {
            eprintln!(
                "{}: FAILED: the manifest digest does not match",
                path.display()
            );
            return Ok(1);
        }
        other => other?,
    };
    match file.verify() {
        Ok(()) => {
            println!(
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
            eprintln!("{}: FAILED: {e} ({what})", path.display());
            Ok(1)
        }
        Err(e) => Err(e),
    }
}
