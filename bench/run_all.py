"""The service benchmark: every mode on the same requests, the same model
and the same Redis store, checked equal to the reference before anything
is timed, then measured side by side.

    .venv/bin/python bench/run_all.py            # what `make bench` runs after the micro benchmarks
    .venv/bin/python bench/run_all.py --quick    # a short smoke run (2 s per level)

Writes bench/results/latest.json, latest.md, latency.png, cpu_memory.png,
features.png, and the results section of bench/README.md. Exits non-zero if
a mode's results differ from the reference (that mode is not timed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service import common, procs, report  # noqa: E402
from service.redis_store import RedisServer  # noqa: E402

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


# ------------------------------------------------------------------ helpers

def percentiles(lat_s: list[float]) -> dict:
    a = np.asarray(lat_s) * 1e3
    return dict(p50_ms=float(np.percentile(a, 50)), p95_ms=float(np.percentile(a, 95)),
                p99_ms=float(np.percentile(a, 99)), mean_ms=float(a.mean()), max_ms=float(a.max()))


def reference_results(requests, cb_model):
    """pyfeat.reference features and catboost scores of every request: the oracle."""
    from pyfeat import reference

    out, times = [], []
    for q in requests:
        t = time.perf_counter()
        X = reference.compute(q.user_blob, q.item_blobs, q.candidates)
        times.append(time.perf_counter() - t)
        s = cb_model.predict(X, prediction_type="RawFormulaVal")
        out.append((X, np.asarray(s, dtype=np.float64)))
    return out, float(np.median(times) * 1e3)


def run_in_process_stage(refs, with_cpp: bool, rounds: int, timeout: float):
    """service/inprocess.py in a child process (a hung or crashing library
    cannot take the harness with it). Returns (checks, feature times). An
    implementation that was not checked, or whose check or timing did not
    finish, is reported as failed."""
    import subprocess
    import tempfile

    names = ("pyfeat", "cpp") if with_cpp else ("pyfeat",)
    with tempfile.TemporaryDirectory(prefix="pyfeat-bench-") as tmp:
        npz, out = Path(tmp) / "refs.npz", Path(tmp) / "out"
        arrays = {}
        for i, (X, s) in enumerate(refs):
            arrays[f"X{i}"], arrays[f"s{i}"] = X, s
        np.savez(npz, **arrays)
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "service" / "inprocess.py"), str(npz), str(out),
               "--rounds", str(rounds)] + (["--cpp"] if with_cpp else [])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=common.REPO_DIR)
        try:
            stdout, stderr = p.communicate(timeout=timeout)
            why = None if p.returncode == 0 else f"exited with {p.returncode}: {stderr.strip()[-500:]}"
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
            why = f"did not finish in {timeout:.0f} s (hung?)"
        checks_file, feat_file = out.with_suffix(".checks.json"), out.with_suffix(".features.json")
        checks = json.loads(checks_file.read_text()) if checks_file.exists() else {}
        feat = json.loads(feat_file.read_text()) if feat_file.exists() else {}
    if why is not None:
        stages = [ln[7:] for ln in stdout.splitlines() if ln.startswith("stage: ")]
        last = stages[-1] if stages else "start"
        log(f"in-process stage stopped at '{last}': {why}")
        for name in names:
            if name not in checks:
                checks[name] = dict(ok=False, why=f"not checked: the in-process stage stopped at '{last}', {why}")
            elif last.startswith(f"timing {name}"):
                checks[name] = dict(ok=False, why=f"feature timing stopped: {why}")
        feat = {}
    return checks, feat


def memory_scaling(ns, redis_port, requests, refs, users, stream, stream_users, out_dir, a) -> dict:
    """For each N: python+ppe with N workers (each request split into N
    chunks) and pyfeat with threads=N, max_concurrency=N and GOMAXPROCS=N
    (as on an N-core machine), both admitting N requests at once, one at a
    time, under the same low load; peak PSS and peak RSS of each. Each
    service is checked on two benchmark requests first."""
    import msgpack  # noqa: F401  (the services' import, loaded here for a fair start)

    rows = []
    for n in ns:
        env = {"PYFEAT_BENCH_THREADS": str(n), "PYFEAT_BENCH_IN_FLIGHT": str(n), "GOMAXPROCS": str(n)}
        for m in ("python+ppe", "pyfeat"):
            s = procs.Service(m, redis_port, out_dir / "logs", block_modules=a.block_modules, env=env, tag=f"-x{n}")
            row = dict(threads=n, mode=m)
            try:
                s.wait_ready(timeout=600)
                for q, (_X, sc), u in list(zip(requests, refs, users))[:2]:
                    got = s.get(q.rid, u)
                    ok, why, _ = common.compare_ranking(got["items"], got["scores"], q.item_ids, sc)
                    if not ok:
                        raise RuntimeError(f"request {q.rid} differs from the reference: {why}")
                r = procs.run_level(s, [q.rid for q in stream], stream_users, a.scaling_concurrency,
                                    duration=a.scaling_duration, min_requests=10, max_requests=2000, hard_timeout=300)
                if r["n_errors"]:
                    raise RuntimeError(f"{r['n_errors']} failed requests: {r['errors'][:2]}")
                s.tree.snapshot_hwm()
                row.update(status="ok", processes=len(s.tree.seen), requests=r["completed"],
                           peak_pss_mb=r["peak_pss_sampled"] / 2**20, peak_rss_mb=s.tree.hwm_total_kb() / 1024,
                           p50_ms=float(np.median(r["latencies_s"]) * 1e3),
                           cpu_ms_per_request=r["service_cpu_s"] / r["completed"] * 1e3)
                log(f"scaling {m:<10} x{n:<2}: {row['processes']} processes, peak PSS {row['peak_pss_mb']:.0f} MB, "
                    f"peak RSS {row['peak_rss_mb']:.0f} MB ({r['completed']} requests)")
            except (RuntimeError, OSError) as e:
                row.update(status="failed", note=str(e)[:500])
                log(f"scaling {m} x{n}: FAILED: {e}")
            finally:
                s.stop()
            rows.append(row)
    return dict(concurrency=a.scaling_concurrency, duration_s=a.scaling_duration, rows=rows)


# ------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,2,4,8", help="concurrency levels")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of load per level, mode and pass")
    ap.add_argument("--passes", type=int, default=2, help="passes over all levels and modes (samples are pooled)")
    ap.add_argument("--min-requests", type=int, default=20, help="per level, even past --duration")
    ap.add_argument("--max-requests", type=int, default=3000, help="per level")
    ap.add_argument("--modes", default=",".join(common.MODES))
    ap.add_argument("--feature-rounds", type=int, default=9)
    ap.add_argument("--stage-timeout", type=float, default=300.0, help="seconds for the in-process stage")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 s per level, levels 1,4")
    ap.add_argument("--no-cpp-build", action="store_true", help="do not run bench/cpp/build.py")
    ap.add_argument("--block-modules", default="", metavar="NAMES",
                    help="comma-separated modules the services cannot import, as if not installed "
                         "(e.g. pyarrow, which pandas, and so catboost, loads when present)")
    ap.add_argument("--scaling", default="2,4,8,16", metavar="N,N,...",
                    help="memory-scaling table: python+ppe with N workers against pyfeat with N threads "
                         "(GOMAXPROCS=N), for each N ('' to skip)")
    ap.add_argument("--scaling-duration", type=float, default=6.0, help="seconds of load per scaling point")
    ap.add_argument("--scaling-concurrency", type=int, default=2)
    ap.add_argument("--warmup-requests", type=int, default=50, help="untimed requests per mode before the load")
    ap.add_argument("--out", default=str(common.RESULTS_DIR))
    ap.add_argument("--perturb", default=None, metavar="MODE",
                    help="self-test: alter MODE's results before the equality check; the harness must refuse to time it")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render latest.md, the plots and the README section from latest.json, measure nothing")
    a = ap.parse_args()
    if a.report_only:
        out_dir = Path(a.out)
        res = json.loads((out_dir / "latest.json").read_text())
        md = report.markdown(res)
        (out_dir / "latest.md").write_text(md)
        report.plots(res, out_dir)
        if out_dir.resolve() == common.RESULTS_DIR.resolve():
            report.update_readme(common.BENCH_DIR / "README.md", md)
        print(md)
        return 0
    if a.quick:
        a.levels, a.duration, a.min_requests, a.feature_rounds, a.passes = "1,4", 2.0, 5, 3, 1
        a.scaling, a.scaling_duration, a.warmup_requests = "2,4", 2.0, 8
    levels = [int(x) for x in a.levels.split(",")]
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in common.MODES:
            ap.error(f"unknown mode {m!r}; modes: {', '.join(common.MODES)}")
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    import pyfeat

    res: dict = dict(date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     machine=common.machine_info(), versions=common.versions(), build=common.build_info(),
                     config=dict(levels=levels, duration_s=a.duration, passes=a.passes, min_requests=a.min_requests,
                                 max_requests=a.max_requests, n_requests=common.N_REQUESTS,
                                 n_candidates=common.N_CANDIDATES, top_k=common.TOP_K, seed=common.SEED,
                                 n_items=common.N_ITEMS, n_users=common.N_USERS, ppe_workers=common.PPE_WORKERS,
                                 stream=dict(base=common.STREAM_BASE, length=common.STREAM_LEN, seed=common.STREAM_SEED),
                                 cache=dict(max_bytes=common.CACHE_MAX_BYTES, ttl_s=common.CACHE_TTL_S),
                                 in_flight=common.IN_FLIGHT, warmup_requests=a.warmup_requests,
                                 spec_hash=pyfeat.spec_hash(), perturb=a.perturb,
                                 block_modules=[x for x in a.block_modules.split(",") if x]),
                     service={}, parity={})
    log(f"machine: {res['machine']}")

    # 1. the world, the requests, the model -----------------------------------
    world = common.build_world()
    requests = common.build_requests(world)
    log(f"world: {common.N_ITEMS} items, {len(requests)} requests of {common.N_CANDIDATES} candidates "
        f"(user views: {[q.n_views for q in requests]})")
    stream = common.build_stream(world, requests)
    slots = np.unique(np.concatenate([q.item_ids for q in stream]), return_counts=True)[1]
    res["config"]["stream"].update(
        distinct_items=int(slots.size),
        top10pct_items_share=float(np.sort(slots)[::-1][: common.N_ITEMS // 10].sum() / slots.sum()))
    log(f"stream: {len(stream)} requests, {slots.size} distinct items; the top 10% of the items fill "
        f"{res['config']['stream']['top10pct_items_share']:.0%} of the candidate slots")
    cache_bytes = {}
    if any(m in common.CACHE_FRACTIONS for m in modes):
        world_bytes = common.world_decoded_bytes(world)
        cache_bytes = {m: int(world_bytes * f) for m, f in common.CACHE_FRACTIONS.items() if m in modes}
        res["config"]["cache"].update(world_decoded_bytes=world_bytes, max_bytes_by_mode=cache_bytes)
        log(f"cache: the world's {common.N_ITEMS} records take {world_bytes / 2**20:.1f} MiB decoded; "
            + ", ".join(f"{m}: max_bytes {b / 2**20:.1f} MiB" for m, b in cache_bytes.items()))
    res["model"] = common.ensure_model(world, log=log)
    cb_model = common.load_catboost()

    # 2. the C++ peer ---------------------------------------------------------
    cpp_peer, cpp_note = None, "not requested"
    if "cpp" in modes:
        cpp_peer, cpp_note = common.import_cpp_peer(build=not a.no_cpp_build, log=log)
        if cpp_peer is None:
            log(f"cpp: SKIPPED: {cpp_note}")
            res["service"]["cpp"] = dict(status="skipped", note=cpp_note)
            res["parity"]["cpp"] = dict(ok=None, detail=f"skipped: {cpp_note}")
            modes.remove("cpp")

    # 3. equality in process: reference, pyfeat, C++ peer ---------------------
    refs, ref_ms = reference_results(requests, cb_model)
    log(f"reference: features of {len(requests)} requests, median {ref_ms:.0f} ms per request")
    inproc, feat = run_in_process_stage(refs, cpp_peer is not None, a.feature_rounds, a.stage_timeout)
    failed: dict[str, str] = {}
    for name, r in inproc.items():
        log(f"in-process check {name}: {'equal' if r['ok'] else 'FAILED: ' + r['why']}")
        if not r["ok"] and name in modes:
            failed[name] = f"in-process check: {r['why']}"
    res["inprocess_checks"] = inproc

    # 4. features alone: pyfeat vs the C++ peer -------------------------------
    res["features"] = dict(requests=len(requests), rounds=a.feature_rounds, reference_ms=ref_ms, impl=feat)
    if "cpp" in feat and "pyfeat" in feat:
        res["features"]["pyfeat_over_cpp"] = {th: feat["pyfeat"][th] / feat["cpp"][th] for th in ("1", "2")}
    else:
        res["features"]["cpp_note"] = (("C++ peer: " + inproc["cpp"]["why"]) if "cpp" in inproc and not inproc["cpp"]["ok"]
                                       else cpp_note if cpp_peer is None else "the in-process stage did not finish")
    log("features alone (ms/request): " + json.dumps({k: {t: round(v, 2) for t, v in d.items()} for k, d in feat.items()}))

    # 5. Redis and the services -----------------------------------------------
    redis = RedisServer().start()
    services: dict[str, procs.Service] = {}
    stats_warm: dict[str, dict] = {}
    try:
        res["redis"] = redis.fill(world, requests, stream)
        res["redis"]["version"] = redis.version()
        redis_proc = __import__("psutil").Process(redis.proc.pid)
        log(f"redis {res['redis']['version']} on 127.0.0.1:{redis.port}: {res['redis']}")
        for m in modes:
            if m in failed:
                continue
            env = {"PYFEAT_BENCH_CACHE_BYTES": str(cache_bytes[m])} if m in cache_bytes else None
            services[m] = procs.Service(m, redis.port, out_dir / "logs", block_modules=a.block_modules, env=env)
        for m, s in list(services.items()):
            try:
                s.wait_ready()
                s.tree.snapshot_hwm()
                log(f"service {m}: ready on {s.url}, {len(s.tree.procs())} process(es)")
            except RuntimeError as e:
                failed[m] = f"service did not start: {e}"
                s.stop()
                del services[m]

        # 6. equality through each service, on every request that will be timed
        import msgpack

        users = [int(msgpack.unpackb(q.user_blob, strict_map_key=False)["user_id"]) for q in requests]
        for m, s in list(services.items()):
            why, same_ids, bitexact = None, 0, True
            # The cached modes twice: from a cold cache (every record read
            # from Redis), then from a warm one (records cached, all of them
            # in pyfeat+cache, some in the smaller caches).
            checks = list(zip(requests, refs, users)) * (2 if m in common.CACHE_MODES else 1)
            for q, (_X, sc), u in checks:
                try:
                    got = s.get(q.rid, u)
                except Exception as e:
                    why = f"request {q.rid}: {type(e).__name__}: {e} ({s.log_tail(3)})"
                    break
                ids, scores = got["items"], got["scores"]
                if a.perturb == m:
                    scores = list(scores)
                    scores[0] = scores[0] * (1 + 1e-6) + 1e-9
                ok, w, st = common.compare_ranking(ids, scores, q.item_ids, sc)
                if not ok:
                    why = f"request {q.rid}: {w}"
                    break
                same_ids += st["same_ids"]
                bitexact &= st["bit_identical_scores"]
            if why is None:
                n = len(checks) * common.TOP_K
                ids_txt = (f"same ids at all {n} positions" if same_ids == n else
                           f"same ids at {same_ids}/{n} positions, the others hold tied scores")
                detail = (f"{len(checks)} requests{' (16 from a cold cache, 16 from a warm one)' if m in common.CACHE_MODES else ''}, "
                          f"top {common.TOP_K}: {ids_txt}; scores "
                          f"{'bit-identical' if bitexact else 'within 1e-9 relative'}")
                if m in inproc and inproc[m].get("bit_identical_features") is not None:
                    detail += f"; features bit-identical: {inproc[m]['bit_identical_features'] * 100:.2f}%"
                res["parity"][m] = dict(ok=True, detail=detail)
                log(f"check {m}: equal ({detail})")
            else:
                failed[m] = f"through its service: {why}"
        for m, why in failed.items():
            log(f"{m}: NOT EQUAL to the reference, NOT TIMED: {why}")
            res["parity"][m] = dict(ok=False, detail=why)
            res["service"][m] = dict(status="failed", note=why)
            if m in services:
                services.pop(m).stop()

        def drop(m: str, why: str) -> None:
            """A mode that fails under load is stopped and reported, never timed."""
            log(f"{m}: FAILED under load, NOT TIMED: {why}")
            failed[m] = why
            res["service"][m] = dict(status="failed", note=why)
            services.pop(m).stop()

        # 7. load, interleaved: for each level, every mode in turn -----------
        # Every mode gets the same stream; each level goes on where the
        # mode's previous one stopped.
        reqs = [q.rid for q in stream]
        stream_users = [users[k % len(users)] for k in range(len(stream))]
        offset = dict.fromkeys(services, 0)
        levels_out = {m: [] for m in services}
        redis_cpu = {m: 0.0 for m in services}
        raw = {}
        for m, s in list(services.items()):  # warm-up at the first level, untimed
            r = procs.run_level(s, reqs, stream_users, levels[0], duration=0.5, min_requests=a.warmup_requests,
                                max_requests=a.warmup_requests, hard_timeout=300)
            offset[m] += r["issued"]
            if r["n_errors"]:
                drop(m, f"warm-up: {r['n_errors']} failed requests: {r['errors'][:2]}")
        # The caches' counters once warm: the hit ratio under load is the
        # timed requests' alone (not the checks' cold reads nor the warm-up's).
        stats_warm = {m: s.stats() for m, s in services.items() if m in common.CACHE_MODES}
        log(f"load: {a.passes} pass(es) over levels {levels}, {a.duration:.0f} s per level and mode "
            f"(min {a.min_requests} requests), modes {list(services)}")
        raw = {(m, c): dict(lat=[], completed=0, elapsed=0.0, cpu=0.0, lg_cpu=0.0, rss=0.0, pss=0.0, processes=0)
               for m in services for c in levels}
        first_level_rss = {}
        for p in range(a.passes):
            for c in levels:
                for m, s in list(services.items()):
                    r0 = sum(redis_proc.cpu_times()[:2])
                    r = procs.run_level(s, reqs, stream_users, c, duration=a.duration, min_requests=a.min_requests,
                                        max_requests=a.max_requests, hard_timeout=max(120.0, 4 * a.duration),
                                        offset=offset[m])
                    offset[m] += r["issued"]
                    redis_cpu[m] += sum(redis_proc.cpu_times()[:2]) - r0
                    if r["n_errors"]:
                        drop(m, f"concurrency {c}: {r['n_errors']} failed requests: {r['errors'][:2]}")
                        continue
                    if p == 0 and c == levels[0]:
                        first_level_rss[m] = s.tree.hwm_total_kb() / 1024
                    x = raw[(m, c)]
                    x["lat"] += r["latencies_s"]
                    x["completed"] += r["completed"]
                    x["elapsed"] += r["elapsed_s"]
                    x["cpu"] += r["service_cpu_s"]
                    x["lg_cpu"] += r["loadgen_cpu_s"]
                    x["rss"] = max(x["rss"], r["peak_rss_sampled"] / 2**20)
                    x["pss"] = max(x["pss"], r["peak_pss_sampled"] / 2**20)
                    x["processes"] = r["processes"]
                    n = r["completed"]
                    log(f"  pass {p + 1} {m:<10} c={c}: {n:4d} req, p50 {np.median(r['latencies_s']) * 1e3:7.1f} ms, "
                        f"{n / r['elapsed_s']:6.1f} req/s, CPU {r['service_cpu_s'] / n * 1e3:6.1f} ms/req")
        for (m, c), x in raw.items():
            if m not in services:
                continue
            n = x["completed"]
            levels_out[m].append(dict(
                concurrency=c, completed=n, **percentiles(x["lat"]), throughput=n / x["elapsed"],
                elapsed_s=x["elapsed"], cpu_s=x["cpu"], cpu_ms_per_request=x["cpu"] / n * 1e3,
                loadgen_cpu_s=x["lg_cpu"], peak_rss_sampled_mb=x["rss"], peak_pss_mb=x["pss"],
                processes=x["processes"]))

        # 8. memory: each process's peak (VmHWM), summed per mode -------------
        for m, s in services.items():
            s.tree.snapshot_hwm()
            pss, uss = s.tree.pss_uss()
            origin = s.tree.rss_by_origin()
            lv = levels_out[m]
            n_all = sum(x["completed"] for x in lv)
            seen = s.tree.seen
            main_kb = seen.get(s.proc.pid, {}).get("hwm_kb", 0)
            res["service"][m] = dict(
                status="ok", levels=lv, requests=n_all,
                cpu_ms_per_request=sum(x["cpu_s"] for x in lv) / n_all * 1e3,
                peak_rss_mb=s.tree.hwm_total_kb() / 1024, rss_main_mb=main_kb / 1024,
                peak_rss_sampled_mb=max(x["peak_rss_sampled_mb"] for x in lv),
                peak_rss_first_level_mb=first_level_rss.get(m),
                peak_pss_mb=max(x["peak_pss_mb"] for x in lv),
                pss_end_mb=pss / 2**20, uss_end_mb=uss / 2**20,
                rss_by_origin_end_mb={k: round(v / 2**20, 1) for k, v in origin.items()},
                n_processes=len(seen),
                processes=[dict(pid=pid, **v, hwm_mb=round(v["hwm_kb"] / 1024, 1)) for pid, v in seen.items()],
            )
            try:
                st = s.stats()
            except OSError as e:
                st = dict(error=str(e))
            if st:
                res["service"][m]["mode_stats"] = st
        res["redis_cpu_ms_per_request"] = {m: redis_cpu[m] / res["service"][m]["requests"] * 1e3 for m in services}
        res["loadgen_cpu_ms_per_request"] = {
            m: sum(x["loadgen_cpu_s"] for x in levels_out[m]) / res["service"][m]["requests"] * 1e3 for m in services}
        for s in services.values():
            s.stop()
        services.clear()

        # 9. memory scaling: python+ppe with N workers against pyfeat with N threads
        scaling = [int(x) for x in a.scaling.split(",") if x]
        if scaling:
            res["scaling"] = memory_scaling(scaling, redis.port, requests, refs, users, stream, stream_users, out_dir, a)
    finally:
        for s in services.values():
            s.stop()
        redis.stop()

    # 10. ratios, targets, outputs -------------------------------------------
    svc = res["service"]
    ok = [m for m in common.MODES if svc.get(m, {}).get("status") == "ok"]
    res["ratios"] = {}
    if "pyfeat" in ok:
        P = svc["pyfeat"]
        for other in ("python+ppe", "python"):
            if other not in ok:
                continue
            Q = svc[other]
            res["ratios"][other] = dict(
                p50={str(x["concurrency"]): y["p50_ms"] / x["p50_ms"] for x, y in zip(P["levels"], Q["levels"])},
                p99_max=Q["levels"][-1]["p99_ms"] / P["levels"][-1]["p99_ms"],
                cpu=Q["cpu_ms_per_request"] / P["cpu_ms_per_request"],
                rss=Q["peak_rss_mb"] / P["peak_rss_mb"],
                pss=Q["peak_pss_mb"] / P["peak_pss_mb"],
                rss_first_level=Q["peak_rss_first_level_mb"] / P["peak_rss_first_level_mb"],
                throughput=max(x["throughput"] for x in P["levels"]) / max(x["throughput"] for x in Q["levels"]),
            )
    t = {}
    r = res["ratios"].get("python+ppe")
    if r:
        p50min = min(r["p50"].values())
        t["p50"] = dict(target="p50 latency ≥ 3x lower (every concurrency level)",
                        measured=", ".join(f"{v:.1f}x @{c}" for c, v in r["p50"].items()), met=p50min >= 3)
        t["cpu"] = dict(target="CPU per request ≥ 5x lower", measured=f"{r['cpu']:.1f}x", met=r["cpu"] >= 5)
        t["memory"] = dict(target="memory ≥ 5x lower (peak PSS summed over the mode's processes)",
                           measured=f"{r['pss']:.1f}x (peak RSS: {r['rss']:.1f}x)", met=r["pss"] >= 5)
    res["cache"] = {}
    for cm in common.CACHE_MODES:
        if "pyfeat" not in ok or cm not in ok:
            continue
        P, C = svc["pyfeat"], svc[cm]
        st = C.get("mode_stats") or {}
        w = stats_warm.get(cm) or {}
        hits, misses = st.get("hits", 0) - w.get("hits", 0), st.get("misses", 0) - w.get("misses", 0)
        res["cache"][cm] = dict(
            max_bytes=cache_bytes.get(cm, common.CACHE_MAX_BYTES),
            hit_ratio=hits / (hits + misses) if hits + misses else None, stats=st, stats_warm=w,
            evictions_under_load=st.get("evictions", 0) - w.get("evictions", 0),
            cpu_ms_per_request=C["cpu_ms_per_request"],
            cpu=P["cpu_ms_per_request"] / C["cpu_ms_per_request"],
            p50={str(x["concurrency"]): x["p50_ms"] / y["p50_ms"] for x, y in zip(P["levels"], C["levels"])},
            redis_cpu=(res["redis_cpu_ms_per_request"]["pyfeat"] / res["redis_cpu_ms_per_request"][cm]))
    if "pyfeat+cache" in res["cache"]:
        P, C, rc = svc["pyfeat"], svc["pyfeat+cache"], res["cache"]["pyfeat+cache"]
        t["cache_cpu"] = dict(target="pyfeat+cache: service CPU per request ≥ 2x lower than pyfeat's",
                              measured=f"{rc['cpu']:.2f}x ({C['cpu_ms_per_request']:.2f} against "
                                       f"{P['cpu_ms_per_request']:.2f} ms)", met=rc["cpu"] >= 2)
        t["cache_p50"] = dict(target="pyfeat+cache: p50 lower than pyfeat's at every concurrency level",
                              measured=", ".join(f"{v:.2f}x @{c}" for c, v in rc["p50"].items()),
                              met=min(rc["p50"].values()) > 1)
    po = res["features"].get("pyfeat_over_cpp")
    t["features"] = dict(
        target="pyfeat feature time within 1.5x of the C++ peer",
        measured=(f"{po['1']:.2f}x (threads=1), {po['2']:.2f}x (threads=2)" if po
                  else f"not measured: {res['features'].get('cpp_note', '')}"),
        met=(max(po.values()) <= 1.5) if po else None)
    res["targets"] = t
    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res["elapsed_s"] = time.perf_counter() - T0

    (out_dir / "latest.json").write_text(json.dumps(res, indent=1) + "\n")
    md = report.markdown(res)
    (out_dir / "latest.md").write_text(md)
    pngs = report.plots(res, out_dir) if ok else []
    if out_dir.resolve() == common.RESULTS_DIR.resolve():
        report.update_readme(common.BENCH_DIR / "README.md", md)
    print()
    print(md)
    log(f"wrote {out_dir / 'latest.json'}, latest.md, {', '.join(p.name for p in pngs)}")
    if failed:
        log(f"FAILED, not timed (see the table): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
