"""Models with categorical features: pyfeat.Model.predict against catboost
itself, bit for bit, on the committed fixtures (catboost/testdata/
make_cat_golden.py) and on models trained here; bad categorical input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoost, Pool

import pyfeat
from pyfeat import InputError, ModelError
from pyfeat.errors import InputTypeError

from conftest import catboost_fixture

FIXTURES = catboost_fixture("cat")
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def fixture_rows(case: dict) -> list[list]:
    name, layout, n = case["name"], case["layout"], case["rows"]
    floats = np.fromfile(FIXTURES / f"{name}.floats.f32", dtype="<f4").reshape(n, case["float_features"])
    cats = json.loads((FIXTURES / f"{name}.cats.json").read_text(encoding="utf-8"))
    rows = []
    for i in range(n):
        fi, ci = iter(floats[i]), iter(cats[i])
        rows.append([next(fi) if k == "f" else next(ci) for k in layout])
    return rows


def test_manifest_covers_the_issue():
    cases = MANIFEST["cases"]
    assert len(cases) >= 20
    params = [c["params"] for c in cases]
    assert {p["loss_function"] for p in params} >= {"Logloss", "RMSE", "YetiRank", "MultiClass"}
    assert {p["depth"] for p in params} >= set(range(1, 11))
    assert {p.get("max_ctr_complexity") for p in params} >= {1, 2, 3, 4}
    assert any(c["one_hot_features"] and c["ctrs"] for c in cases)
    ctr_specs = " ".join(" ".join(p.get("simple_ctr", []) + p.get("combinations_ctr", [])) for p in params)
    for t in ("Borders", "Buckets", "Counter", "BinarizedTargetMeanValue", "TargetBorderCount"):
        assert t in ctr_specs


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda c: c["name"])
@pytest.mark.parametrize("ext", ["json", "cbm"])
def test_fixture_parity(case, ext):
    want = np.fromfile(FIXTURES / f"{case['name']}.expected.f64", dtype="<f8").reshape(case["rows"], -1)
    with pyfeat.Model(FIXTURES / f"{case['name']}.{ext}") as m:
        assert (m.n_features, m.n_cat_features) == (case["float_features"], case["cat_features"])
        assert [case["layout"][j] for j in m.cat_columns] == ["c"] * case["cat_features"]
        got = m.predict(fixture_rows(case)).reshape(case["rows"], -1)
    assert same_bits(got, want)


# ---- models trained here ---------------------------------------------------

CITIES = ["Москва", "東京", "São Paulo", "Zürich", "Berlin", "Αθήνα", "Lagos", "x" * 80]


def make_frame(rng: np.random.Generator, n: int, unseen: float) -> pd.DataFrame:
    def pick(values, k):
        out = [values[i] for i in rng.integers(len(values), size=k)]
        for i in np.flatnonzero(rng.random(k) < unseen):
            out[i] = f"new-{rng.integers(1000)}" if isinstance(out[i], str) else int(rng.integers(10**6, 10**7))
        return out

    price = rng.lognormal(3, 1, n).astype(np.float32)
    price[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "category": pick(["cars", "phones", "toys", "books", "garden"], n),
            "price": price,
            "city": pick(CITIES, n),
            "seller": pick(list(range(60)), n),  # ints: hashed as decimal strings
            "platform": pick(["ios", "android", "web"], n),
            "age": rng.normal(30, 8, n).astype(np.float32),
        }
    )


CAT_COLS = ["category", "city", "seller", "platform"]

LIVE = [
    ("logloss_cplx3", dict(loss_function="Logloss", depth=6, iterations=60, max_ctr_complexity=3, one_hot_max_size=3)),
    ("rmse_buckets", dict(loss_function="RMSE", depth=4, iterations=40, simple_ctr=["Buckets:TargetBorderCount=3", "Counter"])),
    ("multiclass", dict(loss_function="MultiClass", depth=5, iterations=30, one_hot_max_size=4)),
    ("yetirank", dict(loss_function="YetiRank", depth=6, iterations=30, max_ctr_complexity=2)),
]


@pytest.mark.parametrize("name,params", LIVE, ids=[c[0] for c in LIVE])
def test_trained_parity(tmp_path, name, params):
    rng = np.random.default_rng(len(name))
    train = make_frame(rng, 800, 0.0)
    score = np.log1p(np.nan_to_num(train["price"].to_numpy(), nan=1.0)) + (train["category"] == "cars") * 2
    score += train["seller"].to_numpy() % 5 * 0.3 + rng.normal(size=len(train))
    group = None
    if params["loss_function"] == "Logloss":
        y = (score > np.median(score)).astype(int)
    elif params["loss_function"] == "MultiClass":
        y = np.digitize(score, np.quantile(score, [0.3, 0.7]))
    else:
        y = score
    if params["loss_function"] == "YetiRank":
        group = np.arange(len(train)) // 20
    model = CatBoost(dict(params, random_seed=0, thread_count=2, verbose=0, allow_writing_files=False))
    model.fit(Pool(train, y, cat_features=CAT_COLS, group_id=group))
    model.save_model(str(tmp_path / "m.json"), format="json")
    model.save_model(str(tmp_path / "m.cbm"))

    test = make_frame(rng, 700, 0.3)
    want = np.asarray(model.predict(Pool(test, cat_features=CAT_COLS), prediction_type="RawFormulaVal"), dtype=np.float64)
    for path in ("m.json", "m.cbm"):
        with pyfeat.Model(tmp_path / path) as m:
            assert m.cat_feature_names == CAT_COLS
            # A DataFrame, an object array and a list of rows all give the
            # same bits as catboost.
            assert same_bits(m.predict(test).reshape(want.shape), want)
            assert same_bits(m.predict(test.to_numpy(dtype=object)).reshape(want.shape), want)
            assert same_bits(m.predict(test.values.tolist()[:5]).reshape(want[:5].shape), want[:5])


def test_int_array_and_string_array_columns(tmp_path):
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.integers(0, 30, 600), rng.integers(0, 5, 600), rng.normal(size=600)])
    xi = x.astype(np.int64)
    y = (xi[:, 0] % 3 == 0).astype(int)
    frame = pd.DataFrame({"a": xi[:, 0], "b": xi[:, 1], "f": x[:, 2]})
    model = CatBoost(dict(loss_function="Logloss", iterations=20, depth=3, verbose=0, allow_writing_files=False, random_seed=0))
    model.fit(Pool(frame, y, cat_features=["a", "b"]))
    model.save_model(str(tmp_path / "m.json"), format="json")
    test = pd.DataFrame({"a": rng.integers(-5, 40, 300), "b": rng.integers(0, 7, 300), "f": rng.normal(size=300)})
    want = np.asarray(model.predict(Pool(test, cat_features=["a", "b"]), prediction_type="RawFormulaVal"))
    with pyfeat.Model(tmp_path / "m.json") as m:
        assert same_bits(m.predict(test), want)
        # int numpy columns, and the same values as decimal strings
        as_str = test.astype({"a": str, "b": str})
        assert same_bits(m.predict(as_str), want)
        # a homogeneous int64 matrix: the float column then holds ints
        ints = test.assign(f=test["f"].round()).astype(np.int64)
        want_ints = np.asarray(model.predict(Pool(ints, cat_features=["a", "b"]), prediction_type="RawFormulaVal"))
        assert same_bits(m.predict(ints.to_numpy()), want_ints)


def test_bad_categorical_input():
    case = next(c for c in MANIFEST["cases"] if c["name"] == "logloss_d2_onehot6")
    rows = fixture_rows(case)[:4]
    with pyfeat.Model(FIXTURES / "logloss_d2_onehot6.json") as m:
        cat_col = m.cat_columns[1]
        for bad in (1.5, None, float("nan"), [1], True):
            r = [list(x) for x in rows]
            r[2][cat_col] = bad
            with pytest.raises(InputTypeError) as info:
                m.predict(r)
            assert info.value.position == 2 and info.value.key == f"column {cat_col}"
        # a float array where ids are expected
        with pytest.raises(InputTypeError, match="column"):
            m.predict(np.zeros((3, len(rows[0]))))
        with pytest.raises(ValueError, match="columns"):
            m.predict([r[:-1] for r in rows])
        with pytest.raises(ValueError, match="2-D"):
            m.predict(rows[0])
        r = [list(x) for x in rows]
        r[1][m.float_columns[0]] = "12"
        with pytest.raises(InputTypeError) as info:
            m.predict(r)
        assert info.value.position == 1
        assert isinstance(info.value, InputError)
        with pytest.raises(InputError, match="int64"):
            m.predict(np.array([[0.5 if k == "f" else 2**63 + 5 for k in case["layout"]]], dtype=object))


def test_still_unsupported_models_are_refused(tmp_path):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"c": rng.choice(list("abc"), 200), "f": rng.normal(size=200)})
    y = rng.integers(0, 2, 200)
    deep = CatBoost(dict(loss_function="Logloss", iterations=5, grow_policy="Depthwise", verbose=0, allow_writing_files=False))
    deep.fit(Pool(frame, y, cat_features=["c"]))
    deep.save_model(str(tmp_path / "depthwise.json"), format="json")
    with pytest.raises(ModelError, match="non-symmetric"):
        pyfeat.Model(tmp_path / "depthwise.json")
    texts = frame.assign(t=[" ".join(rng.choice(["red", "blue", "big", "small"], 3)) for _ in range(200)])
    text_model = CatBoost(dict(loss_function="Logloss", iterations=5, verbose=0, allow_writing_files=False))
    text_model.fit(Pool(texts, y, cat_features=["c"], text_features=["t"]))
    text_model.save_model(str(tmp_path / "text.cbm"))
    with pytest.raises(ModelError, match="text"):
        pyfeat.Model(tmp_path / "text.cbm")


def test_arrow_string_columns_hash_as_python_strings():
    # pandas' default string dtype is Arrow-backed; its columns are hashed
    # from the Arrow buffers: sliced (an offset into the buffers), chunked,
    # 32- and 64-bit offsets, empty and non-Latin strings.
    import pyarrow as pa

    from pyfeat import _catinput

    values = ["", "a", "Диван", "x" * 100, "猫", "a"] * 50
    want = _catinput.hash_column(np.array(values, dtype=object), 0)
    chunked = pa.chunked_array([values[:7], values[7:]], type=pa.string())
    columns = {
        "str": pd.Series(values, dtype="str"),
        "string": pd.Series(pd.arrays.ArrowExtensionArray(chunked)),
        "large": pd.Series(values, dtype=pd.ArrowDtype(pa.large_string())),
    }
    for name, col in columns.items():
        assert _catinput._arrow_hashes(col) is not None, name
        assert np.array_equal(_catinput.hash_column(col, 0), want), name
        sliced = pd.DataFrame({"c": col}).iloc[3:]
        assert np.array_equal(_catinput.hash_column(sliced.iloc[:, 0], 0), want[3:]), name
    with_null = pd.Series(["a", None, "b"], dtype="str")
    assert _catinput._arrow_hashes(with_null) is None
    with pytest.raises(InputTypeError):
        _catinput.hash_column(with_null, 0)
