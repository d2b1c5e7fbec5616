//! Large inputs scored in parallel row slices.
//!
//! Every method of every native estimator computes each row from that row alone (as
//! scikit-learn's do), so scoring a frame in slices of rows and concatenating the outputs
//! gives the same values, bit for bit, as scoring it whole. A frame's encoders and
//! composites run on one thread; slicing is what spreads them over the cores, and it keeps
//! each slice's intermediate matrices (a one-hot encoding is often thousands of columns
//! wide) small enough to stay in cache instead of being allocated, faulted in and freed
//! at the size of the whole input.
//!
//! Errors name rows of the whole input (the first row with an unknown category, ...),
//! which a slice does not know. A failed slice is therefore not reported: the input is
//! scored again whole, which returns the error exactly as the unsliced call does.

use std::ops::Range;

use rayon::prelude::*;

use crate::error::Result;
use crate::estimator::Output;
use crate::matrix::{Matrix, Prediction};

/// Rows per slice. Inputs of up to twice this many rows are scored whole.
pub const SLICE_ROWS: usize = 1024;

/// The slices of `0..n_rows`: `None` when the input is scored whole.
pub(crate) fn slices(n_rows: usize) -> Option<Vec<Range<usize>>> {
    if n_rows <= 2 * SLICE_ROWS {
        return None;
    }
    Some(
        (0..n_rows)
            .step_by(SLICE_ROWS)
            .map(|start| start..(start + SLICE_ROWS).min(n_rows))
            .collect(),
    )
}

/// `score` of every slice, in parallel, concatenated; `None` when a slice failed or the
/// outputs do not concatenate (the caller then scores the input whole).
pub(crate) fn score(
    ranges: &[Range<usize>],
    score: impl Fn(Range<usize>) -> Result<Output> + Sync,
) -> Option<Output> {
    let parts: Vec<Output> = skvault_format::threads::install(|| {
        ranges
            .par_iter()
            .map(|r| score(r.clone()))
            .collect::<Result<_>>()
    })
    .ok()?;
    concat(parts)
}

/// The outputs of consecutive slices as one: labels after labels, matrix rows after
/// matrix rows. `None` when they are not all of one kind and width.
fn concat(parts: Vec<Output>) -> Option<Output> {
    let mut parts = parts.into_iter();
    let first = parts.next()?;
    match first {
        Output::Prediction(Prediction::Labels(mut labels)) => {
            for part in parts {
                let Output::Prediction(Prediction::Labels(more)) = part else {
                    return None;
                };
                labels.extend(more);
            }
            Some(Output::Prediction(Prediction::Labels(labels)))
        }
        Output::Prediction(Prediction::Values(m)) => {
            let m = stack(
                m,
                parts.map(|p| match p {
                    Output::Prediction(Prediction::Values(m)) => Some(m),
                    _ => None,
                }),
            )?;
            Some(Output::Prediction(Prediction::Values(m)))
        }
        Output::Matrix(m) => {
            let m = stack(
                m,
                parts.map(|p| match p {
                    Output::Matrix(m) => Some(m),
                    _ => None,
                }),
            )?;
            Some(Output::Matrix(m))
        }
    }
}

fn stack(mut first: Matrix, rest: impl Iterator<Item = Option<Matrix>>) -> Option<Matrix> {
    for m in rest {
        let m = m?;
        if m.n_cols != first.n_cols || m.flat != first.flat {
            return None;
        }
        first.data.extend_from_slice(&m.data);
        first.n_rows += m.n_rows;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_row_once_in_order() {
        assert_eq!(slices(0), None);
        assert_eq!(slices(2 * SLICE_ROWS), None);
        let n = 3 * SLICE_ROWS + 7;
        let s = slices(n).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].start, 0);
        assert_eq!(s.last().unwrap().end, n);
        assert!(s.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn outputs_concatenate_in_slice_order() {
        let m = |rows: &[f64]| Output::Matrix(Matrix::from_vec(rows.to_vec(), rows.len() / 2, 2));
        let out = concat(vec![m(&[1.0, 2.0]), m(&[3.0, 4.0, 5.0, 6.0])]).unwrap();
        assert_eq!(
            out,
            Output::Matrix(Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2))
        );
        let l = |v: Vec<usize>| Output::Prediction(Prediction::Labels(v));
        assert_eq!(
            concat(vec![l(vec![1]), l(vec![0, 2])]),
            Some(l(vec![1, 0, 2]))
        );
        let flat = Output::Prediction(Prediction::Values(Matrix::column(vec![1.0, 2.0])));
        let more = Output::Prediction(Prediction::Values(Matrix::column(vec![3.0])));
        assert_eq!(
            concat(vec![flat, more]),
            Some(Output::Prediction(Prediction::Values(Matrix::column(
                vec![1.0, 2.0, 3.0]
            ))))
        );
    }

    #[test]
    fn outputs_of_different_kinds_or_widths_do_not_concatenate() {
        let wide = Output::Matrix(Matrix::from_vec(vec![1.0, 2.0], 1, 2));
        let narrow = Output::Matrix(Matrix::from_vec(vec![1.0], 1, 1));
        assert_eq!(concat(vec![wide.clone(), narrow]), None);
        let labels = Output::Prediction(Prediction::Labels(vec![0]));
        assert_eq!(concat(vec![wide, labels]), None);
        assert_eq!(concat(vec![]), None);
    }

    #[test]
    fn a_failed_slice_fails_the_whole() {
        let ranges = slices(5 * SLICE_ROWS).unwrap();
        let out = score(&ranges, |r| {
            if r.start >= 3 * SLICE_ROWS {
                Err(crate::error::InferError::NotAvailable {
                    class: "X".into(),
                    method: "predict",
                })
            } else {
                Ok(Output::Matrix(Matrix::zeros(r.len(), 1)))
            }
        });
        assert_eq!(out, None);
        let ok = score(&ranges, |r| Ok(Output::Matrix(Matrix::zeros(r.len(), 1)))).unwrap();
        assert_eq!(ok.into_matrix().unwrap().n_rows, 5 * SLICE_ROWS);
    }
}
