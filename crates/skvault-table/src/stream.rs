//! Reading a Parquet file in batches of rows, with memory bounded by two row groups' column
//! chunks (the next one is read ahead) and one batch of decoded values, whatever the file's
//! size: the input of streaming `skvault predict`.
//!
//! The file is read through a [`RangeSource`] (a local file, or an object in a store), by
//! byte ranges: the footer first, then each row group's column chunks. Every check
//! of the whole-file reader applies (footer and page headers walked by [`thrift_check`]
//! before the `parquet` crate parses them, column types by name, chunks inside the file and
//! side by side). Columns are decoded in lockstep, `batch_rows` records at a time, keeping
//! their stored values ([`RawColumn`]) so that they can be written out unchanged
//! (`--keep-columns`) as well as turned into model input ([`Batch::table`], [`Batch::frame`]).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Type as PhysicalType;
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{ReaderProperties, ReaderPropertiesPtr};
use parquet::file::reader::{ChunkReader, Length, RowGroupReader};
use parquet::file::serialized_reader::SerializedRowGroupReader;
use parquet::schema::types::ColumnDescPtr;

use skvault_frame::{Column, DictBuilder, Frame, Value};

use crate::parquet_file::{corrupt, guarded, is_pandas_index, kind_of, Kind};
use skvault_infer::format_float;

use crate::{csv_field, err, thrift_check, Table, TableError};

/// Random access to one file's bytes.
pub trait RangeSource: Send + Sync {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// The bytes of each range, in order; a range past the end is an error.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>>;
}

impl RangeSource for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>> {
        use std::os::unix::fs::FileExt;
        ranges
            .iter()
            .map(|r| {
                let len = usize::try_from(r.end.saturating_sub(r.start))
                    .map_err(std::io::Error::other)?;
                let mut buf = vec![0; len];
                self.read_exact_at(&mut buf, r.start)?;
                Ok(Bytes::from(buf))
            })
            .collect()
    }
}

/// A file held in memory (tests, fuzzing).
impl RangeSource for Bytes {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>> {
        ranges
            .iter()
            .map(|r| {
                let inside = usize::try_from(r.start)
                    .ok()
                    .zip(usize::try_from(r.end).ok())
                    .filter(|(start, end)| start <= end && *end <= self.len());
                match inside {
                    Some((start, end)) => Ok(self.slice(start..end)),
                    None => Err(std::io::ErrorKind::UnexpectedEof.into()),
                }
            })
            .collect()
    }
}

/// The bytes read from the end of a file at first, which hold the footer of most files.
const FOOTER_GUESS: u64 = 64 << 10;

/// The largest footer accepted: footers of real files are kilobytes to a few megabytes.
const MAX_FOOTER: u64 = 64 << 20;

/// One column read from the file: where it is in the file's schema, and how it decodes.
#[derive(Clone)]
pub struct StreamColumn {
    index: usize,
    kind: Kind,
    descr: ColumnDescPtr,
}

impl StreamColumn {
    pub fn name(&self) -> &str {
        self.descr.name()
    }

    /// The column's type as stored (physical type, logical or converted type, nullability),
    /// for comparing the files of a dataset and for writing the column out unchanged.
    pub fn descriptor(&self) -> &ColumnDescPtr {
        &self.descr
    }

    /// The column's stored type in words, for messages.
    pub fn type_text(&self) -> String {
        let t = self.descr.self_type();
        let info = t.get_basic_info();
        let logical = match info.logical_type_ref() {
            Some(l) => format!(" {l:?}"),
            None if info.converted_type() != parquet::basic::ConvertedType::NONE => {
                format!(" {}", info.converted_type())
            }
            None => String::new(),
        };
        let nullable = if self.descr.max_def_level() > 0 {
            "nullable "
        } else {
            ""
        };
        format!("{nullable}{}{logical}", self.descr.physical_type())
    }
}

/// A Parquet file opened for streaming: its footer parsed and checked, its columns typed.
pub struct ParquetStream {
    source: Arc<dyn RangeSource>,
    size: u64,
    metadata: Arc<ParquetMetaData>,
    columns: Vec<StreamColumn>,
    props: ReaderPropertiesPtr,
}

impl ParquetStream {
    /// Reads and checks the footer; `text`: UTF-8 string columns are allowed (as text).
    pub fn open(source: Arc<dyn RangeSource>, text: bool) -> Result<ParquetStream, TableError> {
        let src = Arc::clone(&source);
        guarded(std::panic::AssertUnwindSafe(move || open(src, text)))
    }

    /// The columns read, in the file's order (pandas' index columns left out).
    pub fn columns(&self) -> &[StreamColumn] {
        &self.columns
    }

    /// The rows the footer declares.
    pub fn num_rows(&self) -> u64 {
        self.metadata
            .row_groups()
            .iter()
            .map(|g| g.num_rows().max(0) as u64)
            .fold(0, u64::saturating_add)
    }

    pub fn num_row_groups(&self) -> usize {
        self.metadata.num_row_groups()
    }

    /// The rows of the file in batches of at most `batch_rows`, row group by row group.
    pub fn batches(&self, batch_rows: usize) -> Batches<'_> {
        Batches {
            stream: self,
            batch_rows: batch_rows.max(1),
            group: 0,
            readers: Vec::new(),
            left: 0,
            next: None,
        }
    }

    /// The byte ranges of row group `g`'s chunks of the columns read.
    fn ranges(&self, g: usize) -> Result<Vec<Range<u64>>, TableError> {
        self.columns
            .iter()
            .map(|c| chunk_range(&self.metadata, g, c.index))
            .collect()
    }
}

fn open(source: Arc<dyn RangeSource>, text: bool) -> Result<ParquetStream, TableError> {
    let size = source.size();
    if size == 0 {
        return err("the file is empty (0 bytes)");
    }
    if size < 12 {
        return Err(corrupt("shorter than a Parquet header and footer"));
    }
    let read = |ranges: &[Range<u64>]| -> Result<Vec<Bytes>, TableError> {
        let got = source
            .read_ranges(ranges)
            .map_err(|e| TableError(format!("reading: {e}")))?;
        if got.len() != ranges.len() {
            return Err(TableError(
                "reading: fewer ranges returned than asked".into(),
            ));
        }
        Ok(got)
    };
    // The head's magic and the file's last bytes in one read (one round trip on S3): the
    // footer is usually among them.
    let tail_start = size.saturating_sub(FOOTER_GUESS).max(4);
    let first = read(&[0..4, tail_start..size])?;
    let (head, tail) = (&first[0], &first[1]);
    let end = tail.len();
    if end < 8 || tail.get(end - 4..) != Some(b"PAR1".as_slice()) {
        return Err(corrupt("no PAR1 magic at the end"));
    }
    if head.as_ref() != b"PAR1" {
        return Err(corrupt("no PAR1 magic at the start"));
    }
    let len = [tail[end - 8], tail[end - 7], tail[end - 6], tail[end - 5]];
    let declared = u64::from(u32::from_le_bytes(len));
    if declared > MAX_FOOTER || declared.saturating_add(12) > size {
        return Err(corrupt(format!(
            "the footer declares {declared} bytes, in a file of {size}"
        )));
    }
    let footer_start = size - 8 - declared;
    let footer = if footer_start >= tail_start {
        let from = (footer_start - tail_start) as usize;
        tail.slice(from..end - 8)
    } else {
        let rest = footer_start..size - 8;
        read(std::slice::from_ref(&rest))?.swap_remove(0)
    };
    thrift_check::check_footer(&footer).map_err(|e| corrupt(format!("footer: {e}")))?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(corrupt)?;
    let schema = metadata.file_metadata().schema_descr_ptr();
    let mut columns = Vec::new();
    for i in 0..schema.num_columns() {
        let descr = schema.column(i);
        if is_pandas_index(descr.name()) && descr.path().parts().len() == 1 {
            continue;
        }
        columns.push(StreamColumn {
            index: i,
            kind: kind_of(&descr, text)?,
            descr,
        });
    }
    if columns.is_empty() {
        return err("the Parquet file has no columns");
    }
    let mut total: u64 = 0;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        if group.num_columns() != schema.num_columns() {
            return Err(corrupt(format!(
                "row group {g} has {} columns, the schema {}",
                group.num_columns(),
                schema.num_columns()
            )));
        }
        for c in &columns {
            let range = chunk_range(&metadata, g, c.index)?;
            if range.end > size {
                return Err(corrupt(format!(
                    "column {:?}: its chunk lies outside the file",
                    c.name()
                )));
            }
            total = total.saturating_add(range.end - range.start);
        }
    }
    // Each chunk is walked and decoded on its own: chunks declared over the same bytes
    // would multiply the work by their number (real files never overlap them).
    if total > size {
        return Err(corrupt(format!(
            "its column chunks declare {total} bytes in all, more than the file's {size}: they overlap"
        )));
    }
    Ok(ParquetStream {
        source,
        size,
        metadata: Arc::new(metadata),
        columns,
        props: Arc::new(ReaderProperties::builder().build()),
    })
}

/// The bytes of row group `g`'s column `i` (its dictionary page, if any, and data pages).
fn chunk_range(metadata: &ParquetMetaData, g: usize, i: usize) -> Result<Range<u64>, TableError> {
    let column = metadata.row_group(g).column(i);
    let start = column
        .dictionary_page_offset()
        .unwrap_or_else(|| column.data_page_offset());
    let start = u64::try_from(start).map_err(|_| corrupt("a negative chunk offset"))?;
    let len =
        u64::try_from(column.compressed_size()).map_err(|_| corrupt("a negative chunk size"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| corrupt("a chunk offset out of range"))?;
    Ok(start..end)
}

/// One row group's column chunks, held in memory at their offsets in the file: what the
/// `parquet` crate's page readers read from.
struct Chunks {
    size: u64,
    parts: Vec<(u64, Bytes)>,
}

impl Chunks {
    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<Bytes> {
        // Chunks may touch: the first byte of one is the end of the one before.
        for (at, bytes) in &self.parts {
            let end = at.saturating_add(bytes.len() as u64);
            if start >= *at && (start < end || (start == end && length == Some(0))) {
                let from = (start - at) as usize;
                let to = match length {
                    Some(n) => from.checked_add(n).filter(|to| *to <= bytes.len()),
                    None => Some(bytes.len()),
                };
                if let Some(to) = to {
                    return Ok(bytes.slice(from..to));
                }
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "a page at byte {start} lies outside its column chunk"
        )))
    }
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Chunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// One column's stored values for a batch of rows.
#[derive(Debug, Clone)]
pub enum RawValues {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// A column of a batch: the non-null values, and the definition levels when the column is
/// nullable (one per row; `max_def` marks a value, less a null).
#[derive(Debug, Clone)]
pub struct RawColumn {
    pub values: RawValues,
    pub defs: Option<Vec<i16>>,
    pub max_def: i16,
    kind: Kind,
}

impl RawColumn {
    /// Whether row `r` is null, and otherwise the index of its value.
    fn positions(&self, n_rows: usize) -> Vec<Option<usize>> {
        match &self.defs {
            None => (0..n_rows).map(Some).collect(),
            Some(defs) => {
                let mut next = 0;
                defs.iter()
                    .map(|d| {
                        (*d == self.max_def && self.max_def > 0).then(|| {
                            next += 1;
                            next - 1
                        })
                    })
                    .collect()
            }
        }
    }

    /// The values as numbers, nulls as NaN (as the whole-file reader makes them).
    fn numbers(&self, n_rows: usize) -> Result<Vec<f64>, TableError> {
        let unsigned = self.kind == Kind::Unsigned;
        let at = |i: usize| -> Option<f64> {
            Some(match &self.values {
                RawValues::Bool(v) => f64::from(u8::from(*v.get(i)?)),
                RawValues::Int32(v) if unsigned => f64::from(*v.get(i)? as u32),
                RawValues::Int32(v) => f64::from(*v.get(i)?),
                RawValues::Int64(v) if unsigned => (*v.get(i)? as u64) as f64,
                RawValues::Int64(v) => *v.get(i)? as f64,
                RawValues::Float(v) => f64::from(*v.get(i)?),
                RawValues::Double(v) => *v.get(i)?,
                RawValues::Bytes(_) => return None,
            })
        };
        self.positions(n_rows)
            .into_iter()
            .map(|p| match p {
                None => Ok(f64::NAN),
                Some(i) => at(i).ok_or_else(|| corrupt("fewer values than definition levels")),
            })
            .collect()
    }

    /// The values as CSV cells: integers as integers, floats in their shortest round-trip
    /// text, booleans as `True`/`False` (as pandas writes them), text quoted where needed,
    /// nulls empty.
    pub fn texts(&self, n_rows: usize) -> Result<Vec<String>, TableError> {
        let unsigned = self.kind == Kind::Unsigned;
        let at = |i: usize| -> Option<String> {
            Some(match &self.values {
                RawValues::Bool(v) => (if *v.get(i)? { "True" } else { "False" }).to_string(),
                RawValues::Int32(v) if unsigned => (*v.get(i)? as u32).to_string(),
                RawValues::Int32(v) => v.get(i)?.to_string(),
                RawValues::Int64(v) if unsigned => (*v.get(i)? as u64).to_string(),
                RawValues::Int64(v) => v.get(i)?.to_string(),
                RawValues::Float(v) => format_float(f64::from(*v.get(i)?)),
                RawValues::Double(v) => format_float(*v.get(i)?),
                RawValues::Bytes(v) => csv_field(&String::from_utf8_lossy(v.get(i)?.data())),
            })
        };
        self.positions(n_rows)
            .into_iter()
            .map(|p| match p {
                None => Ok(String::new()),
                Some(i) => at(i).ok_or_else(|| corrupt("fewer values than definition levels")),
            })
            .collect()
    }

    /// The values as frame values: text for string columns, numbers otherwise.
    fn values(&self, n_rows: usize) -> Result<Vec<Value>, TableError> {
        let RawValues::Bytes(v) = &self.values else {
            return Ok(self.numbers(n_rows)?.into_iter().map(Value::Num).collect());
        };
        self.positions(n_rows)
            .into_iter()
            .map(|p| match p {
                None => Ok(Value::NaN),
                Some(i) => {
                    let b = v
                        .get(i)
                        .ok_or_else(|| corrupt("fewer values than definition levels"))?;
                    std::str::from_utf8(b.data())
                        .map(|s| Value::Str(s.to_string()))
                        .map_err(|_| corrupt("a string column holds bytes that are not UTF-8"))
                }
            })
            .collect()
    }
}

/// Some consecutive rows of a file, every column read.
#[derive(Debug, Clone)]
pub struct Batch {
    pub n_rows: usize,
    pub columns: Vec<RawColumn>,
}

impl Batch {
    /// The rows as a numeric table (row-major), named by `names`.
    pub fn table(&self, names: &[String]) -> Result<Table, TableError> {
        let columns = self
            .columns
            .iter()
            .map(|c| {
                if c.kind == Kind::Text {
                    Err(corrupt("a text column in a numeric table"))
                } else {
                    c.numbers(self.n_rows)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut data = Vec::with_capacity(self.n_rows.saturating_mul(columns.len()));
        for r in 0..self.n_rows {
            data.extend(
                columns
                    .iter()
                    .map(|c| c.get(r).copied().unwrap_or(f64::NAN)),
            );
        }
        Ok(Table {
            data,
            n_rows: self.n_rows,
            n_cols: columns.len(),
            names: Some(names.to_vec()),
        })
    }

    /// The rows as a frame: numeric columns as numbers, string columns as text.
    pub fn frame(&self, names: &[String]) -> Result<Frame, TableError> {
        let columns = names
            .iter()
            .zip(&self.columns)
            .map(|(name, c)| {
                if c.kind != Kind::Text {
                    return Ok(Column::Numeric(c.numbers(self.n_rows)?));
                }
                let mut b = DictBuilder::with_capacity(name, self.n_rows);
                for v in c.values(self.n_rows)? {
                    b.push(v).map_err(|e| TableError(e.to_string()))?;
                }
                Ok(Column::Dict(b.finish()))
            })
            .collect::<Result<Vec<_>, TableError>>()?;
        Frame::new(names.to_vec(), columns).map_err(|e| TableError(e.to_string()))
    }
}

/// The batches of a [`ParquetStream`]: call [`Batches::next_batch`] until it returns `None`.
pub struct Batches<'a> {
    stream: &'a ParquetStream,
    batch_rows: usize,
    /// The next row group to open.
    group: usize,
    /// The open row group's column readers, and its rows not read yet.
    readers: Vec<ColumnReader>,
    left: usize,
    /// The next row group's chunks, being read while this one is decoded and predicted (on
    /// S3 a read costs a round trip that would otherwise stall every row group).
    next: Option<Prefetch>,
}

/// Row group `group`'s chunk ranges, read on a thread of their own.
struct Prefetch {
    group: usize,
    ranges: Vec<Range<u64>>,
    reading: std::thread::JoinHandle<std::io::Result<Vec<Bytes>>>,
}

impl Prefetch {
    fn start(stream: &ParquetStream, group: usize) -> Result<Prefetch, TableError> {
        let ranges = stream.ranges(group)?;
        let source = Arc::clone(&stream.source);
        let wanted = ranges.clone();
        let reading = std::thread::Builder::new()
            .name("skvault-parquet-read".into())
            .spawn(move || source.read_ranges(&wanted))
            .map_err(|e| TableError(format!("reading row group {group}: {e}")))?;
        Ok(Prefetch {
            group,
            ranges,
            reading,
        })
    }

    fn finish(self) -> Result<(Vec<Range<u64>>, Vec<Bytes>), TableError> {
        let group = self.group;
        let failed = |e: String| TableError(format!("reading row group {group}: {e}"));
        let bytes = self
            .reading
            .join()
            .map_err(|_| failed("the reading thread failed".into()))?
            .map_err(|e| failed(e.to_string()))?;
        Ok((self.ranges, bytes))
    }
}

impl Batches<'_> {
    /// The next batch of rows, `None` after the last.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, TableError> {
        guarded(std::panic::AssertUnwindSafe(|| self.next_inner()))
    }

    fn next_inner(&mut self) -> Result<Option<Batch>, TableError> {
        while self.left == 0 {
            // Dropping the readers of the last group frees its chunks.
            self.readers.clear();
            if self.group >= self.stream.num_row_groups() {
                return Ok(None);
            }
            self.open_group()?;
        }
        let want = self.left.min(self.batch_rows);
        let mut columns = Vec::with_capacity(self.readers.len());
        let group = self.group - 1;
        for (reader, c) in self.readers.iter_mut().zip(&self.stream.columns) {
            let column = read_batch(reader, c, want)?;
            let got = column
                .defs
                .as_ref()
                .map_or_else(|| raw_len(&column.values), Vec::len);
            if got != want {
                return Err(corrupt(format!(
                    "row group {group}, column {:?}: {got} values where {want} rows were declared",
                    c.name()
                )));
            }
            columns.push(column);
        }
        self.left -= want;
        Ok(Some(Batch {
            n_rows: want,
            columns,
        }))
    }

    fn open_group(&mut self) -> Result<(), TableError> {
        let stream = self.stream;
        let g = self.group;
        self.group += 1;
        let pending = match self.next.take() {
            Some(p) if p.group == g => p,
            _ => Prefetch::start(stream, g)?,
        };
        let (ranges, bytes) = pending.finish()?;
        if self.group < stream.num_row_groups() {
            self.next = Some(Prefetch::start(stream, self.group)?);
        }
        for (c, chunk) in stream.columns.iter().zip(&bytes) {
            thrift_check::check_pages(chunk)
                .map_err(|e| corrupt(format!("column {:?}: page header: {e}", c.name())))?;
        }
        let chunks = Arc::new(Chunks {
            size: stream.size,
            parts: ranges.iter().map(|r| r.start).zip(bytes).collect(),
        });
        let metadata = stream.metadata.row_group(g);
        let group =
            SerializedRowGroupReader::new(chunks, metadata, None, Arc::clone(&stream.props))
                .map_err(corrupt)?;
        self.readers = stream
            .columns
            .iter()
            .map(|c| group.get_column_reader(c.index).map_err(corrupt))
            .collect::<Result<_, _>>()?;
        self.left = usize::try_from(metadata.num_rows().max(0)).unwrap_or(usize::MAX);
        Ok(())
    }
}

fn raw_len(values: &RawValues) -> usize {
    match values {
        RawValues::Bool(v) => v.len(),
        RawValues::Int32(v) => v.len(),
        RawValues::Int64(v) => v.len(),
        RawValues::Float(v) => v.len(),
        RawValues::Double(v) => v.len(),
        RawValues::Bytes(v) => v.len(),
    }
}

/// Reads `want` records of one column (fewer at the end of its pages).
fn read_batch(
    reader: &mut ColumnReader,
    column: &StreamColumn,
    want: usize,
) -> Result<RawColumn, TableError> {
    let max_def = column.descr.max_def_level();
    let nullable = max_def > 0;
    let mut defs: Vec<i16> = Vec::new();
    macro_rules! drain {
        ($r:expr, $variant:ident) => {{
            let mut values = Vec::new();
            let mut records = 0;
            while records < want {
                let (n, _, _) = $r
                    .read_records(want - records, Some(&mut defs), None, &mut values)
                    .map_err(corrupt)?;
                if n == 0 {
                    break;
                }
                records += n;
            }
            RawValues::$variant(values)
        }};
    }
    let values = match (reader, column.descr.physical_type()) {
        (ColumnReader::BoolColumnReader(r), PhysicalType::BOOLEAN) => drain!(r, Bool),
        (ColumnReader::Int32ColumnReader(r), PhysicalType::INT32) => drain!(r, Int32),
        (ColumnReader::Int64ColumnReader(r), PhysicalType::INT64) => drain!(r, Int64),
        (ColumnReader::FloatColumnReader(r), PhysicalType::FLOAT) => drain!(r, Float),
        (ColumnReader::DoubleColumnReader(r), PhysicalType::DOUBLE) => drain!(r, Double),
        (ColumnReader::ByteArrayColumnReader(r), PhysicalType::BYTE_ARRAY) => drain!(r, Bytes),
        _ => return Err(corrupt("a column's pages do not match its type")),
    };
    Ok(RawColumn {
        values,
        defs: nullable.then_some(defs),
        max_def,
        kind: column.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictions::Output;
    use crate::sink::ParquetSink;
    use skvault_infer::Matrix;

    #[test]
    fn touching_chunks_are_told_apart() {
        // The first byte of one chunk is the end of the one before: a page read there is
        // the second chunk's (found when every two-column file failed to read).
        let chunks = Chunks {
            size: 100,
            parts: vec![
                (4, Bytes::from_static(&[1; 10])),
                (14, Bytes::from_static(&[2; 5])),
            ],
        };
        assert_eq!(chunks.slice(14, None).unwrap().as_ref(), &[2; 5]);
        assert_eq!(chunks.slice(4, Some(10)).unwrap().as_ref(), &[1; 10]);
        assert_eq!(chunks.slice(16, Some(3)).unwrap().as_ref(), &[2; 3]);
        assert!(
            chunks.slice(13, Some(2)).is_err(),
            "a page across two chunks"
        );
        assert!(chunks.slice(30, None).is_err(), "outside every chunk");
        assert!(chunks.slice(0, Some(1)).is_err(), "before the first chunk");
    }

    fn written(n_rows: usize, batch: usize) -> (Vec<u8>, Vec<f64>) {
        let data: Vec<f64> = (0..n_rows * 2).map(|i| i as f64 * 0.5).collect();
        let mut bytes = Vec::new();
        let first = Output::Values(Matrix {
            data: data[..batch.min(n_rows) * 2].to_vec(),
            n_rows: batch.min(n_rows),
            n_cols: 2,
            flat: false,
        });
        let headers = vec!["a".to_string(), "b".to_string()];
        let mut sink = ParquetSink::new(&mut bytes, &[], &first, &headers).unwrap();
        for rows in data.chunks(batch * 2) {
            let m = Matrix {
                data: rows.to_vec(),
                n_rows: rows.len() / 2,
                n_cols: 2,
                flat: false,
            };
            sink.write(None, &Output::Values(m)).unwrap();
        }
        sink.finish().unwrap();
        (bytes, data)
    }

    #[test]
    fn written_row_groups_read_back_in_batches_of_any_size() {
        let (bytes, data) = written(1000, 300);
        let stream = ParquetStream::open(Arc::new(Bytes::from(bytes)), false).unwrap();
        assert_eq!(stream.num_rows(), 1000);
        assert_eq!(stream.num_row_groups(), 4);
        let names = vec!["a".to_string(), "b".to_string()];
        for batch_rows in [1, 7, 300, 4096] {
            let mut batches = stream.batches(batch_rows);
            let mut all = Vec::new();
            while let Some(b) = batches.next_batch().unwrap() {
                assert!(b.n_rows <= batch_rows);
                all.extend(b.table(&names).unwrap().data);
            }
            assert_eq!(all, data, "batches of {batch_rows}");
        }
    }

    #[test]
    fn a_footer_larger_than_the_first_read_is_read_in_full() {
        let (bytes, data) = written(6000, 3);
        let n = bytes.len();
        let declared = u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]);
        assert!(u64::from(declared) > FOOTER_GUESS, "{declared}");
        let stream = ParquetStream::open(Arc::new(Bytes::from(bytes)), false).unwrap();
        assert_eq!(stream.num_row_groups(), 2000);
        let names = vec!["a".to_string(), "b".to_string()];
        let mut batches = stream.batches(1000);
        let mut all = Vec::new();
        while let Some(b) = batches.next_batch().unwrap() {
            all.extend(b.table(&names).unwrap().data);
        }
        assert_eq!(all, data);
    }

    #[test]
    fn truncated_and_damaged_files_are_errors() {
        let (bytes, _) = written(200, 64);
        let n = bytes.len();
        let mut cases: Vec<Vec<u8>> = (0..n).step_by(37).map(|c| bytes[..c].to_vec()).collect();
        for at in (0..n).step_by(11) {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            cases.push(b);
        }
        for case in cases {
            let read = ParquetStream::open(Arc::new(Bytes::from(case)), false).and_then(|s| {
                let mut batches = s.batches(50);
                while batches.next_batch()?.is_some() {}
                Ok(())
            });
            // Damage to statistics or padding may go unnoticed; a panic never may.
            if let Err(e) = read {
                assert!(!e.0.is_empty());
            }
        }
    }
}
