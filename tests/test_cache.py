"""pyfeat.ItemCache: decoded records kept in Go, served by id."""

from __future__ import annotations

import asyncio
import time

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat.requestlog import iter_requests
from pyfeat.synth import Marketplace

from conftest import base_item, run_in_threads


@pytest.fixture(scope="module")
def world():
    return Marketplace(seed=3, n_items=8000, n_users=300)


@pytest.fixture(scope="module")
def store(world):
    """The item store: id -> MessagePack bytes."""
    return dict(zip(world.item_ids.tolist(), world.items_blobs()))


@pytest.fixture(scope="module")
def ranker(small_model_json):
    return pyfeat.Ranker(small_model_json)


@pytest.fixture(scope="module")
def cat_ranker(world, tmp_path_factory):
    """A small model trained with the categorical columns as cat_features:
    rank scores it after the features, not in their blocks."""
    import pandas as pd
    from catboost import CatBoostRegressor, Pool

    req = world.request(7, 600)
    f = pyfeat.FeatureEngine().compute_all(req.user_blob, list(req.item_blobs), req.candidates)
    X = pd.DataFrame(f.numeric, columns=pyfeat.feature_names())
    cat_names = pyfeat.categorical_feature_names()
    for j, name in enumerate(cat_names):
        X[name] = f.categorical[:, j]
    y = np.random.default_rng(1).normal(size=len(X))
    m = CatBoostRegressor(iterations=20, depth=4, verbose=False, allow_writing_files=False, thread_count=1)
    m.fit(Pool(X, y, cat_features=cat_names))
    path = tmp_path_factory.mktemp("cat") / "cat.json"
    m.save_model(str(path), format="json")
    with pyfeat.Ranker(path) as r:
        assert r.model.n_cat_features == len(cat_names)
        yield r


def serve(cache, ranker, store, req, **kw):
    """The serving recipe: look up, fetch the missing records, rank."""
    with cache.lookup(req.item_ids) as items:
        if items.missing.size:
            items.fill([store[i] for i in items.missing.tolist()])
        return ranker.rank(req.user_blob, items, req.candidates, **kw), items.missing.size


def test_cached_requests_rank_and_compute_like_the_records(world, store, ranker, engine):
    cache = pyfeat.ItemCache(max_bytes=64 << 20, ttl=600)
    for i in range(3):
        req = world.request(i, 1500)
        want = ranker.rank(req.user_blob, req.item_blobs, req.candidates)
        X = engine.compute(req.user_blob, req.item_blobs, req.candidates).copy()
        for _ in range(2):  # from a cold cache, then a warm one
            got, fetched = serve(cache, ranker, store, req)
            np.testing.assert_array_equal(got.order, want.order)
            assert got.scores.tobytes() == want.scores.tobytes()
            with cache.lookup(req.item_ids) as items:
                assert items.missing.size == 0
                Y = engine.compute(req.user_blob, items, req.candidates)
            assert Y.tobytes() == X.tobytes()
    s = cache.stats()
    assert s["len"] == len(cache) > 0 and 0 < s["bytes"] == cache.nbytes <= s["max_bytes"]
    assert s["hits"] > 0 and s["misses"] > 0 and s["inserts"] == s["len"]


def test_only_missing_records_are_fetched_once_each(world, store):
    cache = pyfeat.ItemCache()
    ids = [int(x) for x in world.item_ids[:10]]
    with cache.lookup(ids + ids[:3]) as items:  # a repeated id is fetched once
        assert items.missing.tolist() == ids
        with pytest.raises(pyfeat.InputError, match="missing from the cache"):
            pyfeat.FeatureEngine().compute(msgpack.packb({"user_id": 1, "now": 1}), items)
        items.fill([store[i] for i in ids])
        assert items.complete
    with cache.lookup(ids[5:] + [int(world.item_ids[20])]) as items:
        assert items.missing.tolist() == [int(world.item_ids[20])]


def test_bad_records_are_refused_at_insert(world, store):
    cache = pyfeat.ItemCache()
    ids = [int(x) for x in world.item_ids[:4]]
    recs = [store[i] for i in ids]
    bad = msgpack.unpackb(recs[2], raw=False)
    bad["price"] = -5
    with cache.lookup([999_999, *ids]) as items:  # candidate positions 1..4
        with pytest.raises(pyfeat.InputError) as e:
            items.fill([store[ids[0]], *recs[:2], msgpack.packb(bad), recs[3]])
        assert e.value.position == 0 and e.value.key == "id"  # the record of another id
        with pytest.raises(pyfeat.InputError) as e:
            items.fill([msgpack.packb(base_item(0, id=999_999)), *recs[:2], msgpack.packb(bad), recs[3]])
        assert (e.value.position, e.value.key) == (3, "price")
        with pytest.raises(pyfeat.InputTypeError) as e:
            items.fill([msgpack.packb(base_item(0, id=999_999)), recs[0], None, recs[2], recs[3]][:5])
        assert e.value.position == 2
        with pytest.raises(pyfeat.InputError):
            items.fill(recs)  # one record short
    assert len(cache) == 0  # nothing from a refused fill is kept


def test_changed_record_is_served_fresh_after_ttl_or_invalidation_never_mixed(world, store, ranker):
    cache = pyfeat.ItemCache(ttl=0.5)
    req = world.request(7, 400)
    ids = req.item_ids.tolist()
    changed = dict(store)
    for i in ids[:200]:  # a price change of half the candidates
        rec = msgpack.unpackb(store[i], raw=False)
        rec["price"] = rec["price"] * 3 + 1
        changed[i] = msgpack.packb(rec)
    old_blobs = [store[i] for i in ids]
    new_blobs = [changed[i] for i in ids]
    old = ranker.rank(req.user_blob, old_blobs, req.candidates)
    new = ranker.rank(req.user_blob, new_blobs, req.candidates)
    assert not np.array_equal(old.scores, new.scores)

    def same(res, want):
        return np.array_equal(res.order, want.order) and res.scores.tobytes() == want.scores.tobytes()

    assert same(serve(cache, ranker, store, req)[0], old)
    # A request that looked up before the store changed keeps the old records
    # throughout, even when the cache is refreshed while it runs.
    with cache.lookup(ids) as before:
        cache.invalidate(ids[:200])
        assert serve(cache, ranker, changed, req)[1] == 200
        assert same(ranker.rank(req.user_blob, before, req.candidates), old)
    assert same(serve(cache, ranker, changed, req)[0], new)
    # TTL: the store changes back; the cache serves the cached version until
    # it expires, then the fresh one, and never a mix.
    res, fetched = serve(cache, ranker, store, req)
    assert fetched == 0 and same(res, new)
    time.sleep(0.6)
    res, fetched = serve(cache, ranker, store, req)
    assert fetched == 400 and same(res, old)
    assert cache.stats()["expired"] >= 400


def test_logged_cached_requests_replay_to_the_served_features(tmp_path, world, store, ranker, engine):
    cache = pyfeat.ItemCache()
    served = []
    with pyfeat.RequestLog(tmp_path / "r.log") as log:
        for i in range(4):
            req = world.request(20 + i % 2, 700)  # the second pair comes from the cache
            F = np.empty((700, engine.n_features), dtype=np.float32)
            res, _ = serve(cache, ranker, store, req, features_out=F, log=log)
            served.append((res.request_id, F, req))
    recs = list(iter_requests(tmp_path / "r.log"))
    assert [r.request_id for r in recs] == [s[0] for s in served]
    for rec, (_, F, req) in zip(recs, served):
        assert rec.item_blobs() == list(req.item_blobs)  # the exact bytes
        X = engine.compute(rec.user, rec.item_blobs(), rec.candidate_dict())
        assert X.tobytes() == F.tobytes()


def test_eight_threads_keep_the_cache_under_its_bound(world, store, ranker):
    bound = 1 << 20  # far below the world's records: constant eviction
    cache = pyfeat.ItemCache(max_bytes=bound, ttl=None)
    reqs = [world.request(40 + i, 600) for i in range(8)]
    want = [ranker.rank(q.user_blob, q.item_blobs, q.candidates) for q in reqs]
    peak = [0]

    def work(t):
        for k in range(6):
            q = reqs[(t + k) % 8]
            res, _ = serve(cache, ranker, store, q)
            w = want[(t + k) % 8]
            assert np.array_equal(res.order, w.order) and res.scores.tobytes() == w.scores.tobytes()
            peak[0] = max(peak[0], cache.nbytes)
            if k == 3:
                cache.invalidate(q.item_ids[:50])

    run_in_threads(8, work)
    s = cache.stats()
    assert peak[0] <= bound and s["bytes"] <= bound and s["evictions"] > 0, s


@pytest.mark.parametrize("model", ["numeric", "categorical"])
def test_timings_add_up_to_the_wall_time(world, model, request):
    ranker = request.getfixturevalue("ranker" if model == "numeric" else "cat_ranker")
    req = world.request(50, 3000)
    user, blobs, cands = req.user_blob, list(req.item_blobs), req.candidates  # (properties: computed per access)
    for _ in range(3):
        ranker.rank(user, blobs, cands)
    ok = 0
    for _ in range(5):  # the machine is shared: most calls, not every one
        t0 = time.perf_counter()
        res = ranker.rank(user, blobs, cands, top_k=100)
        wall = time.perf_counter() - t0
        t = res.timings
        parts = sum(v for k, v in t.items() if k != "total")
        assert abs(parts - t["total"]) < 1e-9
        assert min(t.values()) >= 0 and t["decode"] > 0 and t["features"] > 0 and t["scoring"] > 0
        ok += abs(t["total"] - wall) <= 0.1 * wall and t["other"] <= 0.1 * wall
    assert ok >= 3, (res.timings, wall)
    stats = ranker.stats()
    assert stats["calls"] >= 8 and stats["items"] >= 8 * 3000 and stats["seconds"]["features"] > 0


def test_arank_with_the_cache(world, store, ranker):
    cache = pyfeat.ItemCache()
    req = world.request(60, 800)
    want = ranker.rank(req.user_blob, req.item_blobs, req.candidates, top_k=50)

    async def main():
        with cache.lookup(req.item_ids) as items:
            items.fill([store[i] for i in items.missing.tolist()])
            return await ranker.arank(req.user_blob, items, req.candidates, top_k=50)

    got = asyncio.run(main())
    assert np.array_equal(got.order, want.order) and got.timings["wait"] >= 0


def test_arguments_and_lifetime():
    with pytest.raises(ValueError):
        pyfeat.ItemCache(max_bytes=0)
    with pytest.raises(ValueError):
        pyfeat.ItemCache(ttl=-1)
    cache = pyfeat.ItemCache(max_bytes=1 << 20)
    with pytest.raises(pyfeat.InputTypeError):
        cache.lookup(["a", "b"])
    with pytest.raises(pyfeat.InputError):
        cache.lookup([[1, 2]])
    items = cache.lookup([1, 2])
    cache.close()
    cache.close()
    # A request already holding its lookup still works; its fill stores nothing.
    items.fill([msgpack.packb(base_item(0, id=1)), msgpack.packb(base_item(1, id=2))])
    assert items.complete and len(items.raw().offsets) == 3
    items.close()
    with pytest.raises(ValueError):
        items.raw()
    with pytest.raises(ValueError):
        cache.lookup([1])
    assert "closed" in repr(cache)
