"""The model converter process (run as a script by pyfeat._convert).

CatBoost's model reader can crash on a damaged ``.cbm`` (SIGSEGV), so it
never runs in the serving process. This process imports ``catboost`` once,
then forks one short-lived child per request: the child reads and writes
the model and exits; a crash or a hang kills only that child, and the next
request forks a fresh one without paying the import again. Forking is safe
here because the process holds nothing but the imported modules (no Go
runtime, no model, no busy threads).

The capi backend loads a ``.cbm`` with CatBoost's C library
(``libcatboostmodel.so``) in the serving process; a request with
``capi_lib`` has a child load the same file with that library first
(through ctypes: it needs no ``catboost`` package), so that a file that
crashes the library is refused without harm.

Protocol: one JSON object per line on stdin, ``{"src", "dst", "fmt_in",
"fmt_out", "timeout"}`` (``dst`` and ``fmt_out`` null: only check that
CatBoost reads it; ``capi_lib`` set: only check that that library reads
it), answered by one line ``{"ok": true}`` or ``{"ok": false, "error":
"..."}`` (with ``"missing": "catboost"`` when the package is not
installed) on the file descriptor given as argv[1]. EOF on stdin ends the
process, and so do argv[2] seconds without a request. Only the standard
library is imported before catboost.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The converter is the serving process's helper: it must not outlive it.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: EOF on stdin still ends it
        pass


def _convert(req: dict, out_fd: int) -> None:
    """In the forked child: do the conversion, write the answer, never return."""
    code = 1
    try:
        size = os.path.getsize(req["src"])
        # A damaged size field can make the reader allocate without bound:
        # cap the address space so that it fails with an error instead of
        # taking the machine's memory.
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _vm_size() + max(4 << 30, 64 * size)
        if hard == resource.RLIM_INFINITY or hard > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        if req.get("capi_lib"):
            _capi_load(req["capi_lib"], req["src"])
        else:
            from catboost import CatBoost

            model = CatBoost()
            model.load_model(req["src"], format=req["fmt_in"])
            if req.get("dst"):
                model.save_model(req["dst"], format=req["fmt_out"])
        answer: dict[str, object] = {"ok": True}
        code = 0
    except BaseException as e:  # noqa: BLE001 - every failure is an answer
        answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    try:
        os.write(out_fd, json.dumps(answer).encode() + b"\n")
    finally:
        os._exit(code)


def _capi_load(lib_path: str, src: str) -> None:
    """Load src with CatBoost's C library, as the capi backend will."""
    lib = ctypes.CDLL(lib_path)
    lib.ModelCalcerCreate.restype = ctypes.c_void_p
    lib.LoadFullModelFromFile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.LoadFullModelFromFile.restype = ctypes.c_bool
    lib.GetErrorString.restype = ctypes.c_char_p
    handle = lib.ModelCalcerCreate()
    if not handle:
        raise RuntimeError("ModelCalcerCreate failed")
    if not lib.LoadFullModelFromFile(handle, os.fsencode(src)):
        raise RuntimeError((lib.GetErrorString() or b"").decode(errors="replace"))
    # The child exits next: the model is never freed, nor need it be.


def _vm_size() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _run_one(req: dict) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _die_with_parent()
        _convert(req, w)
    os.close(w)
    deadline = time.monotonic() + float(req.get("timeout", 120))
    data = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"ok": False, "error": f"catboost did not finish reading it within {req.get('timeout')} s"}
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                data += chunk
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return {"ok": False, "error": f"catboost crashed reading it ({signal.Signals(sig).name})"}
    try:
        return json.loads(data)
    except ValueError:
        return {"ok": False, "error": f"catboost exited with status {os.WEXITSTATUS(status)} without an answer"}


def main() -> None:
    # No parent-death signal here: it fires when the *thread* that started
    # the process exits, and reload() may run on a short-lived thread. EOF
    # on stdin (the serving process gone) ends the loop below instead.
    out_fd = int(sys.argv[1])
    # CatBoost's C++ code may print to stdout or stderr: neither is the
    # answer channel, so nothing it prints can corrupt an answer.
    # Without the catboost package the converter still checks files for the
    # capi backend; conversions are answered with what is missing.
    missing = None
    try:
        import catboost  # noqa: F401 - imported once, used by the forked children
    except BaseException as e:  # noqa: BLE001
        missing = f"{type(e).__name__}: {e}"
    os.write(out_fd, b'{"ready": true}\n')
    # Idle for that long, the process exits and gives its memory back
    # (catboost imported: ~130 MB); the serving process starts a new one
    # when it next needs one, and never sends to one this close to exiting.
    idle = float(sys.argv[2])
    buf = b""
    while True:
        if b"\n" not in buf:
            if not select.select([0], [], [], idle)[0]:
                return
            chunk = os.read(0, 65536)
            if not chunk:
                return
            buf += chunk
            continue
        line, buf = buf.split(b"\n", 1)
        try:
            req = json.loads(line)
            if missing is not None and not req.get("capi_lib"):
                answer = {"ok": False, "missing": "catboost", "error": missing}
            else:
                answer = _run_one(req)
        except Exception as e:  # noqa: BLE001 - a bad request is an answer, not an exit
            answer = {"ok": False, "error": f"converter: {type(e).__name__}: {e}"}
        os.write(out_fd, json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    main()
