"""Shared inputs for the micro benchmarks: one realistic 3000-item request."""

from __future__ import annotations

import pytest

from pyfeat.synth import Marketplace

N_CANDIDATES = 3000


@pytest.fixture(scope="session")
def world():
    return Marketplace(seed=1, n_items=50_000, n_users=5_000)


@pytest.fixture(scope="session")
def request3000(world):
    # A user with a long history: the expensive user x item features matter.
    for i in range(200):
        req = world.request(i, N_CANDIDATES)
        if len(req.user.get("views") or []) >= 500:
            return req
    raise RuntimeError("no request with a long view history in the first 200")
