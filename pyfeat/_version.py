# The one place the version is written: setuptools reads it for the package
# metadata (pyproject.toml, [tool.setuptools.dynamic]) and pyfeat exports it
# as pyfeat.__version__, so a source tree and an installed wheel agree.
__version__ = "0.1.0"
