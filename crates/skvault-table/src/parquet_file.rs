//! Reading a Parquet file into a [`Table`], with the `parquet` crate's
//! column readers (no Arrow).
//!
//! Every column must be a flat numeric column: BOOLEAN, INT32, INT64 (signed or unsigned
//! integers), FLOAT or DOUBLE; nulls become NaN (the model then refuses them where
//! scikit-learn would). Dates, times, decimals, strings and nested columns are refused by
//! name. Columns that pandas writes for a non-default index (`__index_level_0__`, ...) are
//! skipped. Memory grows with the values actually decoded, never with sizes the file
//! declares.

use bytes::Bytes;
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;

use crate::{err, Table, TableError};

/// Records decoded per call: bounds the buffers whatever the file declares.
const BATCH: usize = 8192;

/// How a column's stored values become f64.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Signed,
    Unsigned,
    Float,
}

fn corrupt(e: impl std::fmt::Display) -> TableError {
    TableError(format!("not a readable Parquet file: {e}"))
}

/// pandas stores a non-default index as extra columns with these names.
fn is_pandas_index(name: &str) -> bool {
    name.starts_with("__index_level_") && name.ends_with("__")
}

fn kind_of(col: &ColumnDescriptor) -> Result<Kind, TableError> {
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

/// Appends one column chunk's values to `out` (nulls as NaN).
fn read_chunk(reader: ColumnReader, kind: Kind, out: &mut Vec<f64>) -> Result<(), TableError> {
    macro_rules! drain {
        ($r:expr, $conv:expr) => {{
            let mut r = $r;
            let mut values = Vec::new();
            let mut defs: Vec<i16> = Vec::new();
            loop {
                values.clear();
                defs.clear();
                let (records, n_values, n_levels) = r
                    .read_records(BATCH, Some(&mut defs), None, &mut values)
                    .map_err(corrupt)?;
                if records == 0 {
                    break;
                }
                if n_values > values.len() {
                    return Err(corrupt("fewer values decoded than reported"));
                }
                let values = &values[..n_values];
                if n_levels == 0 {
                    // A required column: no definition levels, one value per record.
                    if n_values != records {
                        return Err(corrupt("a required column has missing values"));
                    }
                    out.extend(values.iter().map($conv));
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
                            out.push($conv(v));
                        } else {
                            out.push(f64::NAN);
                        }
                    }
                }
            }
        }};
    }
    match (reader, kind) {
        (ColumnReader::BoolColumnReader(r), _) => drain!(r, |v: &bool| f64::from(u8::from(*v))),
        (ColumnReader::Int32ColumnReader(r), Kind::Unsigned) => {
            drain!(r, |v: &i32| f64::from(*v as u32))
        }
        (ColumnReader::Int32ColumnReader(r), _) => drain!(r, |v: &i32| f64::from(*v)),
        (ColumnReader::Int64ColumnReader(r), Kind::Unsigned) => {
            drain!(r, |v: &i64| (*v as u64) as f64)
        }
        (ColumnReader::Int64ColumnReader(r), _) => drain!(r, |v: &i64| *v as f64),
        (ColumnReader::FloatColumnReader(r), _) => drain!(r, |v: &f32| f64::from(*v)),
        (ColumnReader::DoubleColumnReader(r), _) => drain!(r, |v: &f64| *v),
        _ => return Err(corrupt("a column's pages do not match its type")),
    }
    Ok(())
}

fn read(bytes: Vec<u8>) -> Result<Table, TableError> {
    if bytes.is_empty() {
        return err("the file is empty (0 bytes)");
    }
    let reader = SerializedFileReader::new(Bytes::from(bytes)).map_err(corrupt)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let mut used = Vec::new();
    let mut names = Vec::new();
    for i in 0..schema.num_columns() {
        let col = schema.column(i);
        if is_pandas_index(col.name()) && col.path().parts().len() == 1 {
            continue;
        }
        used.push((i, kind_of(&col)?));
        names.push(col.name().to_string());
    }
    if used.is_empty() {
        return err("the Parquet file has no columns");
    }
    // Column-major per row group, then interleaved into rows.
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); used.len()];
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
            read_chunk(group.get_column_reader(*i).map_err(corrupt)?, *kind, out)?;
            let declared = usize::try_from(group.metadata().num_rows()).unwrap_or(usize::MAX);
            if out.len() - before != declared {
                return Err(corrupt(format!(
                    "row group {g}, column {name:?}: {} values, {declared} rows declared",
                    out.len() - before
                )));
            }
        }
    }
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

/// Reads a Parquet file's bytes. A file the `parquet` crate cannot decode is an error, never a
/// crash: the crate is third-party code fed with untrusted bytes, so a panic inside it is
/// caught here and reported as a corrupt file.
pub fn read_parquet(bytes: Vec<u8>) -> Result<Table, TableError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || read(bytes));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|_| Err(corrupt("the decoder gave up on malformed data")))
}

#[cfg(test)]
mod tests {
    use super::read_parquet;

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
