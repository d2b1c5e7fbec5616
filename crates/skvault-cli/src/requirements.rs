//! `skvault requirements FILE`: a pip requirements file pinning the packages a model was
//! saved with (the text is skvault-card's, which the model card shows too).

use std::path::Path;

use skvault_format::SkvFile;

pub use skvault_card::requirements::text;

use crate::CliError;

pub fn run(path: &Path) -> Result<u8, CliError> {
    let file = SkvFile::open(path)?;
    out!("{}", text(&file, &path.display().to_string()));
    Ok(0)
}
