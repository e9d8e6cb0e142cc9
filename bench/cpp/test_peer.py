"""The C++ peer against pyfeat.reference: same matrix on synthetic requests,
same tokens, ValueError (never a crash) on bad input.

    make cpp-peer && .venv/bin/python -m pytest -q bench/cpp/test_peer.py

Skipped when the module is not built.
"""

from __future__ import annotations

import sys
import threading
import unicodedata
from pathlib import Path

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat import reference
from shared import assert_same_matrix  # the comparison rule of the test suite, used as is

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "build"))
peer = pytest.importorskip("pyfeat_cpp_peer", reason="C++ peer not built: run `make cpp-peer`")


NAMES = reference.FEATURE_NAMES
SPREAD = (12, 1000)  # requests, candidates each (the world: shared.SMALL_WORLD)


def peer_compute(req, candidates=None, threads=1):
    c = req.candidates if candidates is None else candidates
    return peer.compute(
        req.user_blob, req.item_blobs, c.get("source"), c.get("source_score"), c.get("source_rank"), threads=threads
    )


def test_feature_names():
    assert peer.feature_names() == pyfeat.feature_names() == NAMES
    assert peer.n_features == len(NAMES) == 77


def test_peer_equals_reference_on_12k_pairs(spread_requests):
    pairs = 0
    n_views = []
    for req in spread_requests:
        want = reference.compute(req.user_blob, req.item_blobs, req.candidates)
        got = peer_compute(req, threads=1)
        assert_same_matrix(got, want, NAMES)
        assert np.isnan(got).any() and not np.isnan(got).all()
        for threads in (2, 0, 7):
            assert peer_compute(req, threads=threads).tobytes() == got.tobytes(), threads
        pairs += got.shape[0]
        n_views.append(len(req.user.get("views") or []))
    assert pairs >= 10_000
    assert max(n_views) >= 300 and min(n_views) < 50, n_views


def test_candidates_absent_or_partial(spread_requests):
    req = spread_requests[1]
    c = req.candidates
    for given in ({}, {"source": c["source"]}, {"source_score": c["source_score"]}, {"source_rank": c["source_rank"]}):
        want = reference.compute(req.user_blob, req.item_blobs, given or None)
        got = peer.compute(req.user_blob, req.item_blobs, threads=2, **given)
        assert_same_matrix(got, want, NAMES)


def test_sparse_records_and_nil_values(spread_requests):
    # Optional keys given as nil instead of absent; the user without history.
    req = spread_requests[2]
    user = dict(req.user)
    for key in ("views", "contacts", "favorites", "impressions", "queries", "interests", "lat", "platform"):
        user[key] = None
    items = [dict(it, old_price=None, city=None, vas=None, lat=None) for it in req.items[:200]]
    user_blob = msgpack.packb(user)
    item_blobs = [msgpack.packb(it) for it in items]
    want = reference.compute(user_blob, item_blobs)
    got = peer.compute(user_blob, item_blobs)
    assert_same_matrix(got, want, NAMES)


def test_empty_request(spread_requests):
    got = peer.compute(spread_requests[0].user_blob, [])
    assert got.shape == (0, 77) and got.dtype == np.float32


def test_concurrent_python_threads(spread_requests):
    req = spread_requests[3]
    want = peer_compute(req, threads=1).tobytes()
    results = []

    def call():
        results.append(peer_compute(req, threads=2).tobytes())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want] * 4


def test_tokenize_matches_reference_on_titles_and_queries(spread_requests):
    texts = [it["title"] for req in spread_requests for it in req.items]
    texts += [q for req in spread_requests for q in req.user.get("queries") or []]
    assert any("\u0400" <= ch <= "\u04ff" for t in texts for ch in t), "no Cyrillic"
    assert any("\u4e00" <= ch <= "\u9fff" for t in texts for ch in t), "no CJK"
    for t in texts:
        assert peer.tokenize(t) == reference.tokenize(t), t


def test_tokenize_every_code_point_agrees_up_to_unicode_version():
    """Letter/digit classes and lowercasing of every code point equal
    Python's, except code points that Python's (older) Unicode database does
    not assign yet (ICU knows a newer Unicode version)."""
    skew = []
    for block in range(0, 0x110000, 256):
        chars = [chr(cp) for cp in range(block, block + 256) if not 0xD800 <= cp <= 0xDFFF]
        text = "".join(chars)
        if peer.tokenize(text) == reference.tokenize(text):
            continue
        for ch in chars:
            s = "a" + ch + "b"  # ch either joins the two tokens or separates them
            if peer.tokenize(s) != reference.tokenize(s):
                skew.append(ch)
    assert all(unicodedata.category(ch) == "Cn" for ch in skew), [hex(ord(ch)) for ch in skew[:20]]


def _item(**overrides):
    item = {
        "id": 1, "title": "Диван IKEA", "category": 3, "subcategory": 31, "price": 10.5,
        "created_at": 1_767_000_000, "seller_id": 7, "region": 5,
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not _DROP}


_DROP = object()
USER = msgpack.packb({"user_id": 1, "now": 1_767_225_600, "views": [[1, 1_767_225_000, 3, 31, 100.0, 7]]})
GOOD = msgpack.packb(_item())

BAD_ITEMS = {
    "truncated": GOOD[:-3],
    "trailing bytes": GOOD + b"\x00",
    "empty": b"",
    "not a map": msgpack.packb([1, 2, 3]),
    "garbage": b"\xc1\xc1\xc1",
    "missing id": msgpack.packb(_item(id=_DROP)),
    "nil price": msgpack.packb(_item(price=None)),
    "negative price": msgpack.packb(_item(price=-1)),
    "nan price": msgpack.packb(_item(price=float("nan"))),
    "float id": msgpack.packb(_item(id=1.5)),
    "str category": msgpack.packb(_item(category="3")),
    "bin title": msgpack.packb(_item(title=b"x"), use_bin_type=True),
    "bad utf-8 title": msgpack.packb(_item(title=b"\xff\xfe"), use_bin_type=False),
    "unknown vas": msgpack.packb(_item(vas="x9")),
    "int id beyond int64": msgpack.packb(_item(id=2**64 - 1)),
    "non-str key": msgpack.packb({**_item(), 5: 1}),
    "array header claims 2^32-1": b"\xdd\xff\xff\xff\xff",
    "map header claims 2^32-1": b"\xdf\xff\xff\xff\xff",
    "str header claims 4 GiB": b"\x81\xa5title\xdb\xff\xff\xff\xff",
    "deep nesting": b"\x81\xa2zz" + b"\x91" * 100_000 + b"\xc0",
}


@pytest.mark.parametrize("name", list(BAD_ITEMS))
def test_bad_item_raises_value_error(name):
    items = [GOOD] * 100 + [BAD_ITEMS[name]] + [GOOD] * 100
    with pytest.raises(ValueError):
        peer.compute(USER, items, threads=2)


BAD_USERS = {
    "truncated": USER[:-2],
    "not a map": msgpack.packb(5),
    "missing now": msgpack.packb({"user_id": 1}),
    "nil user_id": msgpack.packb({"user_id": None, "now": 1}),
    "view row of 5": msgpack.packb({"user_id": 1, "now": 1, "views": [[1, 2, 3, 4, 5]]}),
    "views not an array": msgpack.packb({"user_id": 1, "now": 1, "views": {"a": 1}}),
    "interest weight above 1": msgpack.packb({"user_id": 1, "now": 1, "interests": {3: 1.5}}),
    "unknown platform": msgpack.packb({"user_id": 1, "now": 1, "platform": "tv"}),
    "query not a str": msgpack.packb({"user_id": 1, "now": 1, "queries": [5]}),
}


@pytest.mark.parametrize("name", list(BAD_USERS))
def test_bad_user_raises_value_error(name):
    with pytest.raises(ValueError):
        peer.compute(BAD_USERS[name], [GOOD] * 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": "not bytes"},
        {"items": [GOOD, None]},
        {"items": "not a list"},
        {"source": np.zeros(3, dtype=np.int64)},
        {"source_score": np.zeros((10, 2))},
        {"source": np.full(10, 9, dtype=np.int64)},
        {"source_rank": np.full(10, -1, dtype=np.int64)},
        {"source": np.zeros(10, dtype=np.float64) + 0.5},
    ],
    ids=lambda kw: next(iter(kw)),
)
def test_bad_arguments_raise_value_error(kwargs):
    args = {"user": USER, "items": [GOOD] * 10, **kwargs}
    with pytest.raises(ValueError):
        peer.compute(**args)


def test_still_works_after_errors(spread_requests):
    for name in BAD_ITEMS:
        with pytest.raises(ValueError):
            peer.compute(USER, [BAD_ITEMS[name]])
    req = spread_requests[0]
    want = reference.compute(req.user_blob, req.item_blobs, req.candidates)
    assert_same_matrix(peer_compute(req, threads=2), want, NAMES)
