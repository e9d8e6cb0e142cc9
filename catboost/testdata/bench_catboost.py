"""Time catboost's own predict on the benchmark's shape, for comparison with
BenchmarkPredictRawCatboostModel (the native evaluator on the same model and
matrix).

Trains a 1000-tree depth-6 model over 70 float features (border_count 254),
writes it as JSON with a 3000-row input matrix and catboost's RawFormulaVal
into DIR, then times predict(X, prediction_type="RawFormulaVal") with
thread_count 1 and 2. Then run the Go side on the same files:

    .venv/bin/python catboost/testdata/bench_catboost.py [--reuse] [DIR]
    PYFEAT_CATBOOST_BENCH_DIR=DIR go test -run '^$' \\
        -bench PredictRawCatboostModel ./catboost/

DIR defaults to /tmp/pyfeat-catboost-bench. --reuse times the model and
matrix already in DIR instead of training again. Nothing here is a fixture:
the model is about 4 MB of JSON.
"""

import os
import statistics
import sys
import time

import catboost
import numpy as np

ROWS, FEATURES, TREES, DEPTH = 3000, 70, 1000, 6


def main():
    args = [a for a in sys.argv[1:] if a != "--reuse"]
    out = args[0] if args else "/tmp/pyfeat-catboost-bench"
    os.makedirs(out, exist_ok=True)
    if "--reuse" in sys.argv[1:]:
        model = catboost.CatBoost()
        model.load_model(os.path.join(out, "bench_model.cbm"))
        x = np.fromfile(os.path.join(out, "bench_input.f32"), dtype="<f4").reshape(ROWS, FEATURES)
    else:
        model, x = train(out)
    pool = catboost.Pool(x)
    for label, data in (("ndarray", x), ("Pool", pool)):
        for threads in (1, 2):
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                model.predict(data, prediction_type="RawFormulaVal", thread_count=threads)
                times.append(time.perf_counter() - t0)
            print(
                f"catboost {catboost.__version__} predict({label}) {ROWS} rows, threads={threads}: "
                f"min {min(times) * 1e3:.2f} ms, median {statistics.median(times) * 1e3:.2f} ms"
            )
    print(f"files in {out}")


def train(out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    x[:, ::7] = np.round(x[:, ::7] * 3)  # a few low-cardinality columns
    w = rng.normal(size=FEATURES)
    y = x @ w + np.sin(3 * x[:, 0]) * x[:, 1] + rng.normal(size=ROWS)
    x[rng.random(x.shape) < 0.05] = np.nan

    t0 = time.perf_counter()
    model = catboost.CatBoostRegressor(
        iterations=TREES, depth=DEPTH, border_count=254, learning_rate=0.05,
        random_seed=0, verbose=0, thread_count=2, allow_writing_files=False,
    )
    model.fit(x, y)
    print(f"trained {model.tree_count_} trees in {time.perf_counter() - t0:.1f} s")

    model.save_model(os.path.join(out, "bench_model.json"), format="json")
    model.save_model(os.path.join(out, "bench_model.cbm"))
    np.ascontiguousarray(x).astype("<f4").tofile(os.path.join(out, "bench_input.f32"))
    want = np.asarray(model.predict(x, prediction_type="RawFormulaVal", thread_count=1), dtype=np.float64)
    want.astype("<f8").tofile(os.path.join(out, "bench_expected.f64"))
    return model, x


if __name__ == "__main__":
    main()
