"""`v2gtwin resilience`: wiring (the scenario's facility, generator, load shape and fleet), outputs and error
paths; the numbers of the model are tested in tests/grid/test_resilience.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.scenario import DEFAULT_SCENARIO


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


def test_resilience_json_default_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "resilience", "--json")
    assert code == 0, err
    data = json.loads(out)
    spec = DEFAULT_SCENARIO.resilience
    assert data["outage_start_clock"] == "18:00" and data["outage_duration_h"] == 4.0
    assert data["with_v2g"]["n_evs"] == round(spec.fleet_share * DEFAULT_SCENARIO.fleet.n_evs) == 50
    assert data["without_v2g"]["n_evs"] == 0
    assert data["sweep"]["n_evs"] == list(spec.sweep_n_evs)
    # Without V2G, by hand: 18:00-22:00 is "night" for the hospital shape, 0.8 x 500 = 400 kW. Nothing for the
    # generator's 10 s start, then 350 kW: Q = 350/400 = 0.875 < 0.9 to the end. M_D = 10 s + 0.125 x 14,390 s;
    # unserved = 400 kW x 10 s + 50 kW x 14,390 s; T_r is the grid's return.
    wo = data["without_v2g"]
    assert wo["m_d_h"] == pytest.approx((10 + 0.125 * 14390) / 3600, rel=1e-12)
    assert wo["energy_unserved_kwh"] == pytest.approx((400 * 10 + 50 * 14390) / 3600, rel=1e-12)
    assert wo["recovered_by"] == "grid" and wo["t_r_s"] == 14400.0 and wo["q_min"] == 0.0
    # V2G cannot beat the first seconds but closes the gap after them.
    assert data["with_v2g"]["m_d_h"] < wo["m_d_h"]


def test_resilience_text_and_explicit_cap(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, '[resilience]\ncap_source = "explicit"\nv2g_cap_kw = 20.0\n')
    code, out, err = run_cli(capsys, "resilience", "--scenario", path)
    assert code == 0, err
    assert "fleet-size sweep:" in out and "T_r [s]" in out and "M_D [h]" in out
    assert "capped at 20 kW (explicit" in out
    code, out, err = run_cli(capsys, "resilience", "--scenario", path, "--json")
    data = json.loads(out)
    # The cap binds: the island takes at most 20 kW of V2G (the deficit after the generator is 50 kW).
    assert data["v2g_cap_kw"] == 20.0 and data["with_v2g"]["p_v2g_peak_kw"] == pytest.approx(20.0, rel=1e-9)


def test_sweep_sizes_larger_than_the_fleet_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "[fleet]\nn_evs = 60\n[resilience]\nsweep_n_evs = [0, 10, 100]\n")
    code, out, err = run_cli(capsys, "resilience", "--scenario", path, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["sweep"]["n_evs"] == [0, 10]
    assert any("sweep sizes [100] left out: larger than the fleet (60 EVs)" in n for n in data["notes"])


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[resilience]\nacceptable_level = 1.5\n", "resilience.acceptable_level"),
        ("[resilience]\noutage_start_hour = 10.0\n", "resilience.outage_start_hour, outage_duration_h"),
        ("[resilience]\nv2g_delay_s = 2.5\n", "v2g_delay_s must be a whole number of dt_sim_s"),
        ('[resilience]\ncap_source = "envelope"\nfacility_bus = "99"\n', "resilience.facility_bus = '99'"),
        ("[resilience]\nshed_blocks_pu = [0.5, 0.6]\n", "shed_blocks_pu entries must be > 0 and sum to 1"),
        ("[resilience]\ngen_kw = -1.0\n", "resilience.gen_kw"),
    ],
)
def test_resilience_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, toml: str, message: str) -> None:
    code, _, err = run_cli(capsys, "resilience", "--scenario", write(tmp_path, toml))
    assert_one_line_error(code, err)
    assert message in err


def test_resilience_json_is_the_study_section(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # One function behind both: `v2gtwin resilience --json` prints the study's resilience summary, key for key.
    from v2gtwin.jsonout import dumps_strict
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import StudyChain

    path = write(tmp_path, "[fleet]\nn_evs = 200\n[resilience]\nbattery_kw = 50.0\nbattery_kwh = 10.0\n")
    code, out, err = run_cli(capsys, "resilience", "--scenario", path, "--json")
    assert code == 0, err
    chain = StudyChain(load_scenario(path))
    for step in ("build_fleet", "uncontrolled", "feeder", "resilience"):
        getattr(chain, step)()
    assert chain.resilience_ is not None
    assert json.loads(out) == json.loads(dumps_strict(chain.resilience_.summary()))
    assert json.loads(out)["with_v2g"]["energy_battery_kwh"] > 0
