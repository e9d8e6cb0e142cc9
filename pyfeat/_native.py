"""Private cffi binding of libgofeatures.so.

The library is loaded on first use, not at import, so that a process that
imports pyfeat and then forks (before any call) is still safe.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, NoReturn

from cffi import FFI

from .errors import ForkError, InputError, InputTypeError, InternalError, ModelError, PyfeatError

ABI_VERSION = 2

_HERE = Path(__file__).resolve().parent
_HEADER = _HERE / "_lib" / "pyfeat.h"
_LIBRARY = _HERE / "_lib" / "libgofeatures.so"

PF_OK = 0
PF_INPUT_ERROR = 1
PF_TYPE_ERROR = 2
PF_ARGUMENT_ERROR = 3
PF_MODEL_ERROR = 4
PF_INTERNAL_ERROR = 5
POSITION_USER = -1
POSITION_NONE = -2


def _cdef(header: str) -> str:
    # cffi's parser takes declarations only: drop preprocessor lines.
    return "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))


ffi = FFI()
ffi.cdef(_cdef(_HEADER.read_text(encoding="utf-8")))

_lock = threading.Lock()
_lib: Any = None
_loaded_in_pid: int | None = None


def _after_fork_in_child() -> None:
    global _lib, _lock
    _lock = threading.Lock()  # another thread may have held it at fork time
    if _lib is not None:
        # Drop our reference only; the mapping stays (never dlclose a Go
        # runtime). Every later call raises ForkError instead of hanging.
        _lib = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def library_path() -> Path:
    """The shared library pyfeat loads (``PYFEAT_LIBRARY`` overrides it)."""
    override = os.environ.get("PYFEAT_LIBRARY")
    return Path(override) if override else _LIBRARY


def lib() -> Any:
    """The loaded library; loads it on first use.

    Raises ForkError in a child forked after the library was loaded.
    """
    if _lib is not None:
        return _lib
    return _load()


def _load() -> Any:
    global _lib, _loaded_in_pid
    with _lock:
        if _lib is not None:
            return _lib
        if _loaded_in_pid is not None and _loaded_in_pid != os.getpid():
            raise ForkError(
                "pyfeat cannot be used in a process forked after its Go library was loaded "
                f"(loaded in pid {_loaded_in_pid}, this is pid {os.getpid()}): the Go runtime does "
                "not survive fork(). Use multiprocessing's 'spawn' start method "
                "(multiprocessing.get_context('spawn')), or load pyfeat only in the workers."
            )
        path = library_path()
        if not path.exists():
            raise ImportError(
                f"pyfeat's native library is missing at {path}; build it with `make lib` "
                "(or reinstall pyfeat)"
            )
        handle = ffi.dlopen(str(path))
        version = handle.pf_abi_version()
        if version != ABI_VERSION:
            raise ImportError(
                f"{path} has C ABI version {version}, this pyfeat needs {ABI_VERSION}: "
                "the library is stale, rebuild it with `make lib`"
            )
        _loaded_in_pid = os.getpid()
        _lib = handle
        return handle


def new_status() -> Any:
    return ffi.new("pf_status*")


def raise_status(st: Any) -> NoReturn:
    """Raise the exception that a non-OK pf_status describes."""
    code = st.code
    message = ffi.string(st.message).decode("utf-8", "replace")
    key = ffi.string(st.key).decode("utf-8", "replace")
    position = st.position if st.position >= 0 else None
    if code == PF_INPUT_ERROR:
        raise InputError(message, position, key)
    if code == PF_TYPE_ERROR:
        raise InputTypeError(message, position, key)
    if code == PF_ARGUMENT_ERROR:
        raise ValueError(message)
    if code == PF_MODEL_ERROR:
        raise ModelError(message)
    if code == PF_INTERNAL_ERROR:
        raise InternalError(message)
    raise PyfeatError(f"unknown status {code}: {message}")


def check(code: int, st: Any) -> None:
    if code != PF_OK:
        raise_status(st)


def read_text(fn: Any) -> str:
    """Call a pf_* text getter that reports the size it needs."""
    needed = ffi.new("int64_t*")
    st = new_status()
    fn(ffi.NULL, 0, needed, st)
    buf = ffi.new("char[]", int(needed[0]))
    check(fn(buf, len(buf), needed, st), st)
    return ffi.string(buf).decode("utf-8")


def is_loaded_here() -> bool:
    return _lib is not None


__all__ = ["ffi", "lib", "new_status", "check", "raise_status", "read_text", "library_path"]
