//! The manifest: header layout, the array table and the top-level JSON document.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::codec::{Codec, Filter};
use crate::columns::{self, Column};
use crate::dtype::DType;
use crate::error::{DecodeError, FormatError, Result};
use crate::node::{parse_shape, Decoder, Node};
use crate::pointer::Pointer;
use crate::strict_json::{Json, Obj};
use crate::wire;

pub const MAGIC: &[u8; 8] = b"SKVAULT\0";
pub const FORMAT_MAJOR: u16 = 1;
/// The newest minor version this crate reads and writes. Writers write the lowest version whose
/// features a file uses: 0 without the flags below, 1 with a compressed manifest only, 2 with packs,
/// 3 with an embedded signature, 4 with column transforms.
pub const FORMAT_MINOR: u16 = 4;
/// Required flag (format 1.1): the manifest is stored as zstd frames, and header bytes 56..64
/// hold its decompressed length.
pub const FLAG_MANIFEST_ZSTD: u32 = 0x0000_0001;
/// Required flag (format 1.2): the manifest has `packs`, blobs that hold several arrays.
pub const FLAG_PACKS: u32 = 0x0000_0002;
/// Required flag (format 1.3): a signature trailer follows the last blob ([`crate::trailer`]).
pub const FLAG_SIGNATURE: u32 = 0x0000_0004;
/// Required flag (format 1.4): some blob or pack has the `columns` filter ([`crate::columns`]).
pub const FLAG_COLUMNS: u32 = 0x0000_0008;
/// The minor version of a file that uses `FLAG_COLUMNS`.
pub const COLUMNS_MINOR: u16 = 4;
/// The required flags this reader implements.
pub const KNOWN_REQUIRED_FLAGS: u32 =
    FLAG_MANIFEST_ZSTD | FLAG_PACKS | FLAG_SIGNATURE | FLAG_COLUMNS;
pub const HEADER_LEN: u64 = 64;
pub const ALIGN: u64 = 64;
/// Largest manifest a reader accepts (256 MiB): a 500-tree forest needs about 1 MiB.
pub const MAX_MANIFEST_LEN: u64 = 256 << 20;
/// Deepest JSON nesting in a manifest; serde_json refuses deeper input while parsing.
pub const MAX_JSON_DEPTH: usize = 127;
/// Flags in the low 16 bits are required features: a reader that does not know one must refuse the file.
pub const REQUIRED_FLAGS_MASK: u32 = 0x0000_ffff;

/// Rounds `n` up to a multiple of `ALIGN`, or `None` on overflow.
pub fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN - 1).map(|x| x / ALIGN * ALIGN)
}

/// The fixed 64-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    /// Stored length of the manifest (compressed, when `FLAG_MANIFEST_ZSTD` is set).
    pub manifest_len: u64,
    /// BLAKE3 of the stored manifest bytes.
    pub manifest_digest: [u8; 32],
    /// Decompressed length of a compressed manifest (bytes 56..64); 0 otherwise.
    pub manifest_raw_len: u64,
}

impl Header {
    /// Whether the manifest is stored compressed (`FLAG_MANIFEST_ZSTD`).
    pub fn manifest_compressed(&self) -> bool {
        self.flags & FLAG_MANIFEST_ZSTD != 0
    }

    /// The manifest's JSON text from its stored bytes (whose digest the caller has checked):
    /// the bytes themselves, or decompressed into exactly `manifest_raw_len` bytes.
    pub fn manifest_text<'a>(&self, stored: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
        if !self.manifest_compressed() {
            return Ok(std::borrow::Cow::Borrowed(stored));
        }
        // Checked by `parse`: at most MAX_MANIFEST_LEN and within zstd's expansion bound.
        let len =
            usize::try_from(self.manifest_raw_len).map_err(|_| FormatError::ManifestTooLarge {
                declared: self.manifest_raw_len,
                max: MAX_MANIFEST_LEN,
            })?;
        let mut text = vec![0u8; len];
        Codec::Zstd
            .decode_exact(stored, &mut text)
            .map_err(|source| FormatError::ManifestCodec { source })?;
        Ok(std::borrow::Cow::Owned(text))
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let fields: [(&mut [u8], &[u8]); 7] = {
            let (magic, rest) = out.split_at_mut(8);
            let (major, rest) = rest.split_at_mut(2);
            let (minor, rest) = rest.split_at_mut(2);
            let (flags, rest) = rest.split_at_mut(4);
            let (len, rest) = rest.split_at_mut(8);
            let (digest, raw_len) = rest.split_at_mut(32);
            [
                (magic, MAGIC),
                (major, &self.major.to_le_bytes()),
                (minor, &self.minor.to_le_bytes()),
                (flags, &self.flags.to_le_bytes()),
                (len, &self.manifest_len.to_le_bytes()),
                (digest, &self.manifest_digest),
                (raw_len, &self.manifest_raw_len.to_le_bytes()),
            ]
        };
        for (dst, src) in fields {
            dst.copy_from_slice(src);
        }
        out
    }

    /// Parses and checks the header. `file_len` is the total size of the file.
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<Header> {
        let magic = bytes.get(..8).unwrap_or(bytes);
        // A file cut inside the magic (an empty file included) is truncated, not another format.
        if magic.len() < MAGIC.len() && MAGIC.starts_with(magic) {
            return Err(FormatError::Truncated {
                what: "the header",
                needed: HEADER_LEN,
                available: file_len,
            });
        }
        if magic != MAGIC.as_slice() {
            return Err(FormatError::BadMagic {
                found: magic.to_vec(),
            });
        }
        let b: &[u8; 64] =
            bytes
                .get(..64)
                .and_then(|b| b.try_into().ok())
                .ok_or(FormatError::Truncated {
                    what: "the header",
                    needed: HEADER_LEN,
                    available: file_len,
                })?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let mut u32b = [0u8; 4];
        u32b.copy_from_slice(&b[12..16]);
        let mut u64b = [0u8; 8];
        u64b.copy_from_slice(&b[16..24]);
        let mut manifest_digest = [0u8; 32];
        manifest_digest.copy_from_slice(&b[24..56]);
        let mut raw_len = [0u8; 8];
        raw_len.copy_from_slice(&b[56..64]);
        let header = Header {
            major: u16_at(8),
            minor: u16_at(10),
            flags: u32::from_le_bytes(u32b),
            manifest_len: u64::from_le_bytes(u64b),
            manifest_digest,
            manifest_raw_len: u64::from_le_bytes(raw_len),
        };
        if header.major != FORMAT_MAJOR {
            return Err(FormatError::UnsupportedVersion {
                major: header.major,
                minor: header.minor,
                supported: FORMAT_MAJOR,
            });
        }
        if header.flags & REQUIRED_FLAGS_MASK & !KNOWN_REQUIRED_FLAGS != 0 {
            return Err(FormatError::UnknownFlags {
                flags: header.flags,
            });
        }
        if !header.manifest_compressed() && header.manifest_raw_len != 0 {
            return Err(FormatError::UnexpectedBytes {
                message: "reserved header bytes 56..64 are not zero".into(),
            });
        }
        if header.manifest_len > MAX_MANIFEST_LEN {
            return Err(FormatError::ManifestTooLarge {
                declared: header.manifest_len,
                max: MAX_MANIFEST_LEN,
            });
        }
        if header.manifest_compressed() {
            if header.manifest_raw_len > MAX_MANIFEST_LEN {
                return Err(FormatError::ManifestTooLarge {
                    declared: header.manifest_raw_len,
                    max: MAX_MANIFEST_LEN,
                });
            }
            if header.manifest_raw_len == 0 {
                return Err(FormatError::ManifestCodec {
                    source: DecodeError::ManifestEmpty,
                });
            }
            if header.manifest_raw_len > Codec::Zstd.max_raw_length(header.manifest_len) {
                return Err(FormatError::ManifestCodec {
                    source: DecodeError::ManifestExpansion {
                        raw: header.manifest_raw_len,
                        stored: header.manifest_len,
                    },
                });
            }
        }
        let needed = HEADER_LEN + header.manifest_len;
        if needed > file_len {
            return Err(FormatError::Truncated {
                what: "the manifest",
                needed,
                available: file_len,
            });
        }
        Ok(header)
    }

    /// Offset of the first blob.
    pub fn data_start(&self) -> u64 {
        // manifest_len <= MAX_MANIFEST_LEN, so this cannot overflow.
        align_up(HEADER_LEN + self.manifest_len).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    C,
    F,
}

/// A blob of the data section: where its stored bytes are and how they decode into
/// `raw_length` bytes. `offset` is relative to the start of the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub offset: u64,
    pub length: u64,
    pub codec: Codec,
    /// Transform applied to the raw bytes before compression; always `None` when uncompressed.
    pub filter: Filter,
    pub raw_length: u64,
    /// With `Filter::Columns`, its column transforms (FORMAT.md 3.6); empty otherwise.
    pub columns: Vec<Column>,
}

/// The members a blob has in the JSON of a stored array entry or of a pack, in writing order
/// (`filter` and `columns` last, and only when not `"none"`).
const BLOB_KEYS: [&str; 6] = [
    "offset",
    "length",
    "codec",
    "raw_length",
    "filter",
    "columns",
];

impl Blob {
    fn write_json(&self, m: &mut Map<String, Value>, digest: Option<&[u8; 32]>) {
        m.insert("offset".into(), self.offset.into());
        m.insert("length".into(), self.length.into());
        m.insert("codec".into(), self.codec.name().into());
        m.insert("raw_length".into(), self.raw_length.into());
        if let Some(d) = digest {
            m.insert("digest".into(), hex(d).into());
        }
        if self.filter != Filter::None {
            m.insert("filter".into(), self.filter.name().into());
        }
        if self.filter == Filter::Columns {
            let cols = self.columns.iter().map(Column::to_json).collect();
            m.insert("columns".into(), Value::Array(cols));
        }
    }

    /// Reads the blob members of `m` (an entry at `path`), checking their types only.
    fn from_json(m: &Obj, path: &Pointer) -> Result<Blob> {
        let u64_field = |key: &str| {
            m.get(key).and_then(Json::as_u64).ok_or_else(|| {
                FormatError::manifest(path.key(key).to_string(), "must be a non-negative integer")
            })
        };
        let codec = m
            .get("codec")
            .and_then(Json::as_str)
            .and_then(Codec::from_name)
            .ok_or_else(|| {
                FormatError::manifest(
                    format!("{path}/codec"),
                    "must be \"none\", \"zstd\" or \"lz4\"",
                )
            })?;
        let filter = match m.get("filter") {
            None => Filter::None,
            Some(v) => v.as_str().and_then(Filter::from_name).ok_or_else(|| {
                FormatError::manifest(
                    format!("{path}/filter"),
                    "must be \"none\", \"fields\" or \"columns\"",
                )
            })?,
        };
        let columns = match (filter, m.get("columns")) {
            (Filter::Columns, Some(Json::Array(list))) if !list.is_empty() => {
                let at = path.key("columns");
                list.iter()
                    .enumerate()
                    .map(|(i, c)| Column::from_json(c, &at.index(i)))
                    .collect::<Result<Vec<Column>>>()?
            }
            (Filter::Columns, _) => {
                return Err(FormatError::manifest(
                    format!("{path}/columns"),
                    "the columns filter needs a non-empty list of column transforms",
                ))
            }
            (_, Some(_)) => {
                return Err(FormatError::manifest(
                    format!("{path}/columns"),
                    "only a blob with the columns filter has column transforms",
                ))
            }
            (_, None) => Vec::new(),
        };
        if filter != Filter::None && codec == Codec::None {
            return Err(FormatError::manifest(
                format!("{path}/filter"),
                "an uncompressed blob is stored raw: it cannot have a filter",
            ));
        }
        Ok(Blob {
            offset: u64_field("offset")?,
            length: u64_field("length")?,
            codec,
            filter,
            raw_length: u64_field("raw_length")?,
            columns,
        })
    }

    /// The checks between lengths that do not depend on the file: the codec's bound, and
    /// stored = raw for uncompressed data.
    /// With the columns filter the codec's bound applies to the filtered length instead,
    /// checked by `check_columns` once the records' dtype is known.
    fn check_lengths(&self) -> std::result::Result<(), String> {
        if self.filter != Filter::Columns
            && self.raw_length > self.codec.max_raw_length(self.length)
        {
            return Err(format!(
                "raw_length {} cannot come from {} stored bytes of {}",
                self.raw_length,
                self.length,
                self.codec.name()
            ));
        }
        if self.codec == Codec::None && self.length != self.raw_length {
            return Err("uncompressed but length differs from raw_length".into());
        }
        Ok(())
    }

    /// With the columns filter: its transforms checked against the records' `dtype`
    /// (FORMAT.md 3.6), and the codec's bound applied to the filtered length. The segments
    /// to decode with.
    pub fn check_columns(
        &self,
        dtype: &DType,
    ) -> std::result::Result<Vec<columns::Segment>, String> {
        let segs = columns::plan(dtype, &self.columns)?;
        let itemsize = dtype.itemsize().max(1);
        if self.raw_length % itemsize != 0 {
            return Err(format!(
                "raw_length {} is not a whole number of {itemsize}-byte records",
                self.raw_length
            ));
        }
        let filtered = columns::filtered_len(&segs, self.raw_length / itemsize)
            .ok_or("the filtered length overflows")?;
        if filtered > self.codec.max_raw_length(self.length) {
            return Err(format!(
                "filtered length {filtered} cannot come from {} stored bytes of {}",
                self.length,
                self.codec.name()
            ));
        }
        Ok(segs)
    }
}

/// Where an array's bytes are (format 1.2 adds packs).
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A blob of its own.
    Stored(Blob),
    /// `raw_length` bytes from `start` in the raw bytes of pack `pack`.
    Packed { pack: usize, start: u64 },
}

/// One entry of the array table.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayEntry {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub order: Order,
    pub raw_length: u64,
    /// BLAKE3 of the array's raw bytes (uncompressed, unfiltered).
    pub digest: [u8; 32],
    pub placement: Placement,
}

/// A pack (format 1.2): one blob holding the raw bytes of several arrays, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub blob: Blob,
    /// Indices of its arrays in the table, in table order (derived, not written).
    pub members: Vec<usize>,
}

/// A blob of the data section, named for error messages and tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOwner {
    Array(usize),
    Pack(usize),
}

impl BlobOwner {
    pub(crate) fn layout_error(self, message: impl Into<String>) -> FormatError {
        match self {
            BlobOwner::Array(index) => FormatError::layout(index, message),
            BlobOwner::Pack(pack) => FormatError::PackLayout {
                pack,
                message: message.into(),
            },
        }
    }
}

/// The text of an array table from which [`Manifest::from_bytes`] reads it on a thread of its
/// own: about 1,000 entries, whose reading (0.5 ms here) dwarfs starting a thread (30 µs).
const TABLE_THREAD_MIN: usize = 128 << 10;

fn table_text_len(table: &[&RawValue]) -> usize {
    table.iter().map(|raw| raw.get().len()).sum()
}

/// The array table whose entries' texts are `table`, taken from the manifest's text `whole`.
fn read_table(table: &[&RawValue], whole: &[u8]) -> Result<Vec<ArrayEntry>> {
    let entries =
        wire::entries(table, whole).map_err(|source| FormatError::ManifestJson { source })?;
    let mut dtypes = wire::Dtypes::new(whole);
    (entries.iter().enumerate())
        .map(|(i, v)| ArrayEntry::from_wire(i, v, &mut dtypes))
        .collect()
}

/// The array table being read: here, when the manifest is read to the end, or on its own
/// thread (with its length).
enum TableRead<'s, 'b> {
    Here(Vec<&'b RawValue>),
    Beside(
        std::thread::ScopedJoinHandle<'s, Result<Vec<ArrayEntry>>>,
        usize,
    ),
}

/// Largest size in bytes of an array (numpy's `intp` on 64-bit platforms): numpy refuses
/// any shape whose dimensions times the itemsize pass it.
pub const MAX_ARRAY_BYTES: u64 = i64::MAX as u64;

/// Largest extent ([`extent`]) of an array that holds no bytes: one with a zero dimension
/// or a zero-width dtype (`|V0`, `|S0`, `<U0`). Nothing else bounds the (empty) elements or
/// rows such a shape declares, which consumers walk and numpy widens (`|S0` to one byte
/// each, `<U0` to four).
pub const MAX_EMPTY_EXTENT: u64 = 1 << 20;

/// The product of the dimensions with every 0 counted as 1, or `None` if it overflows:
/// what numpy multiplies when it checks a shape, and how many rows, columns or elements a
/// walk over the shape visits even when the array is empty.
pub fn extent(shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul((*d).max(1)))
}

/// The bounds of FORMAT.md 3.1 on a shape of elements of `itemsize` bytes (8 for an object
/// array's pointers): product × itemsize at most [`MAX_ARRAY_BYTES`], and an extent of at
/// most [`MAX_EMPTY_EXTENT`] when that product is 0. Returns the element count.
pub fn check_shape(shape: &[u64], itemsize: u64) -> std::result::Result<u64, String> {
    let count = ArrayEntry::count(shape).ok_or("the product of the shape overflows")?;
    let bytes = count
        .checked_mul(itemsize)
        .filter(|b| *b <= MAX_ARRAY_BYTES)
        .ok_or_else(|| format!("shape times itemsize exceeds {MAX_ARRAY_BYTES} bytes"))?;
    if bytes == 0 {
        extent(shape)
            .filter(|e| *e <= MAX_EMPTY_EXTENT)
            .ok_or_else(|| {
                format!(
                    "shape {shape:?} holds no bytes but declares more than {MAX_EMPTY_EXTENT} \
                 elements or rows (dimensions counted with 0 as 1)"
                )
            })?;
    }
    Ok(count)
}

impl ArrayEntry {
    /// Number of elements, or `None` if the product overflows.
    pub fn count(shape: &[u64]) -> Option<u64> {
        shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d))
    }

    /// The array's own blob, unless it is in a pack.
    pub fn stored(&self) -> Option<&Blob> {
        match &self.placement {
            Placement::Stored(b) => Some(b),
            Placement::Packed { .. } => None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("dtype".into(), self.dtype.to_json());
        m.insert("shape".into(), json!(self.shape));
        let order = match self.order {
            Order::C => "C",
            Order::F => "F",
        };
        m.insert("order".into(), order.into());
        match &self.placement {
            Placement::Stored(blob) => blob.write_json(&mut m, Some(&self.digest)),
            Placement::Packed { pack, .. } => {
                m.insert("pack".into(), (*pack).into());
                m.insert("raw_length".into(), self.raw_length.into());
                m.insert("digest".into(), hex(&self.digest).into());
            }
        }
        Value::Object(m)
    }

    /// Parses entry `index` (its members but `dtype`, and that one's text, parsed by
    /// `dtypes`). A packed entry's pack is checked against the manifest's `packs`, and its
    /// `start` filled in, later, by [`Pack::collect`]: the table is read before the rest of
    /// the manifest is known.
    fn from_wire<'a>(
        index: usize,
        v: &wire::Entry<'a>,
        dtypes: &mut wire::Dtypes<'a>,
    ) -> Result<ArrayEntry> {
        let table = Pointer::Root("/arrays");
        let path = table.index(index);
        let wire::Entry::Object { members: m, dtype } = v else {
            return Err(FormatError::manifest(
                path.to_string(),
                "an array entry must be an object",
            ));
        };
        let dtype = dtypes.get(*dtype, &path.key("dtype"))?;
        let shape = parse_shape(m.get("shape"), &path.key("shape"))?;
        let order = match m.get("order").and_then(Json::as_str) {
            Some("C") => Order::C,
            Some("F") => Order::F,
            _ => {
                return Err(FormatError::manifest(
                    format!("{path}/order"),
                    "must be \"C\" or \"F\"",
                ))
            }
        };
        const COMMON: [&str; 5] = ["dtype", "shape", "order", "raw_length", "digest"];
        let packed = m.contains_key("pack");
        let known = |k: &str| {
            COMMON.contains(&k)
                || if packed {
                    k == "pack"
                } else {
                    BLOB_KEYS.contains(&k)
                }
        };
        if let Some(extra) = m.keys().find(|k| !known(k)) {
            let why = if packed {
                "not a member of a packed array entry (its pack has the blob's members)"
            } else {
                "unknown key in an array entry"
            };
            return Err(FormatError::manifest(format!("{path}/{extra}"), why));
        }
        let placement = if packed {
            let pack = m
                .get("pack")
                .and_then(Json::as_u64)
                .and_then(|p| usize::try_from(p).ok())
                .ok_or_else(|| {
                    FormatError::manifest(format!("{path}/pack"), "must be the index of a pack")
                })?;
            Placement::Packed { pack, start: 0 }
        } else {
            let blob = Blob::from_json(m, &path)?;
            if blob.filter == Filter::Fields && dtype.field_segments().is_none() {
                return Err(FormatError::manifest(
                    format!("{path}/filter"),
                    "the fields filter needs a structured dtype whose fields do not overlap",
                ));
            }
            Placement::Stored(blob)
        };
        let digest = m
            .get("digest")
            .and_then(Json::as_str)
            .and_then(unhex32)
            .ok_or_else(|| {
                FormatError::manifest(format!("{path}/digest"), "must be 64 lowercase hex digits")
            })?;
        let raw_length = m.get("raw_length").and_then(Json::as_u64).ok_or_else(|| {
            FormatError::manifest(
                format!("{path}/raw_length"),
                "must be a non-negative integer",
            )
        })?;
        let entry = ArrayEntry {
            dtype,
            shape,
            order,
            raw_length,
            digest,
            placement,
        };
        let itemsize = entry.dtype.itemsize();
        let expected = check_shape(&entry.shape, itemsize)
            .map_err(|message| FormatError::layout(index, message))?
            .saturating_mul(itemsize);
        if expected != entry.raw_length {
            return Err(FormatError::layout(
                index,
                format!(
                    "shape {:?} of {} needs {expected} bytes, but raw_length is {}",
                    entry.shape,
                    entry.dtype.to_json(),
                    entry.raw_length
                ),
            ));
        }
        if let Placement::Stored(blob) = &entry.placement {
            blob.check_lengths()
                .map_err(|message| FormatError::layout(index, message))?;
            if blob.filter == Filter::Columns {
                blob.check_columns(&entry.dtype)
                    .map_err(|message| FormatError::layout(index, message))?;
            }
        }
        Ok(entry)
    }
}

impl Pack {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        self.blob.write_json(&mut m, None);
        Value::Object(m)
    }

    fn from_json(index: usize, v: &Json) -> Result<Pack> {
        let table = Pointer::Root("/packs");
        let path = table.index(index);
        let Json::Object(m) = v else {
            return Err(FormatError::manifest(
                path.to_string(),
                "a pack must be an object",
            ));
        };
        if let Some(extra) = m.keys().find(|k| !BLOB_KEYS.contains(k)) {
            return Err(FormatError::manifest(
                format!("{path}/{extra}"),
                "unknown key in a pack",
            ));
        }
        let blob = Blob::from_json(m, &path)?;
        blob.check_lengths()
            .map_err(|message| BlobOwner::Pack(index).layout_error(message))?;
        Ok(Pack {
            blob,
            members: Vec::new(),
        })
    }

    /// Assigns each packed entry to its pack and its start in the pack's raw bytes, then checks
    /// that every pack has members, that they fill its raw bytes exactly, and that a `fields`
    /// filter applies to all of them as one array.
    pub(crate) fn collect(packs: &mut [Pack], arrays: &mut [ArrayEntry]) -> Result<()> {
        let mut filled = vec![0u64; packs.len()];
        for (i, e) in arrays.iter_mut().enumerate() {
            if let Placement::Packed { pack, start } = &mut e.placement {
                let n_packs = filled.len();
                let (Some(p), Some(used)) = (packs.get_mut(*pack), filled.get_mut(*pack)) else {
                    return Err(FormatError::manifest(
                        format!("/arrays/{i}/pack"),
                        format!("must be the index of a pack (the file has {n_packs})"),
                    ));
                };
                *start = *used;
                *used = used.checked_add(e.raw_length).ok_or_else(|| {
                    BlobOwner::Pack(*pack).layout_error("its members' sizes overflow")
                })?;
                p.members.push(i);
            }
        }
        for (p, (pack, used)) in packs.iter().zip(&filled).enumerate() {
            let owner = BlobOwner::Pack(p);
            let Some(first) = pack.members.first().and_then(|i| arrays.get(*i)) else {
                return Err(owner.layout_error("no array entry is in this pack"));
            };
            if *used != pack.blob.raw_length {
                return Err(owner.layout_error(format!(
                    "raw_length is {} but its members hold {used} bytes",
                    pack.blob.raw_length
                )));
            }
            if matches!(pack.blob.filter, Filter::Fields | Filter::Columns) {
                let same = pack
                    .members
                    .iter()
                    .all(|i| arrays.get(*i).is_some_and(|e| e.dtype == first.dtype));
                if !same || first.dtype.field_segments().is_none() {
                    return Err(owner.layout_error(format!(
                        "the {} filter needs members of one structured dtype whose fields do not overlap",
                        pack.blob.filter.name()
                    )));
                }
            }
            if pack.blob.filter == Filter::Columns {
                pack.blob
                    .check_columns(&first.dtype)
                    .map_err(|message| owner.layout_error(message))?;
            }
        }
        Ok(())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from exactly 64 lowercase hex digits (a digest as the writer writes it), else
/// `None`. Digit by digit with no parsing machinery: a forest's manifest holds thousands.
fn unhex32(s: &str) -> Option<[u8; 32]> {
    // Each byte's value as a hex digit, or 0xff: one lookup per digit, and one test for the
    // whole digest.
    const NIBBLE: [u8; 256] = {
        let mut t = [0xffu8; 256];
        let mut c = 0;
        while c < 10 {
            t[b'0' as usize + c] = c as u8;
            c += 1;
        }
        let mut c = 0;
        while c < 6 {
            t[b'a' as usize + c] = 10 + c as u8;
            c += 1;
        }
        t
    };
    let digits: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        bad |= hi | lo;
        *byte = hi << 4 | lo;
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// The manifest document.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Who wrote the file (`"skvault 0.1.0"`), informational.
    pub writer: String,
    pub root: Node,
    /// Optional second tree: validation samples and the outputs recorded for them (plain
    /// containers and arrays). Ids and arrays are shared with `root`, decoded after it.
    pub validation: Option<Node>,
    pub arrays: Vec<ArrayEntry>,
    /// Blobs holding several arrays each (format 1.2); empty without the `PACKS` flag.
    pub packs: Vec<Pack>,
    /// Free-form JSON object: environment, estimator record, user fields.
    pub metadata: Map<String, Value>,
}

impl Manifest {
    /// The object trees of the file: the root, then the validation tree if any.
    pub fn trees(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.root).chain(self.validation.as_ref())
    }

    /// The blobs of the data section in file order (FORMAT.md 2.4): the arrays stored on
    /// their own, in table order, then the packs.
    pub fn blobs(&self) -> impl Iterator<Item = (BlobOwner, &Blob)> {
        let stored = self
            .arrays
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((BlobOwner::Array(i), e.stored()?)));
        let packs = self
            .packs
            .iter()
            .enumerate()
            .map(|(p, pack)| (BlobOwner::Pack(p), &pack.blob));
        stored.chain(packs)
    }

    /// The header flags this manifest's features need, besides `FLAG_MANIFEST_ZSTD`.
    pub fn feature_flags(&self) -> u32 {
        let packs = if self.packs.is_empty() { 0 } else { FLAG_PACKS };
        let columns = if self.blobs().any(|(_, b)| b.filter == Filter::Columns) {
            FLAG_COLUMNS
        } else {
            0
        };
        packs | columns
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("writer".into(), Value::String(self.writer.clone()));
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        m.insert(
            "arrays".into(),
            Value::Array(self.arrays.iter().map(ArrayEntry::to_json).collect()),
        );
        if !self.packs.is_empty() {
            let packs = self.packs.iter().map(Pack::to_json).collect();
            m.insert("packs".into(), Value::Array(packs));
        }
        m.insert("root".into(), self.root.to_json());
        if let Some(v) = &self.validation {
            m.insert("validation".into(), v.to_json());
        }
        Value::Object(m)
    }

    /// Serializes the manifest, refusing trees a reader could not parse back. The bytes are
    /// those of `serde_json::to_vec(&self.to_json())`, written without the `Value` tree.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_text()?.bytes)
    }

    /// [`Manifest::to_bytes`], with where each array's digest is in the text.
    pub(crate) fn to_text(&self) -> Result<crate::manifest_text::ManifestText> {
        let text = crate::manifest_text::write(self)
            .map_err(|source| FormatError::ManifestJson { source })?;
        if text.depth > MAX_JSON_DEPTH {
            return Err(FormatError::TooDeep {
                depth: text.depth,
                max: MAX_JSON_DEPTH,
            });
        }
        if text.bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(FormatError::ManifestTooLarge {
                declared: text.bytes.len() as u64,
                max: MAX_MANIFEST_LEN,
            });
        }
        Ok(text)
    }

    /// Parses and validates a manifest (the tree and the array table; not yet the file layout).
    /// A large array table is read on a second thread from the moment the first pass over
    /// the text has passed it, while that pass goes on and the tree is decoded.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest> {
        std::thread::scope(|s| Self::from_bytes_in(bytes, s))
    }

    fn from_bytes_in<'s, 'b>(
        bytes: &'b [u8],
        scope: &'s std::thread::Scope<'s, 'b>,
    ) -> Result<Manifest> {
        let start = |table: Vec<&'b RawValue>| {
            if table_text_len(&table) < TABLE_THREAD_MIN {
                return TableRead::Here(table);
            }
            let text = table.clone();
            let reader =
                std::thread::Builder::new().spawn_scoped(scope, move || read_table(&text, bytes));
            match reader {
                Ok(reader) => TableRead::Beside(reader, table.len()),
                // No thread to be had: the same work on this one.
                Err(_) => TableRead::Here(table),
            }
        };
        let top = wire::Top::parse(bytes, start)
            .map_err(|source| FormatError::ManifestJson { source })?;
        let wire::Top::Object {
            members: mut m,
            arrays: table,
        } = top
        else {
            return Err(FormatError::manifest(
                "",
                "the manifest must be a JSON object",
            ));
        };
        let writer = match m.remove("writer") {
            Some(Json::Str(s)) => s.into_owned(),
            _ => return Err(FormatError::manifest("/writer", "must be a string")),
        };
        let metadata = match m.remove("metadata") {
            Some(Json::Object(md)) => md.into_map(),
            None => Map::new(),
            Some(_) => return Err(FormatError::manifest("/metadata", "must be an object")),
        };
        let mut packs = match m.get("packs") {
            None => Vec::new(),
            Some(Json::Array(p)) if !p.is_empty() => p
                .iter()
                .enumerate()
                .map(|(i, v)| Pack::from_json(i, v))
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(FormatError::manifest("/packs", "must be a non-empty list")),
        };
        let Some(wire::Table::List(table)) = table else {
            return Err(FormatError::manifest("/arrays", "must be a list"));
        };
        let n_arrays = match &table {
            TableRead::Here(t) => t.len(),
            TableRead::Beside(_, n) => *n,
        };
        // The tree needs nothing of the table but its length. Its errors come after the
        // table's, as in a read of one after the other.
        let tree = (|| {
            let root = m
                .remove("root")
                .ok_or_else(|| FormatError::manifest("/root", "missing"))?;
            let mut decoder = Decoder::new(n_arrays);
            let root = decoder.decode_json(root, &Pointer::Root("/root"))?;
            let validation = match m.remove("validation") {
                Some(v) => Some(decoder.decode_json(v, &Pointer::Root("/validation"))?),
                None => None,
            };
            Ok((root, validation, decoder))
        })();
        let mut arrays = match table {
            TableRead::Here(t) => read_table(&t, bytes),
            TableRead::Beside(reader, _) => reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        }?;
        Pack::collect(&mut packs, &mut arrays)?;
        let (root, validation, decoder) = tree?;
        if let Some(i) = decoder.unreferenced_arrays().first() {
            return Err(FormatError::layout(
                *i,
                "no node of the tree refers to this array",
            ));
        }
        // Unknown top-level keys are ignored: minor versions may add informational sections.
        Ok(Manifest {
            writer,
            root,
            validation,
            arrays,
            packs,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            major: FORMAT_MAJOR,
            minor: 3,
            flags: 0x0001_0000,
            manifest_len: 10,
            manifest_digest: [7; 32],
            manifest_raw_len: 0,
        };
        let bytes = h.to_bytes();
        assert_eq!(Header::parse(&bytes, 1000).unwrap(), h);
        assert!(matches!(
            Header::parse(&bytes, 70),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            Header::parse(&bytes[..30], 30),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            Header::parse(b"PK\x03\x04", 4),
            Err(FormatError::BadMagic { .. })
        ));
        let mut required = h.clone();
        // Bits 0 to 3 are known (1.1 to 1.4); the next required bit is not.
        required.flags = (KNOWN_REQUIRED_FLAGS + 1).next_power_of_two();
        assert_eq!(required.flags & REQUIRED_FLAGS_MASK, required.flags);
        assert!(matches!(
            Header::parse(&required.to_bytes(), 1000),
            Err(FormatError::UnknownFlags { .. })
        ));
        let mut major = h.clone();
        major.major = 2;
        assert!(matches!(
            Header::parse(&major.to_bytes(), 1000),
            Err(FormatError::UnsupportedVersion { .. })
        ));
        let mut huge = h;
        huge.manifest_len = u64::MAX;
        assert!(matches!(
            Header::parse(&huge.to_bytes(), 1000),
            Err(FormatError::ManifestTooLarge { .. })
        ));
    }

    #[test]
    fn hex_round_trip() {
        let d: [u8; 32] = core::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(unhex32(&hex(&d)), Some(d));
        assert_eq!(unhex32(&hex(&d).to_uppercase()), None);
        assert_eq!(unhex32("zz"), None);
        // Every byte value, and refusals: a digit out of range at either end, a length off
        // by one, non-ASCII text of 64 bytes.
        for b in 0..=255u8 {
            let mut d = [0u8; 32];
            d[31] = b;
            d[0] = b.rotate_left(4);
            assert_eq!(unhex32(&hex(&d)), Some(d));
        }
        let good = hex(&d);
        for (at, c) in [(0, "g"), (63, "g"), (10, "/"), (20, ":"), (30, "`")] {
            let mut bad = good.clone();
            bad.replace_range(at..at + 1, c);
            assert_eq!(unhex32(&bad), None, "{bad}");
        }
        assert_eq!(unhex32(&good[..63]), None);
        assert_eq!(unhex32(&format!("{good}0")), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
    }
}
