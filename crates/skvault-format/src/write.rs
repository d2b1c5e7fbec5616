//! The writer: object tree + array bytes -> `.skv` bytes, deterministic and atomic.

use std::io::{IoSlice, Write};
use std::path::Path;

use rayon::prelude::*;

use crate::codec::{split_fields, Codec, Filter};
use crate::columns::{self, Column};
use crate::dtype::DType;
use crate::error::{FormatError, Result};
use crate::manifest::{
    align_up, ArrayEntry, Blob, Header, Manifest, Order, Pack, Placement, COLUMNS_MINOR,
    FLAG_COLUMNS, FLAG_MANIFEST_ZSTD, FORMAT_MAJOR, FORMAT_MINOR,
};
use crate::node::Node;

/// Arrays smaller than this are never compressed: the codec header would eat the gain.
pub const MIN_COMPRESS_LEN: usize = 256;

/// The most bytes written between two calls of a write's progress callback.
pub const PROGRESS_CHUNK: usize = 4 << 20;

/// Structured arrays smaller than this are compressed column by column in a single zstd frame,
/// larger ones with one frame per column.
const ONE_FRAME_BELOW: usize = 64 << 10;
/// With compression, arrays smaller than this go into packs (format 1.2), one per dtype...
/// A forest's trees (node arrays of a few hundred kilobytes each) then share packs: a few
/// trees compress 10% smaller together than one by one, since they are alike.
pub const PACK_BELOW: usize = 1 << 20;
/// ...of at most this many raw bytes, so that large models still decode packs in parallel.
pub const PACK_MAX: usize = 4 << 20;
/// Above this size a blob is hashed with several threads.
const PARALLEL_HASH_LEN: usize = 1 << 20;

/// One array to write: its layout and its raw bytes in `order`.
pub struct ArrayInput<'a> {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub order: Order,
    pub data: &'a [u8],
}

/// How to compress arrays.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub codec: Codec,
    pub level: Option<i32>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            codec: Codec::None,
            level: None,
        }
    }
}

/// Whether work on `bytes` bytes of arrays is worth spreading over rayon's threads. Below
/// this, waking the pool costs more than it saves, and on a busy machine far more: a
/// three-array pipeline took 15 ms to load in parallel against under 1 ms on one thread.
pub fn worth_threads(bytes: usize) -> bool {
    bytes >= PARALLEL_HASH_LEN
}

pub fn digest(data: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    if data.len() >= PARALLEL_HASH_LEN {
        crate::threads::install(|| hasher.update_rayon(data));
    } else {
        hasher.update(data);
    }
    *hasher.finalize().as_bytes()
}

/// A blob's bytes ready to be written: borrowed raw bytes, or owned ones (compressed, or a
/// pack's concatenation).
enum Bytes<'a> {
    Raw(&'a [u8]),
    Owned(Vec<u8>),
}

impl Bytes<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Bytes::Raw(b) => b,
            Bytes::Owned(v) => v,
        }
    }
}

/// A blob's bytes with the codec, filter and column transforms that produced them.
type Encoded<'a> = (Bytes<'a>, Codec, Filter, Vec<Column>);

/// A blob's raw bytes before encoding: the dtype of its records, the bytes, and the element
/// counts of the arrays in it (one for an array stored on its own, one per member of a pack).
type Unit<'a, 'b> = (&'b DType, Bytes<'a>, Vec<u64>);

/// A file laid out in memory except for the raw blobs, which stay borrowed.
pub struct Prepared<'a> {
    header: [u8; 64],
    manifest: Vec<u8>,
    blobs: Vec<Bytes<'a>>,
    data_start: u64,
    total_len: u64,
    /// The digests not computed yet, when `header` and `manifest` are placeholders.
    pending: Option<Pending<'a>>,
}

/// Digests left to compute while the file is written. A manifest stored uncompressed has
/// each digest at a fixed place (64 hex digits), so the file's layout is known without them:
/// the arrays are hashed on a second thread while the first writes them, and the header and
/// manifest, completed, are written over their placeholders last.
struct Pending<'a> {
    /// Each array's raw bytes, in table order.
    arrays: Vec<&'a [u8]>,
    /// Where each array's digest goes in the manifest text.
    digest_at: Vec<usize>,
    /// The header but for the manifest's digest.
    header: Header,
}

impl Pending<'_> {
    /// Every digest, on rayon's threads when that pays.
    fn digests(&self) -> Vec<[u8; 32]> {
        let total = self.arrays.iter().map(|a| a.len()).sum();
        if worth_threads(total) {
            crate::threads::install(|| self.arrays.par_iter().map(|a| digest(a)).collect())
        } else {
            self.arrays.iter().map(|a| digest(a)).collect()
        }
    }

    /// The header and manifest with `digests` in their places.
    fn complete(
        &self,
        manifest: &[u8],
        digests: &[[u8; 32]],
    ) -> std::io::Result<([u8; 64], Vec<u8>)> {
        if digests.len() != self.digest_at.len() {
            return Err(std::io::Error::other("internal error: a digest is missing"));
        }
        let mut text = manifest.to_vec();
        for (&at, d) in self.digest_at.iter().zip(digests) {
            let slot = text.get_mut(at..at + 64).ok_or_else(|| {
                std::io::Error::other("internal error: a digest outside the manifest")
            })?;
            crate::manifest_text::write_hex(slot, d);
        }
        let mut header = self.header.clone();
        header.manifest_digest = *blake3::hash(&text).as_bytes();
        Ok((header.to_bytes(), text))
    }
}

impl Prepared<'_> {
    pub fn len(&self) -> u64 {
        self.total_len
    }

    pub fn is_empty(&self) -> bool {
        self.total_len == 0
    }

    /// Writes the whole file to `w`, calling `progress` with the bytes written so far.
    pub fn write_to(
        &self,
        w: &mut impl Write,
        progress: &mut dyn FnMut(u64),
    ) -> std::io::Result<()> {
        self.write_to_checked(w, &mut |n| {
            progress(n);
            Ok(())
        })
    }

    /// Like [`Prepared::write_to`], but `progress` may stop the write by returning an error,
    /// which is returned as is (the command line stops this way on Ctrl-C). `progress` is
    /// called once the header and manifest are written, then at least every
    /// [`PROGRESS_CHUNK`] bytes, and last with the file's length.
    pub fn write_to_checked(
        &self,
        w: &mut impl Write,
        progress: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match &self.pending {
            None => self.write_parts(w, &self.header, &self.manifest, progress)?,
            Some(pending) => {
                let (header, manifest) = pending.complete(&self.manifest, &pending.digests())?;
                self.write_parts(w, &header, &manifest, progress)?;
            }
        }
        progress(self.total_len)
    }

    /// Writes `header`, `manifest` and the blobs (every report of `write_to_checked` but the
    /// last).
    fn write_parts(
        &self,
        w: &mut impl Write,
        header: &[u8],
        manifest: &[u8],
        progress: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        static ZEROS: [u8; 64] = [0; 64];
        // Gathered into vectored writes of up to a progress chunk each, straight from the
        // arrays' own buffers: a forest's thousands of node arrays are not copied into the
        // atomic writer's buffer first (that buffer is bypassed by writes larger than it).
        let mut batch = Gather::default();
        batch.push(header);
        batch.push(manifest);
        let mut pos = 64 + manifest.len() as u64;
        // A first report as soon as the file has begun (a bar starts, a stop is heard).
        batch.write(w)?;
        progress(pos)?;
        for blob in &self.blobs {
            let start = align_up(pos).unwrap_or(pos);
            let pad = (start - pos) as usize;
            batch.push(ZEROS.get(..pad).unwrap_or(&[]));
            pos = start;
            // In chunks, so that a bar moves and a stop is noticed within one large array.
            for chunk in blob.bytes().chunks(PROGRESS_CHUNK) {
                if batch.len + chunk.len() > PROGRESS_CHUNK {
                    batch.write(w)?;
                    progress(pos)?;
                }
                batch.push(chunk);
                pos += chunk.len() as u64;
            }
        }
        let end = align_up(pos).unwrap_or(pos).max(self.data_start);
        if self.blobs.is_empty() {
            batch.push(ZEROS.get(..(end - pos) as usize).unwrap_or(&[]));
        }
        batch.write(w)
    }

    /// Writes the file into an atomic write's temporary file. With digests pending, a second
    /// thread hashes the arrays while this one writes them after placeholders of the header
    /// and manifest, which are written over last: the hashing costs no time of its own
    /// when the writing takes longer.
    fn write_temp(
        &self,
        tmp: &mut crate::atomic::TempFile<'_>,
        progress: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        tmp.reserve(self.total_len);
        let Some(pending) = &self.pending else {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
            self.write_parts(&mut w, &self.header, &self.manifest, progress)?;
            w.flush()?;
            return progress(self.total_len);
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (written, digests) = std::thread::scope(|scope| {
            let hashing = std::thread::Builder::new().spawn_scoped(scope, || {
                let mut digests = Vec::with_capacity(pending.arrays.len());
                for a in &pending.arrays {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    // On this thread alone: `digest` spreads a large array over rayon's
                    // threads, onto the core that writes.
                    let mut hasher = blake3::Hasher::new();
                    hasher.update(a);
                    digests.push(*hasher.finalize().as_bytes());
                }
                digests
            });
            let written = self.write_parts(tmp, &self.header, &self.manifest, progress);
            if written.is_err() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            match hashing {
                Ok(thread) => (written, thread.join()),
                // No second thread to be had: hashed here, after the writing.
                Err(_) if written.is_err() => (written, Ok(Vec::new())),
                Err(_) => (written, Ok(pending.digests())),
            }
        });
        written?;
        let digests = digests
            .map_err(|_| std::io::Error::other("internal error: the hashing thread failed"))?;
        let (header, manifest) = pending.complete(&self.manifest, &digests)?;
        tmp.write_all_at(&header, 0)?;
        tmp.write_all_at(&manifest, 64)?;
        progress(self.total_len)
    }

    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.total_len).unwrap_or(0));
        self.write_to(&mut out, &mut |_| {})
            .map_err(|source| FormatError::io("<memory>", source))?;
        Ok(out)
    }

    /// Writes atomically: a temporary file in the same folder, fsync, rename, fsync of the folder.
    /// On any error the temporary file is removed and `path` is untouched.
    pub fn write_file(&self, path: &Path, progress: &mut dyn FnMut(u64)) -> Result<()> {
        self.write_file_checked(path, &mut |n| {
            progress(n);
            Ok(())
        })
    }

    /// Like [`Prepared::write_file`], but `progress` may stop the write by returning an
    /// error (see [`Prepared::write_to_checked`]): the temporary file is removed and `path`
    /// is left as it was.
    pub fn write_file_checked(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> Result<()> {
        self.write_file_with(path, true, progress)
    }

    /// [`Prepared::write_file_checked`], durable or not (see
    /// [`crate::atomic::write_atomic_with`]: not durable skips the fsyncs, keeps the rename).
    pub fn write_file_with(
        &self,
        path: &Path,
        durable: bool,
        progress: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> Result<()> {
        crate::atomic::write_atomic_file(path, durable, |tmp| self.write_temp(tmp, progress))
            .map_err(|f| FormatError::io(f.path, f.source))
    }
}

/// Slices of the file waiting for one vectored write.
#[derive(Default)]
struct Gather<'b> {
    slices: Vec<IoSlice<'b>>,
    len: usize,
}

impl<'b> Gather<'b> {
    fn push(&mut self, bytes: &'b [u8]) {
        if !bytes.is_empty() {
            self.slices.push(IoSlice::new(bytes));
            self.len += bytes.len();
        }
    }

    /// Writes every slice whole (a vectored write may take only part of them), and empties
    /// the batch.
    fn write(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        let mut rest = self.slices.as_mut_slice();
        while !rest.is_empty() {
            match w.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.slices.clear();
        self.len = 0;
        Ok(())
    }
}

/// Lays out a file: checks every array against its dtype and shape, compresses and hashes the blobs
/// (in parallel), and serializes the manifest.
pub fn prepare<'a>(
    root: Node,
    arrays: &[ArrayInput<'a>],
    metadata: serde_json::Map<String, serde_json::Value>,
    options: WriteOptions,
) -> Result<Prepared<'a>> {
    prepare_with_validation(root, None, arrays, metadata, options)
}

/// Like `prepare`, with a validation tree (samples and expected outputs) beside the root.
pub fn prepare_with_validation<'a>(
    root: Node,
    validation: Option<Node>,
    arrays: &[ArrayInput<'a>],
    metadata: serde_json::Map<String, serde_json::Value>,
    options: WriteOptions,
) -> Result<Prepared<'a>> {
    let level = options.codec.check_level(options.level)?;
    check_arrays(arrays)?;
    let planned = plan_packs(arrays, options.codec);
    let in_pack = pack_of(&planned, arrays.len());
    let units = blob_units(arrays, &planned, &in_pack);
    let raw_lengths: Vec<u64> = units
        .iter()
        .map(|(_, d, _)| d.bytes().len() as u64)
        .collect();
    // The manifest is compressed only with zstd; otherwise the digests have fixed places in
    // it and are left for the write to compute, beside it (`Pending`).
    let total: usize = arrays.iter().map(|a| a.data.len()).sum();
    let defer = options.codec != Codec::Zstd && worth_threads(total);
    let (encoded, digests) = if defer {
        let encoded = crate::threads::install(|| {
            units
                .into_par_iter()
                .map(|(dtype, data, members)| encode(dtype, data, &members, options.codec, level))
                .collect::<Result<Vec<_>>>()
        })?;
        (encoded, vec![[0u8; 32]; arrays.len()])
    } else {
        encode_and_hash(arrays, units, options.codec, level)?
    };
    let layout = lay_out(encoded.iter().zip(raw_lengths).map(
        |((b, codec, filter, columns), raw)| {
            (
                b.bytes().len() as u64,
                *codec,
                *filter,
                raw,
                columns.clone(),
            )
        },
    ))?;
    let (entries, packs) = array_table(arrays, digests, &in_pack, &layout, planned.len())?;
    let manifest = Manifest {
        writer: format!("skvault {}", env!("CARGO_PKG_VERSION")),
        root,
        validation,
        arrays: entries,
        packs,
        metadata,
    };
    let (header, manifest_bytes, digest_at) = head(&manifest, options.codec, level, defer)?;
    let data_start = header.data_start();
    let blobs_end = manifest
        .blobs()
        .last()
        .map_or(0, |(_, b)| b.offset + b.length);
    let pending = match digest_at {
        Some(digest_at) if defer => Some(Pending {
            arrays: arrays.iter().map(|a| a.data).collect(),
            digest_at,
            header: header.clone(),
        }),
        _ => None,
    };
    drop_aside(manifest);
    Ok(Prepared {
        header: header.to_bytes(),
        manifest: manifest_bytes,
        blobs: encoded.into_iter().map(|(b, _, _, _)| b).collect(),
        data_start,
        total_len: data_start + blobs_end,
        pending,
    })
}

/// Manifests of at least this many arrays are dropped on the pool (see [`drop_aside`]).
const DROP_ASIDE_FROM: usize = 256;

/// Drops a written manifest: a large one on a thread of the pool, since freeing a forest's
/// tree of nodes (thousands of small allocations, a twentieth of a save's own work) is
/// needed by nothing that follows the save.
fn drop_aside(manifest: Manifest) {
    if manifest.arrays.len() >= DROP_ASIDE_FROM {
        crate::threads::spawn(move || drop(manifest));
    }
}

/// Checks every array against its dtype and shape.
fn check_arrays(arrays: &[ArrayInput]) -> Result<()> {
    // A forest's thousand arrays have two dtypes: each is checked once.
    let mut checked: Vec<&DType> = Vec::new();
    for (i, a) in arrays.iter().enumerate() {
        // Round-trip the dtype through its JSON form: the writer accepts exactly what a reader will.
        if !checked.contains(&&a.dtype) {
            DType::from_json(&a.dtype.to_json(), &format!("/arrays/{i}/dtype"))?;
            if checked.len() < 16 {
                checked.push(&a.dtype);
            }
        }
        let expected = ArrayEntry::count(&a.shape).and_then(|n| n.checked_mul(a.dtype.itemsize()));
        if expected != Some(a.data.len() as u64) {
            return Err(FormatError::ArrayData {
                index: i,
                length: a.data.len() as u64,
                shape: a.shape.clone(),
            });
        }
    }
    Ok(())
}

/// The pack of each of `n` arrays, if `planned` puts it in one.
fn pack_of(planned: &[Vec<usize>], n: usize) -> Vec<Option<usize>> {
    let mut in_pack = vec![None; n];
    for (p, members) in planned.iter().enumerate() {
        for &i in members {
            in_pack[i] = Some(p);
        }
    }
    in_pack
}

/// The blobs' raw bytes in file order (FORMAT.md 2.4): the arrays stored on their own, then
/// the packs (their members' bytes concatenated), each with the dtype of its records.
fn blob_units<'a, 'b>(
    arrays: &'b [ArrayInput<'a>],
    planned: &[Vec<usize>],
    in_pack: &[Option<usize>],
) -> Vec<Unit<'a, 'b>> {
    let elements = |a: &ArrayInput| (a.data.len() as u64) / a.dtype.itemsize().max(1);
    arrays
        .iter()
        .zip(in_pack)
        .filter(|(_, p)| p.is_none())
        .map(|(a, _)| (&a.dtype, Bytes::Raw(a.data), vec![elements(a)]))
        .chain(planned.iter().map(|members| {
            let size = members.iter().map(|&i| arrays[i].data.len()).sum();
            let mut joined: Vec<u8> = Vec::with_capacity(size);
            for &i in members {
                joined.extend_from_slice(arrays[i].data);
            }
            let counts = members.iter().map(|&i| elements(&arrays[i])).collect();
            (&arrays[members[0]].dtype, Bytes::Owned(joined), counts)
        }))
        .collect()
}

/// Encodes the blobs and hashes the arrays' raw bytes, the two side by side on rayon's
/// threads when the arrays are large enough for that to pay.
fn encode_and_hash<'a>(
    arrays: &[ArrayInput<'a>],
    units: Vec<Unit<'a, '_>>,
    codec: Codec,
    level: i32,
) -> Result<(Vec<Encoded<'a>>, Vec<[u8; 32]>)> {
    let encode_unit =
        |(dtype, data, members): Unit<'a, '_>| encode(dtype, data, &members, codec, level);
    let total: usize = arrays.iter().map(|a| a.data.len()).sum();
    let (encoded, digests): (Result<Vec<Encoded<'a>>>, Vec<[u8; 32]>) = if worth_threads(total) {
        crate::threads::install(|| {
            rayon::join(
                || units.into_par_iter().map(encode_unit).collect(),
                || arrays.par_iter().map(|a| digest(a.data)).collect(),
            )
        })
    } else {
        (
            units.into_iter().map(encode_unit).collect(),
            arrays.iter().map(|a| digest(a.data)).collect(),
        )
    };
    Ok((encoded?, digests))
}

/// Each blob's place, from its `(length, codec, filter, raw_length, columns)`: the next
/// 64-byte boundary after the previous one.
fn lay_out(
    blobs: impl Iterator<Item = (u64, Codec, Filter, u64, Vec<Column>)>,
) -> Result<Vec<Blob>> {
    let mut layout = Vec::new();
    let mut next = 0u64;
    for (length, codec, filter, raw_length, columns) in blobs {
        layout.push(Blob {
            offset: next,
            length,
            codec,
            filter,
            raw_length,
            columns,
        });
        next = next
            .checked_add(length)
            .and_then(align_up)
            .ok_or(FormatError::ArraysTooLarge)?;
    }
    Ok(layout)
}

/// The array table and the packs, from the blobs' `layout` (those of the arrays stored on
/// their own, then the `n_packs` packs'), checked as a reader checks them.
fn array_table(
    arrays: &[ArrayInput],
    digests: Vec<[u8; 32]>,
    in_pack: &[Option<usize>],
    layout: &[Blob],
    n_packs: usize,
) -> Result<(Vec<ArrayEntry>, Vec<Pack>)> {
    let (stored_layout, pack_layout) = layout.split_at(layout.len() - n_packs);
    let mut stored_layout = stored_layout.iter();
    let mut entries = Vec::with_capacity(arrays.len());
    for ((a, digest), pack) in arrays.iter().zip(digests).zip(in_pack) {
        let placement = match pack {
            // Starts within the pack are set by `Pack::collect` below.
            Some(p) => Placement::Packed { pack: *p, start: 0 },
            // `blob_units` made one blob for each array outside packs, in this order.
            None => {
                Placement::Stored(stored_layout.next().cloned().ok_or(FormatError::Internal {
                    invariant: "fewer blobs than arrays",
                })?)
            }
        };
        entries.push(ArrayEntry {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            raw_length: a.data.len() as u64,
            digest,
            placement,
        });
    }
    let mut packs: Vec<Pack> = pack_layout
        .iter()
        .map(|blob| Pack {
            blob: blob.clone(),
            members: Vec::new(),
        })
        .collect();
    // The reader's own assignment of members and starts, and its checks of the result.
    Pack::collect(&mut packs, &mut entries)?;
    Ok((entries, packs))
}

/// The header and the manifest's stored bytes, with where each array's digest is in them
/// when they are the manifest's text (not compressed). With zstd asked for, the manifest is
/// compressed too when that makes it smaller (format 1.1): for models of many small arrays
/// it is most of the file. With `defer` and a text manifest, the arrays' digests are
/// written into it later ([`Pending::complete`]), which hashes it then: the header's digest
/// is left zero here rather than computed over placeholders.
fn head(
    manifest: &Manifest,
    codec: Codec,
    level: i32,
    defer: bool,
) -> Result<(Header, Vec<u8>, Option<Vec<usize>>)> {
    let text = manifest.to_text()?;
    let packed = match codec {
        Codec::Zstd => {
            Some(codec.compress(&text.bytes, level)?).filter(|p| p.len() < text.bytes.len())
        }
        _ => None,
    };
    let (manifest_bytes, mut minor, mut flags, manifest_raw_len, digest_at) = match packed {
        Some(p) => (p, 1, FLAG_MANIFEST_ZSTD, text.bytes.len() as u64, None),
        None => (text.bytes, 0, 0, 0, Some(text.digest_at)),
    };
    if manifest.feature_flags() != 0 {
        minor = 2;
        flags |= manifest.feature_flags();
    }
    if flags & FLAG_COLUMNS != 0 {
        minor = COLUMNS_MINOR;
    }
    debug_assert!(minor <= FORMAT_MINOR);
    let header = Header {
        major: FORMAT_MAJOR,
        minor,
        flags,
        manifest_len: manifest_bytes.len() as u64,
        manifest_digest: if defer && digest_at.is_some() {
            [0; 32]
        } else {
            *blake3::hash(&manifest_bytes).as_bytes()
        },
        manifest_raw_len,
    };
    Ok((header, manifest_bytes, digest_at))
}

/// Which arrays go into packs, as lists of array indices in table order: with a codec, the
/// arrays under `PACK_BELOW` bytes, grouped by dtype (in order of first appearance) into packs
/// of at most `PACK_MAX` bytes. A dtype with one such array leaves it on its own.
fn plan_packs(arrays: &[ArrayInput], codec: Codec) -> Vec<Vec<usize>> {
    if codec == Codec::None {
        return Vec::new();
    }
    let mut groups: Vec<(&DType, Vec<usize>)> = Vec::new();
    for (i, a) in arrays.iter().enumerate() {
        if a.data.len() >= PACK_BELOW {
            continue;
        }
        match groups.iter_mut().find(|(d, _)| **d == a.dtype) {
            Some((_, members)) => members.push(i),
            None => groups.push((&a.dtype, vec![i])),
        }
    }
    let mut packs = Vec::new();
    for (_, members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        let mut pack: Vec<usize> = Vec::new();
        let mut size = 0;
        for i in members {
            let len = arrays[i].data.len();
            if !pack.is_empty() && size + len > PACK_MAX {
                packs.push(std::mem::take(&mut pack));
                size = 0;
            }
            pack.push(i);
            size += len;
        }
        packs.push(pack);
    }
    packs
}

/// Encodes one blob's raw bytes (an array's, or a pack's whose records are all of `dtype`, in
/// arrays of `members` elements): compressed when asked for and smaller, structured records
/// split into columns first (see `Filter`), with integer columns transformed where that pays
/// (format 1.4, [`columns`]), otherwise stored as they are.
fn encode<'a>(
    dtype: &DType,
    data: Bytes<'a>,
    members: &[u64],
    codec: Codec,
    level: i32,
) -> Result<Encoded<'a>> {
    let raw = data.bytes();
    if codec == Codec::None || raw.len() < MIN_COMPRESS_LEN {
        return Ok((data, Codec::None, Filter::None, Vec::new()));
    }
    let itemsize = usize::try_from(dtype.itemsize()).unwrap_or(0);
    let segs = dtype.field_segments().filter(|_| codec == Codec::Zstd);
    // (filtered data, bytes per element of each column, filter, column transforms)
    let split = segs.as_ref().and_then(|segs| {
        let chosen = columns::choose(dtype, raw, members);
        let planned = columns::plan(dtype, &chosen)
            .ok()
            .filter(|_| !chosen.is_empty());
        match planned {
            Some(plan) => {
                let filtered = columns::encode(raw, itemsize, &plan, members)?;
                let widths = plan.iter().map(|s| s.stored).collect::<Vec<_>>();
                Some((filtered, widths, Filter::Columns, chosen))
            }
            None => {
                let mut cols = vec![0u8; raw.len()];
                split_fields(raw, &mut cols, itemsize, segs, false).then_some(())?;
                let widths = segs.iter().map(|(_, w)| *w).collect::<Vec<_>>();
                Some((cols, widths, Filter::Fields, Vec::new()))
            }
        }
    });
    let (packed, filter, transforms) = match split {
        // Small data's columns go in one frame: per-frame headers and tables would cost more
        // than they gain (a 3.4 kB HistGradientBoosting node array: 10% smaller in one frame).
        // The transforms' JSON in the manifest can cost more than they save on a few records:
        // they are kept only if the blob shrinks by more than that.
        Some((cols, _, Filter::Columns, transforms)) if raw.len() < ONE_FRAME_BELOW => {
            let with = codec.compress(&cols, level)?;
            let mut plain = vec![0u8; raw.len()];
            let segs = dtype.field_segments().unwrap_or_default();
            let without = match split_fields(raw, &mut plain, itemsize, &segs, false) {
                true => Some(codec.compress(&plain, level)?),
                false => None,
            };
            let cost: usize = transforms
                .iter()
                .map(|c| c.to_json().to_string().len() + 1)
                .sum();
            match without {
                Some(w) if w.len() <= with.len() + cost + "\"columns\":[],".len() => {
                    (w, Filter::Fields, Vec::new())
                }
                _ => (with, Filter::Columns, transforms),
            }
        }
        Some((cols, _, filter, transforms)) if cols.len() < ONE_FRAME_BELOW => {
            (codec.compress(&cols, level)?, filter, transforms)
        }
        // zstd gets one frame per column (a zstd stream may hold several frames): each
        // column then has its own entropy tables, which is where the gain comes from.
        Some((cols, widths, filter, transforms)) => {
            let n = raw.len() / itemsize.max(1);
            let mut packed = Vec::new();
            let mut start = 0;
            for width in widths {
                let column = cols.get(start..start + width * n).unwrap_or(&[]);
                packed.extend_from_slice(&codec.compress(column, level)?);
                start += width * n;
            }
            (packed, filter, transforms)
        }
        // lz4 compresses the column stream worse than the records (measured): no filter.
        None => (codec.compress(raw, level)?, Filter::None, Vec::new()),
    };
    Ok(if packed.len() < raw.len() {
        (Bytes::Owned(packed), codec, filter, transforms)
    } else {
        (data, Codec::None, Filter::None, Vec::new())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::manifest::MAX_JSON_DEPTH;

    fn f64_array(shape: Vec<u64>, data: &[u8]) -> ArrayInput<'_> {
        ArrayInput {
            dtype: DType::parse_scalar("<f8", "test").unwrap(),
            shape,
            order: Order::C,
            data,
        }
    }

    #[test]
    fn bytes_that_do_not_fill_the_shape_are_array_data_errors() {
        let data = [0u8; 24];
        let arrays = [f64_array(vec![2], &data[..16]), f64_array(vec![4], &data)];
        match prepare(
            Node::None,
            &arrays,
            Default::default(),
            WriteOptions::default(),
        ) {
            Err(FormatError::ArrayData {
                index: 1,
                length: 24,
                shape,
            }) => assert_eq!(shape, vec![4]),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_level_the_codec_does_not_take_is_refused_before_anything_is_encoded() {
        let options = WriteOptions {
            codec: Codec::Lz4,
            level: Some(1),
        };
        let e = prepare(Node::None, &[], Default::default(), options).err();
        assert!(
            matches!(
                e,
                Some(FormatError::CompressionLevel {
                    codec: Codec::Lz4,
                    level: 1
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_tree_deeper_than_readers_accept_is_too_deep() {
        let mut root = Node::None;
        for _ in 0..MAX_JSON_DEPTH {
            root = Node::List(vec![root]);
        }
        match prepare(root, &[], Default::default(), WriteOptions::default()) {
            Err(FormatError::TooDeep { depth, max }) => {
                assert!(depth > max && max == MAX_JSON_DEPTH)
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn blobs_past_the_last_offset_are_arrays_too_large() {
        let blob = |length| (length, Codec::None, Filter::None, length, Vec::new());
        assert_eq!(
            lay_out([blob(100), blob(1)].into_iter()).unwrap()[1].offset,
            128
        );
        let e = lay_out([blob(u64::MAX - 100), blob(1)].into_iter()).err();
        assert!(matches!(e, Some(FormatError::ArraysTooLarge)), "{e:?}");
    }

    /// A large array is written in chunks, each reported, so that a bar moves and Ctrl-C is
    /// noticed within it; the last report is the file's length.
    #[test]
    fn writing_reports_every_chunk_and_ends_at_the_length() {
        let n = 2 * PROGRESS_CHUNK + 1000;
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let arrays = [f64_array(vec![(n / 8) as u64], &data[..n / 8 * 8])];
        let prepared = prepare(
            Node::None,
            &arrays,
            Default::default(),
            WriteOptions::default(),
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        prepared
            .write_to_checked(&mut out, &mut |done| {
                seen.push(done);
                Ok(())
            })
            .unwrap();
        assert_eq!(out.len() as u64, prepared.len());
        assert_eq!(seen.last(), Some(&prepared.len()));
        assert!(seen.len() >= 4, "{seen:?}");
        // A chunk, plus the alignment padding before a blob.
        for pair in seen.windows(2) {
            assert!(pair[0] <= pair[1], "{seen:?}");
            assert!(pair[1] - pair[0] <= PROGRESS_CHUNK as u64 + 64, "{seen:?}");
        }
    }

    #[test]
    fn a_stopped_write_leaves_the_old_file_and_no_temporary() {
        let data = vec![7u8; PROGRESS_CHUNK * 2];
        let arrays = [f64_array(vec![(data.len() / 8) as u64], &data)];
        let prepared = prepare(
            Node::None,
            &arrays,
            Default::default(),
            WriteOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.skv");
        std::fs::write(&path, b"old").unwrap();
        let mut calls = 0;
        let err = prepared
            .write_file_checked(&path, &mut |_| {
                calls += 1;
                if calls == 2 {
                    Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "stop"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(err.to_string().contains("stop"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Arrays large enough for their digests to be computed while the file is written (no
    /// zstd: the manifest is stored as text): the file is byte for byte what the writer
    /// gives in memory, its digests are right, and its progress reports end at its length.
    #[test]
    fn digests_computed_while_writing_give_the_same_file() {
        let data: Vec<u8> = (0..3 * PARALLEL_HASH_LEN)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        let third = data.len() / 3 / 8 * 8;
        let arrays = [
            f64_array(vec![(third / 8) as u64], &data[..third]),
            f64_array(vec![1], &data[third..third + 8]),
            f64_array(vec![(third / 8) as u64], &data[2 * third..3 * third]),
        ];
        let root = Node::List((0..arrays.len()).map(Node::Array).collect());
        let dir = tempfile::tempdir().unwrap();
        for (codec, durable) in [
            (Codec::None, true),
            (Codec::None, false),
            (Codec::Lz4, true),
        ] {
            let options = WriteOptions { codec, level: None };
            let prepared = prepare(root.clone(), &arrays, Default::default(), options).unwrap();
            assert!(prepared.pending.is_some(), "{codec:?}");
            let in_memory = prepared.to_vec().unwrap();
            let path = dir.path().join("f.skv");
            let mut seen = Vec::new();
            prepared
                .write_file_with(&path, durable, &mut |n| {
                    seen.push(n);
                    Ok(())
                })
                .unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert!(on_disk == in_memory, "{codec:?}: the files differ");
            assert!(
                seen.len() >= 2 && seen.windows(2).all(|p| p[0] <= p[1]),
                "{seen:?}"
            );
            assert_eq!(seen.last(), Some(&prepared.len()));
            let file = crate::SkvFile::open(&path).unwrap();
            file.verify().unwrap();
            for (i, a) in arrays.iter().enumerate() {
                assert_eq!(
                    file.manifest().arrays[i].digest,
                    *blake3::hash(a.data).as_bytes()
                );
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_array_without_its_blob_is_an_internal_error() {
        let data = [0u8; 8];
        let e = array_table(&[f64_array(vec![1], &data)], vec![[0; 32]], &[None], &[], 0).err();
        assert!(matches!(e, Some(FormatError::Internal { .. })), "{e:?}");
    }
}
