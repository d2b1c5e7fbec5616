//! A bounded walk over the Thrift compact-protocol structures of a Parquet file (the footer
//! and every page header), before the `parquet` crate decodes them.
//!
//! Why: the `parquet` crate (59 and 60) skips a list of booleans in an unknown field by looping
//! over the list's declared size without reading a byte per element, so a page header of a
//! dozen bytes declaring a list of 2^31 booleans costs billions of iterations (seconds of CPU
//! per header, found by the `table` fuzz target).
//!
//! The walk reads the bytes exactly as that skip does (a boolean element takes no byte), so
//! that it sees the same structure the decoder will see: a walk that read a byte per boolean,
//! as the protocol's writers do, would see different lists from the decoder's and could be
//! walked around (the fuzz target found that too). It then bounds what the decoder would do:
//! the number of values visited may not exceed the number of bytes (plus one), which no
//! well-formed page header or footer comes near, since only booleans in collections are free.
//!
//! The decoder reads the fields it knows by their schema, whatever type the field header
//! names, and skips the others by that type. So the walk knows the page-header schema too
//! ([`Schema`]): a known field whose header names another type than the schema's is refused
//! (the decoder would read its bytes as something else than this walk did), and unknown
//! fields are walked by their named type, as the decoder skips them. The footer is walked
//! without its schema: a footer whose known fields name wrong types could still send the
//! decoder down a different path than this walk (docs/NATIVE.md says what that costs).
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

/// The structs of a page header, as the `parquet` crate reads them (`parquet.thrift`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Schema {
    /// A struct walked by the types its field headers name.
    Any,
    PageHeader,
    DataPageHeader,
    IndexPageHeader,
    DictionaryPageHeader,
    DataPageHeaderV2,
    PageStatistics,
}

impl Schema {
    /// The type of field `id` (booleans as `TRUE`) and, for a struct, its schema; `None` for a
    /// field this struct does not have.
    fn field(self, id: i16) -> Option<(u8, Schema)> {
        use Schema::*;
        let i32_ = Some((ty::I32, Any));
        let bool_ = Some((ty::TRUE, Any));
        match (self, id) {
            (PageHeader, 1..=4) => i32_,
            (PageHeader, 5) => Some((ty::STRUCT, DataPageHeader)),
            (PageHeader, 6) => Some((ty::STRUCT, IndexPageHeader)),
            (PageHeader, 7) => Some((ty::STRUCT, DictionaryPageHeader)),
            (PageHeader, 8) => Some((ty::STRUCT, DataPageHeaderV2)),
            (DataPageHeader, 1..=4) => i32_,
            (DataPageHeader, 5) | (DataPageHeaderV2, 8) => Some((ty::STRUCT, PageStatistics)),
            (DictionaryPageHeader, 1 | 2) => i32_,
            (DictionaryPageHeader, 3) => bool_,
            (DataPageHeaderV2, 1..=6) => i32_,
            (DataPageHeaderV2, 7) => bool_,
            (PageStatistics, 1 | 2 | 5 | 6) => Some((ty::BINARY, Any)),
            (PageStatistics, 3 | 4) => Some((ty::I64, Any)),
            (PageStatistics, 7 | 8) => bool_,
            _ => None,
        }
    }
}

struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values that may still be visited: starts at the byte count plus one.
    budget: usize,
}

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8]) -> Walk<'a> {
        Walk {
            buf,
            pos: 0,
            budget: buf.len().saturating_add(1),
        }
    }

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

    /// A collection of `count` elements is refused up front when the budget cannot cover it.
    fn count(&self, count: u64, what: &str) -> Result<usize, String> {
        match usize::try_from(count) {
            Ok(n) if n <= self.budget => Ok(n),
            _ => Err(format!(
                "a Thrift {what} declares {count} elements in a structure of {} bytes",
                self.buf.len()
            )),
        }
    }

    fn visit(&mut self) -> Result<(), String> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            format!(
                "a Thrift structure of {} bytes declares more values than bytes",
                self.buf.len()
            )
        })?;
        Ok(())
    }

    fn value(&mut self, kind: u8, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("Thrift structures nest deeper than {MAX_DEPTH}"));
        }
        self.visit()?;
        match kind {
            // As the decoder's skip reads them: no byte, whether a field or an element.
            ty::TRUE | ty::FALSE => Ok(()),
            ty::BYTE => self.skip(1),
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
                    self.value(header & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            ty::MAP => {
                let size = self.varint()?;
                let n = self.count(size, "map")?;
                if n > 0 {
                    let kinds = self.byte()?;
                    for _ in 0..n {
                        self.value(kinds >> 4, depth + 1)?;
                        self.value(kinds & 0x0f, depth + 1)?;
                    }
                }
                Ok(())
            }
            ty::STRUCT => self.structure(depth + 1, Schema::Any, &mut |_, _, _| {}),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    /// Walks a struct of `schema` up to its STOP byte, telling `seen` each i32 field's
    /// value with the schema of the struct that holds it (nested known structs included).
    fn structure(
        &mut self,
        depth: u32,
        schema: Schema,
        seen: &mut dyn FnMut(Schema, i16, i64),
    ) -> Result<(), String> {
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
            if let Some((expected, inner)) = schema.field(id) {
                let same = kind == expected || (expected == ty::TRUE && kind == ty::FALSE);
                if !same {
                    return Err(format!(
                        "field {id} of a {schema:?} is a {} where the format has a {}",
                        type_name(kind),
                        type_name(expected)
                    ));
                }
                if kind == ty::STRUCT {
                    self.visit()?;
                    self.structure(depth + 1, inner, seen)?;
                    continue;
                }
            }
            if kind == ty::I32 {
                self.visit()?;
                seen(schema, id, self.zigzag()?);
            } else {
                self.value(kind, depth)?;
            }
        }
    }
}

fn type_name(kind: u8) -> &'static str {
    match kind {
        ty::TRUE | ty::FALSE => "bool",
        ty::BYTE => "byte",
        ty::I16 => "i16",
        ty::I32 => "i32",
        ty::I64 => "i64",
        ty::DOUBLE => "double",
        ty::BINARY => "binary",
        ty::LIST => "list",
        ty::SET => "set",
        ty::MAP => "map",
        ty::STRUCT => "struct",
        ty::UUID => "uuid",
        _ => "unknown type",
    }
}

/// Checks the struct at the start of `buf` (walked by the types its fields name); returns
/// its length in bytes.
pub(crate) fn check_struct(buf: &[u8]) -> Result<usize, String> {
    let mut walk = Walk::new(buf);
    walk.structure(0, Schema::Any, &mut |_, _, _| {})?;
    Ok(walk.pos)
}

/// The largest page (uncompressed) a reader accepts: the `parquet` crate allocates a
/// page's declared uncompressed size before decompressing it. Writers use pages of about
/// 1 MiB (pyarrow, Spark); 64 MiB leaves room for any of them.
pub(crate) const MAX_PAGE_BYTES: i64 = 64 << 20;

/// A page's declared sizes, before the `parquet` crate allocates by them: the uncompressed
/// size within [`MAX_PAGE_BYTES`], and a dictionary page's value count within its bytes
/// (the crate decodes a whole dictionary at once, reserving room for every value it
/// declares; no dictionary value takes less than a byte).
fn check_page_sizes(
    uncompressed: Option<i64>,
    dictionary_values: Option<i64>,
) -> Result<(), String> {
    let size = uncompressed.ok_or("a page header has no uncompressed_page_size")?;
    if !(0..=MAX_PAGE_BYTES).contains(&size) {
        return Err(format!(
            "a page declares {size} bytes uncompressed, outside 0..={MAX_PAGE_BYTES}"
        ));
    }
    match dictionary_values {
        Some(n) if !(0..=size).contains(&n) => Err(format!(
            "a dictionary page declares {n} values in {size} bytes"
        )),
        _ => Ok(()),
    }
}

/// Checks the page headers of one column chunk (`chunk`: its bytes in the file), walking
/// from header to header by each one's `compressed_page_size` until the chunk ends.
pub(crate) fn check_pages(chunk: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    while at < chunk.len() {
        let mut walk = Walk::new(&chunk[at..]);
        let mut page_size = None;
        let mut uncompressed = None;
        let mut dictionary_values = None;
        walk.structure(
            0,
            Schema::PageHeader,
            &mut |schema, id, value| match (schema, id) {
                (Schema::PageHeader, 2) => uncompressed = Some(value),
                (Schema::PageHeader, 3) => page_size = Some(value),
                (Schema::DictionaryPageHeader, 1) => dictionary_values = Some(value),
                _ => {}
            },
        )?;
        check_page_sizes(uncompressed, dictionary_values)?;
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
        // A list of two booleans is read as the decoder reads it: no byte per element, so the
        // struct ends at the byte after the list header.
        assert_eq!(check_struct(&[0x19, 0x21, 0x00]), Ok(3));
    }

    #[test]
    fn nested_boolean_lists_cannot_multiply_the_work() {
        // A list of 6 lists of 6 booleans each: 7 list headers, 36 free elements, in 9 bytes.
        let mut nested = vec![0x19, 0x69];
        nested.extend([0x61; 6]);
        nested.push(0x00);
        let e = check_struct(&nested).unwrap_err();
        assert!(e.contains("in a structure of 9 bytes"), "{e}");
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
        // Two headers: fields 2 and 3 (i32, zigzag 2 -> 1 byte page) each followed by one
        // data byte.
        let chunk = [
            0x25, 0x02, 0x15, 0x02, 0x00, 0xaa, 0x25, 0x02, 0x15, 0x02, 0x00, 0xbb,
        ];
        assert_eq!(check_pages(&chunk), Ok(()));
        // A header without field 3, or with a negative size, is refused.
        assert!(check_pages(&[0x00]).is_err());
        assert!(check_pages(&[0x25, 0x00, 0x15, 0x01, 0x00]).is_err());
    }

    #[test]
    fn declared_sizes_that_would_allocate_beyond_the_bytes_are_refused() {
        // No uncompressed size; an uncompressed size past the limit (zigzag 2^27 = 128 MiB).
        assert!(check_pages(&[0x35, 0x00, 0x00])
            .unwrap_err()
            .contains("uncompressed_page_size"));
        let e = check_pages(&[0x25, 0x80, 0x80, 0x80, 0x80, 0x01, 0x15, 0x00, 0x00]).unwrap_err();
        assert!(e.contains("134217728 bytes uncompressed"), "{e}");
        // A dictionary page (field 7) of 8 bytes declaring 2^30 values (zigzag 2^31).
        let bomb = [
            0x25, 0x10, 0x15, 0x00, 0x4c, 0x15, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00, 0x00,
        ];
        let e = check_pages(&bomb).unwrap_err();
        assert!(e.contains("declares 1073741824 values in 8 bytes"), "{e}");
        // The same page with 8 values is fine.
        let fine = [0x25, 0x10, 0x15, 0x00, 0x4c, 0x15, 0x10, 0x00, 0x00];
        assert_eq!(check_pages(&fine), Ok(()));
    }

    #[test]
    fn known_page_header_fields_must_have_their_schema_type() {
        // Field 3 named a list: the decoder would read its bytes as an i32 varint anyway,
        // and then see other structures than a walk by the named type.
        let e = check_pages(&[0x25, 0x00, 0x19, 0x01, 0x00]).unwrap_err();
        assert!(
            e.contains("field 3 of a PageHeader is a list where the format has a i32"),
            "{e}"
        );
        // Inside the data page header (field 5), statistics (field 5) must be a struct.
        let e =
            check_pages(&[0x25, 0x00, 0x15, 0x00, 0x2c, 0x58, 0x01, 0x00, 0x00, 0x00]).unwrap_err();
        assert!(e.contains("DataPageHeader"), "{e}");
        // A dictionary page header's is_sorted (field 3) is a boolean, either value.
        assert_eq!(
            check_pages(&[0x25, 0x02, 0x15, 0x00, 0x4c, 0x15, 0x02, 0x15, 0x00, 0x11, 0x00, 0x00]),
            Ok(())
        );
    }
}
