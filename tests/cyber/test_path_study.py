"""The study's cyber section (cyber/path_study.py): handshake breakdown on the path's links, the measured OCPP
segment, the ISO 15118 measurement file, the default ISO 15118 charge loops."""

from __future__ import annotations

import json
import re
from pathlib import Path as FsPath
from typing import get_args

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import require_part
from v2gtwin.cyber.handshake_profiles import CPU_PRESETS, REFERENCE_OP_COSTS_S, REFERENCE_OVERHEAD
from v2gtwin.cyber.iso15118_result import build_iso15118_result, segment_to_dict
from v2gtwin.cyber.path import Segment
from v2gtwin.cyber.path_defaults import ISO_LOOPS, build_default_path
from v2gtwin.cyber.path_study import (
    drop_csms_for_measured_link,
    read_iso15118_measurement,
    run_ocpp_check,
    run_path_study,
)
from v2gtwin.errors import DataError
from v2gtwin.scenario import CpuPresetName, parse_scenario

# A measured ISO 15118 segment as `v2gtwin cyber iso15118 --measure` makes it (figures of the ISO 15118-2 segment
# measured here on 2026-11-27, docs/cyber.md): fixed 3.2 ms, gamma wait 0.444 s (cv 0.63), processing 0.637 s.
MEASURED_ISO = Segment(
    "charger->EV (ISO 15118-2, iso15118 stack over a veth link)",
    0.0032, 0.444, "gamma", 0.63, 0.637, 1.0, "measured: v2gtwin cyber iso15118 --measure, 2026-11-27",
)  # fmt: skip


def _measured_file(tmp_path: FsPath, seg: Segment = MEASURED_ISO) -> FsPath:
    """The JSON of `cyber iso15118 --json` (its own serializer) with a measured segment in it."""
    data = build_iso15118_result([], ["-2"], None, "").summary()  # the command's dict, documented mode
    data |= {"mode": "measured", "segment": segment_to_dict(seg)}
    f = tmp_path / "iso.json"
    f.write_text(json.dumps(data))
    return f


def test_default_iso_loops_are_the_standards_timeouts() -> None:
    # ISO 15118-2:2014 Table 109: CurrentDemandReq 0.25 s (DC), ChargingStatusReq 2 s (AC); ISO 15118-20:2022:
    # AC_ChargeLoopReq and DC_ChargeLoopReq 0.5 s.
    assert {k: lp.timeout_s for k, lp in ISO_LOOPS.items()} == {"dc-2": 0.25, "ac-2": 2.0, "dc-20": 0.5, "ac-20": 0.5}
    # The segment's wait is uniform on [0, T]: mean T / 2, cv 1 / sqrt(3) = 0.57735.
    iso = build_default_path("lte", "ac-2").segments[-1]
    assert "ChargingStatusReq" in iso.name and iso.random_mean_s == 1.0
    assert iso.random_cv == pytest.approx(0.57735, abs=1e-5)
    assert "CurrentDemandReq" in build_default_path("lte").segments[-1].name  # the default: DC, V2G discharge


def test_default_iso_loops_against_the_iso15118_package() -> None:
    # The figures as the open iso15118 package encodes them (its timeouts modules), read from its sources.
    root = FsPath(".venv-iso15118")
    found = sorted(root.glob("lib/python*/site-packages/iso15118/shared/messages"))
    require_part(bool(found), "the iso15118 package in .venv-iso15118 (make iso15118-venv)")
    msgs = found[0]

    def value(module: str, name: str) -> float:
        m = re.search(rf"^\s*{name}\s*=\s*([0-9.]+)", (msgs / module / "timeouts.py").read_text(), re.M)
        assert m is not None, name
        return float(m.group(1))

    assert ISO_LOOPS["dc-2"].timeout_s == value("iso15118_2", "CURRENT_DEMAND_REQ")
    assert ISO_LOOPS["ac-2"].timeout_s == value("iso15118_2", "CHARGING_STATUS_REQ")
    assert ISO_LOOPS["dc-20"].timeout_s == value("iso15118_20", "DC_CHARGE_LOOP_REQ")
    assert ISO_LOOPS["ac-20"].timeout_s == value("iso15118_20", "AC_CHARGE_LOOP_REQ")


def test_cpu_preset_names_match_the_handshake_presets() -> None:
    assert set(get_args(CpuPresetName)) == set(CPU_PRESETS)


def test_handshakes_on_the_paths_links_by_hand() -> None:
    scen = parse_scenario({"cyber": {"measure_ocpp_exchanges": 0, "cpu_ev": 20.0, "cpu_charger": 8.0}})
    hs = run_path_study(scen, n_samples=1000).summary()["handshakes"]
    rows = {r["profile"]: r for r in hs["profiles"]}
    # ISO 15118 on the PLC segment: RTT = 2 x 20 ms fixed part; OCPP on LTE: RTT = 2 x (15 + 15) ms.
    assert rows["iso15118-2"]["rtt_s"] == pytest.approx(0.04)
    assert rows["ocpp-sp3"]["rtt_s"] == pytest.approx(0.06)
    # ISO 15118-2 (TLS 1.2, server-authenticated, 3-certificate chain, P-256) by hand: 2 round trips; the EV
    # does keygen + derive + check + 4 verify (3 certificates + ServerKeyExchange) and the stack's base + 3
    # certificate checks, x 20; the charger keygen + derive + check + sign and its base, x 8.
    c = REFERENCE_OP_COSTS_S["P-256"]
    ov = REFERENCE_OVERHEAD
    ev = 20.0 * (c["keygen"] + 2 * c["derive"] + 4 * c["verify"] + ov.base_client_s + 3 * ov.cert_check_s)
    charger = 8.0 * (c["keygen"] + 2 * c["derive"] + c["sign"] + ov.base_server_s)
    r = rows["iso15118-2"]
    assert r["t_handshake_s"] == pytest.approx(2 * 0.04 + ev + charger, rel=1e-9)
    assert r["t_crypto_client_s"] + r["t_overhead_client_s"] == pytest.approx(ev, rel=1e-9)
    assert r["dominant_part"] == "round trips"  # 80 ms against about 21 + 3 ms
    # OCPP security profile 3 (mutual, 1-certificate chains): charger (client) at 8x, CSMS (server) at 1x.
    r = rows["ocpp-sp3"]
    charger = 8.0 * (c["keygen"] + 2 * c["derive"] + c["sign"] + 2 * c["verify"] + ov.base_client_s + ov.cert_check_s)
    csms = 1.0 * (c["keygen"] + 2 * c["derive"] + c["sign"] + 2 * c["verify"] + ov.base_server_s + ov.cert_check_s)
    assert r["t_handshake_s"] == pytest.approx(2 * 0.06 + charger + csms, rel=1e-9)
    assert "iso15118-2: round trips" in hs["dominant"]


def test_measured_link_drops_the_assumed_csms_segment() -> None:
    default = build_default_path("lte")
    link = Segment("csms->charger (OCPP, measured)", 0.05, 0.001, "gamma", 0.5, 0.0004, 1.0, "measured: test")
    path, note = drop_csms_for_measured_link(default, link)
    assert [s.hop for s in path.segments] == ["csms->charger", "charger->EV"]
    # Mean = measured link (50 + 1 + 0.4 ms) + ISO 15118 (20 + 125 + 50 ms): no 5 ms csms on top.
    assert path.mean_s == pytest.approx(0.0514 + 0.195, abs=1e-12)
    assert path.p_success == pytest.approx(1.0 * 0.999)
    assert "5 ms" in note and "dropped" in note
    # The study on that path measures no OCPP segment of its own (it has no csms hop to replace) and says so.
    out = run_path_study(parse_scenario({}), path, n_samples=1000).summary()
    assert "already a measured" in out["ocpp_measurement"]["skipped"]


def test_iso15118_measurement_file_is_the_paths_segment(tmp_path: FsPath) -> None:
    f = _measured_file(tmp_path)
    assert read_iso15118_measurement(str(f)) == MEASURED_ISO
    scen = parse_scenario({"cyber": {"measure_ocpp_exchanges": 0, "iso15118_measurement": str(f)}})
    out = run_path_study(scen, n_samples=1000).summary()
    assert out["iso15118_segment"]["mode"] == "measured"
    assert out["iso15118_segment"]["default_segment"]["random_mean_s"] == 0.125  # beside it: 0.25 s / 2
    # One attempt: 5 ms csms + LTE (15 + 15 + 10 ms) + measured (3.2 + 444 + 637 ms); p = 1 x 0.995 x 1.0.
    assert out["p_success_attempt"] == pytest.approx(0.995)
    assert out["mean_attempt_s"] == pytest.approx(0.005 + 0.04 + 1.0842, abs=1e-9)


def test_without_a_file_the_report_says_documented_and_how_to_measure() -> None:
    out = run_path_study(parse_scenario({"cyber": {"measure_ocpp_exchanges": 0}}), n_samples=1000).summary()
    note = out["iso15118_segment"]["note"]
    assert out["iso15118_segment"]["mode"] == "documented"
    assert "0.25 s" in note and "Table 109" in note and "cyber iso15118 --measure --json" in note


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (None, "cannot be read"),
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"mode": "documented", "measurement_blocker": "not root"}', "field 'mode'"),
        ('{"mode": "measured"}', "field 'segment'"),
    ],
)
def test_bad_measurement_file_is_one_line(tmp_path: FsPath, content: str | None, field: str) -> None:
    f = tmp_path / "iso.json"
    if content is not None:
        f.write_text(content)
    with pytest.raises(DataError, match=re.escape(field)) as e:
        read_iso15118_measurement(str(f))
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_bad_segment_fields_name_the_field(tmp_path: FsPath) -> None:
    data = json.loads(_measured_file(tmp_path).read_text())
    for key, bad, says in (("p_success", 1.5, "p_success"), ("fixed_s", "x", "segment.fixed_s"),
                           ("name", "csms (x)", "segment.name"), ("processing_s", -1.0, "processing_s")):  # fmt: skip
        d = json.loads(json.dumps(data))
        d["segment"][key] = bad
        f = tmp_path / f"bad_{key}.json"
        f.write_text(json.dumps(d))
        with pytest.raises(DataError, match=re.escape(says)):
            read_iso15118_measurement(str(f))


def test_cli_reads_back_the_iso15118_commands_json(tmp_path: FsPath, capsys: pytest.CaptureFixture[str]) -> None:
    # The real command's JSON (documented mode here: no --measure) is read back and refused for its mode.
    code, out, err = run_cli(capsys, "cyber", "iso15118", "--json")
    assert code == 0, err
    f = tmp_path / "doc.json"
    f.write_text(out)
    scen = tmp_path / "s.toml"
    scen.write_text(f'[cyber]\nmeasure_ocpp_exchanges = 0\niso15118_measurement = "{f}"\n')
    code, out, err = run_cli(capsys, "cyber", "path", "--scenario", str(scen))
    assert_one_line_error(code, err)
    assert "cyber.iso15118_measurement" in err and "'mode'" in err
    scen.write_text("[cyber]\ncpu_ev = -2\n")
    code, out, err = run_cli(capsys, "cyber", "path", "--scenario", str(scen))
    assert_one_line_error(code, err)
    assert "cyber.cpu_ev" in err


def test_ocpp_check_against_the_real_central_system() -> None:
    # Real round trips (central system <-> simulated station, shaping proxy on loopback), 10 per delay.
    table, csms = run_ocpp_check(10, 7, build_default_path("lte").segments[0])
    rows = {r["delay_s"]: r for r in table["table"]}
    held = rows[0.01]
    assert not held["used_in_fit"] and held["n_answered"] == 10
    # The held-out delay: a round trip adds 2 x 10 ms to the zero-delay one; the fit predicts the measured
    # mean within 25 % (measured here: 23.4 ms against 21.6 ms at load 8).
    assert held["predicted_mean_s"] == pytest.approx(held["measured_mean_s"], rel=0.25)
    assert held["measured_mean_s"] > 0.02
    # The measured central system is half the zero-delay round trip: the fit's line at 0 plus its scatter there
    # is the measured zero-delay mean itself (up to the few round trips below the line, whose scatter counts as
    # 0), so the segment's mean is half the raw measurement's.
    assert csms.mean_s == pytest.approx(rows[0.0]["measured_mean_s"] / 2.0, rel=0.02)
    assert csms.mean_s >= rows[0.0]["measured_mean_s"] / 2.0 - 1e-12
    assert table["csms_assumed_s"] == 0.005 and csms.hop == "csms"


def test_a_real_measurement_file_reads_back() -> None:
    # tests/data/iso15118_measured.json: the output of `v2gtwin cyber iso15118 --measure --protocol 2 --tls off
    # --loop 5 --json` run here on 2026-11-27 (one real ISO 15118-2 session, 15 messages, 15.7 s).
    f = FsPath(__file__).parents[1] / "data" / "iso15118_measured.json"
    data = json.loads(f.read_text())
    seg = read_iso15118_measurement(str(f))
    assert seg.mean_s == pytest.approx(data["segment"]["mean_s"], rel=1e-12)
    assert seg.hop == "charger->EV" and seg.source.startswith("measured")
    # The file's own model check (session time predicted within a few %) came with it.
    assert abs(data["model_check"][0]["error_pct"]) < 10.0
