"""`v2gtwin battery fade`: wiring (the scenario's fleet and uncontrolled charging into calc_fade), JSON keys, and the
one-line error paths (unknown chemistry, years out of range, a horizon that is not one day)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli


def _scenario(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text("[fleet]\nn_evs = 40\n" + extra)
    return path


def test_fade_json_reads_the_fleets_uncontrolled_day(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import build_fleet

    path = _scenario(tmp_path)
    code, out, err = run_cli(
        capsys, "battery", "fade", "--scenario", str(path), "--years", "3", "--chemistry", "nmc", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["n_evs"] == 40 and data["years"] == 3 and data["chemistry"] == "nmc" and data["temp_c"] == 25.0
    assert list(data["by_year"]) == ["year_1", "year_2", "year_3"]
    # the day's equivalent full cycles, by hand from the fleet's SoC: sum |dSoC| over the closed day / 2
    scen = load_scenario(path)
    soc = run_uncontrolled(build_fleet(scen)).soc_pu[: scen.time.n_steps]
    closed = np.vstack([soc, soc[:1]])
    assert data["efc_per_day_mean"] == pytest.approx(np.mean(np.abs(np.diff(closed, axis=0)).sum(axis=0) / 2))
    for row in data["by_year"].values():
        assert row["q_loss_p5_pu"] <= row["q_loss_p50_pu"] <= row["q_loss_p95_pu"]
        assert row["q_loss_mean_pu"] == pytest.approx(row["q_loss_cal_mean_pu"] + row["q_loss_cyc_mean_pu"])
    losses = [row["q_loss_mean_pu"] for row in data["by_year"].values()]
    assert losses == sorted(losses) and losses[0] > 0.0


def test_fade_text_and_lfp(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(
        capsys, "battery", "fade", "-s", str(_scenario(tmp_path)), "--years", "1", "--chemistry", "lfp"
    )
    assert code == 0, err
    assert "chemistry" in out and "lfp" in out and "year_1:" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--chemistry", "nca"], "--chemistry 'nca' is not known; allowed: nmc, lfp"),
        (["--years", "0"], "--years"),
        (["--years", "31"], "--years"),
        (["--temp-c", "61"], "--temp-c"),
        (["--temp-c", "-1"], "--temp-c"),
    ],
)
def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, args, needle) -> None:
    code, _, err = run_cli(capsys, "battery", "fade", "-s", str(_scenario(tmp_path)), *args)
    assert_one_line_error(code, err)
    assert needle in err


def test_horizon_that_is_not_a_day_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _scenario(tmp_path, "[time]\nn_steps = 48\nstart_hour = 12.0\n")
    code, _, err = run_cli(capsys, "battery", "fade", "-s", str(path))
    assert_one_line_error(code, err)
    assert "time.n_steps * time.dt_s must be 86400 s; got 48 x 900 s" in err


def test_fade_defaults_come_from_the_battery_section(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _scenario(tmp_path, "[battery]\nlfp_share = 0.25\ntemp_c = 35.0\nyears = 2\n")
    code, out, err = run_cli(capsys, "battery", "fade", "-s", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    # round(0.25 x 40) = 10 LFP EVs, the rest NMC; the scenario's temperature and years
    assert data["n_evs_by_chemistry"] == {"lfp": 10, "nmc": 30}
    assert data["temp_c"] == 35.0 and data["years"] == 2
