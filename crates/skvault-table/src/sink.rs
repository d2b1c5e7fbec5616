//! Writing streamed predictions batch by batch: Parquet (one row group per batch) or CSV, the
//! input's columns first when they are kept, then the prediction columns, named as the
//! whole-input writers name them ([`crate::predictions::column_names`]).
//!
//! Kept columns are written as they were stored (same physical and logical type, same
//! nullability, nulls kept) in Parquet, and as text in CSV (empty for a null). Predictions are
//! DOUBLE columns, or one `prediction` column of the classes' type for labels (INT64,
//! DOUBLE, BOOLEAN or UTF-8 text).

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type};
use parquet::data_type::{DataType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::{Type, TypePtr};

use skvault_infer::{format_float, Labels};

use crate::predictions::Output;
use crate::stream::{Batch, RawValues, StreamColumn};
use crate::{csv_field, TableError};

fn write_error(e: impl std::fmt::Display) -> TableError {
    TableError(format!("writing Parquet: {e}"))
}

/// A Parquet file being written, one row group per [`ParquetSink::write`].
pub struct ParquetSink<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    n_predictions: usize,
}

/// The output columns of predictions: their names and the type of their values.
fn prediction_types(output: &Output, headers: &[String]) -> Result<Vec<TypePtr>, TableError> {
    let (physical, logical) = match output {
        Output::Labels(_, classes) => match &classes.labels {
            Labels::Int(_) => (PhysicalType::INT64, None),
            Labels::Float(_) => (PhysicalType::DOUBLE, None),
            Labels::Bool(_) => (PhysicalType::BOOLEAN, None),
            Labels::Str(_) => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        },
        Output::Values(_) => (PhysicalType::DOUBLE, None),
    };
    headers
        .iter()
        .map(|name| {
            Type::primitive_type_builder(name, physical)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical.clone())
                .build()
                .map(Arc::new)
                .map_err(write_error)
        })
        .collect()
}

impl<W: Write + Send> ParquetSink<W> {
    /// Starts the file: `kept` input columns, then one column per header of `first` (the
    /// first batch's predictions, which fix the output's shape).
    pub fn new(
        out: W,
        kept: &[StreamColumn],
        first: &Output,
        headers: &[String],
    ) -> Result<ParquetSink<W>, TableError> {
        let mut fields: Vec<TypePtr> = kept
            .iter()
            .map(|c| c.descriptor().self_type_ptr())
            .collect();
        let predictions = prediction_types(first, headers)?;
        let n_predictions = predictions.len();
        fields.extend(predictions);
        let schema = Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .map_err(write_error)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("skvault {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props))
            .map_err(write_error)?;
        Ok(ParquetSink {
            writer,
            n_predictions,
        })
    }

    /// Writes one row group: the `kept` batch's columns (if any) and the predictions.
    pub fn write(&mut self, kept: Option<&Batch>, output: &Output) -> Result<(), TableError> {
        let mut group = self.writer.next_row_group().map_err(write_error)?;
        for c in kept.map(|b| b.columns.as_slice()).unwrap_or_default() {
            let mut col = next(&mut group)?;
            let defs = c.defs.as_deref();
            match &c.values {
                RawValues::Bool(v) => put::<BoolType>(&mut col, v, defs)?,
                RawValues::Int32(v) => put::<Int32Type>(&mut col, v, defs)?,
                RawValues::Int64(v) => put::<Int64Type>(&mut col, v, defs)?,
                RawValues::Float(v) => put::<FloatType>(&mut col, v, defs)?,
                RawValues::Double(v) => put::<DoubleType>(&mut col, v, defs)?,
                RawValues::Bytes(v) => put::<ByteArrayType>(&mut col, v, defs)?,
            }
            col.close().map_err(write_error)?;
        }
        match output {
            Output::Labels(idx, classes) => {
                let mut col = next(&mut group)?;
                match &classes.labels {
                    Labels::Int(v) => put::<Int64Type>(&mut col, &pick(idx, v)?, None)?,
                    Labels::Float(v) => put::<DoubleType>(&mut col, &pick(idx, v)?, None)?,
                    Labels::Bool(v) => put::<BoolType>(&mut col, &pick(idx, v)?, None)?,
                    Labels::Str(v) => {
                        let text: Vec<ByteArray> = pick(idx, v)?
                            .into_iter()
                            .map(|s| ByteArray::from(s.into_bytes()))
                            .collect();
                        put::<ByteArrayType>(&mut col, &text, None)?
                    }
                }
                col.close().map_err(write_error)?;
            }
            Output::Values(m) => {
                if m.n_cols != self.n_predictions {
                    return Err(write_error("the model's batches disagree in shape"));
                }
                let mut column = Vec::with_capacity(m.n_rows);
                for j in 0..m.n_cols {
                    column.clear();
                    column.extend(
                        (0..m.n_rows).map(|i| m.row(i).get(j).copied().unwrap_or(f64::NAN)),
                    );
                    let mut col = next(&mut group)?;
                    put::<DoubleType>(&mut col, &column, None)?;
                    col.close().map_err(write_error)?;
                }
            }
        }
        group.close().map_err(write_error)?;
        Ok(())
    }

    /// Writes the footer.
    pub fn finish(self) -> Result<(), TableError> {
        self.writer.close().map(|_| ()).map_err(write_error)
    }
}

fn next<'a, W: Write + Send>(
    group: &'a mut parquet::file::writer::SerializedRowGroupWriter<'_, W>,
) -> Result<SerializedColumnWriter<'a>, TableError> {
    group
        .next_column()
        .map_err(write_error)?
        .ok_or_else(|| write_error("more columns than the schema"))
}

fn pick<T: Clone>(idx: &[usize], labels: &[T]) -> Result<Vec<T>, TableError> {
    idx.iter()
        .map(|i| {
            labels
                .get(*i)
                .cloned()
                .ok_or_else(|| TableError("a label index out of range".into()))
        })
        .collect()
}

fn put<T: DataType>(
    col: &mut SerializedColumnWriter<'_>,
    values: &[T::T],
    defs: Option<&[i16]>,
) -> Result<(), TableError> {
    col.typed::<T>()
        .write_batch(values, defs, None)
        .map(|_| ())
        .map_err(write_error)
}

/// The CSV header line: kept column names, then the prediction headers.
pub fn csv_header(kept: &[StreamColumn], headers: &[String]) -> String {
    let mut line = kept
        .iter()
        .map(|c| csv_field(c.name()))
        .chain(headers.iter().map(|h| csv_field(h)))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The CSV lines of one batch: its kept columns (if any), then its predictions.
pub fn csv_rows(kept: Option<&Batch>, output: &Output) -> Result<String, TableError> {
    let n_rows = output.n_rows();
    let kept: Vec<Vec<String>> = match kept {
        Some(b) => b
            .columns
            .iter()
            .map(|c| c.texts(b.n_rows))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mut text = String::new();
    for i in 0..n_rows {
        let mut cells: Vec<String> = kept
            .iter()
            .map(|c| c.get(i).cloned().unwrap_or_default())
            .collect();
        match output {
            Output::Labels(idx, classes) => cells.push(csv_field(
                &idx.get(i)
                    .and_then(|l| classes.label_text(*l))
                    .unwrap_or_default(),
            )),
            Output::Values(m) => cells.extend(m.row(i).iter().map(|v| format_float(*v))),
        }
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    Ok(text)
}
