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
TRAIN_REQUESTS = range(1000, 1012)  # the requests the benchmark models learn from
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
        data = training_set(bench_world, TRAIN_REQUESTS, N_CANDIDATES)
        m = CatBoostClassifier(iterations=1000, depth=6, random_seed=0, verbose=False, allow_writing_files=False)
        m.fit(pd.DataFrame(data["X"], columns=pyfeat.feature_names()), data["clicks"])
        save_pyfeat_model(m, base.with_suffix(".json"), base.with_suffix(".cbm"))
    return base


@pytest.fixture(scope="session")
def cat_rank_model_1000x6(bench_world):
    """The model ``pyfeat train --iterations 1000 --negatives 300`` makes
    (YetiRank; the numeric columns, and the categorical ones as CatBoost
    ``cat_features``), 1000 trees of depth 6, from model_1000x6's requests
    (TRAIN_REQUESTS): they are logged with a ``RequestLog``, their simulated
    clicks and contacts written as an events file, replayed into Parquet by
    ``build_dataset`` and trained on by ``train_model``. One more request,
    logged last, is the one ``pyfeat train`` holds out for its report (it
    always holds out the latest).

    ``negatives=300`` (every clicked or contacted item and 300 others per
    request, ~5300 rows) because YetiRank on all 36,000 rows takes ~0.55 s
    an iteration on 2 cores, ten minutes for 1000 trees; with it training
    takes ~35 s. Cached by spec hash."""
    import tempfile

    import pyfeat
    from pyfeat.dataset import build_dataset
    from pyfeat.train import train_model

    CACHE.mkdir(exist_ok=True)
    base = CACHE / f"cat_rank_model_1000x6_neg300_{pyfeat.spec_hash()}"
    if base.with_suffix(".json").exists() and base.with_suffix(".cbm").exists():
        return base
    requests = [*TRAIN_REQUESTS, TRAIN_REQUESTS[-1] + 1]
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        d = Path(tmp)
        events = ["request_id,item_id,event"]
        with pyfeat.RequestLog(d / "requests.log", "x") as log:
            for i in requests:
                req = bench_world.request(i, N_CANDIDATES)
                rid = log.append(req.user_blob, req.item_blobs, req.candidates)
                clicks, contacts = bench_world.feedback(req)
                for kind, hit in (("click", clicks), ("contact", contacts)):
                    events += [f"{rid},{int(item)},{kind}" for item in req.item_ids[hit.astype(bool)]]
        (d / "events.csv").write_text("\n".join(events) + "\n")
        build_dataset([d / "requests.log"], d / "train.parquet", d / "events.csv", workers=0, progress=False)
        rep = train_model(d / "train.parquet", d / "model.cbm", iterations=1000, depth=6, negatives=300,
                          valid_fraction=1 / len(requests), threads=2, echo=None)
        assert rep.valid_requests == 1 and rep.cat_features == pyfeat.categorical_feature_names(), rep
        # Moved into the cache only once both are written: an interrupted run trains again.
        (d / "model.cbm").replace(base.with_suffix(".cbm"))
        (d / "model.json").replace(base.with_suffix(".json"))
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
