"""The live dashboard: its alarm rules on hand-made cases, and the page itself in headless Chromium against a
central system with simulated stations (numbers appear, then change with a server-sent update; no console
error; a screenshot)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.browser import open_page, require_browser
from tests.cyber.api_helpers import LiveSystem
from v2gtwin.cyber.api_client import ApiClient
from v2gtwin.cyber.csms.live_state import AlarmSettings, LiveState, ev_power_limits_w
from v2gtwin.cyber.csms.simulator import SimEV


def _w(p_w: float, soc_pct: float) -> list[tuple[str, str, float, str]]:
    return [
        ("2026-01-01T00:00:00Z", "Power.Active.Import", p_w, "W"),
        ("2026-01-01T00:00:00Z", "SoC", soc_pct, "Percent"),
    ]


def test_alarms_stale_stations_and_set_points_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("v2gtwin.cyber.csms.live_state.time.monotonic", lambda: clock[0])
    live = LiveState(alarms=AlarmSettings(stale_after_s=60.0, settle_s=10.0, tolerance_kw=0.5))
    connected = {"A", "B", "C", "D"}
    live.on_values([("A", 1, _w(7000, 50)), ("B", 1, _w(7000, 60)), ("C", 1, _w(3000, 70))])
    # Set-points at t = 1000 s: A (no V2X) limited to 4 kW, B (V2X) held at -2 kW, C (no V2X) limited to 5 kW.
    live.on_dispatch(
        {"A": 4000.0, "B": -2000.0, "C": 5000.0, "D": 1000.0},
        {k: {"status": "Accepted", "latency_s": 0.01 * (i + 1)} for i, k in enumerate("ABC")}
        | {"D": {"status": "timeout", "latency_s": None}},
        {"A": False, "B": True, "C": False},
    )
    # Nothing measured after the settling time yet: no set-point alarm; D never reported but is not 60 s old.
    assert live.alarm_list(connected) == []
    clock[0] = 1011.0
    # After 11 s: A draws 4.3 kW (within 0.5 kW of its 4 kW limit), B discharges 1.2 kW (0.8 kW off -2 kW: alarm),
    # C draws 3 kW (below its limit: an EV may draw less than a limit; no alarm).
    live.on_values([("A", 1, _w(4300, 51)), ("B", 1, _w(-1200, 59)), ("C", 1, _w(3000, 71))])
    assert live.alarm_list(connected) == [
        {"station_id": "B", "kind": "set-point not followed", "p_set_kw": -2.0, "p_kw": -1.2}
    ]
    clock[0] = 1071.5  # 60.5 s after A, B, C last reported (1011 s), 71.5 s after D was first watched: all stale
    kinds = [(a["station_id"], a["kind"]) for a in live.alarm_list(connected)]
    assert kinds[:4] == [(s, "stopped reporting") for s in "ABCD"]
    # Fleet now: 4.3 - 1.2 + 3 = 6.1 kW, mean SoC (51 + 59 + 71) / 3 = 60.33 %.
    now = live.fleet_now(connected)
    assert now["p_kw"] == pytest.approx(6.1) and now["soc_mean_pu"] == pytest.approx(181 / 300)
    # Last dispatch: 4 stations, D timed out; nearest rank over all 4 (D above every latency): p50 = 2nd = 0.02 s.
    d = live.last_dispatch
    assert d is not None and d["outcomes"] == {"Accepted": 3, "timeout": 1}
    assert d["latency_p50_s"] == pytest.approx(0.02) and d["latency_p99_s"] is None
    assert d["p_set_total_kw"] == pytest.approx(8.0)


def test_declared_power_limits_from_charging_needs() -> None:
    ac = {"ev_max_current": 32, "ev_max_voltage": 230, "ev_min_current": 6}
    # One phase: 230 V x 32 A = 7,360 W; three phases at 400 V line-to-line, 16 A: sqrt(3) x 400 x 16 = 11,085 W.
    assert ev_power_limits_w({"requested_energy_transfer": "AC_single_phase", "ac_charging_parameters": ac}, False) == (
        pytest.approx(7360.0),
        0.0,
    )
    three = {
        "requested_energy_transfer": "AC_three_phase",
        "ac_charging_parameters": {**ac, "ev_max_current": 16, "ev_max_voltage": 400},
    }
    assert ev_power_limits_w(three, False)[0] == pytest.approx(11085.1, abs=0.1)
    # OCPP 2.1 declared powers win; V2X takes the discharge power as lower bound.
    v21 = {
        "requested_energy_transfer": "AC_BPT",
        "ac_charging_parameters": {**ac, "ev_max_charge_power": 11000, "ev_max_discharge_power": 5000},
    }
    assert ev_power_limits_w(v21, True) == (11000.0, -5000.0)
    assert ev_power_limits_w({"dc_charging_parameters": {"ev_max_power": 50000}}, True) == (50000.0, -50000.0)
    assert ev_power_limits_w({}, True) == (None, 0.0)


@pytest.mark.slow  # about 5 s: Chromium start, a live page, its updates
def test_dashboard_in_headless_chromium_shows_numbers_that_update(tmp_path: Path) -> None:
    """Two simulated stations report every 0.5 s and a third stays silent (an alarm after 1 s); a thread moves
    SIM-0's set-point between 3 and 6 kW through the API every second. The page, opened with its token in the
    address's fragment, must show the fleet's power, then a different value (an SSE update), the last dispatch
    and the alarm, without a console error."""
    binary = require_browser()
    evs = [SimEV(), SimEV(p_max_w=7400.0), SimEV()]
    alarms = AlarmSettings(stale_after_s=1.0, settle_s=1.0, tolerance_kw=0.5)
    with LiveSystem(
        tmp_path, evs, report_every_s=0.5, alarms=alarms, sample_every_s=0.5, quiet=frozenset({"SIM-2"})
    ) as sys_:
        client = ApiClient(sys_.url, sys_.token)
        stop = threading.Event()

        def toggle() -> None:
            k = 0
            while not stop.is_set():
                client.post_setpoints([{"station_id": "SIM-0", "p_kw": 3.0 if k % 2 else 6.0}])
                k += 1
                stop.wait(1.0)

        toggler = threading.Thread(target=toggle, daemon=True)
        toggler.start()
        try:
            # Until the number moved, an alarm and a dispatch show, and the number shown equals the API's fleet
            # power (GET /api/v1/dashboard, fetched by the page itself) to 0.1 kW: the page shows the server's
            # figure, not a transformed one. Fetched again on each poll until it matches (SIM-0 moves every 1 s).
            changed = (
                "(() => { const t = document.getElementById('p_kw').textContent;"
                " if (t === '\u2013') return false; window.__first = window.__first || t;"
                " if (!(t !== window.__first && document.getElementById('n_alarms').textContent !== '(0)'"
                " && document.querySelectorAll('#dispatch tr').length > 1)) return false;"
                " if (!window.__pending) { window.__pending = true;"
                " fetch('/api/v1/dashboard', {headers: {Authorization: 'Bearer " + sys_.token + "'}})"
                ".then(r => r.json()).then(d => { const shown = parseFloat("
                "document.getElementById('p_kw').textContent.replace(/,/g, ''));"
                " window.__api = d.now.p_kw; window.__shown = shown;"
                " window.__match = Math.abs(shown - d.now.p_kw) <= 0.1; window.__pending = false; })"
                ".catch(() => { window.__pending = false; }); }"
                " return window.__match === true; })()"
            )
            shot = tmp_path / "dashboard.png"
            # localhost, not 127.0.0.1: the browser helper resolves no host but localhost (no network).
            page = open_page(
                f"{sys_.url.replace('127.0.0.1', 'localhost')}/#token={sys_.token}",
                selectors=("#p_kw", "#chart_p", "#dispatch tr", "#alarms tr"),
                wait_for=changed,
                expression="JSON.stringify({first: window.__first, now: document.getElementById('p_kw').textContent,"
                " api_p_kw: window.__api, shown_p_kw: window.__shown,"
                " conn: document.getElementById('conn').textContent, alarms: document.getElementById('alarms')"
                ".textContent, dispatch: document.getElementById('dispatch').textContent, hash: location.hash})",
                screenshot=shot,
                timeout_s=60.0,
                binary=binary,
            )
        finally:
            stop.set()
            toggler.join(30)
    import json

    seen = json.loads(page.value)
    assert page.console_errors == []
    # SIM-0 at 3 or 6 kW, SIM-1 at 7.4, SIM-2 at 11 (its first report): the total is a number that moved.
    assert seen["first"] != seen["now"] and float(seen["now"].replace(",", "")) > 0
    assert seen["api_p_kw"] > 0 and abs(seen["shown_p_kw"] - seen["api_p_kw"]) <= 0.1  # the API's figure, shown
    assert seen["conn"] == "live" and seen["hash"] == ""  # the token left the address bar
    assert "SIM-2" in seen["alarms"] and "stopped reporting" in seen["alarms"]
    assert "latency p50" in seen["dispatch"] and "ms" in seen["dispatch"]
    assert page.elements["#chart_p"]["visible"] == 1
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
