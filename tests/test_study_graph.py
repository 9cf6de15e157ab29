"""The study as a graph of steps: each target runs exactly the steps it needs, once; a failed step is recorded
and only the steps that need it are skipped; cycles and unknown targets are errors; `v2gtwin study` writes
both files and exits 1 when a step failed; a command whose step failed gives one line.

The needs are hand-listed here from what each step method reads (study.py), not taken from the step table, so a
wrong declaration fails these tests.
"""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.errors import ConvergenceError, DataError, StepFailedError
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

# No OCPP stations and no live OCPP measurement: the command path is computed, nothing waits on a socket.
CYBER = {"n_stations": 0, "measure_ocpp_exchanges": 0}
SMALL = parse_scenario({"fleet": {"n_evs": 60}, "time": {"n_steps": 24, "dt_s": 3600}, "cyber": CYBER})
SMALL_TOML = (
    "[fleet]\nn_evs = 60\n[time]\nn_steps = 24\ndt_s = 3600\n[cyber]\nn_stations = 0\nmeasure_ocpp_exchanges = 0\n"
)


def _downstream(step: str) -> set[str]:
    """Every step that needs ``step``, directly or through others, by the hand-listed needs."""
    out: set[str] = set()
    while grown := {s for s, needs in NEEDS.items() if s not in out and needs & (out | {step})}:
        out |= grown
    return out


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
    assert _downstream("feeder") == downstream
    assert chain.failures == {"feeder": "RuntimeError: no power flow second line"}
    assert set(chain.skipped) == downstream
    assert chain.skipped["hosting"] == "needs feeder, which failed"
    assert chain.skipped["battery"] == "needs schedule, which needs feeder, which failed"
    assert set(calls) == set(NEEDS) - downstream  # the feeder was tried, every independent step ran
    assert set(chain.timings_s) == set(calls)


def test_failed_step_frees_what_its_frames_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed step's error is kept without its traceback, so the step's arrays are freed (a 1,000,000-EV study
    must not keep gigabytes alive for a failure message)."""

    class Big:
        pass

    ref: list[weakref.ref[Big]] = []

    def fails(self: StudyChain) -> None:
        held = Big()
        ref.append(weakref.ref(held))
        try:
            raise KeyError("inner")
        except KeyError:
            raise RuntimeError("outer") from None

    _stub_steps(monkeypatch)
    monkeypatch.setattr(StudyChain, "cascade", fails)
    chain = StudyChain(SMALL)
    with pytest.raises(StepFailedError, match="RuntimeError: outer"):
        chain.get("cascade")
    gc.collect()
    assert ref[0]() is None
    assert chain.failures == {"cascade": "RuntimeError: outer"}


def test_get_returns_what_the_commands_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """``get(step)`` returns the product the CLI formats (hand-listed from the commands in cli/)."""
    _stub_steps(monkeypatch)
    for step in StudyChain.STEPS:  # each stub sets everything its step produces to a marker

        def marked(self: StudyChain, step: str = step) -> None:
            for attr in self.steps[step].produces:
                setattr(self, attr, f"{step}.{attr}")

        monkeypatch.setattr(StudyChain, step, marked)
    chain = StudyChain(SMALL)
    want = {
        "network": "network.network_",  # network feeders: the network section
        "feeder": "feeder.feeder_",  # feeder voltvar, network envelope, protection faults: the feeder
        "losses": "losses.dispatch_",  # feeder losses: the dispatch comparison
        "protection": "protection.protection_",  # protection coordination
        "resilience": "resilience.resilience_",  # resilience
    }
    assert {step: chain.get(step) for step in want} == want


def test_get_raises_the_steps_error_or_step_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    fail = {"feeder": DataError("feeder.bus: bad"), "cascade": ZeroDivisionError("x"), "agc": ConvergenceError("y")}
    _stub_steps(monkeypatch, fail)
    chain = StudyChain(SMALL)
    with pytest.raises(DataError, match=r"feeder\.bus"):  # v2gtwin's own error (bad input): raised again as is
        chain.get("hosting")
    with pytest.raises(StepFailedError, match="step cascade failed: ZeroDivisionError: x"):
        chain.get("cascade")
    with pytest.raises(StepFailedError, match="step agc failed: ConvergenceError: y"):  # computation, not input
        chain.get("agc")
    assert chain.get("frequency") is None  # the stub produced nothing; independent steps still answer


def test_result_sections_follow_what_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real steps on a small fleet: the feeder fails; the envelope and the command path (asked for) still run."""

    def boom(self: StudyChain) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(StudyChain, "feeder", boom)
    res = StudyChain(SMALL).run(["hosting", "envelope", "cyber_path"])
    assert not res.ok
    assert res.failures == {"feeder": "RuntimeError: boom"}
    assert res.skipped["hosting"] == "needs feeder, which failed"
    assert res.skipped["frequency"] == "not asked for"
    ran = {"build_fleet", "uncontrolled", "network", "envelope", "cyber_path"}  # hosting's needs but the feeder
    assert set(res.skipped) == set(NEEDS) - ran - {"feeder"}
    assert set(res.timings_s) == ran | {"feeder"}
    # The fleet section is built from build_fleet, envelope and uncontrolled, which all ran.
    assert res.fleet is not None and res.fleet.summary["n_evs"] == 60 and res.cyber_path is not None
    assert res.feeder is None and res.services is None and res.markets is None and res.resilience is None
    data = res.to_dict()
    assert data["ok"] is False and data["failures"] == res.failures and data["feeder"] is None
    assert data["skipped"]["hosting"] == "needs feeder, which failed"


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
    assert code == 1  # the computation failed (not bad input)
    after = _downstream("uncontrolled")
    assert after == {
        "network",
        "feeder",
        "hosting",
        "losses",
        "protection",
        "frequency",
        "agc",
        "reserve",
        "cascade",
    } | {"battery_cost", "markets", "schedule", "battery", "resilience"}
    order = [n for n in StudyChain.STEPS if n in after]
    assert (
        err
        == f"error: step uncontrolled failed: RuntimeError: out of luck (not run because of it: {', '.join(order)})\n"
    )
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["ok"] is False and data["failures"] == {"uncontrolled": "RuntimeError: out of luck"}
    assert data["skipped"]["network"] == "needs uncontrolled, which failed"
    assert data["fleet"] is None and data["compliance"] is not None  # compliance needs only the fleet
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="study-failures"' in html and "out of luck" in html
    # A box in place of each section that needs the failed step; the compliance section is there.
    for title in (
        "Fleet",
        "Feeder",
        "Bulk-grid services",
        "Markets and scheduling",
        "Resilience of a critical facility",
    ):
        assert f'<h2>{title}</h2><div class="failed">Not computed:' in html, title
    assert "Compliance (IEEE 1547-2018) of the study's own inverters" in html


def test_study_cli_exits_2_when_a_step_failed_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad_file(self: StudyChain) -> None:
        raise DataError("fleet.sessions_csv: column arrival_time missing")

    monkeypatch.setattr(StudyChain, "build_fleet", bad_file)  # everything but the command path needs the fleet
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, _, err = run_cli(capsys, "study", "-s", str(scen), "-o", str(tmp_path / "o"))
    assert_one_line_error(code, err)
    assert "step build_fleet failed: DataError: fleet.sessions_csv: column arrival_time missing" in err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["ok"] is False and set(data["skipped"]) == _downstream("build_fleet")


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


def test_study_cli_target_runs_only_its_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, _, err = run_cli(capsys, "study", "-s", str(scen), "-o", str(tmp_path / "o"), "--target", "compliance")
    assert code == 0, err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    # compliance needs only build_fleet (hand-listed): the rest is "not asked for".
    assert set(data["timings_s"]) == {"build_fleet", "compliance"}
    assert data["skipped"] == {s: "not asked for" for s in StudyChain.STEPS if s not in {"build_fleet", "compliance"}}
    assert data["ok"] is True and data["compliance"] is not None and data["fleet"] is None
    code, _, err = run_cli(capsys, "study", "-s", str(scen), "-o", str(tmp_path / "new"), "-t", "nope")
    assert_one_line_error(code, err)
    assert "study target 'nope': not a step; one of build_fleet," in err
    assert not (tmp_path / "new").exists()  # nothing written


def test_asking_for_one_step_of_a_section_returns_that_section() -> None:
    """Asking for hosting (or envelope) fills the section it belongs to: the old code ran hosting and then
    returned feeder=None because losses, the section's other step, was not asked for."""
    res = StudyChain(SMALL).run(["hosting"])
    # hosting is in the feeder section (feeder, hosting, losses): all three run, hand-listed from SECTION_STEPS.
    assert {"feeder", "hosting", "losses"} <= set(res.timings_s) and res.ok
    assert res.feeder is not None and res.feeder.hosting is not None
    assert res.services is None and res.markets is None  # not asked for
    res = StudyChain(SMALL).run("envelope")
    assert set(res.timings_s) == {"build_fleet", "envelope", "uncontrolled"}
    assert res.fleet is not None and res.fleet.summary["n_evs"] == 60
