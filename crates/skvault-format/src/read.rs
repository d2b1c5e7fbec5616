//! The reader: validates a whole `.skv` file before anything is built from it.
//!
//! `open` checks the header, the manifest digest, the manifest schema, and that
//! the blobs tile the data section exactly (64-byte aligned, in table order,
//! zero padding, no trailing bytes). Array bytes are then read on demand, with
//! digests checked unless the caller opts out (the `mmap` fast path).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::codec::{split_fields, Codec, Filter};
use crate::dtype::DType;
use crate::error::{DecodeError, FormatError, Result};
use crate::manifest::{
    align_up, ArrayEntry, Blob, Header, Manifest, Placement, FLAG_COLUMNS, FLAG_PACKS, HEADER_LEN,
};
use crate::trailer::Trailer;
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
    /// The embedded signature's place (format 1.3), when the header sets `SIGNATURE`.
    trailer: Option<Trailer>,
    /// Each pack's raw bytes once decoded, or why they could not be: decoded once for all of
    /// its members (the failure is kept too, so every member reports it). Kept while the file
    /// is open, which for a memory-mapped load is as long as its arrays: at most the size of
    /// the packed arrays, which are the small ones (the writer packs arrays under 64 KiB).
    packs: Vec<OnceLock<std::result::Result<Vec<u8>, Arc<DecodeError>>>>,
}

/// The one check of [`SkvFile::open_mmap_deferred`] still to run: the bytes between blobs
/// (and between the manifest and the first blob) are zero, so that a file holds nothing but
/// its manifest and arrays.
#[derive(Debug)]
#[must_use = "a file's padding is checked before anything built from it is returned"]
pub struct PaddingCheck {
    /// `(start, end)` of every gap, absolute, each non-empty and inside the file.
    gaps: Vec<(u64, u64)>,
}

impl PaddingCheck {
    /// Reads every gap of `file` (the file this check came with) and refuses non-zero bytes.
    pub fn run(&self, file: &SkvFile) -> Result<()> {
        let mut pad = Vec::new();
        for &(start, end) in &self.gaps {
            pad.clear();
            pad.resize(usize::try_from(end - start).unwrap_or(0), 0);
            file.source.read_at(start, &mut pad, "padding")?;
            if pad.iter().any(|&b| b != 0) {
                return Err(FormatError::UnexpectedBytes {
                    message: format!("non-zero padding at offset {start}"),
                });
            }
        }
        Ok(())
    }
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
        let (file, padding) = Self::open_mmap_deferred(path)?;
        padding.run(&file)?;
        Ok(file)
    }

    /// [`SkvFile::open_mmap`], every check done but the one that reads the padding between
    /// blobs (it must be zero): that read touches a page of the map per blob, scattered over
    /// the file (a 500-tree forest: 2,000 page faults, about 2 ms). A loader runs
    /// [`PaddingCheck::run`] off its critical path, and returns nothing built from the file
    /// before it passed.
    pub fn open_mmap_deferred(path: &Path) -> Result<(SkvFile, PaddingCheck)> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: the map is read-only; a concurrent writer truncating the file is the documented
        // hazard of mmap=True (as with numpy.memmap). skvault itself never writes in place.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        Self::from_source_deferred(Source::Mmap(map), Some(path.to_path_buf()))
    }

    /// Opens a file memory-mapped copy-on-write: arrays viewing it are writable, and writes
    /// land in private memory, never in the file.
    pub fn open_mmap_copy(path: &Path) -> Result<SkvFile> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: as for `open_mmap`; the private mapping is never written back to the file.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }
            .map_err(|e| FormatError::io(path, e))?;
        Self::from_source(Source::MmapCopy(map), Some(path.to_path_buf()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<SkvFile> {
        Self::from_source(Source::Bytes(bytes), None)
    }

    /// Reads and validates header and manifest only: enough for `inspect` on any file size.
    fn from_source(source: Source, path: Option<PathBuf>) -> Result<SkvFile> {
        let (file, padding) = Self::from_source_deferred(source, path)?;
        padding.run(&file)?;
        Ok(file)
    }

    /// Opens `source`, checking everything but its padding (see [`PaddingCheck`]).
    fn from_source_deferred(
        source: Source,
        path: Option<PathBuf>,
    ) -> Result<(SkvFile, PaddingCheck)> {
        let file_len = source.len();
        let mut head = [0u8; 64];
        let available = usize::try_from(file_len.min(64)).unwrap_or(64);
        let head_part = head.get_mut(..available).unwrap_or(&mut []);
        source.read_at(0, head_part, "the header")?;
        let header = Header::parse(head.get(..available).unwrap_or(&[]), file_len)?;
        let trailer = crate::trailer::locate(&header, file_len, |at, buf| {
            source.read_at(at, buf, "the signature footer")
        })?;
        let manifest_len = header.manifest_len;
        let mut manifest_bytes = vec![0u8; usize::try_from(manifest_len).unwrap_or(0)];
        source.read_at(HEADER_LEN, &mut manifest_bytes, "the manifest")?;
        if blake3::hash(&manifest_bytes).as_bytes() != &header.manifest_digest {
            return Err(FormatError::ManifestDigestMismatch);
        }
        let manifest = Manifest::from_bytes(&header.manifest_text(&manifest_bytes)?)?;
        let features = manifest.feature_flags();
        if features & FLAG_PACKS != header.flags & FLAG_PACKS {
            return Err(FormatError::manifest(
                "/packs",
                "present exactly when header flag PACKS (bit 1) is set",
            ));
        }
        if features & FLAG_COLUMNS != header.flags & FLAG_COLUMNS {
            return Err(FormatError::manifest(
                "/arrays",
                "a blob or pack has the columns filter exactly when header flag COLUMNS (bit 3) is set",
            ));
        }
        let packs = manifest.packs.iter().map(|_| OnceLock::new()).collect();
        let file = SkvFile {
            source,
            path,
            header,
            manifest,
            manifest_len,
            trailer,
            packs,
        };
        let gaps = file.check_layout()?;
        Ok((file, PaddingCheck { gaps }))
    }

    /// Blobs must tile the data section exactly: each at the next 64-byte boundary, zero padding
    /// between them, the file ending with the last blob. No holes, no overlaps, no trailing bytes.
    /// Returns the gaps between them, whose bytes [`PaddingCheck::run`] checks are zero.
    fn check_layout(&self) -> Result<Vec<(u64, u64)>> {
        let data_start = self.header.data_start();
        // With an embedded signature, the data section ends where the trailer begins.
        let file_len = self.content_len();
        let mut gaps: Vec<(u64, u64)> = vec![(HEADER_LEN + self.manifest_len, data_start)];
        let mut expected = 0u64;
        let mut end_of_data = data_start;
        for (owner, e) in self.manifest.blobs() {
            if e.offset != expected {
                return Err(owner.layout_error(format!(
                    "offset {} should be {expected} (blobs are laid out in order: stored arrays, then packs)",
                    e.offset
                )));
            }
            let end = e
                .offset
                .checked_add(e.length)
                .ok_or_else(|| owner.layout_error("offset + length overflows"))?;
            let abs_end = data_start
                .checked_add(end)
                .filter(|x| *x <= file_len)
                .ok_or(FormatError::Truncated {
                    what: "an array blob",
                    needed: data_start.saturating_add(end),
                    available: file_len,
                })?;
            let next = align_up(end).ok_or_else(|| owner.layout_error("offset overflows"))?;
            gaps.push((abs_end, data_start.saturating_add(next)));
            expected = next;
            end_of_data = abs_end;
        }
        if end_of_data > file_len {
            // Only without blobs: each blob's end was checked against the file above.
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
        Ok(gaps
            .into_iter()
            .map(|(start, end)| (start, end.min(end_of_data)))
            .filter(|(start, end)| start < end)
            .collect())
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

    /// The length of the file without its embedded signature's trailer: the signed file's.
    pub fn content_len(&self) -> u64 {
        self.trailer.map_or(self.source.len(), |t| t.bundle_offset)
    }

    /// The embedded signature's place, if the file has one (format 1.3).
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Reads raw file bytes at `offset` (for hashing the file as it was opened: the same
    /// descriptor or mapping, so a file replaced on disk meanwhile is not read instead).
    pub fn read_raw(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.source.read_at(offset, buf, "the file")
    }

    /// The embedded signature's bytes (opaque here: `skvault-sign` parses them).
    pub fn embedded_signature(&self) -> Result<Option<Vec<u8>>> {
        let Some(t) = self.trailer else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; t.bundle_len as usize];
        self.source
            .read_at(t.bundle_offset, &mut bytes, "the embedded signature")?;
        Ok(Some(bytes))
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

    /// Absolute offset of an array's stored bytes (not for an array in a pack).
    pub fn blob_offset(&self, index: usize) -> Result<u64> {
        let blob = self
            .entry(index)?
            .stored()
            .ok_or_else(|| FormatError::layout(index, "the array is in a pack"))?;
        Ok(self.header.data_start() + blob.offset)
    }

    /// The stored bytes of an uncompressed array when the file is in memory or mapped (zero copy).
    /// The digest is not checked here: callers that skip `read_array_into` opt out of it.
    pub fn mapped_bytes(&self, index: usize) -> Option<&[u8]> {
        let b = self.manifest.arrays.get(index)?.stored()?;
        if b.codec != Codec::None {
            return None;
        }
        let start = usize::try_from(self.header.data_start() + b.offset).ok()?;
        let len = usize::try_from(b.length).ok()?;
        self.source.slice()?.get(start..start.checked_add(len)?)
    }

    /// Maps now the pages of array `index` in a mapped file, by reading one byte of each
    /// page: for a thread with time to spare, ahead of another that will read the whole array
    /// (each page fault then maps its neighbours too, which `MADV_POPULATE_READ`, page by
    /// page, does not). Nothing happens on other sources.
    pub fn prefault(&self, index: usize) {
        if self.mapped_whole().is_none() {
            return;
        }
        if let Some(bytes) = self.mapped_bytes(index) {
            let touched = bytes.iter().step_by(4096).fold(0u8, |a, b| a ^ b);
            std::hint::black_box(touched);
        }
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
        match &e.placement {
            Placement::Stored(blob) => self
                .decode_blob(
                    blob,
                    &e.dtype,
                    &[e.raw_length / e.dtype.itemsize().max(1)],
                    dst,
                )?
                .map_err(|source| FormatError::Codec {
                    index,
                    codec: blob.codec.name(),
                    source,
                })?,
            Placement::Packed { pack, start } => {
                let raw = self.pack_raw(*pack, index)?;
                let src = usize::try_from(*start)
                    .ok()
                    .and_then(|s| raw.get(s..s.checked_add(dst.len())?))
                    .ok_or_else(|| FormatError::layout(index, "outside its pack"))?;
                dst.copy_from_slice(src);
            }
        }
        if verify && digest(dst) != e.digest {
            return Err(FormatError::DigestMismatch { index });
        }
        Ok(())
    }

    /// The raw bytes of pack `p`, decoded on first use; `index` is the array asking, which a
    /// codec error names.
    fn pack_raw(&self, p: usize, index: usize) -> Result<&[u8]> {
        let (Some(pack), Some(cell)) = (self.manifest.packs.get(p), self.packs.get(p)) else {
            return Err(FormatError::layout(index, "no such pack"));
        };
        let decoded = cell.get_or_init(|| {
            let dtype = pack
                .members
                .first()
                .and_then(|i| self.manifest.arrays.get(*i))
                .map(|e| &e.dtype)
                .ok_or(DecodeError::EmptyPack)?;
            let len =
                usize::try_from(pack.blob.raw_length).map_err(|_| DecodeError::PackTooLarge)?;
            let members: Vec<u64> = pack
                .members
                .iter()
                .filter_map(|i| self.manifest.arrays.get(*i))
                .map(|e| e.raw_length / e.dtype.itemsize().max(1))
                .collect();
            let mut raw = vec![0u8; len];
            match self.decode_blob(&pack.blob, dtype, &members, &mut raw) {
                Ok(Ok(())) => Ok(raw),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(DecodeError::Read(Box::new(e))),
            }
            .map_err(Arc::new)
        });
        decoded.as_deref().map_err(|source| FormatError::Codec {
            index,
            codec: pack.blob.codec.name(),
            source: DecodeError::InPack {
                pack: p,
                source: Arc::clone(source),
            },
        })
    }

    /// Decodes a blob into `dst` (its raw length): reads the stored bytes, undoes the codec and
    /// the filter (whose records are of `dtype`, in arrays of `members` elements each: the row
    /// index of the columns filter restarts with each). Reading errors come back as errors,
    /// corrupt data as a `DecodeError` for the caller to attribute.
    fn decode_blob(
        &self,
        blob: &Blob,
        dtype: &DType,
        members: &[u64],
        dst: &mut [u8],
    ) -> Result<std::result::Result<(), DecodeError>> {
        let offset = self.header.data_start() + blob.offset;
        if blob.codec == Codec::None {
            self.source.read_at(offset, dst, "an array blob")?;
            return Ok(Ok(()));
        }
        let stored = self.stored_bytes(blob, offset)?;
        Ok(match blob.filter {
            Filter::None => blob.codec.decode_exact(&stored, dst),
            Filter::Fields => {
                let mut columns = vec![0u8; dst.len()];
                blob.codec
                    .decode_exact(&stored, &mut columns)
                    .and_then(|()| {
                        let itemsize = usize::try_from(dtype.itemsize()).unwrap_or(0);
                        let joined = dtype
                            .field_segments()
                            .is_some_and(|segs| split_fields(&columns, dst, itemsize, &segs, true));
                        joined.then_some(()).ok_or(DecodeError::FilterMismatch)
                    })
            }
            Filter::Columns => {
                let itemsize = usize::try_from(dtype.itemsize()).unwrap_or(0);
                // Checked when the manifest was read; again here, since decoding trusts it.
                let segs = blob
                    .check_columns(dtype)
                    .map_err(|message| FormatError::manifest("/arrays", message))?;
                let filtered = members
                    .iter()
                    .try_fold(0u64, |a, m| a.checked_add(*m))
                    .and_then(|n| crate::columns::filtered_len(&segs, n))
                    .and_then(|n| usize::try_from(n).ok());
                match filtered {
                    None => Err(DecodeError::FilterMismatch),
                    Some(n) => {
                        let mut columns = vec![0u8; n];
                        blob.codec
                            .decode_exact(&stored, &mut columns)
                            .and_then(|()| {
                                crate::columns::decode(&columns, dst, itemsize, &segs, members)
                            })
                    }
                }
            }
        })
    }

    fn stored_bytes(&self, blob: &Blob, offset: u64) -> Result<std::borrow::Cow<'_, [u8]>> {
        let truncated = || FormatError::Truncated {
            what: "an array blob",
            needed: offset.saturating_add(blob.length),
            available: self.source.len(),
        };
        let len = usize::try_from(blob.length).map_err(|_| truncated())?;
        if let Some(s) = self.source.slice() {
            let start = usize::try_from(offset).map_err(|_| truncated())?;
            return s
                .get(start..start.saturating_add(len))
                .map(std::borrow::Cow::Borrowed)
                .ok_or_else(truncated);
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
        let results: Vec<Result<()>> = crate::threads::install(|| {
            (0..self.manifest.arrays.len())
                .into_par_iter()
                .map(|i| self.verify_array(i))
                .collect()
        });
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
