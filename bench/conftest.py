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


CAT_COLUMNS = ["category", "subcategory", "region", "city", "seller", "platform", "source"]


def categorical_table(rng, n):
    """A marketplace-like table: 7 categorical columns (strings, and the
    seller as an int id) among 8 float columns."""
    import numpy as np
    import pandas as pd

    cat = rng.integers(0, 20, n)
    cols = {
        "price": rng.lognormal(3, 1, n).astype(np.float32),
        "category": np.array([f"cat{c}" for c in cat], dtype=object),
        "age_days": rng.exponential(30, n).astype(np.float32),
        "subcategory": np.array([f"cat{c}/sub{s}" for c, s in zip(cat, rng.integers(0, 12, n))], dtype=object),
        "region": np.array([f"регион-{r}" for r in rng.integers(0, 40, n)], dtype=object),
        "views": rng.poisson(20, n).astype(np.float32),
        "city": np.array([f"city-{c}" for c in rng.zipf(1.3, n) % 700], dtype=object),
        "photos": rng.integers(0, 12, n).astype(np.float32),
        "seller": rng.zipf(1.2, n) % 5000,
        "ctr": rng.beta(2, 30, n).astype(np.float32),
        "platform": rng.choice(np.array(["ios", "android", "web"], dtype=object), n),
        "distance": rng.exponential(10, n).astype(np.float32),
        "source": rng.choice(np.array(["search", "feed", "similar", "promo", "recent"], dtype=object), n),
        "rating": rng.normal(4, 0.5, n).astype(np.float32),
        "score": rng.normal(0, 1, n).astype(np.float32),
    }
    return pd.DataFrame(cols)


@pytest.fixture(scope="session")
def cat_model_1000x6():
    """A 1000-tree, depth-6 CatBoost model with 7 categorical features
    (CTRs and combinations, catboost's defaults), trained on a synthetic
    table; cached: training takes a few minutes."""
    import numpy as np
    from catboost import CatBoostClassifier, Pool

    CACHE.mkdir(exist_ok=True)
    base = CACHE / "cat_model_1000x6_v1"
    if not (base.with_suffix(".json").exists() and base.with_suffix(".cbm").exists()):
        rng = np.random.default_rng(11)
        X = categorical_table(rng, 20_000)
        logit = (
            np.log1p(X["views"]) * 0.3 - np.log(X["price"]) * 0.2 + (X["source"] == "promo") * 0.8
            + (X["seller"] % 7 == 0) * 0.7 + X["category"].map(lambda c: (hash(c) % 5) * 0.2)
            + (X["platform"] == "ios") * (X["region"].str.len() % 3) * 0.3 + rng.normal(0, 1, len(X))
        )
        y = (logit > np.median(logit)).astype(int)
        m = CatBoostClassifier(iterations=1000, depth=6, random_seed=0, verbose=False, allow_writing_files=False, thread_count=2)
        m.fit(Pool(X, y, cat_features=CAT_COLUMNS))
        tmp = base.with_name(base.name + ".tmp")
        m.save_model(str(tmp.with_suffix(".cbm")))
        m.save_model(str(tmp.with_suffix(".json")), format="json")
        tmp.with_suffix(".cbm").replace(base.with_suffix(".cbm"))
        tmp.with_suffix(".json").replace(base.with_suffix(".json"))
    return base
