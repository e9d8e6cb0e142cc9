"""Shared inputs for the micro benchmarks: one realistic 3000-item request."""

from __future__ import annotations

import pytest

from pyfeat.synth import Marketplace

N_CANDIDATES = 3000


@pytest.fixture(scope="session")
def world():
    return Marketplace(seed=1, n_items=50_000, n_users=5_000)


@pytest.fixture(scope="session")
def request3000(world):
    # A user with a long history: the expensive user x item features matter.
    for i in range(200):
        req = world.request(i, N_CANDIDATES)
        if len(req.user.get("views") or []) >= 500:
            return req
    raise RuntimeError("no request with a long view history in the first 200")


CACHE = __import__("pathlib").Path(__file__).resolve().parent / ".cache"


@pytest.fixture(scope="session")
def model_1000x6(world):
    """A 1000-tree, depth-6 CatBoost model over pyfeat's features, trained on
    synthetic feedback (cached by spec hash: training takes a minute)."""
    import numpy as np
    import pandas as pd
    from catboost import CatBoostClassifier

    import pyfeat

    CACHE.mkdir(exist_ok=True)
    base = CACHE / f"model_1000x6_{pyfeat.spec_hash()}"
    if not (base.with_suffix(".json").exists() and base.with_suffix(".cbm").exists()):
        engine = pyfeat.FeatureEngine()
        Xs, ys = [], []
        for i in range(1000, 1012):
            req = world.request(i, N_CANDIDATES)
            Xs.append(engine.compute(req.user_blob, req.item_blobs, req.candidates))
            ys.append(world.feedback(req)[0])
        X = pd.DataFrame(np.vstack(Xs), columns=pyfeat.feature_names())
        m = CatBoostClassifier(iterations=1000, depth=6, random_seed=0, verbose=False, allow_writing_files=False)
        m.fit(X, np.concatenate(ys))
        m.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
        m.save_model(str(base.with_suffix(".cbm")))
        m.save_model(str(base.with_suffix(".json")), format="json")
    return base
