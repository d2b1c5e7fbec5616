//! What kind of file this is, decided by its first bytes (never by its name), and streaming
//! decompression of joblib's compressed files with a size limit.
//!
//! The magic numbers and their order are joblib's (`joblib/compressor.py`,
//! `_detect_compressor`). Concatenated members are all decompressed: joblib reads at most
//! what this reads, so nothing joblib could execute escapes the scan.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Write};

use crate::error::{PickleError, Result};
use crate::limits::Limits;
use crate::opcodes;

/// The compressions joblib writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zlib,
    Gzip,
    Bz2,
    Lzma,
    Xz,
    Lz4,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
            Compression::Bz2 => "bz2",
            Compression::Lzma => "lzma",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        }
    }
}

/// A file's kind, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A pickle stream (a plain pickle or an uncompressed joblib file).
    Pickle,
    /// A joblib file compressed as a whole.
    Compressed(Compression),
    /// joblib's format before 0.9.3 (`ZF` + zlib), which kept arrays in side files.
    JoblibZfile,
    /// A `.skv` file.
    Skv,
    /// A zip archive (PyTorch, `.npz`, skops): not a pickle stream, even though `P` is an
    /// opcode.
    Zip,
    /// Empty input.
    Empty,
    /// Anything else.
    Unknown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Compressed(c) => c.name(),
            Format::JoblibZfile => "joblib-zfile",
            Format::Skv => "skv",
            Format::Zip => "zip",
            Format::Empty => "empty",
            Format::Unknown => "unknown",
        }
    }
}

/// joblib's compressor magics, in its order.
const MAGICS: &[(&[u8], Compression)] = &[
    (b"\x78", Compression::Zlib),
    (b"\x1f\x8b", Compression::Gzip),
    (b"BZ", Compression::Bz2),
    (b"\x5d\x00", Compression::Lzma),
    (b"\xfd\x37\x7a\x58\x5a", Compression::Xz),
    (b"\x04\x22\x4d\x18", Compression::Lz4),
];

/// Recognises a file by its first bytes.
pub fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(b"SKVAULT\0") {
        return Format::Skv;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if bytes.starts_with(b"ZF") {
        return Format::JoblibZfile;
    }
    if let Some((_, c)) = MAGICS.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Format::Compressed(*c);
    }
    match bytes.first() {
        None => Format::Empty,
        Some(b) if opcodes::name(*b).is_some() => Format::Pickle,
        Some(_) => Format::Unknown,
    }
}

/// What a file given where a `.skv` file was expected most likely is, when it is something
/// `skvault convert` reads: `"a pickle (or uncompressed joblib) file"`, `"a zlib-compressed
/// joblib or pickle file"`, ... Only unambiguous signs count (a PROTO opcode with a protocol
/// number, a compressor's full magic), so that a text file is not taken for a pickle.
pub fn convertible_kind(bytes: &[u8]) -> Option<String> {
    match detect(bytes) {
        Format::Pickle if matches!(bytes, [0x80, 2..=5, ..]) => {
            Some("a pickle (or uncompressed joblib) file".into())
        }
        Format::Compressed(Compression::Zlib)
            if !matches!(bytes.get(1), Some(0x01 | 0x5e | 0x9c | 0xda)) =>
        {
            None
        }
        Format::Compressed(Compression::Bz2) if !bytes.starts_with(b"BZh") => None,
        Format::Compressed(c) => Some(format!("a {}-compressed joblib or pickle file", c.name())),
        _ => None,
    }
}

/// Opcodes that no pickle can begin with: each needs a stack item, a MARK or a memo entry and
/// names no global, so CPython's unpicklers (the C one of `pickle.load` and the Python one
/// joblib uses) raise on the very first byte, before reading anything after it. GLOBAL and
/// INST are not here (Python's `_Unpickler` imports INST's module before it looks for the
/// MARK), nor PERSID, EXT1/2/4 and NEXT_BUFFER (an unpickler given persistent ids, extension
/// codes or buffers would go on).
const CANNOT_START: &[u8] = &[
    opcodes::STOP,
    opcodes::POP,
    opcodes::POP_MARK,
    opcodes::DUP,
    opcodes::APPEND,
    opcodes::APPENDS,
    opcodes::BUILD,
    opcodes::DICT,
    opcodes::GET,
    opcodes::BINGET,
    opcodes::LONG_BINGET,
    opcodes::LIST,
    opcodes::OBJ,
    opcodes::PUT,
    opcodes::BINPUT,
    opcodes::LONG_BINPUT,
    opcodes::SETITEM,
    opcodes::SETITEMS,
    opcodes::TUPLE,
    opcodes::BINPERSID,
    opcodes::REDUCE,
    opcodes::NEWOBJ,
    opcodes::TUPLE1,
    opcodes::TUPLE2,
    opcodes::TUPLE3,
    opcodes::ADDITEMS,
    opcodes::FROZENSET,
    opcodes::NEWOBJ_EX,
    opcodes::STACK_GLOBAL,
    opcodes::MEMOIZE,
    opcodes::READONLY_BUFFER,
];

/// PNG's signature: NEWFALSE, then PERSID with the id `NG\r`, which `pickle.load` and
/// `joblib.load` (no persistent ids) refuse before reading the next line.
const PNG: &[u8] = b"\x89PNG\r\n";

/// What a file is when it is **not a pickle at all**: neither `pickle.load` nor `joblib.load`
/// could import or call anything from it, whatever follows its first bytes. `None` means the
/// file is (or may be) a pickle, a joblib container or a `.skv` file, and must be read and
/// rated. The rule (docs/SECURITY.md, "Not a pickle"):
///
/// - an empty file (but not the first bytes of a container magic cut short: those are rated);
/// - a first byte that is no pickle opcode and starts no container magic;
/// - a first byte that is an opcode no pickle can begin with ([`CANNOT_START`]);
/// - `x` (joblib's zlib magic, not an opcode) not followed by a zlib header byte, which zlib
///   refuses before inflating anything (the sign [`convertible_kind`] uses);
/// - PNG's signature.
///
/// Everything else, including a stream that starts like a pickle and breaks later, a
/// compressed container that does not decompress, a zip archive and joblib's old `ZF` files,
/// is read, and rated `unsafe` if it breaks.
pub fn not_a_pickle_reason(bytes: &[u8]) -> Option<String> {
    let Some(&first) = bytes.first() else {
        return Some("the file is empty".into());
    };
    // The first bytes of a container cut short (a gzip file truncated to `1f`) are rated like
    // the container they start, never waved through.
    let containers = [
        &b"SKVAULT\0"[..],
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"ZF",
        b"x\x9c",
    ];
    let cut_short = |m: &[u8]| bytes.len() < m.len() && m.starts_with(bytes);
    if containers
        .into_iter()
        .chain(MAGICS.iter().map(|(m, _)| *m))
        .any(cut_short)
    {
        return None;
    }
    let head = || {
        let hex: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        hex.join(" ")
    };
    match detect(bytes) {
        Format::Unknown => Some(format!(
            "its first byte is no pickle opcode and no compression magic (first bytes {})",
            head()
        )),
        Format::Compressed(Compression::Zlib) if convertible_kind(bytes).is_none() => {
            Some(format!(
                "it starts with 'x' but not with a zlib header (first bytes {})",
                head()
            ))
        }
        Format::Pickle if bytes.starts_with(PNG) => Some("a PNG image".into()),
        Format::Pickle if CANNOT_START.contains(&first) => Some(format!(
            "its first byte 0x{first:02x} is the opcode {}, which no pickle can begin with \
             (first bytes {})",
            opcodes::name(first).unwrap_or("?"),
            head()
        )),
        _ => None,
    }
}

/// The error for a file that is no pickle stream and no compressed one.
pub(crate) fn not_a_pickle(format: Format, bytes: &[u8]) -> PickleError {
    match format {
        Format::Empty => PickleError::Empty,
        Format::Skv => PickleError::NotAPickle {
            found: "a .skv file (check it with the .skv reader)".into(),
        },
        Format::JoblibZfile => PickleError::NotAPickle {
            found: "a joblib file older than 0.9.3 (its arrays live in separate files)".into(),
        },
        Format::Zip => PickleError::NotAPickle {
            found: "a zip archive (PyTorch, .npz or skops files are not pickle streams)".into(),
        },
        Format::Compressed(c) => PickleError::NotAPickle {
            found: format!("{}-compressed data (decompress it first)", c.name()),
        },
        Format::Pickle | Format::Unknown => {
            let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
            PickleError::NotAPickle {
                found: format!("unknown magic bytes {}", head.join(" ")),
            }
        }
    }
}

/// The pickle stream of a file: the bytes themselves, or their decompression.
pub fn decompress<'a>(bytes: &'a [u8], limits: &Limits) -> Result<(Format, Cow<'a, [u8]>)> {
    let format = detect(bytes);
    let stream = match format {
        Format::Pickle => Cow::Borrowed(bytes),
        Format::Compressed(c) => Cow::Owned(inflate(bytes, c, limits.max_decompressed)?),
        other => return Err(not_a_pickle(other, bytes)),
    };
    Ok((format, stream))
}

/// Collects output up to a limit; `exceeded` tells a limit stop from a data error.
struct Capped {
    out: Vec<u8>,
    limit: u64,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() as u64 + buf.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompressed size limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capped {
    fn read_all(&mut self, mut r: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write_all(&buf[..n])?;
        }
    }
}

fn inflate(bytes: &[u8], c: Compression, limit: u64) -> Result<Vec<u8>> {
    let mut sink = Capped {
        out: Vec::new(),
        limit,
        exceeded: false,
    };
    let result = match c {
        Compression::Zlib => members(bytes, &mut sink, |rest, sink| {
            let mut d = flate2::bufread::ZlibDecoder::new(*rest);
            sink.read_all(&mut d)?;
            *rest = d.into_inner();
            Ok(())
        }),
        Compression::Gzip => sink.read_all(flate2::bufread::MultiGzDecoder::new(bytes)),
        Compression::Bz2 => sink.read_all(bzip2::bufread::MultiBzDecoder::new(bytes)),
        Compression::Lz4 => sink.read_all(lz4_flex::frame::FrameDecoder::new(bytes)),
        Compression::Xz => members(bytes, &mut sink, |rest, sink| {
            lzma_rs::xz_decompress(rest, sink).map_err(lzma_error)?;
            // Stream padding: null bytes in multiples of four.
            while rest.starts_with(&[0, 0, 0, 0]) {
                rest.consume(4);
            }
            Ok(())
        }),
        Compression::Lzma => members(bytes, &mut sink, |rest, sink| {
            let options = lzma_rs::decompress::Options {
                memlimit: usize::try_from(limit).ok(),
                ..Default::default()
            };
            lzma_rs::lzma_decompress_with_options(rest, sink, &options).map_err(lzma_error)
        }),
    };
    if sink.exceeded {
        return Err(PickleError::DecompressedTooLarge {
            codec: c.name(),
            limit,
        });
    }
    result.map_err(|source| PickleError::Decompress {
        codec: c.name(),
        source,
    })?;
    Ok(sink.out)
}

/// Decodes members one after the other until the input is used up.
fn members(
    bytes: &[u8],
    sink: &mut Capped,
    mut one: impl FnMut(&mut &[u8], &mut Capped) -> io::Result<()>,
) -> io::Result<()> {
    let mut rest = bytes;
    loop {
        let before = rest.len();
        one(&mut rest, sink)?;
        if rest.is_empty() {
            return Ok(());
        }
        if rest.len() == before {
            return Err(io::Error::other(
                "trailing data after the compressed stream",
            ));
        }
    }
}

fn lzma_error(e: lzma_rs::error::Error) -> io::Error {
    match e {
        lzma_rs::error::Error::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic_bytes() {
        assert_eq!(detect(b"\x80\x04"), Format::Pickle);
        assert_eq!(detect(b"(lp0\n"), Format::Pickle);
        assert_eq!(detect(b"x\x9c"), Format::Compressed(Compression::Zlib));
        assert_eq!(
            detect(b"\x1f\x8b\x08"),
            Format::Compressed(Compression::Gzip)
        );
        assert_eq!(detect(b"BZh9"), Format::Compressed(Compression::Bz2));
        assert_eq!(
            convertible_kind(b"\x80\x04\x95").as_deref(),
            Some("a pickle (or uncompressed joblib) file")
        );
        assert_eq!(
            convertible_kind(b"\x78\x9c\x00").as_deref(),
            Some("a zlib-compressed joblib or pickle file")
        );
        // Text that happens to start with an opcode or a compressor's first byte is not.
        for text in [&b"xylophone"[..], b"ab,c\n", b"BZ", b"(dp0"] {
            assert_eq!(convertible_kind(text), None, "{text:?}");
        }
        assert_eq!(
            detect(b"\x5d\x00\x00\x80"),
            Format::Compressed(Compression::Lzma)
        );
        assert_eq!(detect(b"\xfd7zXZ\x00"), Format::Compressed(Compression::Xz));
        assert_eq!(
            detect(b"\x04\x22\x4d\x18"),
            Format::Compressed(Compression::Lz4)
        );
        assert_eq!(detect(b"SKVAULT\0...."), Format::Skv);
        assert_eq!(detect(b"ZF0x12"), Format::JoblibZfile);
        assert_eq!(detect(b""), Format::Empty);
        assert_eq!(detect(b"PK\x03\x04"), Format::Zip);
        assert_eq!(detect(b"\x00\x01"), Format::Unknown);
    }

    #[test]
    fn not_a_pickle_only_when_no_unpickler_could_go_on() {
        let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
        for bytes in [
            &b""[..],
            b"hello world\n",
            b"{\"a\": 1}",
            b"\x00\x01\x02\x03",
            b"\x7fELF",
            b"%PDF-1.7",
            png,
            b"xylophone",
            b"0.5,1.5\n",
            b"a,b\n",
            b"\x93NUMPY",
            b"\x94\x88",
        ] {
            assert!(not_a_pickle_reason(bytes).is_some(), "{bytes:?}");
        }
        // Anything a pickle can begin with is read and rated, whatever follows.
        for bytes in [
            &b"\x80\x04\x95garbage"[..],
            b"\x80",
            b"(lp0\n",
            b"cos\nsystem\n",
            b"import numpy as np\n",
            b"S'x'\n",
            b"The quick brown fox",
            b"\x89cos\nsystem\n",
            b"\x89PNG",
            b"PK\x03\x04",
            b"ZF0x10",
            b"BZ garbage",
            b"x\x9cgarbage",
            b"\x1f\x8b garbage",
            b"SKVAULT\0",
            b"Pid\n",
            b"\x82\x01",
            b"\x97",
            b"x",
            b"\x1f",
            b"\xfd\x37",
            b"\x04\x22",
            b"SKV",
        ] {
            assert_eq!(not_a_pickle_reason(bytes), None, "{bytes:?}");
        }
        for op in CANNOT_START {
            assert!(opcodes::name(*op).is_some());
            assert!(!matches!(
                *op,
                opcodes::GLOBAL | opcodes::INST | opcodes::PROTO
            ));
        }
    }

    #[test]
    fn round_trips_and_caps() {
        let data = vec![7u8; 100_000];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&data).unwrap();
        let packed = z.finish().unwrap();
        let limits = Limits::default();
        let (format, out) = decompress(&packed, &limits).unwrap();
        assert_eq!(format, Format::Compressed(Compression::Zlib));
        assert_eq!(&*out, &data[..]);
        let mut twice = packed.clone();
        twice.extend_from_slice(&packed);
        assert_eq!(decompress(&twice, &limits).unwrap().1.len(), 200_000);
        let small = Limits {
            max_decompressed: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            decompress(&packed, &small),
            Err(PickleError::DecompressedTooLarge { .. })
        ));
        let mut garbage = packed;
        garbage.extend_from_slice(b"not zlib");
        assert!(matches!(
            decompress(&garbage, &limits),
            Err(PickleError::Decompress { .. })
        ));
    }
}
