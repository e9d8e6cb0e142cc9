"""What every part of the service benchmark agrees on: the world and the
requests, the Redis keys, the model, the reference ranking and the
equality checks.

Imported by the harness and by the services' main processes (not by the
python+ppe workers, which import only `service.ppe_worker`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MODEL_DIR = RESULTS_DIR / "model"

# The world and the requests every mode serves (the micro benchmarks use the same world).
SEED = 1
N_ITEMS = 50_000
N_USERS = 5_000
N_CANDIDATES = 3000
N_REQUESTS = 16          # request numbers 0..15, cycled by the load generator
TOP_K = 100

# The model: trained here, on other requests of the same world.
TRAIN_REQUESTS = range(10_000, 10_016)
MODEL_PARAMS = dict(
    loss_function="Logloss", iterations=300, depth=6, learning_rate=0.1,
    border_count=254, random_seed=0, thread_count=2,
)

MODES = ("python", "python+ppe", "pyfeat", "pyfeat+cache", "pyfeat+cache@25%", "pyfeat+cache@10%", "cpp")
PPE_WORKERS = 2

# The request stream the load sends (every mode the same): STREAM_LEN
# requests, numbered from STREAM_BASE. Request STREAM_BASE + k has the user
# context of benchmark request k % N_REQUESTS and 3000 candidates drawn
# without replacement with probability proportional to the item's views + 1
# (the popularity the synthetic world simulates): the top 10% of the items
# fill about two thirds of the candidate slots, and no two requests have the
# same candidates. The 16 benchmark requests themselves are what the
# equality checks use.
STREAM_BASE = 100_000
STREAM_LEN = 1000
STREAM_SEED = 11

# pyfeat+cache: the item cache of the service, with pyfeat.ItemCache's
# defaults: 256 MiB (the world's 50,000 records take about 42 MiB decoded,
# so it holds them all: its misses are first reads and expiries) and a
# record fresh for 300 s.
CACHE_MAX_BYTES = 256 << 20
CACHE_TTL_S = 300.0
# pyfeat+cache@P%: the same service with a cache smaller than the catalogue,
# max_bytes P% of what the world's 50,000 records take decoded (measured by
# the harness, which passes the bytes in PYFEAT_BENCH_CACHE_BYTES): what
# the hit ratio, and so the saving, is when the cache holds the popular
# items only.
CACHE_FRACTIONS = {"pyfeat+cache@25%": 0.25, "pyfeat+cache@10%": 0.10}
CACHE_MODES = ("pyfeat+cache", *CACHE_FRACTIONS)


def cache_max_bytes() -> int:
    """The service's cache size: the harness's PYFEAT_BENCH_CACHE_BYTES, else CACHE_MAX_BYTES."""
    return int(os.environ.get("PYFEAT_BENCH_CACHE_BYTES") or CACHE_MAX_BYTES)


def world_decoded_bytes(world) -> int:
    """What every item record of the world takes in an ItemCache (its own
    accounting of the decoded records), read off a cache large enough for all."""
    import pyfeat

    cache = pyfeat.ItemCache(max_bytes=1 << 40, ttl=None)
    try:
        with cache.lookup(world.item_ids) as items:
            items.fill(world.items_blobs(items.missing.tolist()))
        return int(cache.stats()["bytes"])
    finally:
        cache.close()

# Admission control, the same in every mode: at most IN_FLIGHT requests are
# fetched and ranked at once, the others wait before touching Redis. A
# request that cannot be ranked yet should not hold its 3000 records in
# memory: without a bound, a service's memory grows with its clients
# rather than with its work. The core count is what every mode can use.
IN_FLIGHT = int(os.environ.get("PYFEAT_BENCH_IN_FLIGHT") or os.cpu_count() or 1)
# The memory-scaling runs set these in a service's environment: how many
# workers python+ppe starts, how many goroutines and concurrent calls pyfeat
# uses (with GOMAXPROCS, as on a machine with that many cores).
BENCH_THREADS = int(os.environ.get("PYFEAT_BENCH_THREADS") or 0) or None

# Equality before timing.
FEATURE_RTOL = 1e-6      # same rule as tests/test_parity.py
# Scores: every mode scores float32 features with the same model. With equal
# features, catboost's predict and pyfeat's native evaluator both sum the
# same float64 leaf values in the same order, so the scores are expected to
# be bit-identical; 1e-9 relative (plus 1e-12 absolute for scores near 0)
# only keeps the check from depending on that.
SCORE_RTOL = 1e-9
SCORE_ATOL = 1e-12


# ----------------------------------------------------------------- Redis keys
# item:<id>        -> the item record (MessagePack), for all items of the world
# req:<i>:user     -> the user context of request i (MessagePack)
# req:<i>:cand     -> the candidates of request i: MessagePack map of raw
#                     little-endian arrays ids/source/source_rank (int64) and
#                     source_score (float64), as a candidate service returns them

def item_key(item_id: int) -> bytes:
    return b"item:%d" % item_id


def user_key(rid: int) -> bytes:
    return b"req:%d:user" % rid


def cand_key(rid: int) -> bytes:
    return b"req:%d:cand" % rid


def pack_candidates(ids: np.ndarray, candidates: dict) -> bytes:
    return msgpack.packb({
        "ids": np.ascontiguousarray(ids, dtype="<i8").tobytes(),
        "source": np.ascontiguousarray(candidates["source"], dtype="<i8").tobytes(),
        "source_score": np.ascontiguousarray(candidates["source_score"], dtype="<f8").tobytes(),
        "source_rank": np.ascontiguousarray(candidates["source_rank"], dtype="<i8").tobytes(),
    }, use_bin_type=True)


def unpack_candidates(blob: bytes) -> tuple[np.ndarray, dict]:
    m = msgpack.unpackb(blob, raw=False)
    ids = np.frombuffer(m["ids"], dtype="<i8")
    cand = {
        "source": np.frombuffer(m["source"], dtype="<i8"),
        "source_score": np.frombuffer(m["source_score"], dtype="<f8"),
        "source_rank": np.frombuffer(m["source_rank"], dtype="<i8"),
    }
    return ids, cand


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Best k, descending; ties keep input order (the rule of Ranker.rank)."""
    return np.argsort(-scores, kind="stable")[:k]


# ------------------------------------------------------------------ the world

@dataclass
class BenchRequest:
    rid: int
    user_blob: bytes
    item_blobs: list
    item_ids: np.ndarray
    candidates: dict
    n_views: int


def build_world():
    from pyfeat.synth import Marketplace

    return Marketplace(seed=SEED, n_items=N_ITEMS, n_users=N_USERS)


@dataclass
class StreamRequest:
    rid: int
    user_blob: bytes
    item_ids: np.ndarray
    candidates: dict


def build_stream(world, requests: list[BenchRequest], n: int = STREAM_LEN) -> list[StreamRequest]:
    """The load's request stream (see STREAM_LEN)."""
    rng = np.random.default_rng(STREAM_SEED)
    logw = np.log(world.item_views.astype(np.float64) + 1.0)
    out = []
    for k in range(n):
        # Gumbel top-k: a sample without replacement, probability ~ weight.
        keys = logw + rng.gumbel(size=logw.size)
        top = np.argpartition(-keys, N_CANDIDATES)[:N_CANDIDATES]
        top = top[np.argsort(-keys[top], kind="stable")]
        cands = dict(source=rng.integers(0, 8, N_CANDIDATES), source_score=keys[top].astype(np.float64),
                     source_rank=np.arange(N_CANDIDATES, dtype=np.int64))
        out.append(StreamRequest(STREAM_BASE + k, requests[k % len(requests)].user_blob,
                                 world.item_ids[top].astype(np.int64), cands))
    return out


def build_requests(world, n: int = N_REQUESTS) -> list[BenchRequest]:
    out = []
    for i in range(n):
        r = world.request(i, N_CANDIDATES)
        out.append(BenchRequest(i, r.user_blob, r.item_blobs, r.item_ids, r.candidates,
                                len(r.user.get("views") or [])))
    return out


# ------------------------------------------------------------------ the model

def model_key() -> str:
    import catboost
    import pyfeat

    spec = dict(params=MODEL_PARAMS, train=[TRAIN_REQUESTS.start, TRAIN_REQUESTS.stop],
                seed=SEED, items=N_ITEMS, users=N_USERS, candidates=N_CANDIDATES,
                spec_hash=pyfeat.spec_hash(), catboost=catboost.__version__, version=1)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def model_paths() -> tuple[Path, Path]:
    return MODEL_DIR / "model.cbm", MODEL_DIR / "model.json"


def ensure_model(world, log=print) -> dict:
    """Train the benchmark model (or reuse the cached one with the same key).

    CatBoostClassifier (Logloss on the simulated clicks), features from
    pyfeat on requests that the benchmark never serves, columns =
    pyfeat.feature_names(), the spec hash in the metadata. Saved as .cbm
    (for catboost) and .json (for pyfeat's native evaluator).
    """
    cbm, js = model_paths()
    key = model_key()
    key_file = MODEL_DIR / "key.txt"
    info_file = MODEL_DIR / "info.json"
    if cbm.exists() and js.exists() and key_file.exists() and key_file.read_text().strip() == key:
        info = json.loads(info_file.read_text())
        info["cached"] = True
        log(f"model: cached {cbm.relative_to(REPO_DIR)} (key {key})")
        return info
    import pandas as pd
    from catboost import CatBoostClassifier

    import pyfeat

    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    (MODEL_DIR / ".gitignore").write_text("*\n")
    t0 = time.perf_counter()
    engine = pyfeat.FeatureEngine()
    xs, ys = [], []
    for i in TRAIN_REQUESTS:
        r = world.request(i, N_CANDIDATES)
        xs.append(engine.compute(r.user_blob, r.item_blobs, r.candidates))
        clicks, _ = world.feedback(r)
        ys.append(clicks)
    X = pd.DataFrame(np.concatenate(xs), columns=pyfeat.feature_names())
    y = np.concatenate(ys)
    t1 = time.perf_counter()
    model = CatBoostClassifier(**MODEL_PARAMS, verbose=False, allow_writing_files=False)
    model.fit(X, y)
    model.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    model.save_model(str(cbm))
    model.save_model(str(js), format="json")
    t2 = time.perf_counter()
    info = dict(key=key, rows=int(len(y)), positives=float(y.mean()), params=MODEL_PARAMS,
                train_requests=[TRAIN_REQUESTS.start, TRAIN_REQUESTS.stop - 1],
                features_s=round(t1 - t0, 2), fit_s=round(t2 - t1, 2), trees=int(model.tree_count_))
    info_file.write_text(json.dumps(info, indent=1))
    key_file.write_text(key + "\n")
    info["cached"] = False
    log(f"model: trained {info['trees']} trees on {info['rows']} rows in {t2 - t0:.1f} s -> {cbm.relative_to(REPO_DIR)}")
    return info


def load_catboost(cbm: Path | None = None):
    from catboost import CatBoost

    m = CatBoost()
    m.load_model(str(cbm or model_paths()[0]))
    return m


# ------------------------------------------------------------ the C++ peer

CPP_DIR = BENCH_DIR / "cpp"
CPP_BUILD_DIR = CPP_DIR / "build"


def import_cpp_peer(build: bool = False, log=print):
    """(the pyfeat_cpp_peer module, None), or (None, why not).

    With build=True, runs bench/cpp/build.py first when it exists (it skips
    a build whose inputs did not change), so that a stale module is never
    measured; a module that still cannot be imported means no cpp mode.
    """
    def attempt():
        if str(CPP_BUILD_DIR) not in sys.path:
            sys.path.insert(0, str(CPP_BUILD_DIR))
        import importlib

        importlib.invalidate_caches()
        try:
            import pyfeat_cpp_peer  # noqa: F401
            return pyfeat_cpp_peer, None
        except ImportError as e:
            return None, f"import pyfeat_cpp_peer failed: {e}"

    if not build:
        return attempt()
    script = CPP_DIR / "build.py"
    if not script.exists():
        mod, why = attempt()
        return mod, (None if mod else f"no C++ peer: {script} does not exist ({why})")
    import subprocess

    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(script)], cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        tail = " | ".join((p.stderr or p.stdout).strip().splitlines()[-5:])
        mod, why = attempt()
        if mod is None:
            return None, f"bench/cpp/build.py failed (exit {p.returncode}): {tail}; {why}"
        log(f"cpp: WARNING: bench/cpp/build.py failed (exit {p.returncode}), using the module already built: {tail}")
        return mod, None
    log(f"cpp: bench/cpp/build.py done in {time.perf_counter() - t0:.0f} s")
    return attempt()


def cpp_compute(peer, user_blob: bytes, item_blobs: list, candidates: dict, threads: int = 0) -> np.ndarray:
    return peer.compute(user_blob, item_blobs, candidates["source"], candidates["source_score"],
                        candidates["source_rank"], threads=threads)


# ------------------------------------------------------------ equality checks

def compare_features(got: np.ndarray, want: np.ndarray) -> tuple[bool, str, dict]:
    """Equal within FEATURE_RTOL, NaN exactly where the reference has NaN."""
    if not isinstance(got, np.ndarray) or got.shape != want.shape:
        return False, f"shape {getattr(got, 'shape', type(got).__name__)} != reference {want.shape}", {}
    got = got.astype(np.float32, copy=False)
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    stats = dict(bit_identical=float(((got.view(np.uint32) == want.view(np.uint32)) | (nan_g & nan_w)).mean()))
    if not np.array_equal(nan_g, nan_w):
        r, c = np.argwhere(nan_g != nan_w)[0]
        return False, f"NaN differs at item {r}, feature {c}: got {got[r, c]}, reference {want[r, c]}", stats
    m = ~nan_w
    g, w = got[m].astype(np.float64), want[m].astype(np.float64)
    err = np.abs(g - w)
    bad = err > FEATURE_RTOL * np.abs(w)
    stats["max_rel_err"] = float(np.max(err / np.maximum(np.abs(w), 1e-300))) if err.size else 0.0
    if bad.any():
        idx = np.argwhere(m)[np.flatnonzero(bad)[0]]
        r, c = int(idx[0]), int(idx[1])
        return False, f"item {r}, feature {c}: got {float(got[r, c])!r}, reference {float(want[r, c])!r}", stats
    return True, "", stats


def compare_ranking(got_ids, got_scores, ref_ids_all: np.ndarray, ref_scores_all: np.ndarray,
                    k: int = TOP_K) -> tuple[bool, str, dict]:
    """The top-k (item ids and scores) equals the reference's, up to ties.

    Each position's score must equal the reference's score at that position
    (SCORE_RTOL/SCORE_ATOL), and the item there must be a distinct candidate
    whose reference score is that same score: that is, a valid top-k order of
    the reference scores. Identical ids at every position are also counted.
    """
    got_ids = np.asarray(got_ids, dtype=np.int64)
    got_scores = np.asarray(got_scores, dtype=np.float64)
    order = top_k(ref_scores_all, k)
    want_ids, want_scores = ref_ids_all[order], ref_scores_all[order]
    if got_ids.shape != want_ids.shape or got_scores.shape != want_scores.shape:
        return False, f"got {got_ids.size} ids / {got_scores.size} scores, want {want_ids.size}", {}
    tol = SCORE_ATOL + SCORE_RTOL * np.abs(want_scores)
    diff = np.abs(got_scores - want_scores)
    stats = dict(max_abs_score_diff=float(diff.max()), same_ids=int((got_ids == want_ids).sum()),
                 bit_identical_scores=bool(np.array_equal(got_scores, want_scores)))
    if (diff > tol).any():
        p = int(np.flatnonzero(diff > tol)[0])
        return False, (f"score at position {p}: got {float(got_scores[p])!r}, reference {float(want_scores[p])!r}"
                       f" (item {int(got_ids[p])} vs {int(want_ids[p])})"), stats
    if len(set(got_ids.tolist())) != got_ids.size:
        return False, "duplicate item ids in the top-k", stats
    score_of = dict(zip(ref_ids_all.tolist(), ref_scores_all.tolist()))
    for p, (i, s) in enumerate(zip(got_ids.tolist(), want_scores.tolist())):
        if i not in score_of:
            return False, f"position {p}: item {i} is not a candidate", stats
        if abs(score_of[i] - s) > SCORE_ATOL + SCORE_RTOL * abs(s):
            return False, (f"position {p}: item {i} (reference score {score_of[i]!r}) where the reference "
                           f"ranks item {int(want_ids[p])} (score {s!r})"), stats
    return True, "", stats


def machine_info() -> dict:
    import platform

    import psutil

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
                kernel=platform.release(), python=platform.python_version(),
                loadavg=[round(x, 2) for x in os.getloadavg()])


def build_info() -> dict:
    """Which code was measured: the commit (and whether the tree had
    uncommitted changes) and the Go library pyfeat loads."""
    import subprocess

    from pyfeat import _native

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    lib = _native.library_path()
    try:
        digest = hashlib.sha256(lib.read_bytes()).hexdigest()[:16]
    except OSError:
        digest = None
    return dict(commit=git("rev-parse", "--short", "HEAD"),
                # The results and the docs this harness (or make bench-micro) writes are not code.
                uncommitted_changes=bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                             ":(exclude)bench/results", ":(exclude)*.md")),
                pyfeat_library=str(lib), pyfeat_library_sha256=digest,
                pyfeat_library_override=os.environ.get("PYFEAT_LIBRARY"))


def versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("pyfeat", "numpy", "msgpack", "catboost", "aiohttp", "redis", "hiredis", "psutil",
                 "matplotlib", "py-spy", "pybind11"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
