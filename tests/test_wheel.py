"""The built wheel works where a user installs it: a fresh venv, no Go on
PATH, no source tree on sys.path.

`make wheel` builds dist/pyfeat-<version>-py3-none-manylinux_*.whl once (a
stamp keeps it until a source changes). For every CPython >= 3.10 found on
the machine (this one, plus one per minor version among python3.X on PATH
and pyenv's versions), the wheel and its dependencies are installed into a
new venv, and a child process run from an empty directory with a scrubbed
environment imports pyfeat, computes features, ranks and predicts; its
results must equal this process's bit for bit. The `pyfeat` console script
is run the same way.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import msgpack
import numpy as np
import pytest

import pyfeat

from conftest import REPO, base_item, base_user, catboost_fixture

GOLDEN = "logloss_d1"  # a golden fixture model: 8 features, 400 rows of edge values


def _build_wheel() -> Path:
    r = subprocess.run(["make", "wheel"], cwd=REPO, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.fail(f"make wheel failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    pattern = f"pyfeat-{pyfeat.__version__}-py3-none-manylinux_*_{platform.machine()}.whl"
    wheels = sorted((REPO / "dist").glob(pattern))
    assert len(wheels) == 1, (pattern, wheels)
    return wheels[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _build_wheel()


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        r = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                           capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if r.returncode != 0:
        return None
    major, minor = map(int, r.stdout.split())
    return major, minor


def _pythons() -> list[tuple[str, str]]:
    """(id, interpreter): this test's Python first, then one per other
    minor version >= 3.10 that the machine has."""
    found = {sys.version_info[:2]: sys.executable}
    candidates = [shutil.which(f"python3.{m}") for m in range(10, 20)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for c in candidates:
        if c and "/shims/" not in c:  # a pyenv shim runs the selected version, not its name's
            v = _version_of(c)
            if v is not None and v >= (3, 10) and v not in found:
                found[v] = c
    return [(f"py{v[0]}.{v[1]}", p) for v, p in sorted(found.items())]


PYTHONS = _pythons()


def _dev_pins(*names: str) -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        dev = tomllib.load(f)["project"]["optional-dependencies"]["dev"]
    pins = [p for p in dev if re.split(r"[=<>!~]", p)[0] in names]
    assert len(pins) == len(names), pins
    return pins


def _scrubbed_env(venv: Path, home: Path) -> dict[str, str]:
    """Only the venv on PATH: no Go, no compiler, no GOROOT/GOPATH/GOFLAGS,
    no PYTHONPATH, no PYFEAT_LIBRARY."""
    return {"PATH": str(venv / "bin"), "HOME": str(home), "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}


def _small_model(path: Path) -> None:
    """A tiny CatBoost model on pyfeat's features, trained here (catboost is
    in this venv, not in the fresh one)."""
    from catboost import CatBoostRegressor, Pool

    names = pyfeat.feature_names()
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, len(names))).astype(np.float32)
    m = CatBoostRegressor(iterations=12, depth=3, verbose=False, allow_writing_files=False, thread_count=1,
                          random_seed=0)
    m.fit(Pool(X, X[:, 0] - X[:, 5] + rng.normal(size=300), feature_names=names))
    m.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    m.save_model(str(path), format="json")


def _request() -> tuple[bytes, list[bytes], dict[str, np.ndarray]]:
    n = 6
    user = msgpack.packb(base_user())
    items = [msgpack.packb(base_item(i, price=100.0 * (i + 1), views_7d=10 * i)) for i in range(n)]
    cands = {"source": np.arange(n) % 3, "source_score": np.linspace(1.0, 0.0, n), "source_rank": np.arange(n)}
    return user, items, cands


# Runs in the fresh venv, from a directory holding only the data files.
CHILD = r"""
import importlib.metadata, json, os, shutil, sys
from pathlib import Path

import msgpack, numpy as np
import pyfeat

venv = Path(sys.prefix).resolve()
assert Path(pyfeat.__file__).resolve().is_relative_to(venv), pyfeat.__file__
assert shutil.which("go") is None, shutil.which("go")
assert not [k for k in os.environ if k.startswith("GO") or k in ("PYTHONPATH", "PYFEAT_LIBRARY")], dict(os.environ)
assert Path(pyfeat._native.library_path()).resolve().is_relative_to(venv), pyfeat._native.library_path()

req = msgpack.unpackb(Path("request.msgpack").read_bytes())
cands = {k: np.asarray(v) for k, v in req["candidates"].items()}
X = pyfeat.FeatureEngine(threads=2).compute(req["user"], req["items"], cands)
ranker = pyfeat.Ranker("model.json")
res = ranker.rank(req["user"], req["items"], cands)
golden = pyfeat.Model("golden.json")
x = np.fromfile("golden.input.f32", dtype="<f4").reshape(-1, 8)
pred = golden.predict(x)

np.savez("out.npz", X=X, order=res.order, scores=res.scores, pred=pred)
json.dump({
    "version": pyfeat.__version__,
    "dist_version": importlib.metadata.version("pyfeat"),
    "names": pyfeat.feature_names(),
    "spec_hash": pyfeat.spec_hash(),
    "python": list(sys.version_info[:2]),
    "ffi_module": "pyfeat._ffi" in sys.modules,
    "pycparser": "pycparser" in sys.modules,
}, open("out.json", "w"))
"""


@pytest.mark.parametrize("python", [p for _, p in PYTHONS], ids=[i for i, _ in PYTHONS])
def test_wheel_in_fresh_venv_without_go(wheel, python, tmp_path):
    venv, work, home = tmp_path / "venv", tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()

    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # This venv's pip installs into the new one (--python), from pip's cache
    # or PyPI; binaries only, so nothing is compiled. The dev pins of the
    # dependencies where they exist for that Python (they are this venv's).
    pins = _dev_pins("numpy", "cffi", "msgpack") if _version_of(python) == sys.version_info[:2] else []
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                        "--quiet", "--disable-pip-version-check", "--only-binary=:all:", str(wheel), *pins],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    user, items, cands = _request()
    (work / "request.msgpack").write_bytes(
        msgpack.packb({"user": user, "items": items, "candidates": {k: v.tolist() for k, v in cands.items()}}))
    _small_model(work / "model.json")
    shutil.copyfile(catboost_fixture(f"{GOLDEN}.json"), work / "golden.json")
    shutil.copyfile(catboost_fixture(f"{GOLDEN}.input.f32"), work / "golden.input.f32")

    env = _scrubbed_env(venv, home)
    r = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", CHILD], cwd=work, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((work / "out.json").read_text())
    out = np.load(work / "out.npz")

    assert info["python"] == list(_version_of(python) or ())
    assert info["version"] == info["dist_version"] == pyfeat.__version__
    assert info["names"] == pyfeat.feature_names() and len(info["names"]) == 77
    assert info["spec_hash"] == pyfeat.spec_hash()
    # The wheel's generated cffi module was used: no C header parsed at import.
    assert info["ffi_module"] and not info["pycparser"]

    want_X = pyfeat.FeatureEngine(threads=2).compute(user, items, cands)
    assert out["X"].dtype == np.float32 and out["X"].shape == (len(items), 77)
    np.testing.assert_array_equal(out["X"], want_X)  # NaNs in the same places, the rest bit-equal
    with pyfeat.Ranker(work / "model.json") as ranker:
        want = ranker.rank(user, items, cands)
    np.testing.assert_array_equal(out["order"], want.order)
    np.testing.assert_array_equal(out["scores"], want.scores)
    assert len(set(out["scores"].tolist())) > 1  # the model separates the items: the order is not vacuous
    expected = np.fromfile(catboost_fixture(f"{GOLDEN}.expected.f64"), dtype="<f8")
    np.testing.assert_array_equal(out["pred"], expected)  # CatBoost's own predictions, bit for bit

    r = subprocess.run([str(venv / "bin" / "pyfeat"), "features"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"77 features, spec hash {pyfeat.spec_hash()}" in r.stdout
    listed = [line.split()[1] for line in r.stdout.splitlines() if line and not line.startswith("#")]
    assert listed == pyfeat.feature_names()
