"""Regenerate the CatBoost golden fixtures of the native evaluator's tests.

Trains a few small float-feature models with catboost, saves each as JSON
(what the native evaluator reads) and CBM (what the C API reads), builds an
input matrix per model that is rich in NaN, infinities and values exactly at
(and one float32 step either side of) the model's borders, and stores
catboost's own predict(..., prediction_type="RawFormulaVal") for it.

Usage, from the repository root:

    .venv/bin/python catboost/testdata/make_golden.py [--out DIR]

DIR defaults to catboost/testdata, next to the tests that read them. Files per case NAME:

    NAME.json          model, save_model(format="json"), byte for byte
    NAME.cbm           the same model, save_model(format="cbm")
    NAME.input.f32     input matrix, row-major little-endian float32
    NAME.expected.f64  RawFormulaVal, row-major [row][dimension],
                       little-endian float64 (bit-exact)

manifest.json lists the cases with their shapes, training parameters, the
expected metadata and feature names, and the versions used. Training uses
thread_count=1 and fixed seeds, so a rerun with the same catboost version
reproduces the files.
"""

import argparse
import json
import os
import platform
import sys

import catboost
import numpy as np

FIXTURE_FORMAT = 1

CASES = [
    # name, catboost params, extra options
    ("logloss_d1", dict(loss_function="Logloss", depth=1, iterations=40, border_count=16), {}),
    ("logloss_max_d2", dict(loss_function="Logloss", depth=2, iterations=30, border_count=64, nan_mode="Max"), {}),
    (
        "logloss_d6_meta",
        dict(loss_function="Logloss", depth=6, iterations=25, border_count=254),
        {
            "feature_names": ["age", "clicks", "ctr", "price", "dwell", "views", "rank", "score"],
            "metadata": {"pyfeat_spec_hash": "0123456789abcdef", "note": "golden \"fixture\"\nline two, ünïcode"},
        },
    ),
    ("rmse_min_d4", dict(loss_function="RMSE", depth=4, iterations=40, border_count=1024, nan_mode="Min"), {}),
    ("rmse_max_d8", dict(loss_function="RMSE", depth=8, iterations=6, border_count=1024, nan_mode="Max"), {}),
    ("rmse_forbidden_d5", dict(loss_function="RMSE", depth=5, iterations=20, border_count=128, nan_mode="Forbidden"), {}),
    ("multiclass_d3", dict(loss_function="MultiClass", depth=3, iterations=30, border_count=254), {}),
    (
        "multiclass_d7_scaled",
        dict(loss_function="MultiClass", depth=7, iterations=6, border_count=512, nan_mode="Max"),
        {"scale_and_bias": (0.75, [0.125, -0.5, 1.0 / 3.0, 2.0])},
    ),
]

N_FEATURES = 8
N_TRAIN = 600
N_TEST = 400


def training_data(rng, name, params):
    x = rng.normal(size=(N_TRAIN, N_FEATURES)).astype(np.float32)
    x[:, 1] = rng.integers(0, 30, N_TRAIN)  # counts: many ties, few borders
    x[:, 2] = rng.uniform(0, 1, N_TRAIN)
    x[:, 3] = np.exp(rng.normal(size=N_TRAIN) * 2)  # wide range
    x[:, 6] = rng.integers(0, 4, N_TRAIN)  # very few distinct values
    if params.get("nan_mode") != "Forbidden":
        # NaN in training gives those features AsFalse (Min) or AsTrue (Max).
        for col, frac in ((0, 0.1), (3, 0.3), (5, 0.05)):
            x[rng.random(N_TRAIN) < frac, col] = np.nan
    signal = np.nan_to_num(x[:, 0]) + 0.3 * x[:, 1] / 10 - np.log1p(np.nan_to_num(x[:, 3], nan=1.0)) + x[:, 4] * x[:, 2]
    loss = params["loss_function"]
    if loss == "Logloss":
        y = (signal + rng.normal(size=N_TRAIN) > 0).astype(int)
    elif loss == "MultiClass":
        y = np.digitize(signal + 0.5 * rng.normal(size=N_TRAIN), [-1, 0, 1])
    else:
        y = signal + 0.3 * rng.normal(size=N_TRAIN)
    return x, y


def test_matrix(rng, model_json):
    """Rows mixing random values, exact borders, their float32 neighbours and
    special values, so every comparison edge is exercised."""
    feats = model_json["features_info"]["float_features"]
    x = rng.normal(size=(N_TEST, N_FEATURES)).astype(np.float32) * 3
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 3.0e38, -3.0e38, 1e-45, -1e-45], dtype=np.float32)
    for f in range(N_FEATURES):
        borders = np.array(feats[f]["borders"], dtype=np.float32)
        for i in range(N_TEST):
            r = rng.random()
            if len(borders) and r < 0.45:
                b = borders[rng.integers(len(borders))]
                step = rng.integers(3)  # exact, just above, just below
                with np.errstate(over="ignore"):  # numpy flags the float32 step
                    if step == 1:
                        b = np.nextafter(b, np.float32(np.inf))
                    elif step == 2:
                        b = np.nextafter(b, np.float32(-np.inf))
                x[i, f] = b
            elif r < 0.60:
                x[i, f] = np.nan
            elif r < 0.68:
                x[i, f] = specials[rng.integers(len(specials))]
    x[0, :] = np.nan  # a row of only NaN
    x[1, :] = np.inf
    x[2, :] = -np.inf
    return np.ascontiguousarray(x, dtype=np.float32)


def raw_predict(model, x):
    """RawFormulaVal of a matrix or a catboost.Pool, one row per row."""
    p = np.asarray(model.predict(x, prediction_type="RawFormulaVal", thread_count=1), dtype=np.float64)
    rows = x.num_row() if isinstance(x, catboost.Pool) else x.shape[0]
    return np.ascontiguousarray(p.reshape(rows, -1))


def reload_checks(name, cbm_path, json_path, x, want):
    """Require the model reloaded from CBM to predict want bit for bit;
    return whether the JSON reload does too. Recorded, not required:
    catboost 1.2.10's own JSON loader rebuilds the model in a way that can
    change the last bits of some sums; the reference is the trained model,
    which the CBM file reproduces."""
    reloaded = catboost.CatBoost()
    reloaded.load_model(cbm_path, format="cbm")
    if not same_bits(raw_predict(reloaded, x), want):
        sys.exit(f"{name}: predictions of the model reloaded from CBM differ")
    reloaded = catboost.CatBoost()
    reloaded.load_model(json_path, format="json")
    return same_bits(raw_predict(reloaded, x), want)


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def manifest_header(script):
    """The manifest's opening: how the fixtures were made (shared with
    make_cat_golden.py, which imports it from here)."""
    return {
        "format": FIXTURE_FORMAT,
        "generator": f"catboost/testdata/{script}",
        "command": f".venv/bin/python catboost/testdata/{script}",
        "catboost_version": catboost.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "cases": [],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    manifest = manifest_header("make_golden.py")
    for seed, (name, params, extra) in enumerate(CASES):
        rng = np.random.default_rng(1000 + seed)
        x, y = training_data(rng, name, params)
        full = dict(params, random_seed=seed, thread_count=1, verbose=0, allow_writing_files=False)
        model = catboost.CatBoost(full)
        pool = catboost.Pool(x, y, feature_names=extra.get("feature_names"))
        model.fit(pool)
        if "scale_and_bias" in extra:
            model.set_scale_and_bias(*extra["scale_and_bias"])
        for k, v in extra.get("metadata", {}).items():
            model.get_metadata()[k] = v

        json_path = os.path.join(args.out, name + ".json")
        cbm_path = os.path.join(args.out, name + ".cbm")
        model.save_model(json_path, format="json")
        model.save_model(cbm_path, format="cbm")
        with open(json_path) as fh:
            model_json = json.load(fh)

        xt = test_matrix(rng, model_json)
        want = raw_predict(model, xt)
        json_reload_exact = reload_checks(name, cbm_path, json_path, xt, want)

        xt.astype("<f4").tofile(os.path.join(args.out, name + ".input.f32"))
        want.astype("<f8").tofile(os.path.join(args.out, name + ".expected.f64"))
        manifest["cases"].append(
            {
                "name": name,
                "params": full,
                "rows": int(xt.shape[0]),
                "features": int(xt.shape[1]),
                "dimensions": int(want.shape[1]),
                "trees": int(model.tree_count_),
                "scale_and_bias": list(model.get_scale_and_bias()),
                "feature_names": extra.get("feature_names"),
                "metadata": extra.get("metadata", {}),
                "catboost_json_reload_bit_exact": bool(json_reload_exact),
            }
        )
        print(
            f"{name}: {xt.shape[0]} rows x {xt.shape[1]} features, {want.shape[1]} dims, "
            f"{model.tree_count_} trees; catboost JSON reload bit-exact: {json_reload_exact}"
        )

    with open(os.path.join(args.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
