"""The in-process stage of the benchmark, in its own process so that a
library that hangs or crashes cannot take the harness with it:

1. equality: pyfeat's features, scores and ranking, and the C++ peer's
   features, against the reference results the harness computed;
2. the features alone: FeatureEngine.compute against the C++ peer,
   threads=1 and 2, same requests, interleaved rounds.

    python bench/service/inprocess.py REFS.npz OUT.json --rounds 7 [--cpp]

Prints one line per stage ("stage: NAME") so that the harness can say which
one did not finish.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # bench/

from service import common  # noqa: E402


def stage(name: str) -> None:
    print(f"stage: {name}", flush=True)


def check_in_process(requests, refs, cpp_peer) -> dict:
    """Features of pyfeat and of the C++ peer, and pyfeat's scores, against the reference."""
    import pyfeat

    cbm, js = common.model_paths()
    engine = pyfeat.FeatureEngine()
    ranker = pyfeat.Ranker(js)
    res = {}

    def run(name, fn):
        bit = []
        for q, (X, s) in zip(requests, refs):
            try:
                ok, why, stats = fn(q, X, s)
            except Exception as e:  # a crash is a difference too
                ok, why, stats = False, f"{type(e).__name__}: {e}", {}
            if "bit_identical" in stats:
                bit.append(stats["bit_identical"])
            if not ok:
                res[name] = dict(ok=False, why=f"request {q.rid}: {why}")
                return
        res[name] = dict(ok=True, bit_identical_features=float(np.mean(bit)) if bit else None)

    def pyfeat_check(q, X, s):
        G = engine.compute(q.user_blob, q.item_blobs, q.candidates)
        ok, why, st = common.compare_features(G, X)
        if not ok:
            return False, "features: " + why, st
        p = ranker.predict(X)
        if not np.allclose(p, s, rtol=common.SCORE_RTOL, atol=common.SCORE_ATOL):
            i = int(np.argmax(np.abs(p - s)))
            return False, f"Ranker.predict row {i}: {p[i]!r} != catboost {s[i]!r}", st
        order, scores = ranker.rank(q.user_blob, q.item_blobs, q.candidates, top_k=common.TOP_K)
        ok, why, _ = common.compare_ranking(q.item_ids[order], scores, q.item_ids, s)
        return ok, ("rank: " + why) if not ok else "", st

    stage("check pyfeat")
    run("pyfeat", pyfeat_check)

    if cpp_peer is not None:
        def cpp_check(q, X, s):
            G = common.cpp_compute(cpp_peer, q.user_blob, q.item_blobs, q.candidates)
            return common.compare_features(np.asarray(G), X)

        stage("check cpp")
        run("cpp", cpp_check)
    ranker.close()
    return res


def time_features(requests, cpp_peer, rounds: int, with_pyfeat: bool = True) -> dict:
    """FeatureEngine.compute against the C++ peer, threads=1 and 2, same
    requests, interleaved: ms per request (median over rounds). Only
    implementations whose features equal the reference's are timed."""
    import pyfeat

    impls = {}
    for th in (1, 2):
        if with_pyfeat:
            eng = pyfeat.FeatureEngine(threads=th)
            impls[("pyfeat", th)] = lambda q, eng=eng: eng.compute(q.user_blob, q.item_blobs, q.candidates)
        if cpp_peer is not None:
            impls[("cpp", th)] = lambda q, th=th: common.cpp_compute(cpp_peer, q.user_blob, q.item_blobs,
                                                                     q.candidates, threads=th)
    for (name, th), fn in impls.items():  # warm-up
        stage(f"timing {name} threads={th}")
        fn(requests[0])
    # Interleaved at the finest grain: for every request, every
    # implementation in turn (the order rotates), so that a burst of
    # background load hits them all alike.
    stage("timing rounds")
    per_round = {k: [] for k in impls}
    keys = list(impls)
    for r in range(rounds):
        acc = dict.fromkeys(keys, 0.0)
        for j, q in enumerate(requests):
            shift = (r * len(requests) + j) % len(keys)
            for k in keys[shift:] + keys[:shift]:
                t = time.perf_counter()
                impls[k](q)
                acc[k] += time.perf_counter() - t
        for k in keys:
            per_round[k].append(acc[k] / len(requests) * 1e3)
    out = {}
    for (name, th), v in per_round.items():
        out.setdefault(name, {})[str(th)] = float(np.median(v))
        out[name][f"{th}_min"] = float(np.min(v))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("refs")
    ap.add_argument("out")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cpp", action="store_true")
    a = ap.parse_args()
    stage("setup")
    world = common.build_world()
    requests = common.build_requests(world)
    z = np.load(a.refs)
    refs = [(z[f"X{q.rid}"], z[f"s{q.rid}"]) for q in requests]
    cpp_peer = None
    if a.cpp:
        cpp_peer, why = common.import_cpp_peer(build=False)
        if cpp_peer is None:
            raise SystemExit(why)
    checks = check_in_process(requests, refs, cpp_peer)
    Path(a.out + ".checks.json").write_text(json.dumps(checks))
    stage("timing")
    feat = time_features(requests, cpp_peer if checks.get("cpp", {}).get("ok") else None, a.rounds,
                         with_pyfeat=checks["pyfeat"]["ok"])
    Path(a.out + ".features.json").write_text(json.dumps(feat))
    stage("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
