"""Ranking metrics: what training reports, and what the synthetic world's
tests measure its generators with."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ndcg_at_k", "mean_ndcg"]


def ndcg_at_k(gains: Any, scores: Any, k: int = 10) -> float:
    """NDCG@k of ordering ``gains`` by ``scores`` descending (ties keep
    input order; NaN scores last). NaN when every gain is 0."""
    gains = np.asarray(gains, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.lexsort((np.arange(gains.size), -s))
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    top = gains[order[:k]]
    ideal = np.sort(gains)[::-1][:k]
    idcg = float(np.sum(ideal * disc[: ideal.size]))
    if idcg == 0.0:
        return float("nan")
    return float(np.sum(top * disc[: top.size]) / idcg)


def mean_ndcg(labels: np.ndarray, scores: np.ndarray, bounds: np.ndarray, k: int = 10) -> tuple[float, int]:
    """Mean NDCG@k over the groups ``rows[bounds[g]:bounds[g+1]]`` that have
    a positive label, and the number of such groups."""
    vals = [ndcg_at_k(labels[a:b], scores[a:b], k) for a, b in zip(bounds[:-1], bounds[1:])]
    vals = [v for v in vals if not np.isnan(v)]
    return (float(np.mean(vals)) if vals else float("nan")), len(vals)
