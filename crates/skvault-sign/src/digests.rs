//! The digests a signature covers, from one pass over the *signed file*: the file as it was
//! when signed. For a file with an embedded signature (format 1.3) that is the file with its
//! header's two embedding changes undone and the trailer left out
//! (`skvault_format::trailer`), so embedding never changes what was signed.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};
use skvault_format::manifest::{Header, HEADER_LEN};
use skvault_format::trailer::{self, Trailer};

use crate::error::{Result, SignError};

/// The digests of a `.skv` file that a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub sha256: [u8; 32],
    pub blake3: [u8; 32],
    /// The BLAKE3 of the stored manifest bytes, recomputed.
    pub manifest_blake3: [u8; 32],
    /// The manifest digest the header records (bytes 24..56).
    pub header_manifest_digest: [u8; 32],
    /// The embedded signature's place, when the file has one.
    pub trailer: Option<Trailer>,
}

impl FileDigests {
    /// Reads the file once. Only the header (and an embedded signature's footer) is parsed:
    /// it must be a valid `.skv` header; the rest is hashed as bytes.
    pub fn of_file(path: &Path) -> Result<FileDigests> {
        let io = |source| SignError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Self::of_reader(file, len).map_err(|e| e.at(path))
    }

    /// [`FileDigests::of_file`] for a file held in memory.
    pub fn of_bytes(bytes: &[u8]) -> Result<FileDigests> {
        Self::of_reader(std::io::Cursor::new(bytes), bytes.len() as u64)
            .map_err(|e| e.at(Path::new("<bytes>")))
    }

    /// The digests of an opened file, read through its own descriptor or mapping: what a
    /// loader verifies is then exactly what it builds from, even if the path is replaced.
    pub fn of_skv(file: &skvault_format::SkvFile) -> Result<FileDigests> {
        struct Reader<'a> {
            file: &'a skvault_format::SkvFile,
            pos: u64,
        }
        impl Read for Reader<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let left = self.file.file_len().saturating_sub(self.pos);
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let chunk = buf.get_mut(..n).unwrap_or_default();
                self.file
                    .read_raw(self.pos, chunk)
                    .map_err(std::io::Error::other)?;
                self.pos += n as u64;
                Ok(n)
            }
        }
        impl Seek for Reader<'_> {
            fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
                match to {
                    SeekFrom::Start(p) => self.pos = p,
                    _ => return Err(std::io::Error::other("only absolute seeks")),
                }
                Ok(self.pos)
            }
        }
        let what = file
            .path()
            .map_or_else(|| Path::new("<bytes>").to_path_buf(), Path::to_path_buf);
        Self::of_reader(Reader { file, pos: 0 }, file.file_len()).map_err(|e| e.at(&what))
    }

    fn of_reader<R: Read + Seek>(mut r: R, len: u64) -> std::result::Result<FileDigests, ReadFail> {
        let mut head = Vec::with_capacity(64);
        (&mut r).take(HEADER_LEN).read_to_end(&mut head)?;
        let header = Header::parse(&head, len).map_err(ReadFail::Format)?;
        let mut io_failure = None;
        let found = trailer::locate(&header, len, |at, buf| {
            let read = r.seek(SeekFrom::Start(at)).and_then(|_| r.read_exact(buf));
            read.map_err(|e| {
                let message = e.to_string();
                io_failure = Some(e);
                skvault_format::FormatError::SignatureTrailer { message }
            })
        });
        let found = match (found, io_failure) {
            (_, Some(e)) => return Err(ReadFail::Io(e)),
            (f, None) => f.map_err(ReadFail::Format)?,
        };
        let signed_header = found.map_or_else(|| header.clone(), |t| t.signed_header(&header));
        let content_len = found.map_or(len, |t| t.bundle_offset);

        let mut sha = Sha256::new();
        let mut b3 = blake3::Hasher::new();
        let mut manifest = blake3::Hasher::new();
        let head = signed_header.to_bytes();
        sha.update(head);
        b3.update(&head);
        r.seek(SeekFrom::Start(HEADER_LEN))?;
        let mut rest = r.take(content_len.saturating_sub(HEADER_LEN));
        let mut manifest_left = header.manifest_len;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = rest.read(&mut buf)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            sha.update(chunk);
            b3.update(chunk);
            let take = usize::try_from(manifest_left).unwrap_or(usize::MAX).min(n);
            manifest.update(chunk.get(..take).unwrap_or_default());
            manifest_left -= take as u64;
        }
        Ok(FileDigests {
            sha256: sha.finalize().into(),
            blake3: *b3.finalize().as_bytes(),
            manifest_blake3: *manifest.finalize().as_bytes(),
            header_manifest_digest: header.manifest_digest,
            trailer: found,
        })
    }
}

/// A failure while hashing, before the path it concerns is known.
enum ReadFail {
    Io(std::io::Error),
    Format(skvault_format::FormatError),
}

impl From<std::io::Error> for ReadFail {
    fn from(e: std::io::Error) -> Self {
        ReadFail::Io(e)
    }
}

impl ReadFail {
    fn at(self, path: &Path) -> SignError {
        match self {
            ReadFail::Io(source) => SignError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadFail::Format(e) => SignError::NotSkv(e),
        }
    }
}
