//! A bounded walk over the Thrift compact-protocol structures of a Parquet file (the footer
//! and every page header), before the `parquet` crate decodes them.
//!
//! Why: the `parquet` crate (59 and 60) skips a list of booleans in an unknown field by looping
//! over the list's declared size without reading a byte per element, so a page header of a
//! dozen bytes declaring a list of 2^31 booleans costs billions of iterations (seconds of CPU
//! per header, found by the `table` fuzz target). In the compact protocol every list, set and
//! map element takes at least one byte, booleans included, so a size larger than the bytes
//! left is malformed: this walk refuses it, and so bounds the decoder's work by the file size.
//!
//! The walk only measures structures; it keeps nothing but the one field the page walk needs
//! (a page header's `compressed_page_size`, field 3).

/// Nesting the walk accepts; Parquet's own structures nest 5 deep at most.
const MAX_DEPTH: u32 = 32;

/// Thrift compact-protocol type ids.
mod ty {
    pub const STOP: u8 = 0;
    pub const TRUE: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const DOUBLE: u8 = 7;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const SET: u8 = 10;
    pub const MAP: u8 = 11;
    pub const STRUCT: u8 = 12;
    pub const UUID: u8 = 13;
}

struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or("a Thrift structure runs past its end")?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        if n > self.left() {
            return Err("a Thrift value runs past its end".into());
        }
        self.pos += n;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err("a Thrift integer overflows 64 bits".into());
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a Thrift integer overflows 64 bits".into())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A collection of `count` elements must have at least one byte per element left.
    fn count(&self, count: u64, what: &str) -> Result<usize, String> {
        match usize::try_from(count) {
            Ok(n) if n <= self.left() => Ok(n),
            _ => Err(format!(
                "a Thrift {what} declares {count} elements but only {} bytes follow",
                self.left()
            )),
        }
    }

    fn value(&mut self, kind: u8, depth: u32, in_collection: bool) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("Thrift structures nest deeper than {MAX_DEPTH}"));
        }
        match kind {
            // A boolean field carries its value in its type; a boolean element is one byte.
            ty::TRUE | ty::FALSE if !in_collection => Ok(()),
            ty::TRUE | ty::FALSE | ty::BYTE => self.skip(1),
            ty::I16 | ty::I32 | ty::I64 => self.varint().map(drop),
            ty::DOUBLE => self.skip(8),
            ty::UUID => self.skip(16),
            ty::BINARY => {
                let len = self.varint()?;
                self.skip(usize::try_from(len).unwrap_or(usize::MAX))
            }
            ty::LIST | ty::SET => {
                let header = self.byte()?;
                let size = match header >> 4 {
                    15 => self.varint()?,
                    short => u64::from(short),
                };
                let n = self.count(size, "list")?;
                for _ in 0..n {
                    self.value(header & 0x0f, depth + 1, true)?;
                }
                Ok(())
            }
            ty::MAP => {
                let size = self.varint()?;
                let n = self.count(size, "map")?;
                if n > 0 {
                    let kinds = self.byte()?;
                    for _ in 0..n {
                        self.value(kinds >> 4, depth + 1, true)?;
                        self.value(kinds & 0x0f, depth + 1, true)?;
                    }
                }
                Ok(())
            }
            ty::STRUCT => self.structure(depth + 1, |_, _| {}),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    /// Walks a struct up to its STOP byte, telling `seen` each top-level i32 field's value.
    fn structure(&mut self, depth: u32, mut seen: impl FnMut(i16, i64)) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("Thrift structures nest deeper than {MAX_DEPTH}"));
        }
        let mut last_id: i16 = 0;
        loop {
            let header = self.byte()?;
            let kind = header & 0x0f;
            if kind == ty::STOP {
                return Ok(());
            }
            let id = match header >> 4 {
                0 => i16::try_from(self.zigzag()?).map_err(|_| "a Thrift field id overflows")?,
                delta => last_id.wrapping_add(i16::from(delta)),
            };
            last_id = id;
            if kind == ty::I32 {
                seen(id, self.zigzag()?);
            } else {
                self.value(kind, depth, false)?;
            }
        }
    }
}

/// Checks the struct at the start of `buf`; returns its length in bytes.
pub(crate) fn check_struct(buf: &[u8]) -> Result<usize, String> {
    let mut walk = Walk { buf, pos: 0 };
    walk.structure(0, |_, _| {})?;
    Ok(walk.pos)
}

/// Checks the page headers of one column chunk (`chunk`: its bytes in the file), walking
/// from header to header by each one's `compressed_page_size` until the chunk ends.
pub(crate) fn check_pages(chunk: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    while at < chunk.len() {
        let mut walk = Walk {
            buf: &chunk[at..],
            pos: 0,
        };
        let mut page_size = None;
        walk.structure(0, |id, value| {
            if id == 3 {
                page_size = Some(value);
            }
        })?;
        let size = page_size
            .and_then(|s| usize::try_from(s).ok())
            .ok_or("a page header has no valid compressed_page_size")?;
        at = at
            .checked_add(walk.pos)
            .and_then(|a| a.checked_add(size))
            .ok_or("a page runs past its column chunk")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_larger_than_the_bytes_left_is_refused() {
        // Field 1, a list (type 9) of 2^31 - 1 booleans (size 15 = varint follows, element
        // type 1), then STOP: 8 bytes that the parquet crate would loop over 2^31 times.
        let bomb = [0x19, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let e = check_struct(&bomb).unwrap_err();
        assert!(e.contains("declares 2147483647 elements"), "{e}");
        // The same list with its two booleans present passes, and its length is measured.
        assert_eq!(check_struct(&[0x19, 0x21, 0x01, 0x02, 0x00]), Ok(5));
    }

    #[test]
    fn maps_nesting_and_truncation_are_bounded() {
        // A map declaring more entries than bytes left.
        assert!(check_struct(&[0x1b, 0xff, 0xff, 0x03, 0x55, 0x00]).is_err());
        // Structs nested past the limit.
        let mut deep = vec![0x1c; 40];
        deep.extend(vec![0x00; 41]);
        assert!(check_struct(&deep).unwrap_err().contains("nest deeper"));
        // Truncated binary, truncated struct.
        assert!(check_struct(&[0x18, 0x05, b'a']).is_err());
        assert!(check_struct(&[0x15]).is_err());
    }

    #[test]
    fn pages_are_walked_by_their_compressed_size() {
        // Two headers: field 3 (i32, zigzag 2 -> 1 byte page) each followed by one data byte.
        let chunk = [0x35, 0x02, 0x00, 0xaa, 0x35, 0x02, 0x00, 0xbb];
        assert_eq!(check_pages(&chunk), Ok(()));
        // A header without field 3, or with a negative size, is refused.
        assert!(check_pages(&[0x00]).is_err());
        assert!(check_pages(&[0x35, 0x01, 0x00]).is_err());
    }
}
