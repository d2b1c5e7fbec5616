//! GradientBoosting{Classifier,Regressor} and IsolationForest: sums of tree outputs.
//!
//! Gradient boosting starts from the init estimator's raw prediction and adds
//! `learning_rate * value[leaf]` stage by stage, as `predict_stages` does (X as float32,
//! `x <= threshold`, NaN always to the right). The isolation forest adds, tree by tree,
//! `(path length to the leaf + average path length of the leaf) - 1`, then scores
//! `2 ** -(depth / (n_trees * c(max_samples)))`. Leaf terms are computed once at open time
//! with the same operations, so both sums are bit-identical to scikit-learn's.

use skvault_format::{threads, Node};

use crate::classes::{read_classes, Classes, Labels};
use crate::error::{malformed, unsupported, Result};
use crate::estimator::{not_available, Boxed, Estimator, Method, PREDICT_ONLY, SCORED_CLASSIFIER};
use crate::forest::{argmax_rows, run_blocks, to_f32};
use crate::matrix::{check_input, Finite, Matrix, MatrixView, Prediction};
use crate::numeric::{expit, logit, np_sum, softmax_row_with, RowSum};
use crate::state::{seq_items, Obj};
use crate::tree::{LeafValues, Rows, Tree};

const GB_CLASSIFIER: &str = "sklearn.ensemble._gb.GradientBoostingClassifier";
const GB_REGRESSOR: &str = "sklearn.ensemble._gb.GradientBoostingRegressor";
const ISOLATION_FOREST: &str = "sklearn.ensemble._iforest.IsolationForest";

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        GB_CLASSIFIER => Box::new(gradient_boosting(o, true)?),
        GB_REGRESSOR => Box::new(gradient_boosting(o, false)?),
        ISOLATION_FOREST => Box::new(isolation_forest(o)?),
        _ => return Ok(None),
    };
    Ok(Some(est))
}

#[derive(Debug)]
struct GradientBoosting {
    class: String,
    n_features: usize,
    /// Trees in stage order, `k` per stage (stage-major).
    trees: Vec<Tree>,
    k: usize,
    /// The init estimator's raw prediction (the same for every row).
    init: Vec<f64>,
    classes: Option<Classes>,
}

/// `_init_raw_predictions` of a prior (classifier) or constant (regressor) init estimator.
fn init_raw(o: &Obj<'_, '_>, classifier: bool, k: usize) -> Result<Vec<f64>> {
    let node = o.req("init_")?;
    if matches!(node, Node::Str(s) if s == "zero") {
        return Ok(vec![0.0; k]);
    }
    let init = o.object("init_")?;
    let init = Obj::new(o.ctx, init, o.sub("init_"));
    let detail = || {
        unsupported(
            init.class(),
            &init.path,
            Some("as the init estimator".into()),
        )
    };
    if classifier {
        if init.class() != "sklearn.dummy.DummyClassifier" || init.str("_strategy")? != "prior" {
            return Err(detail());
        }
        let prior = init.f64_array("class_prior_")?.data;
        let eps = f64::EPSILON;
        // np.clip(p, eps, 1 - eps)
        let p: Vec<f64> = prior.iter().map(|p| p.clamp(eps, 1.0 - eps)).collect();
        if k == 1 {
            let p1 = *p
                .get(1)
                .ok_or_else(|| malformed(&init.path, "class_prior_"))?;
            return Ok(vec![logit(p1)]);
        }
        if p.len() != k {
            return Err(malformed(&init.sub("class_prior_"), "one prior per class"));
        }
        // Multinomial link: log(p / gmean(p)), gmean = exp(mean(log(p))).
        let logs: Vec<f64> = p.iter().map(|v| v.ln()).collect();
        let gm = (np_sum(&logs) / k as f64).exp();
        return Ok(p.iter().map(|v| (v / gm).ln()).collect());
    }
    if init.class() != "sklearn.dummy.DummyRegressor" {
        return Err(detail());
    }
    let c = init.f64_array("constant_")?;
    if c.data.len() != 1 {
        return Err(unsupported(
            init.class(),
            &init.path,
            Some("multi-output".into()),
        ));
    }
    Ok(c.data)
}

/// `n_features_in_`, which must be positive.
fn n_features(o: &Obj<'_, '_>) -> Result<usize> {
    match o.usize("n_features_in_")? {
        0 => Err(malformed(&o.path, "n_features_in_ is 0")),
        n => Ok(n),
    }
}

fn gradient_boosting(o: &Obj<'_, '_>, classifier: bool) -> Result<GradientBoosting> {
    let n_features = n_features(o)?;
    let loss = o.str("loss")?;
    let supported = if classifier {
        loss == "log_loss"
    } else {
        matches!(
            loss,
            "squared_error" | "absolute_error" | "huber" | "quantile"
        )
    };
    if !supported {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some(format!("loss={loss:?}")),
        ));
    }
    let classes = if classifier {
        Some(read_classes(o.ctx, o.req("classes_")?, &o.sub("classes_"))?)
    } else {
        None
    };
    let k = match &classes {
        Some(c) if c.len() == 2 => 1,
        Some(c) if c.len() > 2 => c.len(),
        Some(_) => return Err(malformed(&o.sub("classes_"), "fewer than 2 classes")),
        None => 1,
    };
    let rate = o.float("learning_rate")?;
    let path = o.sub("estimators_");
    let (shape, items) = match o.req("estimators_")? {
        Node::ObjArray { shape, items } => (shape, items),
        _ => return Err(malformed(&path, "expected an object array of trees")),
    };
    if shape.len() != 2 || shape[1] != k as u64 || items.is_empty() {
        return Err(malformed(
            &path,
            format!("shape {shape:?}, expected (n_stages, {k})"),
        ));
    }
    let mut trees = Vec::with_capacity(items.len());
    for (i, node) in items.iter().enumerate() {
        let p = format!("{path}/{i}");
        let obj = o
            .ctx
            .object(node)
            .ok_or_else(|| malformed(&p, "expected a tree"))?;
        let t = Obj::new(o.ctx, obj, p.clone());
        if t.class() != "sklearn.tree._classes.DecisionTreeRegressor" {
            return Err(unsupported(
                t.class(),
                &p,
                Some("in gradient boosting".into()),
            ));
        }
        let mut tree = Tree::with_leaf_values(&t, n_features, LeafValues::Scaled(rate))?;
        tree.ignore_missing();
        trees.push(tree);
    }
    Ok(GradientBoosting {
        class: o.class().to_string(),
        n_features,
        init: init_raw(o, classifier, k)?,
        trees,
        k,
        classes,
    })
}

impl GradientBoosting {
    fn raw(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(&self.class, x, self.n_features, Finite::Any)?;
        // float32; scikit-learn refuses NaN and infinity here.
        let x32 = to_f32(&self.class, x, Finite::All)?;
        let (nf, k) = (self.n_features, self.k);
        let mut out = Matrix::zeros(x.n_rows(), k);
        for row in out.data.chunks_exact_mut(k) {
            row.copy_from_slice(&self.init);
        }
        run_blocks(&x32, nf, &mut out.data, k, self.trees.len(), |xb, ob| {
            let rows = Rows::new(xb, ob.len() / k, nf, |v| v);
            let mut leaf = vec![0u32; rows.padded_rows()];
            for stage in self.trees.chunks_exact(k) {
                for (j, tree) in stage.iter().enumerate() {
                    tree.leaves(&rows, &mut leaf);
                    for (l, acc) in leaf.iter().zip(ob.chunks_exact_mut(k)) {
                        acc[j] += tree.values(*l)[0];
                    }
                }
            }
        });
        Ok(out)
    }
}

impl Estimator for GradientBoosting {
    fn class(&self) -> &str {
        &self.class
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::GradientBoosting {
            class: &self.class,
            n_features: self.n_features,
            trees: self.trees.iter().map(Tree::view).collect(),
            k: self.k,
            init: &self.init,
            classes: self.classes.as_ref(),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        if self.classes.is_some() {
            SCORED_CLASSIFIER
        } else {
            PREDICT_ONLY
        }
    }
    fn classes(&self) -> Option<&Classes> {
        self.classes.as_ref()
    }
    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        let mut raw = self.raw(x)?;
        if self.classes.is_none() {
            raw.flat = true;
            return Ok(Prediction::Values(raw));
        }
        if self.k == 1 {
            // GradientBoostingClassifier uses ">= 0" (HistGradientBoosting uses "> 0").
            return Ok(Prediction::Labels(
                raw.data.iter().map(|v| usize::from(*v >= 0.0)).collect(),
            ));
        }
        Ok(Prediction::Labels(argmax_rows(&raw)))
    }
    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.classes.is_none() {
            return Err(not_available(&self.class, Method::DecisionFunction));
        }
        let mut raw = self.raw(x)?;
        raw.flat = self.k == 1;
        Ok(raw)
    }
    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.classes.is_none() {
            return Err(not_available(&self.class, Method::PredictProba));
        }
        // raw predictions are C-ordered in GradientBoosting.
        Ok(proba_from_raw(self.raw(x)?, RowSum::Pairwise))
    }
}

/// HalfBinomialLoss / HalfMultinomialLoss `predict_proba`: [1 - expit, expit] or softmax,
/// whose row sums depend on the memory order of the raw predictions (`order`).
/// Each row on its own: large inputs spread the rows over rayon's threads (an `exp` per
/// value is a tenth of a fast model's whole prediction time), with the same result.
pub(crate) fn proba_from_raw(mut raw: Matrix, order: RowSum) -> Matrix {
    use rayon::prelude::*;
    const PARALLEL_ROWS: usize = 4096;
    let parallel = raw.n_rows >= PARALLEL_ROWS;
    if raw.n_cols == 1 {
        let mut out = vec![0.0; 2 * raw.n_rows];
        let row = |(o, v): (&mut [f64], &f64)| {
            let p = expit(*v);
            o[0] = 1.0 - p;
            o[1] = p;
        };
        if parallel {
            threads::install(|| {
                out.par_chunks_exact_mut(2)
                    .zip(raw.data.par_iter())
                    .for_each(row)
            });
        } else {
            out.chunks_exact_mut(2).zip(raw.data.iter()).for_each(row);
        }
        return Matrix::from_vec(out, raw.n_rows, 2);
    }
    let k = raw.n_cols.max(1);
    if parallel {
        threads::install(|| {
            raw.data
                .par_chunks_exact_mut(k)
                .for_each(|r| softmax_row_with(r, order))
        });
    } else {
        raw.data
            .chunks_exact_mut(k)
            .for_each(|r| softmax_row_with(r, order));
    }
    raw
}

#[derive(Debug)]
struct IsolationForest {
    n_features: usize,
    /// Leaf values: `(decision path length + average path length) - 1`.
    trees: Vec<Tree>,
    denominator: f64,
    offset: f64,
    labels: Classes,
}

/// `_average_path_length` of one sample count.
fn average_path_length(n: f64) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    if n <= 1.0 {
        0.0
    } else if n == 2.0 {
        1.0
    } else {
        2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
    }
}

fn isolation_forest(o: &Obj<'_, '_>) -> Result<IsolationForest> {
    let n_features = n_features(o)?;
    let members = o.seq("estimators_")?;
    let features = o.seq("estimators_features_")?;
    let dpl = seq_items(o.ctx, o.req("_decision_path_lengths")?)
        .ok_or_else(|| malformed(&o.sub("_decision_path_lengths"), "expected a sequence"))?;
    let apl = seq_items(o.ctx, o.req("_average_path_length_per_tree")?).ok_or_else(|| {
        malformed(
            &o.sub("_average_path_length_per_tree"),
            "expected a sequence",
        )
    })?;
    let n = members.len();
    if n == 0 || features.len() != n || dpl.len() != n || apl.len() != n {
        return Err(malformed(
            &o.path,
            "one feature list and path-length array per tree",
        ));
    }
    let subsample = o.usize("_max_features")? != n_features;
    let mut trees = Vec::with_capacity(n);
    for i in 0..n {
        let p = format!("{}/{i}", o.sub("estimators_"));
        let obj = o
            .ctx
            .object(members[i])
            .ok_or_else(|| malformed(&p, "expected a tree"))?;
        let t = Obj::new(o.ctx, obj, p.clone());
        if t.class() != "sklearn.tree._classes.ExtraTreeRegressor" {
            return Err(unsupported(
                t.class(),
                &p,
                Some("in an isolation forest".into()),
            ));
        }
        let (_, dpl_i) = o
            .ctx
            .i64_array(dpl[i], &format!("{}/{i}", o.sub("_decision_path_lengths")))?;
        let apl_i = o
            .ctx
            .f64_array(
                apl[i],
                &format!("{}/{i}", o.sub("_average_path_length_per_tree")),
            )?
            .data;
        let leaf = |node: usize| Some((*dpl_i.get(node)? as f64 + *apl_i.get(node)?) - 1.0);
        let (_, feats) = o.ctx.i64_array(
            features[i],
            &format!("{}/{i}", o.sub("estimators_features_")),
        )?;
        let feats: Vec<usize> = feats
            .into_iter()
            .map(|f| usize::try_from(f).ok().filter(|f| *f < n_features))
            .collect::<Option<_>>()
            .ok_or_else(|| malformed(&p, "feature index out of range"))?;
        let tree_features = if subsample { feats.len() } else { n_features };
        let mut tree = Tree::with_leaf_values(&t, tree_features, LeafValues::PerNode(&leaf))?;
        if subsample {
            tree.remap_features(&feats)
                .ok_or_else(|| malformed(&p, "feature index out of range"))?;
        }
        trees.push(tree);
    }
    let max_samples = o.usize("_max_samples")? as f64;
    Ok(IsolationForest {
        n_features,
        trees,
        denominator: n as f64 * average_path_length(max_samples),
        offset: o.float("offset_")?,
        labels: Classes {
            labels: Labels::Int(vec![-1, 1]),
            dtype: "<i8".into(),
        },
    })
}

impl IsolationForest {
    /// `score_samples`: the opposite of the anomaly score.
    fn scores(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(ISOLATION_FOREST, x, self.n_features, Finite::Any)?;
        let x32 = to_f32(ISOLATION_FOREST, x, Finite::Any)?;
        let nf = self.n_features;
        let mut depths = vec![0.0; x.n_rows()];
        run_blocks(&x32, nf, &mut depths, 1, self.trees.len(), |xb, ob| {
            let rows = Rows::new(xb, ob.len(), nf, |v| v);
            let mut leaf = vec![0u32; rows.padded_rows()];
            for tree in &self.trees {
                tree.leaves(&rows, &mut leaf);
                for (l, d) in leaf.iter().zip(ob.iter_mut()) {
                    *d += tree.values(*l)[0];
                }
            }
        });
        let scores = depths
            .into_iter()
            .map(|d| {
                let q = if self.denominator != 0.0 {
                    d / self.denominator
                } else {
                    1.0
                };
                // scikit-learn computes `2 ** -q` with libm's `pow`. LLVM rewrites
                // `pow(2.0, x)` with a constant base into `exp2(x)`, which differs from
                // `pow` by an ulp on some inputs; an opaque base keeps the `pow` call.
                -(std::hint::black_box(2f64).powf(-q))
            })
            .collect();
        Ok(Matrix::column(scores))
    }
}

impl Estimator for IsolationForest {
    fn class(&self) -> &str {
        ISOLATION_FOREST
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::IsolationForest {
            class: ISOLATION_FOREST,
            n_features: self.n_features,
            trees: self.trees.iter().map(Tree::view).collect(),
            denominator: self.denominator,
            offset: self.offset,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[
            Method::Predict,
            Method::DecisionFunction,
            Method::ScoreSamples,
        ]
    }
    /// Not scikit-learn's `classes_`: the labels `predict` returns (-1 outlier, 1 inlier).
    fn classes(&self) -> Option<&Classes> {
        Some(&self.labels)
    }
    fn score_samples(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.scores(x)
    }
    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        let mut s = self.scores(x)?;
        s.data.iter_mut().for_each(|v| *v -= self.offset);
        Ok(s)
    }
    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        let d = self.decision_function(x)?;
        Ok(Prediction::Labels(
            // is_inlier[decision < 0] = -1: NaN stays an inlier.
            d.data
                .iter()
                .map(|v| if *v < 0.0 { 0 } else { 1 })
                .collect(),
        ))
    }
}
