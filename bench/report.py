"""Summarise a pytest-benchmark JSON file: per group, every benchmark's
median and its speed relative to the group's plain-Python baseline."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

# A group's baseline is its first benchmark whose name holds the earliest
# of these: the plain-Python path where the group has one, although a
# half-way contender (pyfeat's features, catboost's predict) names catboost.
BASELINE_MARKERS = ("reference", "python", "catboost")


def summarise(path: Path) -> str:
    data = json.loads(path.read_text())
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"] or ""].append(b)
    lines = [f"machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
             f"{data['machine_info'].get('cpu', {}).get('count', '?')} cores; {data['datetime']}", ""]
    lines.append("| group | benchmark | median | min | rounds | vs baseline |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for group, benches in groups.items():
        base = next((b for m in BASELINE_MARKERS for b in benches if m in b["name"]), None)
        for b in sorted(benches, key=lambda b: b["stats"]["median"]):
            med = b["stats"]["median"]
            ratio = "baseline" if b is base else speedup(base["stats"]["median"], med) if base else ""
            lines.append(f"| {group} | {b['name']} | {fmt(med)} | {fmt(b['stats']['min'])} | {b['stats']['rounds']} | {ratio} |")
    return "\n".join(lines)


def speedup(base: float, t: float) -> str:
    """'4.2x faster' or, for a slower benchmark, '5.8x slower' (never '0.2x faster')."""
    return f"{base / t:.1f}x faster" if t <= base else f"{t / base:.1f}x slower"


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


if __name__ == "__main__":
    src = Path(sys.argv[1])
    text = summarise(src)
    print(text)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text + "\n")
