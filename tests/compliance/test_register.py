"""The asset register: bad input gives one line naming the asset and the field; TOML and CSV parts load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.compliance.registers import base
from v2gtwin.compliance.audit import run_audit
from v2gtwin.compliance.register import load_register, parse_register, with_aggregation
from v2gtwin.errors import ScenarioError
from v2gtwin.jsonout import dumps_strict


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        node: Any = d
        *heads, last = path.split(".")
        for h in heads:
            node = node[int(h)] if h.isdigit() else node[h]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        # unknown category / class
        (_set("inverters.0.abnormal_category", "IV"), ["inverter 'INV-1'", "abnormal_category", "'IV'"]),
        (_set("inverters.0.normal_category", "C"), ["inverter 'INV-1'", "normal_category"]),
        (_set("meters.0.accuracy_class", "0.3"), ["meter 'M-1'", "accuracy_class", "'0.3'"]),
        (_set("aggregation.required_accuracy_class", "1.0"), ["required_accuracy_class"]),
        # settings in the wrong units
        (_set("inverters.0.trip.uf2_hz", 0.985), ["inverter 'INV-1'", "trip.uf2_hz", "per-unit"]),
        (_set("inverters.0.trip.ov1_pu", 240.0), ["inverter 'INV-1'", "trip.ov1_pu", "volts"]),
        (_set("inverters.0.volt_var.v1_pu", 220.0), ["inverter 'INV-1'", "volt_var.v1_pu", "volts"]),
        (_set("inverters.0.freq_droop.k_of_pu", 5.0), ["inverter 'INV-1'", "freq_droop.k_of_pu", "percent"]),
        (_set("inverters.0.freq_droop.db_of_hz", 59.9), ["inverter 'INV-1'", "freq_droop.db_of_hz"]),
        (_set("inverters.0.trip.of1_hz", 120.0), ["inverter 'INV-1'", "trip.of1_hz", "40 to 70"]),
        (_set("inverters.0.trip.uf1_s", -1.0), ["inverter 'INV-1'", "trip.uf1_s"]),
        # missing fields, unknown keys, broken references, a curve out of order
        (_set("inverters.0.rating_kw", _DELETE), ["inverter 'INV-1'", "rating_kw", "missing"]),
        (_set("meters.0.dedicated", _DELETE), ["meter 'M-1'", "dedicated", "missing"]),
        (_set("inverters.0.volt_var.v4_pu", _DELETE), ["inverter 'INV-1'", "volt_var.v4_pu", "missing"]),
        (_set("inverters.0.colour", "red"), ["inverter 'INV-1'", "unknown key 'colour'"]),
        (_set("meters.0.covers", ["INV-9"]), ["meter 'M-1'", "covers", "INV-9"]),
        (_set("inverters.0.site", "S9"), ["inverter 'INV-1'", "site", "S9"]),
        (_set("inverters.0.volt_var.v2_pu", 0.90), ["inverter 'INV-1'", "volt_var", "must not decrease"]),
        (_set("inverters.0.id", _DELETE), ["inverter #1", "id", "missing"]),
        (_set("retail_enrolments", [{"program": "X", "resources": ["nope"]}]), ["retail enrolment 'X'", "nope"]),
    ],
)
def test_bad_register_is_one_line_naming_asset_and_field(
    change: Callable[[dict[str, Any]], None], words: list[str]
) -> None:
    d = base()
    change(d)
    with pytest.raises(ScenarioError) as exc:
        parse_register(d, "reg.toml")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("reg.toml: ")
    for w in words:
        assert w in msg, (w, msg)


def test_a_class_written_as_a_number_is_read_as_the_class() -> None:
    d = base()
    d["meters"][0]["accuracy_class"] = 0.2
    assert parse_register(d).meters[0].accuracy_class == "0.2"


def test_duplicate_ids() -> None:
    d = base()
    d["inverters"].append(dict(d["inverters"][0]))
    with pytest.raises(ScenarioError, match="inverter 'INV-1': id used twice"):
        parse_register(d)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such register file"):
        load_register(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[aggregation\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_register(bad)


def test_csv_parts(tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text(
        "id,site,rating_kw,count,certifications,normal_category,abnormal_category,trip.uf1_hz,trip.uf1_s\n"
        "A,S1,7.4,3,UL 1741 SB;IEEE 1547.1-2020,B,III,58.5,300\n"
        "B,S1,11,1,,,,59.3,0.16\n"
    )
    (tmp_path / "met.csv").write_text(
        "id,site,accuracy_class,dedicated,directional,interval_min,revenue_grade,covers\nM,S1,0.2,true,true,5,true,A;B\n"
    )
    (tmp_path / "reg.toml").write_text(
        'inverters_csv = "inv.csv"\nmeters_csv = "met.csv"\n[aggregation]\nname = "csv"\n[[sites]]\nid = "S1"\n'
    )
    reg = load_register(tmp_path / "reg.toml")
    a, b = reg.inverters
    assert (a.count, a.certifications, a.trip.uf1_hz) == (3, ("UL 1741 SB", "IEEE 1547.1-2020"), 58.5)  # type: ignore[union-attr]
    assert b.certifications == () and b.abnormal_category is None and b.trip.uf1_s == 0.16  # type: ignore[union-attr]
    assert reg.meters[0].covers == ("A", "B") and reg.meters[0].accuracy_class == "0.2"
    (tmp_path / "inv.csv").write_text("id,site,rating_kw,trip.uf1_hz\nA,S1,7.4,58.5\nB,S1,7.4,0.975\n")
    # The error names the CSV file and its row (the header is row 1).
    with pytest.raises(
        ScenarioError, match=r"inverter 'B' \(.*inv\.csv row 3\): field trip\.uf1_hz: 0\.975 looks like per-unit"
    ):
        load_register(tmp_path / "reg.toml")


def test_csv_saved_by_excel_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_bytes("\ufeffid,site,rating_kw\nA,S1,7.4\n".encode())
    (tmp_path / "reg.toml").write_text('inverters_csv = "inv.csv"\n[[sites]]\nid = "S1"\n')
    assert load_register(tmp_path / "reg.toml").inverters[0].id == "A"


def test_a_misspelt_key_is_named_before_the_missing_field() -> None:
    d = base()
    d["inverters"][0]["ratting_kw"] = d["inverters"][0].pop("rating_kw")
    with pytest.raises(
        ScenarioError, match=r"inverter 'INV-1': field ratting_kw: unknown key 'ratting_kw' \(\+1 more\)"
    ):
        parse_register(d, "reg.toml")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda d: d["aggregation"].update(settlement_interval_min=float("nan")),
            "field aggregation.settlement_interval_min: must be a finite number in (0, 1440]; got nan",
        ),
        (
            lambda d: d["inverters"][0].update(rating_kw=float("nan")),
            "field rating_kw: must be a finite number in (0, 100000]; got nan",
        ),
        (
            lambda d: d.__setitem__("remediation_costs", {"replace_meter": float("inf")}),
            "field remediation_costs.replace_meter: must be a finite number in [0, 1e+09]; got inf",
        ),
    ],
)
def test_non_finite_numbers_name_the_range(change, words: str) -> None:  # type: ignore[no-untyped-def]
    d = base()
    change(d)
    with pytest.raises(ScenarioError) as info:
        parse_register(d, "reg.toml")
    assert words in str(info.value)


def test_with_aggregation_validates_overrides() -> None:
    reg = parse_register(base())
    assert with_aggregation(reg, settlement_interval_min=15).aggregation.settlement_interval_min == 15
    assert with_aggregation(reg) is reg
    with pytest.raises(ScenarioError, match=r"command line: field aggregation\.settlement_interval_min"):
        with_aggregation(reg, settlement_interval_min=0)


def _leaves(d: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(d, dict):
        return [p for k, v in d.items() for p in _leaves(v, (*path, k))]
    if isinstance(d, list):
        return [p for i, v in enumerate(d) for p in _leaves(v, (*path, i))]
    return [path]


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_junk_value_is_accepted_or_one_line(data: st.DataObject) -> None:
    # Property: whatever lands in any field, the parser returns a register or raises ScenarioError with one line
    # naming the source (never another exception, never a non-finite value accepted).
    d = base()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(d)))
        node: Any = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = data.draw(_JUNK)
    try:
        reg = parse_register(d, "fuzz.toml")
    except ScenarioError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml") and "\n" not in msg
        return
    json.dumps(reg.model_dump(mode="json"), allow_nan=False)  # finite, strict JSON
    # ... and the audit of what was accepted runs and serialises strictly too.
    dumps_strict(run_audit(reg).to_dict())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        # 7.4 kW and 60 kW given in watts.
        (lambda d: d["inverters"][0].update(rating_kw=7400.0), "7400 looks like W; give rating_kw in kW"),
        (lambda d: d["inverters"][0].update(rating_kw=60000.0), "60000 looks like W; give rating_kw in kW"),
        (lambda d: d["inverters"][0].update(rating_kva=10.0), "rating_kva 10 is below rating_kw 11"),
        (lambda d: d["aggregation"].update(services=["energy", "spinach"]), "field aggregation.services.1"),
    ],
)
def test_implausible_ratings_and_unknown_services(change, words: str) -> None:  # type: ignore[no-untyped-def]
    d = base()
    change(d)
    with pytest.raises(ScenarioError, match=words):
        parse_register(d, "reg.toml")


def test_services_are_normalised() -> None:
    d = base()
    d["aggregation"]["services"] = [" Energy ", "Frequency-Response"]
    assert parse_register(d).aggregation.services == ("energy", "frequency_response")
