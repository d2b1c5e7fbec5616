//! State checks for the trusted classes whose compiled code reads their state unchecked.
//!
//! `skvault.load` hands file data to scikit-learn, numpy and scipy classes. Most of them
//! check what they receive, or only use it through numpy operations that check shapes.
//! Some do not: scikit-learn's Cython `Tree` follows child indices and indexes by feature
//! without bounds checks, scipy's sparse kernels trust `indptr`/`indices`, the neighbors
//! trees trust `idx_array` and `node_data`, HistGradientBoosting's predictor trusts its node
//! array and bitset indices, libsvm trusts the support counts. A hostile file could make
//! them read or write out of bounds (SECURITY.md, "Trusted classes with compiled code").
//!
//! [`check`] runs before any Python object is built and refuses a file in which one of
//! these classes would receive state its compiled code could not handle. Every class with
//! compiled code on the default allow-list is listed in [`GUARDED`] (and a test checks that
//! no other one is trusted by default). The checks share their readers with native
//! inference ([`crate::state`]), so both read the same state the same way.

mod hist;
mod kmeans;
mod neighbors;
mod scalar;
mod sparse;
mod svm;
pub(crate) mod tree;

use std::collections::HashMap;

use skvault_format::node::walk;
use skvault_format::{Node, Object, SkvFile};

use crate::error::Result;
use crate::state::{Ctx, Obj};

/// How one class is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `sklearn.tree._tree.Tree`: node structure, features, values (see `tree.rs`).
    Tree,
    /// An estimator holding `tree_` or trees in `estimators_`: the trees' feature counts
    /// agree with the features its Python code validates.
    TreeHolder,
    /// scipy sparse matrices and arrays: `check_format(full_check=True)`, done first.
    Sparse,
    /// HistGradientBoosting estimators: predictor nodes, bitsets, known categories.
    Hist,
    /// A predictor or bin mapper of HistGradientBoosting: checked by its estimator, and
    /// refused anywhere else.
    HistPart,
    /// A Cython class built from numbers alone (loss objects): constructor arguments must
    /// be numbers and there is no other state.
    Scalars,
    /// `KDTree`/`BallTree` (and their `BinaryTree` bases): index arrays, node records and
    /// bounds, and the metric they hold, sized for the tree's data (see `neighbors.rs`).
    NeighborsTree,
    /// `DistanceMetric` classes: `vec`/`mat` consistent; checked by their tree when they
    /// have one, alone otherwise. The abstract bases are refused.
    DistanceMetric,
    /// libsvm models: support counts, coefficients, intercepts and Platt parameters sized
    /// as the C glue reads them (see `svm.rs`). The abstract bases are refused.
    LibSvm,
    /// k-means estimators: centers as wide as the features `X` is validated for.
    KMeans,
}

/// The classes with compiled code on the default allow-list, and how each is checked.
pub const GUARDED: &[(&str, Check)] = &[
    ("sklearn.tree._tree.Tree", Check::Tree),
    ("scipy.sparse._csr.csr_matrix", Check::Sparse),
    ("scipy.sparse._csr.csr_array", Check::Sparse),
    ("scipy.sparse._csc.csc_matrix", Check::Sparse),
    ("scipy.sparse._csc.csc_array", Check::Sparse),
    ("scipy.sparse._coo.coo_matrix", Check::Sparse),
    ("scipy.sparse._coo.coo_array", Check::Sparse),
    (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        Check::Hist,
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        Check::Hist,
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        Check::HistPart,
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        Check::HistPart,
    ),
    ("sklearn._loss._loss.CyAbsoluteError", Check::Scalars),
    ("sklearn._loss._loss.CyExponentialLoss", Check::Scalars),
    ("sklearn._loss._loss.CyHalfBinomialLoss", Check::Scalars),
    ("sklearn._loss._loss.CyHalfGammaLoss", Check::Scalars),
    ("sklearn._loss._loss.CyHalfMultinomialLoss", Check::Scalars),
    ("sklearn._loss._loss.CyHalfPoissonLoss", Check::Scalars),
    ("sklearn._loss._loss.CyHalfSquaredError", Check::Scalars),
    ("sklearn._loss._loss.CyHalfTweedieLoss", Check::Scalars),
    (
        "sklearn._loss._loss.CyHalfTweedieLossIdentity",
        Check::Scalars,
    ),
    ("sklearn._loss._loss.CyHuberLoss", Check::Scalars),
    ("sklearn._loss._loss.CyLossFunction", Check::Scalars),
    ("sklearn._loss._loss.CyPinballLoss", Check::Scalars),
    (
        "sklearn.linear_model._sgd_fast.Classification",
        Check::Scalars,
    ),
    (
        "sklearn.linear_model._sgd_fast.EpsilonInsensitive",
        Check::Scalars,
    ),
    ("sklearn.linear_model._sgd_fast.Hinge", Check::Scalars),
    (
        "sklearn.linear_model._sgd_fast.ModifiedHuber",
        Check::Scalars,
    ),
    ("sklearn.linear_model._sgd_fast.Regression", Check::Scalars),
    (
        "sklearn.linear_model._sgd_fast.SquaredEpsilonInsensitive",
        Check::Scalars,
    ),
    (
        "sklearn.linear_model._sgd_fast.SquaredHinge",
        Check::Scalars,
    ),
    ("sklearn.neighbors._kd_tree.KDTree", Check::NeighborsTree),
    ("sklearn.neighbors._kd_tree.KDTree64", Check::NeighborsTree),
    ("sklearn.neighbors._kd_tree.KDTree32", Check::NeighborsTree),
    (
        "sklearn.neighbors._kd_tree.BinaryTree64",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._kd_tree.BinaryTree32",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._ball_tree.BallTree",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._ball_tree.BallTree64",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._ball_tree.BallTree32",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._ball_tree.BinaryTree64",
        Check::NeighborsTree,
    ),
    (
        "sklearn.neighbors._ball_tree.BinaryTree32",
        Check::NeighborsTree,
    ),
    (
        "sklearn.metrics._dist_metrics.DistanceMetric",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.DistanceMetric64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.DistanceMetric32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.BrayCurtisDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.BrayCurtisDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.CanberraDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.CanberraDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.ChebyshevDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.DiceDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.DiceDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.EuclideanDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.HammingDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.HammingDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.HaversineDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.HaversineDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.JaccardDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.JaccardDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.KulsinskiDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.KulsinskiDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MahalanobisDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MahalanobisDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.ManhattanDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MatchingDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MatchingDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.MinkowskiDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.PyFuncDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.RogersTanimotoDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.RogersTanimotoDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.RussellRaoDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.RussellRaoDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SEuclideanDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SEuclideanDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SokalMichenerDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SokalMichenerDistance32",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SokalSneathDistance64",
        Check::DistanceMetric,
    ),
    (
        "sklearn.metrics._dist_metrics.SokalSneathDistance32",
        Check::DistanceMetric,
    ),
    ("sklearn.svm._base.BaseLibSVM", Check::LibSvm),
    ("sklearn.svm._base.BaseSVC", Check::LibSvm),
    ("sklearn.svm._classes.SVC", Check::LibSvm),
    ("sklearn.svm._classes.NuSVC", Check::LibSvm),
    ("sklearn.svm._classes.SVR", Check::LibSvm),
    ("sklearn.svm._classes.NuSVR", Check::LibSvm),
    ("sklearn.svm._classes.OneClassSVM", Check::LibSvm),
    ("sklearn.cluster._kmeans.KMeans", Check::KMeans),
    ("sklearn.cluster._kmeans.MiniBatchKMeans", Check::KMeans),
    (
        "sklearn.cluster._bisect_k_means.BisectingKMeans",
        Check::KMeans,
    ),
];

/// How `class` is checked, if it is one of the guarded classes or a tree holder.
pub fn check_of(class: &str) -> Option<Check> {
    GUARDED
        .iter()
        .find(|(name, _)| *name == class)
        .map(|(_, c)| *c)
        .or_else(|| tree::is_holder(class).then_some(Check::TreeHolder))
}

/// Array bytes that a loader holds and checks against their digests itself: arrays it has
/// read into memory it holds (a load's destination buffers), or arrays of a mapped file
/// that it views in place and hashes before handing them to any class (see
/// `LoadPlan::verify_views`). The checks read them there instead of reading and hashing
/// them from the file a second time. What the checks then accept is exactly what the
/// loader hands to the classes, and the loader hands out no array whose digest it has not
/// checked.
pub trait Preread {
    /// Whether this source holds array `index` (without waiting for it).
    fn holds(&self, index: usize) -> bool;
    /// Array `index`'s raw bytes once they are there (this may wait): digest checked, or,
    /// for an array viewed in place, to be checked by the loader before any class receives
    /// it. `None` when this source does not hold it, an error when reading or checking it
    /// failed.
    fn bytes(&self, index: usize) -> Option<skvault_format::Result<&[u8]>>;
}

/// The node arrays of the file's trees (model and validation tree) that the checks read
/// whole: most of a forest's file.
pub fn tree_node_arrays(file: &SkvFile) -> Vec<usize> {
    let mut nodes = Vec::new();
    for tree in file.manifest().trees() {
        walk(tree, &mut |n| {
            if let Node::Object(o) = n {
                if let Some(index) = tree::nodes_array(o) {
                    nodes.push(index);
                }
            }
        });
    }
    nodes
}

/// Checks the state of every guarded object of the file (its model and its validation
/// tree) before anything is built from it. The error names the object's path.
pub fn check(file: &SkvFile) -> Result<()> {
    check_with(file, None)
}

/// [`check`], reading the arrays that `preread` holds from there.
pub fn check_with(file: &SkvFile, preread: Option<&dyn Preread>) -> Result<()> {
    check_reporting(file, preread, None)
}

/// Where the checks report each guarded object as its own state passes, for a loader that
/// builds objects while the checks run on another thread: it creates a guarded object only
/// once the object is reported here (see [`check_reporting`]).
pub trait Progress {
    /// `obj`'s own state passed its checks (a tree: its structure, with the feature count of
    /// the first estimator found holding it). The checks of other objects may still fail,
    /// and so may another holder's check of this one: a loader returns nothing before
    /// [`check_reporting`] returned `Ok`.
    fn passed(&self, obj: &Object);
}

/// [`check_with`], reporting each guarded object to `progress` as soon as its own checks
/// passed, in the order the checks reach them: estimators holding trees (and their trees,
/// one by one), HistGradientBoosting and neighbors trees first, then the other objects in
/// document order. An object is reported at most once, and never after an error.
pub fn check_reporting(
    file: &SkvFile,
    preread: Option<&dyn Preread>,
    progress: Option<&dyn Progress>,
) -> Result<()> {
    let mut ctx = Ctx::with_validation(file);
    if let Some(p) = preread {
        ctx = ctx.with_preread(p);
    }
    let manifest = file.manifest();
    // Each guarded object with the tree it is in and its rank among the objects of its
    // class there: its path (`/root/DecisionTreeClassifier[3]`) is written only for the
    // objects checked, when they are (before the first report, a forest's thousand paths
    // held the builder up).
    let mut objects: Vec<(&Object, &str, usize, Check)> = Vec::new();
    let mut seen: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    // The node arrays of trees, which the tree checks read whole.
    let mut nodes: Vec<usize> = Vec::new();
    let mut trees = vec![("root", &manifest.root)];
    trees.extend(manifest.validation.as_ref().map(|v| ("validation", v)));
    for (name, tree) in trees {
        walk(tree, &mut |n| {
            if let Node::Object(o) = n {
                if let Some(index) = tree::nodes_array(o) {
                    nodes.push(index);
                }
                if let Some(check) = check_of(&o.class) {
                    let k = seen.entry(o.class.as_str()).or_default();
                    objects.push((&**o, name, *k, check));
                    *k += 1;
                }
            }
        });
    }
    ctx.verify_ahead(&nodes);
    // Holders first: they check the trees and parts they hold against their own feature
    // count. A part no holder checked is checked alone (trees, distance metrics) or refused
    // (HGB parts).
    let mut checked = Checked {
        progress,
        ..Checked::default()
    };
    let path = |obj: &Object, name: &str, k: usize| format!("/{name}/{}[{k}]", short(&obj.class));
    for &(obj, name, k, check) in &objects {
        let o = || Obj::new(&ctx, obj, path(obj, name, k));
        match check {
            Check::TreeHolder => tree::check_holder(&o(), &mut checked)?,
            Check::Hist => hist::check(&o(), &mut checked)?,
            Check::NeighborsTree => neighbors::check_tree(&o(), &mut checked)?,
            _ => continue,
        }
        checked.report(obj);
    }
    for &(obj, name, k, check) in &objects {
        let o = || Obj::new(&ctx, obj, path(obj, name, k));
        match check {
            Check::Tree if !checked.contains(obj) => {
                tree::check_tree(&o(), None)?;
            }
            Check::Sparse => sparse::check(&o())?,
            Check::Scalars => scalar::check(&o())?,
            Check::DistanceMetric if !checked.contains(obj) => {
                neighbors::check_metric(&o(), None)?;
            }
            Check::LibSvm => svm::check(&o())?,
            Check::KMeans => kmeans::check(&o())?,
            Check::HistPart if !checked.contains(obj) => {
                return Err(crate::error::malformed(
                    &path(obj, name, k),
                    format!(
                        "{} is only loaded as part of a HistGradientBoosting estimator",
                        obj.class
                    ),
                ))
            }
            _ => continue,
        }
        checked.report(obj);
    }
    Ok(())
}

/// Objects already checked (by address: each object node is one object), with the feature
/// count they were found to have, and where to report the objects that passed.
#[derive(Default)]
pub(crate) struct Checked<'p> {
    found: HashMap<*const Object, usize>,
    reported: std::collections::HashSet<*const Object>,
    progress: Option<&'p dyn Progress>,
}

impl Checked<'_> {
    /// `obj` passed with `n_features` features (and is reported as passed).
    pub(crate) fn insert(&mut self, obj: &Object, n_features: usize) {
        self.found.insert(obj as *const Object, n_features);
        self.report(obj);
    }

    pub(crate) fn contains(&self, obj: &Object) -> bool {
        self.found.contains_key(&(obj as *const Object))
    }

    pub(crate) fn n_features(&self, obj: &Object) -> Option<usize> {
        self.found.get(&(obj as *const Object)).copied()
    }

    /// Tells the loader, once, that `obj`'s own checks passed.
    fn report(&mut self, obj: &Object) {
        if let Some(progress) = self.progress {
            if self.reported.insert(obj as *const Object) {
                progress.passed(obj);
            }
        }
    }
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}
