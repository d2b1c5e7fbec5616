//! Per-array compression codecs.
//!
//! Decompression never trusts the declared size blindly: the caller gives a
//! destination of exactly `raw_length` bytes (already checked against the shape
//! and against `max_ratio`), and data that decodes to more or fewer bytes is an error.

use crate::error::{FormatError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Zstd,
    Lz4,
}

/// zstd level used when none is given: fast, and already smaller than zlib-3 on model arrays.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

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
            (Codec::None, Some(_)) => Err(FormatError::Unsupported {
                message: "a compression level needs a codec (zstd or lz4)".into(),
            }),
            (Codec::Zstd, None) => Ok(DEFAULT_ZSTD_LEVEL),
            (Codec::Zstd, Some(l)) if zstd::compression_level_range().contains(&l) => Ok(l),
            (Codec::Zstd, Some(l)) => Err(FormatError::Unsupported {
                message: format!(
                    "zstd level {l} is out of range {:?}",
                    zstd::compression_level_range()
                ),
            }),
            (Codec::Lz4, None) => Ok(0),
            (Codec::Lz4, Some(_)) => Err(FormatError::Unsupported {
                message: "lz4 has no compression levels".into(),
            }),
        }
    }

    /// Compresses `raw`. The level must come from `check_level`.
    pub fn compress(self, raw: &[u8], level: i32) -> Result<Vec<u8>> {
        match self {
            Codec::None => Ok(raw.to_vec()),
            Codec::Zstd => zstd::bulk::compress(raw, level).map_err(|e| FormatError::Unsupported {
                message: format!("zstd compression failed: {e}"),
            }),
            Codec::Lz4 => Ok(lz4_flex::block::compress(raw)),
        }
    }

    /// Decompresses `stored` into `dst`, which must be exactly the declared raw length.
    pub fn decompress_into(self, index: usize, stored: &[u8], dst: &mut [u8]) -> Result<()> {
        let corrupt = |message: String| FormatError::Codec {
            index,
            codec: self.name(),
            message,
        };
        let written = match self {
            Codec::None => {
                if stored.len() != dst.len() {
                    return Err(corrupt("stored and raw lengths differ".into()));
                }
                dst.copy_from_slice(stored);
                stored.len()
            }
            Codec::Zstd => {
                // A frame that declares or produces more than dst holds fails here, before any growth.
                zstd::bulk::decompress_to_buffer(stored, dst).map_err(|e| corrupt(e.to_string()))?
            }
            Codec::Lz4 => {
                lz4_flex::block::decompress_into(stored, dst).map_err(|e| corrupt(e.to_string()))?
            }
        };
        if written != dst.len() {
            return Err(corrupt(format!(
                "decoded {written} bytes, expected {}",
                dst.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            codec.decompress_into(0, &stored, &mut dst).unwrap();
            assert_eq!(dst, raw);
            let mut short = vec![0u8; raw.len() - 1];
            assert!(
                codec.decompress_into(0, &stored, &mut short).is_err(),
                "{codec:?} short dst"
            );
            let mut long = vec![0u8; raw.len() + 1];
            assert!(
                codec.decompress_into(0, &stored, &mut long).is_err(),
                "{codec:?} long dst"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dst = vec![0u8; 64];
        for codec in [Codec::Zstd, Codec::Lz4] {
            assert!(codec.decompress_into(3, &[0xff; 17], &mut dst).is_err());
            assert!(codec.decompress_into(3, &[], &mut dst).is_err());
        }
    }

    #[test]
    fn levels() {
        assert!(Codec::Zstd.check_level(Some(1000)).is_err());
        assert!(Codec::Lz4.check_level(Some(1)).is_err());
        assert!(Codec::None.check_level(Some(1)).is_err());
        assert_eq!(Codec::Zstd.check_level(Some(19)).unwrap(), 19);
    }
}
