//! The `skvault` command line, as a library: the `skvault` binary and the Python
//! console script (through `skvault._native.cli_main`) both run `run_cli`.
#![forbid(unsafe_code)]

#[macro_use]
mod output;

pub mod card;
pub mod convert;
pub mod diff;
pub mod docs;
mod error;
pub mod export;
pub mod inspect;
mod interrupt;
pub mod predict;
mod predict_stream;
mod progress;
pub mod registry;
pub mod requirements;
mod rows;
pub mod scan;
pub mod serve;
pub mod sign;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::error::CliError;

// Help is wrapped at 100 columns whatever the terminal: the same `--help` in every build and
// on every screen (clap's `wrap_help` is on in the workspace, so that a dependency that turns
// it on, as the divan benchmark's does, changes nothing).
#[derive(Parser)]
#[command(
    name = "skvault",
    version,
    term_width = 100,
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
    /// Check every digest (manifest and arrays); exit 1 naming the first bad array. With
    /// --pubkey, also check the file's signature (`skvault docs signing`).
    Verify {
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// A trusted public key (PEM), or a folder of *.pub files; repeat for several (key
        /// rotation). The file must be signed by one of them. Default: the keys named by
        /// SKVAULT_TRUSTED_KEYS, if set.
        #[arg(long = "pubkey", value_name = "PUB")]
        pubkeys: Vec<PathBuf>,
        /// The signature file [default: the embedded signature, else FILE.sig].
        #[arg(long, value_name = "SIG")]
        signature: Option<PathBuf>,
    },
    /// Make an ECDSA P-256 key pair for `skvault sign`: KEY (private, mode 0600) and KEY.pub.
    Keygen {
        /// The private key file to create (never replaced); the public key goes to KEY.pub.
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
        /// Print the paths and the key id as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a .skv file with a private key: a detached signature (FILE.sig) that
    /// `skvault verify --pubkey` and OpenSSF's `model_signing verify key` check, or with
    /// --embed a signature inside the file.
    Sign {
        file: PathBuf,
        /// The private key (PEM, made by `skvault keygen`; must not be readable by others).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Who signs, recorded in the signature (free text, e.g. a pipeline or an e-mail).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
        /// Where to write the signature [default: FILE.sig].
        #[arg(short, long, value_name = "SIG", conflicts_with = "embed")]
        output: Option<PathBuf>,
        /// Embed the signature in FILE (rewritten atomically; format 1.3) instead of writing
        /// FILE.sig. What is signed is unchanged: `skvault detach` gives it back.
        #[arg(long)]
        embed: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take an embedded signature out: write the signed file to OUTPUT and its signature to
    /// OUTPUT.sig (the form OpenSSF's `model_signing verify key` checks).
    Detach {
        file: PathBuf,
        #[arg(short, long, value_name = "OUTPUT")]
        output: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what differs between two files: parameters, versions, metrics, arrays by digest.
    /// Exit 0 when they are the same, 1 when they differ.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print the differences as JSON.
        #[arg(long)]
        json: bool,
    },
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
        /// Compression level: a number, or `archive` (with zstd: smaller and slower to
        /// write, for files written once and kept).
        #[arg(long, requires = "compress", value_parser = convert::parse_level)]
        level: Option<convert::Level>,
        /// Print what was converted as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export a .skv model to ONNX (ai.onnx + ai.onnx.ml, double precision) or to portable
    /// JSON. Exit 0 when written, 1 when refused (unsupported estimator), 2 on errors.
    Export(export::ExportArgs),
    /// Turn a JSON document written by `skvault export --format json` back into a .skv file,
    /// through the same trust checks as load. Exit 0 when written, 1 when refused, 2 on errors.
    Import(export::ImportArgs),
    /// Predict with native inference (no Python): INPUT .npy, .csv, .parquet, or a folder or
    /// s3:// prefix of Parquet files (streamed); OUTPUT .npy, .csv, .parquet or - (stdout).
    Predict(predict::PredictArgs),
    /// Versions, aliases and tags of models in a folder or S3 bucket (see `skvault docs
    /// registry`).
    Registry(registry::RegistryArgs),
    /// Serve models over HTTP with native inference (MLflow-compatible /invocations,
    /// /v1/models/NAME/predict, /metrics; see `skvault docs serve`).
    Serve(serve::ServeArgs),
    /// Print a pip requirements file pinning the package versions FILE was saved with
    /// (scikit-learn, numpy, scipy and any other recorded package): `pip install -r` of it
    /// rebuilds the environment to load it in.
    Requirements { file: PathBuf },
    /// Write FILE's model card: a self-contained HTML page (inline CSS and SVG pictures, no
    /// script, nothing fetched) or Markdown, from the file alone (see `skvault docs card`).
    Card(card::CardArgs),
    /// Print skvault's documentation: the list of pages, or the page TOPIC.
    Docs {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(docs::names()))]
        topic: Option<String>,
    },
}

/// Parses `args` (including the program name) and runs the command. Returns the exit code:
/// 0 on success, 2 on errors (clap's own usage errors also exit 2), 130 when Ctrl-C stopped
/// it (see `interrupt`).
pub fn run_cli<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    output::reset();
    let code = {
        let _handlers = interrupt::Guard::install();
        run(args)
    };
    output::finish(code)
}

/// The exit status of an interrupted command, whatever error the stop made it return.
pub const EXIT_INTERRUPTED: u8 = interrupt::EXIT_INTERRUPTED;

/// Whether Ctrl-C was pressed during the last `run_cli` (its handler chains to the one
/// installed before, which a caller may then have to clear: see the Python binding).
pub fn interrupted() -> bool {
    interrupt::requested()
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
    let result = execute(cli.command);
    if interrupt::requested() {
        // The error the stop caused (an interrupted write) says less than this.
        match result {
            Ok(_) => errln!("skvault: interrupted (after the command had finished)"),
            Err(_) => errln!("skvault: interrupted (nothing was written)"),
        }
        return EXIT_INTERRUPTED;
    }
    match result {
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
        Command::Verify {
            file,
            json,
            pubkeys,
            signature,
        } => verify::run(&file, json, &pubkeys, signature.as_deref()),
        Command::Keygen { out, json } => sign::keygen(&out, json),
        Command::Sign {
            file,
            key,
            identity,
            output,
            embed,
            json,
        } => sign::sign(
            &file,
            &key,
            identity.as_deref().unwrap_or_default(),
            output.as_deref(),
            embed,
            json,
        ),
        Command::Detach { file, output, json } => sign::detach(&file, &output, json),
        Command::Diff { a, b, json } => diff::run(&a, &b, json),
        Command::Scan { paths, json, trust } => scan::run(&paths, &trust, json),
        Command::Convert {
            src,
            dst,
            trust,
            compress,
            level,
            json,
        } => convert::run(&convert::Args {
            src: &src,
            dst: &dst,
            trust: &trust,
            compress: compress.as_deref(),
            level,
            json,
        }),
        Command::Export(args) => export::run_export(&args),
        Command::Import(args) => export::run_import(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Registry(args) => registry::run(args),
        Command::Serve(args) => serve::run(&args),
        Command::Requirements { file } => requirements::run(&file),
        Command::Card(args) => card::run(&args),
        Command::Docs { topic } => docs::run(topic.as_deref()),
    }
}
