//! The dispatch from class names to the builders of the estimator modules.
//!
//! This module depends on every estimator module and none depends on it: composites build
//! their members through the `BuildNested` they are given (this module's [`build`]).

use skvault_format::Node;

use crate::classes::Classes;
use crate::error::{unsupported, InferError, Result};
use crate::estimator::{Boxed, Estimator, Method};
use crate::matrix::{Matrix, MatrixView, Prediction};
use crate::state::{Ctx, Obj};

/// Builds the estimator if the object is of a class the builder knows, else `None`.
type Builder = fn(&Obj<'_, '_>) -> Result<Option<Boxed>>;

/// Builds the native estimator for the object at `path`; unknown classes are `Unsupported`.
///
/// A node with an id (however it is reached: its declaration or any `ref`) is built once and shared;
/// every use still counts toward the work bound, and nesting toward the depth bound
/// (`budget`), so refs cannot make the model deeper or larger than those bounds.
pub(crate) fn build<'f>(ctx: &Ctx<'f>, node: &'f Node, path: &str) -> Result<Boxed> {
    let budget = ctx.budget();
    budget.nested(path, || {
        // Lists and attributes hand over their items already resolved, so a shared node is
        // recognised by what it is (its address in the tree), not by the ref that led here.
        let Some(id) = ctx.shared_id(node) else {
            return build_new(ctx, node, path);
        };
        let est: std::sync::Arc<dyn Estimator> = match budget.recall(id, path)? {
            Some(est) => est,
            None => budget.remember(id, || build_new(ctx, node, path).map(std::sync::Arc::from))?,
        };
        Ok(Box::new(Shared(est)) as Boxed)
    })
}

/// One estimator used in several places of the model (ids and refs).
#[derive(Debug)]
struct Shared(std::sync::Arc<dyn Estimator>);

impl Estimator for Shared {
    fn class(&self) -> &str {
        self.0.class()
    }
    fn n_features(&self) -> usize {
        self.0.n_features()
    }
    fn methods(&self) -> &'static [Method] {
        self.0.methods()
    }
    fn classes(&self) -> Option<&Classes> {
        self.0.classes()
    }
    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        self.0.predict(x)
    }
    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.0.predict_proba(x)
    }
    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.0.decision_function(x)
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.0.transform(x)
    }
    fn score_samples(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.0.score_samples(x)
    }
    fn call_frame(
        &self,
        method: Method,
        frame: &skvault_frame::Frame,
        cols: &[usize],
    ) -> Result<crate::estimator::Output> {
        self.0.call_frame(method, frame, cols)
    }
    fn frame_transform(
        &self,
        frame: &skvault_frame::Frame,
        cols: &[usize],
    ) -> Option<Result<skvault_frame::Frame>> {
        self.0.frame_transform(frame, cols)
    }
    fn view(&self) -> crate::view::View<'_> {
        self.0.view()
    }
    fn n_outputs(&self) -> Option<usize> {
        self.0.n_outputs()
    }
}

fn build_new<'f>(ctx: &Ctx<'f>, node: &'f Node, path: &str) -> Result<Boxed> {
    ctx.budget().charge(1, path)?;
    let Some(obj) = ctx.object(node) else {
        return Err(unsupported("a non-estimator value", path, None));
    };
    let o = Obj::new(ctx, obj, path.to_string());
    let class = obj.class.as_str();
    let builders: [Builder; 8] = [
        crate::forest::build,
        crate::boosting::build,
        |o| crate::hist::build(o, build),
        crate::linear::build,
        // Before `preprocess`, which takes the imputers fitted on numbers.
        crate::impute::build,
        crate::preprocess::build,
        crate::encoders::build,
        |o| crate::compose::build(o, build),
    ];
    for b in builders {
        match b(&o) {
            Ok(Some(est)) => return Ok(est),
            Ok(None) => {}
            Err(e) => return Err(not_fitted_or(e, &o)),
        }
    }
    Err(unsupported(class, path, None))
}

/// A supported estimator whose state lacks what its builder reads, and that has no fitted
/// attribute at all, was saved unfitted: say so instead of naming the first missing one.
fn not_fitted_or(err: InferError, o: &Obj<'_, '_>) -> InferError {
    let own = matches!(&err, InferError::Malformed { path, .. } if path == &o.path);
    if own && !o.has_fitted_attribute() {
        return InferError::NotFitted {
            class: o.class().to_string(),
            path: o.path.clone(),
        };
    }
    err
}
