//! Parquet footers: real files written by the `parquet` crate (wide, many row groups, with
//! statistics and page indexes) pass the footer walk and its limits; crafted ones are refused
//! before the crate decodes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Repetition;
use parquet::data_type::DoubleType;
use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use skvault_table::{read_parquet, read_parquet_frame, read_parquet_frame_limited};

/// A file of `n_cols` optional DOUBLE columns in `groups` row groups of `rows` rows; cell
/// (r, c) of group g holds `value(g, r, c)`, with a null every 7th row of column 1.
fn write(
    n_cols: usize,
    groups: usize,
    rows: usize,
    value: impl Fn(usize, usize, usize) -> f64,
) -> Vec<u8> {
    let fields: String = (0..n_cols)
        .map(|c| format!("optional double c{c};"))
        .collect();
    write_schema(&fields, groups, rows, value)
}

/// As [`write`], for the fields given (a null every 7th row of column 1 if it is optional).
fn write_schema(
    fields: &str,
    groups: usize,
    rows: usize,
    value: impl Fn(usize, usize, usize) -> f64,
) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(&format!("message m {{ {fields} }}")).unwrap());
    // Page statistics, page indexes and level histograms: every optional part of a footer the
    // crate writes by default or on request.
    let props = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut out = Vec::new();
    let optional: Vec<bool> = schema
        .get_fields()
        .iter()
        .map(|f| f.get_basic_info().repetition() == Repetition::OPTIONAL)
        .collect();
    let mut writer = SerializedFileWriter::new(&mut out, schema, Arc::new(props)).unwrap();
    for g in 0..groups {
        let mut group = writer.next_row_group().unwrap();
        let mut c = 0;
        while let Some(mut column) = group.next_column().unwrap() {
            let null = |r: usize| optional[c] && c == 1 && r % 7 == 0;
            let values: Vec<f64> = (0..rows)
                .filter(|r| !null(*r))
                .map(|r| value(g, r, c))
                .collect();
            let defs: Vec<i16> = (0..rows).map(|r| i16::from(!null(r))).collect();
            let defs = optional[c].then_some(&defs[..]);
            column
                .typed::<DoubleType>()
                .write_batch(&values, defs, None)
                .unwrap();
            column.close().unwrap();
            c += 1;
        }
        group.close().unwrap();
    }
    writer.close().unwrap();
    out
}

fn expected(g: usize, r: usize, c: usize) -> f64 {
    if c == 1 && r % 7 == 0 {
        f64::NAN
    } else {
        (g * 1000 + r) as f64 + c as f64 / 4096.0
    }
}

fn check_table(bytes: Vec<u8>, n_cols: usize, groups: usize, rows: usize) {
    let t = read_parquet(bytes).unwrap();
    assert_eq!((t.n_rows, t.n_cols), (groups * rows, n_cols));
    for (i, row) in t.data.chunks(n_cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            let want = expected(i / rows, i % rows, c);
            assert!(
                v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan()),
                "row {i} column {c}: {v} != {want}"
            );
        }
    }
}

#[test]
fn a_wide_file_of_2000_columns_is_read() {
    let bytes = write(2000, 2, 10, expected);
    check_table(bytes.clone(), 2000, 2, 10);
    assert_eq!(read_parquet_frame(bytes).unwrap().n_rows(), 20);
}

#[test]
fn required_columns_are_read() {
    // Non-nullable fields (pyarrow `nullable=False`, Spark, the parquet crate) are REQUIRED
    // columns: no definition levels, though the crate reports one level per value.
    let value = |g: usize, r: usize, c: usize| (g * 1000 + r) as f64 + c as f64 / 4096.0;
    let fields = "required double a; required double b; optional double c;";
    let t = read_parquet(write_schema(fields, 3, 5, value)).unwrap();
    assert_eq!((t.n_rows, t.n_cols), (15, 3));
    let want: Vec<f64> = (0..15)
        .flat_map(|i| (0..3).map(move |c| value(i / 5, i % 5, c)))
        .collect();
    assert_eq!(t.data, want);
}

#[test]
fn a_file_of_2000_row_groups_is_read() {
    check_table(write(3, 2000, 4, expected), 3, 2000, 4);
}

#[test]
fn the_footer_that_hid_boolean_lists_from_the_walk_is_refused_by_its_schema() {
    // Found by the table fuzz target (363 bytes): a schema element's repetition_type names
    // an i16; the walk by named types and the crate's decoder by the schema then saw different
    // structures, and the crate skipped lists of 2^31 booleans for 17 s.
    let bytes = include_bytes!("../../../fuzz/corpus/table/footer-bool-lists-hidden-from-walk");
    for e in [
        read_parquet(bytes.to_vec()).unwrap_err(),
        read_parquet_frame(bytes.to_vec()).unwrap_err(),
    ] {
        assert_eq!(
            e.0,
            "not a readable Parquet file: footer: field 3 of a SchemaElement is a i16 where the format has a i32"
        );
    }
}

#[test]
fn column_chunks_declared_over_the_same_bytes_are_refused() {
    // Ten columns whose chunks all point at the first one's bytes: each would be walked and
    // decoded again, so a file could multiply its own work by its number of chunks.
    let bytes = write(
        10,
        1,
        1000,
        |_, r, c| if c == 0 { r as f64 * 1.5 } else { 1.0 },
    );
    let footer_len =
        u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let data = &bytes[..bytes.len() - 8 - footer_len];
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::from(bytes.clone()))
        .unwrap();
    let group = meta.row_group(0);
    let first = group.column(0);
    let columns = group
        .columns()
        .iter()
        .map(|c| {
            c.clone()
                .into_builder()
                .set_data_page_offset(first.data_page_offset())
                .set_dictionary_page_offset(first.dictionary_page_offset())
                .set_total_compressed_size(first.compressed_size())
                .set_total_uncompressed_size(first.uncompressed_size())
                .set_offset_index_offset(None)
                .set_offset_index_length(None)
                .set_column_index_offset(None)
                .set_column_index_length(None)
                .build()
                .unwrap()
        })
        .collect();
    let group = group
        .clone()
        .into_builder()
        .set_column_metadata(columns)
        .build()
        .unwrap();
    let meta = meta.into_builder().set_row_groups(vec![group]).build();
    let mut crafted = data.to_vec();
    ParquetMetaDataWriter::new(&mut crafted, &meta)
        .finish()
        .unwrap();
    assert!(crafted.ends_with(b"PAR1"));
    let e = read_parquet(crafted).unwrap_err();
    assert!(
        e.0.contains("column chunks declare") && e.0.contains("they overlap"),
        "{e}"
    );
}

#[test]
fn row_and_value_limits_refuse_by_the_footer_before_decoding() {
    let bytes = write(2, 3, 10, expected);
    let frame = read_parquet_frame_limited(bytes.clone(), 30, 60).unwrap();
    assert_eq!(frame.n_rows(), 30);
    let e = read_parquet_frame_limited(bytes.clone(), 29, 60).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("declares 30 rows, more than the limit of 29"),
        "{e}"
    );
    let e = read_parquet_frame_limited(bytes, 30, 59).unwrap_err();
    let e = e.to_string();
    let want = "declares 60 values (30 rows of 2 columns), more than the limit of 59 values";
    assert!(e.contains(want), "{e}");
}
