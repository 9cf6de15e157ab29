"""The study as a graph of steps: each target runs exactly the steps it needs, once; a failed step is recorded
and only the steps that need it are skipped; cycles and unknown targets are errors; `v2gtwin study` writes
both files and exits 1 when a step failed; a command whose step failed gives one line.

The needs are hand-listed here from what each step method reads (study.py), not taken from the step table, so a
wrong declaration fails these tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.errors import DataError, StepFailedError
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain
from v2gtwin.study_graph import Step, StudyGraphError, check_steps

#: What each step reads, hand-listed from its method in study.py (direct needs only).
NEEDS = {
    "build_fleet": set(),
    "envelope": {"build_fleet"},
    "uncontrolled": {"build_fleet"},
    "network": {"build_fleet", "uncontrolled"},
    "feeder": {"build_fleet", "uncontrolled", "network"},
    "hosting": {"feeder"},
    "losses": {"feeder"},
    "protection": {"feeder"},
    "frequency": {"build_fleet", "uncontrolled"},
    "cyber_path": set(),
    "agc": {"build_fleet", "uncontrolled", "network", "cyber_path"},
    "reserve": {"build_fleet", "uncontrolled", "network"},
    "cascade": {"build_fleet", "uncontrolled"},
    "battery_cost": {"build_fleet", "uncontrolled"},
    "markets": {"build_fleet", "uncontrolled", "network", "battery_cost", "cyber_path"},
    "schedule": {"build_fleet", "uncontrolled", "network", "feeder", "battery_cost"},
    "battery": {"build_fleet", "uncontrolled", "battery_cost", "markets", "schedule"},
    "resilience": {"build_fleet", "uncontrolled", "feeder"},
    "cyber": {"build_fleet"},
    "compliance": {"build_fleet"},
}

SMALL = parse_scenario({"fleet": {"n_evs": 60}, "time": {"n_steps": 24, "dt_s": 3600}, "cyber": {"n_stations": 0}})
SMALL_TOML = "[fleet]\nn_evs = 60\n[time]\nn_steps = 24\ndt_s = 3600\n[cyber]\nn_stations = 0\n"


def _stub_steps(monkeypatch: pytest.MonkeyPatch, fail: dict[str, Exception] | None = None) -> list[str]:
    """Replace every step method by a no-op that records its call (or raises ``fail[name]``); the calls list."""
    calls: list[str] = []
    fail = fail or {}

    def make(name: str):  # type: ignore[no-untyped-def]
        def step(self: StudyChain) -> None:
            calls.append(name)
            if name in fail:
                raise fail[name]

        return step

    for name in StudyChain.STEPS:
        monkeypatch.setattr(StudyChain, name, make(name))
    return calls


def test_declared_needs_are_what_each_step_reads() -> None:
    assert {s.name: set(s.needs) for s in StudyChain.STEP_TABLE} == NEEDS
    # Today's step names, in an order where every step comes after what it needs.
    order = StudyChain.STEPS
    assert set(order) == set(NEEDS)
    assert all(order.index(n) < order.index(s) for s, needs in NEEDS.items() for n in needs)


def test_one_target_runs_exactly_its_needs_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stub_steps(monkeypatch)
    chain = StudyChain(SMALL)
    chain.get("battery")
    # battery -> schedule -> feeder -> network -> uncontrolled -> build_fleet; markets -> cyber_path, battery_cost
    want = {"build_fleet", "uncontrolled", "network", "feeder", "battery_cost", "cyber_path", "markets", "schedule"}
    assert sorted(calls) == sorted(want | {"battery"})  # sorted: each exactly once
    assert all(calls.index(n) < calls.index(s) for s in calls for n in NEEDS[s])
    # Asking again, or for a step already run, runs nothing; a new target runs only what is new.
    chain.get("battery")
    chain.get("schedule")
    chain.get("hosting")
    assert calls[len(want) + 1 :] == ["hosting"]


def test_failed_step_is_recorded_dependents_skipped_others_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stub_steps(monkeypatch, {"feeder": RuntimeError("no power flow\nsecond line")})
    monkeypatch.setattr(StudyChain, "result", lambda self: None)  # the runner only (the stubs produce nothing)
    chain = StudyChain(SMALL)
    chain.run()
    # Everything that needs feeder, directly or through another step, by the hand-listed needs.
    downstream = {"hosting", "losses", "protection", "schedule", "resilience", "battery"}
    assert chain.failures == {"feeder": "RuntimeError: no power flow second line"}
    assert set(chain.skipped) == downstream
    assert chain.skipped["hosting"] == "needs feeder, which failed"
    assert chain.skipped["battery"] == "needs schedule, which needs feeder, which failed"
    assert set(calls) == set(NEEDS) - downstream  # the feeder was tried, every independent step ran
    assert set(chain.timings_s) == set(calls)


def test_get_raises_the_steps_error_or_step_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_steps(monkeypatch, {"feeder": DataError("feeder.bus: bad"), "cascade": ZeroDivisionError("x")})
    chain = StudyChain(SMALL)
    with pytest.raises(DataError, match=r"feeder\.bus"):  # v2gtwin's own error (bad input): raised again as is
        chain.get("hosting")
    with pytest.raises(StepFailedError, match="step cascade failed: ZeroDivisionError: x"):
        chain.get("cascade")
    assert chain.get("frequency") is None  # the stub produced nothing; independent steps still answer


def test_result_sections_follow_what_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real steps on a small fleet: the feeder fails, the cascade and the command path (asked for) still run."""

    def boom(self: StudyChain) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(StudyChain, "feeder", boom)
    res = StudyChain(SMALL).run(["hosting", "cascade", "cyber_path"])
    assert not res.ok
    assert res.failures == {"feeder": "RuntimeError: boom"}
    assert res.skipped["hosting"] == "needs feeder, which failed"
    assert res.skipped["frequency"] == "not asked for"
    assert set(res.skipped) == set(NEEDS) - {
        "build_fleet",
        "uncontrolled",
        "network",
        "feeder",
        "cascade",
        "cyber_path",
    }
    assert res.cyber_path is not None
    assert res.feeder is None and res.fleet is None and res.services is None and res.markets is None
    data = res.to_dict()
    assert data["ok"] is False and data["failures"] == res.failures and data["feeder"] is None


def test_cycle_unknown_need_and_unknown_target_are_errors() -> None:
    with pytest.raises(StudyGraphError, match="cycle"):
        check_steps([Step("a", ("b",), ()), Step("b", ("c",), ()), Step("c", ("a",), ())])
    with pytest.raises(StudyGraphError, match="needs \\['x'\\]"):
        check_steps([Step("a", ("x",), ())])
    with pytest.raises(StudyGraphError, match="duplicate"):
        check_steps([Step("a", (), ()), Step("a", (), ())])
    # Ties follow the table; needs come first: c needs a, b needs nothing.
    assert check_steps([Step("c", ("a",), ()), Step("b", (), ()), Step("a", (), ())]) == ("b", "a", "c")
    with pytest.raises(StudyGraphError, match="'nope': not a step"):
        StudyChain(SMALL).run(["nope"])


def test_study_cli_writes_both_files_and_exits_1_when_a_step_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: StudyChain) -> None:
        raise RuntimeError("out of luck")

    monkeypatch.setattr(StudyChain, "uncontrolled", boom)  # most of the study needs it: a short run
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, _, err = run_cli(capsys, "study", "-s", str(scen), "-o", str(tmp_path / "o"))
    assert code == 1
    assert "error: step uncontrolled failed: RuntimeError: out of luck" in err and "Traceback" not in err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["ok"] is False and data["failures"] == {"uncontrolled": "RuntimeError: out of luck"}
    assert data["skipped"]["network"] == "needs uncontrolled, which failed"
    assert data["fleet"] is None and data["compliance"] is not None  # compliance needs only the fleet
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="study-failures"' in html and "out of luck" in html


def test_command_whose_step_failed_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)

    def bad_input(self: StudyChain) -> None:
        raise DataError("feeder.base_load_csv: column p_kw missing")

    monkeypatch.setattr(StudyChain, "feeder", bad_input)
    code, _, err = run_cli(capsys, "resilience", "-s", str(scen))
    assert_one_line_error(code, err)  # bad input: exit 2
    assert "column p_kw missing" in err

    def broken(self: StudyChain) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(StudyChain, "feeder", broken)
    code, _, err = run_cli(capsys, "resilience", "-s", str(scen))
    assert code == 1  # the computation failed
    assert err == "error: step feeder failed: ZeroDivisionError: division by zero\n"
