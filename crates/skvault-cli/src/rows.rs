//! `skvault predict` over the input in batches of rows: the rows bar moves by rows predicted,
//! and Ctrl-C is noticed between two batches. Every method is row-wise, so batches give the
//! same result as one call over the whole input.

use indicatif::ProgressBar;
use skvault_infer::{InferError, Matrix, MatrixView, Method, Model, Prediction};

use crate::{interrupt, CliError};

/// Rows per call of the model: large enough for the model's own parallelism to pay, small
/// enough for the bar to move and a stop to be quick.
const BATCH_ROWS: usize = 1 << 16;

/// What a method returned for some rows: label indices or values.
pub enum Rows {
    Labels(Vec<usize>),
    Values(Matrix),
}

impl Rows {
    fn append(&mut self, more: Rows) -> Result<(), CliError> {
        match (self, more) {
            (Rows::Labels(all), Rows::Labels(more)) => all.extend(more),
            (Rows::Values(all), Rows::Values(more))
                if all.n_cols == more.n_cols && all.flat == more.flat =>
            {
                all.data.extend(more.data);
                all.n_rows += more.n_rows;
            }
            _ => return Err(CliError::input("the model's batches disagree in shape")),
        }
        Ok(())
    }
}

fn call(model: &Model, method: Method, x: &MatrixView<'_>) -> Result<Rows, InferError> {
    Ok(match method {
        Method::Predict => match model.predict(x)? {
            Prediction::Labels(idx) => Rows::Labels(idx),
            Prediction::Values(m) => Rows::Values(m),
        },
        Method::PredictProba => Rows::Values(model.predict_proba(x)?),
        Method::DecisionFunction => Rows::Values(model.decision_function(x)?),
        Method::Transform => Rows::Values(model.transform(x)?),
        Method::ScoreSamples => Rows::Values(model.score_samples(x)?),
    })
}

/// An error of the batch that starts at row `start`, its row counted in the whole input.
pub fn in_input(err: InferError, start: usize) -> InferError {
    match err {
        InferError::InvalidValue {
            class,
            row,
            column,
            message,
        } => InferError::InvalidValue {
            class,
            row: row.saturating_add(start),
            column,
            message,
        },
        other => other,
    }
}

/// Runs `method` over the `n_rows` rows of `data` (in the model's feature order), a batch at
/// a time, moving `bar` by the rows done.
pub fn predict(
    model: &Model,
    method: Method,
    data: &[f64],
    n_rows: usize,
    bar: &ProgressBar,
) -> Result<Rows, CliError> {
    predict_at(model, method, data, n_rows, 0, bar)
}

/// [`predict`] over rows that start at row `first_row` of the whole input (errors count
/// rows from there).
pub fn predict_at(
    model: &Model,
    method: Method,
    data: &[f64],
    n_rows: usize,
    first_row: usize,
    bar: &ProgressBar,
) -> Result<Rows, CliError> {
    let n_cols = model.n_features();
    let mut all: Option<Rows> = None;
    let mut start = 0;
    while start < n_rows {
        let end = n_rows.min(start.saturating_add(BATCH_ROWS));
        let slice = data
            .get(start * n_cols..end * n_cols)
            .ok_or_else(|| CliError::input("the input is shorter than its row count"))?;
        let rows = call(model, method, &MatrixView::new(slice, end - start, n_cols)?)
            .map_err(|e| in_input(e, first_row.saturating_add(start)))?;
        match &mut all {
            None => all = Some(rows),
            Some(all) => all.append(rows)?,
        }
        bar.inc((end - start) as u64);
        interrupt::check().map_err(|e| CliError::input(e.to_string()))?;
        start = end;
    }
    all.ok_or_else(|| CliError::input("the input has no rows"))
}
