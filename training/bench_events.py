"""Peak memory of reading an events file for ``pyfeat dataset``: the whole
file in memory (one block) against the streamed path (blocks sorted into
runs on disk, merged, looked up by pread).

Writes an events CSV of N rows (request ids of N / 20 requests, 20 events
each, in shuffled order), then in a fresh process per mode reads it with
``pyfeat.dataset.read_events`` and looks up the labels of every request, as
``pyfeat dataset`` does, and reports the process's peak RSS (ru_maxrss) and
the time.

    .venv/bin/python training/bench_events.py [--rows 4000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import resource, sys, time
import numpy as np
import pyfeat.dataset as ds
path, block = sys.argv[1], int(sys.argv[2])
if block:
    ds.EVENTS_BLOCK_BYTES = block
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
ev = ds.read_events(path, workdir=sys.argv[3])
t1 = time.perf_counter()
n_req = int(sys.argv[4])
items = np.arange(40, dtype=np.int64)
for r in range(n_req):
    ev.labels_for(f"019a6f0e-3b1c-7000-9a41-{r:012x}", items)
pairs, ids, _ = ev.unmatched()
t2 = time.perf_counter()
ev.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{type(ev).__name__} {ev.n_pairs} pairs, matched {ev.pairs_matched}, unmatched {pairs}: "
      f"read {t1 - t0:.1f} s, {n_req} lookups {t2 - t1:.1f} s, peak RSS {peak / 1024:.0f} MB "
      f"(after imports {base / 1024:.0f} MB)")
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=4_000_000)
    args = p.parse_args(argv)
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="pyfeat-bench-events-") as d:
        path = Path(d) / "events.csv"
        n_req = args.rows // 20
        rng = np.random.default_rng(0)
        req = rng.permutation(np.repeat(np.arange(n_req), 20))
        item = rng.integers(0, 40, len(req))
        with open(path, "w") as f:
            f.write("request_id,item_id,event\n")
            step = 1 << 18
            for a in range(0, len(req), step):
                f.writelines(f"019a6f0e-3b1c-7000-9a41-{r:012x},{i},click\n"
                             for r, i in zip(req[a:a + step].tolist(), item[a:a + step].tolist()))
        print(f"{args.rows} events, {path.stat().st_size / 2**20:.0f} MB CSV, {n_req} requests")
        for name, block in (("in memory (one block)", 1 << 30), ("streamed (default blocks)", 0), ("streamed, 2 MB blocks", 2 << 20)):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(block), d, str(n_req)],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr)
            print(f"{name}: {out.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
