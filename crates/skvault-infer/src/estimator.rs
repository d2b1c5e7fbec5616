//! The trait every native estimator implements, and what its builders share.
//!
//! Estimator modules depend on this module only; the dispatch from class names to their
//! builders is `registry`'s, which depends on them.

use skvault_format::Node;

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

    /// The fitted parameters, for exporters; `Opaque` until an estimator describes itself.
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Opaque {
            class: self.class(),
        }
    }
}

pub(crate) type Boxed = Box<dyn Estimator>;

/// Builds an estimator that another holds (a pipeline's steps, a boosting model's
/// preprocessor): `registry::build`, handed to the builders of such estimators so that no
/// estimator module imports the registry.
pub(crate) type BuildNested = for<'f> fn(&Ctx<'f>, &'f Node, &str) -> Result<Boxed>;
