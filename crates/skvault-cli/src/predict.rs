//! `skvault predict MODEL.skv INPUT -o OUTPUT [--proba | --method M]`: native inference
//! from the command line, with no Python.
//!
//! INPUT is a `.npy` file (a 2-d numeric array), CSV (`.csv`; the first line is a header
//! when any of its cells is not a number) or Parquet (`.parquet`, `.pq`; numeric columns),
//! or a folder or `s3://` prefix of Parquet files; column names are matched to
//! `feature_names_in_`. OUTPUT is `.npy`, `.csv` or `.parquet`, written atomically (a
//! temporary file renamed into place), or `-`: the result alone on stdout, CSV text unless
//! `--format`. Parquet input written as CSV or Parquet is streamed (`predict_stream`):
//! memory stays bounded whatever the input's size.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use skvault_infer::{Method, Model};

use skvault_table::predictions::{column_names, to_csv, to_npy, Output};
use skvault_table::sink::ParquetSink;
use skvault_table::{read_csv, read_npy, read_parquet, Table};

use crate::CliError;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The model (.skv).
    pub model: PathBuf,
    /// The rows to predict: .npy (2-d numeric array), .csv (header optional), .parquet, or a
    /// folder or s3://bucket/prefix of Parquet files (S3 settings from the AWS_* environment).
    pub input: PathBuf,
    /// Where to write the result: .npy, .csv or .parquet, or - for stdout (CSV unless --format).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The output format (default: from OUTPUT's extension; csv for -).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Write class probabilities (predict_proba) instead of labels.
    #[arg(long, conflicts_with = "method")]
    pub proba: bool,
    /// The method to call (default: predict).
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// Write the input's columns (as stored) before the predictions (Parquet input only).
    #[arg(long)]
    pub keep_columns: bool,
    /// Parquet input is streamed to CSV or Parquet output, this many rows at a time: memory
    /// holds the mapped model, two row groups' column chunks as stored (one is read ahead),
    /// and N decoded rows with their predictions (`skvault docs native`).
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub batch_rows: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormat {
    Csv,
    Npy,
    Parquet,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    Predict,
    PredictProba,
    DecisionFunction,
    Transform,
    ScoreSamples,
}

impl MethodArg {
    fn method(self) -> Method {
        match self {
            MethodArg::Predict => Method::Predict,
            MethodArg::PredictProba => Method::PredictProba,
            MethodArg::DecisionFunction => Method::DecisionFunction,
            MethodArg::Transform => Method::Transform,
            MethodArg::ScoreSamples => Method::ScoreSamples,
        }
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::input(message))
}

/// Runs the command. Exit code 0 on success; every error exits 2.
pub fn run(args: &PredictArgs) -> Result<u8, CliError> {
    execute(args).map(|()| 0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Npy,
    Csv,
    Parquet,
}

fn format_of(path: &Path, what: &str) -> Result<Format, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npy") => Ok(Format::Npy),
        Some("csv") => Ok(Format::Csv),
        Some("parquet" | "pq") => Ok(Format::Parquet),
        _ => fail(format!(
            "{}: cannot tell the {what} format from the name (use {})",
            path.display(),
            if what == "input" {
                ".npy, .csv, .parquet, a folder of Parquet files or s3://"
            } else {
                ".npy, .csv or .parquet"
            }
        )),
    }
}

fn read_input(path: &Path) -> Result<Table, CliError> {
    let format = format_of(path, "input")?;
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    let table = match format {
        Format::Npy => read_npy(&bytes)?,
        Format::Csv => {
            let text = String::from_utf8(bytes).map_err(|_| {
                CliError::input(format!("{}: the CSV is not UTF-8 text", path.display()))
            })?;
            read_csv(&text)?
        }
        Format::Parquet => read_parquet(bytes).map_err(|source| CliError::Table {
            path: Some(path.to_path_buf()),
            source,
        })?,
    };
    if table.n_rows == 0 {
        return fail(format!("{}: the input has no rows", path.display()));
    }
    Ok(table)
}

/// The input columns in the model's feature order.
fn align(table: Table, model: &Model) -> Result<Vec<f64>, CliError> {
    match feature_positions(table.names.as_deref(), table.n_cols, model)? {
        None => Ok(table.data),
        Some(positions) => Ok(pick_columns(&table, &positions)),
    }
}

/// Where each of the model's features is among the input's columns (`names`, `n_cols` of
/// them): `None` when the columns are the features in order (positional input).
pub(crate) fn feature_positions(
    names: Option<&[String]>,
    n_cols: usize,
    model: &Model,
) -> Result<Option<Vec<usize>>, CliError> {
    let n = model.n_features();
    match (names, model.feature_names()) {
        (Some(header), Some(expected)) => {
            let missing: Vec<&String> = expected.iter().filter(|e| !header.contains(e)).collect();
            let unknown: Vec<&String> = header.iter().filter(|h| !expected.contains(h)).collect();
            if !missing.is_empty() || !unknown.is_empty() {
                let mut msg = String::from("the header does not match the model's features:");
                if !missing.is_empty() {
                    let _ = write!(msg, " missing {missing:?}");
                }
                if !unknown.is_empty() {
                    let _ = write!(msg, " unexpected {unknown:?}");
                }
                return fail(msg);
            }
            let mut positions = Vec::with_capacity(n);
            for name in expected {
                let all: Vec<usize> = header
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| *h == name)
                    .map(|(i, _)| i)
                    .collect();
                match all.as_slice() {
                    [one] => positions.push(*one),
                    _ => return fail(format!("the header names {name:?} more than once")),
                }
            }
            Ok(Some(positions))
        }
        _ => {
            if n_cols != n {
                let names = model
                    .feature_names()
                    .map(|f| format!(" ({})", f.join(", ")))
                    .unwrap_or_default();
                return fail(format!(
                    "the input has {n_cols} columns, but the model expects {n} features{names}"
                ));
            }
            Ok(None)
        }
    }
}

/// The rows of `table` with only the columns at `positions`, in that order.
pub(crate) fn pick_columns(table: &Table, positions: &[usize]) -> Vec<f64> {
    let mut data = Vec::with_capacity(table.n_rows * positions.len());
    for row in table.data.chunks_exact(table.n_cols.max(1)) {
        data.extend(positions.iter().map(|p| row[*p]));
    }
    data
}

/// Where `-o` sends the result and in which format.
fn destination(args: &PredictArgs) -> Result<(Option<&Path>, Format), CliError> {
    let chosen = args.format.map(|f| match f {
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Npy => Format::Npy,
        OutputFormat::Parquet => Format::Parquet,
    });
    if args.output.as_os_str() == "-" {
        let format = chosen.unwrap_or(Format::Csv);
        if format != Format::Csv && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return fail(
                "-o - --format npy or parquet writes binary data: redirect stdout to a file or \
                 a pipe, or use --format csv",
            );
        }
        return Ok((None, format));
    }
    skvault_format::atomic::refuse_input_as_output(&args.output, &[&args.model, &args.input])
        .map_err(|source| CliError::Io {
            path: args.output.clone(),
            source,
        })?;
    let format = match chosen {
        Some(f) => f,
        None => format_of(&args.output, "output")?,
    };
    Ok((Some(&args.output), format))
}

/// The input schema recorded in the model's file (`metadata.input_schema`), if any.
fn input_schema(file: &skvault_format::SkvFile) -> Option<skvault_frame::InputSchema> {
    let value = file.manifest().metadata.get("input_schema")?;
    serde_json::from_value(value.clone()).ok()
}

/// A CSV or Parquet file for a model fitted on text or categories: read as a frame (a
/// CSV's text columns by the schema; Parquet's string columns as text), checked against
/// the schema, predicted in one call.
fn predict_frame(
    model: &Model,
    schema: &skvault_frame::InputSchema,
    method: Method,
    path: &Path,
    format: Format,
) -> Result<crate::rows::Rows, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    let table_error = |source| CliError::Table {
        path: Some(path.to_path_buf()),
        source,
    };
    let frame = match format {
        Format::Parquet => skvault_table::read_parquet_frame(bytes).map_err(table_error)?,
        _ => {
            let text = String::from_utf8(bytes).map_err(|_| {
                CliError::input(format!("{}: the CSV is not UTF-8 text", path.display()))
            })?;
            let text_columns = schema.text_columns();
            skvault_table::read_csv_frame(&text, &text_columns).map_err(table_error)?
        }
    };
    schema
        .check(&frame)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    Ok(match model.call_frame(method, &frame)? {
        skvault_infer::Output::Prediction(skvault_infer::Prediction::Labels(idx)) => {
            crate::rows::Rows::Labels(idx)
        }
        skvault_infer::Output::Prediction(skvault_infer::Prediction::Values(m))
        | skvault_infer::Output::Matrix(m) => crate::rows::Rows::Values(m),
    })
}

fn execute(args: &PredictArgs) -> Result<(), CliError> {
    let (out_path, out_format) = destination(args)?;
    let file = skvault_format::SkvFile::open(&args.model)?;
    let model = Model::from_file(&file)?;
    let schema = input_schema(&file);
    drop(file);
    let method = match (args.proba, args.method) {
        (true, _) => Method::PredictProba,
        (false, Some(m)) => m.method(),
        (false, None) => Method::Predict,
    };
    if !model.has(method) {
        let names: Vec<&str> = model.methods().iter().map(|m| m.name()).collect();
        return fail(format!(
            "{} has no method {} (it has: {})",
            model.class(),
            method.name(),
            names.join(", ")
        ));
    }
    let reads_text = schema
        .as_ref()
        .is_some_and(|s| !s.text_columns().is_empty());
    let dataset = crate::predict_stream::is_s3(&args.input) || args.input.is_dir();
    let input_format = if dataset {
        Format::Parquet
    } else {
        format_of(&args.input, "input")?
    };
    if args.keep_columns && input_format != Format::Parquet {
        return fail("--keep-columns needs Parquet input (a file, a folder or s3://)");
    }
    if args.keep_columns && out_format == Format::Npy {
        return fail("--keep-columns needs CSV or Parquet output (.npy holds one array)");
    }
    if input_format == Format::Parquet && out_format != Format::Npy {
        let job = crate::predict_stream::Job {
            model: &model,
            method,
            schema: schema.as_ref(),
            keep_columns: args.keep_columns,
            batch_rows: usize::try_from(args.batch_rows).unwrap_or(usize::MAX),
            parquet: out_format == Format::Parquet,
        };
        return crate::predict_stream::run(&job, &args.input, out_path);
    }
    if dataset {
        return fail(format!(
            "{}: a folder or s3:// input is streamed: write it as .csv or .parquet (not .npy, \
             which needs the whole result in memory)",
            args.input.display()
        ));
    }
    if let (true, Some(schema), Format::Csv | Format::Parquet) = (reads_text, &schema, input_format)
    {
        let rows = predict_frame(&model, schema, method, &args.input, input_format)?;
        return finish(out_path, out_format, &model, method, rows);
    }
    // Parsing a large CSV takes a while and reports nothing: a spinner says so.
    let size = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let reading = crate::progress::spinner(size, "reading the input");
    let table = read_input(&args.input);
    reading.finish_and_clear();
    let table = table?;
    let n_rows = table.n_rows;
    let data = align(table, &model)?;
    let bar = crate::progress::rows_bar(n_rows as u64, size, "predicting");
    let rows = crate::rows::predict(&model, method, &data, n_rows, &bar);
    crate::progress::end(&bar, rows.is_ok());
    finish(out_path, out_format, &model, method, rows?)
}

/// Writes what the method returned where `-o` says.
fn finish(
    out_path: Option<&Path>,
    out_format: Format,
    model: &Model,
    method: Method,
    rows: crate::rows::Rows,
) -> Result<(), CliError> {
    let output = match rows {
        crate::rows::Rows::Labels(idx) => {
            let classes = model
                .classes()
                .cloned()
                .ok_or_else(|| CliError::input("labels without classes"))?;
            Output::Labels(idx, classes)
        }
        crate::rows::Rows::Values(m) => Output::Values(m),
    };
    let headers = column_names(&output, model, method);
    let bytes = match out_format {
        Format::Npy => to_npy(&output),
        Format::Csv => to_csv(&output, &headers),
        Format::Parquet => {
            let mut bytes = Vec::new();
            let mut sink = ParquetSink::new(&mut bytes, &[], &output, &headers)?;
            sink.write(None, &output)?;
            sink.finish()?;
            bytes
        }
    };
    match out_path {
        Some(path) => write_atomic(path, &bytes),
        None => {
            crate::output::write_out_bytes(&bytes);
            Ok(())
        }
    }
}

/// Writes `bytes` to `path` atomically (see `skvault_format::atomic`).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    skvault_format::atomic::write_atomic(path, |w| w.write_all(bytes))
        .map_err(|f| CliError::io(&f.path, f.source))
}
