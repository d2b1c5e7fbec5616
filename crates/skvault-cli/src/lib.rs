//! The `skvault` command line, as a library: the `skvault` binary and the Python
//! console script (through `skvault._native.cli_main`) both run `run_cli`.

pub mod inspect;

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
    },
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
        Command::Inspect { file, json, all } => inspect::run(&file, json, all),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("skvault: error: {e}");
            2
        }
    }
}
