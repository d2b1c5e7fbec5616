//! The writer: object tree + array bytes -> `.skv` bytes, deterministic and atomic.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::codec::{split_fields, Codec, Filter};
use crate::dtype::DType;
use crate::error::{FormatError, Result};
use crate::manifest::{
    align_up, ArrayEntry, Header, Manifest, Order, FLAG_MANIFEST_ZSTD, FORMAT_MAJOR, FORMAT_MINOR,
};
use crate::node::Node;

/// Arrays smaller than this are never compressed: the codec header would eat the gain.
pub const MIN_COMPRESS_LEN: usize = 256;
/// Structured arrays smaller than this are compressed column by column in a single zstd frame,
/// larger ones with one frame per column.
const ONE_FRAME_BELOW: usize = 64 << 10;
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
        hasher.update_rayon(data);
    } else {
        hasher.update(data);
    }
    *hasher.finalize().as_bytes()
}

/// A blob ready to be written: borrowed raw bytes, or owned compressed bytes.
enum Blob<'a> {
    Raw(&'a [u8]),
    Packed(Vec<u8>),
}

impl Blob<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Blob::Raw(b) => b,
            Blob::Packed(v) => v,
        }
    }
}

/// A file laid out in memory except for the raw blobs, which stay borrowed.
pub struct Prepared<'a> {
    header: [u8; 64],
    manifest: Vec<u8>,
    blobs: Vec<Blob<'a>>,
    data_start: u64,
    total_len: u64,
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
        const ZEROS: [u8; 64] = [0; 64];
        w.write_all(&self.header)?;
        w.write_all(&self.manifest)?;
        let mut pos = 64 + self.manifest.len() as u64;
        for blob in &self.blobs {
            let start = align_up(pos).unwrap_or(pos);
            let pad = (start - pos) as usize;
            w.write_all(ZEROS.get(..pad).unwrap_or(&[]))?;
            w.write_all(blob.bytes())?;
            pos = start + blob.bytes().len() as u64;
            progress(pos);
        }
        let end = align_up(pos).unwrap_or(pos).max(self.data_start);
        if self.blobs.is_empty() {
            w.write_all(ZEROS.get(..(end - pos) as usize).unwrap_or(&[]))?;
        }
        Ok(())
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
        crate::atomic::write_atomic(path, |w| {
            let mut w = w;
            self.write_to(&mut w, progress)
        })
        .map_err(|f| FormatError::io(f.path, f.source))
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
    for (i, a) in arrays.iter().enumerate() {
        // Round-trip the dtype through its JSON form: the writer accepts exactly what a reader will.
        DType::from_json(&a.dtype.to_json(), &format!("/arrays/{i}/dtype"))?;
        let expected = ArrayEntry::count(&a.shape).and_then(|n| n.checked_mul(a.dtype.itemsize()));
        if expected != Some(a.data.len() as u64) {
            return Err(FormatError::Unsupported {
                message: format!(
                    "array {i}: {} bytes do not match shape {:?}",
                    a.data.len(),
                    a.shape
                ),
            });
        }
    }
    let encode = |a: &ArrayInput<'a>| -> Result<(Blob<'a>, Codec, Filter, [u8; 32])> {
        let d = digest(a.data);
        if options.codec == Codec::None || a.data.len() < MIN_COMPRESS_LEN {
            return Ok((Blob::Raw(a.data), Codec::None, Filter::None, d));
        }
        // Structured records (tree nodes) are split into columns first: see `Filter`.
        let itemsize = usize::try_from(a.dtype.itemsize()).unwrap_or(0);
        let segs = a
            .dtype
            .field_segments()
            .filter(|_| options.codec == Codec::Zstd);
        let columns = segs.as_ref().and_then(|segs| {
            let mut cols = vec![0u8; a.data.len()];
            split_fields(a.data, &mut cols, itemsize, segs, false).then_some(cols)
        });
        let (packed, filter) = match (columns, segs) {
            // A small array's columns go in one frame: per-frame headers and tables would
            // cost more than they gain (64 HistGradientBoosting node arrays of 3.4 kB:
            // 113 kB in one frame each, 126 kB with a frame per column, at level 3).
            (Some(cols), Some(_)) if cols.len() < ONE_FRAME_BELOW => {
                (options.codec.compress(&cols, level)?, Filter::Fields)
            }
            // zstd gets one frame per column (a zstd stream may hold several frames): each
            // column then has its own entropy tables, which is where the gain comes from.
            (Some(cols), Some(segs)) => {
                let n = a.data.len() / itemsize.max(1);
                let mut packed = Vec::new();
                let mut start = 0;
                for (_, width) in segs {
                    let column = cols.get(start..start + width * n).unwrap_or(&[]);
                    packed.extend_from_slice(&options.codec.compress(column, level)?);
                    start += width * n;
                }
                (packed, Filter::Fields)
            }
            // lz4 compresses the column stream worse than the records (measured): no filter.
            _ => (options.codec.compress(a.data, level)?, Filter::None),
        };
        Ok(if packed.len() < a.data.len() {
            (Blob::Packed(packed), options.codec, filter, d)
        } else {
            (Blob::Raw(a.data), Codec::None, Filter::None, d)
        })
    };
    let total: usize = arrays.iter().map(|a| a.data.len()).sum();
    let encoded: Vec<(Blob<'a>, Codec, Filter, [u8; 32])> = if worth_threads(total) {
        arrays.par_iter().map(encode).collect::<Result<_>>()?
    } else {
        arrays.iter().map(encode).collect::<Result<_>>()?
    };
    let mut entries = Vec::with_capacity(arrays.len());
    let mut offset = 0u64;
    for (a, (blob, codec, filter, digest)) in arrays.iter().zip(&encoded) {
        let length = blob.bytes().len() as u64;
        entries.push(ArrayEntry {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            offset,
            length,
            codec: *codec,
            filter: *filter,
            raw_length: a.data.len() as u64,
            digest: *digest,
        });
        offset = align_up(offset + length).ok_or_else(|| FormatError::Unsupported {
            message: "arrays too large".into(),
        })?;
    }
    let manifest = Manifest {
        writer: format!("skvault {}", env!("CARGO_PKG_VERSION")),
        root,
        validation,
        arrays: entries,
        metadata,
    };
    let text = manifest.to_bytes()?;
    // With zstd asked for, the manifest is compressed too when that makes it smaller (format
    // 1.1): for models of many small arrays it is most of the file.
    let packed = match options.codec {
        Codec::Zstd => Some(options.codec.compress(&text, level)?).filter(|p| p.len() < text.len()),
        _ => None,
    };
    let (manifest_bytes, minor, flags, manifest_raw_len) = match packed {
        Some(p) => (p, 1, FLAG_MANIFEST_ZSTD, text.len() as u64),
        None => (text, 0, 0, 0),
    };
    debug_assert!(minor <= FORMAT_MINOR);
    let header = Header {
        major: FORMAT_MAJOR,
        minor,
        flags,
        manifest_len: manifest_bytes.len() as u64,
        manifest_digest: *blake3::hash(&manifest_bytes).as_bytes(),
        manifest_raw_len,
    };
    let data_start = header.data_start();
    let blobs_end = manifest.arrays.last().map_or(0, |e| e.offset + e.length);
    Ok(Prepared {
        header: header.to_bytes(),
        manifest: manifest_bytes,
        blobs: encoded.into_iter().map(|(b, _, _, _)| b).collect(),
        data_start,
        total_len: data_start + blobs_end,
    })
}
