"""Parity on realistic data: the Go engine against pyfeat.reference on
requests from the synthetic marketplace (sparse records, Russian, English and
Chinese titles, users with 0 to thousands of views)."""

from __future__ import annotations

import numpy as np

import pyfeat
from pyfeat import reference

from conftest import assert_same_matrix

WORLD = (7, 20_000, 2_000)
SPREAD = (8, 1500)  # requests, candidates each


def test_synthetic_requests_cover_the_hard_cases(spread_requests):
    n_views = [len(r.user.get("views") or []) for r in spread_requests]
    assert max(n_views) >= 300, n_views
    titles = " ".join(it["title"] for r in spread_requests for it in r.items)
    assert any("\u0400" <= c <= "\u04ff" for c in titles), "no Cyrillic"
    assert any("\u4e00" <= c <= "\u9fff" for c in titles), "no CJK"
    missing = sum(1 for r in spread_requests for it in r.items if "old_price" not in it)
    assert missing > 0


def test_go_equals_reference_on_10k_pairs(engine, spread_requests):
    pairs = 0
    for req in spread_requests:
        want = reference.compute(req.user_blob, req.item_blobs, req.candidates)
        got = engine.compute(req.user_blob, req.item_blobs, req.candidates)
        assert_same_matrix(got, want, pyfeat.feature_names())
        pairs += got.shape[0]
        assert np.isnan(got).any() and not np.isnan(got).all()
    assert pairs >= 10_000


def test_bytes_and_dicts_identical_on_synthetic(engine, spread_requests):
    req = spread_requests[0]
    a = engine.compute(req.user_blob, req.item_blobs, req.candidates)
    b = engine.compute(req.user, req.items, req.candidates)
    assert a.tobytes() == b.tobytes()
