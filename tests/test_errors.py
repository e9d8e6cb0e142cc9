"""Every bad input raises InputError (or TypeError) naming position and key:
never a crash, a hang, or silent garbage."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from pyfeat import InputError, InputTypeError

from conftest import base_item, base_user


def items_with(bad, position=2, n=5):
    items = [msgpack.packb(base_item(i)) for i in range(n)]
    items[position] = bad
    return items


def raises_at(engine, items, position, key, exc=InputError, match=None, user=None, candidates=None):
    with pytest.raises(exc, match=match) as info:
        engine.compute(user if user is not None else base_user(), items, candidates)
    assert info.value.position == position, info.value
    assert info.value.key == key, info.value
    if position is not None:
        assert f"item {position}" in str(info.value)
    return info.value


def test_malformed_msgpack(engine):
    raises_at(engine, items_with(b"\xc1\x00\x01"), 2, "", match="item 2")


def test_every_truncation_is_an_error(engine):
    blob = msgpack.packb(base_item(old_price=2000.0, lat=55.1, vas="xl"))
    for cut in range(len(blob)):
        with pytest.raises(InputError) as info:
            engine.compute(base_user(), items_with(blob[:cut]))
        assert info.value.position == 2
        assert info.value.key in {"", *base_item(old_price=1, lat=1, vas="").keys()}, info.value
    user = msgpack.packb(base_user())
    for cut in range(len(user)):
        with pytest.raises(InputError) as info:
            engine.compute(user[:cut], [base_item()])
        assert info.value.position is None


def test_record_that_is_not_a_map(engine):
    err = raises_at(engine, items_with(msgpack.packb([1, 2, 3])), 2, "", exc=InputTypeError, match="not a map")
    assert isinstance(err, TypeError) and isinstance(err, ValueError)


def test_missing_required_key(engine):
    item = base_item()
    del item["seller_id"]
    raises_at(engine, items_with(item), 2, "seller_id", match="missing")


def test_wrong_type(engine):
    err = raises_at(engine, items_with(base_item(price="100")), 2, "price", exc=InputTypeError, match="got str")
    assert isinstance(err, TypeError)
    raises_at(engine, items_with(base_item(created_at=1.5)), 2, "created_at", exc=InputTypeError)
    raises_at(engine, items_with(base_item(delivery=1)), 2, "delivery", exc=InputTypeError)


@pytest.mark.parametrize("price", [-0.01, -5, math.nan, math.inf])
def test_negative_or_nan_price(engine, price):
    raises_at(engine, items_with(base_item(price=price)), 2, "price", match="price|finite|>= 0")


def test_views_row_of_wrong_length(engine):
    user = base_user(views=[[1, 2, 3, 4, 5.0, 6], [1, 2, 3, 4, 5.0]])
    raises_at(engine, [base_item()], None, "views[1]", match="6 values", user=user)


def test_candidate_arrays_of_wrong_length(engine):
    items = [base_item(i) for i in range(4)]
    for key in ("source", "source_score", "source_rank"):
        cands = {key: np.zeros(3, dtype=np.int64)}
        raises_at(engine, items, None, f"candidates.{key}", match="3 entries for 4 items", candidates=cands)


def test_candidate_values(engine):
    items = [base_item(i) for i in range(4)]
    raises_at(engine, items, 1, "candidates.source", match="0..7", candidates={"source": np.array([0, 8, 1, 2])})
    raises_at(engine, items, None, "candidates.source", exc=InputTypeError,
              candidates={"source": np.array([0.0, 1.5, 1, 2])})
    raises_at(engine, items, None, "candidates.sorce", match="unknown", candidates={"sorce": [1, 2, 3, 4]})
    raises_at(engine, items, None, "candidates.source_rank", candidates={"source_rank": np.zeros((4, 1), int)})


def test_none_as_item(engine):
    err = raises_at(engine, [base_item(0), None, base_item(2)], 1, "", exc=InputTypeError, match="NoneType")
    assert isinstance(err, TypeError)


def test_items_not_a_list(engine):
    with pytest.raises(TypeError):
        engine.compute(base_user(), b"\x80")
    with pytest.raises(TypeError):
        engine.compute(base_user(), base_item())
    with pytest.raises(TypeError):
        engine.compute(base_user(), 5)


def test_user_errors_have_no_position(engine):
    with pytest.raises(InputTypeError) as info:
        engine.compute(None, [base_item()])
    assert info.value.position is None
    with pytest.raises(InputError, match="user context.*now"):
        engine.compute({"user_id": 1}, [base_item()])


def test_map_header_claiming_four_billion_entries(engine):
    bomb = b"\xdf\xff\xff\xff\xff" + msgpack.packb("id") + msgpack.packb(1)
    raises_at(engine, items_with(bomb), 2, "", match="truncated")
    views_bomb = b"\x83" + msgpack.packb("user_id") + b"\x01" + msgpack.packb("now") + b"\x01" + msgpack.packb("views") + b"\xdd\xff\xff\xff\xff"
    with pytest.raises(InputError, match="truncated") as info:
        engine.compute(views_bomb, [base_item()])
    assert info.value.key.startswith("views")


def test_trailing_bytes_are_an_error(engine):
    raises_at(engine, items_with(msgpack.packb(base_item()) + b"\x00"), 2, "", match="trailing")


def test_invalid_utf8_title(engine):
    blob = msgpack.packb(base_item(title="x")).replace(b"\xa1x", b"\xa1\xff")
    raises_at(engine, items_with(blob), 2, "title", match="UTF-8")


def test_unencodable_dict(engine):
    raises_at(engine, [base_item(), base_item(title=object())], 1, "", exc=InputTypeError, match="MessagePack")


def test_first_bad_item_is_reported(engine):
    items = [msgpack.packb(base_item(i)) for i in range(3000)]
    items[2500] = msgpack.packb(base_item(price=-1))
    items[1234] = b"\x01"
    for _ in range(5):
        with pytest.raises(InputError) as info:
            engine.compute(base_user(), items)
        assert info.value.position == 1234
