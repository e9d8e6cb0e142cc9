"""What the tests and the benchmarks share: the synthetic worlds and the
requests drawn from them, models trained on their feedback, and the rule by
which two feature matrices are compared.

tests/conftest.py and bench/conftest.py import the ``world`` and
``spread_requests`` fixtures from here. A test module picks its world with
``WORLD = (seed, n_items, n_users)`` (default ``SMALL_WORLD``) and its
sample of requests with ``SPREAD = (n_requests, n_candidates)``; a world is
built once per process whichever modules use it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyfeat
from pyfeat.synth import Marketplace, Request

SMALL_WORLD = (11, 5000, 500)


@functools.lru_cache(maxsize=4)
def marketplace(seed: int, n_items: int, n_users: int) -> Marketplace:
    return Marketplace(seed, n_items=n_items, n_users=n_users)


@pytest.fixture(scope="module")
def world(request) -> Marketplace:
    return marketplace(*getattr(request.module, "WORLD", SMALL_WORLD))


@pytest.fixture(scope="module")
def spread_requests(request, world) -> list[Request]:
    """Requests spread over the request stream, so that users without views
    and users with thousands both appear."""
    n, n_candidates = request.module.SPREAD
    return [world.request(i * 97, n_candidates) for i in range(n)]


def long_history_request(world: Marketplace, n_candidates: int, min_views: int = 500) -> Request:
    """The first request whose user viewed at least min_views items: the
    expensive user x item features matter there."""
    for i in range(200):
        req = world.request(i, n_candidates)
        if len(req.user.get("views") or []) >= min_views:
            return req
    raise RuntimeError(f"no request with {min_views} views in the first 200")


def training_set(world: Marketplace, request_ids: Iterable[int], n_candidates: int) -> dict[str, np.ndarray]:
    """pyfeat's features of the requests and the world's feedback on them:
    ``X`` (rows, features), ``clicks``, ``contacts`` and ``group`` (the
    request id of each row)."""
    engine = pyfeat.FeatureEngine()
    parts: dict[str, list[np.ndarray]] = {"X": [], "clicks": [], "contacts": [], "group": []}
    for i in request_ids:
        req = world.request(i, n_candidates)
        parts["X"].append(engine.compute(req.user_blob, req.item_blobs, req.candidates))
        clicks, contacts = world.feedback(req)
        parts["clicks"].append(clicks)
        parts["contacts"].append(contacts)
        parts["group"].append(np.full(len(req), i))
    return {k: np.concatenate(v) for k, v in parts.items()}


def save_pyfeat_model(model: Any, json_path: Path, cbm_path: Path | None = None) -> Path:
    """Record the spec hash in a trained CatBoost model and save its JSON
    export (and the .cbm when asked)."""
    model.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    if cbm_path is not None:
        model.save_model(str(cbm_path))
    model.save_model(str(json_path), format="json")
    return json_path


def assert_same_matrix(got: np.ndarray, want: np.ndarray, names, rtol: float = 1e-6) -> None:
    """Identical NaN positions, every other value within rtol (relative)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype == np.float32
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    if not np.array_equal(nan_g, nan_w):
        r, c = np.argwhere(nan_g != nan_w)[0]
        raise AssertionError(f"NaN mismatch at row {r}, feature {names[c]}: got {got[r, c]}, want {want[r, c]}")
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf
        ok = nan_g | (g == w) | (np.abs(g - w) <= rtol * np.maximum(np.abs(g), np.abs(w)))
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise AssertionError(
            f"{(~ok).sum()} values differ; first at row {r}, feature {names[c]}: got {got[r, c]!r}, want {want[r, c]!r}"
        )


def log_records(path: Path | str) -> tuple[bytes, list[bytes]]:
    """A request log cut into (its file header, each record's bytes: header
    and payload), for tests that rearrange records between files."""
    from pyfeat.requestlog import FILE_HEADER_SIZE, scan_log

    data = Path(path).read_bytes()
    return data[:FILE_HEADER_SIZE], [data[r.offset : r.end] for r in scan_log(path)]


def write_records(path: Path | str, file_header: bytes, records: Iterable[bytes]) -> list[int]:
    """Write a log of these records back to back; returns their offsets."""
    offsets, pos = [], len(file_header)
    with open(path, "wb") as f:
        f.write(file_header)
        for rec in records:
            offsets.append(pos)
            f.write(rec)
            pos += len(rec)
    return offsets


def with_request_id(record: bytes, request_id: str) -> bytes:
    """The same record logged under another request id (its header checksum
    recomputed: an intact record, not a damaged one)."""
    import struct
    import uuid
    import zlib

    from pyfeat.requestlog import REC_HEADER_SIZE

    head = bytearray(record[:REC_HEADER_SIZE])
    head[12:28] = uuid.UUID(request_id).bytes
    head[28:32] = struct.pack("<I", zlib.crc32(bytes(head[:28])))
    return bytes(head) + record[REC_HEADER_SIZE:]


def record_id(record: bytes) -> str:
    import uuid

    return str(uuid.UUID(bytes=record[12:28]))
