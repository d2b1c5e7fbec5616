"""A zoo of fitted scikit-learn estimators for round-trip tests.

``cases()`` builds and fits (nearly) every estimator of ``sklearn.utils.all_estimators()``
on small, deterministic data, plus a handful of practically important configurations
(forests, gradient boosting with NaN and categorical features, pipelines, neighbors
trees, sparse input, FunctionTransformer(np.log1p), ...).

Each ``Case`` lists the methods whose outputs on ``Case.X`` are deterministic: every
candidate method was called twice on ``X`` while building the case, and kept only if it
ran, gave the same output both times and left ``X`` unchanged.

This module does not import skvault.
"""

from __future__ import annotations

import functools

import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier, is_regressor

# Experimental estimators are imported explicitly so that they are covered as well
# (importing them registers them in sklearn's public namespace and all_estimators()).
from sklearn.experimental import (
    enable_halving_search_cv,  # noqa: F401
    enable_iterative_imputer,  # noqa: F401
)
from sklearn.utils import all_estimators
from sklearn.utils._tags import get_tags

__all__ = ["Case", "cases", "SKIPPED", "CANDIDATE_METHODS", "same_output"]


@dataclass
class Case:
    name: str  # unique id, e.g. "RandomForestClassifier-multiclass"
    estimator: object  # fitted estimator
    X: object  # held-out input the methods are called on
    methods: list[str] = field(default_factory=list)  # deterministic methods to compare


# Estimator name -> reason, for estimators of all_estimators() without a case.
SKIPPED: dict[str, str] = {}

# Methods compared on Case.X (only the ones that exist, run and are deterministic).
CANDIDATE_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "decision_function",
    "transform",
    "inverse_transform",
    "score_samples",
    "score",
    "mahalanobis",
    "apply",
    "decision_path",
    "kneighbors",
)


# --------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------


def same_output(a, b) -> bool:
    """Exact equality of method outputs (NaN == NaN, same dtype and shape)."""
    if sp.issparse(a) or sp.issparse(b):
        return sp.issparse(a) and sp.issparse(b) and same_output(a.toarray(), b.toarray())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_output(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_output(a[k], b[k]) for k in a)
        )
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return type(a) is type(b) and a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    if a.dtype.kind == "O":
        if a.ndim == 0:
            x, y = a.item(), b.item()
            if isinstance(x, (list, tuple, dict, np.ndarray, str, bytes)) or sp.issparse(x):
                return same_output(x, y)
            return type(x) is type(y) and (x == y or (x != x and y != y))
        return all(same_output(x, y) for x, y in zip(a.ravel(), b.ravel()))
    return np.array_equal(a, b)


def _snapshot(X):
    if sp.issparse(X):
        return X.copy()
    if isinstance(X, np.ndarray):
        return X.copy()
    import copy

    return copy.deepcopy(X)


def _deterministic_methods(estimator, X) -> list[str]:
    methods = []
    for method in CANDIDATE_METHODS:
        if not hasattr(estimator, method):  # also honours available_if
            continue
        before = _snapshot(X)
        try:
            first = getattr(estimator, method)(X)
            second = getattr(estimator, method)(X)
        except Exception:
            continue
        if not same_output(X, before):
            raise AssertionError(f"{type(estimator).__name__}.{method} modified its input")
        if first is None or not same_output(first, second):
            continue
        methods.append(method)
    return methods


# --------------------------------------------------------------------------------------
# data (all deterministic)
# --------------------------------------------------------------------------------------

N_TRAIN = 80
N_TEST = 20
N_FEATURES = 5


class _Data:
    def __init__(self):
        from sklearn.datasets import (
            make_classification,
            make_multilabel_classification,
            make_regression,
        )

        n = N_TRAIN + N_TEST
        rng = np.random.RandomState(0)

        def split(*arrays):
            return [(a[:N_TRAIN], a[N_TRAIN:]) for a in arrays]

        # binary classification, integer labels 0/1
        X, y = make_classification(
            n_samples=n,
            n_features=N_FEATURES,
            n_informative=3,
            n_redundant=0,
            n_classes=2,
            random_state=0,
        )
        (self.Xb, self.Xb_test), (self.yb, _) = split(X, y)

        # multiclass classification, integer and string labels
        X, y = make_classification(
            n_samples=n,
            n_features=N_FEATURES,
            n_informative=3,
            n_redundant=0,
            n_classes=3,
            n_clusters_per_class=1,
            class_sep=1.5,
            random_state=1,
        )
        (self.Xm, self.Xm_test), (self.ym, self.ym_test) = split(X, y)
        names = np.array(["ant", "bee", "cat"])
        self.ym_str, self.ym_str_test = names[self.ym], names[self.ym_test]

        # positive versions (for chi2-like kernels, NB, NMF, ...)
        self.Xb_pos, self.Xb_pos_test = self._positive(self.Xb, self.Xb_test)
        self.Xm_pos, self.Xm_pos_test = self._positive(self.Xm, self.Xm_test)

        # multilabel
        X, Y = make_multilabel_classification(
            n_samples=n, n_features=N_FEATURES, n_classes=3, random_state=0
        )
        (self.Xml, self.Xml_test), (self.Yml, _) = split(X.astype(float), Y)

        # regression: single and multi-output; positive targets
        X, y = make_regression(
            n_samples=n, n_features=N_FEATURES, n_informative=4, noise=5.0, random_state=0
        )
        (self.Xr, self.Xr_test), (self.yr, _) = split(X, y)
        self.yr_pos = np.exp(self.yr / np.std(self.yr))
        X, Y = make_regression(
            n_samples=n,
            n_features=N_FEATURES,
            n_informative=4,
            n_targets=2,
            noise=5.0,
            random_state=1,
        )
        (self.Xr2, self.Xr2_test), (self.Yr2, _) = split(X, Y)
        self.Xr_pos, self.Xr_pos_test = self._positive(self.Xr, self.Xr_test)

        # sparse versions (about half of the entries are zero)
        self.Xb_sp, self.Xb_sp_test = self._sparse(self.Xb, self.Xb_test)
        self.Xr_sp, self.Xr_sp_test = self._sparse(self.Xr, self.Xr_test)
        self.Xm_pos_sp, self.Xm_pos_sp_test = self._sparse(
            self.Xm_pos - 1.0, self.Xm_pos_test - 1.0, clip=True
        )

        # categorical integer features (CategoricalNB, encoders)
        self.Xcat = rng.randint(0, 4, size=(n, N_FEATURES))
        self.Xcat, self.Xcat_test = self.Xcat[:N_TRAIN], self.Xcat[N_TRAIN:]
        # string categories
        words = np.array(["red", "green", "blue", "black"])
        self.Xstr, self.Xstr_test = words[self.Xcat[:, :3]], words[self.Xcat_test[:, :3]]

        # missing values
        self.Xnan = self.Xr.copy()
        self.Xnan[rng.rand(*self.Xnan.shape) < 0.15] = np.nan
        self.Xnan_test = self.Xr_test.copy()
        self.Xnan_test[rng.rand(*self.Xnan_test.shape) < 0.15] = np.nan

        # text
        vocab = (
            "apple banana cherry data model tree forest vector learning kernel "
            "python rust safe pickle load dump fast small large random"
        ).split()
        docs = [" ".join(rng.choice(vocab, size=rng.randint(3, 12))) for _ in range(40)]
        self.docs, self.docs_test = docs[:30], docs[30:]
        self.dicts = [
            {w: float(rng.randint(1, 4)) for w in rng.choice(vocab, size=4, replace=False)}
            for _ in range(40)
        ]
        self.dicts, self.dicts_test = self.dicts[:30], self.dicts[30:]
        # DictVectorizer also accepts string values (one-hot encoded)
        self.mixed_dicts = [
            {"color": str(rng.choice(["red", "green", "blue"])), "size": float(rng.rand())}
            for _ in range(40)
        ]
        self.mixed_dicts, self.mixed_dicts_test = self.mixed_dicts[:30], self.mixed_dicts[30:]

        # images for PatchExtractor
        self.images = rng.rand(6, 8, 8)
        self.images, self.images_test = self.images[:4], self.images[4:]

    @staticmethod
    def _positive(X, X_test):
        low = min(X.min(), X_test.min())
        return X - low + 0.1, X_test - low + 0.1

    @staticmethod
    def _sparse(X, X_test, clip=False):
        def make(A):
            A = A.copy()
            if clip:
                A[A < 0] = 0.0
            A[np.abs(A) < 0.6] = 0.0
            return sp.csr_matrix(A)

        return make(X), make(X_test)


# --------------------------------------------------------------------------------------
# construction helpers
# --------------------------------------------------------------------------------------


def _seed(estimator):
    """Fix every unset random_state (including nested ones) to 0."""
    try:
        params = estimator.get_params(deep=True)
    except Exception:
        return estimator
    fixed = {k: 0 for k, v in params.items() if k.split("__")[-1] == "random_state" and v is None}
    if fixed:
        # set the deepest keys last is not needed: set_params handles nested keys
        estimator.set_params(**fixed)
    return estimator


def _make(cls, params=None):
    return _seed(cls(**(params or {})))


def _fitted_case(name, estimator, X, y, X_test, *, fit_params=None, seed=True):
    if seed:
        _seed(estimator)
    if y is None:
        estimator.fit(X, **(fit_params or {}))
    else:
        estimator.fit(X, y, **(fit_params or {}))
    return Case(name, estimator, X_test, _deterministic_methods(estimator, X_test))


# Constructor parameters: keep things small and fast.  Values are callables so that
# every case gets fresh (unfitted) nested estimators.
def _lr():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=200)


def _params():
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.RandomState(0)
    dictionary = rng.normal(size=(3, N_FEATURES))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    return {
        "AdaBoostClassifier": lambda: dict(n_estimators=5),
        "AdaBoostRegressor": lambda: dict(n_estimators=5),
        "AffinityPropagation": lambda: dict(max_iter=50),
        "AgglomerativeClustering": lambda: dict(n_clusters=3),
        "ARDRegression": lambda: dict(max_iter=50),
        "BaggingClassifier": lambda: dict(n_estimators=5),
        "BaggingRegressor": lambda: dict(n_estimators=5),
        "BayesianGaussianMixture": lambda: dict(n_components=2, n_init=1, max_iter=20),
        "BernoulliRBM": lambda: dict(n_components=3, n_iter=5, batch_size=10),
        "Birch": lambda: dict(n_clusters=3),
        "BisectingKMeans": lambda: dict(n_clusters=3, n_init=1, max_iter=20),
        "CalibratedClassifierCV": lambda: dict(cv=3),
        "DictionaryLearning": lambda: dict(
            n_components=3, max_iter=10, transform_algorithm="lasso_lars"
        ),
        "ElasticNetCV": lambda: dict(cv=3, alphas=5),
        "ExtraTreesClassifier": lambda: dict(n_estimators=5),
        "ExtraTreesRegressor": lambda: dict(n_estimators=5),
        "FactorAnalysis": lambda: dict(n_components=2, max_iter=50),
        "FastICA": lambda: dict(n_components=3, max_iter=50),
        "FeatureAgglomeration": lambda: dict(n_clusters=2),
        "FixedThresholdClassifier": lambda: dict(estimator=_lr(), threshold=0.3),
        "GammaRegressor": lambda: dict(max_iter=50),
        "GaussianMixture": lambda: dict(n_components=3, n_init=1, max_iter=20),
        "GaussianRandomProjection": lambda: dict(n_components=3),
        "GenericUnivariateSelect": lambda: dict(mode="k_best", param=2),
        "GradientBoostingClassifier": lambda: dict(n_estimators=10, max_depth=2),
        "GradientBoostingRegressor": lambda: dict(n_estimators=10, max_depth=2),
        "GraphicalLasso": lambda: dict(max_iter=20),
        "GraphicalLassoCV": lambda: dict(max_iter=20, cv=3, alphas=3),
        "HDBSCAN": lambda: dict(min_cluster_size=5),
        "HistGradientBoostingClassifier": lambda: dict(max_iter=10, min_samples_leaf=5),
        "HistGradientBoostingRegressor": lambda: dict(max_iter=10, min_samples_leaf=5),
        "HuberRegressor": lambda: dict(max_iter=50),
        "IncrementalPCA": lambda: dict(n_components=3, batch_size=20),
        "IsolationForest": lambda: dict(n_estimators=10),
        "Isomap": lambda: dict(n_components=2, n_neighbors=8),
        "KMeans": lambda: dict(n_clusters=3, n_init=1, max_iter=20),
        "KBinsDiscretizer": lambda: dict(n_bins=3),
        "KernelPCA": lambda: dict(n_components=3, kernel="rbf", fit_inverse_transform=True),
        "KNeighborsTransformer": lambda: dict(n_neighbors=4),
        "LabelPropagation": lambda: dict(max_iter=50),
        "LabelSpreading": lambda: dict(max_iter=50),
        "LarsCV": lambda: dict(cv=3),
        "LassoCV": lambda: dict(cv=3, alphas=5),
        "LassoLarsCV": lambda: dict(cv=3),
        "LatentDirichletAllocation": lambda: dict(n_components=2, max_iter=5, batch_size=10),
        "LinearDiscriminantAnalysis": lambda: dict(n_components=1),
        "LocalOutlierFactor": lambda: dict(n_neighbors=10, novelty=True),
        "LocallyLinearEmbedding": lambda: dict(n_components=2, n_neighbors=10),
        "LogisticRegressionCV": lambda: dict(cv=3, Cs=3, max_iter=100),
        "MDS": lambda: dict(n_components=2, n_init=1, max_iter=50),
        "MeanShift": lambda: dict(bandwidth=2.0, max_iter=50),
        "MiniBatchDictionaryLearning": lambda: dict(n_components=3, batch_size=10, max_iter=5),
        "MiniBatchKMeans": lambda: dict(n_clusters=3, n_init=1, max_iter=10, batch_size=20),
        "MiniBatchNMF": lambda: dict(n_components=2, batch_size=20, max_iter=20),
        "MiniBatchSparsePCA": lambda: dict(n_components=2, max_iter=5, batch_size=10),
        "MLPClassifier": lambda: dict(hidden_layer_sizes=(8,), max_iter=100),
        "MLPRegressor": lambda: dict(hidden_layer_sizes=(8,), max_iter=100),
        "MultiTaskElasticNetCV": lambda: dict(cv=3),
        "MultiTaskLassoCV": lambda: dict(cv=3),
        "NeighborhoodComponentsAnalysis": lambda: dict(n_components=2, max_iter=10),
        "NMF": lambda: dict(n_components=2, max_iter=200),
        "Nystroem": lambda: dict(n_components=10),
        "OneClassSVM": lambda: dict(nu=0.2),
        "OneHotEncoder": lambda: dict(handle_unknown="ignore"),
        "OneVsOneClassifier": lambda: dict(estimator=LinearSVC()),
        "OneVsRestClassifier": lambda: dict(estimator=_lr()),
        "OrthogonalMatchingPursuitCV": lambda: dict(cv=3),
        "OutputCodeClassifier": lambda: dict(estimator=_lr(), code_size=2.0),
        "OPTICS": lambda: dict(min_samples=5),
        "PassiveAggressiveClassifier": lambda: dict(max_iter=20),
        "PassiveAggressiveRegressor": lambda: dict(max_iter=20),
        "PCA": lambda: dict(n_components=3),
        "Perceptron": lambda: dict(max_iter=20),
        "PoissonRegressor": lambda: dict(max_iter=50),
        "PolynomialCountSketch": lambda: dict(n_components=10),
        "QuantileTransformer": lambda: dict(n_quantiles=20),
        "RadiusNeighborsClassifier": lambda: dict(radius=3.0, outlier_label="most_frequent"),
        "RadiusNeighborsRegressor": lambda: dict(radius=3.0),
        "RadiusNeighborsTransformer": lambda: dict(radius=1.5),
        "RandomForestClassifier": lambda: dict(n_estimators=5),
        "RandomForestRegressor": lambda: dict(n_estimators=5),
        "RandomTreesEmbedding": lambda: dict(n_estimators=5, max_depth=3),
        "RANSACRegressor": lambda: dict(estimator=LinearRegression(), max_trials=10),
        "RBFSampler": lambda: dict(n_components=10),
        "RFE": lambda: dict(estimator=_lr(), n_features_to_select=3),
        "RFECV": lambda: dict(estimator=_lr(), cv=3),
        "SelectFdr": lambda: dict(alpha=0.5),
        "SelectFpr": lambda: dict(alpha=0.5),
        "SelectFwe": lambda: dict(alpha=0.5),
        "SelectKBest": lambda: dict(k=2),
        "SelectPercentile": lambda: dict(percentile=50),
        "SelectFromModel": lambda: dict(estimator=_lr()),
        "SequentialFeatureSelector": lambda: dict(estimator=_lr(), n_features_to_select=2, cv=3),
        "SGDClassifier": lambda: dict(max_iter=20),
        "SGDOneClassSVM": lambda: dict(max_iter=20),
        "SGDRegressor": lambda: dict(max_iter=20),
        "SkewedChi2Sampler": lambda: dict(n_components=10, skewedness=10.0),
        "SparseCoder": lambda: dict(dictionary=dictionary.copy()),
        "SparsePCA": lambda: dict(n_components=2, max_iter=10),
        "SparseRandomProjection": lambda: dict(n_components=3),
        "SpectralBiclustering": lambda: dict(n_clusters=2, n_init=2, n_best=2),
        "SpectralClustering": lambda: dict(n_clusters=3, n_init=2),
        "SpectralCoclustering": lambda: dict(n_clusters=2, n_init=2),
        "SpectralEmbedding": lambda: dict(n_components=2, eigen_tol=1e-5),
        "StackingClassifier": lambda: dict(
            estimators=[
                ("lr", _lr()),
                ("tree", DecisionTreeClassifier(max_depth=3)),
            ],
            final_estimator=_lr(),
            cv=3,
        ),
        "StackingRegressor": lambda: dict(
            estimators=[("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=3))],
            final_estimator=Ridge(alpha=0.5),
            cv=3,
        ),
        "TargetEncoder": lambda: dict(cv=3),
        "TheilSenRegressor": lambda: dict(max_subpopulation=100, max_iter=50),
        "TruncatedSVD": lambda: dict(n_components=2, n_iter=5),
        "TSNE": lambda: dict(n_components=2, perplexity=5, max_iter=250, method="exact"),
        "TunedThresholdClassifierCV": lambda: dict(estimator=_lr(), cv=3),
        "TweedieRegressor": lambda: dict(max_iter=50),
        "VotingClassifier": lambda: dict(
            estimators=[
                ("lr", _lr()),
                ("tree", DecisionTreeClassifier(max_depth=3)),
            ],
            voting="soft",
        ),
        "VotingRegressor": lambda: dict(
            estimators=[("lr", LinearRegression()), ("tree", DecisionTreeRegressor(max_depth=3))]
        ),
        "SelfTrainingClassifier": lambda: dict(estimator=_lr(), max_iter=5),
        "MultiOutputClassifier": lambda: dict(estimator=_lr()),
        "MultiOutputRegressor": lambda: dict(estimator=Ridge()),
        "ClassifierChain": lambda: dict(estimator=_lr(), order=[2, 0, 1]),
        "RegressorChain": lambda: dict(estimator=Ridge(), order=[1, 0]),
    }


# --------------------------------------------------------------------------------------
# generic builders by estimator kind
# --------------------------------------------------------------------------------------


def _generic(name, cls, make_params, d: _Data) -> list[Case]:
    """Default cases by estimator kind; make_params() returns fresh constructor kwargs."""
    est = _make(cls, make_params())
    tags = get_tags(est)
    pos = tags.input_tags.positive_only
    out = []
    if is_classifier(est):
        if tags.target_tags.multi_output and not tags.target_tags.single_output:
            return [_fitted_case(name, est, d.Xml, d.Yml, d.Xml_test)]
        Xb, Xb_t = (d.Xb_pos, d.Xb_pos_test) if pos else (d.Xb, d.Xb_test)
        Xm, Xm_t = (d.Xm_pos, d.Xm_pos_test) if pos else (d.Xm, d.Xm_test)
        out.append(_fitted_case(name, est, Xb, d.yb, Xb_t))
        try:  # multiclass with string labels (binary-only estimators raise here)
            out.append(
                _fitted_case(f"{name}-multiclass", _make(cls, make_params()), Xm, d.ym_str, Xm_t)
            )
        except ValueError:
            pass
        return out
    if is_regressor(est):
        if tags.target_tags.multi_output and not tags.target_tags.single_output:
            return [_fitted_case(name, est, d.Xr2, d.Yr2, d.Xr2_test)]
        X, X_t = (d.Xr_pos, d.Xr_pos_test) if pos else (d.Xr, d.Xr_test)
        y = d.yr_pos if tags.target_tags.positive_only else d.yr
        return [_fitted_case(name, est, X, y, X_t)]
    # transformers, clusterers, outlier detectors, density estimators, ...
    X, X_t = (d.Xm_pos, d.Xm_pos_test) if pos else (d.Xm, d.Xm_test)
    # supervised transformers (selectors, NCA, ...) need y; unsupervised ones ignore it
    takes_y = "y" in inspect.signature(est.fit).parameters
    return [_fitted_case(name, est, X, d.ym if takes_y else None, X_t)]


# --------------------------------------------------------------------------------------
# special builders
# --------------------------------------------------------------------------------------


def _special(d: _Data) -> dict:
    """Estimator name -> function() returning a list of cases."""
    import sklearn.compose as compose
    import sklearn.feature_extraction as fe
    import sklearn.feature_extraction.image as fe_image
    import sklearn.feature_extraction.text as fe_text
    import sklearn.preprocessing as pre
    from sklearn.cross_decomposition import CCA, PLSSVD, PLSCanonical, PLSRegression
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest
    from sklearn.frozen import FrozenEstimator
    from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.model_selection import (
        GridSearchCV,
        HalvingGridSearchCV,
        HalvingRandomSearchCV,
        RandomizedSearchCV,
    )
    from sklearn.naive_bayes import CategoricalNB
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.semi_supervised import LabelPropagation, LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC

    def one(name, est, X, y, X_t, **kw):
        return [_fitted_case(name, est, X, y, X_t, **kw)]

    def semi_supervised_y():
        y = d.ym.copy()
        y[np.arange(len(y)) % 3 == 0] = -1
        return y

    def text(cls, **kw):
        name = cls.__name__
        cases_ = [_fitted_case(name, cls(**kw), d.docs, None, d.docs_test)]
        if cls is fe_text.CountVectorizer:
            cases_.append(
                _fitted_case(
                    f"{name}-bigrams-maxfeatures",
                    cls(ngram_range=(1, 2), max_features=15, binary=True),
                    d.docs,
                    None,
                    d.docs_test,
                )
            )
        return cases_

    def tfidf_transformer():
        cv = fe_text.CountVectorizer().fit(d.docs)
        return one(
            "TfidfTransformer",
            fe_text.TfidfTransformer(),
            cv.transform(d.docs),
            None,
            cv.transform(d.docs_test),
        )

    def dict_vectorizer():
        return [
            _fitted_case("DictVectorizer", fe.DictVectorizer(), d.dicts, None, d.dicts_test),
            _fitted_case(
                "DictVectorizer-dense-strings",
                fe.DictVectorizer(sparse=False),
                d.mixed_dicts,
                None,
                d.mixed_dicts_test,
            ),
        ]

    def feature_hasher():
        tokens = [list(x) for x in d.dicts]
        tokens_test = [list(x) for x in d.dicts_test]
        return [
            _fitted_case(
                "FeatureHasher", fe.FeatureHasher(n_features=16), d.dicts, None, d.dicts_test
            ),
            _fitted_case(
                "FeatureHasher-string",
                fe.FeatureHasher(n_features=16, input_type="string"),
                tokens,
                None,
                tokens_test,
            ),
        ]

    def label_encoder():
        return [
            _fitted_case("LabelEncoder", pre.LabelEncoder(), d.ym_str, None, d.ym_str_test),
            _fitted_case("LabelEncoder-int", pre.LabelEncoder(), d.ym + 10, None, d.ym_test + 10),
        ]

    def label_binarizer():
        return [
            _fitted_case("LabelBinarizer", pre.LabelBinarizer(), d.ym_str, None, d.ym_str_test),
            _fitted_case(
                "LabelBinarizer-binary-sparse",
                pre.LabelBinarizer(sparse_output=True),
                d.yb,
                None,
                d.yb[:N_TEST],
            ),
        ]

    def multilabel_binarizer():
        labels = np.array(["x", "y", "z"])
        sets = [tuple(labels[row.astype(bool)]) for row in d.Yml]
        return one("MultiLabelBinarizer", pre.MultiLabelBinarizer(), sets, None, sets[:N_TEST])

    def isotonic():
        x = d.Xr[:, 0]
        return [
            _fitted_case(
                "IsotonicRegression",
                IsotonicRegression(out_of_bounds="clip"),
                x,
                d.yr,
                d.Xr_test[:, 0],
            ),
            _fitted_case(
                "IsotonicRegression-decreasing",
                IsotonicRegression(increasing=False, out_of_bounds="clip"),
                x,
                -d.yr,
                d.Xr_test[:, 0],
            ),
        ]

    def kernel_centerer():
        K = rbf_kernel(d.Xr, d.Xr)
        K_test = rbf_kernel(d.Xr_test, d.Xr)
        return one("KernelCenterer", pre.KernelCenterer(), K, None, K_test)

    def patch_extractor():
        return [
            _fitted_case(
                "PatchExtractor",
                fe_image.PatchExtractor(patch_size=(3, 3), max_patches=5, random_state=0),
                d.images,
                None,
                d.images_test,
            ),
            _fitted_case(
                "PatchExtractor-all",
                fe_image.PatchExtractor(patch_size=(4, 4)),
                d.images,
                None,
                d.images_test,
            ),
        ]

    def column_transformer():
        X = np.column_stack([d.Xr, d.Xcat[:, 0]])
        X_t = np.column_stack([d.Xr_test, d.Xcat_test[:, 0]])
        ct = compose.ColumnTransformer(
            [
                ("num", pre.StandardScaler(), [0, 1, 2]),
                ("cat", pre.OneHotEncoder(handle_unknown="ignore", sparse_output=False), [5]),
                ("drop", "drop", [3]),
            ],
            remainder="passthrough",
        )
        ct2 = compose.ColumnTransformer(
            [
                ("scaled", pre.MinMaxScaler(), slice(0, 3)),
                ("binarized", pre.Binarizer(), np.array([False, False, False, True, True])),
            ],
        )
        return [
            _fitted_case("ColumnTransformer", ct, X, None, X_t),
            _fitted_case("ColumnTransformer-selector", ct2, d.Xr, None, d.Xr_test),
        ]

    def transformed_target():
        return [
            _fitted_case(
                "TransformedTargetRegressor",
                compose.TransformedTargetRegressor(
                    regressor=LinearRegression(), transformer=pre.StandardScaler()
                ),
                d.Xr,
                d.yr,
                d.Xr_test,
            ),
            _fitted_case(
                "TransformedTargetRegressor-log",
                compose.TransformedTargetRegressor(
                    regressor=Ridge(), func=np.log, inverse_func=np.exp
                ),
                d.Xr,
                d.yr_pos,
                d.Xr_test,
            ),
        ]

    def feature_union():
        fu = FeatureUnion([("pca", PCA(n_components=2)), ("kbest", SelectKBest(k=2))])
        return one("FeatureUnion", fu, d.Xm, d.ym, d.Xm_test)

    def function_transformer():
        return [
            _fitted_case(
                "FunctionTransformer",
                pre.FunctionTransformer(func=np.log1p, inverse_func=np.expm1),
                d.Xm_pos,
                None,
                d.Xm_pos_test,
            ),
            _fitted_case(
                "FunctionTransformer-identity", pre.FunctionTransformer(), d.Xm, None, d.Xm_test
            ),
        ]

    def pipeline():
        return [
            _fitted_case(
                "Pipeline",
                Pipeline([("scaler", pre.StandardScaler()), ("clf", LogisticRegression())]),
                d.Xm,
                d.ym_str,
                d.Xm_test,
            ),
            _fitted_case(
                "Pipeline-pca-ridge",
                Pipeline([("pca", PCA(n_components=3)), ("ridge", Ridge())]),
                d.Xr,
                d.yr,
                d.Xr_test,
            ),
            _fitted_case(
                "Pipeline-make_pipeline-svc",
                __import__("sklearn.pipeline", fromlist=["make_pipeline"]).make_pipeline(
                    pre.MinMaxScaler(), SVC(probability=True, random_state=0)
                ),
                d.Xb,
                d.yb,
                d.Xb_test,
            ),
        ]

    def search(cls, name, **kw):
        return [
            _fitted_case(
                name,
                cls(SVC(), **kw, cv=3),
                d.Xm,
                d.ym_str,
                d.Xm_test,
            ),
            _fitted_case(
                f"{name}-pipeline-regression",
                cls(
                    Pipeline([("scaler", pre.StandardScaler()), ("ridge", Ridge())]),
                    **{k: {"ridge__alpha": [0.1, 1.0, 10.0]} for k in kw if k.startswith("param")},
                    **{k: v for k, v in kw.items() if not k.startswith("param")},
                    cv=3,
                ),
                d.Xr,
                d.yr,
                d.Xr_test,
            ),
        ]

    def cross_decomposition(cls):
        name = cls.__name__
        kw = {} if cls is PLSSVD else {"max_iter": 100}
        cases_ = [_fitted_case(name, cls(n_components=2, **kw), d.Xr2, d.Yr2, d.Xr2_test)]
        if cls is PLSRegression:
            cases_.append(_fitted_case(f"{name}-1d", cls(n_components=2), d.Xr, d.yr, d.Xr_test))
        return cases_

    def semi(cls, **kw):
        return one(cls.__name__, _seed(cls(**kw)), d.Xm, semi_supervised_y(), d.Xm_test)

    def frozen():
        inner = LogisticRegression().fit(d.Xm, d.ym_str)
        return one("FrozenEstimator", FrozenEstimator(inner), d.Xm, d.ym_str, d.Xm_test, seed=False)

    def categorical_nb():
        return one("CategoricalNB", CategoricalNB(), d.Xcat, d.ym, d.Xcat_test)

    def encoders(cls, **kw):
        name = cls.__name__
        return [
            _fitted_case(name, cls(**kw), d.Xcat, None, d.Xcat_test),
            _fitted_case(f"{name}-strings", cls(**kw), d.Xstr, None, d.Xstr_test),
        ]

    def target_encoder():
        return [
            _fitted_case(
                "TargetEncoder", pre.TargetEncoder(cv=3, random_state=0), d.Xcat, d.yr, d.Xcat_test
            ),
            _fitted_case(
                "TargetEncoder-multiclass-strings",
                pre.TargetEncoder(cv=3, random_state=0),
                d.Xstr,
                d.ym_str,
                d.Xstr_test,
            ),
        ]

    def imputer(cls, **kw):
        name = cls.__name__
        return one(name, _seed(cls(**kw)), d.Xnan, None, d.Xnan_test)

    def lof():
        from sklearn.neighbors import LocalOutlierFactor

        return [
            _fitted_case(
                "LocalOutlierFactor",
                LocalOutlierFactor(n_neighbors=10, novelty=True),
                d.Xm,
                None,
                d.Xm_test,
            ),
            _fitted_case(
                "LocalOutlierFactor-outlier",
                LocalOutlierFactor(n_neighbors=10),
                d.Xm,
                None,
                d.Xm_test,
            ),
        ]

    def halving(cls, name, **kw):
        return one(
            name,
            cls(_lr(), **kw, cv=3, min_resources="smallest", random_state=0),
            d.Xb,
            d.yb,
            d.Xb_test,
        )

    return {
        "CountVectorizer": lambda: text(fe_text.CountVectorizer),
        "TfidfVectorizer": lambda: text(fe_text.TfidfVectorizer, sublinear_tf=True),
        "HashingVectorizer": lambda: text(fe_text.HashingVectorizer, n_features=32),
        "TfidfTransformer": tfidf_transformer,
        "DictVectorizer": dict_vectorizer,
        "FeatureHasher": feature_hasher,
        "LabelEncoder": label_encoder,
        "LabelBinarizer": label_binarizer,
        "MultiLabelBinarizer": multilabel_binarizer,
        "IsotonicRegression": isotonic,
        "KernelCenterer": kernel_centerer,
        "PatchExtractor": patch_extractor,
        "ColumnTransformer": column_transformer,
        "TransformedTargetRegressor": transformed_target,
        "FeatureUnion": feature_union,
        "FunctionTransformer": function_transformer,
        "Pipeline": pipeline,
        "GridSearchCV": lambda: search(GridSearchCV, "GridSearchCV", param_grid={"C": [0.1, 1.0]}),
        "RandomizedSearchCV": lambda: search(
            RandomizedSearchCV,
            "RandomizedSearchCV",
            param_distributions={"C": [0.1, 1.0, 10.0]},
            n_iter=2,
            random_state=0,
        ),
        "HalvingGridSearchCV": lambda: halving(
            HalvingGridSearchCV, "HalvingGridSearchCV", param_grid={"C": [0.1, 1.0, 10.0]}
        ),
        "HalvingRandomSearchCV": lambda: halving(
            HalvingRandomSearchCV,
            "HalvingRandomSearchCV",
            param_distributions={"C": [0.1, 1.0, 10.0]},
            n_candidates=3,
        ),
        "CCA": lambda: cross_decomposition(CCA),
        "PLSCanonical": lambda: cross_decomposition(PLSCanonical),
        "PLSRegression": lambda: cross_decomposition(PLSRegression),
        "PLSSVD": lambda: cross_decomposition(PLSSVD),
        "LabelPropagation": lambda: semi(LabelPropagation, max_iter=100),
        "LabelSpreading": lambda: semi(LabelSpreading, max_iter=100),
        "SelfTrainingClassifier": lambda: semi(SelfTrainingClassifier, estimator=_lr(), max_iter=5),
        "FrozenEstimator": frozen,
        "CategoricalNB": categorical_nb,
        "OneHotEncoder": lambda: encoders(pre.OneHotEncoder, handle_unknown="ignore"),
        "OrdinalEncoder": lambda: encoders(
            pre.OrdinalEncoder, handle_unknown="use_encoded_value", unknown_value=-1
        ),
        "TargetEncoder": target_encoder,
        "SimpleImputer": lambda: imputer(SimpleImputer, add_indicator=True),
        "KNNImputer": lambda: imputer(KNNImputer, n_neighbors=3),
        "IterativeImputer": lambda: imputer(IterativeImputer, max_iter=5),
        "MissingIndicator": lambda: imputer(MissingIndicator),
        "LocalOutlierFactor": lof,
    }


# --------------------------------------------------------------------------------------
# extra cases that matter in practice
# --------------------------------------------------------------------------------------


def _extras(d: _Data) -> list[Case]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import (
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        SGDClassifier,
    )
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.neighbors import (
        KernelDensity,
        KNeighborsClassifier,
        KNeighborsRegressor,
        NearestNeighbors,
    )
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler
    from sklearn.svm import SVC, SVR, LinearSVC
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    c = _fitted_case
    out = [
        c(
            "RandomForestClassifier-10trees",
            RandomForestClassifier(n_estimators=10, random_state=0),
            d.Xm,
            d.ym_str,
            d.Xm_test,
        ),
        c(
            "RandomForestRegressor-10trees",
            RandomForestRegressor(n_estimators=10, random_state=0),
            d.Xr,
            d.yr,
            d.Xr_test,
        ),
        c(
            "GradientBoostingClassifier-binary-30",
            GradientBoostingClassifier(n_estimators=30, random_state=0),
            d.Xb,
            d.yb,
            d.Xb_test,
        ),
        c(
            "GradientBoostingRegressor-huber-subsample",
            GradientBoostingRegressor(n_estimators=20, loss="huber", subsample=0.8, random_state=0),
            d.Xr,
            d.yr,
            d.Xr_test,
        ),
        c(
            "Pipeline-StandardScaler-LogisticRegression",
            Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]),
            d.Xb,
            d.yb,
            d.Xb_test,
        ),
        c(
            "KNeighborsClassifier-kd_tree",
            KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree"),
            d.Xm,
            d.ym_str,
            d.Xm_test,
        ),
        c(
            "KNeighborsClassifier-ball_tree",
            KNeighborsClassifier(n_neighbors=3, algorithm="ball_tree"),
            d.Xm,
            d.ym_str,
            d.Xm_test,
        ),
        c(
            "KNeighborsRegressor-ball_tree-distance",
            KNeighborsRegressor(n_neighbors=4, algorithm="ball_tree", weights="distance"),
            d.Xr,
            d.yr,
            d.Xr_test,
        ),
        c(
            "NearestNeighbors-ball_tree-manhattan",
            NearestNeighbors(n_neighbors=3, algorithm="ball_tree", metric="manhattan"),
            d.Xm,
            None,
            d.Xm_test,
        ),
        c(
            "KernelDensity-ball_tree",
            KernelDensity(algorithm="ball_tree", bandwidth=0.8),
            d.Xm,
            None,
            d.Xm_test,
        ),
        c("SVC-probability", SVC(probability=True, random_state=0), d.Xm, d.ym_str, d.Xm_test),
        c("SVC-precomputed", SVC(kernel="precomputed"), d.Xb @ d.Xb.T, d.yb, d.Xb_test @ d.Xb.T),
        c(
            "LogisticRegression-liblinear-ovr",
            LogisticRegression(solver="liblinear"),
            d.Xb,
            d.yb,
            d.Xb_test,
        ),
        c(
            "DummyClassifier-stratified",
            DummyClassifier(strategy="stratified", random_state=0),
            d.Xm,
            d.ym_str,
            d.Xm_test,
        ),
        c(
            "DecisionTreeClassifier-entropy-depth3",
            DecisionTreeClassifier(criterion="entropy", max_depth=3, random_state=0),
            d.Xm,
            d.ym,
            d.Xm_test,
        ),
        c(
            "ExtraTreesClassifier-oob",
            ExtraTreesClassifier(n_estimators=8, bootstrap=True, oob_score=True, random_state=0),
            d.Xm,
            d.ym_str,
            d.Xm_test,
        ),
        c(
            "IsolationForest-contamination",
            IsolationForest(n_estimators=10, contamination=0.1, random_state=0),
            d.Xm,
            None,
            d.Xm_test,
        ),
        # multi-output regression
        c("Ridge-multioutput", Ridge(), d.Xr2, d.Yr2, d.Xr2_test),
        c("LinearRegression-multioutput", LinearRegression(), d.Xr2, d.Yr2, d.Xr2_test),
        c(
            "DecisionTreeRegressor-multioutput",
            DecisionTreeRegressor(max_depth=4, random_state=0),
            d.Xr2,
            d.Yr2,
            d.Xr2_test,
        ),
        c(
            "RandomForestRegressor-multioutput",
            RandomForestRegressor(n_estimators=5, random_state=0),
            d.Xr2,
            d.Yr2,
            d.Xr2_test,
        ),
        c(
            "KNeighborsRegressor-multioutput",
            KNeighborsRegressor(n_neighbors=3),
            d.Xr2,
            d.Yr2,
            d.Xr2_test,
        ),
        c(
            "MLPRegressor-multioutput",
            MLPRegressor(hidden_layer_sizes=(6,), max_iter=50, random_state=0),
            d.Xr2,
            d.Yr2,
            d.Xr2_test,
        ),
        # multilabel classification with natively multi-output classifiers
        c(
            "DecisionTreeClassifier-multilabel",
            DecisionTreeClassifier(max_depth=4, random_state=0),
            d.Xml,
            d.Yml,
            d.Xml_test,
        ),
        c(
            "KNeighborsClassifier-multilabel",
            KNeighborsClassifier(n_neighbors=3),
            d.Xml,
            d.Yml,
            d.Xml_test,
        ),
        # sparse input
        c("LogisticRegression-sparse", LogisticRegression(), d.Xb_sp, d.yb, d.Xb_sp_test),
        c("SVC-sparse", SVC(), d.Xb_sp, d.yb, d.Xb_sp_test),
        c("LinearSVC-sparse", LinearSVC(random_state=0), d.Xb_sp, d.yb, d.Xb_sp_test),
        c(
            "SGDClassifier-sparse",
            SGDClassifier(max_iter=20, random_state=0),
            d.Xb_sp,
            d.yb,
            d.Xb_sp_test,
        ),
        c(
            "DecisionTreeClassifier-sparse",
            DecisionTreeClassifier(random_state=0),
            d.Xb_sp,
            d.yb,
            d.Xb_sp_test,
        ),
        c(
            "RandomForestClassifier-sparse",
            RandomForestClassifier(n_estimators=5, random_state=0),
            d.Xb_sp,
            d.yb,
            d.Xb_sp_test,
        ),
        c(
            "KNeighborsClassifier-sparse",
            KNeighborsClassifier(n_neighbors=3),
            d.Xb_sp,
            d.yb,
            d.Xb_sp_test,
        ),
        c("Ridge-sparse", Ridge(), d.Xr_sp, d.yr, d.Xr_sp_test),
        c("Lasso-sparse", Lasso(alpha=0.5), d.Xr_sp, d.yr, d.Xr_sp_test),
        c("SVR-sparse", SVR(), d.Xr_sp, d.yr, d.Xr_sp_test),
        c(
            "GradientBoostingRegressor-sparse",
            GradientBoostingRegressor(n_estimators=5, random_state=0),
            d.Xr_sp,
            d.yr,
            d.Xr_sp_test,
        ),
        c("MultinomialNB-sparse", MultinomialNB(), d.Xm_pos_sp, d.ym_str, d.Xm_pos_sp_test),
        c(
            "TruncatedSVD-sparse",
            TruncatedSVD(n_components=2, random_state=0),
            d.Xr_sp,
            None,
            d.Xr_sp_test,
        ),
        c("MaxAbsScaler-sparse", MaxAbsScaler(), d.Xr_sp, None, d.Xr_sp_test),
        c("StandardScaler-sparse", StandardScaler(with_mean=False), d.Xr_sp, None, d.Xr_sp_test),
        c(
            "KMeans-sparse",
            KMeans(n_clusters=3, n_init=1, random_state=0),
            d.Xr_sp,
            None,
            d.Xr_sp_test,
        ),
        c("NearestNeighbors-sparse", NearestNeighbors(n_neighbors=3), d.Xr_sp, None, d.Xr_sp_test),
    ]

    # HistGradientBoosting with missing values and a categorical feature
    rng = np.random.RandomState(42)
    cat = rng.randint(0, 4, size=N_TRAIN + N_TEST).astype(float)
    X = np.column_stack([np.vstack([d.Xm, d.Xm_test]), cat])
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X_tr, X_te = X[:N_TRAIN], X[N_TRAIN:]
    y_mc = np.concatenate([d.ym_str, d.ym_str_test])[:N_TRAIN]
    out.append(
        c(
            "HistGradientBoostingClassifier-nan-categorical",
            HistGradientBoostingClassifier(
                max_iter=15, min_samples_leaf=5, categorical_features=[N_FEATURES], random_state=0
            ),
            X_tr,
            y_mc,
            X_te,
        )
    )
    Xr = np.column_stack([np.vstack([d.Xr, d.Xr_test]), cat])
    Xr[rng.rand(*Xr.shape) < 0.1] = np.nan
    out.append(
        c(
            "HistGradientBoostingRegressor-nan-categorical",
            HistGradientBoostingRegressor(
                max_iter=15, min_samples_leaf=5, categorical_features=[N_FEATURES], random_state=0
            ),
            Xr[:N_TRAIN],
            d.yr,
            Xr[N_TRAIN:],
        )
    )
    out.append(
        c(
            "HistGradientBoostingClassifier-early-stopping",
            HistGradientBoostingClassifier(
                max_iter=20,
                early_stopping=True,
                validation_fraction=0.2,
                n_iter_no_change=3,
                min_samples_leaf=5,
                random_state=0,
            ),
            d.Xb,
            d.yb,
            d.Xb_test,
        )
    )
    return out


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------


def _estimator_classes() -> dict[str, type]:
    return dict(all_estimators())


@functools.lru_cache(maxsize=1)
def cases() -> list[Case]:
    """Build and fit every case (deterministic). Built once per test session and shared."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return _cases()


def _cases() -> list[Case]:
    classes = _estimator_classes()
    d = _Data()
    params = _params()
    special = _special(d)
    result: list[Case] = []
    failures = {}
    for name, cls in sorted(classes.items()):
        if name in SKIPPED:
            continue
        try:
            if name in special:
                built = special[name]()
            else:
                built = _generic(name, cls, params.get(name, dict), d)
        except Exception as exc:  # pragma: no cover - reported by the test
            failures[name] = f"{type(exc).__name__}: {exc}"
            continue
        result.extend(built)
    if failures:
        raise RuntimeError("estimator zoo: could not build " + repr(failures))
    result.extend(_extras(d))
    names = [c.name for c in result]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise RuntimeError(f"estimator zoo: duplicate case names {sorted(dupes)}")
    return result


def covered_names(case_list) -> set[str]:
    """Estimator names (all_estimators() spelling) covered by the given cases."""
    return {c.name.split("-")[0] for c in case_list}
