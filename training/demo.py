"""End-to-end demo of the training pipeline (``make demo``).

1. A synthetic marketplace (``pyfeat.synth``); a bootstrap model trained on
   features of a few dozen requests, so that there is something to serve.
2. Day 1: serve requests with ``pyfeat.Ranker`` (bootstrap model), logging
   them (``RequestLog``); the users' clicks and contacts (simulated from the
   hidden relevance) go to an events CSV.
3. ``pyfeat dataset`` replays the log into Parquet; the replayed features
   are checked against the served ones, bit for bit.
4. ``pyfeat train`` trains YetiRank on day 1 twice: with the categorical
   columns as CatBoost ``cat_features`` (the default) and with the numeric
   columns alone (``--no-cat-features``).
5. Day 2, after the training window: serve new requests with the
   categorical model, log them, build their dataset, and compare NDCG@10 on
   the same held-out day-2 requests of the categorical model, the
   numeric-only model, the bootstrap model and the generators' own order;
   check that the categorical model's scores of the Parquet rows equal the
   served ones, bit for bit.

Exits with status 1 if a parity check fails or the categorical model does
not beat the source order by at least 0.05 NDCG@10 on day 2.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _step(title: str) -> None:
    _say()
    _say(f"== {title}")


def _run_cli(argv: list[str]) -> None:
    from pyfeat import cli

    _say("$ pyfeat " + " ".join(shlex.quote(a) for a in argv))
    code = cli.main(argv)
    if code:
        raise SystemExit(f"demo: `pyfeat {argv[0]}` failed with status {code}")


def serve_day(world, ranker, log_path: Path, events_path: Path, requests: range, n_candidates: int):
    """Serve and log ``requests``; write their events. Returns what was
    served, per request id: (features float32, per-item scores float64)."""
    import pyfeat

    served = {}
    n_feat = len(pyfeat.feature_names())
    n_cat = len(pyfeat.categorical_feature_names())
    n_events = 0
    with pyfeat.RequestLog(log_path, "w") as log, open(events_path, "w") as ev:
        ev.write("request_id,item_id,event\n")
        for i in requests:
            req = world.request(i, n_candidates)
            feats = np.empty((len(req), n_feat), dtype=np.float32)
            cats = np.empty((len(req), n_cat), dtype=np.int64)
            res = ranker.rank(req.user_blob, req.item_blobs, req.candidates, features_out=feats,
                              cat_features_out=cats, log=log)
            scores = np.empty(len(req))
            scores[res.order] = res.scores
            served[res.request_id] = (feats, cats, scores)
            clicks, contacts = world.feedback(req)
            ids = req.item_ids
            for j in np.flatnonzero(clicks):
                ev.write(f"{res.request_id},{ids[j]},click\n")
            for j in np.flatnonzero(contacts):
                ev.write(f"{res.request_id},{ids[j]},contact\n")
            n_events += int(clicks.sum() + contacts.sum())
    return served, n_events


def load_dataset(path: Path):
    """(request ids, row bounds, X float32, C int64, labels) of a Parquet
    dataset, in file order."""
    import pyarrow.parquet as pq

    import pyfeat

    t = pq.read_table(path)
    names = pyfeat.feature_names()
    X = np.column_stack([t.column(n).to_numpy() for n in names]).astype(np.float32, copy=False)
    C = np.column_stack([t.column(n).to_numpy() for n in pyfeat.categorical_feature_names()])
    rid = t.column("request_id").to_pylist()
    starts = [0] + [k for k in range(1, len(rid)) if rid[k] != rid[k - 1]]
    bounds = np.array(starts + [len(rid)])
    return [rid[s] for s in starts], bounds, X, C, t.column("label").to_numpy()


def check_parity(served, rids, bounds, X, C, ranker) -> tuple[int, int, int]:
    """(feature values that differ, scores that differ, requests compared)."""
    feat_bad = score_bad = 0
    predicted = ranker.predict(X, C)
    for k, rid in enumerate(rids):
        feats, cats, scores = served[rid]
        a, b = bounds[k], bounds[k + 1]
        feat_bad += int(np.count_nonzero(X[a:b].view(np.uint32) != feats.view(np.uint32)))
        feat_bad += int(np.count_nonzero(C[a:b] != cats))
        score_bad += int(np.count_nonzero(predicted[a:b] != scores))
    missing = set(served) - set(rids)
    return feat_bad + len(missing), score_bad, len(rids)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--users", type=int, default=2_000)
    p.add_argument("--candidates", type=int, default=500, help="candidates per request")
    p.add_argument("--day1", type=int, default=300, help="requests served and logged for training")
    p.add_argument("--day2", type=int, default=100, help="held-out requests served after training")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--negatives", type=int, default=100, help="unclicked items kept per training request")
    p.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary dir)")
    args = p.parse_args(argv)

    import pyfeat
    from pyfeat.synth import Marketplace
    from pyfeat.train import SOURCE_SCORE_FEATURE, mean_ndcg

    t_start = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pyfeat-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    progress = [] if sys.stderr.isatty() else ["--no-progress"]
    timings: dict[str, float] = {}
    try:
        _step("world and bootstrap model")
        t = time.perf_counter()
        world = Marketplace(args.seed, n_items=args.items, n_users=args.users)
        names = pyfeat.feature_names()
        engine = pyfeat.FeatureEngine()
        from catboost import CatBoost, Pool

        X, y, g = [], [], []
        for i in range(40):
            req = world.request(i, args.candidates)
            X.append(engine.compute(req.user_blob, req.item_blobs, req.candidates))
            c, k = world.feedback(req)
            y.append(c + k)
            g.append(np.full(len(req), i))
        boot = CatBoost(dict(loss_function="YetiRank", iterations=60, depth=4, random_seed=0, verbose=False,
                             allow_writing_files=False))
        boot.fit(Pool(np.concatenate(X), np.concatenate(y), group_id=np.concatenate(g), feature_names=names))
        boot.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
        boot_path = work / "bootstrap.json"
        boot.save_model(str(boot_path), format="json")
        del X, y, g
        timings["world + bootstrap"] = time.perf_counter() - t
        _say(f"marketplace seed {args.seed}: {args.items} items, {args.users} users; "
             f"bootstrap YetiRank model on 40 requests -> {boot_path}")

        _step(f"day 1: serve and log {args.day1} requests ({args.candidates} candidates each)")
        t = time.perf_counter()
        day1_log, day1_events = work / "day1.log", work / "day1-events.csv"
        with pyfeat.Ranker(boot_path) as ranker:
            served1, n_ev1 = serve_day(world, ranker, day1_log, day1_events, range(100, 100 + args.day1),
                                       args.candidates)
        timings["serve day 1"] = time.perf_counter() - t
        _say(f"log {day1_log} ({day1_log.stat().st_size / 1e6:.1f} MB), {n_ev1} events -> {day1_events}")

        _step("dataset from the day-1 log")
        t = time.perf_counter()
        day1_parquet = work / "day1.parquet"
        _run_cli(["dataset", "--requests", str(day1_log), "--events", str(day1_events),
                  "--out", str(day1_parquet), *progress])
        timings["dataset day 1"] = time.perf_counter() - t
        rids1, b1, X1, C1, _ = load_dataset(day1_parquet)
        with pyfeat.Ranker(boot_path) as ranker:
            fbad1, sbad1, n1 = check_parity(served1, rids1, b1, X1, C1, ranker)
        _say(f"replay parity on {n1} requests, {X1.size} numeric and {C1.size} categorical feature values: "
             f"{fbad1} feature mismatches, {sbad1} score mismatches (bootstrap model)")
        del X1, C1

        _step("train on day 1: with the categorical columns (default), then numeric only")
        t = time.perf_counter()
        model = work / "model.cbm"
        _run_cli(["train", "--data", str(day1_parquet), "--out", str(model), "--iterations", str(args.iterations),
                  "--negatives", str(args.negatives), "--top", "15"])
        timings["train categorical"] = time.perf_counter() - t
        t = time.perf_counter()
        numeric_model = work / "model_numeric.cbm"
        _run_cli(["train", "--data", str(day1_parquet), "--out", str(numeric_model), "--iterations",
                  str(args.iterations), "--negatives", str(args.negatives), "--top", "5", "--no-cat-features"])
        timings["train numeric"] = time.perf_counter() - t

        _step(f"day 2 (after the training window): serve {args.day2} requests with the categorical model")
        t = time.perf_counter()
        day2_log, day2_events = work / "day2.log", work / "day2-events.csv"
        start2 = 100 + args.day1 + 1000
        with pyfeat.Ranker(model.with_suffix(".json")) as ranker:
            served2, n_ev2 = serve_day(world, ranker, day2_log, day2_events, range(start2, start2 + args.day2),
                                       args.candidates)
        day2_parquet = work / "day2.parquet"
        _run_cli(["dataset", "--requests", str(day2_log), "--events", str(day2_events),
                  "--out", str(day2_parquet), *progress])
        timings["serve + dataset day 2"] = time.perf_counter() - t
        rids2, b2, X2, C2, y2 = load_dataset(day2_parquet)
        with pyfeat.Ranker(model.with_suffix(".json")) as ranker:
            fbad2, sbad2, n2 = check_parity(served2, rids2, b2, X2, C2, ranker)
            new_scores = ranker.predict(X2, C2)
        with pyfeat.Ranker(numeric_model.with_suffix(".json")) as ranker:
            numeric_scores = ranker.predict(X2)
        with pyfeat.Ranker(boot_path) as ranker:
            boot_scores = ranker.predict(X2)
        ndcg_new, n_scored = mean_ndcg(y2, new_scores, b2)
        ndcg_num, _ = mean_ndcg(y2, numeric_scores, b2)
        ndcg_boot, _ = mean_ndcg(y2, boot_scores, b2)
        ndcg_src, _ = mean_ndcg(y2, X2[:, names.index(SOURCE_SCORE_FEATURE)], b2)

        total = time.perf_counter() - t_start
        _step("figures")
        _say(f"held-out day 2: {n2} requests, {len(y2)} rows, {n_scored} requests with a click or contact")
        _say(f"  NDCG@10 categorical model   {ndcg_new:.4f}  (numeric + categorical features, served)")
        _say(f"  NDCG@10 numeric-only model  {ndcg_num:.4f}  (--no-cat-features, same data and parameters)")
        _say(f"  NDCG@10 bootstrap model     {ndcg_boot:.4f}")
        _say(f"  NDCG@10 source order        {ndcg_src:.4f}")
        _say(f"  categorical - numeric-only  {ndcg_new - ndcg_num:+.4f}")
        _say(f"  categorical - source        {ndcg_new - ndcg_src:+.4f}  (required: >= +0.05)")
        _say(f"replay parity: day 1 {fbad1} feature / {sbad1} score mismatches, "
             f"day 2 {fbad2} feature / {sbad2} score mismatches (categorical model's Parquet scores vs served)")
        _say("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"; total {total:.1f} s")
        if args.workdir:
            _say(f"files kept in {work}")
        ok = fbad1 == sbad1 == fbad2 == sbad2 == 0 and ndcg_new - ndcg_src >= 0.05
        _say("demo: OK" if ok else "demo: FAILED")
        return 0 if ok else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
