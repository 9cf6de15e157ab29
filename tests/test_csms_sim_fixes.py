"""Fixes to the station simulator and API found by trying issue 18 as a new user."""

from __future__ import annotations

import json
import math

import pytest

from v2gtwin.cyber.csms.live_state import ev_power_limits_w
from v2gtwin.cyber.csms.simulator import ev_max_current_a


@pytest.mark.parametrize(("p_max_w", "amps"), [(7200.0, 10), (11000.0, 16), (3700.0, 6), (7000.0, 10)])
def test_the_simulated_ev_draws_exactly_what_it_declares(p_max_w: float, amps: int) -> None:
    # sqrt(3)*400 V = 692.82 W per amp: 7200/692.82 = 10.39 -> 10 A (6928.2 W); 11000/692.82 = 15.88 -> 16 A
    # (11085.1 W); 3700 W -> 5.34 A, raised to the 6 A minimum; 7000 W -> 10.10 -> 10 A
    from v2gtwin.cyber.csms.simulator import SimEV, SimStation

    assert ev_max_current_a(p_max_w) == amps
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "ac_charging_parameters": {"ev_max_current": amps, "ev_max_voltage": 400},
    }
    p_decl, _ = ev_power_limits_w(needs, v2x=False)  # what the central system reads from the needs
    assert p_decl == pytest.approx(math.sqrt(3.0) * 400.0 * amps)
    station = SimStation("S", None, SimEV(p_max_w=p_max_w))
    assert station.power_w() == pytest.approx(p_decl)  # default draw: the declared maximum, not p_max_w
    station._apply_profile({"chargingSchedule": [{"chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1e6}]}]})
    assert station.power_w() == pytest.approx(p_decl)  # a higher limit is capped at the declared power


def test_cafile_missing_or_junk_is_one_line_naming_the_option(tmp_path) -> None:
    from v2gtwin.cyber.api_client import ApiClient, ApiError

    missing = tmp_path / "nope.pem"
    with pytest.raises(ApiError, match=r"^--cafile .*nope\.pem: no such file$"):
        ApiClient("https://127.0.0.1:1", "t", cafile=str(missing))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01 not a certificate\n")
    with pytest.raises(ApiError, match=r"^--cafile .*junk\.pem: not a readable PEM CA certificate"):
        ApiClient("https://127.0.0.1:1", "t", cafile=str(junk))
    with pytest.raises(ApiError, match=r"--cafile .*only used with an https"):
        ApiClient("http://127.0.0.1:1", "t", cafile=str(junk))


def test_null_latency_comes_with_its_reason() -> None:
    from v2gtwin.cli.csms_api import outcome_summary

    # 4 stations, D timed out: nearest rank p50 = rank ceil(0.5*4) = 2 -> 0.02 s; p99 = rank ceil(3.96) = 4 -> D,
    # which did not accept -> null, and the reason says so
    res = {
        "A": {"status": "Accepted", "latency_s": 0.01},
        "B": {"status": "Accepted", "latency_s": 0.02},
        "C": {"status": "Accepted", "latency_s": 0.03},
        "D": {"status": "timeout", "latency_s": None},
    }
    out = outcome_summary(res)
    assert out["latency_p50_s"] == pytest.approx(0.02) and out["latency_p99_s"] is None
    assert out["latency_note"].startswith("latency p99 null: 1 of 4 stations did not accept (timeout 1)")
    res["D"] = {"status": "Accepted", "latency_s": 0.04}
    assert "latency_note" not in outcome_summary(res)


def test_dashboard_renders_null_latency_as_dash_not_zero() -> None:
    """The dashboard's own formatting functions, run in node: null -> '–', 0.0123 s -> '12.3 ms'."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from tests.conftest import require_part

    node = shutil.which("node")
    require_part(node is not None, "node (to run the dashboard's script)")
    html = (Path(__file__).parents[1] / "src/v2gtwin/cyber/csms/dashboard.html").read_text()
    fmt = re.search(r"const fmt = .*?;\n", html, re.S)
    ms = re.search(r"const ms = .*?;\n", html, re.S)
    assert fmt and ms, "the dashboard defines fmt and ms"
    js = fmt.group(0) + ms.group(0) + "console.log(JSON.stringify([ms(null), ms(undefined), ms(0.0123), ms(0)]));"
    out = subprocess.run([str(node), "-e", js], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == ["–", "–", "12.3 ms", "0.0 ms"]


def test_unparseable_bodies_and_string_numbers_get_422_and_openapi_names_bearer(tmp_path) -> None:
    from tests.cyber.api_helpers import LiveSystem, http, loc_of
    from v2gtwin.cyber.csms.simulator import SimEV

    deep = b'{"setpoints": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    bodies = [b"\xff\xfe\x00binary", deep, b'{"setpoints": [{"station_id": "SIM-0", "p_kw": "3"}]}']
    with LiveSystem(tmp_path, [SimEV()]) as sys_:
        answers = [http("POST", sys_.url + "/api/v1/setpoints", sys_.token, b) for b in bodies]
        received = [len(s.profiles) for s in sys_.registry.values()]
        status_doc, doc = http("GET", sys_.url + "/openapi.json")
        status_404, _ = http("GET", sys_.url + "/api/v1/nope", sys_.token)
    for status, body in answers:
        assert status == 422, body
    assert ["body"] in loc_of(answers[0][1]) and ["body"] in loc_of(answers[1][1])
    assert ["body", "setpoints", 0, "p_kw"] in loc_of(answers[2][1])  # "3" (a string) is not taken for 3 kW
    assert received == [0]
    assert status_404 == 404
    spec = json.loads(doc)
    assert status_doc == 200
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from 'csms token create'.",
    }
    assert spec["paths"]["/api/v1/setpoints"]["post"]["security"] == [{"bearer": []}]


def test_token_names_are_printable_and_create_revoke_speak_json(tmp_path) -> None:
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    run = [sys.executable, "-m", "v2gtwin.cli", "csms", "token"]
    bad = subprocess.run([*run, "create", "a\nb", "--db", db], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "printable" in bad.stderr, bad.stderr
    made = subprocess.run([*run, "create", "ops", "--db", db, "--json"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert out["name"] == "ops" and len(out["token"]) >= 32
    gone = subprocess.run([*run, "revoke", "1", "--db", db, "--json"], capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0 and json.loads(gone.stdout) == {"id": 1, "revoked": True}


def test_db_error_names_the_drivers_reason_without_the_password() -> None:
    from sqlalchemy.exc import OperationalError

    from v2gtwin.cli.csms import _driver_reason

    orig = Exception('connection failed: FATAL:  password authentication failed for user "u" (pw s3cret)\nmore')
    exc = OperationalError("SELECT 1", {}, orig)
    why = _driver_reason(exc, "postgresql+psycopg://u:s3cret@localhost:5432/x")
    assert why == 'OperationalError: connection failed: FATAL:  password authentication failed for user "u" (pw ***)'


def test_a_timed_set_point_falls_back_to_the_default_when_it_expires(tmp_path) -> None:
    """A V2X EV told to discharge 5 kW for 1 s through the API: the profile on the wire carries duration 1, and
    once it has passed the simulated station charges at its default (7.4 kW nominal -> 11 A declared ->
    sqrt(3) * 400 * 11 = 7621.0 W) instead of discharging on."""
    import time

    from tests.cyber.api_helpers import LiveSystem, http
    from v2gtwin.cyber.csms.simulator import SimEV

    body = b'{"setpoints": [{"station_id": "SIM-0", "p_kw": -5.0}], "duration_s": 1}'
    with LiveSystem(tmp_path, [SimEV(v2x=True, p_max_w=7400.0, soc0_pu=0.5)]) as sys_:
        status, answer = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, body)
        station = sys_.registry["SIM-0"]
        during = station.power_w()
        schedule = station.profiles[-1]["chargingSchedule"][0]
        time.sleep(1.1)
        after = station.power_w()
    assert status == 200, answer
    assert json.loads(answer)["results"][0]["status"] == "Accepted"
    assert schedule["duration"] == 1 and schedule["startSchedule"].endswith("Z")
    assert during == -5000.0 and after == pytest.approx(math.sqrt(3.0) * 400.0 * 11)


def test_a_simulated_session_is_a_transaction_started_at_plug_in_and_ended_at_departure(tmp_path) -> None:
    from tests.cyber.api_helpers import LiveSystem
    from v2gtwin.cyber.api_client import ApiClient
    from v2gtwin.cyber.csms.api_queries import transaction_rows
    from v2gtwin.cyber.csms.simulator import SimEV

    with LiveSystem(tmp_path, [SimEV()]) as sys_:
        during = ApiClient(sys_.url, sys_.token).transactions(active=True)
        store = sys_.store
    after = transaction_rows(store, None, None)  # the stations stop (EV departs) before the central system
    assert [(t["transaction_id"], t["state"]) for t in during] == [("SIM-0-tx", "Started")]
    assert [(t["transaction_id"], t["state"], t["stopped_reason"]) for t in after] == [
        ("SIM-0-tx", "Ended", "EVDisconnected")
    ]
    assert after[0]["ended"] is not None
