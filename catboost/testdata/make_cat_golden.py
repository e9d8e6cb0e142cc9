"""Regenerate the categorical CatBoost fixtures of the native evaluator's tests.

Trains small models with categorical features (one-hot splits, CTRs of every
type CatBoost's CPU trainer offers, feature combinations up to
max_ctr_complexity 4, several target borders, MultiClass, YetiRank), saves
each as JSON (what the native evaluator reads) and CBM (what the C API and
the lazy conversion read), builds an apply-time table that mixes seen
values, unseen values, empty strings, non-Latin and long (> 64 byte)
strings, integers, and NaN floats, and stores catboost's own
predict(..., prediction_type="RawFormulaVal") for it.

Usage, from the repository root:

    .venv/bin/python catboost/testdata/make_cat_golden.py [--out DIR]

DIR defaults to catboost/testdata/cat. Files per case NAME:

    NAME.json          model, save_model(format="json")
    NAME.cbm           the same model, save_model(format="cbm")
    NAME.floats.f32    the float columns of the apply table, row-major
                       little-endian float32, in float feature order
    NAME.cats.json     the categorical columns, a list of rows; a value is a
                       JSON string or integer, exactly as given to catboost
    NAME.expected.f64  RawFormulaVal, row-major [row][dimension],
                       little-endian float64 (bit-exact)

manifest.json lists the cases with their shapes, the training table's
column kinds and parameters, and the versions used. Training uses
thread_count=1 and fixed seeds, so a rerun with the same catboost version
reproduces the files.
"""

import argparse
import json
import os
import zlib

import catboost
import numpy as np
from make_golden import manifest_header, raw_predict, reload_checks  # this directory is the script's sys.path[0]

N_TRAIN = 500
N_TEST = 300

# Column layouts: "f" float, "c" categorical (kinds of value below).
LAYOUT_MIXED = "ffcccccc"
LAYOUT_INTERLEAVED = "cfcfcc"
LAYOUT_CAT_ONLY = "cccc"

C = dict(loss_function="Logloss")
CASES = [
    # name, layout, params
    ("logloss_d1", LAYOUT_MIXED, dict(C, depth=1, iterations=30)),
    ("logloss_d2_onehot6", LAYOUT_MIXED, dict(C, depth=2, iterations=30, one_hot_max_size=6)),
    ("logloss_d3_onehot255", LAYOUT_MIXED, dict(C, depth=3, iterations=20, one_hot_max_size=255)),
    ("logloss_d4_cplx1", LAYOUT_MIXED, dict(C, depth=4, iterations=30, max_ctr_complexity=1)),
    ("logloss_d6_cplx2", LAYOUT_MIXED, dict(C, depth=6, iterations=20, max_ctr_complexity=2, one_hot_max_size=4)),
    ("logloss_d5_cplx3", LAYOUT_MIXED, dict(C, depth=5, iterations=25, max_ctr_complexity=3, one_hot_max_size=4)),
    ("logloss_d6_cplx4", LAYOUT_MIXED, dict(C, depth=6, iterations=25, max_ctr_complexity=4, one_hot_max_size=3)),
    (
        "logloss_d4_counter",
        LAYOUT_MIXED,
        dict(C, depth=4, iterations=25, simple_ctr=["Counter"], combinations_ctr=["Counter"], counter_calc_method="Full"),
    ),
    (
        "logloss_d5_priors",
        LAYOUT_MIXED,
        dict(C, depth=5, iterations=25, simple_ctr=["Borders:Prior=0.5/1:Prior=2/1:Prior=-1/1", "Counter:Prior=1"],
             combinations_ctr=["Borders:Prior=0.25/1", "Counter"]),
    ),
    (
        "logloss_d4_buckets",
        LAYOUT_MIXED,
        dict(C, depth=4, iterations=25, simple_ctr=["Buckets", "Borders"], combinations_ctr=["Buckets"]),
    ),
    ("logloss_d8_interleaved", LAYOUT_INTERLEAVED, dict(C, depth=8, iterations=10, one_hot_max_size=4)),
    ("logloss_d10", LAYOUT_MIXED, dict(C, depth=10, iterations=4, max_ctr_complexity=2)),
    ("logloss_d4_cat_only", LAYOUT_CAT_ONLY, dict(C, depth=4, iterations=30, one_hot_max_size=4, max_ctr_complexity=3)),
    ("logloss_d4_nanmax", LAYOUT_MIXED, dict(C, depth=4, iterations=30, nan_mode="Max", max_ctr_complexity=3)),
    (
        "rmse_d4_borders_tb4",
        LAYOUT_MIXED,
        dict(loss_function="RMSE", depth=4, iterations=30, simple_ctr=["Borders:TargetBorderCount=4"],
             combinations_ctr=["Borders:TargetBorderCount=2"]),
    ),
    (
        "rmse_d5_buckets_tb3",
        LAYOUT_MIXED,
        dict(loss_function="RMSE", depth=5, iterations=25, simple_ctr=["Buckets:TargetBorderCount=3", "Counter"],
             combinations_ctr=["Buckets:TargetBorderCount=3"]),
    ),
    (
        "rmse_d3_mean",
        LAYOUT_MIXED,
        dict(loss_function="RMSE", depth=3, iterations=30,
             simple_ctr=["BinarizedTargetMeanValue:TargetBorderCount=3", "Borders"],
             combinations_ctr=["BinarizedTargetMeanValue"]),
    ),
    ("rmse_d7_default", LAYOUT_MIXED, dict(loss_function="RMSE", depth=7, iterations=12, one_hot_max_size=4)),
    ("rmse_d9_cplx4", LAYOUT_INTERLEAVED, dict(loss_function="RMSE", depth=9, iterations=5, max_ctr_complexity=4)),
    ("multiclass_d3", LAYOUT_MIXED, dict(loss_function="MultiClass", depth=3, iterations=20, one_hot_max_size=4)),
    (
        "multiclass_d5_buckets",
        LAYOUT_MIXED,
        dict(loss_function="MultiClass", depth=5, iterations=15, simple_ctr=["Buckets", "Borders", "Counter"],
             combinations_ctr=["Borders", "Buckets"], max_ctr_complexity=3),
    ),
    ("multiclass_d7_onehot", LAYOUT_INTERLEAVED, dict(loss_function="MultiClass", depth=7, iterations=8, one_hot_max_size=10)),
    ("yetirank_d6", LAYOUT_MIXED, dict(loss_function="YetiRank", depth=6, iterations=20, max_ctr_complexity=3)),
    ("yetirank_d2_counter", LAYOUT_CAT_ONLY, dict(loss_function="YetiRank", depth=2, iterations=30, simple_ctr=["Counter", "Borders"])),
]

# Categorical value pools: every categorical column cycles through these
# kinds, so each model sees strings, integers, non-Latin text and long
# strings (CityHash64 takes a different path past 16, 32 and 64 bytes).
POOLS = [
    ["a", "b", "c"],  # few values: one-hot under one_hot_max_size >= 3
    [str(i) for i in range(8)],  # digits as strings, as ints are hashed
    list(range(-3, 40)),  # integers, negative ones too
    ["город", "東京", "ñandú", "Zürich", "naïve", "Ελλάδα", "😀", "x"],
    ["seller-" + "x" * k + str(k) for k in (5, 12, 20, 30, 40, 60, 70, 90, 130, 200)],
    [f"item{i}" for i in range(120)],
]
UNSEEN = ["", "never-seen", "город-2", "y" * 100, 10**6, -10**6, 2**40, "0x1"]


def column_values(rng, kind_idx, n, unseen_frac):
    pool = POOLS[kind_idx % len(POOLS)]
    out = []
    for _ in range(n):
        if rng.random() < unseen_frac:
            out.append(UNSEEN[rng.integers(len(UNSEEN))])
        else:
            out.append(pool[rng.integers(len(pool))])
    return out


def make_table(rng, layout, n, unseen_frac, nan_frac):
    cols = []
    cat_i = 0
    for k in layout:
        if k == "f":
            x = rng.normal(size=n).astype(np.float32)
            x[rng.random(n) < nan_frac] = np.nan
            cols.append(list(x))
        else:
            cols.append(column_values(rng, cat_i + (1 if layout == LAYOUT_CAT_ONLY else 0), n, unseen_frac))
            cat_i += 1
    return [list(r) for r in zip(*cols)]


def signal_of(rows, layout):
    s = np.zeros(len(rows))
    for j, k in enumerate(layout):
        for i, r in enumerate(rows):
            v = r[j]
            if k == "f":
                s[i] += 0.0 if v != v else float(v)
            else:
                s[i] += (zlib.crc32(str(v).encode()) % 7 - 3) / 3.0 * (1 + j % 3)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "cat"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    manifest = manifest_header("make_cat_golden.py")
    for seed, (name, layout, params) in enumerate(CASES):
        rng = np.random.default_rng(2000 + seed)
        cat_idx = [j for j, k in enumerate(layout) if k == "c"]
        float_idx = [j for j, k in enumerate(layout) if k == "f"]
        rows = make_table(rng, layout, N_TRAIN, 0.0, 0.1)
        s = signal_of(rows, layout) + 0.5 * rng.normal(size=N_TRAIN)
        loss = params["loss_function"]
        group_id = None
        if loss == "Logloss":
            y = (s > np.median(s)).astype(int)
        elif loss == "MultiClass":
            y = np.digitize(s, np.quantile(s, [0.33, 0.66]))
        else:
            y = s
        if loss == "YetiRank":
            group_id = np.arange(N_TRAIN) // 10
        full = dict(params, random_seed=seed, thread_count=1, verbose=0, allow_writing_files=False)
        model = catboost.CatBoost(full)
        model.fit(catboost.Pool(rows, y, cat_features=cat_idx, group_id=group_id))

        json_path = os.path.join(args.out, name + ".json")
        cbm_path = os.path.join(args.out, name + ".cbm")
        model.save_model(json_path, format="json")
        model.save_model(cbm_path, format="cbm")
        with open(json_path) as fh:
            model_json = json.load(fh)
        fi = model_json["features_info"]
        n_ctrs = len(fi.get("ctrs", []))
        n_onehot = sum(1 for c in fi.get("categorical_features", []) if "values" in c)
        split_types = sorted({sp["split_type"] for t in model_json["oblivious_trees"] for sp in t["splits"]})

        test = make_table(rng, layout, N_TEST, 0.25, 0.2)
        # A row whose categorical values are all unseen, one of all NaN floats.
        test[0] = [np.float32(np.nan) if k == "f" else "unseen-everywhere" for k in layout]
        pool = catboost.Pool(test, cat_features=cat_idx)
        want = raw_predict(model, pool)
        json_reload_exact = reload_checks(name, cbm_path, json_path, pool, want)

        floats = np.array([[r[j] for j in float_idx] for r in test], dtype=np.float32).reshape(N_TEST, len(float_idx))
        floats.astype("<f4").tofile(os.path.join(args.out, name + ".floats.f32"))
        cats = [[r[j] if isinstance(r[j], str) else int(r[j]) for j in cat_idx] for r in test]
        with open(os.path.join(args.out, name + ".cats.json"), "w", encoding="utf-8") as fh:
            json.dump(cats, fh, ensure_ascii=False)
        want.astype("<f8").tofile(os.path.join(args.out, name + ".expected.f64"))
        case = {
            "name": name,
            "params": full,
            "layout": layout,
            "rows": N_TEST,
            "float_features": len(float_idx),
            "cat_features": len(cat_idx),
            "dimensions": int(want.shape[1]),
            "trees": int(model.tree_count_),
            "ctrs": n_ctrs,
            "one_hot_features": n_onehot,
            "split_types": split_types,
            "catboost_json_reload_bit_exact": bool(json_reload_exact),
        }
        manifest["cases"].append(case)
        print(f"{name}: {model.tree_count_} trees, {n_ctrs} ctrs, {n_onehot} one-hot, splits {split_types}; "
              f"catboost JSON reload bit-exact: {json_reload_exact}")

    with open(os.path.join(args.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
