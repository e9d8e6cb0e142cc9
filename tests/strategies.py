"""Hypothesis strategies for valid pyfeat inputs (DESIGN.md's records).

Ids and categories are drawn from small pools so that the user x item
features (views of the category, contacted sellers, query tokens) match
often; optional keys are present or absent independently.
"""

from __future__ import annotations

from hypothesis import strategies as st

NOW = 1_767_225_600
INT64 = st.integers(-(2**63), 2**63 - 1)
IDS = st.one_of(st.integers(0, 20), INT64)
CATS = st.one_of(st.integers(0, 6), INT64)
WORDS = ["диван", "Диван", "iPhone", "IPHONE", "13", "二手", "自行车", "б/у", "Straße", "İstanbul", "ΟΔΟΣ", "pro", "новый"]
TEXT = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
    # Cn (unassigned in this Python's Unicode) is excluded: Go may know a
    # newer Unicode version, where such a character can be a letter.
    st.text(st.characters(exclude_categories=("Cs", "Cn", "Co")), max_size=30),
)
PRICE = st.one_of(
    st.integers(0, 10**9),
    st.floats(0, 1e300, allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 0.0, 1, 999.99]),
)
# Unix seconds in [0, 2^40], the range `now` has too (milliseconds are refused).
TS = st.one_of(st.integers(NOW - 90 * 86400, NOW + 3600), st.integers(0, 2**40))
COUNT = st.integers(0, 2**62)


def _optional(draw, d: dict, key: str, strategy) -> None:
    if draw(st.booleans()):
        d[key] = draw(st.one_of(st.none(), strategy) if draw(st.integers(0, 9)) == 0 else strategy)


@st.composite
def items(draw, i: int = 0) -> dict:
    item = {
        "id": draw(IDS),
        "title": draw(TEXT),
        "category": draw(CATS),
        "subcategory": draw(CATS),
        "price": draw(PRICE),
        "created_at": draw(TS),
        "seller_id": draw(IDS),
        "region": draw(st.integers(0, 3)),
    }
    for key, strat in [
        ("old_price", PRICE),
        ("description_len", COUNT),
        ("city", st.integers(0, 3)),
        ("lat", st.floats(-90, 90)),
        ("lon", st.floats(-180, 180)),
        ("updated_at", TS),
        ("seller_rating", st.floats(0, 5)),
        ("seller_reviews", COUNT),
        ("seller_active_items", COUNT),
        ("seller_is_company", st.booleans()),
        ("photos", st.integers(0, 30)),
        ("has_video", st.booleans()),
        ("delivery", st.booleans()),
        ("condition", st.sampled_from(["new", "used"])),
        ("vas", st.sampled_from(["", "highlight", "x2", "x5", "xl"])),
        ("impressions_7d", COUNT),
        ("views_7d", COUNT),
        ("contacts_7d", COUNT),
        ("favorites_7d", COUNT),
        ("views_total", COUNT),
        ("unknown_extra", st.one_of(INT64, st.text(max_size=3), st.lists(INT64, max_size=2))),
    ]:
        _optional(draw, item, key, strat)
    return item


WEIGHTS = st.dictionaries(CATS, st.floats(0, 1), max_size=6)


@st.composite
def users(draw) -> dict:
    user = {"user_id": draw(INT64), "now": draw(st.one_of(st.just(NOW), st.integers(0, 2**40)))}
    view_row = st.tuples(IDS, TS, CATS, CATS, PRICE, IDS).map(list)
    for key, strat in [
        ("platform", st.sampled_from(["web", "ios", "android"])),
        ("tz_offset_min", st.integers(-1440, 1440)),
        ("region", st.integers(0, 3)),
        ("city", st.integers(0, 3)),
        ("lat", st.floats(-90, 90)),
        ("lon", st.floats(-180, 180)),
        ("interests", WEIGHTS),
        ("sub_interests", WEIGHTS),
        ("views", st.lists(view_row, max_size=30)),
        ("contacts", st.lists(st.tuples(IDS, TS, IDS).map(list), max_size=5)),
        ("favorites", st.lists(IDS, max_size=5)),
        ("impressions", st.dictionaries(IDS, COUNT, max_size=5)),
        ("queries", st.lists(TEXT, max_size=4)),
    ]:
        _optional(draw, user, key, strat)
    return user


@st.composite
def requests(draw, max_items: int = 12):
    user = draw(users())
    n = draw(st.integers(0, max_items))
    its = [draw(items()) for _ in range(n)]
    cands = None
    if draw(st.booleans()):
        cands = {}
        if draw(st.booleans()):
            cands["source"] = draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))
        if draw(st.booleans()):
            cands["source_score"] = draw(
                st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=n, max_size=n)
            )
        if draw(st.booleans()):
            cands["source_rank"] = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
    return user, its, cands
