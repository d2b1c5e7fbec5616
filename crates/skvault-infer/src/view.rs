//! A read-only view of the fitted parameters of a built model, for exporters.
//!
//! The view exposes the validated, re-laid-out state that inference itself uses (tree
//! nodes with their float32 thresholds, linear coefficients, column operations), so an
//! exporter never re-parses the object tree and exports exactly what `predict` computes.
//! Estimators without a view yet are [`View::Opaque`], carrying their class name.

use crate::classes::Classes;

/// How a linear classifier turns scores into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearLink {
    /// No `predict_proba`.
    None,
    /// expit (binary) or softmax (multiclass): LogisticRegression.
    Logistic,
    /// expit then one-vs-rest normalisation: SGDClassifier(loss="log_loss").
    OvrLogistic,
    /// (clip(score, -1, 1) + 1) / 2 then one-vs-rest normalisation.
    ModifiedHuber,
}

/// One in-place column-wise operation of a scaler, applied in order.
#[derive(Debug, Clone, Copy)]
pub enum ColumnOpView<'a> {
    Sub(&'a [f64]),
    Div(&'a [f64]),
    Mul(&'a [f64]),
    Add(&'a [f64]),
    Clip(f64, f64),
}

/// Normalizer's row norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The sum of absolute values.
    L1,
    /// The square root of the sum of squares.
    L2,
    /// The largest absolute value.
    Max,
}

/// One column of PolynomialFeatures' full expansion, in scikit-learn's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolyColumn {
    /// The bias column (ones).
    One,
    /// Input column `j`.
    X(usize),
    /// `column[src] * x[feature]`; `src` always precedes this column.
    Prod(usize, usize),
}

/// One node of a tree, as inference walks it.
#[derive(Debug, Clone, Copy)]
pub enum NodeView<'a> {
    /// `float32(x[feature]) <= threshold` goes to `left`, else `right`; NaN goes left
    /// when `missing_left`, else right.
    Split {
        feature: usize,
        threshold: f32,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// The leaf's `width` values.
    Leaf(&'a [f64]),
}

/// A tree: nodes indexed from the root (0); children always follow their parent.
#[derive(Debug, Clone)]
pub struct TreeView<'a> {
    pub nodes: Vec<NodeView<'a>>,
}

/// One node of a HistGradientBoosting predictor.
#[derive(Debug, Clone)]
pub enum HistNodeView {
    /// `x[feature] <= threshold` (float64) goes left; NaN goes left when `missing_left`.
    Numeric {
        feature: usize,
        threshold: f64,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// A category in `left_categories` goes left; a category in `known_categories` but not
    /// in `left_categories` goes right; anything else (NaN, negative, unknown) goes left when
    /// `missing_left`. Categories are the input truncated to an integer, low 8 bits.
    Categorical {
        feature: usize,
        left_categories: Vec<u8>,
        known_categories: Vec<u8>,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

/// A HistGradientBoosting predictor: nodes from the root (0), children after their parent.
#[derive(Debug, Clone)]
pub struct HistTreeView {
    pub nodes: Vec<HistNodeView>,
}

/// A value of a text feature as exporters see it: text, or a missing value (`None`, NaN
/// or `pd.NA`, which a string tensor cannot tell apart).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TextKey<'a> {
    Text(&'a str),
    Missing,
    /// A number (a bool as 0 or 1) among the categories of an `object` feature: the 0/1
    /// columns a text imputer's `add_indicator` passes on, for instance.
    Number(f64),
}

/// One text feature of an encoder: the value `keys[i]` becomes `codes[i]`, anything else
/// `unknown`. For OneHotEncoder a code is the output column within the feature's `width`
/// columns (`-1`: all zeros); for OrdinalEncoder it is the output value (width 1).
#[derive(Debug, Clone)]
pub struct TextLookup<'a> {
    pub keys: Vec<TextKey<'a>>,
    pub codes: Vec<f64>,
    pub unknown: f64,
    pub width: usize,
}

/// One block of a ColumnTransformer or FeatureUnion.
#[derive(Debug, Clone)]
pub struct BlockView<'a> {
    /// The input columns the block sees (`None`: all of them).
    pub columns: Option<&'a [usize]>,
    /// The transformer (`None`: passthrough).
    pub est: Option<View<'a>>,
    /// FeatureUnion's `transformer_weights` entry.
    pub weight: Option<f64>,
}

/// The fitted parameters of an estimator.
#[derive(Debug, Clone)]
pub enum View<'a> {
    /// A decision tree (`average == false`, one tree) or a forest (leaf values summed in
    /// tree order, then divided by the number of trees). Classifiers have `classes` and
    /// leaves holding class probabilities; regressors have one value per output.
    Trees {
        class: &'a str,
        n_features: usize,
        trees: Vec<TreeView<'a>>,
        width: usize,
        average: bool,
        classes: Option<&'a Classes>,
        /// NaN is accepted in the input (else refused as scikit-learn does).
        allow_nan: bool,
    },
    /// `scores = X @ coef.T + intercept` (`k` rows of `n_features` coefficients).
    Linear {
        class: &'a str,
        n_features: usize,
        coef: &'a [f64],
        intercept: &'a [f64],
        k: usize,
        /// A regressor fitted on a 1-d target: predictions are 1-d.
        flat: bool,
        classes: Option<&'a Classes>,
        link: LinearLink,
    },
    /// HistGradientBoosting: `raw[:, j] = baseline[j] + sum of trees[i * k + j]` over the
    /// iterations `i`; classifiers then apply expit (k == 1) or softmax, regressors with
    /// `exp_link` apply exp. `preprocessor` (categorical columns given by name or dtype)
    /// transforms X first.
    HistGradientBoosting {
        class: &'a str,
        n_features: usize,
        preprocessor: Option<Box<View<'a>>>,
        trees: Vec<HistTreeView>,
        k: usize,
        baseline: &'a [f64],
        classes: Option<&'a Classes>,
        exp_link: bool,
    },
    /// GradientBoosting: `raw[:, j] = init[j] + sum of trees[i * k + j]` over the stages
    /// `i` (leaf values already scaled by the learning rate; X as float32, NaN refused).
    /// Classifiers: label `raw >= 0` and expit (k == 1), or argmax and softmax.
    GradientBoosting {
        class: &'a str,
        n_features: usize,
        trees: Vec<TreeView<'a>>,
        k: usize,
        init: &'a [f64],
        classes: Option<&'a Classes>,
    },
    /// ColumnTransformer / FeatureUnion: the blocks' outputs side by side.
    Stack {
        class: &'a str,
        n_features: usize,
        blocks: Vec<BlockView<'a>>,
    },
    /// OrdinalEncoder over numeric categories: column `j`'s value becomes its index in
    /// `categories[j]`; NaN (when a category) becomes `encoded_missing`; anything else
    /// `unknown_value` (`None`: scikit-learn raises).
    Ordinal {
        class: &'a str,
        n_features: usize,
        categories: &'a [Vec<f64>],
        unknown_value: Option<f64>,
        encoded_missing: f64,
    },
    /// OneHotEncoder over numeric categories: feature `j` becomes one column per category of
    /// `categories[j]` except `drop[j]`, 1.0 where the value equals the category (NaN
    /// matches a NaN category), else 0.0; unknown values give all zeros (or an error).
    OneHot {
        class: &'a str,
        n_features: usize,
        categories: &'a [Vec<f64>],
        drop: &'a [Option<usize>],
        /// `handle_unknown="error"`: scikit-learn raises on an unknown category.
        error_on_unknown: bool,
    },
    /// OneHotEncoder (`one_hot`) or OrdinalEncoder fitted on text: each feature looked up
    /// in its table (infrequent grouping, `drop`, `handle_unknown`, `unknown_value` and
    /// `encoded_missing_value` already applied), the features' outputs side by side.
    TextEncoder {
        class: &'a str,
        n_features: usize,
        features: Vec<TextLookup<'a>>,
        one_hot: bool,
    },
    /// SimpleImputer fitted on text: output column `i` is input column `columns[i]` with
    /// the values equal to `missing` replaced by `fills[i]`. The output is text.
    TextImputer {
        class: &'a str,
        n_features: usize,
        missing: TextKey<'a>,
        columns: &'a [usize],
        fills: Vec<TextKey<'a>>,
        /// `add_indicator`: after the imputed columns, one 0/1 column per feature listed,
        /// 1.0 where the input equals `missing`.
        indicator: Option<&'a [usize]>,
    },
    /// Normalizer: each row divided by its norm (a zero norm counts as 1).
    Normalizer {
        class: &'a str,
        n_features: usize,
        norm: Norm,
    },
    /// SimpleImputer: output column `i` is input column `columns[i]`, with missing entries
    /// (NaN when `missing` is `None`, else equal to it) replaced by `fills[i]`.
    Imputer {
        class: &'a str,
        n_features: usize,
        missing: Option<f64>,
        columns: &'a [usize],
        fills: &'a [f64],
        /// `add_indicator`: after the imputed columns, one 0/1 column per feature listed,
        /// 1.0 where the input is missing.
        indicator: Option<&'a [usize]>,
    },
    /// PCA: `(X @ components.T - offset) / scale`, `components` being `k` rows of
    /// `n_features` and `offset = mean_ @ components.T`; `scale` only when whitening.
    Pca {
        class: &'a str,
        n_features: usize,
        components: &'a [f64],
        k: usize,
        offset: &'a [f64],
        scale: Option<&'a [f64]>,
    },
    /// PolynomialFeatures: the `columns` of the full expansion built in order, then the
    /// columns `keep` output.
    Polynomial {
        class: &'a str,
        n_features: usize,
        columns: &'a [PolyColumn],
        keep: &'a [usize],
    },
    /// IsolationForest: `depth = sum over trees of the leaf value` (path length to the
    /// leaf plus the leaf's average path length, minus one; X as float32),
    /// `score_samples = -(2 ** -(depth / denominator))` (`-0.5` when `denominator` is 0),
    /// `decision_function = score_samples - offset`, `predict` = -1 where it is `< 0`, else 1.
    IsolationForest {
        class: &'a str,
        n_features: usize,
        trees: Vec<TreeView<'a>>,
        denominator: f64,
        offset: f64,
    },
    /// The identity (FunctionTransformer without a function, passthrough members).
    Identity { class: &'a str, n_features: usize },
    /// A scaler: column-wise operations in order.
    ColumnOps {
        class: &'a str,
        n_features: usize,
        ops: Vec<ColumnOpView<'a>>,
    },
    /// Transforms in order, then the final estimator (`None`: "passthrough").
    Pipeline {
        n_features: usize,
        transforms: Vec<View<'a>>,
        last: Option<Box<View<'a>>>,
    },
    /// An estimator natively supported for inference but not (yet) described by a view.
    Opaque { class: &'a str },
    /// A supported estimator in a configuration exporters cannot describe yet, and why
    /// (TargetEncoder, MissingIndicator, infrequent numeric categories, a text imputer
    /// with a number as marker or fill).
    Unexportable {
        class: &'a str,
        reason: &'static str,
    },
}

impl View<'_> {
    /// The class name of the estimator (`sklearn.pipeline.Pipeline` for pipelines).
    pub fn class(&self) -> &str {
        match self {
            View::Trees { class, .. }
            | View::HistGradientBoosting { class, .. }
            | View::GradientBoosting { class, .. }
            | View::Stack { class, .. }
            | View::Identity { class, .. }
            | View::Ordinal { class, .. }
            | View::Linear { class, .. }
            | View::ColumnOps { class, .. }
            | View::OneHot { class, .. }
            | View::TextEncoder { class, .. }
            | View::TextImputer { class, .. }
            | View::Normalizer { class, .. }
            | View::Imputer { class, .. }
            | View::Pca { class, .. }
            | View::Polynomial { class, .. }
            | View::IsolationForest { class, .. }
            | View::Opaque { class }
            | View::Unexportable { class, .. } => class,
            View::Pipeline { .. } => "sklearn.pipeline.Pipeline",
        }
    }
}
