"""Shared inputs for the micro benchmarks: one realistic 3000-item request
and a model over pyfeat's features (the worlds come from tests/shared.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from shared import (  # noqa: E402  (after the path)
    assert_same_matrix,  # noqa: F401  (for bench/cpp/test_peer.py)
    long_history_request,
    marketplace,
    save_pyfeat_model,
    spread_requests,  # noqa: F401  (fixture)
    training_set,
    world,  # noqa: F401  (fixture)
)

BENCH_WORLD = (1, 50_000, 5_000)
N_CANDIDATES = 3000
CACHE = Path(__file__).resolve().parent / ".cache"


@pytest.fixture(scope="session")
def bench_world():
    return marketplace(*BENCH_WORLD)


@pytest.fixture(scope="session")
def request3000(bench_world):
    return long_history_request(bench_world, N_CANDIDATES)


@pytest.fixture(scope="session")
def model_1000x6(bench_world):
    """A 1000-tree, depth-6 CatBoost model over pyfeat's features, trained on
    synthetic feedback (cached by spec hash: training takes a minute)."""
    import pandas as pd
    from catboost import CatBoostClassifier

    import pyfeat

    CACHE.mkdir(exist_ok=True)
    base = CACHE / f"model_1000x6_{pyfeat.spec_hash()}"
    if not (base.with_suffix(".json").exists() and base.with_suffix(".cbm").exists()):
        data = training_set(bench_world, range(1000, 1012), N_CANDIDATES)
        m = CatBoostClassifier(iterations=1000, depth=6, random_seed=0, verbose=False, allow_writing_files=False)
        m.fit(pd.DataFrame(data["X"], columns=pyfeat.feature_names()), data["clicks"])
        save_pyfeat_model(m, base.with_suffix(".json"), base.with_suffix(".cbm"))
    return base
