"""Tests of the synthetic marketplace (pyfeat.synth)."""

import re

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from pyfeat import synth
from pyfeat.synth import (
    ITEM_OPTIONAL_KEYS,
    ITEM_REQUIRED_KEYS,
    USER_OPTIONAL_KEYS,
    VAS_LEVELS,
    Marketplace,
    ndcg_at_k,
)

SEED = 7
N_ITEMS = 5000
N_USERS = 800

CYRILLIC = re.compile("[\u0400-\u04FF]")
LATIN = re.compile("[A-Za-z]")
CJK = re.compile("[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def world():
    return Marketplace(SEED, n_items=N_ITEMS, n_users=N_USERS)


@pytest.fixture(scope="module")
def records(world):
    return world.item_records()


@pytest.fixture(scope="module")
def sample(world):
    """A sample of requests with small candidate sets (histories are full size)."""
    return [world.request(i, n_candidates=100) for i in range(250)]


def is_int(v):
    return type(v) is int


def is_num(v):
    return type(v) in (int, float)


# ----------------------------------------------------------------- determinism


def test_world_is_deterministic():
    a = Marketplace(3, n_items=2000, n_users=200)
    b = Marketplace(3, n_items=2000, n_users=200)
    c = Marketplace(4, n_items=2000, n_users=200)
    assert a.items_blobs() == b.items_blobs()
    assert a.items_blobs() != c.items_blobs()
    # Looking items up in another order builds the same records.
    ids = a.item_ids[::-1][:50].tolist()
    assert b.items_blobs(ids) == a.items_blobs(ids)


def test_request_is_deterministic_and_order_independent(world):
    other = Marketplace(SEED, n_items=N_ITEMS, n_users=N_USERS)
    for i in (0, 5, 17):
        other.request(i + 100, 50)  # unrelated calls first
    for i in (17, 5, 0):
        a, b = world.request(i, 500), other.request(i, 500)
        assert a.user_blob == b.user_blob
        assert a.item_blobs == b.item_blobs
        for k in ("source", "source_score", "source_rank"):
            np.testing.assert_array_equal(a.candidates[k], b.candidates[k])
        fa, fb = world.feedback(a), other.feedback(b)
        np.testing.assert_array_equal(fa[0], fb[0])
        np.testing.assert_array_equal(fa[1], fb[1])
        np.testing.assert_array_equal(world.relevance(a), world.relevance(a))


def test_different_seeds_differ():
    a = Marketplace(1, n_items=2000, n_users=200).request(0, 200)
    b = Marketplace(2, n_items=2000, n_users=200).request(0, 200)
    assert a.user_blob != b.user_blob
    assert a.item_blobs != b.item_blobs


def test_request_time_and_id(world):
    for i in (0, 1, 1000):
        r = world.request(i, 10)
        assert r.request_id == i
        assert r.user["now"] == world.now + 60 * i
        assert r.now == r.user["now"]


def test_bad_arguments(world):
    with pytest.raises(ValueError):
        Marketplace(-1, n_items=100, n_users=10)
    with pytest.raises(ValueError):
        world.request(0, N_ITEMS + 1)
    with pytest.raises(ValueError):
        world.request(-1)
    with pytest.raises(KeyError):
        world.item(1)


# ----------------------------------------------------------------- item records

OPTIONAL_TYPES = {
    "old_price": float, "description_len": int, "city": int, "lat": float, "lon": float,
    "updated_at": int, "seller_rating": float, "seller_reviews": int, "seller_active_items": int,
    "seller_is_company": bool, "photos": int, "has_video": bool, "delivery": bool,
    "condition": str, "vas": str, "impressions_7d": int, "views_7d": int, "contacts_7d": int,
    "favorites_7d": int, "views_total": int,
}


def test_item_records_types(world, records):
    assert len(records) == world.n_items
    assert set(OPTIONAL_TYPES) == set(ITEM_OPTIONAL_KEYS)
    ids = set()
    for r in records:
        for k in ITEM_REQUIRED_KEYS:
            assert k in r, k
        assert is_int(r["id"]) and is_int(r["category"]) and is_int(r["subcategory"])
        assert is_int(r["created_at"]) and is_int(r["seller_id"]) and is_int(r["region"])
        assert type(r["title"]) is str
        assert is_num(r["price"]) and r["price"] >= 0
        assert r["created_at"] < world.now
        assert world.now - r["created_at"] <= 91 * 86400
        for k, t in OPTIONAL_TYPES.items():
            if k in r:
                assert type(r[k]) is t, (k, r[k])
        assert set(r) <= set(ITEM_REQUIRED_KEYS) | set(ITEM_OPTIONAL_KEYS)
        if "updated_at" in r:
            assert r["created_at"] <= r["updated_at"] <= world.now
        if "seller_rating" in r:
            assert 0 <= r["seller_rating"] <= 5
        if "photos" in r:
            assert 0 <= r["photos"] <= 20
        if "condition" in r:
            assert r["condition"] in ("new", "used")
        if "vas" in r:
            assert r["vas"] in VAS_LEVELS
        if "lat" in r:
            assert "lon" in r and -90 <= r["lat"] <= 90 and -180 <= r["lon"] <= 180
        if "views_7d" in r and "impressions_7d" in r:
            assert r["views_7d"] <= r["impressions_7d"]
        if "contacts_7d" in r and "views_7d" in r:
            assert r["contacts_7d"] <= r["views_7d"]
        ids.add(r["id"])
    assert len(ids) == len(records)
    # Plain Python values: MessagePack round-trips every record.
    blobs = world.items_blobs(world.item_ids[:200].tolist())
    for b, r in zip(blobs, records[:200]):
        assert msgpack.unpackb(b, raw=False) == r


def test_optional_item_keys_sometimes_missing(records):
    n = len(records)
    for k in ITEM_OPTIONAL_KEYS:
        share = sum(k in r for r in records) / n
        if k == "old_price":
            assert 0.08 < share < 0.25, (k, share)
        else:
            assert 0.45 < share < 0.97, (k, share)


def test_catalogue_shape(world, records):
    cats = {r["category"] for r in records}
    assert 15 <= len(cats) <= 20
    subs_of = {}
    for r in records:
        subs_of.setdefault(r["subcategory"], set()).add(r["category"])
    assert all(len(c) == 1 for c in subs_of.values())  # subcategory ids are global
    per_cat = np.bincount(world.sub_cat)
    assert per_cat.min() >= 3 and per_cat.max() <= 10
    counts = np.sort(np.bincount([r["category"] for r in records]))[::-1]
    assert counts[0] > 3 * counts[counts > 0][-1]  # skewed popularity
    assert len({r["region"] for r in records}) >= 25


def test_prices(records):
    prices = np.array([r["price"] for r in records], dtype=float)
    assert 0.005 < np.mean(prices == 0) < 0.1
    n_int = sum(type(r["price"]) is int for r in records)
    assert 0.5 * len(records) < n_int < 0.95 * len(records)
    pos = prices[prices > 0]
    q = np.quantile(pos, [0.5, 0.99])
    assert q[1] > 100 * q[0]  # heavy tail across categories
    old = [(r["old_price"], r["price"]) for r in records if "old_price" in r]
    drops = np.mean([o > p for o, p in old])
    assert 0.6 < drops < 0.95


def test_popularity_counters_heavy_tailed(records):
    views = np.array([r["views_7d"] for r in records if "views_7d" in r])
    assert views.max() > 50 * np.median(views) + 50
    c = np.array([r["contacts_7d"] for r in records if "contacts_7d" in r and "views_7d" in r])
    v = np.array([r["views_7d"] for r in records if "contacts_7d" in r and "views_7d" in r])
    assert c.sum() < 0.2 * v.sum()


def test_titles_scripts(records):
    titles = [r["title"] for r in records]
    n = len(titles)
    cyr = sum(bool(CYRILLIC.search(t)) for t in titles) / n
    cjk = sum(bool(CJK.search(t)) for t in titles) / n
    lat = sum(bool(LATIN.search(t)) for t in titles) / n
    assert 0.45 < cyr < 0.75
    assert 0.04 < cjk < 0.2
    assert lat > 0.25
    assert 0 < sum(t == "" for t in titles) < 0.05 * n
    mixed = sum(bool(CYRILLIC.search(t)) and bool(CJK.search(t)) for t in titles)
    assert mixed > 0
    assert any(t.isupper() for t in titles) and any(t and t == t.lower() for t in titles)


# ------------------------------------------------------------------ user context


def test_user_contexts(world, sample):
    present = {k: 0 for k in USER_OPTIONAL_KEYS}
    for r in sample:
        u = r.user
        assert is_int(u["user_id"]) and is_int(u["now"])
        assert set(u) <= {"user_id", "now"} | set(USER_OPTIONAL_KEYS)
        for k in present:
            present[k] += k in u
        assert msgpack.unpackb(r.user_blob, raw=False, strict_map_key=False) == u
        if "platform" in u:
            assert u["platform"] in ("web", "ios", "android")
        if "tz_offset_min" in u:
            assert is_int(u["tz_offset_min"]) and -1440 <= u["tz_offset_min"] <= 1440
        for k in ("region", "city"):
            if k in u:
                assert is_int(u[k])
        if "lat" in u:
            assert type(u["lat"]) is float and type(u["lon"]) is float
        for k in ("interests", "sub_interests"):
            for c, w in u.get(k, {}).items():
                assert is_int(c) and type(w) is float and 0 <= w <= 1
        views = u.get("views", [])
        ts = [v[1] for v in views]
        assert all(a > b for a, b in zip(ts, ts[1:])), "views must be strictly newest first"
        for v in views:
            assert len(v) == 6
            iid, t, cat, sub, price, sid = v
            assert is_int(iid) and is_int(t) and is_int(cat) and is_int(sub) and is_num(price) and is_int(sid)
            assert u["now"] - 30 * 86400 <= t < u["now"]
        for v in views[:20]:  # rows describe real items
            it = world.item(v[0])
            assert (it["category"], it["subcategory"], it["price"], it["seller_id"]) == tuple(v[2:])
            assert it["created_at"] < v[1]
        if "views" in u:
            viewed = {v[0] for v in views}
            for c in u.get("contacts", []):
                assert len(c) == 3 and all(is_int(x) for x in c)
                assert c[0] in viewed and c[1] < u["now"]
                assert world.item(c[0])["seller_id"] == c[2]
        cts = [c[1] for c in u.get("contacts", [])]
        assert all(a >= b for a, b in zip(cts, cts[1:]))
        assert all(is_int(f) for f in u.get("favorites", []))
        for iid, cnt in u.get("impressions", {}).items():
            assert is_int(iid) and is_int(cnt) and cnt >= 1
        q = u.get("queries", [])
        assert len(q) <= 20 and all(type(s) is str and s for s in q)
    n = len(sample)
    for k, c in present.items():
        assert 0 < c < n, (k, c)  # every optional key is sometimes present, sometimes not


def test_view_counts_range(sample):
    counts = [len(r.user["views"]) for r in sample if "views" in r.user]
    assert len(counts) < len(sample)  # key sometimes absent
    assert min(counts) == 0
    assert max(counts) >= 1000
    assert max(counts) <= synth.MAX_VIEWS
    assert np.median(counts) < 300  # many users with few views


def test_queries_overlap_titles(world, sample):
    vocab = set()
    for r in world.item_records(world.item_ids[:3000].tolist()):
        vocab.update(re.findall(r"\w+", r["title"].lower()))
    words = [w for r in sample for q in r.user.get("queries", []) for w in re.findall(r"\w+", q.lower())]
    assert words
    assert np.mean([w in vocab for w in words]) > 0.5


# ------------------------------------------------------------------ candidates


def test_candidates(world):
    seen_sources = set()
    for i in range(8):
        r = world.request(i, 3000)
        assert len(r.items) == len(r) == 3000
        ids = r.item_ids
        assert len(np.unique(ids)) == 3000
        c = r.candidates
        assert set(c) == {"source", "source_score", "source_rank"}
        for k, dt in (("source", np.int64), ("source_score", np.float64), ("source_rank", np.int64)):
            assert c[k].dtype == dt and c[k].shape == (3000,)
        assert c["source"].min() >= 0 and c["source"].max() <= 7
        assert c["source_rank"].min() >= 0
        assert np.all(np.isfinite(c["source_score"]))
        for s in np.unique(c["source"]):
            m = c["source"] == s
            ranks = c["source_rank"][m]
            np.testing.assert_array_equal(np.sort(ranks), np.arange(m.sum()))
            # rank follows the generator's own score
            sc = c["source_score"][m][np.argsort(ranks)]
            assert np.all(np.diff(sc) <= 0)
        seen_sources.update(c["source"].tolist())
        for it in r.items[:50]:
            assert it == world.item(it["id"])
    assert seen_sources == set(range(8))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(i=st.integers(0, 10**9), n=st.integers(1, 400))
def test_any_request_is_valid(world, i, n):
    r = world.request(i, n)
    assert len(r.items) == n and len(np.unique(r.item_ids)) == n
    assert r.candidates["source"].shape == (n,)
    assert all(isinstance(b, bytes) for b in r.item_blobs)
    clicks, contacts = world.feedback(r)
    assert np.all(contacts <= clicks)


# ------------------------------------------------------------- ground truth


def test_feedback(world):
    rates = []
    for i in range(20):
        r = world.request(i, 1000)
        clicks, contacts = world.feedback(r)
        assert clicks.dtype == np.int8 and contacts.dtype == np.int8
        assert clicks.shape == contacts.shape == (1000,)
        assert set(np.unique(clicks)) <= {0, 1} and set(np.unique(contacts)) <= {0, 1}
        assert np.all(contacts <= clicks)
        rates.append(clicks.mean())
        rel = world.relevance(r)
        assert rel.dtype == np.float64 and rel.shape == (1000,)
    assert 0.01 < np.mean(rates) < 0.2


def test_relevance_beats_source_order(world):
    rel_ndcg, src_ndcg, rnd_ndcg = [], [], []
    rnd = np.random.default_rng(0)
    for i in range(20):
        r = world.request(i, 1000)
        clicks, contacts = world.feedback(r)
        gains = clicks + 2.0 * contacts
        if gains.sum() == 0:
            continue
        rel_ndcg.append(ndcg_at_k(gains, world.relevance(r)))
        src_ndcg.append(ndcg_at_k(gains, r.candidates["source_score"]))
        rnd_ndcg.append(ndcg_at_k(gains, rnd.random(gains.size)))
    assert len(rel_ndcg) >= 15
    assert np.mean(rel_ndcg) > np.mean(src_ndcg) + 0.1
    assert np.mean(src_ndcg) > np.mean(rnd_ndcg)  # the generators are informative


def test_contacted_items_are_less_relevant(world):
    """The user's own history reaches the hidden relevance: the same candidate
    is less relevant once the user has contacted its seller about it."""
    checked = 0
    for i in range(40):
        r = world.request(i, 1000)
        c = r.hidden["contacted"]
        if not c.any():
            continue
        rel = world.relevance(r)
        hidden = dict(r.hidden, contacted=np.zeros_like(c))
        rel0 = world.relevance(synth.Request(r.request_id, r.user, r.items, r.candidates, hidden))
        assert np.all(rel[c] < rel0[c])
        np.testing.assert_array_equal(rel[~c], rel0[~c])
        checked += 1
    assert checked >= 5


def test_relevance_without_hidden_state(world):
    r = world.request(3, 300)
    bare = synth.Request(r.request_id, r.user, r.items, r.candidates)
    rel_a, rel_b = world.relevance(r), world.relevance(bare)
    # Same items and user; the only possible difference is history hidden by absent keys.
    if all(k in r.user for k in ("views", "contacts", "impressions")):
        np.testing.assert_allclose(rel_a, rel_b)
    assert rel_b.shape == (300,)


def test_ndcg_helper():
    assert ndcg_at_k([0, 0, 1], [3, 2, 1], k=3) == pytest.approx(0.5)
    assert ndcg_at_k([1, 0, 0], [3, 2, 1]) == pytest.approx(1.0)
    assert np.isnan(ndcg_at_k([0, 0], [1, 2]))
