//! Linear models: `X @ coef_.T + intercept_`, then a link for classifiers.
//!
//! scikit-learn computes the product with BLAS, whose summation order (and use of FMA)
//! depends on the library and the CPU, so scores agree to a few ulps of the sum of
//! |x_i w_i|, not bit for bit; see docs/NATIVE.md for the measured tolerance.

use crate::classes::{read_classes, Classes};
use crate::error::{malformed, unsupported, Result};
use crate::estimator::{not_available, Boxed, Estimator, Method, PREDICT_ONLY, SCORED_CLASSIFIER};
use crate::forest::argmax_rows;
use crate::matrix::{check_input, Finite, Matrix, MatrixView, Prediction};
use crate::numeric::{dot, expit, normalize_rows_ovr, softmax_row};
use crate::state::{node_float, Obj};

const REGRESSORS: &[&str] = &[
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._ridge.RidgeCV",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._coordinate_descent.LassoCV",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._coordinate_descent.ElasticNetCV",
    "sklearn.linear_model._stochastic_gradient.SGDRegressor",
    "sklearn.svm._classes.LinearSVR",
];
const LOGISTIC: &str = "sklearn.linear_model._logistic.LogisticRegression";
const SGD_CLASSIFIER: &str = "sklearn.linear_model._stochastic_gradient.SGDClassifier";
const LINEAR_SVC: &str = "sklearn.svm._classes.LinearSVC";

/// How a classifier turns scores into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proba {
    None,
    /// LogisticRegression: expit (binary) or softmax (multiclass).
    Logistic,
    /// SGDClassifier(loss="log_loss"): expit, then one-vs-rest normalisation.
    OvrLogistic,
    /// SGDClassifier(loss="modified_huber"): (clip(score, -1, 1) + 1) / 2.
    ModifiedHuber,
}

#[derive(Debug)]
pub(crate) struct Linear {
    class: String,
    n_features: usize,
    /// `k` rows of `n_features` weights.
    coef: Vec<f64>,
    intercept: Vec<f64>,
    k: usize,
    /// Regressors fitted on a 1-d target return 1-d predictions.
    flat: bool,
    classes: Option<Classes>,
    proba: Proba,
}

pub(crate) fn build(o: &Obj<'_, '_>) -> Result<Option<Boxed>> {
    let class = o.class();
    let est = if REGRESSORS.contains(&class) {
        linear(o, None, Proba::None)?
    } else if class == LOGISTIC {
        classifier(o, Proba::Logistic)?
    } else if class == SGD_CLASSIFIER {
        let proba = match o.str("loss")? {
            "log_loss" => Proba::OvrLogistic,
            "modified_huber" => Proba::ModifiedHuber,
            _ => Proba::None,
        };
        classifier(o, proba)?
    } else if class == LINEAR_SVC {
        classifier(o, Proba::None)?
    } else {
        return Ok(None);
    };
    Ok(Some(Box::new(est)))
}

fn classifier(o: &Obj<'_, '_>, proba: Proba) -> Result<Linear> {
    let classes = read_classes(o.ctx, o.req("classes_")?, &o.sub("classes_"))?;
    let est = linear(o, Some(classes), proba)?;
    let n_classes = est.classes.as_ref().map_or(0, Classes::len);
    let expected = if n_classes == 2 { 1 } else { n_classes };
    if n_classes < 2 || est.k != expected {
        return Err(malformed(
            &o.sub("coef_"),
            format!("{} rows of coefficients for {n_classes} classes", est.k),
        ));
    }
    Ok(est)
}

fn linear(o: &Obj<'_, '_>, classes: Option<Classes>, proba: Proba) -> Result<Linear> {
    let n_features = o.usize("n_features_in_")?;
    let coef = o.f64_array("coef_")?;
    let (k, flat) = match coef.shape.as_slice() {
        [d] if *d == n_features => (1, classes.is_none()),
        [k, d] if *d == n_features && *k > 0 => (*k, false),
        other => {
            return Err(malformed(
                &o.sub("coef_"),
                format!("shape {other:?} for {n_features} features"),
            ))
        }
    };
    if let (Some(_), [_]) = (&classes, coef.shape.as_slice()) {
        return Err(unsupported(o.class(), &o.path, Some("1-d coef_".into())));
    }
    let intercept = match o.req("intercept_")? {
        node @ (skvault_format::Node::Array(_) | skvault_format::Node::Scalar { .. }) => {
            let a = o.ctx.f64_array(node, &o.sub("intercept_"))?;
            match a.data.len() {
                1 => vec![a.data[0]; k],
                n if n == k => a.data,
                n => {
                    return Err(malformed(
                        &o.sub("intercept_"),
                        format!("{n} values for {k} outputs"),
                    ))
                }
            }
        }
        node => {
            vec![
                node_float(node)
                    .ok_or_else(|| malformed(&o.sub("intercept_"), "expected a number or array"))?;
                k
            ]
        }
    };
    Ok(Linear {
        class: o.class().to_string(),
        n_features,
        coef: coef.data,
        intercept,
        k,
        flat,
        classes,
        proba,
    })
}

impl Linear {
    fn scores(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        check_input(&self.class, x, self.n_features, Finite::All)?;
        let d = self.n_features;
        let mut out = Vec::with_capacity(x.n_rows() * self.k);
        for row in x.rows() {
            for (w, b) in self.coef.chunks_exact(d.max(1)).zip(&self.intercept) {
                out.push(dot(row, w) + b);
            }
        }
        Ok(Matrix::from_vec(out, x.n_rows(), self.k))
    }
}

impl Estimator for Linear {
    fn class(&self) -> &str {
        &self.class
    }

    fn view(&self) -> crate::view::View<'_> {
        use crate::view::LinearLink;
        crate::view::View::Linear {
            class: &self.class,
            n_features: self.n_features,
            coef: &self.coef,
            intercept: &self.intercept,
            k: self.k,
            flat: self.flat,
            classes: self.classes.as_ref(),
            link: match self.proba {
                Proba::None => LinearLink::None,
                Proba::Logistic => LinearLink::Logistic,
                Proba::OvrLogistic => LinearLink::OvrLogistic,
                Proba::ModifiedHuber => LinearLink::ModifiedHuber,
            },
        }
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn methods(&self) -> &'static [Method] {
        match (&self.classes, self.proba) {
            (None, _) => PREDICT_ONLY,
            (Some(_), Proba::None) => &[Method::Predict, Method::DecisionFunction],
            (Some(_), _) => SCORED_CLASSIFIER,
        }
    }

    fn classes(&self) -> Option<&Classes> {
        self.classes.as_ref()
    }

    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        let mut s = self.scores(x)?;
        if self.classes.is_none() {
            s.flat = self.flat;
            return Ok(Prediction::Values(s));
        }
        if self.k == 1 {
            return Ok(Prediction::Labels(
                s.data.iter().map(|v| usize::from(*v > 0.0)).collect(),
            ));
        }
        Ok(Prediction::Labels(argmax_rows(&s)))
    }

    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.classes.is_none() {
            return Err(not_available(&self.class, Method::DecisionFunction));
        }
        let mut s = self.scores(x)?;
        s.flat = self.k == 1;
        Ok(s)
    }

    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.classes.is_none() || self.proba == Proba::None {
            return Err(not_available(&self.class, Method::PredictProba));
        }
        let s = self.scores(x)?;
        let n = s.n_rows;
        if self.k == 1 {
            // Binary: column 1 is p, column 0 is 1 - p.
            let mut out = Vec::with_capacity(2 * n);
            for v in &s.data {
                let p = match self.proba {
                    Proba::ModifiedHuber => (v.clamp(-1.0, 1.0) + 1.0) / 2.0,
                    _ => expit(*v),
                };
                out.push(1.0 - p);
                out.push(p);
            }
            return Ok(Matrix::from_vec(out, n, 2));
        }
        let mut s = s;
        match self.proba {
            Proba::Logistic => s.data.chunks_exact_mut(self.k).for_each(softmax_row),
            Proba::OvrLogistic => {
                s.data.iter_mut().for_each(|v| *v = expit(*v));
                normalize_rows_ovr(&mut s.data, self.k);
            }
            Proba::ModifiedHuber => {
                s.data
                    .iter_mut()
                    .for_each(|v| *v = (v.clamp(-1.0, 1.0) + 1.0) / 2.0);
                normalize_rows_ovr(&mut s.data, self.k);
            }
            Proba::None => {}
        }
        Ok(s)
    }
}
