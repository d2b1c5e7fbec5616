//! Per-array compression codecs.
//!
//! Decompression never trusts the declared size blindly: the caller gives a
//! destination of exactly `raw_length` bytes (already checked against the shape
//! and against `max_ratio`), and data that decodes to more or fewer bytes is an error.

use crate::error::{DecodeError, FormatError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Zstd,
    Lz4,
}

/// A codec name other than `none`, `zstd` and `lz4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCodec(pub String);

impl std::fmt::Display for UnknownCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown codec {:?} (none, zstd or lz4)", self.0)
    }
}

impl std::error::Error for UnknownCodec {}

/// Parses a codec name given by a user (command line, Python): `Codec::from_name` with the
/// error message every front end shows.
impl std::str::FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(name: &str) -> std::result::Result<Codec, UnknownCodec> {
        Codec::from_name(name).ok_or_else(|| UnknownCodec(name.to_string()))
    }
}

/// zstd level used when none is given: fast, and already smaller than zlib-3 on model arrays.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// zstd level of the archival setting (`level="archive"` in Python). On the benchmark's
/// 500-tree forest, with the column transforms of format 1.4, it writes 20.3 MB against
/// joblib's lzma-3 20.6 MB in about a tenth of lzma-3's save time; level 11 saves 1.5% more
/// in 1.6x the time, and levels from 13 on (btopt and up) take several times longer.
pub const ARCHIVE_ZSTD_LEVEL: i32 = 10;

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    pub fn from_name(name: &str) -> Option<Codec> {
        match name {
            "none" => Some(Codec::None),
            "zstd" => Some(Codec::Zstd),
            "lz4" => Some(Codec::Lz4),
            _ => None,
        }
    }

    /// The most raw bytes one stored byte can expand to, with a small constant for headers.
    /// zstd: an RLE block of 4 bytes yields at most 128 KiB; lz4 block format tops out near 255:1.
    pub fn max_raw_length(self, stored: u64) -> u64 {
        match self {
            Codec::None => stored,
            Codec::Zstd => stored.saturating_mul(32 * 1024).saturating_add(1024),
            Codec::Lz4 => stored.saturating_mul(256).saturating_add(64),
        }
    }

    /// Checks a level for this codec; `None` picks the default.
    pub fn check_level(self, level: Option<i32>) -> Result<i32> {
        match (self, level) {
            (Codec::None, None) => Ok(0),
            (Codec::Zstd, None) => Ok(DEFAULT_ZSTD_LEVEL),
            (Codec::Zstd, Some(l)) if zstd::compression_level_range().contains(&l) => Ok(l),
            (Codec::Lz4, None) => Ok(0),
            (codec, Some(level)) => Err(FormatError::CompressionLevel { codec, level }),
        }
    }

    /// Compresses `raw`. The level must come from `check_level`.
    pub fn compress(self, raw: &[u8], level: i32) -> Result<Vec<u8>> {
        match self {
            Codec::None => Ok(raw.to_vec()),
            Codec::Zstd => {
                zstd::bulk::compress(raw, level).map_err(|source| FormatError::Compress {
                    codec: self.name(),
                    source,
                })
            }
            Codec::Lz4 => Ok(lz4_flex::block::compress(raw)),
        }
    }

    /// Decodes `stored` into exactly `dst.len()` bytes; any other outcome is an error.
    pub(crate) fn decode_exact(self, stored: &[u8], dst: &mut [u8]) -> Result<(), DecodeError> {
        let written = match self {
            Codec::None => {
                if stored.len() != dst.len() {
                    return Err(DecodeError::LengthMismatch);
                }
                dst.copy_from_slice(stored);
                stored.len()
            }
            Codec::Zstd => {
                check_zstd_frames(stored)?;
                // A frame that declares or produces more than dst holds fails here, before any growth.
                zstd::bulk::decompress_to_buffer(stored, dst).map_err(DecodeError::Zstd)?
            }
            Codec::Lz4 => {
                lz4_flex::block::decompress_into(stored, dst).map_err(DecodeError::Lz4)?
            }
        };
        if written != dst.len() {
            return Err(DecodeError::WrongLength {
                decoded: written,
                expected: dst.len(),
            });
        }
        Ok(())
    }
}

/// Little-endian magic number of a zstd data frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A zstd blob must be one or more data frames, nothing else: skippable frames (which
/// zstd ignores) would let arbitrary bytes hide inside a valid file.
fn check_zstd_frames(stored: &[u8]) -> Result<(), DecodeError> {
    let mut rest = stored;
    if rest.is_empty() {
        return Err(DecodeError::EmptyZstd);
    }
    while !rest.is_empty() {
        if rest.get(..4) != Some(ZSTD_MAGIC.as_slice()) {
            return Err(DecodeError::NotZstdFrame);
        }
        let size = zstd::zstd_safe::find_frame_compressed_size(rest)
            .map_err(|code| DecodeError::ZstdFrame(zstd::zstd_safe::get_error_name(code)))?;
        rest = rest
            .get(size..)
            .filter(|_| size > 0)
            .ok_or(DecodeError::TruncatedZstdFrame)?;
    }
    Ok(())
}

/// A reversible transform applied to raw bytes before compression.
///
/// `Fields` stores a structured array column by column: for each byte range of the record
/// (each field, and each gap of padding between fields, in offset order) the bytes of that
/// range for every element, one after another. Writers use it with zstd only, one frame per
/// column: tree-node structs then compress about 5% better (measured on a 100-tree forest:
/// 6.70 MB against 7.02 MB unsplit, at level 3). A plain byte shuffle made them 15% worse, and
/// lz4 does worse on columns than on records.
///
/// `Columns` (format 1.4) is `Fields` with some integer columns delta-coded and narrowed, as
/// the blob's column transforms say ([`crate::columns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    None,
    Fields,
    Columns,
}

impl Filter {
    pub fn name(self) -> &'static str {
        match self {
            Filter::None => "none",
            Filter::Fields => "fields",
            Filter::Columns => "columns",
        }
    }

    pub fn from_name(name: &str) -> Option<Filter> {
        match name {
            "none" => Some(Filter::None),
            "fields" => Some(Filter::Fields),
            "columns" => Some(Filter::Columns),
            _ => None,
        }
    }
}

/// Elements transposed per block, so that a block of records stays in cache.
const BLOCK: usize = 1024;

/// The byte ranges `(offset, width)` that tile a record of `itemsize` bytes: the given field
/// ranges in offset order, with the gaps between them (padding) as ranges of their own.
/// `None` when fields overlap or overflow the record (the filter is then not applicable).
pub fn segments(fields: &[(u64, u64)], itemsize: u64) -> Option<Vec<(usize, usize)>> {
    let mut sorted: Vec<(u64, u64)> = fields.iter().copied().filter(|(_, w)| *w > 0).collect();
    sorted.sort_unstable();
    let mut out = Vec::with_capacity(sorted.len() * 2 + 1);
    let mut pos = 0u64;
    for (off, width) in sorted {
        if off < pos {
            return None;
        }
        if off > pos {
            out.push((usize::try_from(pos).ok()?, usize::try_from(off - pos).ok()?));
        }
        out.push((usize::try_from(off).ok()?, usize::try_from(width).ok()?));
        pos = off.checked_add(width)?;
    }
    if pos > itemsize {
        return None;
    }
    if pos < itemsize {
        out.push((
            usize::try_from(pos).ok()?,
            usize::try_from(itemsize - pos).ok()?,
        ));
    }
    Some(out)
}

/// Splits records of `itemsize` bytes into columns by `segs` (from `segments`), or joins them
/// back with `inverse`. Returns false, touching nothing, when the sizes do not fit.
pub fn split_fields(
    src: &[u8],
    dst: &mut [u8],
    itemsize: usize,
    segs: &[(usize, usize)],
    inverse: bool,
) -> bool {
    let tiles = segs.iter().map(|(_, w)| *w).sum::<usize>() == itemsize
        && segs
            .iter()
            .all(|(o, w)| o.checked_add(*w).is_some_and(|end| end <= itemsize));
    if itemsize == 0 || !tiles || src.len() != dst.len() || src.len() % itemsize != 0 {
        return false;
    }
    let n = src.len() / itemsize;
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let mut column = 0;
        for &(off, width) in segs {
            for i in start..end {
                let record = i * itemsize + off;
                let packed = column * n + i * width;
                let (from, to) = if inverse {
                    (packed, record)
                } else {
                    (record, packed)
                };
                dst[to..to + width].copy_from_slice(&src[from..from + width]);
            }
            column += width;
        }
        start = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_parse_and_print_back() {
        for codec in [Codec::None, Codec::Zstd, Codec::Lz4] {
            assert_eq!(codec.name().parse::<Codec>(), Ok(codec));
        }
        let err = "gzip".parse::<Codec>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown codec \"gzip\" (none, zstd or lz4)"
        );
        assert!("ZSTD".parse::<Codec>().is_err());
    }

    #[test]
    fn round_trips_and_exact_length() {
        let raw: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        for codec in [Codec::None, Codec::Zstd, Codec::Lz4] {
            let level = codec.check_level(None).unwrap();
            let stored = codec.compress(&raw, level).unwrap();
            assert!(raw.len() as u64 <= codec.max_raw_length(stored.len() as u64));
            let mut dst = vec![0u8; raw.len()];
            codec.decode_exact(&stored, &mut dst).unwrap();
            assert_eq!(dst, raw);
            let mut short = vec![0u8; raw.len() - 1];
            assert!(
                codec.decode_exact(&stored, &mut short).is_err(),
                "{codec:?} short dst"
            );
            let mut long = vec![0u8; raw.len() + 1];
            assert!(
                codec.decode_exact(&stored, &mut long).is_err(),
                "{codec:?} long dst"
            );
        }
    }

    #[test]
    fn zstd_skippable_frames_and_trailing_bytes_are_refused() {
        let raw = vec![7u8; 1000];
        let frame = Codec::Zstd.compress(&raw, 3).unwrap();
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let mut dst = vec![0u8; 2000];
        Codec::Zstd.decode_exact(&two, &mut dst).unwrap();
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, b'e', b'v', b'i', b'l'];
        skippable.extend_from_slice(&frame);
        let mut dst = vec![0u8; 1000];
        assert!(Codec::Zstd.decode_exact(&skippable, &mut dst).is_err());
        let mut trailing = frame.clone();
        trailing.push(0);
        assert!(Codec::Zstd.decode_exact(&trailing, &mut dst).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dst = vec![0u8; 64];
        for codec in [Codec::Zstd, Codec::Lz4] {
            assert!(codec.decode_exact(&[0xff; 17], &mut dst).is_err());
            assert!(codec.decode_exact(&[], &mut dst).is_err());
        }
    }

    #[test]
    fn field_split_round_trips_with_padding() {
        // Two records of {a: u16 @0, b: u8 @4}, itemsize 6: gaps at 2..4 and 5..6.
        let segs = segments(&[(4, 1), (0, 2)], 6).unwrap();
        assert_eq!(segs, vec![(0, 2), (2, 2), (4, 1), (5, 1)]);
        let src: Vec<u8> = (0..12u8).collect();
        let mut cols = vec![0; 12];
        assert!(split_fields(&src, &mut cols, 6, &segs, false));
        assert_eq!(cols, vec![0, 1, 6, 7, 2, 3, 8, 9, 4, 10, 5, 11]);
        let mut back = vec![0; 12];
        assert!(split_fields(&cols, &mut back, 6, &segs, true));
        assert_eq!(back, src);
        let big: Vec<u8> = (0..64 * 3000).map(|i| (i * 7 % 251) as u8).collect();
        let segs = segments(&[(0, 8), (8, 8), (16, 8), (24, 8), (56, 1)], 64).unwrap();
        let (mut a, mut b) = (vec![0; big.len()], vec![0; big.len()]);
        assert!(
            split_fields(&big, &mut a, 64, &segs, false)
                && split_fields(&a, &mut b, 64, &segs, true)
        );
        assert_eq!(b, big);
    }

    #[test]
    fn field_split_refuses_what_does_not_fit() {
        assert_eq!(segments(&[(0, 4), (2, 4)], 8), None, "overlap");
        assert_eq!(segments(&[(6, 4)], 8), None, "overflow");
        let segs = segments(&[(0, 4)], 8).unwrap();
        assert!(
            !split_fields(&[0; 12], &mut [0; 12], 8, &segs, false),
            "partial record"
        );
        assert!(
            !split_fields(&[0; 16], &mut [0; 8], 8, &segs, false),
            "length mismatch"
        );
        assert!(
            !split_fields(&[0; 16], &mut [0; 16], 8, &[(0, 4)], false),
            "segments do not tile"
        );
    }

    #[test]
    fn levels() {
        for (codec, level) in [(Codec::Zstd, 1000), (Codec::Lz4, 1), (Codec::None, 1)] {
            match codec.check_level(Some(level)) {
                Err(FormatError::CompressionLevel { codec: c, level: l }) => {
                    assert_eq!((c, l), (codec, level))
                }
                other => panic!("{codec:?} {level}: {other:?}"),
            }
        }
        assert_eq!(
            Codec::Zstd.check_level(Some(23)).unwrap_err().to_string(),
            format!(
                "cannot write: zstd level 23 is out of range {:?}",
                zstd::compression_level_range()
            )
        );
        assert_eq!(Codec::Zstd.check_level(Some(19)).unwrap(), 19);
    }

    #[test]
    fn compression_failures_keep_the_codec_error_as_source() {
        use std::error::Error as _;
        let e = FormatError::Compress {
            codec: "zstd",
            source: std::io::Error::other("out of memory"),
        };
        assert_eq!(
            e.to_string(),
            "cannot write: zstd compression failed: out of memory"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("out of memory")
        );
    }

    /// One hostile input per `DecodeError` the codecs produce.
    #[test]
    fn each_decode_failure_has_its_variant() {
        use std::error::Error as _;
        let raw = vec![7u8; 1000];
        let frame = Codec::Zstd.compress(&raw, 3).unwrap();
        let mut dst = vec![0u8; 1000];
        let err = |codec: Codec, stored: &[u8], dst: &mut [u8]| {
            codec.decode_exact(stored, dst).unwrap_err()
        };
        assert!(matches!(
            err(Codec::None, &[1, 2], &mut dst),
            DecodeError::LengthMismatch
        ));
        assert!(matches!(
            err(Codec::Zstd, &[], &mut dst),
            DecodeError::EmptyZstd
        ));
        assert!(matches!(
            err(Codec::Zstd, &[0xff; 17], &mut dst),
            DecodeError::NotZstdFrame
        ));
        let cut = &frame[..frame.len() - 1];
        assert!(matches!(
            err(Codec::Zstd, cut, &mut dst),
            DecodeError::ZstdFrame(_) | DecodeError::TruncatedZstdFrame
        ));
        let e = err(Codec::Zstd, &frame, &mut dst[..999]);
        assert!(matches!(e, DecodeError::Zstd(_)), "{e:?}");
        assert!(e.source().is_some());
        let e = err(Codec::Lz4, &[0xff; 17], &mut dst);
        assert!(matches!(e, DecodeError::Lz4(_)), "{e:?}");
        assert!(e.source().is_some());
        let small = lz4_flex::block::compress(&raw[..10]);
        assert!(matches!(
            err(Codec::Lz4, &small, &mut dst),
            DecodeError::WrongLength {
                decoded: 10,
                expected: 1000
            }
        ));
    }
}
