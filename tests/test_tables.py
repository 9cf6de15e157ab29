"""Tests of the results as tables (v2gtwin.tables): hand-computed frames of a 3-EV, 4-step fleet, the time index,
the long summary table, sections that are None, the export round trip and `v2gtwin study --export`."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.data_in import read_sessions_csv
from v2gtwin.errors import DataError
from v2gtwin.fleet import calc_envelope, run_uncontrolled
from v2gtwin.jsonout import dumps_strict
from v2gtwin.scenario import FleetSpec, TimeGrid
from v2gtwin.study_result import FleetSection, build_fleet_section
from v2gtwin.tables import TABLE_NAMES, collect_frames, step_frame, steps_frame, summary_frame
from v2gtwin.tables.export import write_tables

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TIME = TimeGrid(dt_s=900.0, n_steps=4, start_hour=12.0, start_date="2025-01-15", time_zone="Europe/Berlin")

SESSIONS = (
    "arrival_time,departure_time,e_session_kwh,p_charge_max_kw,capacity_kwh,v2g,bus,kind\n"
    "2025-01-15T12:00,2025-01-15T13:00,12,4,40,1,3,home\n"
    "2025-01-15T12:15,2025-01-15T12:45,1.5,4,10,0,5,work\n"
    "2025-01-15T12:30,2025-01-15T13:00,3,8,20,1,7,work\n"
)


@pytest.fixture
def section(tmp_path: Path) -> FleetSection:
    path = tmp_path / "sessions.csv"
    path.write_text(SESSIONS)
    spec = FleetSpec(source="csv", sessions_csv=str(path), eta_charge=1.0)
    fleet = read_sessions_csv(str(path), spec, TIME, 33, np.random.default_rng(0))
    return build_fleet_section(SimpleNamespace(time=TIME), fleet, calc_envelope(fleet), run_uncontrolled(fleet))  # type: ignore[arg-type]


def test_fleet_steps_match_the_hand_computed_day(section: FleetSection) -> None:
    df = section.to_frames(TIME)["fleet_steps"]
    # By hand (eta 1, 0.25 h steps): EV0 4 kW all 4 steps; EV1 (steps 1-2) 4 kW then 2 kW to its 1.5 kWh;
    # EV2 (steps 2-3) 8 kW then 4 kW to its 3 kWh.
    assert df["p_uncontrolled_kw"].tolist() == pytest.approx([4.0, 8.0, 14.0, 8.0])
    assert float((df["p_uncontrolled_kw"] * TIME.dt_h).sum()) == pytest.approx(4.0 + 1.5 + 3.0)
    assert df["arrivals"].tolist() == [1, 1, 1, 0]
    assert df["departures"].tolist() == [0, 0, 0, 1]  # EV1 leaves at 12:45 (step 3); the others at the end
    assert df["n_plugged"].tolist() == [1, 2, 3, 2]
    # Stored energy at the end of each step of the EVs plugged in: EV0 starts at 0.5 x 40 = 20 kWh, EV1 at
    # 0.65 x 10 = 6.5, EV2 at 0.65 x 20 = 13; step 1: 22 + 7.5, step 2: 23 + 8 + 15, step 3: 24 + 16.
    assert df["e_uncontrolled_kwh"].tolist() == pytest.approx([21.0, 29.5, 46.0, 40.0])


def test_per_step_tables_have_the_scenarios_tz_aware_index(section: FleetSection) -> None:
    df = section.to_frames(TIME)["fleet_steps"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "time"
    assert str(df.index.tz) == "Europe/Berlin" and df.index.freq == pd.Timedelta(minutes=15)
    # 12:00 CET = 11:00 UTC on 15 January 2025.
    assert df.index[0] == pd.Timestamp("2025-01-15 11:00", tz="UTC")
    assert df.index[-1] == pd.Timestamp("2025-01-15 12:45", tz="Europe/Berlin")


def test_fleet_evs_one_row_per_session_of_the_file(section: FleetSection) -> None:
    evs = section.to_frames(TIME)["fleet_evs"]
    assert evs.index.name == "ev" and len(evs) == 3
    assert list(evs["arrival_time"].dt.strftime("%H:%M")) == ["12:00", "12:15", "12:30"]
    assert list(evs["departure_time"].dt.strftime("%H:%M")) == ["13:00", "12:45", "13:00"]
    assert evs["capacity_kwh"].tolist() == [40.0, 10.0, 20.0]
    assert list(evs["kind"]) == ["home", "work", "work"]
    # Grid-side need within the stay (eta 1): min(12, 4 kW x 1 h), min(1.5, 4 x 0.5), min(3, 8 x 0.5).
    assert evs["energy_need_grid_kwh"].tolist() == pytest.approx([4.0, 1.5, 3.0])
    # Uncontrolled: EV0 leaves at 0.6 (24 of 40 kWh), EV1 and EV2 reach the 0.8 target.
    assert evs["soc_departure_pu"].tolist() == pytest.approx([0.6, 0.8, 0.8])


def test_results_json_fleet_section_unchanged_by_the_per_ev_table(section: FleetSection) -> None:
    out = section.to_dict(series=True)
    assert set(out) == {"summary", *section.to_frame().columns}  # no per-EV array, no fleet object
    json.loads(dumps_strict(out))


def test_summary_frame_flattens_to_path_value_text() -> None:
    df = summary_frame(
        {"a_kw": 2, "b": {"c_pu": 0.5, "name": "x", "ok": True}, "d_kwh": [1.0, None], "e": float("inf")}
    )
    assert df["quantity"].tolist() == ["a_kw", "b.c_pu", "b.name", "b.ok", "d_kwh.0", "d_kwh.1", "e"]
    assert df["value"].tolist()[:2] == [2.0, 0.5] and df["value"].tolist()[3] == 1.0
    assert df["text"].tolist()[2] == "x" and df["text"].tolist()[6] == "inf"  # never a non-finite value
    assert pd.isna(df["value"].iloc[6]) and pd.isna(df["value"].iloc[5])


def test_step_frame_refuses_a_column_of_the_wrong_length() -> None:
    with pytest.raises(DataError, match=r"table column p_kw: expected 4 values"):
        step_frame(TIME, {"p_kw": np.zeros(5)})


def test_sections_that_are_none_give_no_table_and_steps_say_why(section: FleetSection) -> None:
    result = SimpleNamespace(
        scenario=SimpleNamespace(time=TIME, currency="EUR"),
        fleet=section,
        feeder=None,
        markets=None,
        timings_s={"build_fleet": 0.5, "feeder": 1.0},
        failures={"feeder": "DataError: bad feeder"},
        skipped={"hosting": "needs feeder, which failed"},
    )
    frames = collect_frames(result)  # type: ignore[arg-type]
    assert set(frames) == {"study_steps", "fleet_steps", "fleet_evs"}
    steps = frames["study_steps"].set_index("step")
    assert steps.loc["feeder", "status"] == "failed" and steps.loc["feeder", "message"] == "DataError: bad feeder"
    assert steps.loc["hosting", "status"] == "skipped" and pd.isna(steps.loc["hosting", "seconds"])
    assert steps.loc["build_fleet", "status"] == "ok"
    assert all(name in sum(TABLE_NAMES.values(), ()) for name in frames)
    assert steps_frame(result).columns.tolist() == ["step", "status", "seconds", "message"]  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_exported_files_read_back_equal_to_the_frames(section: FleetSection, tmp_path: Path, fmt: str) -> None:
    frames = section.to_frames(TIME) | {"summary": summary_frame({"p_kw": 1.5, "name": "x"})}
    paths = write_tables(frames, tmp_path / "tables", fmt)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(f"{n}.{fmt}" for n in frames)
    for name, df in frames.items():
        if fmt == "parquet":
            back = pd.read_parquet(paths[name])
            pd.testing.assert_frame_equal(back, df, check_freq=False)
        else:
            back = pd.read_csv(paths[name], index_col=0)
            for col in df.columns:
                got, want = back[col], df[col]
                if isinstance(want.dtype, pd.DatetimeTZDtype):
                    got = pd.to_datetime(got, utc=True).dt.tz_convert(want.dt.tz)
                    assert (got.to_numpy() == want.to_numpy()).all()
                elif pd.api.types.is_numeric_dtype(want):
                    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-12, equal_nan=True)
                else:  # text: a missing value reads back as NaN
                    assert [None if pd.isna(v) else str(v) for v in got] == [
                        None if pd.isna(v) else str(v) for v in want
                    ]
            if isinstance(df.index, pd.DatetimeIndex):
                assert (pd.to_datetime(back.index, utc=True) == df.index).all()
    assert not list((tmp_path / "tables").glob(".*tmp"))  # no temporary file left behind


def test_export_writes_nan_as_missing_and_refuses_infinity(tmp_path: Path) -> None:
    frames = {"t": pd.DataFrame({"v_pu": [1.0, np.nan]})}
    back = pd.read_parquet(write_tables(frames, tmp_path, "parquet")["t"])
    assert back["v_pu"].isna().tolist() == [False, True] and back["v_pu"].dtype == "Float64"
    assert (tmp_path / "t.csv").exists() is False
    assert write_tables(frames, tmp_path, "csv")["t"].read_text().splitlines()[2] == "1,"  # empty field
    with pytest.raises(DataError, match=r"table bad, column p_kw, row 1: value is inf"):
        write_tables({"bad": pd.DataFrame({"p_kw": [1.0, np.inf]})}, tmp_path, "parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_unknown_export_format_is_an_error(section: FleetSection, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown format 'xlsx'; allowed: parquet, csv"):
        write_tables(section.to_frames(TIME), tmp_path, "xlsx")


def test_cli_refuses_an_unknown_export_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "study", "--out", str(tmp_path / "o"), "--export", "xlsx")
    assert_one_line_error(code, err)
    assert "xlsx" in err and not (tmp_path / "o" / "results.json").exists()


def test_study_export_writes_every_table_beside_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: FleetSection
) -> None:
    """Wiring only (the numbers are the tables' own tests; docs/tables.md runs a real study): `v2gtwin study
    --export csv` writes OUT/tables/NAME.csv for each table of the result and lists them in --json."""
    import v2gtwin.report
    import v2gtwin.study
    import v2gtwin.study_summary

    frames = section.to_frames(TIME)
    fake = SimpleNamespace(
        to_frames=lambda: frames, to_dict=lambda series=True: {"currency": "EUR"}, ok=True, failures={}, skipped={}
    )

    def write_report(result: object, out: Path) -> dict[str, Path]:
        return {"report": out / "report.html", "results": out / "results.json"}

    monkeypatch.setattr(v2gtwin.study.StudyChain, "run", lambda self, targets=None: fake)
    monkeypatch.setattr(v2gtwin.report, "write_report", write_report)
    monkeypatch.setattr(v2gtwin.study_summary, "summary_json", lambda result: {})
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "study", "--out", str(out), "--export", "csv", "--json")
    assert code == 0, err
    files = json.loads(stdout)["files"]
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["fleet_evs.csv", "fleet_steps.csv"]
    assert files["table_fleet_steps"] == str(out / "tables" / "fleet_steps.csv")
