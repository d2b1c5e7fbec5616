//! Streaming `skvault predict`: Parquet input (a file, a folder of files, or an `s3://`
//! prefix) predicted batch by batch and written as CSV or Parquet while it is read, so that
//! inputs far larger than memory go through.
//!
//! Memory holds, at any time: the mapped model, two row groups' column chunks (compressed, as
//! stored: one is read ahead), one batch of at most `--batch-rows` rows decoded (a few copies of 8 bytes per
//! value: stored values, the table, the model's input) and its predictions, and the output
//! writer's current row group. Files are opened one at a time; their footers are read twice
//! (once to check every file's schema before anything is written, once to read it).
//!
//! The output is written to a temporary file beside the destination, synced and renamed at
//! the end (`skvault_format::atomic`); a failure, Ctrl-C or SIGTERM removes it.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use skvault_infer::{Method, Model};
use skvault_registry::Objects;
use skvault_table::predictions::{column_names, Output};
use skvault_table::sink::{csv_header, csv_rows, ParquetSink};
use skvault_table::stream::{Batch, ParquetStream, RangeSource, StreamColumn};
use skvault_table::TableError;

use crate::rows::Rows;
use crate::{interrupt, CliError};

/// Whether `input` names an S3 prefix rather than a local path.
pub fn is_s3(input: &Path) -> bool {
    input.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// One file of the dataset.
struct DataFile {
    /// The path or `s3://` URI, for messages.
    name: String,
    size: u64,
    location: Location,
}

enum Location {
    Local(PathBuf),
    S3(Arc<Objects>, String),
}

/// An object of a store, read by byte ranges.
struct S3Object {
    objects: Arc<Objects>,
    key: String,
    size: u64,
}

impl RangeSource for S3Object {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>> {
        self.objects
            .get_ranges(&self.key, ranges)
            .map_err(std::io::Error::other)
    }
}

impl DataFile {
    fn table_error(&self, source: TableError) -> CliError {
        CliError::Table {
            path: Some(PathBuf::from(&self.name)),
            source,
        }
    }

    fn open(&self, text: bool) -> Result<ParquetStream, CliError> {
        let source: Arc<dyn RangeSource> = match &self.location {
            Location::Local(path) => {
                Arc::new(std::fs::File::open(path).map_err(|e| CliError::io(path, e))?)
            }
            Location::S3(objects, key) => Arc::new(S3Object {
                objects: Arc::clone(objects),
                key: key.clone(),
                size: self.size,
            }),
        };
        ParquetStream::open(source, text).map_err(|e| self.table_error(e))
    }
}

/// Files whose name starts with `.` or `_` are not data (`_SUCCESS`, `.crc` files, hidden
/// temporaries), as pyarrow, Spark and Dask skip them.
fn is_data_name(name: &str) -> bool {
    !(name.starts_with('.') || name.starts_with('_'))
}

/// The files of the dataset at `input`, sorted by path.
fn list(input: &Path) -> Result<Vec<DataFile>, CliError> {
    let shown = input.display().to_string();
    if is_s3(input) {
        let objects = Arc::new(Objects::open(&shown, &[])?);
        return Ok(objects
            .list()?
            .into_iter()
            .filter(|o| o.key.split('/').all(is_data_name))
            .map(|o| DataFile {
                name: objects.uri(&o.key),
                size: o.size,
                location: Location::S3(Arc::clone(&objects), o.key),
            })
            .collect());
    }
    let meta = std::fs::metadata(input).map_err(|e| CliError::io(input, e))?;
    if !meta.is_dir() {
        return Ok(vec![DataFile {
            name: shown,
            size: meta.len(),
            location: Location::Local(input.to_path_buf()),
        }]);
    }
    let mut files = Vec::new();
    walk(input, &mut files)?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Collects the files under `dir`, recursively. Links to files are followed, links to
/// folders are not (a link to a parent would never end).
fn walk(dir: &Path, files: &mut Vec<DataFile>) -> Result<(), CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io(dir, e))?;
        let path = entry.path();
        if !entry.file_name().to_str().is_some_and(is_data_name) {
            continue;
        }
        let link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let meta = std::fs::metadata(&path).map_err(|e| CliError::io(&path, e))?;
        if meta.is_dir() {
            if link {
                continue;
            }
            walk(&path, files)?;
        } else {
            files.push(DataFile {
                name: path.display().to_string(),
                size: meta.len(),
                location: Location::Local(path),
            });
        }
    }
    Ok(())
}

/// An output inside the input folder would be read as input by the next run.
fn refuse_output_inside(input: &Path, out: &Path) -> Result<(), CliError> {
    if is_s3(input) || !input.is_dir() {
        return Ok(());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let (Ok(dir), Ok(parent)) = (input.canonicalize(), parent.canonicalize()) {
        if parent.starts_with(&dir) {
            return Err(CliError::input(format!(
                "{}: the output is inside the input folder {}, where the next run would read it as input: write it elsewhere",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// What the run needs to know of the model.
pub struct Job<'a> {
    pub model: &'a Model,
    pub method: Method,
    /// The recorded input schema, when the model reads text (then batches are frames).
    pub schema: Option<&'a skvault_frame::InputSchema>,
    pub keep_columns: bool,
    pub batch_rows: usize,
    pub parquet: bool,
}

impl Job<'_> {
    /// Whether batches are read as frames (text columns) rather than numeric tables.
    fn reads_text(&self) -> bool {
        self.schema.is_some_and(|s| !s.text_columns().is_empty())
    }
}

/// The checked dataset: its files, the columns they all have, the rows they declare.
struct Dataset {
    files: Vec<DataFile>,
    columns: Vec<StreamColumn>,
    names: Vec<String>,
    rows: u64,
    bytes: u64,
}

/// Opens every file's footer and checks that they share the first one's columns (names and
/// stored types), before anything is written.
fn check(input: &Path, text: bool) -> Result<Dataset, CliError> {
    let files = list(input)?;
    let Some(first) = files.first() else {
        return Err(CliError::input(format!(
            "{}: no Parquet files (names starting with . or _ are skipped)",
            input.display()
        )));
    };
    let columns = first.open(text)?.columns().to_vec();
    let names: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
    let mut rows: u64 = 0;
    for file in &files {
        let stream = file.open(text)?;
        same_columns(&columns, stream.columns(), first, file)?;
        rows = rows.saturating_add(stream.num_rows());
    }
    if rows == 0 {
        return Err(CliError::input(format!(
            "{}: the input has no rows",
            input.display()
        )));
    }
    let bytes = files.iter().map(|f| f.size).fold(0, u64::saturating_add);
    Ok(Dataset {
        files,
        columns,
        names,
        rows,
        bytes,
    })
}

fn same_columns(
    want: &[StreamColumn],
    got: &[StreamColumn],
    first: &DataFile,
    file: &DataFile,
) -> Result<(), CliError> {
    let names = |cols: &[StreamColumn]| cols.iter().map(|c| c.name().to_string()).collect();
    let (want_names, got_names): (Vec<String>, Vec<String>) = (names(want), names(got));
    if want_names != got_names {
        return Err(CliError::input(format!(
            "{}: its columns {got_names:?} differ from those of {} {want_names:?} (the files of a dataset must share one schema)",
            file.name, first.name
        )));
    }
    for (w, g) in want.iter().zip(got) {
        if w.type_text() != g.type_text() {
            return Err(CliError::input(format!(
                "{}: column {:?} is {} there, {} in {} (the files of a dataset must share one schema)",
                file.name,
                g.name(),
                g.type_text(),
                w.type_text(),
                first.name
            )));
        }
    }
    Ok(())
}

/// The writer of the output, made at the first batch (whose predictions fix its columns).
enum Sink<'w> {
    Parquet(ParquetSink<&'w mut (dyn Write + Send)>),
    Csv(&'w mut (dyn Write + Send)),
}

/// Runs the job over `input`, writing to `out` (a file, atomically; `None`: stdout).
pub fn run(job: &Job<'_>, input: &Path, out: Option<&Path>) -> Result<(), CliError> {
    if let Some(out) = out {
        refuse_output_inside(input, out)?;
    }
    let _term = interrupt::TermGuard::install();
    let text = job.reads_text();
    let dataset = check(input, text)?;
    let positions = if text {
        None
    } else {
        crate::predict::feature_positions(Some(&dataset.names), dataset.names.len(), job.model)
            .map_err(|e| in_file(&dataset.files[0].name, e))?
    };
    let bar = crate::progress::rows_bar(dataset.rows, dataset.bytes, "predicting");
    let result = match out {
        Some(path) => {
            let mut failure: Option<CliError> = None;
            let written = skvault_format::atomic::write_atomic_send(path, |w| {
                stream(job, &dataset, positions.as_deref(), &bar, w, path).map_err(|e| {
                    let message = e.to_string();
                    failure = Some(e);
                    std::io::Error::other(message)
                })
            });
            match (written, failure) {
                (Ok(()), _) => Ok(()),
                (Err(_), Some(e)) => Err(e),
                (Err(f), None) => Err(CliError::io(&f.path, f.source)),
            }
        }
        None => {
            let mut stdout = StdoutWriter;
            stream(
                job,
                &dataset,
                positions.as_deref(),
                &bar,
                &mut stdout,
                Path::new("-"),
            )
        }
    };
    crate::progress::end(&bar, result.is_ok());
    result
}

/// Stdout through the command's panic-free writer; a closed pipe stops the run quietly.
struct StdoutWriter;

impl Write for StdoutWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::output::write_out_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn written(out: &Path, e: std::io::Error) -> CliError {
    CliError::io(out, e)
}

/// `err`, naming the file whose rows caused it.
fn in_file(name: &str, err: CliError) -> CliError {
    match err {
        CliError::Input { message } => CliError::input(format!("{name}: {message}")),
        CliError::Infer(e) => CliError::input(format!("{name}: {e}")),
        CliError::Table { path: None, source } => CliError::Table {
            path: Some(PathBuf::from(name)),
            source,
        },
        other => other,
    }
}

fn stream(
    job: &Job<'_>,
    dataset: &Dataset,
    positions: Option<&[usize]>,
    bar: &indicatif::ProgressBar,
    w: &mut (dyn Write + Send),
    out_name: &Path,
) -> Result<(), CliError> {
    let text = job.reads_text();
    let kept: &[StreamColumn] = if job.keep_columns {
        &dataset.columns
    } else {
        &[]
    };
    let mut sink: Option<Sink<'_>> = None;
    let mut w = Some(w);
    for file in &dataset.files {
        let stream = file.open(text)?;
        same_columns(&dataset.columns, stream.columns(), &dataset.files[0], file)?;
        let mut batches = stream.batches(job.batch_rows);
        // Errors name the file, and the row within it.
        let mut first_row = 0usize;
        while let Some(batch) = batches.next_batch().map_err(|e| file.table_error(e))? {
            let output = predict_batch(job, dataset, positions, &batch, first_row, bar)
                .map_err(|e| in_file(&file.name, e))?;
            let keep = job.keep_columns.then_some(&batch);
            let sink = match &mut sink {
                Some(s) => s,
                None => {
                    let headers = column_names(&output, job.model, job.method);
                    if let Some(clash) =
                        headers.iter().find(|h| kept.iter().any(|c| c.name() == *h))
                    {
                        return Err(CliError::input(format!(
                            "the output column {clash:?} would be both an input column and a prediction: rename the input column, or leave out --keep-columns"
                        )));
                    }
                    let out = w.take().ok_or_else(|| CliError::input("no output"))?;
                    sink.insert(if job.parquet {
                        Sink::Parquet(ParquetSink::new(out, kept, &output, &headers)?)
                    } else {
                        out.write_all(csv_header(kept, &headers).as_bytes())
                            .map_err(|e| written(out_name, e))?;
                        Sink::Csv(out)
                    })
                }
            };
            match sink {
                Sink::Parquet(p) => p.write(keep, &output)?,
                Sink::Csv(out) => out
                    .write_all(csv_rows(keep, &output)?.as_bytes())
                    .map_err(|e| written(out_name, e))?,
            }
            first_row = first_row.saturating_add(batch.n_rows);
            interrupt::check().map_err(|e| CliError::input(e.to_string()))?;
            if crate::output::stdout_closed() {
                return Ok(());
            }
        }
    }
    match sink {
        Some(Sink::Parquet(p)) => p.finish()?,
        Some(Sink::Csv(_)) => {}
        None => return Err(CliError::input("the input has no rows")),
    }
    Ok(())
}

/// Predicts one batch: as a table in the model's feature order, or as a frame checked
/// against the recorded schema when the model reads text.
fn predict_batch(
    job: &Job<'_>,
    dataset: &Dataset,
    positions: Option<&[usize]>,
    batch: &Batch,
    first_row: usize,
    bar: &indicatif::ProgressBar,
) -> Result<Output, CliError> {
    let model = job.model;
    let rows = match job.schema.filter(|_| job.reads_text()) {
        Some(schema) => {
            let frame = batch.frame(&dataset.names)?;
            schema
                .check(&frame)
                .map_err(|e| CliError::input(e.to_string()))?;
            let out = model
                .call_frame(job.method, &frame)
                .map_err(|e| crate::rows::in_input(e, first_row))?;
            bar.inc(batch.n_rows as u64);
            return Output::from_infer(out, model)
                .ok_or_else(|| CliError::input("labels without classes"));
        }
        None => {
            let table = batch.table(&dataset.names)?;
            let data = match positions {
                Some(p) => crate::predict::pick_columns(&table, p),
                None => table.data,
            };
            crate::rows::predict_at(model, job.method, &data, batch.n_rows, first_row, bar)?
        }
    };
    Ok(match rows {
        Rows::Labels(idx) => Output::Labels(
            idx,
            model
                .classes()
                .cloned()
                .ok_or_else(|| CliError::input("labels without classes"))?,
        ),
        Rows::Values(m) => Output::Values(m),
    })
}
