"""The asset register: bad input gives one line naming the asset and the field; TOML and CSV parts load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.compliance.registers import base
from v2gtwin.compliance.register import load_register, parse_register, with_aggregation
from v2gtwin.errors import ScenarioError


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
    (tmp_path / "inv.csv").write_text("id,site,rating_kw,trip.uf1_hz\nA,S1,7.4,0.975\n")
    with pytest.raises(ScenarioError, match=r"inverter 'A': field trip\.uf1_hz: 0\.975 looks like per-unit"):
        load_register(tmp_path / "reg.toml")


def test_with_aggregation_validates_overrides() -> None:
    reg = parse_register(base())
    assert with_aggregation(reg, settlement_interval_min=15).aggregation.settlement_interval_min == 15
    assert with_aggregation(reg) is reg
    with pytest.raises(ScenarioError, match=r"command line: field aggregation\.settlement_interval_min"):
        with_aggregation(reg, settlement_interval_min=0)
