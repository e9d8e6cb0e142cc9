"""What a python+ppe worker process runs: the reference features and
catboost's predict on one chunk of a request's items.

A worker imports only this module (and what it needs: pyfeat.reference,
catboost); the service's main process never imports catboost.
"""

from __future__ import annotations

import os

_model = None


def init(model_cbm: str) -> None:
    """ProcessPoolExecutor initializer: load the model once per worker."""
    global _model
    from catboost import CatBoost

    import pyfeat.reference  # noqa: F401  (import cost paid at start, not on the first request)

    m = CatBoost()
    m.load_model(model_cbm)
    _model = m


def ping(delay: float) -> int:
    import time

    time.sleep(delay)
    return os.getpid()


def score_chunk(user_blob: bytes, item_blobs: list, candidates: dict):
    """Raw scores (float64) of the chunk's items, in input order."""
    from pyfeat import reference

    X = reference.compute(user_blob, item_blobs, candidates)
    # One thread per worker: the pool already uses every core.
    return _model.predict(X, prediction_type="RawFormulaVal", thread_count=1)
