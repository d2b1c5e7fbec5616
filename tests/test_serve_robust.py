"""`skvault serve` when things go wrong: every bad request gets a 4xx JSON error naming
the problem (never a 500 or a crash); bearer tokens; body, row, concurrency and time
limits; hot reload under load (registry aliases and replaced files, with a broken version
that must never serve); draining shutdown on SIGTERM; two processes on one port.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.compose import make_column_transformer

import skvault
from serve_helpers import HeldRequest, Server, ServerFailed, in_flight, predictions

COLUMNS = ["f0", "f1", "f2"]


def frame(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(n, 3)), columns=COLUMNS)


def split(df: pd.DataFrame) -> dict:
    return {"dataframe_split": {"columns": list(df.columns), "data": df.to_numpy().tolist()}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-robust")
    X = frame(400, 0)
    y = (X.f0 > 0).astype(int)
    models = {
        "v1": RandomForestClassifier(n_estimators=30, random_state=1).fit(X, y),
        "v2": RandomForestClassifier(n_estimators=30, random_state=2, max_depth=3).fit(X, 1 - y),
        "linear": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "big": RandomForestClassifier(n_estimators=200, random_state=3).fit(X, y),
    }
    text = pd.DataFrame({"city": ["a", "b", "c", "a"] * 25, "x": np.arange(100.0)})
    strict = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="error"), ["city"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(text, (text.city == "a").astype(int))
    for name, model in models.items():
        skvault.dump(model, tmp / f"{name}.skv")
    skvault.dump(strict, tmp / "strict.skv")
    return tmp, models


@pytest.fixture(scope="module")
def server(files):
    tmp, _ = files
    with Server(str(tmp / "linear.skv"), str(tmp / "strict.skv"), "--max-rows", "1000", "--max-body-bytes", "200000") as s:
        yield s
        assert s.stop() == 0


def err(server, path, body, ctype="application/json", **headers):
    h = {"Content-Type": ctype, **headers} if ctype else dict(headers)
    status, hdrs, raw = server.request("POST", path, body, h)
    assert 400 <= status < 500, (status, raw)
    assert hdrs["content-type"] == "application/json"
    doc = json.loads(raw)
    assert set(doc) == {"error_code", "message"}, doc
    return status, doc["error_code"], doc["message"]


P = "/v1/models/linear/predict"


def test_malformed_json(server):
    status, code, message = err(server, P, '{"dataframe_split": {"columns": ["f0"')
    assert status == 400 and "json" in code.lower() or "JSON" in message


def test_no_known_request_shape(server):
    status, code, message = err(server, P, json.dumps({"rows": [[1, 2, 3]]}))
    assert status == 400
    for key in ["dataframe_split", "dataframe_records", "inputs", "instances"]:
        assert key in message


def test_missing_column_is_named(server):
    status, code, message = err(server, P, json.dumps({"dataframe_split": {"columns": ["f0", "f1"], "data": [[1, 2]]}}))
    assert status == 400 and "f2" in message


def test_text_where_a_number_is_expected_is_named(server):
    doc = {"dataframe_split": {"columns": COLUMNS, "data": [[1, "abc", 3]]}}
    status, code, message = err(server, P, json.dumps(doc))
    assert status == 400 and "f1" in message and "abc" in message


def test_nan_where_the_model_refuses_it(server):
    doc = {"dataframe_split": {"columns": COLUMNS, "data": [[1, None, 3]]}}
    status, code, message = err(server, P, json.dumps(doc))
    assert "NaN" in message


def test_unknown_category_under_handle_unknown_error(server):
    doc = {"dataframe_split": {"columns": ["city", "x"], "data": [["zz", 1.0]]}}
    status, code, message = err(server, "/v1/models/strict/predict", json.dumps(doc))
    assert "zz" in message and "city" in message


def test_unknown_model(server):
    status, code, message = err(server, "/v1/models/nope/predict", json.dumps(split(frame(1, 0))))
    assert status == 404 and code == "unknown_model" and "linear" in message


def test_unsupported_and_missing_media_type(server):
    status, code, message = err(server, P, b"<xml/>", "application/xml")
    assert status == 415 and "application/xml" in message
    status, code, message = err(server, P, json.dumps(split(frame(1, 0))), None)
    assert status == 415


def test_unknown_or_missing_method(server):
    status, code, message = err(server, P + "?method=fit", json.dumps(split(frame(1, 0))))
    assert status == 400 and "fit" in message and "predict_proba" in message
    status, code, message = err(server, P + "?method=transform", json.dumps(split(frame(1, 0))))
    assert status == 400 and "transform" in message


def test_unknown_query_parameter(server):
    status, code, message = err(server, P + "?methd=predict", json.dumps(split(frame(1, 0))))
    assert status == 400 and "methd" in message


def test_body_too_large(server):
    status, code, message = err(server, P, json.dumps(split(frame(5000, 0))))
    assert status == 413


def test_too_many_rows(server):
    doc = {"inputs": [[1, 2, 3]] * 1001}
    status, code, message = err(server, P, json.dumps(doc))
    assert status == 413 and "1000" in message


def test_no_rows(server):
    status, code, message = err(server, P, json.dumps({"dataframe_split": {"columns": COLUMNS, "data": []}}))
    assert status == 400


def test_unknown_path_and_wrong_http_method(server):
    status, hdrs, raw = server.request("GET", "/nothing")
    assert status == 404 and json.loads(raw)["error_code"] == "not_found"
    status, hdrs, raw = server.request("GET", P)
    assert status == 405 and json.loads(raw)["error_code"] == "method_not_allowed"


def test_bad_requests_never_kill_the_server(server, files):
    _, models = files
    garbage = [b"", b"\x00\xff" * 100, b"[]", b"null", b'{"inputs": 5}', b'{"inputs": [[[1]]]}',
               b'{"instances": [1, 2]}', b'{"dataframe_split": {"columns": [1], "data": [[1]]}}',
               b'{"dataframe_records": [5]}', b'{"inputs": {"f0": [1], "f1": [1, 2], "f2": [1]}}']
    for body in garbage:
        status, _, raw = server.request("POST", P, body, {"Content-Type": "application/json"})
        assert 400 <= status < 500, (body, status, raw)
    for ctype in ["text/csv", "application/vnd.apache.parquet"]:
        status, _, raw = server.request("POST", P, b"\x00PAR1garbage", {"Content-Type": ctype})
        assert 400 <= status < 500, (ctype, status, raw)
    X = frame(3, 9)
    status, doc = server.post_json(P, split(X))
    assert status == 200 and predictions(doc) == models["linear"].predict(X).tolist()


# --- tokens -------------------------------------------------------------------------------

def test_bearer_token(files, tmp_path):
    tmp, models = files
    token = "s3cret-token-0123456789"
    path = tmp_path / "tokens"
    path.write_text(f"# rotated weekly\nold-token-abcdefghijk\n{token}\n")
    path.chmod(0o600)
    with Server(str(tmp / "linear.skv"), "--token-file", str(path)) as s:
        X = frame(2, 1)
        body = json.dumps(split(X))
        status, hdrs, raw = s.request("POST", P, body, {"Content-Type": "application/json"})
        assert status == 401 and hdrs["www-authenticate"] == "Bearer" and json.loads(raw)["error_code"] == "unauthorized"
        status, _, _ = s.request("POST", P, body, {"Content-Type": "application/json", "Authorization": "Bearer wrong-token-000000000"})
        assert status == 401
        for t in [token, "old-token-abcdefghijk"]:
            status, _, raw = s.request("POST", P, body, {"Content-Type": "application/json", "Authorization": f"Bearer {t}"})
            assert status == 200 and predictions(json.loads(raw)) == models["linear"].predict(X).tolist()
        assert s.request("GET", "/v1/models")[0] == 401
        assert s.request("GET", "/metrics")[0] == 401
        assert s.request("GET", "/health")[0] == 200
        assert s.request("GET", "/ready")[0] == 200
        assert s.stop() == 0


@pytest.mark.parametrize("mode,content,expected", [
    (0o644, "a-long-enough-token-1234\n", "readable"),
    (0o600, "# only a comment\n", "no token"),
    (0o600, "short\n", "shorter than 16"),
])
def test_bad_token_files_refuse_to_start(files, tmp_path, mode, content, expected):
    tmp, _ = files
    path = tmp_path / "tokens"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(ServerFailed) as info:
        Server(str(tmp / "linear.skv"), "--token-file", str(path))
    assert info.value.code == 2 and expected in info.value.stderr and str(path) in info.value.stderr


def test_start_up_errors_name_the_problem(files, tmp_path):
    tmp, _ = files
    broken = tmp_path / "broken.skv"
    broken.write_bytes((tmp / "linear.skv").read_bytes()[:-10])
    for args, expected in [
        ([str(tmp_path / "missing.skv")], "missing.skv"),
        ([str(broken)], "broken"),
        ([str(tmp / "linear.skv"), f"linear={tmp / 'v1.skv'}"], "two models are named"),
        (["--registry", str(tmp_path / "no-registry"), "fraud@champion"], "no registry"),
    ]:
        with pytest.raises(ServerFailed) as info:
            Server(*args)
        assert info.value.code == 2 and expected in info.value.stderr, info.value.stderr


# --- limits -------------------------------------------------------------------------------

def test_timeout_answers_503(files):
    tmp, _ = files
    with Server(str(tmp / "big.skv"), "--timeout", "1ms", "--log-format", "off") as s:
        body = json.dumps(split(frame(20000, 3)))
        status, hdrs, raw = s.request("POST", "/v1/models/big/predict", body, {"Content-Type": "application/json"})
        assert status == 503 and json.loads(raw)["error_code"] == "timeout"
        assert s.stop() == 0


def test_concurrency_limit_sheds_load_with_503(files):
    tmp, models = files
    X = frame(200, 4)
    with Server(str(tmp / "big.skv"), "--max-concurrency", "1", "--log-format", "off") as s:
        first = HeldRequest(s, "/v1/models/big/predict", json.dumps(split(X)).encode())
        try:
            s.wait_for(lambda: in_flight(s) >= 1, what="the first request in flight")
            # The first request holds the only permit until its body is complete.
            status, hdrs, raw = s.request(
                "POST", "/v1/models/big/predict", json.dumps(split(frame(1, 5))), {"Content-Type": "application/json"}
            )
            assert status == 503, raw
            assert json.loads(raw)["error_code"] == "overloaded" and hdrs["retry-after"] == "1"
            status, raw = first.finish()
            assert status == 200, raw
            assert predictions(json.loads(raw)) == models["big"].predict(X).tolist()
        finally:
            first.close()
        # With the permit back, the next request is answered.
        status, _, raw = s.request("POST", "/v1/models/big/predict", json.dumps(split(X)), {"Content-Type": "application/json"})
        assert status == 200, raw
        assert s.stop() == 0


# --- shutdown -----------------------------------------------------------------------------

def test_sigterm_drains_requests_in_flight(files):
    tmp, models = files
    X = frame(2000, 5)
    expected = models["big"].predict(X).tolist()
    with Server(str(tmp / "big.skv"), "--threads", "2") as s:
        body = json.dumps(split(X)).encode()
        held = [HeldRequest(s, "/v1/models/big/predict", body) for _ in range(3)]
        try:
            s.wait_for(lambda: in_flight(s) >= 3, what="three requests in flight")
            s.proc.send_signal(signal.SIGTERM)
            s.wait_for(lambda: any("draining" in line for line in s.lines), what="the drain to begin")
            # New connections are refused once draining has begun ...
            with pytest.raises(OSError):
                socket.create_connection((s.host, s.port), 1).close()
            # ... while the three requests in flight are answered in full.
            for h in held:
                status, raw = h.finish()
                assert status == 200, raw
                assert predictions(json.loads(raw)) == expected
        finally:
            for h in held:
                h.close()
        assert s.stop() == 0


# --- several processes ---------------------------------------------------------------------

def test_two_processes_share_one_port_with_reuse_port(files):
    tmp, models = files
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [str(tmp / "linear.skv"), "--reuse-port", "--port", str(port)]
    with Server(*args) as a, Server(*args) as b:
        assert a.port == b.port == port
        X = frame(1, 6)
        body = json.dumps(split(X))
        for _ in range(60):
            status, _, raw = a.request("POST", P, body, {"Content-Type": "application/json"})
            assert status == 200 and predictions(json.loads(raw)) == models["linear"].predict(X).tolist()
        def count(server: Server) -> int:
            return sum(1 for line in server.lines if "/v1/models/linear/predict" in line)

        a.wait_for(lambda: count(a) + count(b) == 60, what="every request in the two logs")
        counts = [count(a), count(b)]
        assert sum(counts) == 60 and all(c > 0 for c in counts), counts
        assert a.stop() == 0 and b.stop() == 0
    with Server(str(tmp / "linear.skv"), "--port", str(port)) as c:
        pass_port = c.port
        with pytest.raises(ServerFailed) as info:
            Server(str(tmp / "linear.skv"), "--port", str(pass_port))
        assert info.value.code == 2 and "cannot listen" in info.value.stderr
        assert c.stop() == 0


# --- hot reload ------------------------------------------------------------------------------

def hammer(server: Server, path: str, body: str, count: int, out: list, stop: threading.Event) -> None:
    for _ in range(count):
        if stop.is_set():
            return
        status, hdrs, raw = server.request("POST", path, body, {"Content-Type": "application/json"})
        out.append((status, hdrs.get("skvault-model-digest"), raw))


def test_hot_reload_of_an_alias_under_load(backend, files):
    reg = backend.open()
    tmp, models = files
    v1 = reg.register(tmp / "v1.skv", "fraud")
    v2 = reg.register(tmp / "v2.skv", "fraud")
    v3 = reg.register(tmp / "big.skv", "fraud")
    # v3 is broken: its largest blob no longer matches its digest.
    info = reg.info("fraud", v3)
    victim = max(info["file"]["blobs"], key=lambda d: backend.file_of(f"blobs/{d}").stat().st_size)
    path = backend.file_of(f"blobs/{victim}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reg.set_alias("fraud", "champion", v1)
    X = frame(20, 7)
    body = json.dumps(split(X))
    outputs = {v: models[n].predict_proba(X).tolist() for v, n in [(v1, "v1"), (v2, "v2")]}
    assert outputs[v1] != outputs[v2]
    with Server("--registry", backend.uri, "fraud@champion", "--watch", "100ms", env=backend.child_env()) as s:
        results: list = []
        stop = threading.Event()
        # Bounded in count and time: the client stops when the test is done, at the latest
        # after 200,000 requests.
        client = threading.Thread(target=hammer, args=(s, "/v1/models/fraud/predict?method=predict_proba", body, 200_000, results, stop))
        client.start()
        try:
            s.wait_for(lambda: len(results) > 20, what="first answers")
            reg.set_alias("fraud", "champion", v2)
            s.wait_for(lambda: s.get_json("/v1/models/fraud")[1]["version"] == v2, what="the move to v2")
            seen = len(results)
            s.wait_for(lambda: len(results) > seen + 20, what="answers from v2")
            reg.set_alias("fraud", "champion", v3)
            s.wait_for(lambda: s.get_json("/health")[1]["status"] == "degraded", what="the failed reload")
            seen = len(results)
            s.wait_for(lambda: len(results) > seen + 20, what="answers after the failed reload")
        finally:
            stop.set()
            client.join()
        health = s.get_json("/health")[1]["models"]["fraud"]
        assert health["version"] == v2 and "digest" in health["last_reload_error"]["message"].lower()
        assert s.get_json("/v1/models/fraud")[1]["version"] == v2
        statuses = [r[0] for r in results]
        assert statuses.count(200) == len(results), [r for r in results if r[0] != 200][:3]
        answers = [predictions(json.loads(r[2])) for r in results]
        assert all(a in (outputs[v1], outputs[v2]) for a in answers)
        assert answers[0] == outputs[v1] and answers[-1] == outputs[v2]
        # Once v2 answered, v1 never answered again: requests switch at one point.
        first_v2 = answers.index(outputs[v2])
        assert all(a == outputs[v2] for a in answers[first_v2:])
        metrics = s.request("GET", "/metrics")[2].decode()
        assert 'skvault_reloads_total{model="fraud",outcome="ok"} 1' in metrics
        assert 'skvault_reloads_total{model="fraud",outcome="failed"} 1' in metrics
        assert s.stop() == 0


def test_hot_reload_of_a_replaced_file(files, tmp_path):
    tmp, models = files
    live = tmp_path / "model.skv"
    shutil.copy(tmp / "v1.skv", live)
    X = frame(10, 8)
    body = json.dumps(split(X))
    with Server(str(live), "--watch", "100ms") as s:
        assert predictions(s.post_json("/v1/models/model/predict", json.loads(body))[1]) == models["v1"].predict(X).tolist()
        staged = tmp_path / ".model.skv.new"
        shutil.copy(tmp / "v2.skv", staged)
        os.replace(staged, live)
        s.wait_for(lambda: s.get_json("/v1/models/model")[1]["reloads"] == 1, what="the reload")
        assert predictions(s.post_json("/v1/models/model/predict", json.loads(body))[1]) == models["v2"].predict(X).tolist()
        # A truncated file replacing it is refused; v2 keeps serving.
        staged.write_bytes((tmp / "v1.skv").read_bytes()[:200])
        os.replace(staged, live)
        s.wait_for(lambda: s.get_json("/health")[1]["status"] == "degraded", what="the failed reload")
        assert predictions(s.post_json("/v1/models/model/predict", json.loads(body))[1]) == models["v2"].predict(X).tolist()
        assert any("reload failed" in line for line in s.lines)
        assert s.stop() == 0


# --- connections ---------------------------------------------------------------------------

def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def test_slow_silent_and_idle_connections_are_closed(files):
    tmp, _ = files
    with Server(str(tmp / "linear.skv"), "--header-timeout", "1s") as s:
        silent = socket.create_connection((s.host, s.port))
        partial = socket.create_connection((s.host, s.port))
        partial.sendall(b"POST /v1/models/linear/predict HTTP/1.1\r\nHost: x\r\n")
        idle = socket.create_connection((s.host, s.port))
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(1024).startswith(b"HTTP/1.1 200")
        for sock in (silent, partial, idle):
            assert _closed_within(sock, 10), "a connection outlived --header-timeout"
            sock.close()
        assert s.request("GET", "/health")[0] == 200
        assert s.stop() == 0


def test_connections_above_the_limit_are_closed_at_once(files):
    tmp, _ = files
    with Server(str(tmp / "linear.skv"), "--max-connections", "2") as s:
        held = [socket.create_connection((s.host, s.port)) for _ in range(2)]
        time.sleep(0.2)
        extra = socket.create_connection((s.host, s.port))
        assert _closed_within(extra, 5)
        for sock in held:
            sock.close()
        s.wait_for(lambda: _answers(s), what="a free connection slot")
        assert s.stop() == 0


def _answers(s: Server) -> bool:
    try:
        return s.request("GET", "/health", timeout=2)[0] == 200
    except OSError:
        return False


def _peak_rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("max_rows,code", [("1000000", "too_many_rows"), ("100000000", "too_many_values")])
def test_a_small_parquet_body_declaring_many_rows_is_refused_before_decoding(files, max_rows, code):
    """80 million rows of three zero columns compress to a few hundred kB of Parquet
    (dictionary and run-length encoding), under the reader's cell limit (2^28): decoded,
    1.9 GB (4.9 GB of peak memory before the footer was checked). Its row count is refused
    against --max-rows, and its 240 million values against the value limit (2^25), before
    any page is decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp, _ = files
    chunk = pa.table({c: pa.array(np.zeros(1_000_000)) for c in COLUMNS})
    out = io.BytesIO()
    with pq.ParquetWriter(out, chunk.schema, compression="zstd") as w:
        for _ in range(80):
            w.write_table(chunk)
    body = out.getvalue()
    assert len(body) < 4 << 20
    with Server(str(tmp / "linear.skv"), "--max-rows", max_rows, "--log-format", "off") as s:
        before = _peak_rss_mib(s.proc.pid)
        status, got, message = err(s, P, body, "application/vnd.apache.parquet")
        assert status == 413 and got == code, message
        assert _peak_rss_mib(s.proc.pid) - before < 100, "the body was decoded"
        X = frame(2, 3)
        assert s.post_json(P, split(X))[0] == 200
        assert s.stop() == 0
