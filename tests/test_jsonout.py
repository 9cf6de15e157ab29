"""The one JSON serializer: strict JSON (never NaN/Infinity), missing values as null only where documented."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from v2gtwin.jsonout import MAY_BE_MISSING, NonFiniteOutputError, dumps_strict


def strict_loads(text: str) -> Any:
    """The standard library's parser, told to reject the non-standard constants NaN, Infinity, -Infinity."""

    def reject(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")])
def test_non_finite_value_under_an_ordinary_key_is_an_error_naming_it(bad: float) -> None:
    with pytest.raises(NonFiniteOutputError, match=r"fleet\.summary\.p_peak_kw"):
        dumps_strict({"fleet": {"summary": {"n_evs": 3, "p_peak_kw": bad}}})


def test_non_finite_value_inside_an_array_is_an_error_naming_its_index() -> None:
    with pytest.raises(NonFiniteOutputError, match=r"p_kw\[2\]"):
        dumps_strict({"p_kw": np.array([1.0, 2.0, np.nan])})


def test_documented_missing_values_become_null() -> None:
    assert "restore_s" in MAY_BE_MISSING
    text = dumps_strict({"agc": {"restore_s": math.nan, "restore_without_fleet_s": math.inf, "n": 1}})
    assert "NaN" not in text and "Infinity" not in text
    assert strict_loads(text) == {"agc": {"restore_s": None, "restore_without_fleet_s": None, "n": 1}}


def test_numpy_types_become_plain_json_and_integers_stay_integers() -> None:
    obj = {
        "n_evs": np.int64(7),
        "share": np.float32(0.25),
        "ok": np.bool_(True),
        "series": np.arange(3),
        "path": Path("a/b"),
        "pair": (1, 2.5),
    }
    text = dumps_strict(obj)
    # Hand-written expectation: what each value means as JSON.
    assert strict_loads(text) == {
        "n_evs": 7,
        "share": 0.25,
        "ok": True,
        "series": [0, 1, 2],
        "path": "a/b",
        "pair": [1, 2.5],
    }
    assert '"n_evs": 7,' in text  # an integer, not 7.0


def test_object_json_cannot_hold_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="set"):
        dumps_strict({"x": {1, 2}})


def test_a_feeder_without_a_hosting_limit_writes_null_not_infinity() -> None:
    # With no EV charging the feeder sets no limit: run_fleet_hosting returns scale = inf. results.json must
    # carry null there (documented in MAY_BE_MISSING), not Infinity and not an error.
    from v2gtwin.grid.feeder import ieee33
    from v2gtwin.grid.hosting import run_fleet_hosting

    feeder = ieee33()
    p = np.tile(feeder.p_load_kw, (3, 1))
    q = np.tile(feeder.q_load_kvar, (3, 1))
    r = run_fleet_hosting(feeder, p, q, np.zeros_like(p), v_min_pu=0.9)  # the base case holds 0.913 pu
    assert math.isinf(r.scale) and r.binding == "no EV charging"
    text = dumps_strict({"feeder": {"summary": {"fleet_hosting_scale": r.scale, "fleet_hosting_binding": r.binding}}})
    assert json.loads(text)["feeder"]["summary"]["fleet_hosting_scale"] is None
