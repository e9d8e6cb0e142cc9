"""Build hook: the Go shared library is built by the Makefile (`make lib`),
the one place that knows how; setup.py only calls it and ships the result."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


class BuildPyWithGo(build_py):
    def run(self):
        # BUILD_PY: the Python that generates pyfeat/_ffi.py needs cffi, which
        # is a build requirement, so it is this one.
        subprocess.run(["make", "lib", f"BUILD_PY={sys.executable}"], cwd=HERE, check=True)
        super().run()


class BinaryDistribution(Distribution):
    """The wheel carries a native library: it is platform-specific."""

    def has_ext_modules(self):
        return True


class WheelForEveryPython3(bdist_wheel):
    """Tag the wheel py3-none-<platform>, not cpXY-cpXY-<platform>.

    pyfeat has no CPython extension module. libpyfeat.so is a Go c-shared
    library that links only against glibc and exports plain C functions
    (cabi/pyfeat.h); Python reaches it through cffi's ABI mode (dlopen, with
    the declarations pre-parsed into the pure-Python module pyfeat/_ffi.py),
    and the C side of that is cffi's own _cffi_backend, which cffi's wheels
    provide for each Python. Nothing in this wheel depends on the
    interpreter's version or ABI, so one wheel serves every CPython that
    `requires-python` admits; only the platform (glibc, x86_64) is fixed.
    """

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    cmdclass={"build_py": BuildPyWithGo, "bdist_wheel": WheelForEveryPython3},
    distclass=BinaryDistribution,
)
