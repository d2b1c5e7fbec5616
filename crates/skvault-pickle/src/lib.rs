//! A pickle and joblib reader that never executes anything.
//!
//! - [`scan`]: which globals a `.pkl` / `.joblib` file (compressed or not) would import, each
//!   rated safe, dangerous or unknown, and a verdict.
//! - [`convert`]: the same stream as the skvault object tree and its arrays, equal to what
//!   `skvault.dump` writes for the live object, ready for `skvault_format::prepare`.
//!
//! Both run one interpreter (module `vm`) that implements every opcode of pickle
//! protocols 0 to 5 on data: globals are names, calls are recorded, nothing is imported.
//! joblib's arrays are read the way joblib reads them (raw bytes after each
//! `NumpyArrayWrapper`, object arrays as nested pickles). The file's kind is decided by its
//! magic bytes, never by its name.
//!
//! ```
//! let report = skvault_pickle::scan(b"cos\nsystem\n(S'echo hi'\ntR.");
//! assert_eq!(report.verdict, skvault_pickle::Verdict::Unsafe);
//! assert_eq!(report.globals[0].qualified(), "os.system");
//! ```
// The one unsafe operation is mapping a file (`file.rs`), allowed there with its SAFETY note.
#![deny(unsafe_code)]

mod compat;
mod container;
mod dtype;
mod dtype_facts;
mod error;
mod file;
pub mod fuzzing;
mod helpers;
mod input;
mod joblib;
mod limits;
mod lower;
pub mod migrate;
mod names;
mod opcodes;
mod scan;
mod text;
mod value;
mod vm;

pub use container::{
    convertible_kind, decompress, detect, not_a_pickle_reason, Compression, Format,
};
pub use error::{PickleError, Result};
pub use file::{
    convert_file, convert_file_checked, scan_path, scan_paths, scan_skv, Conversion,
    ConvertOptions, FileError, FileScan, Step,
};
pub use limits::Limits;
pub use lower::{Converted, ConvertedArray};
pub use names::{GlobalKind, HELPERS};
pub use scan::{scan, scan_stream, scan_with, GlobalFinding, ScanOptions, ScanReport, Verdict};
pub use vm::Issue;

use input::Input;
use value::Arena;
use vm::{Log, Machine};

/// Converts one pickle stream (a plain pickle or an uncompressed joblib stream: pass
/// compressed files through [`decompress`] first) to the object tree and its arrays.
///
/// Array bytes are borrowed from `stream` where it holds them as they are. Fails if the
/// stream is malformed, holds anything after its STOP, or builds an object that skvault cannot
/// represent; a REDUCE of anything but a class or a known helper fails with
/// [`PickleError::NotAClass`] naming the callable. Whether the names in the tree may be
/// loaded is the trust set's decision, as for any `.skv` file: scan first.
///
/// ```
/// use skvault_pickle::{convert, decompress, Limits};
///
/// let file = b"\x80\x02]q\x00(K\x01K\x02e."; // pickle.dumps([1, 2], protocol=2)
/// let limits = Limits::default();
/// let (_, stream) = decompress(file, &limits)?;
/// let converted = convert(&stream, &limits)?;
/// assert_eq!(converted.root.to_json(), serde_json::json!({"list": [1, 2]}));
/// let skv = skvault_format::prepare(
///     converted.root.clone(),
///     &converted.array_inputs(),
///     serde_json::Map::new(),
///     skvault_format::WriteOptions::default(),
/// )
/// .map_err(|e| e.to_string())?
/// .to_vec()
/// .map_err(|e| e.to_string())?;
/// assert!(skv.starts_with(b"SKVAULT\0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn convert<'a>(stream: &'a [u8], limits: &Limits) -> Result<Converted<'a>> {
    match detect(stream) {
        Format::Pickle => {}
        other => return Err(container::not_a_pickle(other, stream)),
    }
    let mut arena = Arena::new(limits.max_alloc);
    let mut log = Log::default();
    let mut input = Input::new(stream);
    let root = Machine::new(&mut arena, &mut log, limits, true).run(&mut input)?;
    if input.remaining() > 0 {
        return Err(PickleError::TrailingData {
            offset: input.pos() as u64,
            count: input.remaining() as u64,
        });
    }
    lower::lower(&arena, root, limits)
}
