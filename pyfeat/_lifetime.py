"""Process lifetime for long jobs (``pyfeat dataset``): workers that die with
their parent, SIGTERM handled like Ctrl-C, and temporary outputs that a
killed run leaves behind removed by the next run.

Temporary outputs: a run writes ``.OUT.<random>.tmp`` next to OUT and holds
an exclusive ``flock`` on it for as long as it runs. A run killed with
SIGKILL cannot remove its file, but the kernel drops its lock; the next run
writing the same OUT removes every ``.OUT.*.tmp`` whose lock it can take
(a file still locked belongs to a run in progress and is left alone).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised where Ctrl-C would raise KeyboardInterrupt, so
    that the same cleanup runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread (and so
    runs the cleanup a KeyboardInterrupt runs). Elsewhere than the main
    thread it does nothing: signals are only handled there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), and
    exit now if the parent is already gone. For worker processes, which
    otherwise outlive a parent killed with SIGTERM or SIGKILL.

    The signal is tied to the parent *thread* that started this process:
    start workers from a thread that outlives them.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    # The parent may have died before prctl: then this process was already
    # reparented and no signal will come.
    if os.getppid() != parent_pid:
        os._exit(1)


def create_locked_temp(out: Path) -> tuple[int, Path]:
    """A new temporary file for OUT, locked (see the module docstring).

    Returns the open, locked descriptor (keep it open until the file is
    published or removed) and the path. The file is created under another
    name and renamed once locked, so a concurrent cleanup never sees it
    unlocked.
    """
    fd, staging = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".new")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp = Path(staging[: -len(".new")] + ".tmp")
        os.rename(staging, tmp)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
    return fd, tmp


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove the temporary files of OUT left by runs that died; returns them."""
    prefix = f".{out.name}."
    removed: list[Path] = []
    try:
        names = os.listdir(out.parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        path = out.parent / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a run in progress holds it
            try:
                now = os.lstat(path)
            except FileNotFoundError:
                continue
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed
