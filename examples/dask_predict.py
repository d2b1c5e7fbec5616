"""Score a Parquet dataset on a Dask cluster with a model from the registry.

    pip install skvault[dask] scikit-learn pyarrow
    python examples/dask_predict.py

Trains a forest, registers it (a folder registry here; `s3://bucket/prefix` works the same),
points the alias "champion" at it, and scores a Parquet dataset on a LocalCluster of two
worker processes with `skvault.dask.predict`. The task graph carries the model's reference
(registry, name, version and digest), not the model; each worker fetches the version into its
local cache once, opens it once and scores with native inference, without scikit-learn.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import skvault
import skvault.dask
import skvault.native


def main() -> None:
    X, y = make_classification(n_samples=20_000, n_features=8, random_state=0)
    names = [f"f{i}" for i in range(8)]
    model = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=0)
    model.fit(pd.DataFrame(X, columns=names), y)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SKVAULT_CACHE_DIR"] = str(tmp / "cache")  # workers inherit it
        registry = skvault.Registry(tmp / "registry")
        version = registry.register(model, "fraud")
        registry.set_alias("fraud", "champion", version)

        data = tmp / "transactions"
        data.mkdir()
        rng = np.random.default_rng(1)
        for i in range(4):
            part = pd.DataFrame(rng.normal(size=(25_000, 8)), columns=names)
            part.insert(0, "id", np.arange(25_000) + 25_000 * i)
            part.to_parquet(data / f"part-{i}.parquet", index=False)

        native = skvault.native.load(tmp / "registry", name="fraud", alias="champion")
        print(f"model {native.source}, digest {native.digest[:16]}..., "
              f"pickled as {len(pickle.dumps(native))} bytes")

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            ddf = dd.read_parquet(data)
            scored = skvault.dask.predict(ddf, native, method="predict_proba", keep_columns=["id"])
            scored, inputs = client.compute([scored, ddf[names]], sync=True)
        print(scored.head().to_string(index=False))
        same = np.array_equal(scored[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(inputs))
        print(f"{len(scored):,} rows scored on 2 workers; equal to scikit-learn's predict_proba: {same}")


if __name__ == "__main__":
    main()
