#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(skvault_cli::run_cli(std::env::args_os()))
}
