//! `skvault card FILE [-o OUT] [--format html|md] [--sections MARKDOWN] [--pubkey PUB]...`:
//! the model card of a file (skvault-card), written atomically or printed.

use std::path::{Path, PathBuf};

use skvault_card::{Format, Options};
use skvault_format::SkvFile;

use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct CardArgs {
    /// The .skv file.
    pub file: PathBuf,
    /// Where to write the card (default: standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// html (a self-contained page) or md (Markdown that renders on GitHub). Default: md when
    /// OUT has the extension md, else html.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// A Markdown file of sections to add (intended use, limitations, ...).
    #[arg(long, value_name = "MARKDOWN")]
    pub sections: Option<PathBuf>,
    /// Verify FILE's signature with this public key (repeatable); without one, a signature
    /// beside the file is shown as "signed (unverified)".
    #[arg(long = "pubkey", value_name = "PUB")]
    pub pubkeys: Vec<PathBuf>,
    /// The signature bundle (default: FILE.sig).
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
}

pub fn run(args: &CardArgs) -> Result<u8, CliError> {
    let format = match (&args.format, &args.output) {
        (Some(f), _) => f
            .parse::<Format>()
            .map_err(|e| CliError::input(e.to_string()))?,
        (None, Some(out)) if out.extension().is_some_and(|e| e == "md") => Format::Markdown,
        _ => Format::Html,
    };
    let pubkeys = args
        .pubkeys
        .iter()
        .map(|p| skvault_sign::read_public_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sections = match &args.sections {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| CliError::io(p, e))?),
        None => None,
    };
    let file = SkvFile::open(&args.file)?;
    let name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let options = Options {
        format,
        context: skvault_card::Context {
            name,
            signature_path: args.signature.clone(),
            pubkeys,
            ..skvault_card::Context::default()
        },
        sections,
    };
    let text = skvault_card::card(&file, &options).map_err(|e| CliError::input(e.to_string()))?;
    match &args.output {
        Some(out) if out != Path::new("-") => {
            let mut inputs: Vec<&Path> = vec![&args.file];
            inputs.extend(args.sections.as_deref());
            skvault_format::atomic::refuse_input_as_output(out, &inputs)
                .map_err(|e| CliError::io(out, e))?;
            skvault_format::atomic::write_atomic(out, |w| w.write_all(text.as_bytes()))
                .map_err(|f| CliError::io(&f.path, f.source))?;
        }
        _ => out!("{text}"),
    }
    Ok(0)
}
