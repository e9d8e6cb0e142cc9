"""The public API: names, spec hash, shapes, bytes vs dicts."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat import reference

from conftest import NOW, assert_same_matrix, base_item, base_user


def test_public_api_is_explicit():
    assert set(pyfeat.__all__) >= {"FeatureEngine", "feature_names", "spec_hash", "InputError"}
    assert not any(name.startswith("_") and name != "__version__" for name in pyfeat.__all__)


def test_at_least_60_features_with_stable_names():
    names = pyfeat.feature_names()
    assert len(names) >= 60
    assert len(set(names)) == len(names)
    assert names == reference.FEATURE_NAMES
    groups = {f.group for f in pyfeat.feature_catalogue()}
    assert groups == {"item", "source", "user", "user_item"}
    assert all(f.definition for f in pyfeat.feature_catalogue())


def test_spec_hash_is_sha256_of_names_and_kinds():
    import hashlib

    lines = [f"{n}\tnumeric" for n in pyfeat.feature_names()]
    lines += [f"{n}\tcategorical" for n in pyfeat.categorical_feature_names()]
    want = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    assert pyfeat.spec_hash() == want


def test_empty_item_list(engine):
    out = engine.compute(base_user(), [])
    assert out.shape == (0, len(pyfeat.feature_names())) and out.dtype == np.float32
    out = engine.compute(base_user(), [], {"source": np.array([], dtype=np.int64)})
    assert out.shape[0] == 0


def test_bytes_and_dicts_give_identical_matrices(engine):
    user = base_user()
    items = [base_item(i) for i in range(50)]
    cands = {"source": np.arange(50) % 8, "source_score": np.linspace(0, 1, 50), "source_rank": np.arange(50)}
    from_dicts = engine.compute(user, items, cands)
    from_bytes = engine.compute(msgpack.packb(user), [msgpack.packb(i) for i in items], cands)
    mixed = engine.compute(user, [msgpack.packb(i) if k % 2 else i for k, i in enumerate(items)], cands)
    assert from_dicts.tobytes() == from_bytes.tobytes() == mixed.tobytes()
    assert_same_matrix(from_dicts, reference.compute(user, items, cands), pyfeat.feature_names())


def test_numpy_values_in_dicts_are_accepted(engine):
    item = base_item(price=np.float32(10.5), category=np.int64(3))
    assert engine.compute(base_user(), [item])[0, 0] == 10.5


def test_missing_optional_keys_give_nan_not_errors(engine):
    user = {"user_id": 1, "now": NOW}
    out = engine.compute(user, [base_item()])
    names = pyfeat.feature_names()
    row = dict(zip(names, out[0]))
    assert np.isnan(row["ux_interest_cat"]) and np.isnan(row["src_id"]) and np.isnan(row["ux_distance_km"])
    assert row["item_price"] == 1500.0
    assert_same_matrix(out, reference.compute(user, [base_item()]), names)


def test_candidates_are_optional_per_array(engine):
    out = engine.compute(base_user(), [base_item(0), base_item(1)], {"source_rank": [4, 0]})
    names = pyfeat.feature_names()
    assert np.isnan(out[:, names.index("src_id")]).all()
    assert out[:, names.index("src_rank")].tolist() == [4.0, 0.0]


def test_out_buffer_is_written_in_place(engine):
    buf = np.full((3, len(pyfeat.feature_names())), -7, dtype=np.float32)
    res = engine.compute(base_user(), [base_item(i) for i in range(3)], out=buf)
    assert res is buf and not (buf == -7).all()
    with pytest.raises(ValueError, match="shape"):
        engine.compute(base_user(), [base_item()], out=buf)


def test_threads_argument_is_checked():
    with pytest.raises(ValueError):
        pyfeat.FeatureEngine(threads=0)
    with pytest.raises(TypeError):
        pyfeat.FeatureEngine(threads="4")
    assert pyfeat.FeatureEngine(threads=1).threads == 1


def test_results_do_not_depend_on_thread_count():
    user = base_user()
    items = [base_item(i) for i in range(500)]
    one = pyfeat.FeatureEngine(threads=1).compute(user, items)
    two = pyfeat.FeatureEngine(threads=2).compute(user, items)
    many = pyfeat.FeatureEngine(threads=16).compute(user, items)
    assert one.tobytes() == two.tobytes() == many.tobytes()


def test_cli_lists_features(capsys):
    from pyfeat.cli import main

    assert main(["features"]) == 0
    out = capsys.readouterr().out
    assert pyfeat.spec_hash() in out and "ux_query_overlap" in out


def test_user_handles_are_consumed_once_and_freed_on_python_errors(engine):
    from pyfeat import _native
    from pyfeat._inputs import PreparedRequest

    user, items = msgpack.packb(base_user()), [msgpack.packb(base_item(i)) for i in range(3)]
    want = engine.compute(user, items)
    # A Python-side error after the user context was handed to Go: the
    # context is released, and the engine goes on as before.
    for _ in range(50):
        with pytest.raises(ValueError):
            engine.compute(user, items, out=np.empty((2, engine.n_features), dtype=np.float32))
        with pytest.raises(pyfeat.InputError):
            engine.compute(user, items, candidates={"source": np.zeros(7, dtype=np.int64)})
    assert engine.compute(user, items).tobytes() == want.tobytes()
    # A handle is good for one call; a second use is a clear error, and
    # discarding a consumed handle is harmless.
    h = _native.begin_user(user)
    _native.discard_user(h)
    _native.discard_user(h)
    lib, ffi = _native.lib(), _native.ffi
    out = np.empty((3, engine.n_features), dtype=np.float32)
    req = PreparedRequest(user, items, None)
    st = _native.new_status()
    code = lib.pf_compute(h, *req.c_args(ffi), 1, ffi.from_buffer("float[]", out), out.size, ffi.NULL, ffi.NULL,
                          ffi.NULL, 0, st)
    with pytest.raises(ValueError, match="user handle"):
        _native.check(code, st)
