"""A CPU profile of pyfeat's Go side, taken from Python."""

from __future__ import annotations

import os
from pathlib import Path

from . import _native

__all__ = ["profile"]


def profile(path: str | os.PathLike[str], seconds: float = 30.0) -> Path:
    """Record a CPU profile of the Go code running in this process (every
    pyfeat call, on every thread) for ``seconds``, and write it to ``path``
    in pprof format. Blocks meanwhile, with the GIL released: call it from
    a thread of a running service (``await asyncio.to_thread(pyfeat.profile,
    "rank.pprof", 30)``) and read it with ``go tool pprof``.

    Python is not disturbed: Go samples with SIGPROF, a signal Python does
    not use, only while the profile runs, and restores the previous handler
    afterwards; SIGINT and the other signals stay Python's, and py-spy,
    which reads the process from outside, can record at the same time. The
    profile samples every thread of the process: time on Python's threads
    shows as ``[libpython3.x.so]`` and ``[libc.so.6]`` (no Python function
    names: those are py-spy's side). Do not combine it with an in-process
    profiler that uses SIGPROF itself.

    Raises ValueError if a profile is already running in the process.
    """
    if isinstance(seconds, bool) or not (seconds > 0) or seconds > 86400:
        raise ValueError(f"seconds must be in (0, 86400], got {seconds!r}")
    out = Path(path)
    st = _native.new_status()
    code = _native.lib().pf_profile(os.fsencode(out), int(seconds * 1e9), st)
    _native.check(code, st)
    return out
