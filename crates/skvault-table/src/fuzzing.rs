//! What the `table` fuzz target does with its input, shared with the replay test
//! (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use crate::{read_csv, read_csv_frame, read_npy, read_parquet, read_parquet_frame, Table};

/// Reads `bytes` as `.npy`, as CSV (when it is UTF-8) and as Parquet. Every reader must
/// return `Ok` or `Err`, never panic or allocate beyond what the input holds; a table that
/// is read must be consistent (`data.len() == n_rows * n_cols`, names matching columns).
/// Returns how many readers accepted the input.
#[allow(clippy::panic)] // an inconsistent table is the bug a fuzz run looks for
pub fn exercise(bytes: &[u8]) -> usize {
    let mut read = 0;
    let mut frames = 0;
    let mut check = |t: Result<Table, _>| {
        if let Ok(t) = t {
            let cells = t.n_rows.checked_mul(t.n_cols);
            if cells != Some(t.data.len()) {
                panic!(
                    "table of {}x{} holds {} values",
                    t.n_rows,
                    t.n_cols,
                    t.data.len()
                );
            }
            if t.names.as_ref().is_some_and(|n| n.len() != t.n_cols) {
                panic!(
                    "{} names for {} columns",
                    t.names.map_or(0, |n| n.len()),
                    t.n_cols
                );
            }
            read += 1;
        }
    };
    check(read_npy(bytes));
    if let Ok(text) = std::str::from_utf8(bytes) {
        check(read_csv(text));
        // As a frame, with the first column read as text: its columns must agree in length.
        let first = text.split([',', '\n']).next().unwrap_or("").trim();
        if let Ok(f) = read_csv_frame(text, &[first]) {
            if f.columns().iter().any(|c| c.len() != f.n_rows()) {
                panic!("a frame column's length differs from the frame's rows");
            }
            frames += 1;
        }
    }
    check(read_parquet(bytes.to_vec()));
    if let Ok(f) = read_parquet_frame(bytes.to_vec()) {
        if f.columns().iter().any(|c| c.len() != f.n_rows()) {
            panic!("a Parquet frame column's length differs from the frame's rows");
        }
        frames += 1;
    }
    read + frames + stream(bytes)
}

/// Reads `bytes` as streaming predict does, in batches of 7 rows, as numbers and as a
/// frame: every batch must be consistent, and no more rows than the footer declares.
#[allow(clippy::panic)]
fn stream(bytes: &[u8]) -> usize {
    use crate::stream::{ParquetStream, RangeSource};
    let mut read = 0;
    for text in [false, true] {
        let source: std::sync::Arc<dyn RangeSource> =
            std::sync::Arc::new(bytes::Bytes::copy_from_slice(bytes));
        let Ok(stream) = ParquetStream::open(source, text) else {
            continue;
        };
        let names: Vec<String> = stream
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let mut batches = stream.batches(7);
        let mut rows = 0u64;
        while let Ok(Some(batch)) = batches.next_batch() {
            rows += batch.n_rows as u64;
            if batch.n_rows > 7 || rows > stream.num_rows() {
                panic!(
                    "{} rows in a batch, {rows} of {} declared",
                    batch.n_rows,
                    stream.num_rows()
                );
            }
            let consistent = if text {
                batch.frame(&names).map(|f| {
                    f.n_rows() == batch.n_rows
                        && f.columns().iter().all(|c| c.len() == batch.n_rows)
                })
            } else {
                batch
                    .table(&names)
                    .map(|t| t.data.len() == batch.n_rows * t.n_cols)
            };
            if consistent == Ok(false) {
                panic!("a batch's columns disagree with its rows");
            }
        }
        read += 1;
    }
    read
}
