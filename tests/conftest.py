"""Shared fixtures: small hand-made records that satisfy DESIGN.md, and
(from shared.py, which the benchmarks use too) the synthetic worlds."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from shared import assert_same_matrix, spread_requests, world  # noqa: F401  (fixtures and helpers for the tests)

NOW = 1_767_225_600

REPO = Path(__file__).resolve().parent.parent


def catboost_fixture(name: str) -> Path:
    """A file of the CatBoost golden fixtures (written by
    catboost/testdata/make_golden.py; its README describes them). Python
    tests find them only through this function."""
    return REPO / "catboost" / "testdata" / name


def base_item(i: int = 0, **overrides):
    item = {
        "id": 1000 + i,
        "title": f"Диван угловой IKEA {i}",
        "category": 3,
        "subcategory": 31,
        "price": 1500.0 + i,
        "created_at": NOW - 3600 * (i + 1),
        "seller_id": 7 + i % 3,
        "region": 5,
    }
    item.update(overrides)
    return item


def base_user(**overrides):
    user = {
        "user_id": 1,
        "now": NOW,
        "platform": "android",
        "tz_offset_min": 180,
        "region": 5,
        "city": 77,
        "lat": 55.75,
        "lon": 37.61,
        "interests": {3: 0.7, 4: 0.2},
        "sub_interests": {31: 0.5},
        "views": [[1000, NOW - 100, 3, 31, 1400.0, 7], [55, NOW - 90000, 4, 41, 20, 9]],
        "contacts": [[55, NOW - 80000, 9]],
        "favorites": [1001],
        "impressions": {1000: 2},
        "queries": ["диван угловой", "iphone 13"],
    }
    user.update(overrides)
    return user


def run_in_threads(n: int, work, timeout: float = 120) -> None:
    """Run work(t) for t in range(n), on n threads released together; fail
    with what any of them raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(t):
        try:
            barrier.wait()
            work(t)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=timeout)
    assert not errors, errors


@pytest.fixture(scope="session")
def small_model_json(tmp_path_factory):
    """A quick model on pyfeat's feature names (JSON export)."""
    import numpy as np
    from catboost import CatBoostRegressor, Pool

    import pyfeat

    names = pyfeat.feature_names()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(names))).astype(np.float32)
    m = CatBoostRegressor(iterations=10, depth=3, verbose=False, allow_writing_files=False, thread_count=1)
    m.fit(Pool(X, X[:, 0] + rng.normal(size=400), feature_names=names))
    m.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    path = tmp_path_factory.mktemp("model") / "m.json"
    m.save_model(str(path), format="json")
    return path


@pytest.fixture(scope="session")
def engine():
    import pyfeat

    return pyfeat.FeatureEngine()


def isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)
