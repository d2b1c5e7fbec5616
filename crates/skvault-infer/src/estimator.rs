//! The trait every native estimator implements, and what its builders share.
//!
//! Estimator modules depend on this module only; the dispatch from class names to their
//! builders is `registry`'s, which depends on them.

use skvault_format::Node;
use skvault_frame::Frame;

use crate::classes::Classes;
use crate::error::{InferError, Result};
use crate::matrix::{Matrix, MatrixView, Prediction};
use crate::state::Ctx;

/// The methods a model may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Predict,
    PredictProba,
    DecisionFunction,
    Transform,
    ScoreSamples,
}

impl Method {
    /// The method called `name` (scikit-learn's spelling), if it is one of these.
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "predict" => Method::Predict,
            "predict_proba" => Method::PredictProba,
            "decision_function" => Method::DecisionFunction,
            "transform" => Method::Transform,
            "score_samples" => Method::ScoreSamples,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Predict => "predict",
            Method::PredictProba => "predict_proba",
            Method::DecisionFunction => "decision_function",
            Method::Transform => "transform",
            Method::ScoreSamples => "score_samples",
        }
    }
}

/// What a method returns: `predict` a [`Prediction`], every other method a matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Prediction(Prediction),
    Matrix(Matrix),
}

impl Output {
    /// The matrix of a method other than `predict` (a regressor's `predict` values too).
    pub fn into_matrix(self) -> Option<Matrix> {
        match self {
            Output::Matrix(m) | Output::Prediction(Prediction::Values(m)) => Some(m),
            Output::Prediction(Prediction::Labels(_)) => None,
        }
    }
}

/// Runs `method` of `est` on a numeric matrix.
pub(crate) fn call<E: Estimator + ?Sized>(
    est: &E,
    method: Method,
    x: &MatrixView<'_>,
) -> Result<Output> {
    Ok(match method {
        Method::Predict => Output::Prediction(est.predict(x)?),
        Method::PredictProba => Output::Matrix(est.predict_proba(x)?),
        Method::DecisionFunction => Output::Matrix(est.decision_function(x)?),
        Method::Transform => Output::Matrix(est.transform(x)?),
        Method::ScoreSamples => Output::Matrix(est.score_samples(x)?),
    })
}

/// `transform` of `est` on the frame's columns at `cols`, as a matrix.
pub(crate) fn transform_frame<E: Estimator + ?Sized>(
    est: &E,
    frame: &Frame,
    cols: &[usize],
) -> Result<Matrix> {
    est.call_frame(Method::Transform, frame, cols)?
        .into_matrix()
        .ok_or_else(|| not_available(est.class(), Method::Transform))
}

/// The frame's columns at `cols` as numbers (text refused, naming the column), checked
/// against the number of features `est` expects.
pub(crate) fn numeric_input<E: Estimator + ?Sized>(
    est: &E,
    frame: &Frame,
    cols: &[usize],
) -> Result<Matrix> {
    if cols.len() != est.n_features() {
        return Err(InferError::FeatureCount {
            class: est.class().to_string(),
            expected: est.n_features(),
            found: cols.len(),
        });
    }
    let data = frame.numeric_matrix(cols)?;
    Ok(Matrix::from_vec(data, frame.n_rows(), cols.len()))
}

/// The frame's columns at `cols`, checked to be the `n` columns `class` was fitted on.
pub(crate) fn frame_input<'f>(
    class: &str,
    frame: &'f Frame,
    cols: &[usize],
    n: usize,
) -> Result<Vec<&'f skvault_frame::Column>> {
    if cols.len() != n {
        return Err(InferError::FeatureCount {
            class: class.to_string(),
            expected: n,
            found: cols.len(),
        });
    }
    Ok(cols.iter().map(|&p| &frame.columns()[p]).collect())
}

/// A regressor's methods (predict only).
pub(crate) const PREDICT_ONLY: &[Method] = &[Method::Predict];
/// A classifier with scores and probabilities (boosting, logistic models).
pub(crate) const SCORED_CLASSIFIER: &[Method] = &[
    Method::Predict,
    Method::PredictProba,
    Method::DecisionFunction,
];

pub(crate) fn not_available(class: &str, method: Method) -> InferError {
    InferError::NotAvailable {
        class: class.to_string(),
        method: method.name(),
    }
}

/// A fitted estimator, built and validated from the object tree.
///
/// Methods check their input themselves (column count, NaN and infinity), the way
/// scikit-learn's `validate_data` does for that estimator.
pub(crate) trait Estimator: Send + Sync + std::fmt::Debug {
    /// The qualified class name, as in the file.
    fn class(&self) -> &str;

    /// The number of input columns.
    fn n_features(&self) -> usize;

    /// The methods this estimator has.
    fn methods(&self) -> &'static [Method];

    fn classes(&self) -> Option<&Classes> {
        None
    }

    fn predict(&self, _x: &MatrixView<'_>) -> Result<Prediction> {
        Err(not_available(self.class(), Method::Predict))
    }

    fn predict_proba(&self, _x: &MatrixView<'_>) -> Result<Matrix> {
        Err(not_available(self.class(), Method::PredictProba))
    }

    fn decision_function(&self, _x: &MatrixView<'_>) -> Result<Matrix> {
        Err(not_available(self.class(), Method::DecisionFunction))
    }

    fn transform(&self, _x: &MatrixView<'_>) -> Result<Matrix> {
        Err(not_available(self.class(), Method::Transform))
    }

    fn score_samples(&self, _x: &MatrixView<'_>) -> Result<Matrix> {
        Err(not_available(self.class(), Method::ScoreSamples))
    }

    /// Runs `method` on the columns of `frame` at positions `cols` (this estimator's input
    /// columns, in fit order). Estimators that read text or categories themselves
    /// (encoders, composites that hold them) override it; every other estimator takes the
    /// columns as numbers, and text is refused naming its column.
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        let x = numeric_input(self, frame, cols)?;
        call(self, method, &x.view())
    }

    /// For transformers whose output can hold text (SimpleImputer fitted on text): the
    /// output as a frame, for the next step to read. `None` for every other estimator.
    fn frame_transform(&self, _frame: &Frame, _cols: &[usize]) -> Option<Result<Frame>> {
        None
    }

    /// The number of columns `transform` returns, where the fitted state fixes it. Used to
    /// narrow a pipeline (see [`crate::compose`]): `None` keeps this estimator whole.
    fn n_outputs(&self) -> Option<usize> {
        None
    }

    /// Makes `transform` return only its output columns at `keep` (sorted, distinct, below
    /// [`Estimator::n_outputs`]), with every check and error it had: only the work of the
    /// other outputs is skipped. `false` (and nothing changed) where it cannot. Called at
    /// open time on a second copy of the step, never on the one exporters see.
    fn keep_outputs(&mut self, _keep: &[usize]) -> bool {
        false
    }

    /// The input columns the outputs depend on (sorted, distinct), for an estimator that
    /// reads some of its columns only (trees split on some features) and whose checks of the
    /// other columns cannot fail (it accepts NaN and infinity, as HistGradientBoosting
    /// does). `None` when it reads them all.
    fn used_columns(&self) -> Option<Vec<usize>> {
        None
    }

    /// Makes the estimator read the columns at `used` (what [`Estimator::used_columns`]
    /// returned) as its whole input, in that order. `false` (nothing changed) where it
    /// cannot. Called at open time on a second copy, as `keep_outputs` is.
    fn read_only(&mut self, _used: &[usize]) -> bool {
        false
    }

    /// Builds now what predictions on a few rows would otherwise build on their first call
    /// (a forest's one-row layout), for a server that wants its first request as fast as
    /// the others. A pipeline passes it on to its steps (a ColumnTransformer's blocks are
    /// transformers, never forests). Whether anything of the kind is ready now.
    fn prepare_few_rows(&self) -> bool {
        false
    }

    /// The fitted parameters, for exporters; `Opaque` until an estimator describes itself.
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Opaque {
            class: self.class(),
        }
    }
}

pub(crate) type Boxed = Box<dyn Estimator>;

/// For narrowing ([`Estimator::keep_outputs`], [`Estimator::read_only`]): the place of each
/// of `n` columns among `keep`, `None` where it is not kept. `None` overall when `keep` has a
/// column twice or one not below `n`.
pub(crate) fn places(keep: &[usize], n: usize) -> Option<Vec<Option<u32>>> {
    let mut map = vec![None; n];
    for (place, &c) in keep.iter().enumerate() {
        match (map.get_mut(c), u32::try_from(place)) {
            (Some(slot @ None), Ok(place)) => *slot = Some(place),
            _ => return None,
        }
    }
    Some(map)
}

/// Builds an estimator that another holds (a pipeline's steps, a boosting model's
/// preprocessor): `registry::build`, handed to the builders of such estimators so that no
/// estimator module imports the registry.
pub(crate) type BuildNested = for<'f> fn(&Ctx<'f>, &'f Node, &str) -> Result<Boxed>;
