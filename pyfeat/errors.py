"""Exceptions raised by pyfeat.

Every problem with the caller's input is an :class:`InputError` (a
``ValueError``); a value of the wrong type is an :class:`InputTypeError`,
which is also a ``TypeError``. Both carry the item ``position`` (``None``
for the user context or the request as a whole) and the offending ``key``.
"""

from __future__ import annotations

__all__ = [
    "PyfeatError",
    "InputError",
    "InputTypeError",
    "ModelError",
    "ForkError",
    "InternalError",
]


class PyfeatError(Exception):
    """Base class of every exception pyfeat raises on purpose."""


class InputError(PyfeatError, ValueError):
    """Bad input: malformed MessagePack, a missing key, a value out of range.

    Attributes:
        position: index of the offending item in ``items``, or ``None`` when
            the problem is in the user context or the request's arguments.
        key: the offending key (``"price"``, ``"views[3][4]"``,
            ``"candidates.source"``), or ``""`` for the record as a whole.
    """

    def __init__(self, message: str, position: int | None = None, key: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.key = key


class InputTypeError(InputError, TypeError):
    """A value of the wrong type (also a ``TypeError``)."""


class ModelError(PyfeatError, ValueError):
    """A model that cannot be loaded or does not fit pyfeat's features."""


class ForkError(PyfeatError, RuntimeError):
    """pyfeat was used in a child process forked after its library loaded.

    The Go runtime does not survive ``fork()``: its threads are not copied
    into the child, so the first call would hang. Start worker processes
    with the "spawn" start method instead.
    """


class InternalError(PyfeatError, RuntimeError):
    """A bug in pyfeat (a recovered Go panic); please report it."""
