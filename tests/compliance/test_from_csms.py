"""The charger part of the register from the central system's store (``comply --from-csms``): the mapping from
OCPP names to register fields (checked against hand-written reports and hand arithmetic), the merge with a
register file (the store wins, every field names its source), what cannot be read (named, never dropped), bad
input, and the whole path — simulated stations report to a running central system, one of them non-compliant,
and the audit finds exactly that one failing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from v2gtwin.compliance.audit import run_audit, status_of
from v2gtwin.compliance.from_csms import MAPPING, register_from_csms
from v2gtwin.compliance.register import parse_register
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.simulator import SimEV, SimSettings, run_station
from v2gtwin.cyber.csms.store import Store
from v2gtwin.errors import DataError, ScenarioError

from ..cli_helpers import assert_one_line_error, run_cli
from ..cyber.helpers import run


def _curve(ctype: str, points: list[tuple[float, float]], y_unit: str, cid: str = "", **kw: Any) -> dict[str, Any]:
    """A DER control row as the store keeps it (wire format, written by hand from the OCPP 2.1 schema)."""
    priority = kw.pop("priority", 0)
    body = {
        "id": cid or f"{ctype}-1",
        "curveType": ctype,
        "isDefault": kw.pop("is_default", True),
        "isSuperseded": kw.pop("is_superseded", False),
        "curve": {"priority": priority, "yUnit": y_unit, "curveData": [{"x": x, "y": y} for x, y in points], **kw},
    }
    return _row(ctype, body, priority)


def _row(ctype: str, body: dict[str, Any], priority: int = 0) -> dict[str, Any]:
    return {
        "control_type": ctype,
        "control_id": body["id"],
        "is_default": body.get("isDefault", True),
        "is_superseded": body.get("isSuperseded", False),
        "priority": priority,
        "body_json": json.dumps(body),
    }


def _droop(over: float, under: float, k: float = 0.05, t: float = 5.0) -> dict[str, Any]:
    body = {
        "id": "fd-1",
        "isDefault": True,
        "isSuperseded": False,
        "freqDroop": {
            "priority": 0,
            "overFreq": over,
            "underFreq": under,
            "overDroop": k,
            "underDroop": k,
            "responseTime": t,
        },
    }
    return _row("FreqDroop", body)


def _power(max_w: float, evse: int = 1, unit: str = "W") -> dict[str, Any]:
    return {
        "component": "EVSE",
        "evse_id": evse,
        "variable": "Power",
        "attribute": "Actual",
        "value": "0",
        "unit": unit,
        "max_limit": max_w,
    }


def _store(path: Path, stations: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> str:
    """An SQLite store holding booted stations with the given device-model rows and DER control rows."""
    url = f"sqlite:///{path}"
    store = Store(url)
    ops = []
    for sid, (variables, controls) in stations.items():
        ops.append(Store.op_upsert_station(sid, "Acme", "BiDi-11", firmware="3.1.4"))
        ops.append(Store.op_reported_variables(sid, variables))
        ops.append(Store.op_der_controls(sid, controls))
    store.apply(ops)
    store.engine.dispose()
    return url


FULL = [
    _curve("HVMustTrip", [(0.16, 120.0), (13.0, 110.0)], "PctEffectiveV"),
    _curve("LVMustTrip", [(2.0, 50.0), (21.0, 88.0)], "PctEffectiveV"),
    _curve("HFMustTrip", [(0.16, 62.0), (300.0, 61.2)], "Not_Applicable"),
    _curve("LFMustTrip", [(0.16, 56.5), (300.0, 58.5)], "Not_Applicable"),
    _curve(
        "VoltVar",
        [(92.0, 44.0), (98.0, 0.0), (102.0, 0.0), (108.0, -44.0)],
        "PctMaxVar",
        responseTime=5.0,
        reactivePowerParams={"vRef": 102.0},
    ),
    _droop(60.05, 59.98, k=0.04, t=2.0),
]


def test_every_field_of_the_mapping_from_hand_written_reports(tmp_path: Path) -> None:
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(9600.0)], FULL)})
    got = register_from_csms(url)
    inv = got.register.inverters[0]
    assert (inv.id, inv.vendor, inv.model, inv.firmware, inv.source) == ("CS-1", "Acme", "BiDi-11", "3.1.4", "csms")
    assert inv.rating_kw == pytest.approx(9.6)  # 9600 W / 1000
    t = inv.trip
    assert t is not None
    # Voltage: y in % of nominal / 100; the highest y is OV2, the lowest UV2; x is the clearing time.
    assert (t.ov2_pu, t.ov2_s, t.ov1_pu, t.ov1_s) == pytest.approx((1.20, 0.16, 1.10, 13.0))
    assert (t.uv2_pu, t.uv2_s, t.uv1_pu, t.uv1_s) == pytest.approx((0.50, 2.0, 0.88, 21.0))
    assert (t.of2_hz, t.of2_s, t.of1_hz, t.of1_s) == pytest.approx((62.0, 0.16, 61.2, 300.0))
    assert (t.uf2_hz, t.uf2_s, t.uf1_hz, t.uf1_s) == pytest.approx((56.5, 0.16, 58.5, 300.0))
    vv = inv.volt_var
    assert vv is not None and vv.enabled and vv.t_response_s == 5.0
    # x [% of nominal] x vRef / 100: 92 x 1.02 = 0.9384 pu, 98 x 1.02 = 0.9996, 102 x 1.02 = 1.0404,
    # 108 x 1.02 = 1.1016
    assert (vv.v1_pu, vv.v2_pu, vv.v3_pu, vv.v4_pu) == pytest.approx((0.9384, 0.9996, 1.0404, 1.1016))
    assert vv.vref_pu == pytest.approx(1.02)  # vRef 102 % / 100
    assert (vv.q1_pct, vv.q2_pct, vv.q3_pct, vv.q4_pct) == (44.0, 0.0, 0.0, -44.0)
    fd = inv.freq_droop
    # dead bands: 60.05 - 60 = 0.05 Hz over, 60 - 59.98 = 0.02 Hz under
    assert fd is not None and (fd.db_of_hz, fd.db_uf_hz) == pytest.approx((0.05, 0.02))
    assert (fd.k_of_pu, fd.k_uf_pu, fd.t_response_s) == (0.04, 0.04, 2.0)
    sources = got.field_sources["CS-1"]
    assert {m.field for m in MAPPING} <= set(sources) and sources["site"] == "missing"
    assert {v for k, v in sources.items() if k != "site"} == {"csms"}
    assert got.notes[0] == "station 'CS-1' is not in the register: placed at site 'unknown'"
    assert len(got.notes) == 2 and got.notes[1].startswith("volt-var reactive power of 1 station(s) read in %")


def test_a_default_curve_at_vref_102_pct_passes_volt_var(tmp_path: Path) -> None:
    # The Category B default curve in % of VRef (92/98/102/108) with VRef = 102 %: V2 = 0.9996 pu lies in
    # [VRef - 0.03, VRef] = [0.99, 1.02], V3 = 1.0404 in [1.02, 1.05], V1 0.9384 <= V2 - 0.02 = 0.9796, V4 1.1016 >=
    # V3 + 0.02 = 1.0604: inside every range. Against a fixed VRef of 1.0 pu, V3 = 1.0404 exceeds 1.03 (a one-source
    # range end: warning).
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(9600.0)], FULL)})
    reg = register_from_csms(url).register
    data = reg.model_dump(mode="json")
    data["inverters"][0].update(normal_category="B", abnormal_category="III")
    f = next(f for f in run_audit(parse_register(data)).findings if f.rule == "IEEE1547-VV")
    assert f.status == "pass", f.evidence
    data["inverters"][0]["volt_var"]["vref_pu"] = 1.0
    assert status_of(run_audit(parse_register(data)).findings, "IEEE1547-VV", "CS-1") == "warning"


def test_a_station_with_several_evses_has_their_ratings_summed(tmp_path: Path) -> None:
    # Two EVSEs of 11,000 W and 7.4 kW: 11 + 7.4 = 18.4 kW for the station, and the notes say it is a sum.
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(11000.0, 1), _power(7.4, 2, "kW")], [])})
    got = register_from_csms(url)
    assert got.register.inverters[0].rating_kw == pytest.approx(18.4)
    assert "station 'CS-1': rating_kw is the sum of 2 EVSEs' Power maxLimit" in got.notes


def test_trip_elements_are_ordered_by_threshold(tmp_path: Path) -> None:
    # IEEE 1547-2003 (DR <= 30 kW): 59.3 Hz and 57.0 Hz, both cleared in 0.16 s - one clearing time, so only the
    # threshold orders them: UF1 (closer to 60 Hz) = 59.3 Hz, UF2 = 57.0 Hz, as the register and the study write it.
    # Over-voltage: the higher threshold is OV2 whatever the clearing times.
    controls = [
        _curve("LFMustTrip", [(0.16, 57.0), (0.16, 59.3)], "Not_Applicable"),
        _curve("HVMustTrip", [(1.0, 110.0), (0.16, 120.0)], "PctEffectiveV"),
    ]
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(7000.0)], controls)})
    t = register_from_csms(url).register.inverters[0].trip
    assert t is not None
    assert (t.uf1_hz, t.uf1_s, t.uf2_hz, t.uf2_s) == (59.3, 0.16, 57.0, 0.16)
    assert (t.ov1_pu, t.ov1_s, t.ov2_pu, t.ov2_s) == pytest.approx((1.1, 1.0, 1.2, 0.16))


def test_the_control_in_effect_superseded_scheduled_and_priority(tmp_path: Path) -> None:
    """Three LFMustTrip controls: a superseded one (ignored), a scheduled one (a default wins over it) and two
    defaults of priorities 1 and 0 (0 wins)."""
    controls = [
        _curve("LFMustTrip", [(0.16, 50.0), (300.0, 51.0)], "Not_Applicable", "sup", is_superseded=True),
        _curve("LFMustTrip", [(0.16, 55.0), (300.0, 58.0)], "Not_Applicable", "sched", is_default=False),
        _curve("LFMustTrip", [(0.16, 56.0), (300.0, 58.2)], "Not_Applicable", "low", priority=1),
        _curve("LFMustTrip", [(0.16, 56.5), (300.0, 58.5)], "Not_Applicable", "high", priority=0),
    ]
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(7000.0)], controls)})
    t = register_from_csms(url).register.inverters[0].trip
    assert t is not None and (t.uf2_hz, t.uf1_hz) == (56.5, 58.5)


def test_what_cannot_be_read_is_named_and_left_to_the_register(tmp_path: Path) -> None:
    controls = [
        _curve("HVMustTrip", [(0.16, 1.2), (13.0, 1.1)], "PctMaxW"),  # a y unit that is not a voltage
        _curve("LFMustTrip", [(0.16, 56.5), (10.0, 57.5), (300.0, 58.5)], "Not_Applicable"),  # three points
        _droop(0.036, 0.036),  # dead bands where frequencies belong
        _curve("VoltVar", [(92.0, float("nan")), (98.0, 0.0), (102.0, 0.0), (108.0, -44.0)], "PctMaxVar"),
    ]
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(7000.0, unit="A")], controls)})
    reg = tmp_path / "r.toml"
    reg.write_text(
        '[[sites]]\nid = "S1"\n[[inverters]]\nid = "CS-1"\nsite = "S1"\nrating_kw = 7.4\n'
        "[inverters.trip]\nuf2_hz = 56.0\nuf2_s = 0.16\n"
    )
    got = register_from_csms(url, reg)
    inv = got.register.inverters[0]
    assert inv.rating_kw == 7.4 and inv.trip is not None and inv.trip.uf2_hz == 56.0 and inv.trip.ov2_pu is None
    assert inv.freq_droop is None
    src = got.field_sources["CS-1"]
    assert (src["rating_kw"], src["trip.uf2_hz"], src["site"], src["vendor"]) == (
        "register",
        "register",
        "register",
        "csms",
    )
    notes = " | ".join(got.notes)
    assert "Power maxLimit 7000.0 'A' not read" in notes
    assert "HVMustTrip not read: yUnit 'PctMaxW', expected 'PctEffectiveV'" in notes
    assert "LFMustTrip not read: 3 points" in notes
    assert "FreqDroop not read: overFreq 0.036 Hz" in notes
    assert "VoltVar not read: a point that is not a finite number" in notes and inv.volt_var is None


def test_the_store_wins_over_the_register_and_the_register_fills_the_rest(tmp_path: Path) -> None:
    url = _store(tmp_path / "s.sqlite", {"CS-1": ([_power(11000.0)], FULL[:1])})  # only HVMustTrip reported
    reg = tmp_path / "r.toml"
    reg.write_text(
        '[[sites]]\nid = "S1"\n[[sites]]\nid = "S2"\n'
        '[[inverters]]\nid = "CS-1"\nsite = "S2"\nvendor = "Planned"\nrating_kw = 7.4\nrating_kva = 12.0\n'
        'certifications = ["UL 1741 SB"]\nnormal_category = "B"\nabnormal_category = "III"\n'
        "[inverters.trip]\nov2_pu = 1.15\nuf2_hz = 56.5\n"
        '[[inverters]]\nid = "OTHER"\nsite = "S1"\nrating_kw = 3.0\n'
    )
    got = register_from_csms(url, reg)
    inv = {i.id: i for i in got.register.inverters}
    cs1 = inv["CS-1"]
    assert (cs1.vendor, cs1.rating_kw, cs1.rating_kva, cs1.site) == ("Acme", 11.0, 12.0, "S2")
    assert cs1.trip is not None and (cs1.trip.ov2_pu, cs1.trip.uf2_hz) == (1.2, 56.5)
    assert cs1.certifications == ("UL 1741 SB",) and cs1.abnormal_category == "III"
    src = got.field_sources["CS-1"]
    assert (src["vendor"], src["rating_kw"], src["trip.ov2_pu"]) == ("csms", "csms", "csms")
    assert (src["rating_kva"], src["trip.uf2_hz"], src["certifications"], src["site"]) == ("register",) * 4
    assert inv["OTHER"].source == "register" and set(got.field_sources["OTHER"].values()) == {"register"}
    assert "inverter 'OTHER' is not known to the central system: register values only" in got.notes


def test_a_station_the_register_cannot_place_is_an_error_naming_it(tmp_path: Path) -> None:
    url = _store(tmp_path / "s.sqlite", {"NEW-9": ([_power(7000.0)], [])})
    reg = tmp_path / "r.toml"
    reg.write_text('[[sites]]\nid = "S1"\n[[sites]]\nid = "S2"\n')
    with pytest.raises(DataError, match="station 'NEW-9' is not in the register, which has 2 sites"):
        register_from_csms(url, reg)
    reg.write_text('[[sites]]\nid = "S1"\n')  # one site: placed there, and said
    got = register_from_csms(url, reg)
    assert got.register.inverters[0].site == "S1"
    assert "station 'NEW-9' is not in the register: placed at site 'S1'" in got.notes


def test_a_value_from_the_store_that_fails_validation_names_station_field_and_database(tmp_path: Path) -> None:
    bad = [_curve("LFMustTrip", [(0.16, 0.94), (300.0, 0.975)], "Not_Applicable")]  # per-unit where Hz belong
    url = _store(tmp_path / "s.sqlite", {"CS-P": ([_power(7000.0)], bad)})
    with pytest.raises(ScenarioError) as err:
        register_from_csms(url)
    msg = str(err.value)
    assert "--from-csms sqlite:///" in msg and "inverter 'CS-P'" in msg and "field trip.uf" in msg
    assert "\n" not in msg


def test_bad_database_urls_are_one_line_errors_and_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(DataError, match="no such database file"):
        register_from_csms(f"sqlite:///{missing}")
    assert not missing.exists()
    other = tmp_path / "other.sqlite"
    import sqlite3

    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(DataError, match="not a v2gtwin central system's database"):
        register_from_csms(f"sqlite:///{other}")
    with pytest.raises(DataError, match="cannot open the database"):
        register_from_csms("not a url")
    with pytest.raises(DataError, match=r"\*\*\*"):  # the password is hidden in the message
        register_from_csms("postgresql+nosuchdriver://user:secret@127.0.0.1/db")


def test_simulated_stations_to_audit_finds_exactly_the_non_compliant_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three V2X stations (OCPP 2.1) report to a running central system; BAD's under-frequency trip is the legacy
    59.3 Hz (IEEE 1547-2018's UF1 range ends at 59.0 Hz). The register file gives what the store cannot know
    (site, categories, certification) and no rating. The IEEE 1547 audit fails BAD and no other station."""
    db = tmp_path / "csms.sqlite"
    store = Store(f"sqlite:///{db}")
    settings = {
        "GOOD-1": SimSettings(),
        "GOOD-2": SimSettings(),
        "BAD": dataclasses.replace(SimSettings(), uf2_hz=59.3),
    }

    async def scenario() -> None:
        async with Csms(store, port=0, inventory_on_boot=True) as csms:
            url, stop = f"ws://127.0.0.1:{csms.port}", asyncio.Event()
            tasks = [
                asyncio.create_task(run_station(url, sid, ev=SimEV(v2x=True), stop=stop, settings=s))
                for sid, s in settings.items()
            ]
            while not all(csms.inventory_complete(s) for s in settings):
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)

    run(scenario(), 60)
    store.engine.dispose()
    reg = tmp_path / "register.toml"
    reg.write_text(
        '[[sites]]\nid = "S1"\n'
        + "".join(
            f'[[inverters]]\nid = "{sid}"\nsite = "S1"\ncertifications = ["UL 1741 SB", "IEEE 1547.1-2020"]\n'
            'normal_category = "B"\nabnormal_category = "III"\n'
            for sid in settings
        )
    )
    got = register_from_csms(f"sqlite:///{db}", reg)
    assert {i.id: i.rating_kw for i in got.register.inverters} == {sid: 11.0 for sid in settings}  # from the store
    audit = run_audit(got.register, families=("ieee1547",))
    failing = {(f.asset, f.rule) for f in audit.findings if f.status == "fail"}
    # BAD's LFMustTrip points: 59.3 Hz / 0.16 s and 58.5 Hz / 300 s. By threshold (element 1 closer to nominal, as
    # the register and the study write the legacy trip): UF1 = 59.3 Hz / 0.16 s (above 59.0 Hz, faster than 180 s)
    # and UF2 = 58.5 Hz / 300 s (above 57.0 Hz): both fail.
    assert failing == {("BAD", "IEEE1547-TRIP-UF2"), ("BAD", "IEEE1547-TRIP-UF1")}
    # The same through the command: exit status 1, the one failing finding, the sources and the stations.
    code, out, err = run_cli(
        capsys, "comply", str(reg), "--from-csms", f"sqlite:///{db}", "--family", "ieee1547", "--json"
    )
    assert code == 1, err
    d = json.loads(out)
    assert {(f["asset"], f["rule"]) for f in d["findings"] if f["status"] == "fail"} == failing
    assert d["from_csms"]["stations"] == ["BAD", "GOOD-1", "GOOD-2"]
    assert d["from_csms"]["field_sources"]["BAD"]["trip.uf2_hz"] == "csms"
    assert d["from_csms"]["field_sources"]["BAD"]["abnormal_category"] == "register"
    code, out, _ = run_cli(capsys, "comply", "--from-csms", f"sqlite:///{db}", "--family", "ieee1547")
    assert code == 1 and "field sources (--from-csms):" in out and "site 'unknown'" in out


def test_comply_from_csms_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run_cli(capsys, "comply")[::2])
    code, _, err = run_cli(capsys, "comply", "--from-csms", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert_one_line_error(code, err)
    assert "--from-csms" in err and "no such database file" in err


def test_the_simulated_stations_defaults_are_the_standards_table() -> None:
    """The simulated stations' default settings (written in the central system's package, which must not read
    the compliance data) equal the package's IEEE 1547-2018 table: Category III trips, Category B volt-var, the
    default droop — so a default station is a compliant one."""
    from v2gtwin.ieee1547 import read_ieee1547

    table, s = read_ieee1547(), SimSettings()
    assert {k: getattr(s, k) for k in table.defaults("trip", "III")} == table.defaults("trip", "III")
    vv = {k: v for k, v in table.defaults("volt_var", "B").items() if k != "vref_pu"}
    assert {k: getattr(s, f"vv_{k}") for k in vv} == vv
    # The simulator reports no vRef: the register's VRef default is the table's, 1.0 pu.
    assert table.defaults("volt_var", "B")["vref_pu"] == 1.0
    droop = table.defaults("freq_droop", "III")
    assert {k: getattr(s, f"droop_{k}") for k in droop} == droop
