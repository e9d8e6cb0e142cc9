"""The Go engine against pyfeat.reference, the executable specification.

Equality means identical NaN positions and every other value within 1e-6
relative (the two compute in float64 and round to float32; Go's math and the
C library's may differ in the last bit of a logarithm or a sine).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyfeat
from pyfeat import reference

from conftest import assert_same_matrix, base_item, base_user
from strategies import items, requests, users

NAMES = reference.FEATURE_NAMES


def _cands(c):
    if c is None:
        return None
    return {k: np.asarray(v, dtype=np.float64 if k == "source_score" else np.int64) for k, v in c.items()}


@settings(max_examples=int(os.environ.get("PYFEAT_PARITY_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests())
def test_parity_hypothesis(engine, req):
    user, its, cands = req
    cands = _cands(cands)
    with np.errstate(over="ignore"):  # huge prices overflow float32 to inf in both
        want = reference.compute(user, its, cands)
    got = engine.compute(user, its, cands)
    assert_same_matrix(got, want, NAMES)


@settings(max_examples=150, deadline=None)
@given(users(), items(), st.sampled_from(["price", "old_price", "lat", "lon", "seller_rating"]),
       st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_floats_are_rejected(engine, user, item, key, bad):
    item[key] = bad
    with pytest.raises(pyfeat.InputError) as info:
        engine.compute(user, [base_item(), item])
    assert info.value.position == 1 and info.value.key == key


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["lat", "lon"]), st.sampled_from([math.nan, math.inf]))
def test_non_finite_user_floats_are_rejected(engine, key, bad):
    with pytest.raises(pyfeat.InputError) as info:
        engine.compute(base_user(**{key: bad}), [base_item()])
    assert info.value.position is None and info.value.key == key


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs", "Cn", "Co")), max_size=40))
def test_tokenizer_parity(engine, text):
    # ux_query_token_hits counts distinct title tokens found in the queries:
    # a title equal to the query matches all of its distinct tokens.
    user = base_user(queries=[text])
    got = engine.compute(user, [base_item(title=text)])
    names = pyfeat.feature_names()
    tokens = reference.tokenize(text)
    assert got[0, names.index("item_title_tokens")] == len(tokens)
    assert got[0, names.index("ux_query_token_hits")] == len(set(tokens))
    assert got[0, names.index("item_title_chars")] == len(text)


def test_tokenizer_non_latin():
    assert reference.tokenize("iPhone 13 Pro, 128ГБ!") == ["iphone", "13", "pro", "128гб"]
    assert reference.tokenize("Диван УГЛОВОЙ (б/у)") == ["диван", "угловой", "б", "у"]
    assert reference.tokenize("二手 自行车，山地车") == ["二手", "自行车", "山地车"]
    assert reference.tokenize("İstanbul ΟΔΟΣ") == ["istanbul", "οδοσ"]
