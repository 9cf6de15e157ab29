"""The packaged IEEE 1547-2018 table against the published defaults and ranges, and the simulations reading it.

Reference facts (typed here by hand, not read from the package): IEEE Std 1547-2018 default settings and ranges of
allowable settings as encoded by pyUL1741SB (pyUL1741SB/eut.py) and NREL PyDSS
(PyDSS/pyControllers/Controllers/PvFrequencyRideThru.py), which cite the standard's tables; the Category B / III
defaults also as in EPRI OpenDER's example settings file.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources

import pytest

from v2gtwin.errors import DataError
from v2gtwin.ieee1547 import parse_ieee1547, read_ieee1547

# (setting, category) -> (default, min, max). Frequency trip: same for all categories.
FREQ_TRIP = {
    "of2_hz": (62.0, 61.8, 66.0),
    "of2_s": (0.16, 0.16, 1000.0),
    "of1_hz": (61.2, 61.0, 66.0),
    "of1_s": (300.0, 180.0, 1000.0),
    "uf1_hz": (58.5, 50.0, 59.0),
    "uf1_s": (300.0, 180.0, 1000.0),
    "uf2_hz": (56.5, 50.0, 57.0),
    "uf2_s": (0.16, 0.16, 1000.0),
}
# Voltage trip defaults (pu / clearing time s) per category.
VOLT_TRIP_DEFAULTS = {
    "I": {
        "ov2_pu": 1.20,
        "ov2_s": 0.16,
        "ov1_pu": 1.10,
        "ov1_s": 2.0,
        "uv1_pu": 0.70,
        "uv1_s": 2.0,
        "uv2_pu": 0.45,
        "uv2_s": 0.16,
    },
    "II": {
        "ov2_pu": 1.20,
        "ov2_s": 0.16,
        "ov1_pu": 1.10,
        "ov1_s": 2.0,
        "uv1_pu": 0.70,
        "uv1_s": 10.0,
        "uv2_pu": 0.45,
        "uv2_s": 0.16,
    },
    "III": {
        "ov2_pu": 1.20,
        "ov2_s": 0.16,
        "ov1_pu": 1.10,
        "ov1_s": 13.0,
        "uv1_pu": 0.88,
        "uv1_s": 21.0,
        "uv2_pu": 0.50,
        "uv2_s": 2.0,
    },
}
VOLT_VAR_DEFAULTS = {
    "A": {
        "v1_pu": 0.90,
        "q1_pct": 25.0,
        "v2_pu": 1.00,
        "q2_pct": 0.0,
        "v3_pu": 1.00,
        "q3_pct": 0.0,
        "v4_pu": 1.10,
        "q4_pct": -25.0,
    },
    "B": {
        "v1_pu": 0.92,
        "q1_pct": 44.0,
        "v2_pu": 0.98,
        "q2_pct": 0.0,
        "v3_pu": 1.02,
        "q3_pct": 0.0,
        "v4_pu": 1.08,
        "q4_pct": -44.0,
        "t_response_s": 5.0,
    },
}
DROOP_DEFAULTS = {"db_of_hz": 0.036, "db_uf_hz": 0.036, "k_of_pu": 0.05, "k_uf_pu": 0.05, "t_response_s": 5.0}


@pytest.mark.parametrize("cat", ["I", "II", "III"])
@pytest.mark.parametrize("name", list(FREQ_TRIP))
def test_frequency_trip_defaults_and_ranges(name: str, cat: str) -> None:
    rng = read_ieee1547().lookup("trip", name, cat)
    assert rng is not None
    default, lo, hi = FREQ_TRIP[name]
    assert (rng.default.value, rng.min.value, rng.max.value) == pytest.approx((default, lo, hi))
    assert rng.clause == "6.5.1"


@pytest.mark.parametrize("cat", ["I", "II", "III"])
def test_voltage_trip_defaults(cat: str) -> None:
    assert read_ieee1547().defaults("trip", cat) == pytest.approx(
        {**VOLT_TRIP_DEFAULTS[cat], **{k: v[0] for k, v in FREQ_TRIP.items()}}
    )


@pytest.mark.parametrize("cat", ["A", "B"])
def test_volt_var_defaults(cat: str) -> None:
    got = read_ieee1547().defaults("volt_var", cat)
    for k, v in VOLT_VAR_DEFAULTS[cat].items():
        assert got[k] == pytest.approx(v), k


@pytest.mark.parametrize("cat", ["I", "II", "III"])
def test_droop_defaults(cat: str) -> None:
    assert read_ieee1547().defaults("freq_droop", cat) == pytest.approx(DROOP_DEFAULTS)


def test_single_source_values_are_marked_not_corroborated() -> None:
    t = read_ieee1547()
    # Category III UV1 clearing time lower end: pyUL1741SB only (PyDSS disagrees).
    uv1 = t.lookup("trip", "uv1_s", "III")
    assert uv1 is not None and not uv1.min.corroborated and uv1.max.corroborated
    # Droop ranges' upper ends: one source (IEEE 1547.1-2020 Table 19 as quoted).
    assert not t.lookup("freq_droop", "db_of_hz", "II").max.corroborated  # type: ignore[union-attr]
    # Frequency-trip table number: one source.
    assert not t.lookup("trip", "uf1_hz", "I").table_corroborated  # type: ignore[union-attr]
    # Every corroborated value has at least two sources; every not corroborated one at most one.
    for s in t.settings:
        for b in (s.default, s.min, s.max):
            assert (len(b.sources) >= 2) == b.corroborated, (s.name, s.categories)
    assert t.legacy.uf_hz == 59.3 and t.legacy.uf_s == 0.16 and not t.legacy.corroborated


def test_simulations_read_the_same_table() -> None:
    # The cascade's groups and the EVs' droop defaults are the table's (one source of truth), and they are the
    # published values typed above.
    from v2gtwin.grid.cascade import IEEE1547_UF1, IEEE1547_UF2, LEGACY_UF
    from v2gtwin.grid.voltvar import VOLTVAR_CURVES
    from v2gtwin.scenario import FrequencySpec

    assert (FREQ_TRIP["uf1_hz"][0], FREQ_TRIP["uf1_s"][0]) == IEEE1547_UF1
    assert (FREQ_TRIP["uf2_hz"][0], FREQ_TRIP["uf2_s"][0]) == IEEE1547_UF2
    assert LEGACY_UF == (59.3, 0.16)
    spec = FrequencySpec()
    assert (spec.ev_deadband_hz, spec.ev_droop_pu) == (DROOP_DEFAULTS["db_uf_hz"], DROOP_DEFAULTS["k_uf_pu"])
    assert VOLTVAR_CURVES["B"].v_pu == (0.92, 0.98, 1.02, 1.08)
    assert VOLTVAR_CURVES["B"].q_pu == pytest.approx((0.44, 0.0, 0.0, -0.44))


def _raw() -> dict:  # type: ignore[type-arg]
    text = resources.files("v2gtwin").joinpath("data/ieee1547_2018.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["setting"][0].__setitem__("function", "watt_var"), "function must be one of"),
        (lambda d: d["setting"][0].__setitem__("categories", ["IV"]), "categories must be among"),
        (lambda d: d["setting"][0]["default"].__setitem__("sources", ["nobody"]), "unknown source"),
        (lambda d: d["setting"].append(copy.deepcopy(d["setting"][0])), "given twice"),
    ],
)
def test_malformed_table_is_a_data_error(change, words: str) -> None:  # type: ignore[no-untyped-def]
    d = _raw()
    change(d)
    with pytest.raises(DataError, match=words):
        parse_ieee1547(d)


# Every (function, setting, category) of the data file: (default, min, max), typed by hand from the encodings the
# data file names: voltage trips from pyUL1741SB's VoltShallTripTable per category and PyDSS's range checks
# (IEEE 1547-2018 Tables 11-13), with IEEE 1547.1-2020 Table 15's widest settings for the upper ends; frequency trips
# (one table for all categories) from pyUL1741SB's FreqShallTripTable and PyDSS; droop from IEEE 1547.1-2020
# Table 19 (least / most aggressive) as quoted by the SunSpec/Sandia SVP script; volt-var from pyUL1741SB's Table 8
# curves and the gridhub notebook (VRef 0.95-1.05; V2 = V3 = VRef for Category A; B's V2 >= VRef - 0.03 and
# V3 <= VRef + 0.03). A relative bound is written "ref+offset" (v2_pu-0.02 means V2 - 0.02 pu).
_F = {
    "of2_hz": (62.0, 61.8, 66.0),
    "of2_s": (0.16, 0.16, 1000.0),
    "of1_hz": (61.2, 61.0, 66.0),
    "of1_s": (300.0, 180.0, 1000.0),
    "uf1_hz": (58.5, 50.0, 59.0),
    "uf1_s": (300.0, 180.0, 1000.0),
    "uf2_hz": (56.5, 50.0, 57.0),
    "uf2_s": (0.16, 0.16, 1000.0),
}
_V_ALL = {"ov2_pu": (1.20, 1.20, 1.20), "ov2_s": (0.16, 0.16, 0.16), "ov1_pu": (1.10, 1.10, 1.20)}
FULL_TABLE: dict[tuple[str, str], dict[str, tuple[float | str, float | str, float | str]]] = {
    ("trip", "I"): {
        **_F,
        **_V_ALL,
        "ov1_s": (2.0, 1.0, 13.0),
        "uv1_pu": (0.70, 0.0, 0.88),
        "uv1_s": (2.0, 2.0, 21.0),
        "uv2_pu": (0.45, 0.0, 0.50),
        "uv2_s": (0.16, 0.16, 2.0),
    },
    ("trip", "II"): {
        **_F,
        **_V_ALL,
        "ov1_s": (2.0, 1.0, 13.0),
        "uv1_pu": (0.70, 0.0, 0.88),
        "uv1_s": (10.0, 2.0, 21.0),
        "uv2_pu": (0.45, 0.0, 0.50),
        "uv2_s": (0.16, 0.16, 2.0),
    },
    ("trip", "III"): {
        **_F,
        **_V_ALL,
        "ov1_s": (13.0, 1.0, 13.0),
        "uv1_pu": (0.88, 0.0, 0.88),
        "uv1_s": (21.0, 21.0, 50.0),
        "uv2_pu": (0.50, 0.0, 0.50),
        "uv2_s": (2.0, 2.0, 21.0),
    },
    **{
        ("freq_droop", c): {
            "db_of_hz": (0.036, 0.017, 1.0),
            "db_uf_hz": (0.036, 0.017, 1.0),
            "k_of_pu": (0.05, k_min, 0.05),
            "k_uf_pu": (0.05, k_min, 0.05),
            "t_response_s": (5.0, t_min, 10.0),
        }
        for c, k_min, t_min in (("I", 0.03, 1.0), ("II", 0.03, 1.0), ("III", 0.02, 0.2))
    },
    ("volt_var", "A"): {
        "vref_pu": (1.0, 0.95, 1.05),
        "v1_pu": (0.90, "vref_pu-0.18", "v2_pu-0.02"),
        "v2_pu": (1.00, "vref_pu+0", "vref_pu+0"),
        "v3_pu": (1.00, "vref_pu+0", "vref_pu+0"),
        "v4_pu": (1.10, "v3_pu+0.02", "vref_pu+0.18"),
        "q1_pct": (25.0, 0.0, 44.0),
        "q2_pct": (0.0, -25.0, 44.0),
        "q3_pct": (0.0, -25.0, 44.0),
        "q4_pct": (-25.0, -25.0, 0.0),
        "t_response_s": (10.0, 1.0, 90.0),
    },
    ("volt_var", "B"): {
        "vref_pu": (1.0, 0.95, 1.05),
        "v1_pu": (0.92, "vref_pu-0.18", "v2_pu-0.02"),
        "v2_pu": (0.98, "vref_pu-0.03", "vref_pu+0"),
        "v3_pu": (1.02, "vref_pu+0", "vref_pu+0.03"),
        "v4_pu": (1.08, "v3_pu+0.02", "vref_pu+0.18"),
        "q1_pct": (44.0, 0.0, 44.0),
        "q2_pct": (0.0, -44.0, 44.0),
        "q3_pct": (0.0, -44.0, 44.0),
        "q4_pct": (-44.0, -44.0, 0.0),
        "t_response_s": (5.0, 1.0, 90.0),
    },
}


def _as_typed(b) -> float | str:  # type: ignore[no-untyped-def]
    if b.value is not None:
        return b.value
    return f"{b.ref}{'+' if b.offset >= 0 else '-'}{abs(b.offset):g}"


def test_the_whole_data_file_against_the_typed_table() -> None:
    t = read_ieee1547()
    got = {(s.function, c): {} for s in t.settings for c in s.categories}  # every (function, category) the file has
    for s in t.settings:
        for c in s.categories:
            got[(s.function, c)][s.name] = (_as_typed(s.default), _as_typed(s.min), _as_typed(s.max))
    assert set(got) == set(FULL_TABLE)
    for key, expected in FULL_TABLE.items():
        assert set(got[key]) == set(expected), key
        for name, (d, lo, hi) in expected.items():
            g = got[key][name]
            for want, have in zip((d, lo, hi), g, strict=True):
                if isinstance(want, str):
                    assert have == want, (key, name)
                else:
                    assert have == pytest.approx(want, abs=1e-12), (key, name, g)
