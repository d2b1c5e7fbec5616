//! libsvm models: `SVC`, `NuSVC`, `SVR`, `NuSVR`, `OneClassSVM`.
//!
//! `predict`, `decision_function` and `predict_proba` hand the fitted arrays to libsvm's C
//! glue (`set_model`/`csr_set_model`), which sizes everything from two numbers: the class
//! count `nr_class = len(_n_support)` and the support vector count `l = len(support_)` (dense)
//! or `len(support_vectors_.indptr) - 1` (sparse). It then reads, unchecked, `nr_class - 1`
//! rows of `l` dual coefficients, `m = nr_class (nr_class - 1) / 2` intercepts, `m` Platt
//! parameters when probabilities are on, `l` dense support vectors, and for classifiers the
//! kernel values of `_n_support[i]` vectors from the running sum of the counts before it.
//! With a precomputed (or callable) kernel it reads column `support_[i]` of the kernel row,
//! whose width Python checks against `shape_fit_[0]` (or which is `len(__Xfit)`). scikit-learn
//! itself only checks `sum(n_support_) == len(support_vectors_)` for dense models.
//! So every one of these sizes must agree before the model reaches Python.

use skvault_format::Node;

use crate::error::{malformed, Result};
use crate::state::{node_float, node_int, seq_items, Obj};

const SPARSE_CSR: &[&str] = &[
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csr.csr_array",
];
const KERNELS: &[&str] = &["linear", "poly", "rbf", "sigmoid", "precomputed"];
/// Callable kernels whose result is the `(n_X, n_Xfit)` kernel matrix.
const KERNEL_FUNCTIONS: &[&str] = &[
    "sklearn.metrics.pairwise.linear_kernel",
    "sklearn.metrics.pairwise.polynomial_kernel",
    "sklearn.metrics.pairwise.rbf_kernel",
    "sklearn.metrics.pairwise.sigmoid_kernel",
    "sklearn.metrics.pairwise.laplacian_kernel",
    "sklearn.metrics.pairwise.chi2_kernel",
    "sklearn.metrics.pairwise.additive_chi2_kernel",
    "sklearn.metrics.pairwise.cosine_similarity",
];
/// The attributes libsvm reads; a model with none of them is not fitted and never reaches it.
const FITTED: &[&str] = &[
    "support_",
    "support_vectors_",
    "_n_support",
    "_dual_coef_",
    "_intercept_",
    "_probA",
    "_probB",
];

/// libsvm's `svm_type` (`LIBSVM_IMPL`) of each class; `None` for the abstract bases.
fn impl_of(class: &str) -> Option<(&'static str, bool)> {
    Some(match class.rsplit('.').next()? {
        "SVC" => ("c_svc", true),
        "NuSVC" => ("nu_svc", true),
        "OneClassSVM" => ("one_class", false),
        "SVR" => ("epsilon_svr", false),
        "NuSVR" => ("nu_svr", false),
        _ => return None,
    })
}

fn count(v: i64, path: &str, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| malformed(path, format!("{what} must not be negative")))
}

pub(super) fn check(o: &Obj<'_, '_>) -> Result<()> {
    let path = &o.path;
    let Some((impl_name, classifier)) = impl_of(o.class()) else {
        return Err(malformed(
            path,
            format!("{} is abstract: scikit-learn never creates one", o.class()),
        ));
    };
    if let Some(node) = o.attr("_impl") {
        if !matches!(node, Node::Str(s) if s == impl_name) {
            return Err(malformed(
                &o.sub("_impl"),
                format!("must be {impl_name:?} for {}", o.class()),
            ));
        }
    }
    if FITTED.iter().all(|a| o.attr(a).is_none()) {
        return Ok(());
    }

    let kernel = kernel(o)?;
    let l = support(o, kernel.callable)?;
    let nr_class = class_count(o, classifier, l)?;
    let p = o.sub("_n_support");
    let m = nr_class
        .checked_mul(nr_class - 1)
        .map(|v| v / 2)
        .ok_or_else(|| malformed(&p, "too many classes"))?;
    vectors(o, &kernel, l, nr_class)?;
    pairs(o, m)
}

/// The kernel: a libsvm name, or a kernel function of sklearn.metrics.pairwise; its
/// parameters are checked with it.
struct Kernel {
    sparse: bool,
    /// Precomputed or callable: libsvm reads kernel values by support index.
    by_index: bool,
    /// A kernel function: the kernel row is as wide as `__Xfit`.
    callable: bool,
}

fn kernel(o: &Obj<'_, '_>) -> Result<Kernel> {
    let sparse = o.bool("_sparse")?;
    let kernel = o.req("kernel")?;
    let by_index =
        match kernel {
            Node::Str(k) if KERNELS.contains(&k.as_str()) => k == "precomputed",
            Node::Global(f) if KERNEL_FUNCTIONS.contains(&f.as_str()) => true,
            _ => return Err(malformed(
                &o.sub("kernel"),
                "must be one of libsvm's kernels or a kernel function of sklearn.metrics.pairwise",
            )),
        };
    if sparse && by_index {
        return Err(malformed(
            &o.sub("kernel"),
            "a sparse model has no precomputed or callable kernel",
        ));
    }
    for name in ["_gamma", "coef0"] {
        if node_float(o.req(name)?).is_none() {
            return Err(malformed(&o.sub(name), "expected a number"));
        }
    }
    if !node_int(o.req("degree")?).is_some_and(|d| (0..=i64::from(i32::MAX)).contains(&d)) {
        return Err(malformed(&o.sub("degree"), "expected a non-negative int32"));
    }
    if let Some(status) = o.attr("fit_status_") {
        if !node_int(status).is_some_and(|s| s == 0 || s == 1) {
            return Err(malformed(&o.sub("fit_status_"), "must be 0 or 1"));
        }
    }
    Ok(Kernel {
        sparse,
        by_index,
        callable: matches!(kernel, Node::Global(_)),
    })
}

/// `shape_fit_` and `support_`, indices of training samples: the support vector count `l`.
fn support(o: &Obj<'_, '_>, callable: bool) -> Result<usize> {
    let p = o.sub("shape_fit_");
    let fit_shape = o
        .seq("shape_fit_")?
        .into_iter()
        .map(|n| node_int(n).and_then(|v| usize::try_from(v).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| malformed(&p, "must be a tuple of sizes"))?;
    let n_fit = *fit_shape
        .first()
        .ok_or_else(|| malformed(&p, "must not be empty"))?;
    let p = o.sub("support_");
    let (shape, support) = o.ctx.i64_array(o.req("support_")?, &p)?;
    let [l] = shape.as_slice() else {
        return Err(malformed(&p, "must have 1 dimension"));
    };
    let l = *l;
    if let Some(bad) = support
        .iter()
        .find(|i| usize::try_from(**i).map_or(true, |i| i >= n_fit))
    {
        return Err(malformed(
            &p,
            format!("index {bad} outside the {n_fit} training samples"),
        ));
    }
    if callable {
        // The kernel row is as wide as __Xfit; Python compares it with shape_fit_[0] in
        // predict only.
        let p = o.sub("_BaseLibSVM__Xfit");
        let rows = match o.req("_BaseLibSVM__Xfit")? {
            Node::Array(_) => o.numeric_shape("_BaseLibSVM__Xfit")?.first().copied(),
            other => seq_items(o.ctx, other).map(|items| items.len()),
        };
        if rows != Some(n_fit) {
            return Err(malformed(
                &p,
                format!("must hold the {n_fit} training samples of shape_fit_"),
            ));
        }
    }
    Ok(l)
}

/// `_n_support`: the class count, and for classifiers the support vectors of each class.
fn class_count(o: &Obj<'_, '_>, classifier: bool, l: usize) -> Result<usize> {
    let p = o.sub("_n_support");
    let (shape, n_support) = o.ctx.i64_array(o.req("_n_support")?, &p)?;
    let [nr_class] = shape.as_slice() else {
        return Err(malformed(&p, "must have 1 dimension"));
    };
    let nr_class = *nr_class;
    if classifier {
        if nr_class < 2 {
            return Err(malformed(&p, "a classifier has at least 2 classes"));
        }
        let mut total = 0usize;
        for c in &n_support {
            total = total
                .checked_add(count(*c, &p, "support counts")?)
                .ok_or_else(|| malformed(&p, "support counts overflow"))?;
        }
        if total != l {
            return Err(malformed(
                &p,
                format!("support counts add up to {total}, but there are {l} support vectors"),
            ));
        }
        if let Some(classes) = o.attr("classes_") {
            let n = match classes {
                Node::Array(index) => o
                    .ctx
                    .entry(*index, &o.sub("classes_"))?
                    .shape
                    .first()
                    .and_then(|n| usize::try_from(*n).ok()),
                other => seq_items(o.ctx, other).map(|c| c.len()),
            }
            .ok_or_else(|| malformed(&o.sub("classes_"), "expected a 1-d array"))?;
            if n != nr_class {
                return Err(malformed(
                    &p,
                    format!("{nr_class} support counts for {n} classes"),
                ));
            }
        }
    } else if nr_class != 2 {
        return Err(malformed(
            &p,
            "a regression or one-class model has 2 support counts",
        ));
    }
    Ok(nr_class)
}

/// The support vectors and dual coefficients.
fn vectors(o: &Obj<'_, '_>, kernel: &Kernel, l: usize, nr_class: usize) -> Result<()> {
    let Kernel {
        sparse, by_index, ..
    } = *kernel;
    let n_features = match o.attr("n_features_in_") {
        Some(n) => Some(
            node_int(n)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| malformed(&o.sub("n_features_in_"), "expected a count"))?,
        ),
        None => None,
    };
    let sv_path = o.sub("support_vectors_");
    let coef_path = o.sub("_dual_coef_");
    if sparse {
        let (rows, cols) = csr_shape(o, "support_vectors_")?;
        if rows != l {
            return Err(malformed(
                &sv_path,
                format!("{rows} rows for {l} support vectors"),
            ));
        }
        if n_features.is_some_and(|n| n != cols) {
            return Err(malformed(
                &sv_path,
                format!(
                    "{cols} columns, but the model has {} features",
                    n_features.unwrap_or(0)
                ),
            ));
        }
        let (rows, cols) = csr_shape(o, "_dual_coef_")?;
        if (rows, cols) != (nr_class - 1, l) {
            return Err(malformed(
                &coef_path,
                format!("shape ({rows}, {cols}), expected ({}, {l})", nr_class - 1),
            ));
        }
        // csr_set_model copies nr_class - 1 rows of l values from the data array.
        let coef = Obj::new(o.ctx, o.object("_dual_coef_")?, coef_path.clone());
        let nnz: usize = coef.numeric_shape("data")?.iter().product();
        if Some(nnz) != rows.checked_mul(l) {
            return Err(malformed(
                &coef_path,
                format!(
                    "{nnz} stored values, expected all {} coefficients",
                    rows * l
                ),
            ));
        }
    } else {
        let sv = o.numeric_shape("support_vectors_")?;
        let [rows, cols] = sv.as_slice() else {
            return Err(malformed(&sv_path, "must have 2 dimensions"));
        };
        if !by_index {
            if *rows != l {
                return Err(malformed(
                    &sv_path,
                    format!("{rows} rows for {l} support vectors"),
                ));
            }
            if n_features.is_some_and(|n| n != *cols) {
                return Err(malformed(
                    &sv_path,
                    format!(
                        "{cols} columns, but the model has {} features",
                        n_features.unwrap_or(0)
                    ),
                ));
            }
        }
        let coef = o.numeric_shape("_dual_coef_")?;
        if coef != [nr_class - 1, l] {
            return Err(malformed(
                &coef_path,
                format!("shape {coef:?}, expected ({}, {l})", nr_class - 1),
            ));
        }
    }
    Ok(())
}

/// Intercepts and Platt parameters: one per pair of classes (`m` pairs).
fn pairs(o: &Obj<'_, '_>, m: usize) -> Result<()> {
    let path = &o.path;
    let intercept = o.numeric_shape("_intercept_")?;
    if intercept != [m] {
        return Err(malformed(
            &o.sub("_intercept_"),
            format!("shape {intercept:?}, expected ({m},)"),
        ));
    }
    let probability = match o.attr("_effective_probability") {
        Some(node) => node_int(node).is_some_and(|v| v != 0),
        None => false,
    };
    let mut lens = Vec::new();
    for name in ["_probA", "_probB"] {
        let shape = o.numeric_shape(name)?;
        let ok = shape == [m] || (!probability && shape == [0]);
        if !ok {
            return Err(malformed(
                &o.sub(name),
                format!(
                    "shape {:?}, expected ({m},){}",
                    shape,
                    if probability { "" } else { " or (0,)" }
                ),
            ));
        }
        lens.push(shape);
    }
    if lens.first() != lens.get(1) {
        return Err(malformed(path, "_probA and _probB differ in length"));
    }
    if let Some(w) = o.attr("class_weight_") {
        if o.ctx.numeric_shape(w, &o.sub("class_weight_"))?.len() != 1 {
            return Err(malformed(&o.sub("class_weight_"), "must have 1 dimension"));
        }
    }
    Ok(())
}

/// The shape of a CSR attribute (its parts are checked as a sparse matrix by `sparse.rs`).
fn csr_shape(o: &Obj<'_, '_>, name: &str) -> Result<(usize, usize)> {
    let p = o.sub(name);
    let m = o.object(name)?;
    if !SPARSE_CSR.contains(&m.class.as_str()) {
        return Err(malformed(&p, "a sparse model holds CSR matrices"));
    }
    let m = Obj::new(o.ctx, m, p.clone());
    let dims = m
        .seq("_shape")?
        .into_iter()
        .map(|n| node_int(n).and_then(|v| usize::try_from(v).ok()))
        .collect::<Option<Vec<usize>>>();
    match dims.as_deref() {
        Some([r, c]) => Ok((*r, *c)),
        _ => Err(malformed(&p, "must have a 2-d shape")),
    }
}
