//! An embedded signature (format 1.3, FORMAT.md 2.5): a trailer after the last blob.
//!
//! A signature covers the bytes of the file as they were when it was signed (the *signed
//! file*). Embedding must not change those bytes, so the embedded file is the signed file
//! with two header fields changed and a trailer appended:
//!
//! ```text
//! signed file, header's minor set to 3 and flag SIGNATURE set
//! bundle bytes (the signature, opaque to this crate)
//! footer, 24 bytes: bundle_len u64 | signed_minor u16 | 6 zero bytes | "SKVSIGN\0"
//! ```
//!
//! Undoing those two changes and dropping the trailer gives back the signed file exactly,
//! which is what a verifier hashes ([`Trailer::signed_header`]). `SIGNATURE` is a required
//! flag, so a reader older than 1.3 refuses the file with `UnknownFlags` rather than as
//! trailing bytes.

use crate::error::{FormatError, Result};
use crate::manifest::{Header, FLAG_SIGNATURE, HEADER_LEN};

/// The last 8 bytes of a file with an embedded signature.
pub const TRAILER_MAGIC: &[u8; 8] = b"SKVSIGN\0";
/// Length of the fixed footer that ends the trailer.
pub const FOOTER_LEN: u64 = 24;
/// The largest embedded signature a reader accepts (the same bound as a detached one).
pub const MAX_SIGNATURE_LEN: u64 = 1 << 20;
/// The minor version a file with an embedded signature is written with.
pub const SIGNATURE_MINOR: u16 = 3;

/// Where the embedded signature lies, and what the signed file's header was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Absolute offset of the bundle: the signed file's length.
    pub bundle_offset: u64,
    pub bundle_len: u64,
    /// The minor version of the signed file.
    pub signed_minor: u16,
}

fn bad(message: impl Into<String>) -> FormatError {
    FormatError::SignatureTrailer {
        message: message.into(),
    }
}

impl Trailer {
    /// Checks the footer (the file's last [`FOOTER_LEN`] bytes, or fewer if the file is
    /// shorter) of a file of `file_len` bytes whose header sets `SIGNATURE`.
    pub fn parse(footer: &[u8], file_len: u64, header: &Header) -> Result<Trailer> {
        let f: &[u8; 24] = footer
            .try_into()
            .map_err(|_| bad("the file is too short to end with a signature footer"))?;
        let (len, rest) = f.split_at(8);
        let (minor, rest) = rest.split_at(2);
        let (reserved, magic) = rest.split_at(6);
        if magic != TRAILER_MAGIC.as_slice() {
            return Err(bad(
                "header flag SIGNATURE is set but the file does not end with the footer magic \"SKVSIGN\\0\"",
            ));
        }
        if reserved.iter().any(|&b| b != 0) {
            return Err(bad("reserved footer bytes are not zero"));
        }
        let mut b8 = [0u8; 8];
        b8.copy_from_slice(len);
        let bundle_len = u64::from_le_bytes(b8);
        let signed_minor = u16::from_le_bytes([minor[0], minor[1]]);
        if bundle_len == 0 || bundle_len > MAX_SIGNATURE_LEN {
            return Err(bad(format!(
                "declared length {bundle_len} is not between 1 and {MAX_SIGNATURE_LEN} bytes"
            )));
        }
        if header.minor < SIGNATURE_MINOR.max(signed_minor) || signed_minor == SIGNATURE_MINOR {
            return Err(bad(minor_message(header.minor, signed_minor)));
        }
        let head_end = HEADER_LEN + header.manifest_len;
        let bundle_offset = file_len
            .checked_sub(FOOTER_LEN + bundle_len)
            .filter(|o| *o >= head_end)
            .ok_or_else(|| {
                bad(format!(
                    "a {bundle_len}-byte signature does not fit in the {file_len}-byte file after its manifest"
                ))
            })?;
        Ok(Trailer {
            bundle_offset,
            bundle_len,
            signed_minor,
        })
    }

    /// The header of the signed file: `header` with `SIGNATURE` cleared and its minor back.
    pub fn signed_header(&self, header: &Header) -> Header {
        let mut h = header.clone();
        h.flags &= !FLAG_SIGNATURE;
        h.minor = self.signed_minor;
        h
    }

    /// The header of the embedded file made from a signed file's `header`: minor 3, or the
    /// signed file's own when newer (1.4).
    pub fn embedded_header(header: &Header) -> Header {
        let mut h = header.clone();
        h.flags |= FLAG_SIGNATURE;
        h.minor = SIGNATURE_MINOR.max(header.minor);
        h
    }

    /// The footer for a bundle of `bundle_len` bytes signing a file of minor `signed_minor`.
    pub fn footer(bundle_len: u64, signed_minor: u16) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&bundle_len.to_le_bytes());
        out[8..10].copy_from_slice(&signed_minor.to_le_bytes());
        out[16..].copy_from_slice(TRAILER_MAGIC);
        out
    }
}

fn minor_message(minor: u16, signed_minor: u16) -> String {
    format!(
        "the header's minor version is {minor} and the signed file's {signed_minor}: a file with an embedded signature is version 1.{SIGNATURE_MINOR} or the signed file's newer one, and the file it signs is not a 1.{SIGNATURE_MINOR} file"
    )
}

/// Reads the trailer of a file, given a positioned reader: `None` when the header does not
/// set `SIGNATURE`.
pub fn locate(
    header: &Header,
    file_len: u64,
    read_at: impl FnOnce(u64, &mut [u8]) -> Result<()>,
) -> Result<Option<Trailer>> {
    if header.flags & FLAG_SIGNATURE == 0 {
        return Ok(None);
    }
    let n = file_len.min(FOOTER_LEN);
    let mut footer = vec![0u8; n as usize];
    read_at(file_len - n, &mut footer)?;
    Trailer::parse(&footer, file_len, header).map(Some)
}
