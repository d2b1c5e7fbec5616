"""A load makes each short text once and shares it: a forest's trees repeat their attribute
names and parameter values hundreds of times, and pickle's memo shares the strings it reads.
Texts past the length limit, or met after the count limit, are made one by one. Whatever the
path, every text loads equal to the one saved."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import skvault


@pytest.mark.parametrize("mmap", [False, True])
def test_a_forests_trees_share_their_attribute_names_and_parameter_texts(tmp_path, mmap) -> None:
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    forest = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(X, y)
    path = tmp_path / "forest.skv"
    skvault.dump(forest, path)
    back = skvault.load(path, mmap=mmap)
    first, last = back.estimators_[0], back.estimators_[-1]
    assert first.criterion == "gini" and first.criterion is last.criterion
    names = {k: k for k in vars(first)}
    assert all(names[k] is k for k in vars(last)), "attribute names made once per load"
    np.testing.assert_array_equal(back.predict_proba(X), forest.predict_proba(X))


def test_long_texts_and_texts_past_the_count_limit_load_equal(tmp_path) -> None:
    long = "x" * 41  # one past the shared length
    data = {
        "long": [long, long + "y", long],
        # 6,000 distinct keys (past the 4,096 kept) and 7 values repeated among them.
        "many": {f"key {i}": f"value {i % 7}" for i in range(6000)},
        "empty and unicode": ["", "é ü 日本", ""],
    }
    path = tmp_path / "texts.skv"
    skvault.dump(data, path)
    back = skvault.load(path)
    assert back == data
    assert list(back["many"]) == list(data["many"])
