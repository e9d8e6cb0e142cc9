"""Minor page faults and time per call of compute / rank / arank, as a new
user's plain script sees them.

    .venv/bin/python bench/faults.py                 # prepare, then measure; writes bench/results/faults.{json,md}
    .venv/bin/python bench/faults.py --calls 400

Every benchmark and test of this project imports ``pyfeat.synth``, whose
import churns the Python heap enough to hide what a fresh process does:
glibc serves each call's large buffers (the joined item records, the
feature matrix) from freshly mapped pages, and every page costs a fault.
So the records are made in one process (which imports synth and trains a
small model) and written to a file; the measurement runs in another, fresh
process that imports only msgpack, numpy and pyfeat, and reads them back.

For each path it reports minor faults per call (``getrusage`` ``ru_minflt``
of the process, over --calls calls after a warm-up) and the median time per
call; ``compute(out=...)`` is the reference for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"


def prepare(out_dir: Path, n_items: int) -> None:
    """Runs in its own process: the only one that imports pyfeat.synth."""
    import msgpack
    import numpy as np
    from catboost import CatBoostRegressor, Pool

    import pyfeat
    from pyfeat.synth import Marketplace

    world = Marketplace(seed=1, n_items=50_000, n_users=5_000)
    req = world.request(0, n_items)
    names = pyfeat.feature_names()
    X = pyfeat.FeatureEngine().compute(req.user_blob, req.item_blobs, req.candidates)
    rng = np.random.default_rng(0)
    model = CatBoostRegressor(iterations=300, depth=6, verbose=False, allow_writing_files=False, thread_count=2)
    model.fit(Pool(X, rng.normal(size=len(X)) + X[:, names.index("item_log_price")], feature_names=names))
    model.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    model.save_model(str(out_dir / "model.json"), format="json")
    cands = {k: np.asarray(v).tolist() for k, v in req.candidates.items()}
    (out_dir / "request.msgpack").write_bytes(
        msgpack.packb({"user": req.user_blob, "items": list(req.item_blobs), "candidates": cands}, use_bin_type=True))


def measure(in_dir: Path, calls: int, warmup: int) -> dict:
    """Runs in a fresh process that never imports pyfeat.synth."""
    import asyncio
    import resource
    import time

    import msgpack
    import numpy as np

    import pyfeat

    assert "pyfeat.synth" not in sys.modules
    data = msgpack.unpackb((in_dir / "request.msgpack").read_bytes(), raw=False)
    user, items = data["user"], data["items"]
    cands = {k: np.asarray(v) for k, v in data["candidates"].items()}
    engine = pyfeat.FeatureEngine()
    ranker = pyfeat.Ranker(in_dir / "model.json")
    out = np.empty((len(items), engine.n_features), dtype=np.float32)
    loop = asyncio.new_event_loop()

    paths = {
        "compute(out=...)": lambda: engine.compute(user, items, cands, out=out),
        "compute": lambda: engine.compute(user, items, cands),
        "rank(top_k=100)": lambda: ranker.rank(user, items, cands, top_k=100),
        "arank(top_k=100)": lambda: loop.run_until_complete(ranker.arank(user, items, cands, top_k=100)),
    }
    # Blocks of consecutive calls of one path (a script calls one thing
    # repeatedly), the paths taking turns block by block so that background
    # load on the machine meets them alike.
    block = 25
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in paths}
    faults = dict.fromkeys(paths, 0)
    for _ in range(max(1, calls // block)):
        for name, fn in paths.items():
            fn()  # the first call after another path's block is not counted
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    res = {name: dict(faults_per_call=faults[name] / len(times[name]), median_ms=float(np.median(times[name]) * 1e3),
                      min_ms=float(np.min(times[name]) * 1e3)) for name in paths}
    loop.close()
    ranker.close()
    return dict(n_items=len(items), calls=len(times['compute']), warmup=warmup, paths=res,
                synth_imported="pyfeat.synth" in sys.modules)


def markdown(r: dict) -> str:
    ref = r["paths"]["compute(out=...)"]
    lines = [f"Page faults and time per call, one {r['n_items']}-item request, in a fresh process that never "
             f"imported pyfeat.synth ({r['calls']} calls after {r['warmup']} warm-up calls; faults are the "
             f"process's minor faults, ru_minflt, divided by the calls).", "",
             "| path | minor faults / call | median ms / call | min ms | median vs compute(out=) |",
             "|---|---:|---:|---:|---:|"]
    for name, p in r["paths"].items():
        lines.append(f"| {name} | {p['faults_per_call']:.1f} | {p['median_ms']:.2f} | {p['min_ms']:.2f} | "
                     f"{p['median_ms'] / ref['median_ms']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--stage", choices=("prepare", "measure"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stage == "prepare":
        prepare(Path(a.dir), a.items)
        return 0
    if a.stage == "measure":
        print(json.dumps(measure(Path(a.dir), a.calls, a.warmup)))
        return 0
    env = dict(os.environ, PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix="pyfeat-faults-") as tmp:
        me = [sys.executable, str(Path(__file__).resolve())]
        subprocess.run(me + ["--stage", "prepare", "--dir", tmp, "--items", str(a.items)], check=True, env=env)
        p = subprocess.run(me + ["--stage", "measure", "--dir", tmp, "--calls", str(a.calls),
                                 "--warmup", str(a.warmup)], check=True, env=env, capture_output=True, text=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(r)
    for name, text in (("faults.json", json.dumps(r, indent=1) + "\n"), ("faults.md", md)):
        tmpf = out / f".{name}.tmp"
        tmpf.write_text(text)
        tmpf.replace(out / name)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
