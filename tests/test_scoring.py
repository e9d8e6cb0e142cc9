"""Scoring: the native evaluator against catboost itself, the Ranker's
contract (feature check, rank == predict(compute), reload), and the capi
backend against the C test double."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoost, CatBoostClassifier, CatBoostRanker, CatBoostRegressor, Pool

import pyfeat
from pyfeat import ModelError
from shared import save_pyfeat_model, training_set

ROOT = Path(__file__).resolve().parents[1]

# (name, estimator factory, n_classes or None): depth 1..10, 1..1000 trees,
# four losses, both NaN modes, border_count up to 1024.
CASES = [
    ("logloss_d1_t1", lambda: CatBoostClassifier(depth=1, iterations=1, loss_function="Logloss"), 2),
    ("logloss_d3_min", lambda: CatBoostClassifier(depth=3, iterations=200, nan_mode="Min"), 2),
    ("logloss_d6_max", lambda: CatBoostClassifier(depth=6, iterations=300, nan_mode="Max", border_count=1024), 2),
    ("logloss_d10", lambda: CatBoostClassifier(depth=10, iterations=40, border_count=64), 2),
    ("rmse_d2_1000", lambda: CatBoostRegressor(depth=2, iterations=1000, learning_rate=0.05), None),
    ("rmse_d6_1000_max", lambda: CatBoostRegressor(depth=6, iterations=1000, nan_mode="Max"), None),
    ("rmse_d8_min_1024", lambda: CatBoostRegressor(depth=8, iterations=60, nan_mode="Min", border_count=1024), None),
    ("rmse_d1", lambda: CatBoostRegressor(depth=1, iterations=50, border_count=2), None),
    ("multiclass_d4", lambda: CatBoostClassifier(depth=4, iterations=100, loss_function="MultiClass"), 4),
    ("multiclass_d7_max", lambda: CatBoostClassifier(depth=7, iterations=30, loss_function="MultiClass", nan_mode="Max"), 3),
    ("yetirank_d6", lambda: CatBoostRanker(depth=6, iterations=150, loss_function="YetiRank"), "rank"),
    ("yetirank_d9_max", lambda: CatBoostRanker(depth=9, iterations=20, loss_function="YetiRank", nan_mode="Max"), "rank"),
    ("rmse_d5_forbidden", lambda: CatBoostRegressor(depth=5, iterations=80, nan_mode="Forbidden"), None),
]


def _data(seed: int, n: int = 400, f: int = 12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3] * 2) / 2  # few distinct values: many exact border hits
    X[rng.random((n, f)) < 0.08] = np.nan
    X[:, 0] = np.where(rng.random(n) < 0.3, np.nan, X[:, 0])
    y_lin = np.nan_to_num(X[:, 0]) * 1.5 - np.nan_to_num(X[:, 1]) + np.sin(np.nan_to_num(X[:, 2]) * 3)
    return rng, X, y_lin


def _with_border_values(model_json: dict, X: np.ndarray, rng) -> np.ndarray:
    """Rows whose values sit exactly on the model's borders, plus NaN."""
    rows = []
    for feat in model_json["features_info"].get("float_features", []):
        idx = feat["flat_feature_index"]
        for b in feat.get("borders") or []:
            row = X[rng.integers(len(X))].copy()
            row[idx] = np.float32(b)
            rows.append(row)
    rows = np.array(rows[:2000], dtype=np.float32).reshape(-1, X.shape[1])
    extra = np.full((2, X.shape[1]), np.nan, dtype=np.float32)
    with np.errstate(over="ignore"):  # the largest border's successor is inf: fine
        above = np.nextafter(rows, np.float32(np.inf))
    return np.vstack([X, rows, extra, above])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = {}
    for k, (name, make, kind) in enumerate(CASES):
        rng, X, y_lin = _data(k)
        est = make()
        est.set_params(random_seed=k, verbose=False, thread_count=2, allow_writing_files=False)
        if name.endswith("forbidden"):
            X = np.nan_to_num(X, nan=0.0)
        if kind == "rank":
            groups = np.repeat(np.arange(len(X) // 20), 20)
            y = np.clip(np.round(y_lin + rng.normal(size=len(X))), 0, 4)
            est.fit(Pool(X, y, group_id=groups))
        elif kind == 2:
            est.fit(X, (y_lin + rng.normal(size=len(X)) > 0).astype(int))
        elif kind in (3, 4):
            est.fit(X, np.digitize(y_lin, np.quantile(y_lin, np.linspace(0, 1, kind + 1)[1:-1])))
        else:
            est.fit(X, y_lin + 0.1 * rng.normal(size=len(X)))
        d = tmp_path_factory.mktemp(name)
        est.save_model(str(d / "m.json"), format="json")
        est.save_model(str(d / "m.cbm"))
        Xt = _with_border_values(json.loads((d / "m.json").read_text()), X, rng)
        if name.endswith("forbidden"):
            Xt = np.nan_to_num(Xt, nan=0.0)
        out[name] = (est, d, Xt)
    return out


def test_at_least_12_models_cover_the_space():
    assert len(CASES) >= 12


@pytest.mark.parametrize("name", [c[0] for c in CASES])
@pytest.mark.parametrize("fmt", ["json", "cbm"])
def test_native_equals_catboost(trained, name, fmt):
    est, d, X = trained[name]
    want = CatBoost.predict(est, X, prediction_type="RawFormulaVal")
    model = pyfeat.Model(d / f"m.{fmt}")
    got = model.predict(X)
    assert got.shape == want.shape
    # The evaluator reproduces catboost's arithmetic; the bound allows for
    # nothing but the last bit.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.array_equal(model.predict(X[:1]), want[:1])
    model.close()


def test_predict_threads_do_not_change_results(trained):
    est, d, X = trained["rmse_d6_1000_max"]
    X = np.vstack([X] * 10)
    one = pyfeat.Model(d / "m.json", threads=1).predict(X)
    two = pyfeat.Model(d / "m.json", threads=2).predict(X)
    assert one.tobytes() == two.tobytes()


def test_predict_validates_input(trained):
    _, d, X = trained["rmse_d2_1000"]
    model = pyfeat.Model(d / "m.json")
    with pytest.raises(ValueError, match="features per row"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="2-D"):
        model.predict(X[0])
    with pytest.raises(TypeError):
        model.predict(np.array([["a"] * X.shape[1]]))
    assert model.predict(X.astype(np.float64)).tobytes() == model.predict(X).tobytes()
    assert model.predict(np.empty((0, X.shape[1]), np.float32)).shape == (0,)
    model.close()
    with pytest.raises(ModelError, match="closed"):
        model.predict(X)


def test_categorical_models_are_served(tmp_path):
    # More in test_categorical.py; here: the JSON export written with its
    # pool (which adds cat_features_hash) loads too.
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 10, "c": ["x", "y", "z", "x"] * 10})
    m = CatBoostRegressor(iterations=5, verbose=False, allow_writing_files=False).fit(X, np.arange(40.0), cat_features=["c"])
    m.save_model(str(tmp_path / "cat.json"), format="json", pool=Pool(X, cat_features=["c"]))
    m.save_model(str(tmp_path / "cat.cbm"))
    want = m.predict(X, prediction_type="RawFormulaVal")
    for p in ("cat.json", "cat.cbm"):
        with pyfeat.Model(tmp_path / p) as model:
            assert (model.n_features, model.n_cat_features) == (1, 1)
            np.testing.assert_array_equal(model.predict(X), want)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_json", "missing", "suffix"])
def test_corrupt_model_files_give_clear_errors(trained, tmp_path, damage):
    _, d, _ = trained["rmse_d2_1000"]
    text = (d / "m.json").read_bytes()
    path = tmp_path / "bad.json"
    if damage == "truncate":
        path.write_bytes(text[: len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xffnot json" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_json":
        path.write_text('{"oblivious_trees": 5}')
    elif damage == "missing":
        path = tmp_path / "nope.json"
    else:
        path = tmp_path / "model.txt"
        path.write_bytes(text)
    with pytest.raises(ModelError) as info:
        pyfeat.Model(path)
    assert str(path.name) in str(info.value) or "nope" in str(info.value)
    cbm = tmp_path / "bad.cbm"
    cbm.write_bytes((d / "m.cbm").read_bytes()[:100])
    with pytest.raises(ModelError):
        pyfeat.Model(cbm)


# ---- Ranker -------------------------------------------------------------

def _train_pyfeat_model(world, path: Path, seed: int, iterations: int = 60) -> Path:
    data = training_set(world, range(1000 * seed, 1000 * seed + 6), 400)
    m = CatBoostClassifier(iterations=iterations, depth=5, random_seed=seed, verbose=False, allow_writing_files=False)
    m.fit(pd.DataFrame(data["X"], columns=pyfeat.feature_names()), data["clicks"])
    return save_pyfeat_model(m, path)


@pytest.fixture(scope="module")
def model_paths(world, tmp_path_factory):
    d = tmp_path_factory.mktemp("ranker")
    return _train_pyfeat_model(world, d / "a.json", 1), _train_pyfeat_model(world, d / "b.json", 2, iterations=90)


def test_rank_equals_predict_of_compute(world, model_paths):
    ranker = pyfeat.Ranker(model_paths[0])
    for i in range(3):
        req = world.request(500 + i, 3000)
        feats = np.empty((3000, len(pyfeat.feature_names())), np.float32)
        order, scores = ranker.rank(req.user_blob, req.item_blobs, req.candidates, features_out=feats)
        X = pyfeat.FeatureEngine().compute(req.user_blob, req.item_blobs, req.candidates)
        assert feats.tobytes() == X.tobytes()
        pred = ranker.predict(X)
        assert sorted(order.tolist()) == list(range(3000))
        assert np.array_equal(pred[order], scores)
        assert np.all(np.diff(scores) <= 0)
        top = ranker.rank(req.user, req.items, req.candidates, top_k=100)
        assert np.array_equal(top.order, order[:100]) and np.array_equal(top.scores, scores[:100])
    ranker.close()


def test_rank_ties_keep_input_order(model_paths):
    ranker = pyfeat.Ranker(model_paths[0])
    from conftest import base_item, base_user

    items = [base_item(0)] * 5 + [base_item(1)] * 3
    order, scores = ranker.rank(base_user(), items)
    tied = [i for i in order if i < 5]
    assert tied == sorted(tied) and len(tied) == 5
    empty = ranker.rank(base_user(), [])
    assert empty.order.shape == (0,) and empty.scores.dtype == np.float64


def test_rank_input_errors_are_input_errors(model_paths):
    ranker = pyfeat.Ranker(model_paths[0])
    from conftest import base_item, base_user

    with pytest.raises(pyfeat.InputError) as info:
        ranker.rank(base_user(), [base_item(0), base_item(1, price=-1)])
    assert info.value.position == 1 and info.value.key == "price"


def test_arank(world, model_paths):
    ranker = pyfeat.Ranker(model_paths[0])
    req = world.request(77, 3000)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        results = await asyncio.gather(*[ranker.arank(req.user_blob, req.item_blobs, req.candidates) for _ in range(4)])
        t.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    want = ranker.rank(req.user_blob, req.item_blobs, req.candidates)
    for order, scores in results:
        assert np.array_equal(order, want.order) and np.array_equal(scores, want.scores)
    assert ticks > 1  # the event loop kept running while ranking


def test_other_feature_lists_are_refused(tmp_path, model_paths):
    names = pyfeat.feature_names()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(names))).astype(np.float32)
    cases = {
        "renamed": names[:-1] + ["ux_something_else"],
        "fewer": names[:-3],
        "reordered": [names[1], names[0]] + names[2:],
    }
    for label, cols in cases.items():
        m = CatBoostRegressor(iterations=3, verbose=False, allow_writing_files=False)
        m.fit(pd.DataFrame(X[:, : len(cols)], columns=cols), X[:, 0])
        m.save_model(str(tmp_path / f"{label}.json"), format="json")
        with pytest.raises(ModelError) as info:
            pyfeat.Ranker(tmp_path / f"{label}.json")
        msg = str(info.value)
        if label == "renamed":
            assert "ux_something_else" in msg and names[-1] in msg
        elif label == "fewer":
            assert all(n in msg for n in names[-3:])
        else:
            assert names[0] in msg and "order" in msg
    # a model that records another spec hash
    m = json.loads(Path(model_paths[0]).read_text())
    m["model_info"][pyfeat.SPEC_HASH_KEY] = "0000000000000000"
    (tmp_path / "hash.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="spec hash"):
        pyfeat.Ranker(tmp_path / "hash.json")


def test_reload_while_eight_threads_rank(world, model_paths):
    a_path, b_path = model_paths
    req = world.request(31, 1500)
    args = (req.user_blob, req.item_blobs, req.candidates)
    expected = {}
    for p in model_paths:
        with pyfeat.Ranker(p) as r:
            res = r.rank(*args)
            expected[p] = (res.order.tobytes(), res.scores.tobytes())
    assert expected[a_path] != expected[b_path]
    ranker = pyfeat.Ranker(a_path)
    stop = threading.Event()
    failures, seen = [], {a_path: 0, b_path: 0}
    lock = threading.Lock()

    def serve():
        while not stop.is_set():
            try:
                res = ranker.rank(*args)
            except Exception as e:  # any failed request fails the test
                failures.append(repr(e))
                return
            key = (res.order.tobytes(), res.scores.tobytes())
            match = [p for p, v in expected.items() if v == key]
            with lock:
                if not match:
                    failures.append("scored by a mix of models")
                    return
                seen[match[0]] += 1

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for t in threads:
        t.start()
    for k in range(20):
        ranker.reload(b_path if k % 2 == 0 else a_path)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:3]
    assert seen[a_path] > 0 and seen[b_path] > 0, seen
    # a failed reload keeps the old model serving
    with pytest.raises(ModelError):
        ranker.reload(ROOT / "README.md")
    assert ranker.rank(*args).scores.size == 1500
    ranker.close()



def test_reload_never_fails_a_request(world, model_paths):
    """16 threads rank while the model is reloaded 400 times, with the GIL
    handed over every microsecond so that a reload lands between any two
    bytecodes of a request: Go acquires the model a request uses, so none
    fails (the window between reading the model and using it is gone)."""
    req = world.request(32, 64)
    args = (req.user_blob, req.item_blobs, req.candidates)
    ranker = pyfeat.Ranker(model_paths[0])
    stop = threading.Event()
    failures: list[str] = []
    served = [0] * 16

    def serve(i):
        while not stop.is_set():
            try:
                ranker.rank(*args)
            except Exception as e:  # any failed request fails the test
                failures.append(repr(e))
            served[i] += 1

    saved = sys.getswitchinterval()
    threads = [threading.Thread(target=serve, args=(i,)) for i in range(16)]
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        # ~40 s on an idle 2-core machine, 75 s with it shared: the bound
        # catches a hang, not slowness.
        deadline = time.monotonic() + 300
        for k in range(400):
            ranker.reload(model_paths[(k + 1) % 2])
            assert time.monotonic() < deadline, f"only {k} reloads in 300 s"
    finally:
        stop.set()
        sys.setswitchinterval(saved)
        for t in threads:
            t.join(timeout=60)
    assert not failures, f"{len(failures)} of {sum(served)} requests failed: {failures[:3]}"
    assert all(served), served
    ranker.close()

# ---- capi backend against the test double --------------------------------

@pytest.fixture(scope="module")
def fake_lib(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the CatBoost C API test double")
    out = tmp_path_factory.mktemp("fakecb") / "libfakecatboost.so"
    src = ROOT / "catboostcapi" / "testdata" / "fake_catboostmodel.c"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], check=True)
    return out


def _fake_model(path: Path, weights: np.ndarray, bias: np.ndarray, names=None, meta=None) -> Path:
    lines = ["fake-catboost-model v1", f"{weights.shape[1]} {weights.shape[0]}"]
    for d in range(weights.shape[0]):
        lines.append(" ".join(repr(float(w)) for w in weights[d]) + f" {float(bias[d])!r}")
    for i, n in enumerate(names or []):
        lines.append(f"name {i} {n}")
    for k, v in (meta or {}).items():
        lines.append(f"meta {k} {v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_capi_file_that_crashes_the_library_is_refused(fake_lib, tmp_path):
    """The capi backend loads a .cbm with CatBoost's library in the serving
    process: the converter process loads it with the same library first, so
    a file that crashes the library (the test double segfaults on this one)
    is a ModelError, not the end of the process. Run in a subprocess: on a
    regression it would take pytest down."""
    bad = tmp_path / "bad.cbm"
    bad.write_text("fake-catboost-crash\n")
    good = _fake_model(tmp_path / "good.cbm", np.ones((1, 2)), np.zeros(1))
    code = (
        "import pyfeat\n"
        f"m = pyfeat.Model({str(good)!r}, backend='capi', catboost_lib={str(fake_lib)!r})\n"
        "try:\n"
        f"    pyfeat.Model({str(bad)!r}, backend='capi', catboost_lib={str(fake_lib)!r})\n"
        "except pyfeat.ModelError as e:\n"
        "    print('ModelError:', e)\n"
        "print(m.predict([[1.0, 2.0]]).tolist())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "ModelError:" in r.stdout and "bad.cbm" in r.stdout and "SIGSEGV" in r.stdout, r.stdout
    assert r.stdout.strip().endswith("[3.0]"), r.stdout


def test_converter_without_the_catboost_package(fake_lib, tmp_path, monkeypatch):
    """Without the catboost package, converting a .cbm is a ModelError that
    says what to install, and the capi backend's trial load still runs."""
    from pyfeat import _convert

    wrapper = tmp_path / "python-without-site"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    wrapper.chmod(0o755)
    cbm = tmp_path / "m.cbm"
    from catboost import CatBoostRegressor

    CatBoostRegressor(iterations=2, verbose=False, allow_writing_files=False).fit(
        np.arange(20.0).reshape(10, 2), np.arange(10.0)).save_model(str(cbm))
    _convert.shutdown()
    monkeypatch.setenv("PYFEAT_CONVERTER_PYTHON", str(wrapper))
    try:
        with pytest.raises(ModelError, match="needs the `catboost` package"):
            pyfeat.Model(cbm)
        good = _fake_model(tmp_path / "good.cbm", np.ones((1, 2)), np.zeros(1))
        assert pyfeat.Model(good, backend="capi", catboost_lib=fake_lib).predict([[1.0, 2.0]]).tolist() == [3.0]
        bad = tmp_path / "bad.cbm"
        bad.write_text("fake-catboost-crash\n")
        with pytest.raises(ModelError, match="SIGSEGV"):
            pyfeat.Model(bad, backend="capi", catboost_lib=fake_lib)
    finally:
        _convert.shutdown()


def test_idle_converter_exits_and_comes_back(tmp_path, monkeypatch):
    """The converter (catboost imported: ~130 MB) exits when idle and is
    started again for the next .cbm; a request is never sent to one about
    to exit."""
    from catboost import CatBoostRegressor

    from pyfeat import _convert

    cbm = tmp_path / "m.cbm"
    CatBoostRegressor(iterations=2, verbose=False, allow_writing_files=False).fit(
        np.arange(20.0).reshape(10, 2), np.arange(10.0)).save_model(str(cbm))
    _convert.shutdown()
    monkeypatch.setenv("PYFEAT_CONVERTER_IDLE", "2")
    try:
        want = pyfeat.Model(cbm).predict([[1.0, 2.0]])
        proc = _convert._converter._proc
        assert proc is not None and proc.poll() is None
        proc.wait(timeout=30)  # exits after 2 s without a request
        assert np.array_equal(pyfeat.Model(cbm).predict([[1.0, 2.0]]), want)
        for _ in range(3):  # just before the idle limit: a new one, not a lost request
            time.sleep(1.7)
            assert np.array_equal(pyfeat.Model(cbm).predict([[1.0, 2.0]]), want)
    finally:
        _convert.shutdown()


def test_capi_backend_against_test_double(fake_lib, tmp_path):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(1, 6))
    b = np.array([0.25])
    path = _fake_model(tmp_path / "m.cbm", w, b)
    model = pyfeat.Model(path, backend="capi", catboost_lib=fake_lib)
    assert (model.n_features, model.dimensions) == (6, 1)
    X = rng.normal(size=(1000, 6)).astype(np.float32)
    X[::7, 2] = np.nan
    want = np.zeros(1000)
    for j in range(6):
        want += w[0, j] * np.nan_to_num(X[:, j].astype(np.float64))
    want += b[0]
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-15)
    w3 = rng.normal(size=(3, 6))
    m3 = pyfeat.Model(_fake_model(tmp_path / "m3.cbm", w3, np.zeros(3)), backend="capi", catboost_lib=fake_lib)
    assert m3.predict(X).shape == (1000, 3)


def test_capi_ranker_with_test_double(fake_lib, tmp_path, world):
    names = pyfeat.feature_names()
    w = np.zeros((1, len(names)))
    w[0, names.index("item_log_price")] = -1.0
    w[0, names.index("ux_interest_cat")] = 3.0
    path = _fake_model(tmp_path / "r.cbm", w, np.zeros(1), names=names, meta={pyfeat.SPEC_HASH_KEY: pyfeat.spec_hash()})
    ranker = pyfeat.Ranker(path, backend="capi", catboost_lib=fake_lib)
    req = world.request(3, 500)
    order, scores = ranker.rank(req.user_blob, req.item_blobs, req.candidates)
    X = pyfeat.FeatureEngine().compute(req.user_blob, req.item_blobs, req.candidates)
    assert np.array_equal(ranker.predict(X)[order], scores)


def test_capi_missing_library_is_a_clear_error(tmp_path, monkeypatch):
    path = _fake_model(tmp_path / "m.cbm", np.ones((1, 2)), np.zeros(1))
    monkeypatch.delenv("PYFEAT_CATBOOST_LIB", raising=False)
    with pytest.raises(ModelError, match="PYFEAT_CATBOOST_LIB"):
        pyfeat.Model(path, backend="capi")
    with pytest.raises(ModelError, match="libcatboostmodel|no such file|cannot open"):
        pyfeat.Model(path, backend="capi", catboost_lib=tmp_path / "libcatboostmodel.so")
    with pytest.raises(ValueError, match="backend"):
        pyfeat.Model(path, backend="onnx")


def test_capi_categorical_with_test_double(fake_lib, tmp_path):
    # The double adds hash / 2^(10+j) for categorical column j; CatBoost's
    # hashes are checked against catboost itself in test_categorical.py.
    from pyfeat._catinput import hash_column

    rng = np.random.default_rng(8)
    w = rng.normal(size=(1, 2))
    path = _fake_model(tmp_path / "c.cbm", w, np.array([0.5]))
    path.write_text(path.read_text() + "cat 2\ncatflat 0 2\n")
    model = pyfeat.Model(path, backend="capi", catboost_lib=fake_lib)
    assert (model.n_features, model.n_cat_features) == (2, 2)
    assert (model.float_columns, model.cat_columns) == ([1, 3], [0, 2])
    cities = np.array(["Москва", "Lagos", "x" * 70, ""], dtype=object)
    rows = [[cities[i % 4], float(rng.normal()), int(rng.integers(-5, 5000)), float(rng.normal())] for i in range(600)]
    table = np.array(rows, dtype=object)
    h = [hash_column(table[:, 0], 0).astype(np.int32), hash_column(table[:, 2], 2).astype(np.int32)]
    want = np.empty(600)
    for i, r in enumerate(rows):
        s = w[0, 0] * float(np.float32(r[1])) + w[0, 1] * float(np.float32(r[3]))
        s += float(h[0][i]) / 2.0**10
        s += float(h[1][i]) / 2.0**11
        want[i] = s + 0.5
    np.testing.assert_array_equal(model.predict(rows), want)
    with pytest.raises(pyfeat.InputError):
        model.predict([[1.5, 0.0, 1, 0.0]])
