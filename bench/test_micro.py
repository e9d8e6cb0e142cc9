"""Micro benchmarks, each pyfeat path next to its plain-Python counterpart
on the same inputs, measured in one run. Results are checked equal first."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat import _native, reference


def _assert_parity(got, want):
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    m = ~np.isnan(got)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-6)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_reference(benchmark, request3000):
    req = request3000
    benchmark.extra_info["items"] = len(req.items)
    benchmark(reference.compute, req.user_blob, req.item_blobs, req.candidates)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_pyfeat(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine()
    blobs, user = req.item_blobs, req.user_blob
    _assert_parity(engine.compute(user, blobs, req.candidates), reference.compute(user, blobs, req.candidates))
    benchmark.extra_info["items"] = len(req.items)
    benchmark(engine.compute, user, blobs, req.candidates)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_pyfeat_1thread(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine(threads=1)
    blobs, user = req.item_blobs, req.user_blob
    benchmark(engine.compute, user, blobs, req.candidates)


@pytest.mark.benchmark(group="decode: 3000 item records")
def test_decode_msgpack_python(benchmark, request3000):
    blobs = request3000.item_blobs
    unpackb = msgpack.unpackb
    benchmark(lambda: [unpackb(b) for b in blobs])


@pytest.mark.benchmark(group="call overhead: empty call")
def test_empty_call_pyfeat(benchmark):
    lib = _native.lib()
    benchmark(lib.pf_num_features)


@pytest.mark.benchmark(group="call overhead: empty call")
def test_empty_call_python(benchmark):
    def noop():
        return 77

    benchmark(noop)


# ---- scoring -------------------------------------------------------------

@pytest.fixture(scope="module")
def scoring(request3000, model_1000x6):
    from catboost import CatBoost

    cb = CatBoost()
    cb.load_model(str(model_1000x6.with_suffix(".cbm")))
    req = request3000
    X = pyfeat.FeatureEngine().compute(req.user_blob, req.item_blobs, req.candidates)
    return cb, X, model_1000x6.with_suffix(".json")


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_catboost(benchmark, scoring, threads):
    cb, X, _ = scoring
    benchmark.group = f"predict: 3000 x 77, 1000 trees depth 6, {threads} thread(s)"
    benchmark(cb.predict, X, prediction_type="RawFormulaVal", thread_count=threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_pyfeat(benchmark, scoring, threads):
    cb, X, path = scoring
    model = pyfeat.Model(path, threads=threads)
    want = cb.predict(X, prediction_type="RawFormulaVal", thread_count=threads)
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-12, atol=0)
    benchmark.group = f"predict: 3000 x 77, 1000 trees depth 6, {threads} thread(s)"
    benchmark(model.predict, X)


@pytest.mark.benchmark(group="predict: one row, 1 thread")
def test_predict_one_row_catboost(benchmark, scoring):
    cb, X, _ = scoring
    row = X[:1]
    benchmark(cb.predict, row, prediction_type="RawFormulaVal", thread_count=1)


@pytest.mark.benchmark(group="predict: one row, 1 thread")
def test_predict_one_row_pyfeat(benchmark, scoring):
    cb, X, path = scoring
    model = pyfeat.Model(path, threads=1)
    row = X[:1]
    assert model.predict(row)[0] == cb.predict(row, prediction_type="RawFormulaVal")[0]
    benchmark(model.predict, row)


def _rank_python(cb, req):
    X = reference.compute(req.user_blob, req.item_blobs, req.candidates)
    scores = cb.predict(X, prediction_type="RawFormulaVal")
    order = np.argsort(-scores, kind="stable")
    return order, scores[order]


@pytest.mark.benchmark(group="rank: one 3000-item request (decode, features, score, order)")
def test_rank_python_reference(benchmark, scoring, request3000):
    cb, _, _ = scoring
    benchmark(_rank_python, cb, request3000)


@pytest.mark.benchmark(group="rank: one 3000-item request (decode, features, score, order)")
def test_rank_pyfeat(benchmark, scoring, request3000):
    cb, _, path = scoring
    req = request3000
    ranker = pyfeat.Ranker(path)
    order, scores = ranker.rank(req.user_blob, req.item_blobs, req.candidates)
    want_order, want_scores = _rank_python(cb, req)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-9)
    assert np.array_equal(order, want_order)
    benchmark(ranker.rank, req.user_blob, req.item_blobs, req.candidates)


# ---- scoring a model with categorical features ----------------------------

@pytest.fixture(scope="module")
def cat_scoring(cat_model_1000x6):
    from catboost import CatBoost, Pool

    from conftest import CAT_COLUMNS, categorical_table

    cb = CatBoost()
    cb.load_model(str(cat_model_1000x6.with_suffix(".cbm")))
    X = categorical_table(np.random.default_rng(12), 3000)
    # Apply time sees values training never did.
    X.loc[::7, "city"] = "city-never-seen"
    X.loc[::11, "seller"] = 10**7
    want = np.asarray(cb.predict(Pool(X, cat_features=CAT_COLUMNS), prediction_type="RawFormulaVal", thread_count=1))
    return cb, X, cat_model_1000x6.with_suffix(".json"), want


def _cat_group(threads):
    return f"predict categorical: 3000 rows x (8 float + 7 categorical), 1000 trees depth 6, {threads} thread(s)"


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_cat_catboost(benchmark, cat_scoring, threads):
    from catboost import Pool

    from conftest import CAT_COLUMNS

    cb, X, _, want = cat_scoring
    benchmark.group = _cat_group(threads)
    got = cb.predict(Pool(X, cat_features=CAT_COLUMNS), prediction_type="RawFormulaVal", thread_count=threads)
    assert np.array_equal(got, want)
    benchmark(lambda: cb.predict(Pool(X, cat_features=CAT_COLUMNS), prediction_type="RawFormulaVal", thread_count=threads))


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_cat_pylignum(benchmark, cat_scoring, threads):
    import lignum

    _, X, path, want = cat_scoring
    model = lignum.load(str(path))
    assert np.array_equal(model.predict(X, raw_score=True, n_jobs=threads), want)
    benchmark.group = _cat_group(threads)
    benchmark(model.predict, X, raw_score=True, n_jobs=threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_cat_pyfeat(benchmark, cat_scoring, threads):
    _, X, path, want = cat_scoring
    model = pyfeat.Model(path, threads=threads)
    assert np.array_equal(model.predict(X), want)
    benchmark.group = _cat_group(threads)
    benchmark(model.predict, X)
