"""Micro benchmarks, each pyfeat path next to its plain-Python counterpart
on the same inputs, measured in one run. Results are checked equal first."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat import _native, reference


def _assert_parity(got, want):
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    m = ~np.isnan(got)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-6)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_reference(benchmark, request3000):
    req = request3000
    benchmark.extra_info["items"] = len(req.items)
    benchmark(reference.compute, req.user_blob, req.item_blobs, req.candidates)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_pyfeat(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine()
    blobs, user = req.item_blobs, req.user_blob
    _assert_parity(engine.compute(user, blobs, req.candidates), reference.compute(user, blobs, req.candidates))
    benchmark.extra_info["items"] = len(req.items)
    benchmark(engine.compute, user, blobs, req.candidates)


@pytest.mark.benchmark(group="features: one 3000-item request")
def test_features_pyfeat_1thread(benchmark, request3000):
    req = request3000
    engine = pyfeat.FeatureEngine(threads=1)
    blobs, user = req.item_blobs, req.user_blob
    benchmark(engine.compute, user, blobs, req.candidates)


@pytest.mark.benchmark(group="decode: 3000 item records")
def test_decode_msgpack_python(benchmark, request3000):
    blobs = request3000.item_blobs
    unpackb = msgpack.unpackb
    benchmark(lambda: [unpackb(b) for b in blobs])


@pytest.mark.benchmark(group="call overhead: empty call")
def test_empty_call_pyfeat(benchmark):
    lib = _native.lib()
    benchmark(lib.pf_num_features)


@pytest.mark.benchmark(group="call overhead: empty call")
def test_empty_call_python(benchmark):
    def noop():
        return 77

    benchmark(noop)
