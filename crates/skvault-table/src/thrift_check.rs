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
//! names, and skips the others by that type. So the walk knows the schema too ([`Schema`]:
//! the page header's and the footer's `FileMetaData` with every struct in it, as
//! `parquet_metadata_from_bytes` reads them, fields it skips included): a known field whose
//! header names another type than the schema's is refused (the decoder would read its bytes
//! as something else than this walk did; a footer walked by its named types only was walked
//! around that way, 17 s for 363 bytes), and unknown fields are walked by their named type,
//! as the decoder skips them.
//!
//! The footer's collections are also counted against limits sized for real files
//! ([`Limit`]): the decoder builds a struct of tens to hundreds of bytes for each element
//! of a few bytes, and builds the schema tree recursively, so counts and nesting, not only
//! bytes, bound its memory, stack and time.
//!
//! The walk only measures structures; it keeps nothing but the few fields the checks need
//! (a page header's sizes, a schema element's `num_children`).

/// Nesting the walk accepts; Parquet's own structures nest 5 deep at most.
const MAX_DEPTH: u32 = 32;

/// Schema elements (columns and the groups above them) a footer may declare. pandas writes
/// one per column plus the root; 100,000 leaves room for the widest files seen in practice
/// (tens of thousands of columns) while bounding the schema tree the crate builds.
pub(crate) const MAX_SCHEMA_ELEMENTS: usize = 100_000;

/// Nesting of the schema tree (the root's columns are at depth 1). skvault reads flat
/// columns only; nested data written by pyarrow or Spark stays well below this (a list of
/// structs of lists is 6 deep). The crate builds the tree recursively and copies each leaf's
/// whole path, so depth costs stack and time.
pub(crate) const MAX_SCHEMA_DEPTH: usize = 16;

/// Row groups a footer may declare: the `parquet` crate itself refuses more than 32,768
/// (their ordinal is an i16), but only after reserving room for all it declares.
pub(crate) const MAX_ROW_GROUPS: usize = 1 << 15;

/// Column chunks (columns x row groups) a footer may declare, counted over all row groups:
/// 2,000 columns in 131 row groups, or 100 columns in 2,621. The crate keeps a few hundred
/// bytes per chunk and skvault reads each, about 5 µs per chunk in all (a pyarrow file of
/// 100 columns in 2,000 row groups of one row takes 1.1 s), so a footer of ~20 bytes per
/// chunk must not declare millions of them.
pub(crate) const MAX_COLUMN_CHUNKS: usize = 1 << 18;

/// File-level key-value metadata entries: pandas and pyarrow write one or two.
pub(crate) const MAX_KEY_VALUES: usize = 4096;

/// Lists that describe one column chunk (its encodings, page encoding statistics, level
/// histograms, geospatial types): real writers list each encoding or level once, so they
/// hold a dozen entries at most.
pub(crate) const MAX_CHUNK_LIST: usize = 64;

/// The limits on the footer's collections, each with its name in error messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Limit {
    SchemaElements,
    /// Column orders, one per column: bounded like the schema.
    ColumnOrders,
    RowGroups,
    ColumnChunks,
    KeyValues,
    /// One row group's sorting columns, at most one per column.
    SortingColumns,
    ChunkList,
}

impl Limit {
    fn max(self) -> usize {
        match self {
            Limit::SchemaElements | Limit::ColumnOrders | Limit::SortingColumns => {
                MAX_SCHEMA_ELEMENTS
            }
            Limit::RowGroups => MAX_ROW_GROUPS,
            Limit::ColumnChunks => MAX_COLUMN_CHUNKS,
            Limit::KeyValues => MAX_KEY_VALUES,
            Limit::ChunkList => MAX_CHUNK_LIST,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Limit::SchemaElements | Limit::ColumnOrders | Limit::SortingColumns => {
                "MAX_SCHEMA_ELEMENTS"
            }
            Limit::RowGroups => "MAX_ROW_GROUPS",
            Limit::ColumnChunks => "MAX_COLUMN_CHUNKS",
            Limit::KeyValues => "MAX_KEY_VALUES",
            Limit::ChunkList => "MAX_CHUNK_LIST",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::SchemaElements => "schema elements",
            Limit::ColumnOrders => "column orders",
            Limit::SortingColumns => "sorting columns in a row group",
            Limit::RowGroups => "row groups",
            Limit::ColumnChunks => "column chunks (columns x row groups)",
            Limit::KeyValues => "key-value metadata entries",
            Limit::ChunkList => "entries in a column chunk's list",
        }
    }

    /// Whether the count adds up over every list of this kind in the footer (the lists of
    /// `FileMetaData`, which a real footer holds once, and the row groups' column chunks),
    /// or holds for each list (those in a row group or column chunk).
    fn cumulative(self) -> bool {
        !matches!(self, Limit::SortingColumns | Limit::ChunkList)
    }

    const ALL: usize = 7;
}

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

/// The structs the `parquet` crate (59) decodes by their schema: a page header's, and the
/// footer's as `parquet_metadata_from_bytes` reads it without the `encryption` feature (so
/// the encryption fields are unknown to it) and with its default options (statistics and
/// encoding statistics read). Unions are walked as structs: the crate reads their first
/// field by its schema and refuses a second one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)] // the struct names of parquet.thrift
enum Schema {
    /// A struct walked by the types its field headers name.
    Any,
    PageHeader,
    DataPageHeader,
    IndexPageHeader,
    DictionaryPageHeader,
    DataPageHeaderV2,
    PageStatistics,
    FileMetaData,
    SchemaElement,
    LogicalType,
    DecimalType,
    TimeType,
    TimeUnit,
    IntType,
    VariantType,
    GeometryType,
    GeographyType,
    KeyValue,
    ColumnOrder,
    RowGroup,
    SortingColumn,
    ColumnChunk,
    ColumnMetaData,
    Statistics,
    PageEncodingStats,
    SizeStatistics,
    GeospatialStatistics,
    BoundingBox,
}

/// How the decoder reads a field it knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    /// A value of this type (booleans as `TRUE`); enums are i32.
    Value(u8),
    Struct(Schema),
    /// A list of values of this type (structs of the schema), its length within a limit.
    List(u8, Schema, Limit),
}

impl Schema {
    /// How the decoder reads field `id`; `None` for a field it skips by its named type.
    fn field(self, id: i16) -> Option<Field> {
        use Field::{List, Struct, Value};
        use Schema::*;
        let i32_ = Some(Value(ty::I32));
        let i64_ = Some(Value(ty::I64));
        let bool_ = Some(Value(ty::TRUE));
        let binary = Some(Value(ty::BINARY));
        // A union variant without data: the crate reads one byte, the STOP of an empty
        // struct, whatever type the field header names.
        let empty = Some(Struct(Any));
        match (self, id) {
            (PageHeader, 1..=4) => i32_,
            (PageHeader, 5) => Some(Struct(DataPageHeader)),
            (PageHeader, 6) => Some(Struct(IndexPageHeader)),
            (PageHeader, 7) => Some(Struct(DictionaryPageHeader)),
            (PageHeader, 8) => Some(Struct(DataPageHeaderV2)),
            (DataPageHeader, 1..=4) => i32_,
            (DataPageHeader, 5) | (DataPageHeaderV2, 8) => Some(Struct(PageStatistics)),
            (DictionaryPageHeader, 1 | 2) => i32_,
            (DictionaryPageHeader, 3) => bool_,
            (DataPageHeaderV2, 1..=6) => i32_,
            (DataPageHeaderV2, 7) => bool_,
            (PageStatistics | Statistics, 1 | 2 | 5 | 6) => binary,
            (PageStatistics | Statistics, 3 | 4) => i64_,
            (PageStatistics | Statistics, 7 | 8) => bool_,

            (FileMetaData, 1) => i32_,
            (FileMetaData, 2) => Some(List(ty::STRUCT, SchemaElement, Limit::SchemaElements)),
            (FileMetaData, 3) => i64_,
            (FileMetaData, 4) => Some(List(ty::STRUCT, RowGroup, Limit::RowGroups)),
            (FileMetaData, 5) => Some(List(ty::STRUCT, KeyValue, Limit::KeyValues)),
            (FileMetaData, 6) => binary,
            (FileMetaData, 7) => Some(List(ty::STRUCT, ColumnOrder, Limit::ColumnOrders)),
            (SchemaElement, 1..=3 | 5..=9) => i32_,
            (SchemaElement, 4) => binary,
            (SchemaElement, 10) => Some(Struct(LogicalType)),
            (LogicalType, 1..=4 | 6 | 11..=15) => empty,
            (LogicalType, 5) => Some(Struct(DecimalType)),
            (LogicalType, 7 | 8) => Some(Struct(TimeType)),
            (LogicalType, 10) => Some(Struct(IntType)),
            (LogicalType, 16) => Some(Struct(VariantType)),
            (LogicalType, 17) => Some(Struct(GeometryType)),
            (LogicalType, 18) => Some(Struct(GeographyType)),
            (DecimalType, 1 | 2) => i32_,
            (TimeType, 1) => bool_,
            (TimeType, 2) => Some(Struct(TimeUnit)),
            (TimeUnit, 1..=3) => empty,
            (IntType, 1) | (VariantType, 1) => Some(Value(ty::BYTE)),
            (IntType, 2) => bool_,
            (GeometryType | GeographyType, 1) => binary,
            (GeographyType, 2) => i32_,
            (KeyValue, 1 | 2) => binary,
            (ColumnOrder, 1) => empty,
            (RowGroup, 1) => Some(List(ty::STRUCT, ColumnChunk, Limit::ColumnChunks)),
            (RowGroup, 2 | 3 | 5) => i64_,
            (RowGroup, 4) => Some(List(ty::STRUCT, SortingColumn, Limit::SortingColumns)),
            (RowGroup, 7) => Some(Value(ty::I16)),
            (SortingColumn, 1) => i32_,
            (SortingColumn, 2 | 3) => bool_,
            (ColumnChunk, 1) => binary,
            (ColumnChunk, 2 | 4 | 6) => i64_,
            (ColumnChunk, 3) => Some(Struct(ColumnMetaData)),
            (ColumnChunk, 5 | 7) => i32_,
            (ColumnMetaData, 1 | 4 | 15) => i32_,
            (ColumnMetaData, 2) => Some(List(ty::I32, Any, Limit::ChunkList)),
            (ColumnMetaData, 5..=7 | 9..=11 | 14) => i64_,
            (ColumnMetaData, 12) => Some(Struct(Statistics)),
            (ColumnMetaData, 13) => Some(List(ty::STRUCT, PageEncodingStats, Limit::ChunkList)),
            (ColumnMetaData, 16) => Some(Struct(SizeStatistics)),
            (ColumnMetaData, 17) => Some(Struct(GeospatialStatistics)),
            (PageEncodingStats, 1..=3) => i32_,
            (SizeStatistics, 1) => i64_,
            (SizeStatistics, 2 | 3) => Some(List(ty::I64, Any, Limit::ChunkList)),
            (GeospatialStatistics, 1) => Some(Struct(BoundingBox)),
            (GeospatialStatistics, 2) => Some(List(ty::I32, Any, Limit::ChunkList)),
            (BoundingBox, 1..=8) => Some(Value(ty::DOUBLE)),
            _ => None,
        }
    }
}

/// What the walk reports to its caller: a struct of a schema starts, or an i32 field of
/// one holds a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Event {
    Begin(Schema),
    I32(Schema, i16, i64),
}

struct Walk<'a, 'e> {
    buf: &'a [u8],
    pos: usize,
    /// Values that may still be visited: starts at the byte count plus one.
    budget: usize,
    /// Elements counted so far against each cumulative [`Limit`].
    counted: [usize; Limit::ALL],
    seen: &'e mut dyn FnMut(Event),
}

impl<'a, 'e> Walk<'a, 'e> {
    fn new(buf: &'a [u8], seen: &'e mut dyn FnMut(Event)) -> Walk<'a, 'e> {
        Walk {
            buf,
            pos: 0,
            budget: buf.len().saturating_add(1),
            counted: [0; Limit::ALL],
            seen,
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

    /// Counts `n` elements of a list against its limit.
    fn limit(&mut self, limit: Limit, n: usize) -> Result<(), String> {
        let total = if limit.cumulative() {
            let slot = &mut self.counted[limit as usize];
            *slot = slot.saturating_add(n);
            *slot
        } else {
            n
        };
        if total > limit.max() {
            return Err(format!(
                "the footer declares {total} {}, over the limit of {} ({})",
                limit.what(),
                limit.max(),
                limit.name()
            ));
        }
        Ok(())
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

    /// A list or set header: the element type and the element count.
    fn list_header(&mut self) -> Result<(u8, usize), String> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => self.varint()?,
            short => u64::from(short),
        };
        Ok((header & 0x0f, self.count(size, "list")?))
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
                let (element, n) = self.list_header()?;
                for _ in 0..n {
                    self.value(element, depth + 1)?;
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
            ty::STRUCT => self.structure(depth + 1, Schema::Any),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    /// A field the decoder knows, read as it reads it; `kind` is the type its header names.
    fn known(
        &mut self,
        schema: Schema,
        id: i16,
        kind: u8,
        field: Field,
        depth: u32,
    ) -> Result<(), String> {
        let named = match field {
            Field::Value(t) => t,
            Field::Struct(_) => ty::STRUCT,
            Field::List(..) => ty::LIST,
        };
        let same = kind == named || (named == ty::TRUE && kind == ty::FALSE);
        if !same {
            return Err(format!(
                "field {id} of a {schema:?} is a {} where the format has a {}",
                type_name(kind),
                type_name(named)
            ));
        }
        match field {
            Field::Value(ty::I32) => {
                self.visit()?;
                let value = self.zigzag()?;
                (self.seen)(Event::I32(schema, id, value));
                Ok(())
            }
            Field::Value(t) => self.value(t, depth),
            Field::Struct(inner) => {
                self.visit()?;
                self.structure(depth + 1, inner)
            }
            Field::List(element, inner, limit) => {
                self.visit()?;
                let (got, n) = self.list_header()?;
                // The decoder checks the element type too (even of an empty list).
                if got != element {
                    return Err(format!(
                        "field {id} of a {schema:?} is a list of {} where the format has a list of {}",
                        type_name(got),
                        type_name(element)
                    ));
                }
                self.limit(limit, n)?;
                for _ in 0..n {
                    if element == ty::STRUCT {
                        self.visit()?;
                        self.structure(depth + 1, inner)?;
                    } else {
                        self.value(element, depth + 1)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Walks a struct of `schema` up to its STOP byte, telling `seen` where it starts and
    /// each i32 field the decoder reads by its schema.
    fn structure(&mut self, depth: u32, schema: Schema) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("Thrift structures nest deeper than {MAX_DEPTH}"));
        }
        (self.seen)(Event::Begin(schema));
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
            match schema.field(id) {
                Some(field) => self.known(schema, id, kind, field, depth)?,
                None => self.value(kind, depth)?,
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

/// Checks the struct at the start of `buf`, walked by the types its fields name; returns
/// its length in bytes.
#[cfg(test)]
fn check_struct(buf: &[u8]) -> Result<usize, String> {
    let mut ignore = |_| {};
    let mut walk = Walk::new(buf, &mut ignore);
    walk.structure(0, Schema::Any)?;
    Ok(walk.pos)
}

/// Checks a Parquet footer (`FileMetaData`, `buf` without the length and magic that
/// follow it) as the `parquet` crate will decode it: by its schema, within the byte budget
/// and the [`Limit`]s, with a schema tree the crate can build (see [`check_schema_tree`]).
pub(crate) fn check_footer(buf: &[u8]) -> Result<(), String> {
    // Each schema element's num_children (None for a leaf), in order.
    let mut children: Vec<Option<i64>> = Vec::new();
    let mut seen = |event| match event {
        Event::Begin(Schema::SchemaElement) => children.push(None),
        Event::I32(Schema::SchemaElement, 5, n) => {
            if let Some(last) = children.last_mut() {
                *last = Some(n);
            }
        }
        _ => {}
    };
    Walk::new(buf, &mut seen).structure(0, Schema::FileMetaData)?;
    check_schema_tree(&children)
}

/// Checks the schema's tree as the crate rebuilds it from the flat list (depth first, each
/// group followed by its `num_children` children): it reserves room for each group's
/// declared children before reading them, and recurses once per level. So a group may not
/// declare more children than elements follow it, and the tree may not be deeper than
/// [`MAX_SCHEMA_DEPTH`]. Other inconsistencies are left to the crate, which names them.
fn check_schema_tree(children: &[Option<i64>]) -> Result<(), String> {
    // Children still expected by each open group, innermost last.
    let mut open: Vec<i64> = Vec::new();
    for (i, n) in children.iter().enumerate() {
        if let Some(left) = open.last_mut() {
            *left -= 1;
        }
        match n {
            Some(n) if *n > 0 => {
                let after = (children.len() - i - 1) as i64;
                if *n > after {
                    return Err(format!(
                        "schema element {i} declares {n} children, but {after} elements follow it"
                    ));
                }
                if open.len() + 1 > MAX_SCHEMA_DEPTH {
                    return Err(format!(
                        "the schema nests deeper than the limit of {MAX_SCHEMA_DEPTH} (MAX_SCHEMA_DEPTH)"
                    ));
                }
                open.push(*n);
            }
            _ => {}
        }
        while open.last() == Some(&0) {
            open.pop();
        }
    }
    Ok(())
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
        let mut page_size = None;
        let mut uncompressed = None;
        let mut dictionary_values = None;
        let mut seen = |event| match event {
            Event::I32(Schema::PageHeader, 2, value) => uncompressed = Some(value),
            Event::I32(Schema::PageHeader, 3, value) => page_size = Some(value),
            Event::I32(Schema::DictionaryPageHeader, 1, value) => dictionary_values = Some(value),
            _ => {}
        };
        let mut walk = Walk::new(&chunk[at..], &mut seen);
        walk.structure(0, Schema::PageHeader)?;
        let header_len = walk.pos;
        check_page_sizes(uncompressed, dictionary_values)?;
        let size = page_size
            .and_then(|s| usize::try_from(s).ok())
            .ok_or("a page header has no valid compressed_page_size")?;
        at = at
            .checked_add(header_len)
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

    /// Thrift compact bytes for the footer tests: field headers with short deltas, lists,
    /// zigzag integers.
    #[derive(Default)]
    struct Footer(Vec<u8>);

    impl Footer {
        fn field(mut self, delta: u8, kind: u8) -> Self {
            self.0.push(delta << 4 | kind);
            self
        }
        fn int(mut self, v: i64) -> Self {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                self.0.push(z as u8 | 0x80);
                z >>= 7;
            }
            self.0.push(z as u8);
            self
        }
        fn list(mut self, element: u8, n: u64) -> Self {
            self.0.push(0xf0 | element);
            let mut n = n;
            while n >= 0x80 {
                self.0.push(n as u8 | 0x80);
                n >>= 7;
            }
            self.0.push(n as u8);
            self
        }
        fn name(mut self, name: &str) -> Self {
            self.0.push(name.len() as u8);
            self.0.extend(name.as_bytes());
            self
        }
        fn stop(mut self) -> Self {
            self.0.push(0);
            self
        }
        fn bytes(mut self, n: usize) -> Self {
            self.0.resize(self.0.len() + n, 0);
            self
        }
        /// version 1, then field 2: the schema list header for `n` elements.
        fn schema(self, n: u64) -> Self {
            self.field(1, ty::I32)
                .int(1)
                .field(1, ty::LIST)
                .list(ty::STRUCT, n)
        }
        /// A schema element named `name` with `children` children (a group) or a double
        /// leaf (`None`).
        fn element(self, name: &str, children: Option<i64>) -> Self {
            let e = self.field(4, ty::BINARY).name(name);
            match children {
                Some(n) => e.field(1, ty::I32).int(n).stop(),
                // Field 1 (type) with a long-form id, after field 4: DOUBLE.
                None => e.field(0, ty::I32).int(1).int(5).stop(),
            }
        }
    }

    fn refused(footer: Footer) -> String {
        check_footer(&footer.0).unwrap_err()
    }

    #[test]
    fn a_known_footer_field_naming_another_type_is_refused() {
        // Found by the fuzz target (fuzz/corpus/table/footer-bool-lists-hidden-from-walk):
        // a schema element's repetition_type (field 3, an i32 enum) named an i16; the crate read
        // it as the i32 it knows, the walk by the named type, and from there on they saw
        // different structures, the crate lists of 2^31 booleans.
        let f = Footer::default()
            .schema(1)
            .field(3, ty::I16)
            .int(0)
            .stop()
            .stop();
        let e = refused(f);
        assert_eq!(
            e,
            "field 3 of a SchemaElement is a i16 where the format has a i32"
        );
        // A known list must hold the element type the crate expects: row groups are structs.
        let f = Footer::default()
            .field(1, ty::I32)
            .int(1)
            .field(3, ty::LIST)
            .list(ty::TRUE, 3)
            .stop();
        let e = refused(f);
        assert!(
            e.contains("field 4 of a FileMetaData is a list of bool"),
            "{e}"
        );
        // A time column's unit (LogicalType 7, TimeType 2, TimeUnit 1) named a bool: the crate
        // reads a byte there whatever the header names (the STOP of an empty struct), so a
        // walk by the named type, reading none, would be one byte behind it from there on.
        let f = Footer::default()
            .schema(1)
            .field(4, ty::BINARY)
            .name("t")
            .field(6, ty::STRUCT)
            .field(7, ty::STRUCT)
            .field(1, ty::TRUE)
            .field(1, ty::STRUCT)
            .field(1, ty::TRUE)
            .stop()
            .stop()
            .stop()
            .stop()
            .stop();
        assert_eq!(
            refused(f),
            "field 1 of a TimeUnit is a bool where the format has a struct"
        );
    }

    #[test]
    fn footer_counts_are_bounded_by_named_limits() {
        let over = |limit: usize| limit as u64 + 1;
        // Each list header declares one element more than its limit; the bytes that follow
        // only have to be enough for the budget of values per byte.
        let e = refused(
            Footer::default()
                .schema(over(MAX_SCHEMA_ELEMENTS))
                .bytes(MAX_SCHEMA_ELEMENTS + 8),
        );
        assert_eq!(
            e,
            "the footer declares 100001 schema elements, over the limit of 100000 (MAX_SCHEMA_ELEMENTS)"
        );
        let e = refused(
            Footer::default()
                .field(4, ty::LIST)
                .list(ty::STRUCT, over(MAX_ROW_GROUPS))
                .bytes(MAX_ROW_GROUPS + 8),
        );
        assert!(
            e.contains("32769 row groups, over the limit of 32768 (MAX_ROW_GROUPS)"),
            "{e}"
        );
        let e = refused(
            Footer::default()
                .field(5, ty::LIST)
                .list(ty::STRUCT, over(MAX_KEY_VALUES))
                .bytes(MAX_KEY_VALUES + 8),
        );
        assert!(e.contains("(MAX_KEY_VALUES)"), "{e}");

        // Column chunks add up over the row groups: two groups of 150,000 empty chunks.
        let half = 150_000;
        let mut f = Footer::default().field(4, ty::LIST).list(ty::STRUCT, 2);
        for _ in 0..2 {
            f = f
                .field(1, ty::LIST)
                .list(ty::STRUCT, half)
                .bytes(half as usize)
                .stop();
        }
        let e = refused(f.stop().bytes(2 * half as usize));
        assert!(
            e.contains("300000 column chunks (columns x row groups), over the limit of 262144 (MAX_COLUMN_CHUNKS)"),
            "{e}"
        );

        // A column chunk's encodings (ColumnChunk field 3, ColumnMetaData field 2).
        let f = Footer::default()
            .field(4, ty::LIST)
            .list(ty::STRUCT, 1)
            .field(1, ty::LIST)
            .list(ty::STRUCT, 1)
            .field(3, ty::STRUCT)
            .field(2, ty::LIST)
            .list(ty::I32, over(MAX_CHUNK_LIST))
            .bytes(100);
        let e = refused(f);
        assert!(
            e.contains(
                "65 entries in a column chunk's list, over the limit of 64 (MAX_CHUNK_LIST)"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_schema_tree_is_bounded_in_depth_and_children() {
        // root > g1 > ... > g16 > x: 16 nested groups under the root.
        let nested = |groups: usize| {
            let mut f = Footer::default()
                .schema(groups as u64 + 2)
                .element("root", Some(1));
            for _ in 0..groups {
                f = f.element("g", Some(1));
            }
            f.element("x", None).stop()
        };
        assert_eq!(check_footer(&nested(MAX_SCHEMA_DEPTH - 1).0), Ok(()));
        let e = refused(nested(MAX_SCHEMA_DEPTH));
        assert_eq!(
            e,
            "the schema nests deeper than the limit of 16 (MAX_SCHEMA_DEPTH)"
        );
        // A group declaring 2^31 - 1 children: the crate reserves room for all of them.
        let f = Footer::default()
            .schema(2)
            .element("root", Some(i64::from(i32::MAX)))
            .element("x", None)
            .stop();
        let e = refused(f);
        assert_eq!(
            e,
            "schema element 0 declares 2147483647 children, but 1 elements follow it"
        );
        // A flat schema of 2,000 columns is fine.
        let mut f = Footer::default().schema(2001).element("root", Some(2000));
        for _ in 0..2000 {
            f = f.element("c", None);
        }
        assert_eq!(check_footer(&f.stop().0), Ok(()));
    }
}
