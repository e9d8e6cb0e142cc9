"""pyfeat: feature preparation and CatBoost scoring for Python ranking
services, in one Go shared library.

Hand over the user context and the raw item records exactly as the stores
returned them (MessagePack bytes, or dicts); get back the feature matrix.
Decoding and features run in Go, on all cores, with the GIL released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._cache import CachedItems, ItemCache
from ._convert import MAX_MODEL_BYTES
from ._engine import (
    CAT_MISSING,
    FeatureEngine,
    FeatureInfo,
    Features,
    categorical_feature_names,
    feature_catalogue,
    feature_names,
    spec_hash,
)
from ._model import SPEC_HASH_KEY, Model, Ranker, RankResult
from ._profile import profile
from ._version import __version__
from .errors import ForkError, InputError, InputTypeError, InternalError, ModelError, PyfeatError

if TYPE_CHECKING:
    from .requestlog import LoggedRequest, LogFormatError, RequestLog, RequestLogWarning, iter_requests

# The request log is imported on first use: a serving process that does not
# log requests need not hold its code (half a megabyte of RSS).
_REQUESTLOG_NAMES = frozenset({"LoggedRequest", "LogFormatError", "RequestLog", "RequestLogWarning", "iter_requests"})


def __getattr__(name: str) -> Any:
    if name in _REQUESTLOG_NAMES:
        from . import requestlog

        value = getattr(requestlog, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "FeatureEngine",
    "Model",
    "Ranker",
    "RankResult",
    "ItemCache",
    "CachedItems",
    "profile",
    "SPEC_HASH_KEY",
    "MAX_MODEL_BYTES",
    "RequestLog",
    "iter_requests",
    "LoggedRequest",
    "LogFormatError",
    "RequestLogWarning",
    "FeatureInfo",
    "Features",
    "CAT_MISSING",
    "feature_catalogue",
    "feature_names",
    "categorical_feature_names",
    "spec_hash",
    "PyfeatError",
    "InputError",
    "InputTypeError",
    "ModelError",
    "ForkError",
    "InternalError",
    "__version__",
]
