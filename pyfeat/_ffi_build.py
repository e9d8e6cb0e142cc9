"""Generates pyfeat/_ffi.py, cffi's out-of-line ABI module for pyfeat.h.

Run by `make lib`, next to the Go build. The generated module holds the
header's declarations pre-parsed, so importing pyfeat needs no C parser
(pycparser costs ~2 MB of RSS and tens of milliseconds per process).

    python pyfeat/_ffi_build.py [HEADER] [OUTPUT]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


_CONSTANT = re.compile(r"#define\s+PF_\w+\s+-?\d+\b")


def declarations(header: str) -> str:
    """The header as cffi takes it: the declarations and the integer
    constants (status codes, ABI version), without the other preprocessor
    lines (include guard, #include)."""
    return "\n".join(
        line for line in header.splitlines() if not line.lstrip().startswith("#") or _CONSTANT.match(line.lstrip())
    )


def main(argv: list[str]) -> None:
    header = Path(argv[0]) if argv else HERE.parent / "cabi" / "pyfeat.h"
    out = Path(argv[1]) if len(argv) > 1 else HERE / "_ffi.py"
    ffi = FFI()
    ffi.cdef(declarations(header.read_text(encoding="utf-8")))
    ffi.set_source("pyfeat._ffi", None)
    tmp = out.with_suffix(".tmp")
    ffi.emit_python_code(str(tmp))
    tmp.replace(out)


if __name__ == "__main__":
    main(sys.argv[1:])
