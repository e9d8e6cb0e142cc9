"""Build the C++/pybind11 peer `pyfeat_cpp_peer` into bench/cpp/build/.

Run with the project's Python (``make cpp-peer``). Installs what is missing:
the Debian packages with the C++ headers (msgpack-cxx, ICU) through apt-get,
and pybind11 from PyPI into the running interpreter's environment. Then
compiles the sources in parallel and links the extension module. A build
whose inputs (sources, flags, compiler, Python, pybind11) have not changed is
skipped. Prints the directory to put on sys.path.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
BUILD = HERE / "build"
MODULE = "pyfeat_cpp_peer"
SOURCES = ["module.cpp", "features.cpp", "tokenize.cpp"]
HEADERS = ["features.hpp", "tokenize.hpp"]

PYBIND11_VERSION = "3.1.0"
# header that proves the package is installed -> Debian package
SYSTEM_HEADERS = {
    "msgpack.hpp": "libmsgpack-cxx-dev",
    "unicode/uchar.h": "libicu-dev",
}
INCLUDE_DIRS = [Path("/usr/include"), Path("/usr/local/include")]

CXX = os.environ.get("CXX", "c++")
CXXFLAGS = [
    "-O3",
    "-march=x86-64-v2",
    "-std=c++17",
    "-fPIC",
    "-fvisibility=hidden",  # pybind11's recommendation for extension modules
    "-ffp-contract=off",  # no fused multiply-add: round as the reference does
    "-pthread",
    "-DNDEBUG",
    "-DMSGPACK_NO_BOOST",  # msgpack-cxx header-only, without Boost
    "-Wall",
    "-Wextra",
]
LDFLAGS = ["-shared", "-pthread"]
LIBS = ["-licuuc"]


def log(msg: str) -> None:
    print(f"cpp-peer: {msg}", file=sys.stderr, flush=True)


def ensure_system_headers() -> None:
    missing = sorted(
        {pkg for header, pkg in SYSTEM_HEADERS.items() if not any((d / header).exists() for d in INCLUDE_DIRS)}
    )
    if not missing:
        return
    if shutil.which("apt-get") is None:
        sys.exit(f"cpp-peer: missing C++ headers; install the Debian packages {' '.join(missing)}")
    log(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if os.geteuid() != 0 and shutil.which("sudo"):
        cmd = ["sudo", "-E", *cmd]
    # stdout carries only the import path: the tools' output goes to stderr.
    if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
        # A fresh machine may have no package lists yet.
        update = ["apt-get", "update", "-q"] if cmd[0] != "sudo" else ["sudo", "apt-get", "update", "-q"]
        subprocess.run(update, env=env, check=True, stdout=sys.stderr)
        subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)


def ensure_pybind11():
    try:
        import pybind11

        if pybind11.__version__ == PYBIND11_VERSION:
            return pybind11
    except ImportError:
        pass
    log(f"installing pybind11=={PYBIND11_VERSION} (pip)")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", f"pybind11=={PYBIND11_VERSION}"],
        check=True,
        stdout=sys.stderr,
    )
    importlib.invalidate_caches()
    for name in [m for m in sys.modules if m == "pybind11" or m.startswith("pybind11.")]:
        del sys.modules[name]
    import pybind11

    return pybind11


def compiler_id() -> str:
    out = subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0] if out else CXX


def build_key(include_flags: list[str], pybind11_version: str) -> str:
    h = hashlib.sha256()
    for part in [compiler_id(), sys.version, pybind11_version, *CXXFLAGS, *LDFLAGS, *LIBS, *include_flags]:
        h.update(part.encode())
        h.update(b"\0")
    for name in SOURCES + HEADERS:
        h.update(name.encode())
        h.update((SRC / name).read_bytes())
    return h.hexdigest()


def main() -> int:
    ensure_system_headers()
    pybind11 = ensure_pybind11()
    include_flags = ["-isystem", pybind11.get_include(), "-isystem", sysconfig.get_paths()["include"]]
    target = BUILD / (MODULE + sysconfig.get_config_var("EXT_SUFFIX"))
    stamp = BUILD / (target.name + ".stamp")
    key = build_key(include_flags, pybind11.__version__)

    if target.exists() and stamp.exists() and stamp.read_text().strip() == key:
        log(f"up to date: {target.name}")
        print(BUILD)
        return 0

    BUILD.mkdir(parents=True, exist_ok=True)
    objects = [BUILD / (Path(s).stem + ".o") for s in SOURCES]

    def compile_one(pair: tuple[str, Path]) -> subprocess.CompletedProcess:
        src, obj = pair
        cmd = [CXX, *CXXFLAGS, *include_flags, "-c", str(SRC / src), "-o", str(obj)]
        return subprocess.run(cmd, capture_output=True, text=True)

    log(f"compiling {', '.join(SOURCES)} with {CXX} {' '.join(CXXFLAGS)}")
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(compile_one, zip(SOURCES, objects)))
    failed = False
    for src, res in zip(SOURCES, results):
        if res.stderr:
            sys.stderr.write(res.stderr)
        if res.returncode != 0:
            log(f"compiling {src} failed")
            failed = True
    if failed:
        return 1

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    res = subprocess.run([CXX, *LDFLAGS, "-o", str(tmp), *map(str, objects), *LIBS], stdout=sys.stderr)
    if res.returncode != 0:
        log("linking failed")
        return 1
    os.replace(tmp, target)  # atomic: a concurrent import sees the old or the new module
    for obj in objects:
        obj.unlink(missing_ok=True)
    stamp.write_text(key + "\n")
    log(f"built {target.relative_to(HERE.parent.parent)}")
    print(BUILD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
