//! The reader: validates a whole `.skv` file before anything is built from it.
//!
//! `open` checks the header, the manifest digest, the manifest schema, and that
//! the blobs tile the data section exactly (64-byte aligned, in table order,
//! zero padding, no trailing bytes). Array bytes are then read on demand, with
//! digests checked unless the caller opts out (the `mmap` fast path).

use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::codec::{split_fields, Codec, Filter};
use crate::error::{FormatError, Result};
use crate::manifest::{align_up, ArrayEntry, Header, Manifest, HEADER_LEN};
use crate::write::digest;

/// Where the bytes come from.
enum Source {
    /// Read with positioned reads: safe even if another process truncates the file meanwhile.
    File {
        file: File,
        len: u64,
        path: PathBuf,
    },
    /// Memory-mapped: zero-copy, but the file must not change while mapped.
    Mmap(memmap2::Mmap),
    /// Memory-mapped privately (copy-on-write): writes go to private pages, never to the file.
    MmapCopy(memmap2::MmapMut),
    Bytes(Vec<u8>),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Mmap(m) => m.len() as u64,
            Source::MmapCopy(m) => m.len() as u64,
            Source::Bytes(b) => b.len() as u64,
        }
    }

    fn slice(&self) -> Option<&[u8]> {
        match self {
            Source::File { .. } => None,
            Source::Mmap(m) => Some(m),
            Source::MmapCopy(m) => Some(m),
            Source::Bytes(b) => Some(b),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<()> {
        let needed = offset.saturating_add(buf.len() as u64);
        let truncated = || FormatError::Truncated {
            what,
            needed,
            available: self.len(),
        };
        match self {
            Source::File { file, path, .. } => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(buf, offset).map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => truncated(),
                    _ => FormatError::io(path.clone(), e),
                })
            }
            _ => {
                let start = usize::try_from(offset).map_err(|_| truncated())?;
                let src = self
                    .slice()
                    .and_then(|s| s.get(start..start.checked_add(buf.len())?))
                    .ok_or_else(truncated)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// Files up to this size are read whole by [`SkvFile::open`].
const READ_WHOLE_LEN: u64 = 256 << 10;

/// A validated `.skv` file.
pub struct SkvFile {
    source: Source,
    path: Option<PathBuf>,
    header: Header,
    manifest: Manifest,
    manifest_len: u64,
}

impl std::fmt::Debug for SkvFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkvFile")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl SkvFile {
    /// Opens a file for reading with positioned reads; a small file is read whole at once.
    pub fn open(path: &Path) -> Result<SkvFile> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        let len = file.metadata().map_err(|e| FormatError::io(path, e))?.len();
        if len <= READ_WHOLE_LEN {
            // One read instead of one per section and array: a pipeline's file took ten.
            let mut bytes = vec![0u8; len as usize];
            use std::os::unix::fs::FileExt;
            file.read_exact_at(&mut bytes, 0)
                .map_err(|e| FormatError::io(path, e))?;
            return Self::from_source(Source::Bytes(bytes), Some(path.to_path_buf()));
        }
        let source = Source::File {
            file,
            len,
            path: path.to_path_buf(),
        };
        Self::from_source(source, Some(path.to_path_buf()))
    }

    /// Opens a file memory-mapped, so that uncompressed arrays can be viewed without copying.
    pub fn open_mmap(path: &Path) -> Result<SkvFile> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: the map is read-only; a concurrent writer truncating the file is the documented
        // hazard of mmap=True (as with numpy.memmap). skvault itself never writes in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        Self::from_source(Source::Mmap(map), Some(path.to_path_buf()))
    }

    /// Opens a file memory-mapped copy-on-write: arrays viewing it are writable, and writes
    /// land in private memory, never in the file.
    pub fn open_mmap_copy(path: &Path) -> Result<SkvFile> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: as for `open_mmap`; the private mapping is never written back to the file.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }
            .map_err(|e| FormatError::io(path, e))?;
        Self::from_source(Source::MmapCopy(map), Some(path.to_path_buf()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<SkvFile> {
        Self::from_source(Source::Bytes(bytes), None)
    }

    /// Reads and validates header and manifest only: enough for `inspect` on any file size.
    fn from_source(source: Source, path: Option<PathBuf>) -> Result<SkvFile> {
        let file_len = source.len();
        let mut head = [0u8; 64];
        let available = usize::try_from(file_len.min(64)).unwrap_or(64);
        let head_part = head.get_mut(..available).unwrap_or(&mut []);
        source.read_at(0, head_part, "the header")?;
        let header = Header::parse(head.get(..available).unwrap_or(&[]), file_len)?;
        let manifest_len = header.manifest_len;
        let mut manifest_bytes = vec![0u8; usize::try_from(manifest_len).unwrap_or(0)];
        source.read_at(HEADER_LEN, &mut manifest_bytes, "the manifest")?;
        if blake3::hash(&manifest_bytes).as_bytes() != &header.manifest_digest {
            return Err(FormatError::ManifestDigestMismatch);
        }
        let manifest = Manifest::from_bytes(&header.manifest_text(&manifest_bytes)?)?;
        let file = SkvFile {
            source,
            path,
            header,
            manifest,
            manifest_len,
        };
        file.check_layout()?;
        Ok(file)
    }

    /// Blobs must tile the data section exactly: each at the next 64-byte boundary, zero padding
    /// between them, the file ending with the last blob. No holes, no overlaps, no trailing bytes.
    fn check_layout(&self) -> Result<()> {
        let data_start = self.header.data_start();
        let file_len = self.source.len();
        let mut gaps: Vec<(u64, u64)> = vec![(HEADER_LEN + self.manifest_len, data_start)];
        let mut expected = 0u64;
        for (i, e) in self.manifest.arrays.iter().enumerate() {
            if e.offset != expected {
                return Err(FormatError::layout(
                    i,
                    format!(
                        "offset {} should be {expected} (blobs are packed in table order)",
                        e.offset
                    ),
                ));
            }
            let end = e
                .offset
                .checked_add(e.length)
                .ok_or_else(|| FormatError::layout(i, "offset + length overflows"))?;
            let abs_end = data_start
                .checked_add(end)
                .filter(|x| *x <= file_len)
                .ok_or(FormatError::Truncated {
                    what: "an array blob",
                    needed: data_start.saturating_add(end),
                    available: file_len,
                })?;
            let next = align_up(end).ok_or_else(|| FormatError::layout(i, "offset overflows"))?;
            gaps.push((abs_end, data_start.saturating_add(next)));
            expected = next;
        }
        let end_of_data = match self.manifest.arrays.last() {
            Some(e) => data_start + e.offset + e.length,
            None => data_start,
        };
        if end_of_data > file_len {
            return Err(FormatError::Truncated {
                what: "the data section",
                needed: end_of_data,
                available: file_len,
            });
        }
        if end_of_data < file_len {
            return Err(FormatError::UnexpectedBytes {
                message: format!("{} bytes after the last blob", file_len - end_of_data),
            });
        }
        for (start, end) in gaps {
            let end = end.min(end_of_data);
            if start >= end {
                continue;
            }
            let mut pad = vec![0u8; (end - start) as usize];
            self.source.read_at(start, &mut pad, "padding")?;
            if pad.iter().any(|&b| b != 0) {
                return Err(FormatError::UnexpectedBytes {
                    message: format!("non-zero padding at offset {start}"),
                });
            }
        }
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn file_len(&self) -> u64 {
        self.source.len()
    }

    fn entry(&self, index: usize) -> Result<&ArrayEntry> {
        self.manifest
            .arrays
            .get(index)
            .ok_or_else(|| FormatError::layout(index, "no such array"))
    }

    /// The manifest as JSON, with the format version, file size and the names the default
    /// allow-list does not cover: what `inspect --json` prints.
    pub fn describe(&self) -> serde_json::Value {
        let mut doc = self.manifest.to_json();
        if let serde_json::Value::Object(m) = &mut doc {
            let h = &self.header;
            m.insert(
                "format_version".into(),
                format!("{}.{}", h.major, h.minor).into(),
            );
            m.insert("file_size".into(), self.file_len().into());
            let untrusted = crate::TrustSet::default().untrusted_in(&self.manifest);
            m.insert("untrusted".into(), untrusted.into());
        }
        doc
    }

    /// The whole file when it is memory-mapped, and whether the mapping is copy-on-write.
    pub fn mapped_whole(&self) -> Option<(&[u8], bool)> {
        match &self.source {
            Source::Mmap(m) => Some((m, false)),
            Source::MmapCopy(m) => Some((m, true)),
            _ => None,
        }
    }

    /// Absolute offset of an array's stored bytes.
    pub fn blob_offset(&self, index: usize) -> Result<u64> {
        Ok(self.header.data_start() + self.entry(index)?.offset)
    }

    /// The stored bytes of an uncompressed array when the file is in memory or mapped (zero copy).
    /// The digest is not checked here: callers that skip `read_array_into` opt out of it.
    pub fn mapped_bytes(&self, index: usize) -> Option<&[u8]> {
        let e = self.manifest.arrays.get(index)?;
        if e.codec != Codec::None {
            return None;
        }
        let start = usize::try_from(self.header.data_start() + e.offset).ok()?;
        let len = usize::try_from(e.length).ok()?;
        self.source.slice()?.get(start..start.checked_add(len)?)
    }

    /// Reads array `index` into `dst` (exactly `raw_length` bytes), decompressing it and, if
    /// `verify`, checking its digest.
    pub fn read_array_into(&self, index: usize, dst: &mut [u8], verify: bool) -> Result<()> {
        let e = self.entry(index)?;
        if dst.len() as u64 != e.raw_length {
            return Err(FormatError::layout(
                index,
                "destination size differs from raw_length",
            ));
        }
        let offset = self.header.data_start() + e.offset;
        match e.codec {
            Codec::None => self.source.read_at(offset, dst, "an array blob")?,
            codec => {
                let stored = self.stored_bytes(index, e, offset)?;
                match e.filter {
                    Filter::None => codec.decompress_into(index, &stored, dst)?,
                    Filter::Fields => {
                        let mut columns = vec![0u8; dst.len()];
                        codec.decompress_into(index, &stored, &mut columns)?;
                        let itemsize = usize::try_from(e.dtype.itemsize()).unwrap_or(0);
                        let joined = e
                            .dtype
                            .field_segments()
                            .is_some_and(|segs| split_fields(&columns, dst, itemsize, &segs, true));
                        if !joined {
                            return Err(FormatError::layout(
                                index,
                                "the fields filter does not apply to this dtype",
                            ));
                        }
                    }
                }
            }
        }
        if verify && digest(dst) != e.digest {
            return Err(FormatError::DigestMismatch { index });
        }
        Ok(())
    }

    fn stored_bytes(
        &self,
        _index: usize,
        e: &ArrayEntry,
        offset: u64,
    ) -> Result<std::borrow::Cow<'_, [u8]>> {
        let len =
            usize::try_from(e.length).map_err(|_| FormatError::layout(_index, "blob too large"))?;
        if let Some(s) = self.source.slice() {
            let start = usize::try_from(offset)
                .map_err(|_| FormatError::layout(_index, "offset too large"))?;
            return s
                .get(start..start.saturating_add(len))
                .map(std::borrow::Cow::Borrowed)
                .ok_or(FormatError::Truncated {
                    what: "an array blob",
                    needed: offset + e.length,
                    available: self.source.len(),
                });
        }
        let mut buf = vec![0u8; len];
        self.source.read_at(offset, &mut buf, "an array blob")?;
        Ok(std::borrow::Cow::Owned(buf))
    }

    /// Reads array `index` into a new buffer.
    pub fn read_array(&self, index: usize, verify: bool) -> Result<Vec<u8>> {
        let e = self.entry(index)?;
        let len = usize::try_from(e.raw_length)
            .map_err(|_| FormatError::layout(index, "array too large"))?;
        let mut out = vec![0u8; len];
        self.read_array_into(index, &mut out, verify)?;
        Ok(out)
    }

    /// Checks every array's digest (decompressing as needed), in parallel.
    /// Reports the first failure by array index.
    pub fn verify(&self) -> Result<()> {
        let results: Vec<Result<()>> = (0..self.manifest.arrays.len())
            .into_par_iter()
            .map(|i| self.verify_array(i))
            .collect();
        results.into_iter().collect()
    }

    /// Checks one array's digest.
    pub fn verify_array(&self, index: usize) -> Result<()> {
        if let Some(bytes) = self.mapped_bytes(index) {
            let e = self.entry(index)?;
            return if digest(bytes) == e.digest {
                Ok(())
            } else {
                Err(FormatError::DigestMismatch { index })
            };
        }
        self.read_array(index, true).map(|_| ())
    }
}
