"""Build hook: the Go shared library is built by the Makefile (`make lib`),
the one place that knows how; setup.py only calls it and ships the result."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


class BuildPyWithGo(build_py):
    def run(self):
        subprocess.run(["make", "lib", f"BUILD_PY={sys.executable}"], cwd=HERE, check=True)
        super().run()


class BinaryDistribution(Distribution):
    """The wheel carries a native library: it is platform-specific."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithGo}, distclass=BinaryDistribution)
