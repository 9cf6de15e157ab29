"""The central system's HTTP API against a real Csms and simulated stations on loopback: the read routes (checked
against what the simulator itself sent), a set-point POST reaching the stations (checked from the simulator's
side), 401s, 422s with nothing sent, paging and time filters on meter values (hand-counted), the OpenAPI
document, and a hypothesis fuzz of the JSON bodies and query strings (no 500)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.cyber.api_helpers import LiveSystem, http, loc_of
from v2gtwin.cyber.api_client import ApiClient, ApiError
from v2gtwin.cyber.csms.simulator import SimEV
from v2gtwin.cyber.csms.store import Store

# Two EVs: SIM-0 charges only (OCPP 2.0.1), SIM-1 declares V2X (OCPP 2.1). SimEV defaults: 60 kWh, SoC 0.4,
# target 0.8, 11 kW.
EVS = [SimEV(), SimEV(v2x=True, p_max_w=7400.0, soc0_pu=0.5)]


def test_read_routes_and_a_set_point_post_reach_the_simulated_stations(tmp_path: Path) -> None:
    with LiveSystem(tmp_path, EVS, reports=2) as sys_:
        client = ApiClient(sys_.url, sys_.token)
        stations = {s["station_id"]: s for s in client.stations()}
        needs = {n["station_id"]: n for n in client.charging_needs()}
        active = client.transactions(active=True)
        results = client.post_setpoints(
            [{"station_id": "SIM-0", "evse_id": 1, "p_kw": 5.0}, {"station_id": "SIM-1", "evse_id": 1, "p_kw": -3.0}]
        )
        sims = {sid: sys_.registry[sid] for sid in ("SIM-0", "SIM-1")}
        sim_limits_w = {sid: s.limit_w for sid, s in sims.items()}
        sim_soc_pct = {sid: round(100 * s.soc_pu, 1) for sid, s in sims.items()}
        records = sys_.store.profile_records()
    assert set(stations) == {"SIM-0", "SIM-1"}
    ev0, ev1 = stations["SIM-0"]["evses"][0], stations["SIM-1"]["evses"][0]
    assert stations["SIM-0"]["connected"] and stations["SIM-0"]["protocol"] == "ocpp2.0.1"
    assert stations["SIM-1"]["protocol"] == "ocpp2.1"
    # Before any set-point the simulated EVs draw their declared power (below): 11,085.1 W and 7,621.0 W.
    assert ev0["p_kw"] == pytest.approx(math.sqrt(3) * 400 * 16 / 1000, abs=1e-4)
    assert ev1["p_kw"] == pytest.approx(math.sqrt(3) * 400 * 11 / 1000, abs=1e-4)
    # SoC: the last value the simulator sent (Percent, 0.1 resolution) as per unit.
    assert ev0["soc_pu"] == pytest.approx(sim_soc_pct["SIM-0"] / 100) and ev0["status"] == "Occupied"
    # Declared limit: ev_max_current = round(11000 / (sqrt(3) * 400)) = round(15.88) = 16 A per phase at 400 V
    # line-to-line, three phases: sqrt(3) * 400 * 16 = 11,085.1 W. SIM-1: round(7400 / 692.8) = round(10.68) = 11 A
    # -> sqrt(3) * 400 * 11 = 7,621.0 W, and V2X:
    # the same as discharge limit.
    assert ev0["p_max_kw"] == pytest.approx(math.sqrt(3) * 400 * 16 / 1000) and ev0["p_min_kw"] == 0.0
    assert ev1["p_min_kw"] == pytest.approx(-math.sqrt(3) * 400 * 11 / 1000) and ev1["v2x"] is True
    # Needs: energy_amount = round((0.8 - 0.4) * 60 kWh) = 24,000 Wh; SIM-1: (0.8 - 0.5) * 60 = 18,000 Wh.
    assert needs["SIM-0"]["e_request_kwh"] == pytest.approx(24.0)
    assert needs["SIM-1"]["e_request_kwh"] == pytest.approx(18.0) and needs["SIM-1"]["v2x"] is True
    assert needs["SIM-0"]["departure_time"].endswith("Z")
    # The simulator starts one transaction per plugged-in EV (TransactionEvent Started, id STATION-tx).
    assert sorted((t["station_id"], t["transaction_id"]) for t in active) == [
        ("SIM-0", "SIM-0-tx"),
        ("SIM-1", "SIM-1-tx"),
    ]
    # The set-points reached the stations (the simulator's own state) and were recorded as `csms dispatch` does.
    assert {r["station_id"]: r["status"] for r in results} == {"SIM-0": "Accepted", "SIM-1": "Accepted"}
    assert all(r["latency_s"] > 0 and r["error"] is None for r in results)
    assert sim_limits_w == {"SIM-0": 5000.0, "SIM-1": -3000.0}
    assert sorted((r.station_id, r.setpoint_w, r.status) for r in records) == [
        ("SIM-0", 5000.0, "Accepted"),
        ("SIM-1", -3000.0, "Accepted"),
    ]


def test_missing_wrong_or_revoked_tokens_get_401_without_detail(tmp_path: Path) -> None:
    with LiveSystem(tmp_path) as sys_:
        url = sys_.url + "/api/v1/stations"
        other = sys_.tokens.create("revoked soon")
        before = http("GET", url, other)[0]
        sys_.tokens.revoke(sys_.tokens.list_tokens()[-1]["id"])
        answers = [
            http("GET", url),
            http("GET", url, "v2gt_" + "x" * 43),
            http("GET", url, other),
            http("POST", sys_.url + "/api/v1/setpoints", None, b'{"setpoints": []}'),
            http("GET", sys_.url + "/api/v1/events"),
        ]
        ok = http("GET", url, sys_.token)[0]
    assert before == 200 and ok == 200
    assert [a == (401, b"") for a in answers] == [True] * 5


def test_open_reads_open_gets_but_not_posts(tmp_path: Path) -> None:
    with LiveSystem(tmp_path, open_reads=True) as sys_:
        got = http("GET", sys_.url + "/api/v1/stations")
        posted = http("POST", sys_.url + "/api/v1/setpoints", None, b'{"setpoints":[{"station_id":"A","p_kw":1}]}')
    assert got == (200, b'{"stations":[]}')
    assert posted == (401, b"")


BAD_SETPOINTS = [
    ('[{"station_id":"SIM-0","evse_id":1,"p_kw":NaN}]', ["body", "setpoints", 0, "p_kw"]),
    ('[{"station_id":"SIM-0","evse_id":1,"p_kw":Infinity}]', ["body", "setpoints", 0, "p_kw"]),
    # 12 kW > the EV's declared 11.085 kW (sqrt(3) * 400 V * 16 A).
    ('[{"station_id":"SIM-1","p_kw":-1},{"station_id":"SIM-0","p_kw":12}]', ["body", "setpoints", 1, "p_kw"]),
    # SIM-0 declared no V2X: nothing below 0.
    ('[{"station_id":"SIM-0","p_kw":-0.5}]', ["body", "setpoints", 0, "p_kw"]),
    # SIM-1 (V2X, 11 A): not below -sqrt(3) * 400 * 11 = -7.621 kW.
    ('[{"station_id":"SIM-1","p_kw":-7.7}]', ["body", "setpoints", 0, "p_kw"]),
    ('[{"station_id":"SIM-0","evse_id":2,"p_kw":1}]', ["body", "setpoints", 0, "evse_id"]),
    ('[{"station_id":"SIM-0","p_kw":1},{"station_id":"SIM-0","p_kw":2}]', ["body", "setpoints", 1, "station_id"]),
    ('[{"station_id":"bad id!","p_kw":1}]', ["body", "setpoints", 0, "station_id"]),
    ('[{"station_id":"SIM-0","p_kw":"1 kW"}]', ["body", "setpoints", 0, "p_kw"]),
    ('[{"station_id":"SIM-0","p_kw":1,"extra":1}]', ["body", "setpoints", 0, "extra"]),
]


def test_bad_set_points_get_422_naming_the_field_and_nothing_is_sent(tmp_path: Path) -> None:
    answers = []
    with LiveSystem(tmp_path, EVS) as sys_:
        for setpoints, _ in BAD_SETPOINTS:
            body = f'{{"setpoints":{setpoints}}}'.encode()
            answers.append(http("POST", sys_.url + "/api/v1/setpoints", sys_.token, body))
        received = [len(s.profiles) for s in sys_.registry.values()]
        records = sys_.store.profile_records()
    for (status, body), (setpoints, loc) in zip(answers, BAD_SETPOINTS, strict=True):
        assert status == 422, setpoints
        assert loc in loc_of(body), (setpoints, body)
    assert received == [0, 0] and records == []


def test_a_2_0_1_station_declaring_v2x_still_gets_no_discharge_set_point(tmp_path: Path) -> None:
    """OCPP 2.0.1 has no discharging profile: a 2.0.1 station whose EV names a bidirectional transfer mode
    (AC_BPT) gets p_min 0 and a negative set-point is refused (422 on p_kw), nothing sent."""
    with LiveSystem(tmp_path, EVS) as sys_:
        handler = sys_.csms.stations["SIM-0"]
        assert handler.version == "ocpp2.0.1"
        needs = {
            "requested_energy_transfer": "AC_BPT",
            "ac_charging_parameters": {"energy_amount": 20000, "ev_min_current": 0, "ev_max_current": 16,
                                       "ev_max_voltage": 400},
        }  # fmt: skip
        sys_.call(handler.on_charging_needs(charging_needs=needs, evse_id=1))
        assert handler.v2x  # the EV declared V2X: only the protocol version stands between it and a discharge
        status, body = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, b'{"setpoints":[{"station_id":'
                            b'"SIM-0","p_kw":-0.5}]}')  # fmt: skip
        received = len(sys_.registry["SIM-0"].profiles)
        records = sys_.store.profile_records()
    assert status == 422 and ["body", "setpoints", 0, "p_kw"] in loc_of(body)
    assert received == 0 and records == []


def test_malformed_json_gets_422(tmp_path: Path) -> None:
    with LiveSystem(tmp_path) as sys_:
        status, body = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, b'{"setpoints": [')
        status2, body2 = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, b'{"setpoints": []}')
    assert status == 422 and json.loads(body)["detail"][0]["type"] == "json_invalid"
    assert status2 == 422 and ["body", "setpoints"] in loc_of(body2)


def _store_values(store: Store) -> None:
    """Station A: 25 values, one a second from 2026-01-01T00:00:00Z; B: 5 values; and three A values with
    other spellings of time: +01:00 offset (= 00:00:07Z), no zone (taken as UTC, 00:00:08), and unreadable."""
    a = [(f"2026-01-01T00:00:{s:02d}Z", "Power.Active.Import", float(s), "W") for s in range(25)]
    b = [(f"2026-01-01T00:00:{s:02d}.500Z", "Power.Active.Import", 100.0 + s, "W") for s in range(5)]
    odd = [
        ("2026-01-01T01:00:07+01:00", "SoC", 50.0, "Percent"),
        ("2026-01-01T00:00:08", "SoC", 51.0, "Percent"),
        ("yesterday", "SoC", 52.0, "Percent"),
    ]
    store.apply(values=[("A", 1, a), ("B", 1, b), ("A", 1, odd)])


def test_meter_values_pages_and_time_filters(tmp_path: Path) -> None:
    with LiveSystem(tmp_path) as sys_:
        _store_values(sys_.store)
        client = ApiClient(sys_.url, sys_.token)
        pages = []
        cursor = None
        while True:
            page = client.meter_values(station_id="A", limit=10, cursor=cursor)
            pages.append(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # since 00:00:05Z (inclusive) until 00:00:15Z (exclusive): A's seconds 5..14 (10 values) plus the +01:00
        # one (00:00:07Z) and the zone-less one (00:00:08, UTC) = 12; the unreadable one is counted, not matched.
        window = client.meter_values(station_id="A", since="2026-01-01T00:00:05Z", until="2026-01-01T00:00:15Z")
        # Both stations, since 00:00:03.5Z: A 3.5 < s -> 4..24 (21) + the two readable odd ones + B 3.5, 4.5 (2).
        both = list(client.all_meter_values(since="2026-01-01T00:00:03.5Z", limit=7))
        soc_only = client.meter_values(measurand="SoC")
        bad = http("GET", sys_.url + "/api/v1/meter-values?since=soon", sys_.token)
        bad_cursor = http("GET", sys_.url + "/api/v1/meter-values?cursor=-1", sys_.token)
    # A holds 25 + 3 = 28 values: pages of 10, 10, 8.
    assert [len(p["items"]) for p in pages] == [10, 10, 8]
    ids = [i["id"] for p in pages for i in p["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 28
    assert len(window["items"]) == 12 and window["unreadable_timestamps"] == 1 and window["next_cursor"] is None
    assert sorted(i["value"] for i in window["items"]) == sorted([*map(float, range(5, 15)), 50.0, 51.0])
    assert len(both) == 21 + 2 + 2
    assert sorted(i["value"] for i in soc_only["items"]) == [50.0, 51.0, 52.0]
    assert bad[0] == 422 and ["query", "since"] in loc_of(bad[1])
    assert bad_cursor[0] == 422 and ["query", "cursor"] in loc_of(bad_cursor[1])


def test_openapi_document_lists_the_contract_and_every_reference_resolves(tmp_path: Path) -> None:
    with LiveSystem(tmp_path) as sys_:
        status, body = http("GET", sys_.url + "/openapi.json")
        page = http("GET", sys_.url + "/")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.")
    routes = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert {
        ("/api/v1/stations", "get"),
        ("/api/v1/transactions", "get"),
        ("/api/v1/meter-values", "get"),
        ("/api/v1/charging-needs", "get"),
        ("/api/v1/setpoints", "post"),
        ("/api/v1/events", "get"),
    } <= routes
    refs: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            refs.extend(v for k, v in x.items() if k == "$ref")
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    schemas = doc["components"]["schemas"]
    assert refs and all(r.removeprefix("#/components/schemas/") in schemas for r in refs)
    assert {"station_id", "evse_id", "p_kw"} <= set(schemas["SetpointIn"]["properties"])
    assert page[0] == 200 and b"<canvas" in page[1] and b"http" not in page[1].split(b"<script>")[1]


def test_api_client_errors_are_one_line(tmp_path: Path) -> None:
    with LiveSystem(tmp_path) as sys_:
        with pytest.raises(ApiError, match="401"):
            ApiClient(sys_.url, "wrong").stations()
        with pytest.raises(ApiError, match=r"422 body\.setpoints\.0\.p_kw"):
            ApiClient(sys_.url, sys_.token).post_setpoints([{"station_id": "X", "p_kw": 1e9}])
        with pytest.raises(ApiError, match="not a finite number"):
            ApiClient(sys_.url, sys_.token).post_setpoints([{"station_id": "X", "p_kw": math.nan}])
    with pytest.raises(ApiError, match="expected http"):
        ApiClient("ws://127.0.0.1:1", "t")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_setpoint = st.fixed_dictionaries(
    {},
    optional={
        "station_id": st.text(max_size=60) | st.sampled_from(["A", "SIM-0", "x" * 49]),
        "evse_id": st.integers(-3, 3) | _json_values,
        "p_kw": st.floats() | st.integers() | _json_values,
    },
)
_bodies = st.one_of(
    _json_values,
    st.fixed_dictionaries(
        {"setpoints": st.lists(_setpoint, max_size=4) | _json_values},
        optional={"timeout_s": st.floats() | st.integers() | _json_values},
    ),
)


def test_fuzzed_requests_never_get_a_500(tmp_path: Path) -> None:
    """Hypothesis: JSON bodies of every shape to POST /setpoints (stations that are not connected: nothing can
    be sent) and query strings to GET /meter-values and /transactions; every answer is 200, 422 (or 401 for a
    request without the token), never a 500."""
    with LiveSystem(tmp_path) as sys_:
        statuses: set[int] = set()

        @settings(max_examples=60, suppress_health_check=list(HealthCheck), deadline=None)
        @given(body=_bodies)
        def post(body: object) -> None:
            raw = json.dumps(body, allow_nan=True).encode()
            status, answer = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, raw, timeout_s=60)
            statuses.add(status)
            assert status in (200, 422), (status, answer)
            json.loads(answer)

        @settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
        @given(
            params=st.dictionaries(
                st.sampled_from(["station_id", "since", "until", "limit", "cursor", "measurand", "active"]),
                st.text(max_size=30) | st.integers().map(str) | st.floats().map(str),
                max_size=5,
            ),
            route=st.sampled_from(["/api/v1/meter-values", "/api/v1/transactions"]),
        )
        def get(params: dict[str, str], route: str) -> None:
            q = urllib.parse.urlencode(params)
            status, answer = http("GET", f"{sys_.url}{route}?{q}", sys_.token)
            assert status in (200, 422), (status, answer)
            json.loads(answer)

        post()
        get()
    assert 422 in statuses


_live_setpoint = st.fixed_dictionaries(
    {"station_id": st.sampled_from(["SIM-0", "SIM-1"])},
    optional={
        "evse_id": st.sampled_from([1, 1, 2, 0]) | _json_values,
        "p_kw": st.floats(-12.0, 12.0) | st.floats() | _json_values,
    },
)


def test_fuzzed_set_points_to_connected_stations_never_get_a_500(tmp_path: Path) -> None:
    """Hypothesis (30 bodies): set-points of every shape to the two connected stations (ids drawn from them), so
    that the dispatch path itself runs. Every answer is 200 or 422, never a 500; each set-point a 200 answer
    reports Accepted reached its station (the simulator's count of profiles), and nothing it received lies
    outside the EV's declared limits (SIM-0: 0 to sqrt(3) x 400 V x 16 A = 11.085 kW, no discharge: OCPP 2.0.1;
    SIM-1: +-sqrt(3) x 400 V x 11 A = 7.621 kW, OCPP 2.1 V2X; 11 A = 7.4 kW / 690 W/A rounded, as it declares)."""
    limits_w = {"SIM-0": (0.0, math.sqrt(3) * 400 * 16), "SIM-1": (-math.sqrt(3) * 400 * 11, math.sqrt(3) * 400 * 11)}
    with LiveSystem(tmp_path, EVS) as sys_:
        statuses: set[int] = set()
        accepted = {"SIM-0": 0, "SIM-1": 0}

        @settings(max_examples=30, suppress_health_check=list(HealthCheck), deadline=None)
        @given(setpoints=st.lists(_live_setpoint, max_size=3), timeout_s=st.sampled_from([2, 5]))
        @example(setpoints=[{"station_id": "SIM-1", "evse_id": 1, "p_kw": -1.0}], timeout_s=5)
        def post(setpoints: list[dict[str, object]], timeout_s: int) -> None:
            raw = json.dumps({"setpoints": setpoints, "timeout_s": timeout_s}, allow_nan=True).encode()
            status, answer = http("POST", sys_.url + "/api/v1/setpoints", sys_.token, raw, timeout_s=60)
            statuses.add(status)
            assert status in (200, 422), (status, answer)
            results = json.loads(answer).get("results", [])
            for r in results:
                accepted[r["station_id"]] += r["status"] == "Accepted"

        post()
        received = {sid: list(sys_.registry[sid].profiles) for sid in accepted}
    assert 200 in statuses and 422 in statuses
    for sid, profiles in received.items():
        assert len(profiles) == accepted[sid], sid
        low, high = limits_w[sid]
        for prof in profiles:
            period = prof["chargingSchedule"][0]["chargingSchedulePeriod"][0]
            value = float(period.get("setpoint", period.get("limit")))
            assert low - 0.1 <= value <= high + 0.1, (sid, value)


def test_the_api_and_its_client_do_not_import_the_numeric_stack() -> None:
    code = (
        "import sys, v2gtwin.cyber.csms.api_server, v2gtwin.cyber.api_client; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_api_runs_https_with_the_servers_certificate_under_profile_2(tmp_path: Path) -> None:
    """Security profile 2 on the OCPP side: the API answers over TLS with the server's certificate, which a
    client verifies against the PKI's CA; a plain-HTTP request gets no answer."""
    import asyncio

    from v2gtwin.cyber.csms.api_server import ApiServer
    from v2gtwin.cyber.csms.pki import init_pki
    from v2gtwin.cyber.csms.server import Csms

    pki = init_pki(tmp_path / "pki", [])
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario() -> tuple[list[dict[str, object]], str, str]:
        csms = Csms(
            store,
            port=0,
            security_profile=2,
            certfile=str(pki / "server.pem"),
            keyfile=str(pki / "server.key"),
        )
        async with csms, ApiServer(csms, port=0, ssl_context=csms.api_ssl_context()) as api:
            token = api.tokens.create("tls")
            stations = await asyncio.to_thread(ApiClient(api.url, token, cafile=str(pki / "ca.pem")).stations)
            plain = api.url.replace("https://", "http://")
            try:
                await asyncio.to_thread(ApiClient(plain, token, timeout_s=5).stations)
                plain_error = ""
            except ApiError as exc:
                plain_error = str(exc)
            try:
                await asyncio.to_thread(ApiClient(api.url, token, timeout_s=5).stations)  # system CAs only
                unverified_error = ""
            except ApiError as exc:
                unverified_error = str(exc)
            return stations, plain_error, unverified_error

    stations, plain_error, unverified_error = asyncio.run(scenario())
    assert stations == []
    assert "GET /api/v1/stations" in plain_error
    assert "CERTIFICATE_VERIFY_FAILED" in unverified_error


def test_a_status_change_after_a_read_shows_in_the_next_read(tmp_path: Path) -> None:
    """The API keeps what it read of the station tables until the central system commits a change to them: a
    StatusNotification sent after a first read is in the second (and the EV's needs leave with it)."""
    import datetime as dt

    with LiveSystem(tmp_path, [SimEV()]) as sys_:
        client = ApiClient(sys_.url, sys_.token)
        first = client.stations()[0]["evses"][0]["status"]
        needs_before = len(client.charging_needs())
        station = sys_.registry["SIM-0"]
        now = dt.datetime.now(dt.UTC).isoformat()
        request = station.calls.StatusNotification(
            timestamp=now, connector_status="Available", evse_id=1, connector_id=1
        )
        sys_.call(station.call(request))
        second = client.stations()[0]["evses"][0]["status"]
        needs_after = len(client.charging_needs())
    assert (first, second) == ("Occupied", "Available")
    assert (needs_before, needs_after) == (1, 0)


def test_the_event_stream_sends_updates_and_ends_when_its_token_is_revoked(tmp_path: Path) -> None:
    import urllib.request

    with LiveSystem(tmp_path, [SimEV()]) as sys_:
        req = urllib.request.Request(sys_.url + "/api/v1/events", headers={"Authorization": f"Bearer {sys_.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            event, data = resp.readline(), resp.readline()
            sys_.tokens.revoke(sys_.tokens.list_tokens()[0]["id"])
            rest = resp.read()  # returns once the server ends the stream
        content_type = resp.headers["Content-Type"]
    assert content_type.startswith("text/event-stream")
    assert event == b"event: update\n" and data.startswith(b"data: ")
    state = json.loads(data[6:])
    # One simulated EV drawing its declared power (11 kW nominal -> 16 A -> sqrt(3) * 400 * 16 = 11,085.1 W).
    assert state["stations_connected"] == 1 and state["now"]["p_kw"] == pytest.approx(11.0851, abs=1e-4)
    assert rest.count(b"event: update") <= 3  # the stream ended (within the token cache's 0.2 s and a tick)
