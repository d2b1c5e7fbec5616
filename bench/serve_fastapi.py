"""The hand-written alternative to a model server, for bench/serve.py: a FastAPI app that
`joblib.load`s one model and answers MLflow-style JSON bodies with `predict`.

    SKVAULT_BENCH_MODEL=model.joblib python -m uvicorn serve_fastapi:app --app-dir bench --workers 1

It accepts the two shapes bench/serve.py sends (`{"inputs": [[...]]}` and
`{"dataframe_split": {"columns": [...], "data": [[...]]}}`) and answers
`{"predictions": [...]}`, as `mlflow models serve` does.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
from fastapi import FastAPI, Request

MODEL = joblib.load(os.environ["SKVAULT_BENCH_MODEL"])

app = FastAPI()


@app.post("/invocations")
async def invocations(request: Request) -> dict[str, Any]:
    body = await request.json()
    rows = body["inputs"] if "inputs" in body else body["dataframe_split"]["data"]
    return {"predictions": MODEL.predict(np.asarray(rows, dtype=np.float64)).tolist()}
