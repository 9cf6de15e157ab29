"""The one JSON serializer of v2gtwin: ``results.json`` and every ``--json`` output go through :func:`dumps_strict`.

Output is strict JSON (RFC 8259): ``NaN`` and ``Infinity`` never appear. A value that is not finite is either

- ``null``, when its key is one of :data:`MAY_BE_MISSING` (quantities whose documentation says they may be
  missing, e.g. the AGC restoration time of a run in which frequency never returns to its band), or
- an error (:class:`~v2gtwin.errors.V2GTwinError`) naming where in the output it sits, so that a value that
  should have been a number is never written as something else.

numpy scalars and arrays, tuples, paths and enums are converted on the way; integer-valued numpy types stay
integers.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from v2gtwin.errors import V2GTwinError

__all__ = ["MAY_BE_MISSING", "NonFiniteOutputError", "dumps_strict", "to_jsonable"]

#: Keys whose value may be missing; a value that is not finite under one of them is written as ``null``.
#: Each is documented where the quantity is (docs/ARCHITECTURE.md, "JSON output", lists them).
MAY_BE_MISSING: frozenset[str] = frozenset(
    {
        "restore_s",  # AGC restoration time: null when frequency does not return to its band within the run
        "restore_without_fleet_s",  # the same without the fleet
        "restore_without_delay_s",  # the same without the command path's delay (docs/cyber.md)
        "fleet_hosting_scale",  # null when no limit was found (no EV charging, or none up to the search's cap)
        "v_min_uncontrolled_pu",  # network feeder's lowest voltage: null at a step without power-flow solution
    }
)


class NonFiniteOutputError(V2GTwinError):
    """A value that is not finite (NaN or infinity) would have been written where a number is required."""


def _float(value: float, path: str, key: str | None) -> float | None:
    if math.isfinite(value):
        return value
    if key is not None and key in MAY_BE_MISSING:
        return None
    raise NonFiniteOutputError(
        f"output {path or '<root>'} is {value} (not a finite number); it is not one of the values that may be "
        "missing, so nothing was written"
    )


def to_jsonable(obj: Any, path: str = "", key: str | None = None) -> Any:
    """``obj`` as plain JSON types (dict, list, str, int, float, bool, None), every float finite.

    Parameters
    ----------
    obj : dicts, lists, tuples, numpy arrays and scalars, numbers, strings, paths, enums, None.
    path : where ``obj`` sits in the whole output (for error messages), e.g. ``"fleet.summary"``.
    key : the dict key ``obj`` is stored under (decides whether a non-finite value may become null).

    Raises
    ------
    NonFiniteOutputError
        A NaN or infinity under a key that is not in :data:`MAY_BE_MISSING`.
    TypeError
        An object of a type JSON cannot hold (a programming error).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj), path, key)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, path, key)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, f"{path}.{k}" if path else str(k), str(k)) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{path}[{i}]", key) for i, v in enumerate(obj)]
    raise TypeError(f"output {path or '<root>'}: {type(obj).__name__} is not JSON-serializable")


def dumps_strict(obj: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of ``obj`` (see :func:`to_jsonable`); never contains ``NaN`` or ``Infinity``."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
