"""latest.md (the tables), the PNG plots and the README's results section,
all from the results dict that run_all.py writes to latest.json."""

from __future__ import annotations

import re
from pathlib import Path

MODE_ORDER = ("python", "python+ppe", "pyfeat", "pyfeat+cache", "pyfeat+cache@25%", "pyfeat+cache@10%", "cpp")
COLORS = {"python": "#d62728", "python+ppe": "#ff7f0e", "pyfeat": "#2ca02c", "pyfeat+cache": "#17becf",
          "pyfeat+cache@25%": "#9467bd", "pyfeat+cache@10%": "#8c564b", "cpp": "#1f77b4"}
README_START = "<!-- results:start (written by bench/run_all.py) -->"
README_END = "<!-- results:end -->"


def _ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _x(r) -> str:
    return "–" if r is None else f"{r:.1f}x"


def _ok(b) -> str:
    return "n/a" if b is None else ("**met**" if b else "**NOT met**")


def timed_modes(res: dict) -> list[str]:
    return [m for m in MODE_ORDER if res["service"].get(m, {}).get("status") == "ok"]


def markdown(res: dict) -> str:
    svc = res["service"]
    m = res["machine"]
    L = []
    L.append(f"Service benchmark, {res['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
             f"load average {m['loadavg'][0]} at the start, {res.get('loadavg_end', ['?'])[0]} at the end "
             f"(a shared machine: absolute latencies are noisy, the run is interleaved so that every mode "
             f"meets the same noise). {res['config']['n_requests']} requests of {res['config']['n_candidates']} "
             f"candidates, top {res['config']['top_k']}, model: {res['model']['trees']} trees of depth "
             f"{res['model']['params']['depth']}. Whole run: {res['elapsed_s'] / 60:.1f} min.")
    blocked = res["config"].get("block_modules")
    if blocked:
        L[-1] += (f" Modules the services could not import (--block-modules, as if not installed): "
                  f"{', '.join(blocked)}.")
    b = res.get("build")
    if b:
        L[-1] += (f" Code: commit {b['commit']}{' + uncommitted changes' if b['uncommitted_changes'] else ''}"
                  + (f", Go library from PYFEAT_LIBRARY={b['pyfeat_library_override']}" if b.get("pyfeat_library_override") else "")
                  + ".")
    L.append("")
    not_timed = [(mm, s) for mm, s in svc.items() if s.get("status") != "ok"]
    for mm, s in not_timed:
        L.append(f"- **{mm}: {s['status'].upper()}, not timed**: {s.get('note', '')}")
    if not_timed:
        L.append("")

    c0 = res["config"]["levels"][0]
    st = res["config"].get("stream")
    if st:
        L.append(f"The load: a stream of {st['length']} requests, every mode the same (3000 candidates each, drawn "
                 f"with probability proportional to the item's views + 1"
                 + (f": {st['distinct_items']} distinct items, the top 10% of the items fill "
                    f"{st['top10pct_items_share']:.0%} of the candidate slots" if "distinct_items" in st else "")
                 + "; users of the 16 benchmark requests in turn). The equality checks use the 16 benchmark requests.")
        L.append("")
    L.append("**Per mode** (all concurrency levels together; CPU and memory summed over every process of the mode: "
             "the service and its workers; Redis and the load generator excluded. Memory, the headline: peak PSS, "
             "sampled every 200 ms under load (a page shared by several processes, such as a library's code, is "
             "split between them, so it counts once for the mode). Peak RSS next to it: each process's own peak "
             f"(VmHWM), summed, counting shared pages once per process; peak RSS at c={c0}: the same, read once the "
             f"first pass's c={c0} level is done, before any concurrent load)")
    L.append("")
    c0 = res["config"]["levels"][0]
    L.append(f"| mode | processes | CPU ms / request | peak PSS (MB) | peak RSS (MB) | peak RSS at c={c0} (MB) "
             f"| best throughput (req/s) | p50 @{c0} (ms) | p50 @max (ms) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mm in timed_modes(res):
        s = svc[mm]
        lv = s["levels"]
        first = s.get("peak_rss_first_level_mb")
        pss = s.get("peak_pss_mb")
        L.append(f"| {mm} | {s['n_processes']} | {_ms(s['cpu_ms_per_request'])} | "
                 f"{'–' if pss is None else f'**{pss:.0f}**'} | {s['peak_rss_mb']:.0f} | "
                 f"{'–' if first is None else f'{first:.0f}'} | "
                 f"{max(x['throughput'] for x in lv):.1f} | {_ms(lv[0]['p50_ms'])} | {_ms(lv[-1]['p50_ms'])} |")
    L.append("")

    passes = res["config"].get("passes", 1)
    L.append("**Latency and throughput at each concurrency** (closed loop: `c` clients, each sends its next request "
             f"when the previous one answered; {passes} pass(es) of {res['config']['duration_s']:g} s per level, pooled)")
    L.append("")
    L.append("| mode | c | requests | p50 (ms) | p95 (ms) | p99 (ms) | req/s | CPU ms / req |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mm in timed_modes(res):
        for x in svc[mm]["levels"]:
            L.append(f"| {mm} | {x['concurrency']} | {x['completed']} | {_ms(x['p50_ms'])} | {_ms(x['p95_ms'])} | "
                     f"{_ms(x['p99_ms'])} | {x['throughput']:.1f} | {_ms(x['cpu_ms_per_request'])} |")
    L.append("")

    rat = res.get("ratios", {})
    if rat:
        L.append("**pyfeat against the Python modes** (how many times lower / higher)")
        L.append("")
        levels = res["config"]["levels"]
        head = ("| pyfeat vs | " + " | ".join(f"p50 @{c}" for c in levels)
                + f" | p99 @max | CPU / request | peak PSS | peak RSS | peak RSS at c={levels[0]} | throughput |")
        L.append(head)
        L.append("|---|" + "---:|" * (len(levels) + 6))
        for other, r in rat.items():
            L.append(f"| {other} | " + " | ".join(_x(r['p50'].get(str(c))) for c in levels)
                     + f" | {_x(r.get('p99_max'))} | {_x(r['cpu'])} | {_x(r.get('pss'))} | {_x(r['rss'])} "
                     f"| {_x(r.get('rss_first_level'))} | {_x(r.get('throughput'))} |")
        L.append("")

    f = res.get("features")
    if f:
        L.append(f"**Feature computation alone**, in one process, same {f['requests']} requests "
                 f"(ms per 3000-item request, median of {f['rounds']} interleaved rounds)")
        L.append("")
        L.append("| implementation | threads=1 | threads=2 | vs reference (threads=2) |")
        L.append("|---|---:|---:|---:|")
        ref = f["reference_ms"]
        L.append(f"| pyfeat.reference (Python) | {_ms(ref)} | – | 1.0x |")
        for impl in ("pyfeat", "cpp"):
            if impl in f["impl"]:
                t = f["impl"][impl]
                L.append(f"| {impl} | {_ms(t['1'])} | {_ms(t['2'])} | {_x(ref / t['2'])} faster |")
            else:
                chk = res.get("inprocess_checks", {}).get(impl, {})
                why = chk.get("why") or (f.get("cpp_note", "") if impl == "cpp" else "")
                L.append(f"| {impl} | – | – | not measured: {why} |")
        if f.get("pyfeat_over_cpp"):
            r = f["pyfeat_over_cpp"]
            L.append("")
            L.append(f"pyfeat / C++ peer time: {r['1']:.2f}x at threads=1, {r['2']:.2f}x at threads=2 "
                     f"(target ≤ 1.5x).")
        L.append("")

    rc = res.get("cache")
    if rc and "hit_ratio" in rc:  # a latest.json from before the smaller caches
        rc = {"pyfeat+cache": dict(rc, max_bytes=res["config"].get("cache", {}).get("max_bytes", 0))}
    if rc:
        cfg = res["config"].get("cache", {})
        wb = cfg.get("world_decoded_bytes")
        levels = res["config"]["levels"]
        L.append(f"**The item cache** (each cached mode against pyfeat without a cache, same stream; ttl "
                 f"{cfg.get('ttl_s', 0):g} s"
                 + (f"; the world's {res['config']['n_items']} records take {wb / 2**20:.1f} MiB decoded" if wb else "")
                 + ". Hit ratio and evictions: the timed load's alone, from a cache warmed by the checks and the "
                 "warm-up; records and MB held: at the end; speed-ups: pyfeat's figure over the cached mode's)")
        L.append("")
        L.append("| mode | max_bytes (MiB) | hit ratio | records held | MB held | evictions | service CPU / request | "
                 + " | ".join(f"p50 @{c}" for c in levels) + " | Redis CPU / request |")
        L.append("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(levels) + "---:|")
        for mm in MODE_ORDER:
            r = rc.get(mm)
            if not r:
                continue
            stc = r.get("stats", {})
            hr = r.get("hit_ratio")
            mb = r.get("max_bytes", 0)
            share = f" ({mb / wb:.0%})" if wb else ""
            L.append(f"| {mm} | {mb / 2**20:.1f}{share} | {'–' if hr is None else f'{hr:.1%}'} | {stc.get('len', '–')} | "
                     f"{stc.get('bytes', 0) / 2**20:.1f} | {r.get('evictions_under_load', stc.get('evictions', '–'))} | "
                     f"{r['cpu']:.2f}x lower | " + " | ".join(f"{r['p50'][str(c)]:.2f}x lower" for c in levels)
                     + f" | {r['redis_cpu']:.2f}x lower |")
        L.append("")

    sc = res.get("scaling")
    if sc:
        L.append(f"**Memory as the machine grows** (python+ppe with N spawn workers, each request split into N "
                 f"chunks, against pyfeat with threads=N, max_concurrency=N and GOMAXPROCS=N, as on an N-core "
                 f"machine; both admit N requests at once; the same stream at concurrency {sc['concurrency']} for "
                 f"{sc['duration_s']:g} s: a memory figure, not a latency one; the latencies are those of a 2-core "
                 f"machine)")
        L.append("")
        L.append("| N | python+ppe peak PSS (MB) | pyfeat peak PSS (MB) | PSS ratio | python+ppe peak RSS (MB) "
                 "| pyfeat peak RSS (MB) | RSS ratio | processes (ppe / pyfeat) |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        by = {(r["threads"], r["mode"]): r for r in sc["rows"]}
        for n in sorted({r["threads"] for r in sc["rows"]}):
            pp, pf = by.get((n, "python+ppe"), {}), by.get((n, "pyfeat"), {})
            if pp.get("status") != "ok" or pf.get("status") != "ok":
                L.append(f"| {n} | failed: {(pp.get('note') or pf.get('note') or '')[:120]} |||||||")
                continue
            L.append(f"| {n} | {pp['peak_pss_mb']:.0f} | {pf['peak_pss_mb']:.0f} | "
                     f"{pp['peak_pss_mb'] / pf['peak_pss_mb']:.1f}x | {pp['peak_rss_mb']:.0f} | {pf['peak_rss_mb']:.0f} | "
                     f"{pp['peak_rss_mb'] / pf['peak_rss_mb']:.1f}x | {pp['processes']} / {pf['processes']} |")
        L.append("")

    t = res.get("targets", {})
    if t:
        L.append("**Targets** (pyfeat against python+ppe; the cache rows: pyfeat+cache against pyfeat)")
        L.append("")
        L.append("| target | measured | |")
        L.append("|---|---|---|")
        for row in t.values():
            L.append(f"| {row['target']} | {row['measured']} | {_ok(row['met'])} |")
        L.append("")

    p = res.get("parity", {})
    if p:
        L.append("**Equality before timing** (every mode on every benchmark request, through its service, "
                 "against pyfeat.reference + catboost)")
        L.append("")
        L.append("| mode | result | detail |")
        L.append("|---|---|---|")
        for mm in MODE_ORDER:
            if mm in p:
                L.append(f"| {mm} | {'equal' if p[mm]['ok'] else 'DIFFERENT' if p[mm]['ok'] is False else 'not checked'} "
                         f"| {p[mm]['detail']} |")
        L.append("")
    if timed_modes(res):
        L.append("Peak RSS is each process's VmHWM, summed over the mode's processes; it counts the pages of shared "
                 "libraries once per process. At the end of the run, PSS (shared pages split between processes) / "
                 "USS (pages of that mode alone): "
                 + ", ".join(f"{mm} {svc[mm]['pss_end_mb']:.0f} / {svc[mm]['uss_end_mb']:.0f} MB" for mm in timed_modes(res))
                 + ".")
        by_origin = [(mm, svc[mm]["rss_by_origin_end_mb"]) for mm in timed_modes(res) if svc[mm].get("rss_by_origin_end_mb")]
        if by_origin:
            L.append("")
            L.append("What the resident memory is made of at the end of the run (summed over the mode's processes; "
                     "files by Python package or library, \"anonymous\" is the malloc and Python heaps, the Go heap "
                     "and thread stacks), largest first: "
                     + "; ".join(f"{mm}: " + ", ".join(f"{k} {v:.0f}" for k, v in list(o.items())[:6]) + " MB"
                                 for mm, o in by_origin)
                     + ". How much of a library's code a process maps depends on the CPU it dispatches to and on "
                       "what the page cache holds, so the same mode's RSS differs between machines and runs.")
        L.append("")
    rc = res.get("redis_cpu_ms_per_request")
    if rc:
        L.append("Redis server CPU per request (not counted above; the same work in every mode but the cached "
                 "ones, which read only the missing records): "
                 + ", ".join(f"{k} {_ms(v)} ms" for k, v in rc.items()) + ". Load generator CPU per request: "
                 + ", ".join(f"{k} {_ms(v)} ms" for k, v in res.get("loadgen_cpu_ms_per_request", {}).items()) + ".")
    return "\n".join(L) + "\n"


def plots(res: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")

    svc = res["service"]
    modes = timed_modes(res)
    paths = []

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for mm in modes:
        lv = svc[mm]["levels"]
        c = [x["concurrency"] for x in lv]
        axes[0].plot(c, [x["p50_ms"] for x in lv], "o-", color=COLORS[mm], label=mm)
        axes[1].plot(c, [x["p99_ms"] for x in lv], "o--", color=COLORS[mm], label=mm)
        axes[2].plot(c, [x["throughput"] for x in lv], "o-", color=COLORS[mm], label=mm)
    for ax, title, ylabel in zip(axes, ("p50 latency", "p99 latency", "throughput"),
                                 ("ms (log scale)", "ms (log scale)", "requests / s (log scale)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(res["config"]["levels"])
        ax.set_xticklabels([str(x) for x in res["config"]["levels"]])
        ax.set_xlabel("concurrency (clients)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Feed service, 3000 candidates -> top 100, {res['machine']['cores']}-core machine ({res['date'][:10]})")
    fig.tight_layout()
    p = out_dir / "latency.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    x = range(len(modes))
    cpu = [svc[mm]["cpu_ms_per_request"] for mm in modes]
    bars = axes[0].bar(x, cpu, color=[COLORS[mm] for mm in modes])
    axes[0].bar_label(bars, labels=[f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms" for v in cpu])
    axes[0].set_title("CPU time per request (all processes of the mode)")
    axes[0].set_ylabel("ms of CPU per request")
    pss = [svc[mm].get("peak_pss_mb") or 0.0 for mm in modes]
    b2 = axes[1].bar(x, pss, color=[COLORS[mm] for mm in modes])
    axes[1].bar_label(b2, labels=[f"{v:.0f} MB\n(RSS {svc[mm]['peak_rss_mb']:.0f})" for v, mm in zip(pss, modes)])
    axes[1].set_title("Peak PSS, summed over the mode's processes (peak RSS in brackets)")
    axes[1].set_ylabel("MB")
    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(modes)
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.15)
    fig.tight_layout()
    p = out_dir / "cpu_memory.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    f = res.get("features")
    if f:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        impls = [i for i in ("pyfeat", "cpp") if i in f["impl"]]
        if not impls:
            plt.close(fig)
            return paths
        w = 0.35
        for j, th in enumerate(("1", "2")):
            vals = [f["impl"][i][th] for i in impls]
            bars = ax.bar([k + (j - 0.5) * w for k in range(len(impls))], vals, w,
                          label=f"threads={th}", color=["#2ca02c", "#1f77b4"][j], alpha=0.6 + 0.4 * j)
            ax.bar_label(bars, labels=[f"{v:.1f} ms" for v in vals])
        ax.set_xticks(range(len(impls)))
        ax.set_xticklabels(impls)
        ax.set_ylabel("ms per 3000-item request")
        ax.set_title(f"Features alone (pyfeat.reference: {f['reference_ms']:.0f} ms)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.15)
        ax.legend()
        fig.tight_layout()
        p = out_dir / "features.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def update_readme(readme: Path, table_md: str) -> bool:
    if not readme.exists():
        return False
    text = readme.read_text()
    pat = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pat.search(text):
        return False
    readme.write_text(pat.sub(lambda _: f"{README_START}\n{table_md}\n{README_END}", text))
    return True
