"""Train a CatBoost ranking model on a dataset built by ``pyfeat dataset``
(``pyfeat train``).

* Loss: YetiRank (CatBoost's listwise ranking loss), one group per request
  (``--loss`` takes any CatBoost ranking loss, e.g. ``QueryRMSE``, which is
  several times faster).
* Split by time: requests are ordered by their id (a UUIDv7, so by the time
  they were logged); the earliest ``1 - valid_fraction`` train, the latest
  ``valid_fraction`` are held out for the report. Training requests without
  any positive label carry no ranking signal and are left out; optionally
  only ``negatives`` unlabelled items per training request are kept (seeded),
  which makes YetiRank several times faster on long candidate lists.
* Output: ``OUT.cbm`` and its JSON export ``OUT.json`` (what
  ``pyfeat.Ranker`` loads natively), both with ``pyfeat_spec_hash`` and
  ``pyfeat_feature_names`` in the model metadata; written to temporary files
  and renamed, so a failure never leaves a partial model.
* Report: NDCG@10 on the held-out requests (gains = labels: click 1, contact
  2; requests without any positive label are skipped) of the model's order
  against the candidate generators' own order (``src_score`` descending),
  feature importance (PredictionValuesChange, % of the total) with each
  feature's number of splits, and the features the model never splits on.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import DatasetError, publish, read_metadata
from .metrics import mean_ndcg, ndcg_at_k

__all__ = ["train_model", "TrainReport", "ndcg_at_k", "mean_ndcg", "SOURCE_SCORE_FEATURE"]

SOURCE_SCORE_FEATURE = "src_score"
MODEL_INFO_KEY = "pyfeat_train"


@dataclass
class TrainReport:
    """What ``train_model`` did and measured."""

    model_path: str = ""
    json_path: str = ""
    rows: int = 0
    requests: int = 0
    train_requests: int = 0
    train_rows: int = 0
    valid_requests: int = 0
    valid_rows: int = 0
    valid_requests_scored: int = 0  # held-out requests with a positive label
    dropped_no_positive: int = 0  # training requests without a positive label
    ndcg_model: float = float("nan")
    ndcg_source: float = float("nan")
    importance: list[tuple[str, float, int]] = field(default_factory=list)  # (name, %, splits), descending
    unused: list[str] = field(default_factory=list)
    train_seconds: float = 0.0
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


class _Data:
    def __init__(self, X: np.ndarray, labels: np.ndarray, rids: list[str], bounds: np.ndarray) -> None:
        self.X = X  # float32 (rows, features), rows grouped by request, requests in time order
        self.labels = labels  # int8
        self.rids = rids  # request ids, time order
        self.bounds = bounds  # int64, len(rids) + 1: request g is rows bounds[g]:bounds[g+1]


def _load(paths: Sequence[str], names: list[str]) -> _Data:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ._engine import spec_hash

    ours = spec_hash()
    tables = []
    for p in paths:
        if not os.path.exists(p):
            raise DatasetError(f"dataset not found: {p}")
        try:
            file_names, spec = read_metadata(p)
        except (OSError, pa.ArrowInvalid) as e:
            raise DatasetError(f"{p}: cannot read it as Parquet: {e}") from e
        if spec != ours or file_names != names:
            raise DatasetError(
                f"{p} was built with feature spec {spec} ({len(file_names)} features); this pyfeat computes "
                f"{ours} ({len(names)} features): rebuild it with `pyfeat dataset`"
            )
        tables.append(pq.read_table(p, columns=["request_id", "label", *names]))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    del tables
    n = table.num_rows
    if n == 0:
        raise DatasetError(f"no rows in {', '.join(paths)}")
    enc = table.column("request_id").combine_chunks().dictionary_encode()
    codes = enc.indices.to_numpy().astype(np.int64)
    uniq = enc.dictionary.to_pylist()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    if len(starts) != len(uniq):
        dup = np.bincount(codes[starts]).argmax()
        raise DatasetError(
            f"request {uniq[dup]} appears in several places of the data (the same log replayed twice?)"
        )
    # Requests in time order (UUIDv7 strings sort by log time); rows of a
    # request keep their order.
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(np.array(uniq, dtype=object))] = np.arange(len(uniq))
    perm = np.argsort(rank[codes], kind="stable")
    labels = table.column("label").to_numpy()[perm].astype(np.int8)
    X = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        X[:, j] = table.column(name).to_numpy()[perm]
        table = table.drop_columns([name])  # each column's memory goes once it is copied
    del table
    rids = sorted(uniq)
    sizes = np.bincount(rank[codes], minlength=len(uniq))
    bounds = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    return _Data(X, labels, rids, bounds)


def _rows_of(bounds: np.ndarray, groups: np.ndarray) -> np.ndarray:
    if len(groups) == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in groups])


def _save_atomically(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def train_model(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    iterations: int = 300,
    learning_rate: float | None = None,
    depth: int = 6,
    loss: str = "YetiRank",
    valid_fraction: float = 0.2,
    negatives: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    verbose: int = 0,
    echo: Callable[[str], None] | None = print,
    top: int = 20,
) -> TrainReport:
    """Train, save and report (see the module docstring).

    Args:
        data: one or more Parquet files from ``pyfeat dataset``.
        out: the model's ``.cbm`` path; the JSON export goes next to it
            with the suffix ``.json``.
        iterations, learning_rate, depth, loss, seed: CatBoost parameters
            (``learning_rate=None``: CatBoost's default for the data).
        valid_fraction: share of the requests (the latest) held out.
        negatives: keep at most this many unlabelled items per training
            request (``None``: all).
        threads: CatBoost threads (``None``: every core).
        verbose: print CatBoost's progress every this many iterations (0: never).
        echo: where the report lines go (``None``: nowhere).
        top: features listed by importance.

    Raises:
        DatasetError: a missing or foreign dataset, too few requests, no
            positive label to learn from.
    """
    from catboost import CatBoost, Pool

    from ._engine import FEATURE_NAMES_KEY, SPEC_HASH_KEY, feature_names, spec_hash

    t0 = time.perf_counter()
    say = echo or (lambda s: None)
    paths = [str(data)] if isinstance(data, (str, os.PathLike)) else [str(p) for p in data]
    if not paths:
        raise DatasetError("no dataset given")
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise DatasetError(f"--out names the .cbm model; its JSON export is written next to it ({out})")
    if not out.parent.is_dir():
        raise DatasetError(f"output directory does not exist: {out.parent}")
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    json_path = out.with_suffix(".json")
    names = feature_names()
    d = _load(paths, names)
    n_req = len(d.rids)
    n_valid = int(round(valid_fraction * n_req))
    n_valid = min(max(n_valid, 1), n_req - 1)
    n_train = n_req - n_valid
    if n_train < 1:
        raise DatasetError(f"{n_req} request(s) in the data: at least 2 are needed for a train/validation split")

    rep = TrainReport(model_path=str(out), json_path=str(json_path), rows=len(d.labels), requests=n_req,
                      train_requests=n_train, valid_requests=n_valid)
    sizes = np.diff(d.bounds)
    positives = np.add.reduceat((d.labels > 0).astype(np.int64), d.bounds[:-1])  # requests have >= 1 row
    train_groups = np.arange(n_train)
    has_pos = positives[train_groups] > 0
    rep.dropped_no_positive = int((~has_pos).sum())
    train_groups = train_groups[has_pos]
    if len(train_groups) == 0:
        raise DatasetError(
            f"none of the {n_train} training requests has a positive label (click or contact): "
            "were the events joined (pyfeat dataset --events)?"
        )
    rows = _rows_of(d.bounds, train_groups)
    group = np.repeat(train_groups, sizes[train_groups])
    if negatives is not None:
        rng = np.random.default_rng(seed)
        keep = d.labels[rows] > 0
        for g in train_groups:
            a, b = d.bounds[g], d.bounds[g + 1]
            neg = np.flatnonzero(d.labels[a:b] == 0)
            if len(neg) > negatives:
                neg = rng.choice(neg, negatives, replace=False)
            keep[np.searchsorted(rows, a + neg)] = True
        rows, group = rows[keep], group[keep]
    rep.train_rows = len(rows)
    valid_rows = np.arange(d.bounds[n_train], d.bounds[n_req])
    rep.valid_rows = len(valid_rows)

    params: dict[str, Any] = dict(
        loss_function=loss, iterations=int(iterations), depth=int(depth), random_seed=int(seed),
        thread_count=int(threads) if threads else -1, allow_writing_files=False,
        verbose=int(verbose) if verbose else False,
    )
    if learning_rate is not None:
        params["learning_rate"] = float(learning_rate)
    rep.params = {k: v for k, v in params.items() if k not in ("allow_writing_files", "verbose")}
    say(f"training {loss} on {rep.train_rows} rows of {len(train_groups)} requests "
        f"({rep.dropped_no_positive} without a positive label left out); "
        f"holding out the latest {n_valid} requests ({rep.valid_rows} rows)")
    model = CatBoost(params)
    t1 = time.perf_counter()
    try:
        model.fit(Pool(d.X[rows], d.labels[rows].astype(np.float32), group_id=group, feature_names=names))
    except Exception as e:  # CatBoostError: bad parameters, a loss that needs other labels, ...
        raise DatasetError(f"catboost: {e}") from e
    rep.train_seconds = time.perf_counter() - t1
    del rows, group
    info = dict(loss=loss, iterations=int(iterations), data=[os.path.basename(p) for p in paths],
                train_requests=len(train_groups), valid_requests=n_valid, first_valid_request=d.rids[n_train])
    meta = model.get_metadata()
    meta[SPEC_HASH_KEY] = spec_hash()
    meta[FEATURE_NAMES_KEY] = json.dumps(names)
    meta[MODEL_INFO_KEY] = json.dumps(info)
    _save_atomically(out, lambda p: model.save_model(p, format="cbm"))
    _save_atomically(json_path, lambda p: model.save_model(p, format="json"))

    Xv = d.X[valid_rows]
    yv = d.labels[valid_rows]
    vb = d.bounds[n_train:] - d.bounds[n_train]
    scores = np.asarray(model.predict(Xv, prediction_type="RawFormulaVal"), dtype=np.float64)
    rep.ndcg_model, rep.valid_requests_scored = mean_ndcg(yv, scores, vb)
    rep.ndcg_source, _ = mean_ndcg(yv, Xv[:, names.index(SOURCE_SCORE_FEATURE)], vb)

    imp = np.asarray(model.get_feature_importance(type="PredictionValuesChange"), dtype=np.float64)
    total = imp.sum() or 1.0
    splits = _split_counts(json_path, len(names))
    order = np.lexsort((np.arange(len(names)), -imp))
    rep.importance = [(names[j], float(100.0 * imp[j] / total), int(splits[j])) for j in order]
    rep.unused = [names[j] for j in range(len(names)) if splits[j] == 0]
    rep.seconds = time.perf_counter() - t0

    say(f"trained in {rep.train_seconds:.1f} s; saved {out} and {json_path}")
    say(f"NDCG@10 on {rep.valid_requests_scored} held-out requests with a click or contact "
        f"(of {n_valid}): model {rep.ndcg_model:.4f}, source order {rep.ndcg_source:.4f}, "
        f"difference {rep.ndcg_model - rep.ndcg_source:+.4f}")
    width = max(len(n) for n in names)
    say(f"feature importance (PredictionValuesChange, % of total), top {min(top, len(names))}:")
    for name, pct, n_splits in rep.importance[:top]:
        say(f"  {name:<{width}}  {pct:6.2f}%  {n_splits:5d} splits")
    say(f"never used ({len(rep.unused)} of {len(names)}): {', '.join(rep.unused) if rep.unused else 'none'}")
    return rep


def _split_counts(json_path: Path, n_features: int) -> np.ndarray:
    """Splits per feature, read from the model's JSON export (exact: a
    feature with no split does not influence any prediction)."""
    with open(json_path, encoding="utf-8") as f:
        m = json.load(f)
    float_index = {ff["feature_index"]: ff["flat_feature_index"] for ff in m["features_info"].get("float_features", [])}
    counts = np.zeros(n_features, dtype=np.int64)
    for tree in m.get("oblivious_trees", []):
        for s in tree.get("splits", []):
            if "float_feature_index" in s:
                counts[float_index[s["float_feature_index"]]] += 1
    return counts
