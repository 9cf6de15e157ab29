"""The load benchmark's set-point checks come from what the simulated stations received, not from the dict the
harness meant to send: hand-made cases of the check, and a small run of the benchmark itself."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from v2gtwin.cyber.csms.pg_local import LocalPostgres

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_csms.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_csms", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_setpoint_checks_by_hand() -> None:
    bench = _bench()
    targets = {"A": 1400.0, "B": 1400.1, "C": 1400.2}
    # Each station its own value, as targeted: 3 profiles, distinct, 3 as targeted.
    own = {"A": [1400.0], "B": [1400.1], "C": [1400.2]}
    assert bench.setpoint_checks(own, targets) == {
        "profiles_received": 3,
        "distinct_setpoints": True,
        "setpoints_as_targeted": 3,
    }
    # One frame for all (1400.0 three times): not distinct, only A as targeted.
    same = {"A": [1400.0], "B": [1400.0], "C": [1400.0]}
    assert bench.setpoint_checks(same, targets) == {
        "profiles_received": 3,
        "distinct_setpoints": False,
        "setpoints_as_targeted": 1,
    }
    # Nothing received: not "distinct" (no evidence), none as targeted.
    assert bench.setpoint_checks({}, targets)["distinct_setpoints"] is False
    # The simulator's output line is read; a process cut short (no JSON line) contributes nothing.
    lines = ['{"rss_kb": 1000, "received_w": {"A": [1400.0]}}\n', "", "partial output\n", '{"rss_kb": 1000, "rec']
    assert bench.received_set_points(lines) == {"A": [1400.0]}


def test_a_small_benchmark_run_reports_the_set_points_received(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six stations, each targeted 1.4 kW + 0.1 W x k (k = 0..5): each receives its own value in its frame."""
    bench = _bench()
    monkeypatch.chdir(tmp_path)  # the benchmark's database lands in a temporary folder
    out = asyncio.run(bench.main_async(6, 1, 0.0, 5.0, deadline_s=120.0))
    assert out["cut_short"] is None and out["accepted"] == 6
    assert out["profiles_received"] == 6 and out["distinct_setpoints"] is True
    assert out["setpoints_as_targeted"] == 6
    # The same through the HTTP API: six stations read, each targeted 3 kW + 0.1 W x k and receiving it.
    assert out["api_read_stations"] == 6 and out["api_accepted"] == 6 and out["api_setpoints_as_targeted"] == 6
    assert out["api_read_10k_s"] is None  # not 10,000 stations
    assert isinstance(out["api_read_cold_s"], float) and out["api_read_cold_s"] > 0  # the first, uncached read
    assert set(bench.API_KEYS) <= set(out)  # the names a cut-short run fills with null are the ones a run gives


def test_a_run_cut_short_keeps_the_api_keys_as_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline of 0 s: no station is in when the wait ends, the run is cut short before the API round; its keys
    are still in the line, null (a reader's column never goes missing)."""
    bench = _bench()
    monkeypatch.chdir(tmp_path)
    out = asyncio.run(bench.main_async(2, 1, 0.0, 5.0, deadline_s=0.0))
    assert out["cut_short"] is not None and out["stations"] < 2
    for key in (*bench.API_KEYS, "api_setpoints_as_targeted"):
        assert key in out and out[key] is None, key
    assert {"api_read_s", "api_read_10k_s", "api_dispatch_p99_s"} <= set(bench.API_KEYS)


class _SharedServer:
    """The session's PostgreSQL server as the benchmark's throwaway one: a fresh schema, and a ``stop`` that leaves
    the server to the session fixture."""

    def __init__(self, server: LocalPostgres) -> None:
        self._url = server.create_schema()

    def url(self) -> str:
        return self._url

    def stop(self) -> None:
        pass


@pytest.mark.slow  # about 7 s: the simulators hold their connections 5 s
def test_a_small_benchmark_run_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_server: LocalPostgres
) -> None:
    """``--db postgresql`` end to end on a real PostgreSQL server (the session's, a fresh schema): six stations,
    one MeterValues report of 3 sampled values each: 6 x 1 x 3 = 18 values committed and stored; both dispatches
    reach every station with its own set-point."""
    bench = _bench()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "start_local_postgres", lambda: _SharedServer(pg_server))
    out = asyncio.run(bench.main_async(6, 1, 0.0, 5.0, deadline_s=120.0, db="postgresql"))
    assert out["db"] == "postgresql" and out["cut_short"] is None
    assert out["meter_values_committed"] == 18 and out["meter_values_stored"] == 18
    assert out["accepted"] == 6 and out["setpoints_as_targeted"] == 6
    assert out["api_accepted"] == 6 and out["api_setpoints_as_targeted"] == 6
