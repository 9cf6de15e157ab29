"""`v2gtwin sweep`: the grid of --param values, every scenario validated before any work, rows equal to direct
studies of the same scenarios, a failed scenario as a row with its error, resuming, and one-line errors.

The sweeps run on one 2-worker LocalCluster of processes, started the way the command starts its own, and reached
with --scheduler (so the command's connecting path runs too); one test uses it, so that it starts once. The cheap target
``envelope,uncontrolled`` (the fleet section) keeps each scenario under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.errors import ScenarioError
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain
from v2gtwin.study_summary import calc_kpis
from v2gtwin.sweep import derive_scenario, parse_param, plan_sweep
from v2gtwin.sweep_run import open_client

#: The base scenario: a small fleet on the one feeder, a day in hours; ACN sessions of a day with no data, so a
#: scenario switched to fleet.source = "acn" fails in its build_fleet step (valid for the schema).
BASE = {"fleet": {"n_evs": 40, "acn_date": "1999-01-01"}, "time": {"n_steps": 24, "dt_s": 3600}}
BASE_TOML = '[fleet]\nn_evs = 40\nacn_date = "1999-01-01"\n[time]\nn_steps = 24\ndt_s = 3600\n'
TARGET = "envelope,uncontrolled"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """The command's own LocalCluster (``open_client`` without --scheduler) of 2 worker processes, shared by the
    sweeps here through --scheduler; its client counts task runs."""
    with open_client(None, 2) as (client, words):
        assert words.startswith("LocalCluster: 2 worker processes x 1 task thread")
        # Each worker process gets its share of the cores for numba: half of them each, at least one.
        share = str(max(1, len(os.sched_getaffinity(0)) // 2))
        assert set(client.run(lambda: os.environ.get("NUMBA_NUM_THREADS")).values()) == {share}
        yield client


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    p = tmp_path / "base.toml"
    p.write_text(BASE_TOML)
    return p


def _sweep(capsys: pytest.CaptureFixture[str], client: Any, base: Path, out: Path, *extra: str) -> tuple[int, dict]:
    """Run the 2x2 sweep on the shared cluster; (exit code, its --json summary), counting task runs on it."""
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        code, text, err = run_cli(
            capsys,
            "sweep",
            str(base),
            "--param",
            "fleet.n_evs=20,30",
            "--param",
            "fleet.source=synthetic,acn",
            "--target",
            TARGET,
            "--scheduler",
            client.scheduler.address,
            "--out",
            str(out),
            "--json",
            *extra,
        )
    assert code in (0, 1), err
    summary = json.loads(text)
    summary["tasks_run"] = sum(1 for t in ts.data if str(t["key"]).startswith("v2gtwin-sweep-"))
    return code, summary


def _hash16(scenario_dict: dict) -> str:
    """The scenario id by hand: SHA-256 of the validated scenario's JSON, keys sorted, no spaces; 16 hex digits."""
    text = json.dumps(parse_scenario(scenario_dict).model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_rows_against_direct_studies(table: pd.DataFrame) -> None:
    """Each row against a direct study of its scenario, written out here by hand."""
    # The grid in order, the first --param varying slowest.
    grid = [(20, "synthetic"), (20, "acn"), (30, "synthetic"), (30, "acn")]
    assert list(zip(table["fleet.n_evs"], table["fleet.source"], strict=True)) == grid
    assert list(table["case"]) == [0, 1, 2, 3]
    for row in table.to_dict(orient="records"):
        d = {"fleet": BASE["fleet"] | {"n_evs": row["fleet.n_evs"], "source": row["fleet.source"]}}
        scen_dict = BASE | d
        assert row["scenario_id"] == _hash16(scen_dict)
        assert row["target"] == TARGET
        direct = StudyChain(parse_scenario(scen_dict)).run(targets=TARGET.split(","))
        if row["fleet.source"] == "acn":  # no ACN sessions on 1999-01-01: build_fleet fails, the row says so
            assert row["status"] == "failed" and row["steps_failed"] == "build_fleet"
            assert row["error"] == f"build_fleet: {direct.failures['build_fleet']}"
            assert "DataError" in row["error"]
            assert row["p_peak_kw"] is None or pd.isna(row["p_peak_kw"])
            continue
        assert row["status"] == "ok" and row["steps_failed"] == "" and row["error"] is None
        assert direct.fleet is not None
        # The peak by hand from the direct run's aggregate, then every indicator field by field.
        assert row["p_peak_kw"] == pytest.approx(float(direct.fleet.p_uncontrolled_kw.max()), rel=1e-9)
        for k in calc_kpis(direct):
            got, passed = row[k.key], row[f"{k.key}_passed"]
            if k.value is None:
                assert got is None or pd.isna(got), k.key
            else:
                assert got == pytest.approx(k.value, rel=1e-9), k.key
            assert (None if passed is None or pd.isna(passed) else bool(passed)) == k.passed, k.key


@pytest.mark.slow
def test_rows_equal_direct_studies_a_failed_scenario_is_a_row_and_a_rerun_resumes(
    capsys: pytest.CaptureFixture[str], cluster: Any, base_file: Path, tmp_path: Path
) -> None:
    """One test, so that the cluster starts once even when pytest-xdist spreads this module's tests."""
    out = tmp_path / "out"
    code, first = _sweep(capsys, cluster, base_file, out)
    assert code == 1  # two scenarios failed: the exit status says so
    assert (first["n_cases"], first["n_run"], first["n_ok"], first["n_failed"]) == (4, 4, 2, 2)
    assert first["tasks_run"] == 4
    before = pd.read_parquet(out / "sweep.parquet")
    _check_rows_against_direct_studies(before)
    # Resuming.
    _, again = _sweep(capsys, cluster, base_file, out)  # everything stored: nothing runs
    assert (again["tasks_run"], again["n_done_before"], again["n_run"]) == (0, 4, 0)
    assert again["cluster"].startswith("none")  # nothing to run: the table is gathered without a cluster
    rows = sorted((out / "rows").glob("*.json"))
    assert len(rows) == 4
    ok_row = next(p for p in rows if json.loads(p.read_text())["status"] == "ok")
    ok_row.unlink()
    _, third = _sweep(capsys, cluster, base_file, out)  # one row missing: that scenario alone runs
    assert (third["tasks_run"], third["n_done_before"], third["n_run"]) == (1, 3, 1)
    after = pd.read_parquet(out / "sweep.parquet")
    cols = ["scenario_id", "status", "p_peak_kw", "error"]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    _, retried = _sweep(capsys, cluster, base_file, out, "--retry-failed")  # the two failed ones run again
    assert (retried["tasks_run"], retried["n_done_before"]) == (2, 2)


# --- bad input: one line, exit 2, nothing written -------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "fleet.n_ev=1,2"], "unknown key 'n_ev'"),
        (["--param", "fleet.n_evs=0,5"], "fleet.n_evs: Input should be greater than or equal to 1; got 0"),
        (["--param", "fleet.n_evs=5,ten"], "fleet.n_evs"),
        (["--param", "fleet.n_evs="], "no values after '='"),
        (["--param", "fleet.n_evs=1,,2"], "an empty value"),
        (["--param", "fleet.n_evs"], "expected KEY=V1,V2"),
        (["--param", "a..b=1"], "dotted scenario path"),
        (["--param", "=1"], "dotted scenario path"),
        (["--param", "fleet.n_evs=1,1"], "given twice"),
        (["--param", "seed.x=1"], "seed is a value"),
        (["--param", "fleet.n_evs=1", "--param", "fleet.n_evs=2"], "more than once"),
        (["--param", "fleet.soc_target_pu=0.1"], "soc_min_pu <= soc_target_pu"),
        ([], "give at least one"),
        (["--param", "fleet.n_evs=5", "--target", "nope"], "'nope' is not a step"),
        (["--param", "fleet.n_evs=5", "--scheduler", "localhost:8786"], "expected tcp://HOST:PORT"),
        (["--param", "fleet.n_evs=5", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], base_file: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "sweep", str(base_file), *args, "--out", str(out))
    assert_one_line_error(code, err)
    assert needle in err
    assert not out.exists()


def test_unreachable_scheduler_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], base_file: Path, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = tmp_path / "out"
        code, _, err = run_cli(
            capsys,
            "sweep",
            str(base_file),
            "-p",
            "seed=1",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--connect-timeout-s",
            "0.5",
            "--out",
            str(out),
        )
    assert_one_line_error(code, err)
    assert f"tcp://127.0.0.1:{port}: cannot reach the scheduler within 0.5 s" in err
    assert not out.exists()


# --- reading --param and planning the grid --------------------------------------------------------------------
def test_param_values_are_typed_like_toml() -> None:
    assert parse_param("fleet.n_evs=1000,10000").values == (1000, 10000)
    assert parse_param("feeder.peak_load_scale=0.8,1").values == (0.8, 1)
    assert parse_param("feeder.name=ieee33,'synthetic'").values == ("ieee33", "synthetic")
    assert parse_param("fleet.acn_date=2019-07-09").values == ("2019-07-09",)  # a date stays text
    assert parse_param("fleet.battery_share=[0.5, 0.5],[1.0]").values == ([0.5, 0.5], [1.0])
    assert parse_param("cyber.path = 'lte' , wired").values == ("lte", "wired")


def test_grid_is_every_combination_first_param_slowest() -> None:
    base = parse_scenario(BASE)
    plan = plan_sweep(base, [parse_param("fleet.n_evs=10,20"), parse_param("seed=1,2,3")])
    got = [(c.params["fleet.n_evs"], c.params["seed"]) for c in plan.cases]
    assert got == [(10, 1), (10, 2), (10, 3), (20, 1), (20, 2), (20, 3)]
    assert plan.n_unique == 6
    assert [c.scenario.fleet.n_evs for c in plan.cases] == [10, 10, 10, 20, 20, 20]
    # An int given for a float field is stored as the scenario holds it (a float).
    (case,) = plan_sweep(base, [parse_param("feeder.peak_load_scale=1")]).cases
    assert case.params == {"feeder.peak_load_scale": 1.0} and isinstance(case.params["feeder.peak_load_scale"], float)


def test_derive_reaches_into_lists_and_keeps_the_rest() -> None:
    base = parse_scenario(
        BASE | {"network": {"feeders": [{"source": "ieee33"}, {"source": "synthetic", "count": 2, "n_bus": 40}]}}
    )
    scen = derive_scenario(base, {"network.feeders.1.count": 3}, "t")
    assert base.network is not None and scen.network is not None
    assert scen.network.feeders[1].count == 3 and scen.network.feeders[1].n_bus == 40
    assert scen.network.feeders[0] == base.network.feeders[0]
    with pytest.raises(ScenarioError, match=r"network\.feeders: no entry 5"):
        derive_scenario(base, {"network.feeders.5.count": 3}, "t")
    with pytest.raises(ScenarioError, match="not set in the scenario"):
        derive_scenario(parse_scenario(BASE), {"network.feeders.0.count": 3}, "t")


def test_a_rerun_skips_only_whole_rows_of_this_version(tmp_path: Path) -> None:
    """Which stored rows a rerun skips: ok and failed rows of this version; not lost, other-version, torn ones."""
    from v2gtwin import __version__
    from v2gtwin.sweep_run import read_done_rows

    plan = plan_sweep(parse_scenario(BASE), [parse_param("seed=1,2,3,4,5,6")], target=TARGET)
    rows = tmp_path / "rows"
    rows.mkdir()
    ids = [c.scenario_id for c in plan.cases]
    stored = [
        {"status": "ok", "v2gtwin_version": __version__},  # skipped
        {"status": "failed", "v2gtwin_version": __version__},  # skipped (unless --retry-failed)
        {"status": "lost", "v2gtwin_version": __version__},  # runs again
        {"status": "ok", "v2gtwin_version": "0.0.0-other"},  # runs again: another version's figures
    ]
    for sid, row in zip(ids, stored, strict=False):
        (rows / f"{sid}-envelope+uncontrolled.json").write_text(json.dumps(row))
    (rows / f"{ids[4]}-envelope+uncontrolled.json").write_text('{"status": "o')  # torn: runs again
    (rows / f"{ids[5]}-study.json").write_text(json.dumps(stored[0]))  # another target's row: runs again
    assert set(read_done_rows(plan, tmp_path)) == {ids[0], ids[1]}
    assert set(read_done_rows(plan, tmp_path, retry_failed=True)) == {ids[0]}


def test_targets_in_study_order_each_once() -> None:
    from v2gtwin.sweep import check_target

    steps = ("build_fleet", "envelope", "uncontrolled", "feeder")  # a study's order, as StudyChain.STEPS gives it
    assert check_target("uncontrolled,envelope,uncontrolled", steps) == "envelope,uncontrolled"
    with pytest.raises(ScenarioError, match="'hosting' is not a step of the study; allowed: build_fleet, envelope"):
        check_target("envelope,hosting", steps)


def test_a_dead_worker_is_lost_a_raising_task_is_failed_and_the_table_is_still_written(
    capsys: pytest.CaptureFixture[str], cluster: Any, base_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task itself (not the study) dies or raises: the scenario whose worker process exits (os._exit) is
    "lost" (KilledWorker: a rerun runs it again), the one whose task raises is "failed" with that error (a rerun
    skips it); exit 1, the table written with both rows, and the progress lines count both (on_progress)."""
    from v2gtwin.sweep_run import TABLE_NAME, read_done_rows

    def task(scenario_data: dict[str, Any], target: str | None) -> dict[str, Any]:
        if scenario_data["fleet"]["n_evs"] == 21:
            os._exit(3)  # the worker process dies mid-task
        raise RuntimeError("raised by the task, outside the study")

    monkeypatch.setattr("v2gtwin.sweep_run.run_case", task)
    # One death kills the task (the scheduler's default retries it on 3 more workers first).
    allowed_before = cluster.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    cluster.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0))
    out = tmp_path / "out"
    try:
        code, _, err = run_cli(
            capsys,
            "sweep",
            str(base_file),
            "--param",
            "fleet.n_evs=21,22",
            "--target",
            TARGET,
            "--scheduler",
            cluster.scheduler.address,
            "--out",
            str(out),
        )
    finally:
        cluster.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", allowed_before))
        cluster.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker for the other tests
    assert code == 1, err
    table = pd.read_parquet(out / TABLE_NAME).set_index("fleet.n_evs")
    assert table.loc[21, "status"] == "lost" and table.loc[21, "error"].startswith("KilledWorker")
    assert table.loc[22, "status"] == "failed"
    assert table.loc[22, "error"] == "RuntimeError: raised by the task, outside the study"
    # Progress lines (stderr is not a terminal): after each of the 2 scenarios, both of them not ok.
    assert "sweep: 1/2 scenarios done, 1 failed" in err and "sweep: 2/2 scenarios done, 2 failed" in err
    # A rerun would skip the failed scenario and run the lost one again.
    plan = plan_sweep(parse_scenario(BASE), [parse_param("fleet.n_evs=21,22")], target=TARGET)
    done = read_done_rows(plan, out)
    assert [r["status"] for r in done.values()] == ["failed"]


def test_counts_are_integer_columns_a_failed_row_is_missing() -> None:
    """n_* indicators are counts: an integer column (nullable for a failed scenario), not reals (was float64)."""
    from v2gtwin.sweep_run import build_table

    plan = plan_sweep(parse_scenario(BASE), [parse_param("fleet.n_evs=10,20")])
    a, b = (c.scenario_id for c in plan.cases)
    rows = {
        a: {"status": "ok", "n_steps_failed": 0, "n_compliance_fail": 2, "v_min_pu": 0.95},
        b: {"status": "failed", "n_steps_failed": None, "n_compliance_fail": None, "v_min_pu": None},
    }
    table = build_table(plan, rows)
    assert str(table["n_compliance_fail"].dtype) == "Int64" and table["n_compliance_fail"].tolist()[0] == 2
    assert table["n_steps_failed"].isna().tolist() == [False, True]
    assert table["v_min_pu"].dtype == float and str(table["fleet.n_evs"].dtype) == "int64"
    # The summary's counts are Python ints (JSON integers); a stand-in result with no sections and two failures.
    from types import SimpleNamespace

    names = ("fleet", "feeder", "services", "markets", "network", "cyber_path", "compliance", "resilience", "battery")
    res = SimpleNamespace(
        scenario=parse_scenario(BASE), **dict.fromkeys(names), failures={"a": "x", "b": "y"}, skipped={}
    )
    (n_failed,) = [k.value for k in calc_kpis(res) if k.key == "n_steps_failed"]  # type: ignore[arg-type]
    assert n_failed == 2 and type(n_failed) is int
