"""Closed-loop load generator: `concurrency` clients, each sending its next
request as soon as the previous one answered, over keep-alive connections
to a service on 127.0.0.1.

Bounded: it stops issuing at `--duration` seconds (once `--min-requests`
were issued) or at `--max-requests`, and never runs past `--hard-timeout`.

Protocol with the harness (so that the harness can read the service's CPU
counters exactly around the load): prints {"ready": true}, waits for a line
on stdin, runs, prints one JSON line with the results, waits for a line on
stdin, exits.

    python bench/service/loadgen.py --url http://127.0.0.1:PORT --reqs 0,1,2 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp


async def run(a) -> dict:
    reqs = [int(x) for x in a.reqs.split(",")]
    users = [int(x) for x in a.users.split(",")] if a.users else [0] * len(reqs)
    conn = aiohttp.TCPConnector(limit=a.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=a.hard_timeout)
    latencies: list[float] = []
    starts: list[float] = []
    errors: list[str] = []
    state = {"issued": 0}
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        # One request per connection first, untimed: connections are open when the clock starts.
        async def warm() -> None:
            async with session.get(f"{a.url}/health") as resp:
                await resp.read()

        await asyncio.gather(*[warm() for _ in range(a.concurrency)])
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        t0 = time.perf_counter()
        wall0 = time.time()
        deadline, hard = t0 + a.duration, t0 + a.hard_timeout

        async def client(c: int) -> None:
            while True:
                now = time.perf_counter()
                n = state["issued"]
                if n >= a.max_requests or now >= hard or (now >= deadline and n >= a.min_requests):
                    return
                state["issued"] = n + 1
                j = (a.offset + n) % len(reqs)
                url = f"{a.url}/feed?user={users[j]}&req={reqs[j]}"
                t = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            errors.append(f"HTTP {resp.status}: {body[:200]!r}")
                            continue
                except Exception as e:  # a failed request is reported, never timed
                    errors.append(f"{type(e).__name__}: {e}")
                    continue
                latencies.append(time.perf_counter() - t)
                starts.append(t - t0)
                if len(body) < 100:
                    errors.append(f"short response: {body!r}")

        await asyncio.gather(*[client(c) for c in range(a.concurrency)])
        t1 = time.perf_counter()
    return dict(concurrency=a.concurrency, issued=state["issued"], completed=len(latencies),
                errors=errors[:10], n_errors=len(errors), elapsed_s=t1 - t0, wall_start=wall0,
                latencies_s=latencies, starts_s=starts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--reqs", required=True, help="comma-separated request numbers, cycled")
    ap.add_argument("--users", default="", help="the requests' user ids (for the URL only)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--min-requests", type=int, default=20)
    ap.add_argument("--max-requests", type=int, default=2000)
    ap.add_argument("--hard-timeout", type=float, default=90.0)
    ap.add_argument("--offset", type=int, default=0, help="start at this position of --reqs")
    a = ap.parse_args()
    res = asyncio.run(run(a))
    print(json.dumps(res), flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
