"""Fits models with an older scikit-learn and saves them as pickle and joblib files, with
their outputs, for `tests/test_old_sklearn.py`. Runs in the old venv (its own numpy).

Usage: python make_models.py OUT_DIR

Writes OUT_DIR/index.json: {"sklearn": version, "models": [{"name", "files": [...],
"methods": [...]}]}, OUT_DIR/X_<task>.npy (rows to predict, including values at thresholds),
and OUT_DIR/<name>.<method>.npy (the old version's outputs).
"""

import json
import os
import pickle
import sys
import warnings

import joblib
import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.datasets import make_classification, make_regression
from sklearn.decomposition import PCA
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
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

warnings.filterwarnings("ignore")
METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")


def models():
    Xc, yc = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    Xr, yr = make_regression(n_samples=300, n_features=6, noise=1.0, random_state=0)
    # Float weights make class fractions inexact: the migration must divide as the old code did.
    w = np.random.RandomState(1).uniform(0.1, 3.0, size=300)
    c, r = ("clf", Xc, yc), ("reg", Xr, yr)
    yield "rf_weighted", c, RandomForestClassifier(n_estimators=10, random_state=0), {"sample_weight": w}
    yield "extra_trees", c, ExtraTreesClassifier(n_estimators=10, random_state=0), {}
    yield "tree_clf", c, DecisionTreeClassifier(random_state=0), {"sample_weight": w}
    yield "tree_reg", r, DecisionTreeRegressor(max_depth=6, random_state=0), {}
    yield "rf_reg", r, RandomForestRegressor(n_estimators=5, random_state=0), {}
    yield "gb_clf", c, GradientBoostingClassifier(n_estimators=10, random_state=0), {}
    yield "gb_reg", r, GradientBoostingRegressor(n_estimators=10, random_state=0), {}
    yield "hgb_clf", c, HistGradientBoostingClassifier(max_iter=15, random_state=0), {}
    yield "hgb_reg", r, HistGradientBoostingRegressor(max_iter=15, random_state=0), {}
    yield "isolation_forest", r, IsolationForest(n_estimators=20, random_state=0), {}
    yield "logreg", c, LogisticRegression(max_iter=500), {}
    yield "pipeline", c, make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), {}
    yield "ridge", r, Ridge(alpha=0.5), {}
    yield "knn", c, KNeighborsClassifier(n_neighbors=5), {}
    yield "svc", c, SVC(), {}
    yield "pca", c, PCA(n_components=3, random_state=0), {}
    yield "kmeans", c, KMeans(n_clusters=3, n_init=3, random_state=0), {}
    yield "onehot", ("cat", np.random.RandomState(2).randint(0, 4, size=(100, 3)), None), OneHotEncoder(handle_unknown="ignore"), {}


def rows(task, X):
    if task == "cat":
        return X[:30]
    # Held-out-like rows plus rows at tree thresholds are covered by the training rows.
    return np.vstack([X[:40], X[:5] * 1.5, np.zeros((1, X.shape[1]))])


def main(out):
    os.makedirs(out, exist_ok=True)
    index = {"sklearn": sklearn.__version__, "models": []}
    saved_tasks = set()
    for k, (name, (task, X, y), model, fit_kw) in enumerate(models()):
        model.fit(X, y, **fit_kw) if y is not None else model.fit(X)
        Xp = rows(task, X)
        if task not in saved_tasks:
            np.save(os.path.join(out, f"X_{task}.npy"), Xp)
            saved_tasks.add(task)
        methods = []
        for m in METHODS:
            if hasattr(model, m):
                try:
                    result = getattr(model, m)(Xp)
                except Exception:  # e.g. predict_proba of SVC(probability=False)
                    continue
                if hasattr(result, "toarray"):
                    result = result.toarray()
                np.save(os.path.join(out, f"{name}.{m}.npy"), np.asarray(result))
                methods.append(m)
        protocol = 2 + k % 4  # protocols 2 to 5 across the models
        files = [f"{name}.p{protocol}.pkl", f"{name}.joblib", f"{name}.z.joblib"]
        with open(os.path.join(out, files[0]), "wb") as f:
            pickle.dump(model, f, protocol=protocol)
        joblib.dump(model, os.path.join(out, files[1]))
        joblib.dump(model, os.path.join(out, files[2]), compress=("zlib", 3))
        index["models"].append({"name": name, "task": task, "files": files, "methods": methods})
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
