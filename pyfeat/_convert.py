"""Model files: what pyfeat agrees to read, and the isolated .cbm conversion.

A model path must be a regular file of at most MAX_MODEL_BYTES: a FIFO
would block the reader forever and a symlink to ``/dev/zero`` would read
until memory runs out. Go's loader (catboost.ReadModelFile) applies the
same rules, so a file swapped between the two checks is refused too.

CatBoost's reader crashes (SIGSEGV) on some damaged ``.cbm`` files, so it
never runs in the serving process: a converter process (pyfeat/_converter.py,
started on first use with subprocess, never fork, and restarted if it dies)
imports ``catboost`` once and forks a child per conversion, so a crash or a
hang costs that child only. The serving process reads only the JSON the
child wrote, through the Go loader's bounds checks. The converter holds
~130 MB (catboost imported) while in use; it exits after
``$PYFEAT_CONVERTER_IDLE`` seconds (300) without a request, and is started
again when needed (a second or two: the import). ``shutdown()`` stops it
at once; a service that loads only .json exports never starts it.
``PYFEAT_CONVERTER_PYTHON`` names the Python to run it with when
``sys.executable`` is not one (an embedding server).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from .errors import ModelError

__all__ = ["MAX_MODEL_BYTES", "CONVERT_TIMEOUT", "check_model_file", "read_model_file", "convert"]

#: The largest model file pyfeat reads (catboost.MaxModelBytes in Go).
MAX_MODEL_BYTES = 1 << 30
#: Seconds a conversion may take before its process is killed.
CONVERT_TIMEOUT = 120.0
# Starting the converter imports catboost (one to two seconds, more on a
# busy machine).
_START_TIMEOUT = 120.0


def _idle() -> float:
    """Seconds without a request after which the converter exits."""
    try:
        return max(float(os.environ.get("PYFEAT_CONVERTER_IDLE", "300")), 1.0)
    except ValueError:
        return 300.0

_CONVERTER = Path(__file__).resolve().parent / "_converter.py"


def _check_stat(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO" if stat.S_ISFIFO(st.st_mode)
            else "a directory" if stat.S_ISDIR(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise ModelError(f"{path}: is {kind}, not a regular file: a model must be a plain file")
    if st.st_size > MAX_MODEL_BYTES:
        raise ModelError(
            f"{path}: {st.st_size} bytes, more than the {MAX_MODEL_BYTES} a model file may have "
            "(pyfeat._convert.MAX_MODEL_BYTES)"
        )


def check_model_file(path: Path) -> None:
    """Refuse, without opening it, a path that is not a regular file or is
    too large (symlinks are followed: a link to a device is a device)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read it: {e}") from e
    _check_stat(path, st)


def read_model_file(path: Path) -> bytes:
    """The whole file, read with the checks of check_model_file made again
    on the open file (O_NONBLOCK: a FIFO swapped in meanwhile opens at once
    and is refused) and the read bounded whatever the size said."""
    check_model_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ModelError(f"{path}: cannot open it: {e}") from e
    try:
        _check_stat(path, os.fstat(fd))
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, MAX_MODEL_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_MODEL_BYTES:
                raise ModelError(f"{path}: more than the {MAX_MODEL_BYTES} bytes a model file may have")
        return b"".join(chunks)
    except OSError as e:
        raise ModelError(f"{path}: cannot read it: {e}") from e
    finally:
        os.close(fd)


class _Converter:
    """The converter process; one conversion at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: IO[bytes] | None = None
        self._pid = 0
        self._used = self._idle_s = 0.0

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        answers, self._answers = self._answers, None
        if proc is not None:
            try:
                proc.kill()
            except OSError:
                pass
            proc.wait()
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        if answers is not None:
            answers.close()

    def _start(self) -> None:
        idle = _idle()
        r, w = os.pipe()
        env = dict(os.environ)
        # Few threads in the process that forks the conversion children.
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        # Run with -c, not as a script: a script's directory (pyfeat/) would
        # lead sys.path and its modules (errors, train, ...) could shadow
        # the converter's imports; -c puts the current directory there
        # instead, which is dropped.
        code = (
            "import runpy, sys; sys.path.pop(0); "
            "runpy.run_path(sys.argv.pop(1), run_name='__main__')"
        )
        try:
            proc = subprocess.Popen(
                [os.environ.get("PYFEAT_CONVERTER_PYTHON") or sys.executable, "-c", code, str(_CONVERTER), str(w),
                 str(idle)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(w,), close_fds=True, env=env,
            )
        except OSError as e:
            os.close(r)
            raise ModelError(f"cannot start the model converter process: {e}") from e
        finally:
            os.close(w)
        self._proc, self._answers, self._pid = proc, os.fdopen(r, "rb"), os.getpid()
        self._used, self._idle_s = time.monotonic(), idle
        hello = self._answer(_START_TIMEOUT)
        if not hello.get("ready"):
            self._stop()
            raise ModelError(f"the model converter process did not start: {hello.get('error')}")

    def _answer(self, timeout: float) -> dict[str, Any]:
        assert self._answers is not None
        fd = self._answers.fileno()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self._stop()
                return {"error": f"the converter did not answer within {timeout:.0f} s"}
            chunk = os.read(fd, 65536)
            if not chunk:
                self._stop()
                return {"error": "the converter process died"}
            line += chunk
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._lock:
            if self._proc is not None and self._pid == os.getpid() and time.monotonic() - self._used > 0.8 * self._idle_s:
                # It exits once idle for self._idle_s seconds (giving back its
                # memory): never send it a request it may not read.
                self._stop()
            if self._proc is not None and (self._pid != os.getpid() or self._proc.poll() is not None):
                # A forked copy of this object does not own the process; a
                # dead converter is replaced.
                if self._pid == os.getpid():
                    self._stop()
                self._proc = self._answers = None
            if self._proc is None:
                self._start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps(request).encode() + b"\n")
                self._proc.stdin.flush()
            except OSError:
                self._stop()
                return {"ok": False, "error": "the converter process died"}
            # The converter enforces timeout on its child; the margin covers
            # the converter itself being stuck.
            answer = self._answer(timeout + 10)
            self._used = time.monotonic()
            return answer

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._stop()


_converter = _Converter()
atexit.register(_converter.close)


def convert(src: Path, dst: Path | None, fmt_in: str, fmt_out: str | None, *, name: Path,
            timeout: float = CONVERT_TIMEOUT) -> None:
    """Convert src (fmt_in) to dst (fmt_out) in the converter process, or with
    dst None only check that CatBoost reads src. name is the user's path, for
    messages. Raises ModelError, whatever happens to the converter."""
    request = {"src": str(src), "dst": None if dst is None else str(dst), "fmt_in": fmt_in,
               "fmt_out": fmt_out, "timeout": timeout}
    answer = _converter.run(request, timeout)
    if answer.get("missing") == "catboost":
        raise ModelError(
            f"{name}: converting the model needs the `catboost` package ({answer.get('error')}): "
            "pip install catboost, or export the model with save_model(path, format='json')"
        )
    if not answer.get("ok"):
        action = f"read it as a {fmt_in} model" if dst is None else f"convert it from {fmt_in} to {fmt_out}"
        raise ModelError(f"{name}: catboost cannot {action}: {answer.get('error')}")


def check_capi(src: Path, lib: str, *, name: Path, timeout: float = CONVERT_TIMEOUT) -> None:
    """Check in the converter process that CatBoost's C library at lib loads
    src (a .cbm) without crashing or failing, before the capi backend loads
    the same file in this process. name is the user's path, for messages."""
    answer = _converter.run({"src": str(src), "capi_lib": lib, "timeout": timeout}, timeout)
    if not answer.get("ok"):
        raise ModelError(f"{name}: CatBoost's library ({lib}) cannot load it: {answer.get('error')}")


def shutdown() -> None:
    """Stop the converter process (it is restarted on the next conversion)."""
    _converter.close()
