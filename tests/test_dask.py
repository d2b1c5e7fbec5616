"""skvault.dask on a real distributed.LocalCluster (two worker processes, loopback), scoring a
Parquet dataset read from the S3 test server with models referenced from an S3 registry.

Every wait on the cluster is bounded (TIMEOUT), so a hung worker fails the test instead of
the run; the module takes some 20 seconds, most of it the cluster's start.
"""

from __future__ import annotations

import sys
import uuid

import cloudpickle
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.fs as pafs  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from registry_backends import BUCKET  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

import skvault  # noqa: E402
import skvault.dask  # noqa: E402
import skvault.native  # noqa: E402

TIMEOUT = 60
FEATURES = [f"f{i}" for i in range(20)]
# The helpers below run on the workers: shipped by value, the workers never import this
# module (and so never import scikit-learn).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _options(server) -> dict[str, str]:
    e = server.env
    return {
        "aws_endpoint": e["AWS_ENDPOINT_URL"],
        "aws_access_key_id": e["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": e["AWS_SECRET_ACCESS_KEY"],
        "aws_region": e["AWS_REGION"],
        "aws_allow_http": e["AWS_ALLOW_HTTP"],
    }


def _filesystem(server) -> pafs.S3FileSystem:
    e = server.env
    return pafs.S3FileSystem(
        endpoint_override=e["AWS_ENDPOINT_URL"], scheme="http", region=e["AWS_REGION"],
        access_key=e["AWS_ACCESS_KEY_ID"], secret_key=e["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="module")
def prefix():
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def dataset(s3_server, prefix):
    """Four Parquet files of 2,500 rows (20 features and an id) on the S3 test server."""
    fs = _filesystem(s3_server)
    rng = np.random.default_rng(0)
    for i in range(4):
        frame = pd.DataFrame(rng.normal(size=(2500, 20)), columns=FEATURES)
        frame.insert(0, "id", np.arange(2500) + 2500 * i)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       f"{BUCKET}/{prefix}/data/part-{i}.parquet", filesystem=fs)
    return dd.read_parquet(f"{BUCKET}/{prefix}/data/", filesystem=fs)


def _fit(n_trees: int, depth: int, seed: int) -> RandomForestClassifier:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(3000, 20)), columns=FEATURES)
    y = (X.f0 + X.f1 * X.f2 - X.f3 > 0).astype(int)
    return RandomForestClassifier(n_estimators=n_trees, max_depth=depth, random_state=seed).fit(X, y)


@pytest.fixture(scope="module")
def forests():
    return {"small": _fit(3, 6, 0), "large": _fit(120, 14, 1)}


@pytest.fixture(scope="module")
def registry(s3_server, prefix, forests):
    reg = skvault.Registry(f"s3://{BUCKET}/{prefix}/registry", storage_options=_options(s3_server))
    for name, model in forests.items():
        reg.register(model, name)
    reg.set_alias("large", "champion", 1)
    return reg


@pytest.fixture(scope="module")
def client(s3_server, tmp_path_factory):
    """Two worker processes reaching the registry through their environment, as workers on
    other machines would, with a model cache folder of their own (the driver's is another)."""
    driver_cache = tmp_path_factory.mktemp("driver-cache")
    env = {**s3_server.env, "SKVAULT_CACHE_DIR": str(tmp_path_factory.mktemp("worker-cache")),
           "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKVAULT_CACHE_DIR", str(driver_cache))
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None, env=env, timeout=TIMEOUT) as cluster, Client(cluster) as c:
            c.wait_for_workers(2, timeout=TIMEOUT)
            yield c


def _worker_state():
    import sys

    from skvault import _refs

    return {"opened": sorted(_refs._OPENED), "sklearn": "sklearn" in sys.modules}


def _load(registry, s3_server, name, **kwargs):
    return skvault.native.load(registry.uri, name=name, storage_options=_options(s3_server), **kwargs)


def test_predict_proba_on_two_worker_processes_equals_scikit_learn(client, dataset, registry, forests, s3_server):
    model = _load(registry, s3_server, "large", alias="champion")
    proba = skvault.dask.predict(dataset, model, method="predict_proba")
    assert list(proba.columns) == ["proba_0", "proba_1"] and (proba.dtypes == np.float64).all()
    inputs, got = (f.result(timeout=TIMEOUT) for f in client.compute([dataset[FEATURES], proba]))
    assert len(got) == len(inputs) == 10_000
    assert np.array_equal(got.to_numpy(), forests["large"].predict_proba(inputs))
    states = client.run(_worker_state).values()
    # Each worker process opened the pinned model once, and never imported scikit-learn.
    assert all(s == {"opened": [model.digest], "sklearn": False} for s in states), states


def test_predict_from_a_file_reference_gives_a_series_of_labels(client, dataset, forests, tmp_path):
    path = tmp_path / "small.skv"
    skvault.dump(forests["small"], path)
    labels = skvault.dask.predict(dataset, str(path), method="predict", columns="label")
    assert isinstance(labels, dd.Series) and labels.name == "label"
    inputs, got = (f.result(timeout=TIMEOUT) for f in client.compute([dataset[FEATURES], labels]))
    assert np.array_equal(got.to_numpy(), forests["small"].predict(inputs))


def test_kept_columns_stay_on_the_row_they_came_with(client, dataset, forests, tmp_path):
    # read_parquet's index restarts at 0 in every file: only row-for-row output keeps ids right.
    path = tmp_path / "small.skv"
    skvault.dump(forests["small"], path)
    scored = skvault.dask.predict(dataset, str(path), keep_columns=["id"])
    assert list(scored.columns) == ["id", "proba_0", "proba_1"]
    inputs, got = (f.result(timeout=TIMEOUT) for f in client.compute([dataset, scored]))
    assert np.array_equal(got["id"].to_numpy(), inputs["id"].to_numpy())
    assert np.array_equal(got[["proba_0", "proba_1"]].to_numpy(), forests["small"].predict_proba(inputs[FEATURES]))


def test_the_task_graph_carries_the_reference_not_the_model(dataset, registry, forests, s3_server):
    sizes = {}
    for name in ("small", "large"):
        model = _load(registry, s3_server, name)
        graph = cloudpickle.dumps(dict(skvault.dask.predict(dataset, model).__dask_graph__()))
        assert model.digest.encode() in graph
        sizes[name] = (len(graph), len(registry.fetch(name, 1)))
    (small_graph, small_file), (large_graph, large_file) = sizes["small"], sizes["large"]
    assert large_file > 50 * small_file
    # Same names' lengths, same digests' lengths: the same number of bytes, whatever the model.
    assert abs(large_graph - small_graph) <= 16 and large_graph < 10_000, sizes


def test_a_tampered_file_in_the_registry_is_refused_on_the_workers(client, dataset, registry, s3_server, prefix):
    registry.register(_fit(5, 6, 9), "tampered")
    model = _load(registry, s3_server, "tampered")  # the driver fetched it before the tampering
    info = registry.info("tampered")
    victim = max(info["file"]["blobs"], key=lambda d: _blob_file(s3_server, prefix, d).stat().st_size)
    path = _blob_file(s3_server, prefix, victim)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    future = client.compute(skvault.dask.predict(dataset, model))
    with pytest.raises(skvault.ModelReferenceError, match=r"tampered@1.*digest mismatch") as e:
        future.result(timeout=TIMEOUT)
    assert e.value.expected == model.digest


def _blob_file(server, prefix, digest):
    # s3s-fs keeps each object as a plain file under its data folder.
    return server.data / BUCKET / prefix / "registry" / "blobs" / digest


def test_bad_arguments_are_refused_before_anything_runs(dataset, forests, tmp_path):
    path = tmp_path / "small.skv"
    skvault.dump(forests["small"], path)
    with pytest.raises(AttributeError, match="no method 'transform'"):
        skvault.dask.predict(dataset, str(path), method="transform")
    with pytest.raises(ValueError, match=r"no column\(s\) \['f19'\]"):
        skvault.dask.predict(dataset.drop(columns=["f19"]), str(path))
    with pytest.raises(ValueError, match="gives 2 column"):
        skvault.dask.predict(dataset, str(path), columns=["only"])
    with pytest.raises(ValueError, match=r"keep_columns names column\(s\) \['nope'\]"):
        skvault.dask.predict(dataset, str(path), keep_columns=["nope"])
    with pytest.raises(ValueError, match="also kept input columns"):
        skvault.dask.predict(dataset, str(path), method="predict", columns="id", keep_columns=True)
    with pytest.raises(TypeError, match="NativeModel or the path"):
        skvault.dask.predict(dataset, forests["small"])


def test_a_partition_is_scored_in_slices_equal_to_scikit_learn(tmp_path, monkeypatch):
    """A partition larger than `SLICE_ROWS` is scored slice by slice into one output (so the
    native layer's copy of its input stays one slice): the result is the whole partition's,
    row for row, with `keep_columns` too."""
    import dask

    monkeypatch.setattr(skvault.dask, "SLICE_ROWS", 700)
    rng = np.random.RandomState(3)
    X = pd.DataFrame(rng.rand(5000, 4), columns=["a", "b", "c", "d"])
    y = (X["a"] + X["b"] > 1).astype(int)
    m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path / "m.skv"
    skvault.dump(m, path)
    ddf = dd.from_pandas(X, npartitions=2)
    with dask.config.set(scheduler="synchronous"):
        proba = skvault.dask.predict(ddf, skvault.native.load(path)).compute()
        labels = skvault.dask.predict(ddf, path, method="predict").compute()
        kept = skvault.dask.predict(ddf, path, keep_columns=["a"]).compute()
    np.testing.assert_array_equal(proba.to_numpy(), m.predict_proba(X))
    np.testing.assert_array_equal(labels.to_numpy(), m.predict(X))
    np.testing.assert_array_equal(kept["a"].to_numpy(), X["a"].to_numpy())
    np.testing.assert_array_equal(kept.iloc[:, 1:].to_numpy(), m.predict_proba(X))
