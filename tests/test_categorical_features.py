"""The categorical columns: catalogue, compute_all against the reference,
the missing value, bad categorical inputs."""

from __future__ import annotations

import hashlib
import json
import os

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyfeat
from pyfeat import cli, reference

from conftest import base_item, base_user
from strategies import requests

CAT_NAMES = reference.CAT_FEATURE_NAMES


def _cands(c):
    if c is None:
        return None
    return {k: np.asarray(v, dtype=np.float64 if k == "source_score" else np.int64) for k, v in c.items()}


def test_catalogue_has_kinds():
    cat = pyfeat.feature_catalogue()
    assert {f.kind for f in cat} == {"numeric", "categorical"}
    assert [f.name for f in cat if f.kind == "numeric"] == pyfeat.feature_names() == reference.FEATURE_NAMES
    assert [f.name for f in cat if f.kind == "categorical"] == pyfeat.categorical_feature_names() == CAT_NAMES
    # Numeric columns first, then the categorical ones: feature_names()
    # stays the numeric matrix's columns.
    kinds = [f.kind for f in cat]
    assert kinds == sorted(kinds, key=lambda k: k != "numeric")
    assert {f.group for f in cat if f.kind == "categorical"} == {"item", "source", "user", "user_item"}
    wanted = {"cat_item_category", "cat_item_subcategory", "cat_item_region", "cat_item_city", "cat_item_seller",
              "cat_item_condition", "cat_item_vas", "cat_user_platform", "cat_src_id", "cat_ux_region_category"}
    assert wanted <= set(CAT_NAMES)
    assert pyfeat.CAT_MISSING == reference.CAT_MISSING == np.iinfo(np.int64).min


def test_spec_hash_covers_the_kinds():
    lines = [f"{f.name}\t{f.kind}" for f in pyfeat.feature_catalogue()]
    assert pyfeat.spec_hash() == hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_cli_features_shows_kinds(capsys):
    assert cli.main(["features", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spec_hash"] == pyfeat.spec_hash()
    assert data["missing_categorical"] == pyfeat.CAT_MISSING
    kinds = {f["name"]: f["kind"] for f in data["features"]}
    assert kinds["item_category"] == "numeric" and kinds["cat_item_category"] == "categorical"
    assert cli.main(["features"]) == 0
    text = capsys.readouterr().out
    assert "11 categorical" in text or f"{len(CAT_NAMES)} categorical" in text
    assert any(line.split()[1:3] == ["cat_ux_region_category", "categorical"] for line in text.splitlines()[1:])


def test_compute_all_known_values(engine):
    user = base_user(platform="android", region=4)
    items = [base_item(0, city=9, condition="used", vas="xl"), base_item(1)]
    numeric, cats = engine.compute_all(user, items, {"source": np.array([3, 0])})
    assert cats.dtype == np.int64 and cats.shape == (2, len(CAT_NAMES))
    row = dict(zip(CAT_NAMES, cats[0].tolist()))
    item = items[0]
    assert row["cat_item_category"] == item["category"] and row["cat_item_seller"] == item["seller_id"]
    assert row["cat_item_city"] == 9 and row["cat_item_condition"] == 0 and row["cat_item_vas"] == 4
    assert row["cat_user_platform"] == 2 and row["cat_src_id"] == 3
    assert row["cat_ux_region_category"] == reference.cross(4, item["category"])
    missing = dict(zip(CAT_NAMES, cats[1].tolist()))
    for name in ("cat_item_condition", "cat_item_vas"):
        assert missing[name] == pyfeat.CAT_MISSING
    # The numeric matrix is compute()'s, bit for bit.
    np.testing.assert_array_equal(numeric.view(np.uint32), engine.compute(user, items, {"source": np.array([3, 0])})
                                  .view(np.uint32))


def test_compute_all_out_buffers(engine):
    items = [base_item(i) for i in range(5)]
    out = np.empty((5, len(pyfeat.feature_names())), np.float32)
    cat_out = np.empty((5, len(CAT_NAMES)), np.int64)
    res = engine.compute_all(base_user(), items, out=out, cat_out=cat_out)
    assert res.numeric is out and res.categorical is cat_out
    np.testing.assert_array_equal(cat_out, reference.compute_categorical(base_user(), items))
    with pytest.raises(ValueError, match="int64"):
        engine.compute_all(base_user(), items, cat_out=np.empty((5, len(CAT_NAMES)), np.int32))
    with pytest.raises(ValueError, match="shape"):
        engine.compute_all(base_user(), items, cat_out=np.empty((4, len(CAT_NAMES)), np.int64))
    empty = engine.compute_all(base_user(), [])
    assert empty.numeric.shape == (0, len(pyfeat.feature_names())) and empty.categorical.shape == (0, len(CAT_NAMES))


def test_missing_categorical_values(engine):
    # A user without platform or region, no candidates, an item without the
    # optional keys: every column that needs one of them is missing.
    _, cats = engine.compute_all({"user_id": 1, "now": 1_767_225_600}, [base_item()])
    row = dict(zip(CAT_NAMES, cats[0].tolist()))
    for name in ("cat_item_city", "cat_item_condition", "cat_item_vas", "cat_user_platform", "cat_src_id",
                 "cat_ux_region_category", "cat_ux_platform_category"):
        assert row[name] == pyfeat.CAT_MISSING, name
    # nil counts as absent, as for the numeric columns
    _, cats2 = engine.compute_all({"user_id": 1, "now": 1_767_225_600, "platform": None},
                                  [base_item(city=None, condition=None, vas=None)])
    np.testing.assert_array_equal(cats, cats2)


@settings(max_examples=int(os.environ.get("PYFEAT_PARITY_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests(), st.booleans())
def test_categorical_parity_hypothesis(engine, req, as_bytes):
    user, its, cands = req
    cands = _cands(cands)
    if as_bytes:  # the records as the stores return them; titles in Russian, Chinese, ...
        user = msgpack.packb(user)
        its = [msgpack.packb(i) for i in its]
    want = reference.compute_categorical(user, its, cands)
    numeric, cats = engine.compute_all(user, its, cands)
    np.testing.assert_array_equal(cats, want)
    np.testing.assert_array_equal(numeric.view(np.uint32), engine.compute(user, its, cands).view(np.uint32))


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63) + 1, 2**63 - 1))
def test_cross_is_the_go_one(engine, a, b):
    # The user's region may be any int64 (it is not a column itself); the
    # item's category may be any but the missing value.
    _, cats = engine.compute_all(base_user(platform="web", region=a), [base_item(category=b)])
    assert cats[0, CAT_NAMES.index("cat_ux_region_category")] == reference.cross(a, b) != pyfeat.CAT_MISSING
    assert cats[0, CAT_NAMES.index("cat_ux_platform_category")] == reference.cross(0, b)


# ---- bad categorical inputs: InputError naming the position and the key ----

BAD = [
    ("category", "3", pyfeat.InputTypeError),  # a string where an id is expected
    ("category", 3.5, pyfeat.InputTypeError),  # a float where an id is expected
    ("seller_id", 7.0, pyfeat.InputTypeError),
    ("city", [1], pyfeat.InputTypeError),
    ("region", True, pyfeat.InputTypeError),
    ("subcategory", 2**63, pyfeat.InputError),
    ("category", -(2**63), pyfeat.InputError),  # the missing value itself
    ("seller_id", -(2**63), pyfeat.InputError),
    ("city", -(2**63), pyfeat.InputError),
    ("condition", "новый", pyfeat.InputError),  # not a known value, non-Latin
    ("condition", "二手", pyfeat.InputError),
    ("vas", "ХL", pyfeat.InputError),  # a Cyrillic Х
    ("vas", 3, pyfeat.InputTypeError),
    ("condition", b"new", pyfeat.InputTypeError),
]


@pytest.mark.parametrize("key,value,exc", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_categorical_item_value(engine, key, value, exc):
    items = [base_item(0), base_item(1), base_item(2, **{key: value})]
    for as_bytes in (False, True):
        its = [msgpack.packb(i, use_bin_type=True) for i in items] if as_bytes else items
        with pytest.raises(exc) as info:
            engine.compute_all(base_user(), its)
        assert info.value.position == 2 and info.value.key == key, (info.value.position, info.value.key)
        assert isinstance(info.value, pyfeat.InputError)


@pytest.mark.parametrize("value", ["планшет", "web ", 1, ""])
def test_bad_platform(engine, value):
    with pytest.raises(pyfeat.InputError) as info:
        engine.compute_all(base_user(platform=value), [base_item()])
    assert info.value.position is None and info.value.key == "platform"


def test_bad_candidate_source(engine):
    items = [base_item(i) for i in range(3)]
    with pytest.raises(pyfeat.InputError) as info:
        engine.compute_all(base_user(), items, {"source": np.array([0, 9, 1])})
    assert info.value.position == 1 and info.value.key == "candidates.source"
    with pytest.raises(pyfeat.InputError) as info:
        engine.compute_all(base_user(), items, {"source": np.array([0, 1])})
    assert info.value.key == "candidates.source"
    with pytest.raises((TypeError, ValueError)):
        engine.compute_all(base_user(), items, {"source": np.array([0.5, 1.0, 2.0])})
