//! Reading a Parquet file into a [`Table`] or a [`Frame`], with the `parquet` crate's
//! column readers (no Arrow).
//!
//! Every column must be flat: BOOLEAN, INT32, INT64 (signed or unsigned integers), FLOAT or
//! DOUBLE, and for a frame also UTF-8 strings (BYTE_ARRAY with the String logical type,
//! dictionary-encoded or not, as pandas writes `str` and `category` columns); nulls become
//! NaN (the model then refuses them where scikit-learn would). Dates, times, decimals, other
//! byte arrays and nested columns are refused by name. Columns that pandas writes for a non-default index (`__index_level_0__`, ...) are
//! skipped. Memory grows with the values actually decoded, never with sizes the file
//! declares.

use bytes::Bytes;
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;

use skvault_frame::{Column, DictBuilder, Frame, Value};

use crate::{err, thrift_check, Table, TableError};

/// Records decoded per call: bounds the buffers whatever the file declares.
const BATCH: usize = 8192;

/// The most values (rows x columns) one input may declare: 2 GiB of f64 (larger inputs are
/// for streaming prediction, which holds one row group at a time). A few bytes of
/// run-length encoding can declare billions of values, so the footer's row counts are checked
/// against this before anything is decoded.
pub const MAX_CELLS: u64 = 1 << 28;

/// How a column's stored values become f64 (or text).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Bool,
    Signed,
    Unsigned,
    Float,
    /// UTF-8 strings (frames only).
    Text,
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> TableError {
    TableError(format!("not a readable Parquet file: {e}"))
}

/// pandas stores a non-default index as extra columns with these names.
pub(crate) fn is_pandas_index(name: &str) -> bool {
    name.starts_with("__index_level_") && name.ends_with("__")
}

pub(crate) fn kind_of(col: &ColumnDescriptor, text: bool) -> Result<Kind, TableError> {
    let name = col.name();
    if col.max_rep_level() > 0 || col.path().parts().len() > 1 {
        return err(format!(
            "column {name:?} is nested (a list or struct); only flat numeric columns can be input"
        ));
    }
    let logical = col.logical_type_ref();
    let non_numeric = |what: &str| {
        err(format!(
            "column {name:?} is not numeric ({what}); only boolean, integer and floating-point columns can be input"
        ))
    };
    let is_string = matches!(logical, Some(LogicalType::String))
        || (logical.is_none() && col.converted_type() == ConvertedType::UTF8);
    if is_string && col.physical_type() == PhysicalType::BYTE_ARRAY {
        if text {
            return Ok(Kind::Text);
        }
        return non_numeric("strings");
    }
    let unsigned = match logical {
        None => matches!(
            col.converted_type(),
            ConvertedType::UINT_8
                | ConvertedType::UINT_16
                | ConvertedType::UINT_32
                | ConvertedType::UINT_64
        ),
        Some(LogicalType::Integer(int)) => !int.is_signed,
        Some(other) => return non_numeric(&format!("{other:?}")),
    };
    if logical.is_none()
        && !matches!(
            col.converted_type(),
            ConvertedType::NONE
                | ConvertedType::INT_8
                | ConvertedType::INT_16
                | ConvertedType::INT_32
                | ConvertedType::INT_64
                | ConvertedType::UINT_8
                | ConvertedType::UINT_16
                | ConvertedType::UINT_32
                | ConvertedType::UINT_64
        )
    {
        return non_numeric(&format!("{}", col.converted_type()));
    }
    match col.physical_type() {
        PhysicalType::BOOLEAN => Ok(Kind::Bool),
        PhysicalType::INT32 | PhysicalType::INT64 if unsigned => Ok(Kind::Unsigned),
        PhysicalType::INT32 | PhysicalType::INT64 => Ok(Kind::Signed),
        PhysicalType::FLOAT | PhysicalType::DOUBLE => Ok(Kind::Float),
        other => non_numeric(&format!("{other}")),
    }
}

/// Appends one column chunk's values to `out` (nulls as NaN), decoding at most `rows + 1`
/// records: pages that hold more values than the row group declares are refused after one
/// record too many, not after decoding all of them. `required`: the column has no
/// definition levels (the `parquet` crate then reports one level per value all the same).
fn read_chunk(
    reader: ColumnReader,
    kind: Kind,
    required: bool,
    rows: usize,
    out: &mut Values,
) -> Result<(), TableError> {
    let mut left = rows.saturating_add(1);
    macro_rules! drain {
        ($r:expr, $out:expr, $null:expr, $conv:expr) => {{
            let out = $out;
            let mut r = $r;
            let mut values = Vec::new();
            let mut defs: Vec<i16> = Vec::new();
            loop {
                values.clear();
                defs.clear();
                if left == 0 {
                    break;
                }
                let (records, n_values, n_levels) = r
                    .read_records(BATCH.min(left), Some(&mut defs), None, &mut values)
                    .map_err(corrupt)?;
                if records == 0 {
                    break;
                }
                left = left.saturating_sub(records);
                if n_values > values.len() {
                    return Err(corrupt("fewer values decoded than reported"));
                }
                let values = &values[..n_values];
                if required {
                    // No definition levels: one value per record.
                    if n_values != records {
                        return Err(corrupt("a required column has missing values"));
                    }
                    for v in values {
                        out.push($conv(v)?);
                    }
                } else {
                    let defs = defs
                        .get(..n_levels)
                        .ok_or_else(|| corrupt("fewer levels decoded than reported"))?;
                    let max = defs.iter().copied().max().unwrap_or(0);
                    let mut it = values.iter();
                    for d in defs {
                        if *d == max && max > 0 {
                            let v = it
                                .next()
                                .ok_or_else(|| corrupt("fewer values than definition levels"))?;
                            out.push($conv(v)?);
                        } else {
                            out.push($null);
                        }
                    }
                }
            }
        }};
    }
    let ok = |v: f64| Ok::<f64, TableError>(v);
    match (reader, kind, out) {
        (ColumnReader::ByteArrayColumnReader(r), Kind::Text, Values::Text(out)) => {
            drain!(r, out, Value::NaN, |v: &parquet::data_type::ByteArray| {
                std::str::from_utf8(v.data())
                    .map(|s| Value::Str(s.to_string()))
                    .map_err(|_| corrupt("a string column holds bytes that are not UTF-8"))
            })
        }
        (ColumnReader::BoolColumnReader(r), _, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &bool| ok(f64::from(u8::from(*v))))
        }
        (ColumnReader::Int32ColumnReader(r), Kind::Unsigned, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &i32| ok(f64::from(*v as u32)))
        }
        (ColumnReader::Int32ColumnReader(r), _, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &i32| ok(f64::from(*v)))
        }
        (ColumnReader::Int64ColumnReader(r), Kind::Unsigned, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &i64| ok((*v as u64) as f64))
        }
        (ColumnReader::Int64ColumnReader(r), _, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &i64| ok(*v as f64))
        }
        (ColumnReader::FloatColumnReader(r), _, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &f32| ok(f64::from(*v)))
        }
        (ColumnReader::DoubleColumnReader(r), _, Values::Numbers(out)) => {
            drain!(r, out, f64::NAN, |v: &f64| ok(*v))
        }
        _ => return Err(corrupt("a column's pages do not match its type")),
    }
    Ok(())
}

/// One column's decoded values.
enum Values {
    Numbers(Vec<f64>),
    Text(Vec<Value>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }
}

/// Walks the footer (`FileMetaData`) with [`thrift_check`] before the `parquet` crate parses
/// it: by its schema, within the limits on its counts.
fn check_footer(bytes: &[u8]) -> Result<(), TableError> {
    let Some(tail) = bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) else {
        return Err(corrupt("shorter than a Parquet footer"));
    };
    let declared = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let footer = (bytes.len() - 8)
        .checked_sub(declared)
        .and_then(|start| bytes.get(start..bytes.len() - 8));
    match footer {
        // The parquet crate names a bad length or magic itself.
        None => Ok(()),
        Some(footer) => {
            thrift_check::check_footer(footer).map_err(|e| corrupt(format!("footer: {e}")))
        }
    }
}

/// Walks one column chunk's page headers with [`thrift_check`] before they are decoded.
fn check_chunk_pages(bytes: &[u8], column: &ColumnChunkMetaData) -> Result<(), TableError> {
    let start = column
        .dictionary_page_offset()
        .unwrap_or_else(|| column.data_page_offset());
    let range = usize::try_from(start)
        .ok()
        .zip(usize::try_from(column.compressed_size()).ok())
        .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?));
    let chunk = range.ok_or_else(|| {
        corrupt(format!(
            "column {:?}: its chunk lies outside the file",
            column.column_path().string()
        ))
    })?;
    thrift_check::check_pages(chunk).map_err(|e| {
        corrupt(format!(
            "column {:?}: page header: {e}",
            column.column_path().string()
        ))
    })
}

/// The column chunks to be read must fit in the file side by side: each is walked and
/// decoded on its own, so chunks declared over the same bytes (real files never overlap
/// them) would multiply the work of a file by the number of chunks.
fn check_chunks_fit(
    bytes: &[u8],
    metadata: &ParquetMetaData,
    used: &[(usize, Kind)],
) -> Result<(), TableError> {
    let mut total: u64 = 0;
    for group in metadata.row_groups() {
        for (i, _) in used {
            if let Some(column) = group.columns().get(*i) {
                total = total.saturating_add(column.compressed_size().max(0) as u64);
            }
        }
    }
    if total > bytes.len() as u64 {
        return Err(corrupt(format!(
            "its column chunks declare {total} bytes in all, more than the file's {}: they overlap",
            bytes.len()
        )));
    }
    Ok(())
}

/// The file's columns (pandas' index columns left out), text allowed or not.
fn read_columns(
    bytes: Vec<u8>,
    text: bool,
    limits: Option<(u64, u64)>,
) -> Result<(Vec<String>, Vec<Values>), TableError> {
    if bytes.is_empty() {
        return err("the file is empty (0 bytes)");
    }
    check_footer(&bytes)?;
    let bytes = Bytes::from(bytes);
    let reader = SerializedFileReader::new(bytes.clone()).map_err(corrupt)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let mut used = Vec::new();
    let mut names = Vec::new();
    for i in 0..schema.num_columns() {
        let col = schema.column(i);
        if is_pandas_index(col.name()) && col.path().parts().len() == 1 {
            continue;
        }
        used.push((i, kind_of(&col, text)?));
        names.push(col.name().to_string());
    }
    if used.is_empty() {
        return err("the Parquet file has no columns");
    }
    let mut columns: Vec<Values> = used
        .iter()
        .map(|(_, kind)| match kind {
            Kind::Text => Values::Text(Vec::new()),
            _ => Values::Numbers(Vec::new()),
        })
        .collect();
    let declared_rows: u64 = (0..reader.num_row_groups())
        .map(|g| reader.metadata().row_group(g).num_rows().max(0) as u64)
        .fold(0u64, u64::saturating_add);
    if let Some((max_rows, max_values)) = limits {
        let values = declared_rows.saturating_mul(used.len() as u64);
        if declared_rows > max_rows {
            return Err(TableError(format!(
                "the Parquet file declares {declared_rows} rows, more than the limit of {max_rows}"
            )));
        }
        if values > max_values {
            return Err(TableError(format!(
                "the Parquet file declares {values} values ({declared_rows} rows of {} columns), \
                 more than the limit of {max_values} values",
                used.len()
            )));
        }
    }
    if declared_rows.saturating_mul(used.len() as u64) > MAX_CELLS {
        return err(format!(
            "the Parquet file declares {declared_rows} rows of {} columns, more than the {MAX_CELLS} values one input may hold: split it",
            used.len()
        ));
    }
    check_chunks_fit(&bytes, reader.metadata(), &used)?;
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(corrupt)?;
        if group.num_columns() != schema.num_columns() {
            return Err(corrupt(format!(
                "row group {g} has {} columns, the schema {}",
                group.num_columns(),
                schema.num_columns()
            )));
        }
        for (((i, kind), out), name) in used.iter().zip(columns.iter_mut()).zip(&names) {
            let before = out.len();
            check_chunk_pages(&bytes, group.metadata().column(*i))?;
            let declared = usize::try_from(group.metadata().num_rows()).unwrap_or(usize::MAX);
            let reader = group.get_column_reader(*i).map_err(corrupt)?;
            let required = schema.column(*i).max_def_level() == 0;
            read_chunk(reader, *kind, required, declared, out)?;
            if out.len() - before != declared {
                return Err(corrupt(format!(
                    "row group {g}, column {name:?}: {} values, {declared} rows declared",
                    out.len() - before
                )));
            }
        }
    }
    Ok((names, columns))
}

fn read(bytes: Vec<u8>) -> Result<Table, TableError> {
    let (names, columns) = read_columns(bytes, false, None)?;
    let columns: Vec<Vec<f64>> = columns
        .into_iter()
        .map(|c| match c {
            Values::Numbers(v) => Ok(v),
            Values::Text(_) => Err(corrupt("a text column in a numeric table")),
        })
        .collect::<Result<_, _>>()?;
    // Column-major per row group, then interleaved into rows.
    let n_rows = columns.first().map_or(0, Vec::len);
    let n_cols = columns.len();
    let mut data = Vec::with_capacity(n_rows * n_cols);
    for r in 0..n_rows {
        data.extend(columns.iter().map(|c| c[r]));
    }
    Ok(Table {
        data,
        n_rows,
        n_cols,
        names: Some(names),
    })
}

fn read_frame(bytes: Vec<u8>, limits: Option<(u64, u64)>) -> Result<Frame, TableError> {
    let (names, columns) = read_columns(bytes, true, limits)?;
    let columns = names
        .iter()
        .zip(columns)
        .map(|(name, c)| match c {
            Values::Numbers(v) => Ok(Column::Numeric(v)),
            Values::Text(values) => {
                let mut b = DictBuilder::with_capacity(name, values.len());
                for v in values {
                    b.push(v).map_err(|e| TableError(e.to_string()))?;
                }
                Ok(Column::Dict(b.finish()))
            }
        })
        .collect::<Result<Vec<_>, TableError>>()?;
    Frame::new(names, columns).map_err(|e| TableError(e.to_string()))
}

thread_local! {
    /// Set while [`guarded`] runs on this thread: its panics are expected and reported as
    /// errors, so the panic hook stays silent for them.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a reader over untrusted bytes: a panic inside the `parquet` crate (third-party code)
/// is caught and reported as a corrupt file. The process's panic hook is wrapped once (the
/// wrapper is silent on threads inside `guarded`, the previous hook runs elsewhere), never
/// swapped per call: a server decodes bodies on several threads at once, and swapping the
/// global hook from each would race.
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, TableError> + std::panic::UnwindSafe,
) -> Result<T, TableError> {
    static WRAP: std::sync::Once = std::sync::Once::new();
    WRAP.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(f);
    QUIET.with(|q| q.set(was));
    result.unwrap_or_else(|_| Err(corrupt("the decoder gave up on malformed data")))
}

/// Reads a Parquet file's bytes as a frame: numeric columns as numbers, UTF-8 string
/// columns (plain or dictionary-encoded) as text, nulls as NaN.
pub fn read_parquet_frame(bytes: Vec<u8>) -> Result<Frame, TableError> {
    guarded(move || read_frame(bytes, None))
}

/// [`read_parquet_frame`] refusing, before decoding any page, a file whose footer declares
/// more than `max_rows` rows or `max_values` values (rows times columns read): a server's
/// per-request limits, since run-length encoding lets a small body decode into gigabytes.
pub fn read_parquet_frame_limited(
    bytes: Vec<u8>,
    max_rows: u64,
    max_values: u64,
) -> Result<Frame, TableError> {
    guarded(move || read_frame(bytes, Some((max_rows, max_values))))
}

/// Reads a Parquet file's bytes. A file the `parquet` crate cannot decode is an error, never a
/// crash: the crate is third-party code fed with untrusted bytes, so a panic inside it is
/// caught here and reported as a corrupt file.
pub fn read_parquet(bytes: Vec<u8>) -> Result<Table, TableError> {
    guarded(move || read(bytes))
}

#[cfg(test)]
mod tests {
    use super::read_parquet;

    #[test]
    fn a_dictionary_page_declaring_more_values_than_bytes_is_refused_before_allocating() {
        // Found by the table fuzz target: 1.4 kB whose dictionary page declares 2^30 values,
        // for which the parquet crate reserved gigabytes before failing.
        let bytes = include_bytes!("../../../fuzz/corpus/table/parquet-dictionary-values-bomb");
        for e in [
            read_parquet(bytes.to_vec()).unwrap_err(),
            super::read_parquet_frame(bytes.to_vec()).unwrap_err(),
        ] {
            assert!(e.0.contains("dictionary page declares"), "{e}");
        }
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let mut footer_out_of_range = b"PAR1".to_vec();
        footer_out_of_range.extend_from_slice(&[0; 16]);
        footer_out_of_range.extend_from_slice(&u32::MAX.to_le_bytes());
        footer_out_of_range.extend_from_slice(b"PAR1");
        let mut footer_garbage = b"PAR1".to_vec();
        footer_garbage.extend_from_slice(&[0xff; 64]);
        footer_garbage.extend_from_slice(&64u32.to_le_bytes());
        footer_garbage.extend_from_slice(b"PAR1");
        for (name, bytes) in [
            ("empty", Vec::new()),
            ("magic only", b"PAR1".to_vec()),
            ("two magics", b"PAR1PAR1".to_vec()),
            ("text", b"a,b\n1,2\n".to_vec()),
            ("footer length out of range", footer_out_of_range),
            ("footer garbage", footer_garbage),
        ] {
            let e = read_parquet(bytes).expect_err(name);
            assert!(!e.0.is_empty(), "{name}");
        }
    }
}
