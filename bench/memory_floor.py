"""The memory floor under the service benchmark's figures: the peak RSS of
the same service when its ranking step does no work, next to pyfeat's.

    .venv/bin/python bench/memory_floor.py [--modes floor,floor+hold,pyfeat] [--levels 1,2,4,8]

floor:       the ranking step returns at once;
floor+hold:  it joins the records and holds them in a thread for as long
             as a ranking call takes (service/modes.py, HoldMode);
pyfeat:      Ranker.arank, as in run_all.py.

For each mode: the service's VmHWM after start-up and after each load
level, its RSS at the end, and what that is made of (as in run_all.py's
report). Prints a table; writes nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service import common, procs  # noqa: E402
from service.modes import SERVED_MODE_CLASSES  # noqa: E402
from service.redis_store import RedisServer  # noqa: E402


def hwm_mb(pid: int) -> float:
    return procs.vm_hwm_kb(pid) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="floor,floor+hold,pyfeat")
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds of load per level")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in SERVED_MODE_CLASSES:
            ap.error(f"unknown mode {m!r}; modes: {', '.join(sorted(SERVED_MODE_CLASSES))}")
    levels = [int(x) for x in a.levels.split(",")]
    world = common.build_world()
    requests = common.build_requests(world)
    common.ensure_model(world)
    reqs = [q.rid for q in requests]
    users = [0] * len(reqs)  # the user id is only part of the URL
    redis = RedisServer().start()
    rows = []
    try:
        redis.fill(world, requests)
        for m in modes:
            svc = procs.Service(m, redis.port, common.RESULTS_DIR / "logs")
            try:
                svc.wait_ready()
                pid = svc.proc.pid
                row = {"mode": m, "ready": hwm_mb(pid)}
                for c in levels:
                    r = procs.run_level(svc, reqs, users, c, duration=a.duration, min_requests=10,
                                        max_requests=100_000, hard_timeout=120)
                    if r["n_errors"]:
                        raise RuntimeError(f"{m} at c={c}: {r['errors'][:2]}")
                    row[f"c={c}"] = hwm_mb(pid)
                row["end RSS"] = svc.tree.rss() / 2**20
                row["origin"] = {k: v / 2**20 for k, v in svc.tree.rss_by_origin().items()}
                rows.append(row)
            finally:
                svc.stop()
    finally:
        redis.stop()
    cols = ["ready"] + [f"c={c}" for c in levels] + ["end RSS"]
    print("VmHWM of the service process (MB) after start-up and after each level (closed loop, "
          f"{a.duration:.0f} s per level), and its RSS at the end\n")
    print("| mode | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for row in rows:
        print(f"| {row['mode']} | " + " | ".join(f"{row[c]:.1f}" for c in cols) + " |")
    print()
    for row in rows:
        print(f"{row['mode']}: " + ", ".join(f"{k} {v:.1f}" for k, v in list(row["origin"].items())[:6]) + " MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
