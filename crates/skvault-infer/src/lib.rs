//! Native inference for scikit-learn models stored in `.skv` files, with no Python.
//!
//! [`Model::open`] reads the object tree written by `skvault.dump`, builds a native
//! estimator for every object of the model and validates all of its fitted state (array
//! shapes and dtypes, child and feature indices) before returning: an unsupported class
//! anywhere in the model, or a malformed state, is an error at open time, never in the
//! middle of a prediction. The methods then take a row-major f64 matrix.
//!
//! Outputs match scikit-learn: see `docs/NATIVE.md` for the estimators, the parity
//! guarantees (bit-identical where scikit-learn's arithmetic order allows) and the layout.
#![forbid(unsafe_code)]

mod across;
mod boosting;
mod budget;
mod classes;
mod compose;
mod encoders;
mod error;
mod estimator;
mod forest;
pub mod fuzzing;
pub mod guard;
mod hist;
mod impute;
mod linear;
mod matrix;
mod numeric;
mod pair;
mod preprocess;
mod quant;
mod registry;
mod slices;
mod state;
mod tree;
pub mod validation;
mod view;

use std::path::Path;

use skvault_format::{Node, SkvFile};
use skvault_frame::{Frame, FrameError};

pub use budget::{MAX_DEPTH, WORK_FACTOR, WORK_SLACK};
pub use classes::{format_float, Classes, Labels};
pub use error::{InferError, Result};
pub use estimator::{Method, Output};
pub use matrix::{Matrix, MatrixView, Prediction};
pub use slices::SLICE_ROWS;
pub use tree::floor_f32;
pub use view::{
    BlockView, ColumnOpView, HistNodeView, HistTreeView, LinearLink, NodeView, Norm, PolyColumn,
    TextKey, TextLookup, TreeView, View,
};

use estimator::Boxed;
use state::{seq_items, Ctx};

/// A model ready to predict.
#[derive(Debug)]
pub struct Model {
    est: Boxed,
    feature_names: Option<Vec<String>>,
}

impl Model {
    /// Opens a `.skv` file and builds the model (array digests are checked).
    pub fn open(path: &Path) -> Result<Model> {
        let file = SkvFile::open(path)?;
        Model::from_file(&file)
    }

    /// Builds the model from an open file. Nothing of the file is kept afterwards.
    pub fn from_file(file: &SkvFile) -> Result<Model> {
        let ctx = Ctx::new(file);
        let root = ctx.root();
        let est = registry::build(&ctx, root, "/root")?;
        let feature_names = feature_names_of(&ctx, root, 0);
        // Work noted where no error could be raised (list and state scans) counts too.
        ctx.budget().charge(0, "/root")?;
        Ok(Model { est, feature_names })
    }

    /// Builds now what predictions on a few rows would otherwise build on their first call
    /// (a forest's one-row layout): `skvault serve` calls it when it loads a model, so that
    /// its first request is as fast as the next. Batch scoring never needs it. Whether the
    /// model has such a layout.
    pub fn prepare_few_rows(&self) -> bool {
        self.est.prepare_few_rows()
    }

    /// The qualified class name of the model's root estimator.
    pub fn class(&self) -> &str {
        self.est.class()
    }

    /// The number of input columns.
    pub fn n_features(&self) -> usize {
        self.est.n_features()
    }

    /// `feature_names_in_` of the root estimator, when it was fitted on named columns.
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// The labels of a classifier, which [`Prediction::Labels`] indexes.
    pub fn classes(&self) -> Option<&Classes> {
        self.est.classes()
    }

    /// The methods this model has.
    pub fn methods(&self) -> &'static [Method] {
        self.est.methods()
    }

    pub fn has(&self, method: Method) -> bool {
        self.methods().contains(&method)
    }

    pub fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        self.est.predict(x)
    }

    pub fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.est.predict_proba(x)
    }

    pub fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.est.decision_function(x)
    }

    pub fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.est.transform(x)
    }

    pub fn score_samples(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.est.score_samples(x)
    }

    /// Runs `method` on a numeric matrix.
    pub fn call(&self, method: Method, x: &MatrixView<'_>) -> Result<Output> {
        estimator::call(self.est.as_ref(), method, x)
    }

    /// Runs `method` on a frame: text and category columns reach the encoders fitted on
    /// them, every other column is taken as numbers. A model fitted on named columns takes
    /// them by name (the frame's order and extra columns do not matter; every missing one
    /// is named); one fitted without names takes the frame's columns in order. Frames of
    /// more than `2 * SLICE_ROWS` rows are scored in parallel slices of rows (see
    /// `slices`): the same values, and the same error, as scoring them whole.
    pub fn call_frame(&self, method: Method, frame: &Frame) -> Result<Output> {
        let cols: Vec<usize> = match &self.feature_names {
            Some(names) => {
                let found: Vec<Option<usize>> = names.iter().map(|n| frame.position(n)).collect();
                let missing: Vec<String> = names
                    .iter()
                    .zip(&found)
                    .filter(|(_, p)| p.is_none())
                    .map(|(n, _)| n.clone())
                    .collect();
                if !missing.is_empty() {
                    return Err(FrameError::MissingColumns(missing).into());
                }
                found.into_iter().flatten().collect()
            }
            None => (0..frame.n_cols()).collect(),
        };
        if let Some(ranges) = slices::slices(frame.n_rows()) {
            let sliced = slices::score(&ranges, |rows| {
                self.est.call_frame(method, &frame.slice_rows(rows), &cols)
            });
            if let Some(out) = sliced {
                return Ok(out);
            }
        }
        self.est.call_frame(method, frame, &cols)
    }

    /// A read-only view of the fitted parameters, for exporters (see [`View`]).
    pub fn view(&self) -> View<'_> {
        self.est.view()
    }
}

/// `feature_names_in_` of an estimator; for a Pipeline, that of its first step (what
/// scikit-learn's `Pipeline.feature_names_in_` property returns).
fn feature_names_of<'f>(ctx: &Ctx<'f>, node: &'f Node, depth: usize) -> Option<Vec<String>> {
    let obj = ctx.object(node)?;
    let o = state::Obj::new(ctx, obj, "/root".into());
    if let Some(names) = o.attr("feature_names_in_") {
        return seq_items(ctx, names)?
            .into_iter()
            .map(|n| match n {
                Node::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
    }
    if o.class() != "sklearn.pipeline.Pipeline" || depth > 32 {
        return None;
    }
    let first = seq_items(ctx, o.attr("steps")?)?.into_iter().next()?;
    let step = seq_items(ctx, first)?.into_iter().nth(1)?;
    feature_names_of(ctx, step, depth + 1)
}
