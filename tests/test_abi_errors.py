"""Every pf_* export through every error class it can report.

The C ABI has one taxonomy (pyfeat.h's status codes), applied in one place
(cabi/status.go) and turned into exceptions in one place
(pyfeat/_native.py). This table drives each export of the header into
each class: input, type, argument and model errors with real bad
arguments, in this process; internal errors with panics injected on each
kind of goroutine (the export's own, a compute worker, the rank sink, a
predict worker, the user context's preparation) by the fault-injection
build of the library (`make faults-lib`, build tag pffaults; the library
that ships has no injection points), in child processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat import InputError, InputTypeError, InternalError, ModelError, _native

from conftest import base_item, base_user

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "cabi" / "pyfeat.h"
FAULTS_LIB = ROOT / "build" / "libpyfeat_faults.so"
# A model with categorical features (2 float, 6 categorical) for their exports.
CAT_MODEL = ROOT / "catboost" / "testdata" / "cat" / "logloss_d4_buckets.json"
# The children below get it from here: there, the catalogue's exports panic.
N = int(os.environ.get("TEST_ABI_N_FEATURES") or pyfeat.FeatureEngine().n_features)

# The exception each class must raise, and the status code it travels as.
CLASSES = {
    "input": (InputError, "PF_INPUT_ERROR"),
    "type": (InputTypeError, "PF_TYPE_ERROR"),
    "argument": (ValueError, "PF_ARGUMENT_ERROR"),
    "model": (ModelError, "PF_MODEL_ERROR"),
    "internal": (InternalError, "PF_INTERNAL_ERROR"),
}


def exports() -> list[str]:
    return re.findall(r"^\w+\s+(pf_\w+)\(", HEADER.read_text(), re.M)


def ranker_model(path: Path) -> Path:
    """A one-tree native model over pyfeat's features: enough for rank."""
    feats = [
        {"borders": [0.5] if i == 0 else [], "feature_index": i, "flat_feature_index": i,
         "has_nans": False, "nan_value_treatment": "AsIs"}
        for i in range(N)
    ]
    tree = {"leaf_values": [1, 2], "splits": [
        {"border": 0.5, "float_feature_index": 0, "split_index": 0, "split_type": "FloatFeature"}]}
    model = {"model_info": {}, "features_info": {"float_features": feats},
             "oblivious_trees": [tree], "scale_and_bias": [1, [0]]}
    path.write_text(json.dumps(model))
    return path


class Calls:
    """Each export called with arguments that succeed unless one is made bad
    on purpose (the keyword arguments)."""

    def __init__(self, model_path: Path) -> None:
        self.lib, self.ffi = _native.lib(), _native.ffi
        self.model_path = model_path
        self.model = self.load()[2]

    def st(self):
        return _native.new_status()

    def load(self, path=None, backend=b"native", null=False):
        st, h = self.st(), self.ffi.new("int64_t*")
        p = os.fsencode(path or self.model_path)
        code = self.lib.pf_model_load(p, backend, b"", self.ffi.NULL if null else h, st)
        return code, st, int(h[0])

    def user(self, user=None, null=False):
        st, h = self.st(), self.ffi.new("int64_t*")
        blob = msgpack.packb(user if user is not None else base_user())
        code = self.lib.pf_user_begin(blob, len(blob), self.ffi.NULL if null else h, st)
        return code, st, int(h[0])

    def request(self, n=300, bad_item=None):
        items = [msgpack.packb(base_item(i)) for i in range(n)]
        if bad_item is not None:
            items[n // 2] = msgpack.packb(bad_item)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum([len(b) for b in items], out=offsets[1:])
        return b"".join(items), offsets

    def compute(self, n=300, bad_item=None, user=None, user_handle=None, out_len=None):
        blob, offsets = self.request(n, bad_item)
        out = np.empty((n, N), np.float32)
        uh = user_handle if user_handle is not None else self.user(user)[2]
        st, ffi = self.st(), self.ffi
        ids = np.empty(n, np.int64)
        code = self.lib.pf_compute(uh, ffi.from_buffer("uint8_t[]", blob), ffi.from_buffer("int64_t[]", offsets), n, 0,
                                   ffi.NULL, ffi.NULL, ffi.NULL, 2, ffi.from_buffer("float[]", out),
                                   out.size if out_len is None else out_len, ffi.from_buffer("int64_t[]", ids),
                                   ffi.new("int64_t[8]"), ffi.NULL, 0, st)
        return code, st

    def rank(self, handle=None, n=300, bad_item=None, user=None, top_k=5):
        blob, offsets = self.request(n, bad_item)
        scores, order = np.empty(n + 1), np.empty(n + 1, np.int64)
        st, ffi = self.st(), self.ffi
        code = self.lib.pf_rank(self.model if handle is None else handle, self.user(user)[2],
                                ffi.from_buffer("uint8_t[]", blob), ffi.from_buffer("int64_t[]", offsets), n, 0,
                                ffi.NULL, ffi.NULL, ffi.NULL, 2, ffi.NULL, ffi.NULL,
                                ffi.from_buffer("double[]", scores), ffi.from_buffer("int64_t[]", order), top_k,
                                ffi.new("int64_t[8]"), st)
        return code, st

    def predict(self, handle=None, rows=4096, cols=N):
        x = np.zeros((rows, cols), np.float32)
        out = np.empty(rows)
        st, ffi = self.st(), self.ffi
        code = self.lib.pf_model_predict(self.model if handle is None else handle, ffi.from_buffer("float[]", x),
                                         rows, cols, 2, ffi.from_buffer("double[]", out), rows, st)
        return code, st

    def cache(self, max_bytes=1 << 20, null=False):
        st, h = self.st(), self.ffi.new("int64_t*")
        code = self.lib.pf_cache_new(max_bytes, 0, self.ffi.NULL if null else h, st)
        return code, st, int(h[0])

    def lookup(self, cache=None, ids=(1000, 1001)):
        ids = np.asarray(ids, np.int64)
        st, ffi = self.st(), self.ffi
        h, n_missing, missing = ffi.new("int64_t*"), ffi.new("int64_t*"), np.empty(len(ids), np.int64)
        code = self.lib.pf_cache_lookup(self.cache()[2] if cache is None else cache, ffi.from_buffer("int64_t[]", ids),
                                        len(ids), h, ffi.from_buffer("int64_t[]", missing), n_missing, st)
        return code, st, int(h[0])

    def fill(self, lookup=None, records=None):
        records = records if records is not None else [msgpack.packb(base_item(0)), msgpack.packb(base_item(1))]
        blob, offsets = b"".join(records), np.zeros(len(records) + 1, np.int64)
        np.cumsum([len(r) for r in records], out=offsets[1:])
        st, ffi = self.st(), self.ffi
        lk = self.lookup()[2] if lookup is None else lookup
        code = self.lib.pf_lookup_fill(lk, ffi.from_buffer("uint8_t[]", blob), ffi.from_buffer("int64_t[]", offsets),
                                       len(records), st)
        return code, st, lk

    def raw(self, lookup):
        st, ffi, needed = self.st(), self.ffi, self.ffi.new("int64_t*")
        code = self.lib.pf_lookup_raw(lookup, ffi.NULL, 0, ffi.NULL, 0, needed, st)
        if code != _native.PF_OK:
            return code, st
        blob, offsets = bytearray(int(needed[0])), np.empty(3, np.int64)
        return self.lib.pf_lookup_raw(lookup, ffi.from_buffer("uint8_t[]", blob), len(blob),
                                      ffi.from_buffer("int64_t[]", offsets), 3, needed, st), st

    def predict_cat(self, handle, rows=4096, n_float=2, n_cat=6):
        # CAT_MODEL's shape: 2 float and 6 categorical features per row.
        x = np.zeros((rows, n_float), np.float32)
        cats = np.arange(rows * n_cat, dtype=np.uint32)
        out = np.empty(rows)
        st, ffi = self.st(), self.ffi
        code = self.lib.pf_model_predict_cat(handle, ffi.from_buffer("float[]", x), rows, n_float,
                                             ffi.from_buffer("uint32_t[]", cats), n_cat, 2,
                                             ffi.from_buffer("double[]", out), rows, st)
        return code, st

    def text(self, fn, cap=4096):
        st, needed = self.st(), self.ffi.new("int64_t*")
        buf = self.ffi.new("char[]", max(cap, 1))
        return fn(buf, cap, needed, st), st

    def table(self, tmp: Path) -> dict[str, dict[str, object]]:
        """export -> class -> a thunk returning (code, status)."""
        lib, ffi = self.lib, self.ffi
        closed = self.load()[2]
        lib.pf_model_close(closed, self.st())
        other = ROOT / "catboost" / "testdata" / "logloss_d1.json"  # 8 features, not pyfeat's
        narrow = self.load(other)[2]
        cat = self.load(CAT_MODEL)[2]
        garbage = tmp / "garbage.json"
        garbage.write_text("{not json")
        ok_user = self.user()[2]

        def st_call(fn, *args):
            st = self.st()
            return fn(*args, st), st

        def shape(handle, null=False):
            st, a, b = self.st(), ffi.new("int64_t*"), ffi.new("int64_t*")
            return lib.pf_model_shape(handle, ffi.NULL if null else a, b, st), st

        def share(handle, null=False):
            st, out = self.st(), ffi.new("int64_t*")
            return lib.pf_model_share(handle, ffi.NULL if null else out, st), st

        def describe(handle, cap=1 << 16):
            st, needed = self.st(), ffi.new("int64_t*")
            buf = ffi.new("char[]", max(cap, 1))
            return lib.pf_model_describe(handle, buf, cap, needed, st), st

        def cat_layout(handle, cap=1 << 16):
            st, needed = self.st(), ffi.new("int64_t*")
            buf = ffi.new("char[]", max(cap, 1))
            return lib.pf_model_cat_layout(handle, buf, cap, needed, st), st

        def hash_strings(offsets):
            blob = "ab\u00e9c".encode()
            offs = np.array(offsets, np.int64)
            out = np.empty(len(offs) - 1, np.uint32)
            return st_call(lib.pf_cat_hash_strings, ffi.from_buffer("uint8_t[]", blob),
                           ffi.from_buffer("int64_t[]", offs), len(out), ffi.from_buffer("uint32_t[]", out))

        def hash_ints(null_out=False):
            values = np.arange(-5, 5, dtype=np.int64)
            out = ffi.NULL if null_out else ffi.from_buffer("uint32_t[]", np.empty(10, np.uint32))
            return st_call(lib.pf_cat_hash_ints, ffi.from_buffer("int64_t[]", values), 10, out)

        return {
            "pf_catalogue": {
                "ok": lambda: self.text(lib.pf_catalogue, 1 << 16),
                "argument": lambda: self.text(lib.pf_catalogue, 8),
            },
            "pf_spec_hash": {
                "ok": lambda: st_call(lib.pf_spec_hash, ffi.new("char[64]"), 64),
                "argument": lambda: st_call(lib.pf_spec_hash, ffi.new("char[4]"), 4),
            },
            "pf_user_begin": {
                "ok": lambda: self.user()[:2],
                "argument": lambda: self.user(null=True)[:2],
            },
            "pf_user_discard": {
                "ok": lambda: st_call(lib.pf_user_discard, self.user()[2]),
                "argument": lambda: st_call(lib.pf_user_discard, ok_user + 10**9),
            },
            "pf_compute": {
                "ok": lambda: self.compute(),
                "input": lambda: self.compute(bad_item=base_item(price=-1)),
                "type": lambda: self.compute(bad_item=base_item(price="100")),
                "argument": lambda: self.compute(out_len=7),
            },
            "pf_model_load": {
                "ok": lambda: self.load()[:2],
                "model": lambda: self.load(garbage)[:2],
                "argument": lambda: self.load(null=True)[:2],
            },
            "pf_model_close": {
                "ok": lambda: st_call(lib.pf_model_close, self.load()[2]),
                "model": lambda: st_call(lib.pf_model_close, closed),
            },
            "pf_model_share": {
                "ok": lambda: share(self.model),
                "model": lambda: share(closed),
                "argument": lambda: share(self.model, null=True),
            },
            "pf_model_swap": {
                "ok": lambda: st_call(lib.pf_model_swap, self.load()[2], self.model),
                "model": lambda: st_call(lib.pf_model_swap, self.model, closed),
            },
            "pf_model_shape": {
                "ok": lambda: shape(self.model),
                "model": lambda: shape(closed),
                "argument": lambda: shape(self.model, null=True),
            },
            "pf_model_describe": {
                "ok": lambda: describe(self.model),
                "model": lambda: describe(closed),
                "argument": lambda: describe(self.model, cap=3),
            },
            "pf_model_predict": {
                "ok": lambda: self.predict(),
                "model": lambda: self.predict(closed),
                "argument": lambda: self.predict(cols=N + 1),
            },
            "pf_profile": {
                "ok": lambda: st_call(lib.pf_profile, os.fsencode(tmp / "go.pprof"), 10_000_000),
                "argument": lambda: st_call(lib.pf_profile, os.fsencode(tmp / "no" / "dir.pprof"), 10_000_000),
            },
            "pf_cache_new": {
                "ok": lambda: self.cache()[:2],
                "argument": lambda: self.cache(max_bytes=0)[:2],
            },
            "pf_cache_close": {
                "ok": lambda: st_call(lib.pf_cache_close, self.cache()[2]),
                "argument": lambda: st_call(lib.pf_cache_close, 10**9),
            },
            "pf_cache_stats": {
                "ok": lambda: st_call(lib.pf_cache_stats, self.cache()[2], ffi.new("int64_t[10]")),
                "argument": lambda: st_call(lib.pf_cache_stats, self.cache()[2], ffi.NULL),
            },
            "pf_cache_invalidate": {
                "ok": lambda: st_call(lib.pf_cache_invalidate, self.cache()[2], ffi.new("int64_t[2]"), 2,
                                      ffi.new("int64_t*")),
                "argument": lambda: st_call(lib.pf_cache_invalidate, self.cache()[2], ffi.NULL, 2, ffi.NULL),
            },
            "pf_cache_clear": {
                "ok": lambda: st_call(lib.pf_cache_clear, self.cache()[2]),
                "argument": lambda: st_call(lib.pf_cache_clear, 10**9),
            },
            "pf_cache_lookup": {
                "ok": lambda: self.lookup()[:2],
                "argument": lambda: self.lookup(cache=10**9)[:2],
            },
            "pf_lookup_fill": {
                "ok": lambda: self.fill()[:2],
                "input": lambda: self.fill(records=[msgpack.packb(base_item(0)),
                                                    msgpack.packb(base_item(1, price=-1))])[:2],
                "type": lambda: self.fill(records=[msgpack.packb(base_item(0, price="1")),
                                                   msgpack.packb(base_item(1))])[:2],
                "argument": lambda: self.fill(records=[msgpack.packb(base_item(0))])[:2],
            },
            "pf_lookup_raw": {
                "ok": lambda: self.raw(self.fill()[2]),
                "argument": lambda: self.raw(self.lookup()[2]),  # not filled
            },
            "pf_lookup_close": {
                "ok": lambda: st_call(lib.pf_lookup_close, self.lookup()[2]),
                "argument": lambda: st_call(lib.pf_lookup_close, 10**9),
            },
            "pf_model_cat_layout": {
                "ok": lambda: cat_layout(cat),
                "model": lambda: cat_layout(closed),
                "argument": lambda: cat_layout(cat, cap=3),
            },
            "pf_cat_hash_strings": {
                "ok": lambda: hash_strings([0, 2, 2, 5]),
                "argument": lambda: hash_strings([0, 3, 2, 5]),
            },
            "pf_cat_hash_ints": {
                "ok": lambda: hash_ints(),
                "argument": lambda: hash_ints(null_out=True),
            },
            "pf_model_predict_cat": {
                "ok": lambda: self.predict_cat(cat),
                "model": lambda: self.predict_cat(closed),
                "argument": lambda: self.predict_cat(cat, n_cat=5),
            },
            "pf_rank": {
                "ok": lambda: self.rank(),
                "input": lambda: self.rank(bad_item=base_item(price=-1)),
                "type": lambda: self.rank(user=base_user(now="today")),
                "argument": lambda: self.rank(top_k=301),
                "model": lambda: self.rank(narrow),
            },
        }


# Exports without a pf_status: they cannot fail but by a panic, which makes
# them return -1 (pf_num_features is driven there by the fault build;
# pf_abi_version answers before anything else runs, and a -1 makes the
# binding refuse the library).
NO_STATUS = {"pf_abi_version", "pf_num_features", "pf_num_cat_features"}


def assert_class(export: str, code, st, cls: str) -> None:
    exc, name = CLASSES[cls]
    assert code == getattr(_native.lib(), name), (export, cls, code, _native.ffi.string(st.message))
    with pytest.raises(exc) as info:
        _native.raise_status(st)
    assert type(info.value) is exc, (export, cls, type(info.value))  # not merely a subclass: the class itself


def test_every_export_is_in_the_table(tmp_path):
    table = Calls(ranker_model(tmp_path / "m.json")).table(tmp_path)
    assert set(table) | NO_STATUS == set(exports())


def test_every_export_reports_every_class(tmp_path):
    calls = Calls(ranker_model(tmp_path / "m.json"))
    for export, cases in calls.table(tmp_path).items():
        for cls, thunk in cases.items():
            code, st = thunk()
            if cls == "ok":
                assert code == _native.PF_OK, (export, _native.ffi.string(st.message))
            else:
                assert_class(export, code, st, cls)


# ---- internal errors: panics injected by the fault-injection build --------

CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_abi_errors as t
calls = t.Calls(t.ranker_model(Path(sys.argv[2]) / "m.json"))
lib, ffi = calls.lib, calls.ffi
result = {"pf_num_features": lib.pf_num_features()}
for export, cases in calls.table(Path(sys.argv[2])).items():
    code, st = cases["ok"]()
    result[export] = [code, ffi.string(st.message).decode("utf-8", "replace")[:200]]
print(json.dumps(result))
"""

# site -> the exports whose successful call goes through it
SITES = {
    "compute-worker": {"pf_compute", "pf_rank"},
    "rank-sink": {"pf_rank"},
    "predict-worker": {"pf_model_predict", "pf_model_predict_cat"},
    "user-prepare": {"pf_compute", "pf_rank"},
}


@pytest.fixture(scope="module")
def faults_lib():
    # Built by `make test` (make faults-lib); built here when the tests run alone.
    subprocess.run(["make", "-s", "faults-lib"], cwd=ROOT, check=True)
    return FAULTS_LIB


def run_child(faults_lib, tmp_path, sites: str) -> dict:
    env = {**os.environ, "PYFEAT_LIBRARY": str(faults_lib), "PYFEAT_FAULT": sites, "TEST_ABI_N_FEATURES": str(N)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_a_panic_in_any_export_is_an_internal_error(faults_lib, tmp_path):
    # Every export's own goroutine panics at its entry; the model for the
    # table is loaded first, so pf_model_load is armed in a child of its own.
    armed = sorted(set(exports()) - {"pf_abi_version", "pf_model_load", "pf_user_begin"})
    got = run_child(faults_lib, tmp_path, ",".join(armed))
    assert got.pop("pf_num_features") == -1
    internal = _native.lib().PF_INTERNAL_ERROR
    for export in armed:
        if export in NO_STATUS:
            continue
        code, message = got[export]
        assert code == internal and "injected fault at " + export in message, (export, code, message)


@pytest.mark.parametrize("export", ["pf_model_load", "pf_user_begin"])
def test_a_panic_in_load_or_begin_is_an_internal_error(faults_lib, tmp_path, export):
    # These two run before the rest of the table: the child fails at once
    # with the InternalError that the status became.
    env = {**os.environ, "PYFEAT_LIBRARY": str(faults_lib), "PYFEAT_FAULT": export}
    code = "import pyfeat\n" + (
        "pyfeat.Model(sys.argv[1])" if export == "pf_model_load" else "pyfeat.FeatureEngine().compute({}, [])")
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(ranker_model(tmp_path / "m.json"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "pyfeat.errors.InternalError" in out.stderr, out.stderr[-2000:]
    assert "injected fault at " + export in out.stderr


@pytest.mark.parametrize("site", sorted(SITES))
def test_a_panic_on_a_worker_goroutine_is_an_internal_error(faults_lib, tmp_path, site):
    got = run_child(faults_lib, tmp_path, site)
    internal = _native.lib().PF_INTERNAL_ERROR
    for export, (code, message) in ((k, v) for k, v in got.items() if k not in NO_STATUS):
        if export in SITES[site]:
            assert code == internal and "injected fault at " + site in message, (export, code, message)
        else:
            assert code == _native.PF_OK, (export, code, message)
