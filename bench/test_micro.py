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


# ---- categorical columns: their cost in compute ----------------------------

@pytest.mark.benchmark(group="features: one 3000-item request, numeric vs numeric + categorical")
def test_features_numeric(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine()
    blobs = list(req.item_blobs)
    benchmark(engine.compute, req.user_blob, blobs, req.candidates)


@pytest.mark.benchmark(group="features: one 3000-item request, numeric vs numeric + categorical")
def test_features_numeric_and_categorical(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine()
    blobs = list(req.item_blobs)
    benchmark(engine.compute_all, req.user_blob, blobs, req.candidates)



# ---- ranking with a categorical model (what `pyfeat train` makes) ---------

RANK_CAT_GROUP = "rank, categorical model: one 3000-candidate request"


@pytest.fixture(scope="module")
def cat_ranking(request3000, cat_rank_model_1000x6):
    """The model's catboost and pyfeat handles, and pyfeat's ranking of the
    benchmark request, checked bit for bit against catboost's scores of
    pyfeat's features (the contract): the answer every contender must give."""
    from catboost import CatBoost

    cb = CatBoost()
    cb.load_model(str(cat_rank_model_1000x6.with_suffix(".cbm")))
    path = cat_rank_model_1000x6.with_suffix(".json")
    ranker = pyfeat.Ranker(path)
    assert ranker.model.n_cat_features == len(pyfeat.categorical_feature_names())
    req = request3000
    want = ranker.rank(req.user_blob, req.item_blobs, req.candidates)
    _assert_same_ranking(_rank_cat_features_catboost(pyfeat.FeatureEngine(), cb, req), want)
    yield cb, ranker, path, want
    ranker.close()


def _order(scores):
    order = np.argsort(-scores, kind="stable")  # ties keep input order, as Ranker.rank's
    return order, scores[order]


def _rank_cat_python(cb, req):
    """What a service without pyfeat runs: the plain-Python features, then
    catboost with the categorical ids as their decimal strings (as `pyfeat
    train` trained it)."""
    from pyfeat.train import catboost_data

    X = reference.compute(req.user_blob, req.item_blobs, req.candidates)
    C = reference.compute_categorical(req.user_blob, req.item_blobs, req.candidates)
    scores = cb.predict(catboost_data(X, C, pyfeat.feature_names(), pyfeat.categorical_feature_names()),
                        prediction_type="RawFormulaVal")
    return _order(np.asarray(scores))


def _rank_cat_features_catboost(engine, cb, req):
    from pyfeat.train import catboost_data

    X, C = engine.compute_all(req.user_blob, req.item_blobs, req.candidates)
    scores = cb.predict(catboost_data(X, C, pyfeat.feature_names(), pyfeat.categorical_feature_names()),
                        prediction_type="RawFormulaVal")
    return _order(np.asarray(scores))


def _rank_cat_features_pylignum(engine, model, req):
    import pandas as pd

    X, C = engine.compute_all(req.user_blob, req.item_blobs, req.candidates)
    # pylignum reads the columns by position and hashes an integer category
    # as its decimal text, as catboost does.
    frame = pd.concat([pd.DataFrame(X), pd.DataFrame(C, columns=range(X.shape[1], X.shape[1] + C.shape[1]))],
                      axis=1)
    return _order(model.predict(frame, raw_score=True))


def _assert_same_ranking(got, want):
    order, scores = got
    # Bit-identical: the same float32 features (the reference's are equal to
    # Go's on this request), the same hashes and the same float64 sums in the
    # same order, in every contender.
    assert np.array_equal(scores, want.scores)
    assert np.array_equal(order, want.order)


@pytest.mark.benchmark(group=RANK_CAT_GROUP)
def test_rank_cat_python_reference(benchmark, cat_ranking, request3000):
    cb, _, _, want = cat_ranking
    _assert_same_ranking(_rank_cat_python(cb, request3000), want)
    benchmark(_rank_cat_python, cb, request3000)


@pytest.mark.benchmark(group=RANK_CAT_GROUP)
def test_rank_cat_pyfeat_features_catboost(benchmark, cat_ranking, request3000):
    cb, _, _, want = cat_ranking
    engine = pyfeat.FeatureEngine()
    _assert_same_ranking(_rank_cat_features_catboost(engine, cb, request3000), want)
    benchmark(_rank_cat_features_catboost, engine, cb, request3000)


@pytest.mark.benchmark(group=RANK_CAT_GROUP)
def test_rank_cat_pyfeat_features_pylignum(benchmark, cat_ranking, request3000):
    import lignum

    _, _, path, want = cat_ranking
    engine = pyfeat.FeatureEngine()
    model = lignum.load(str(path))
    _assert_same_ranking(_rank_cat_features_pylignum(engine, model, request3000), want)
    benchmark(_rank_cat_features_pylignum, engine, model, request3000)


@pytest.mark.benchmark(group=RANK_CAT_GROUP)
def test_rank_cat_pyfeat(benchmark, cat_ranking, request3000):
    _, ranker, _, want = cat_ranking
    req = request3000
    _assert_same_ranking(ranker.rank(req.user_blob, req.item_blobs, req.candidates), want)
    benchmark(ranker.rank, req.user_blob, req.item_blobs, req.candidates)
