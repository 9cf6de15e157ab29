"""CLI output of the grid commands: scenario values honoured, frequencies printed to 0.1 mHz, counts named n_*."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import run_cli
from v2gtwin.cli._common import format_value

SMALL_TOML = "[fleet]\nn_evs = 200\n[time]\nn_steps = 24\ndt_s = 3600\n"


def test_feeder_hosting_takes_the_scenarios_load_scale_and_voltage_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from v2gtwin.grid.analysis import build_feeder
    from v2gtwin.grid.hosting import run_node_hosting

    scen = tmp_path / "s.toml"
    scen.write_text("[feeder]\nv_min_pu = 0.90\npeak_load_scale = 0.8\n")
    code, out, _ = run_cli(capsys, "feeder", "hosting", "-s", str(scen), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["load_scale"] == 0.8 and data["v_min_pu"] == 0.90
    # Reference: the library called with the scenario's values passed explicitly.
    from v2gtwin.scenario import load_scenario

    feeder = build_feeder(load_scenario(None).feeder, 0)
    ref = run_node_hosting(feeder, feeder.p_load_kw * 0.8, feeder.q_load_kvar * 0.8, v_min_pu=0.90)
    got = np.array([n["p_host_kw"] for n in data["nodes"]])
    np.testing.assert_allclose(np.sort(got), np.sort(ref.p_host_kw), rtol=1e-9)
    # The old hard-coded defaults (0.5, 0.95) give other capacities: the test can tell them apart.
    old = run_node_hosting(feeder, feeder.p_load_kw * 0.5, feeder.q_load_kvar * 0.5, v_min_pu=0.95)
    assert not np.allclose(np.sort(got), np.sort(old.p_host_kw), rtol=1e-3)
    # An option still overrides the scenario.
    code, out, _ = run_cli(capsys, "feeder", "hosting", "-s", str(scen), "--v-min", "0.95", "--json")
    assert code == 0 and json.loads(out)["v_min_pu"] == 0.95


def test_feeder_voltvar_takes_the_scenarios_curve_and_prints_rounded_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[feeder]\nvoltvar_curve = 'A'\n")
    code, out, _ = run_cli(capsys, "feeder", "voltvar", "-s", str(scen), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["curve"] == "A"
    assert {"n_steps_below_limit_without", "n_steps_below_limit_with"} <= set(data)
    assert not any(k.startswith("steps_below") for k in data)
    code, out, _ = run_cli(capsys, "feeder", "voltvar", "-s", str(scen))
    assert code == 0 and "n_steps_below_limit_with" in out
    # Text goes through _emit: no raw 16-digit floats such as 0.9313185322129257.
    assert not re.search(r"\d\.\d{7,}", out), out


def test_feeder_voltvar_on_a_scenario_without_voltvar_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_helpers import assert_one_line_error

    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[feeder]\nvoltvar_curve = 'none'\n")
    code, _, err = run_cli(capsys, "feeder", "voltvar", "-s", str(scen))
    assert_one_line_error(code, err)
    assert "voltvar_curve" in err


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("nadir_hz", 59.8103, "59.8103"),  # 4 significant digits would give 59.81
        ("nadir_hz", 59.80704, "59.8070"),  # rounded to 0.1 mHz, trailing zero kept
        ("nadir_hz", 58.93, "58.9300"),  # .4g gave 58.93, but 58.9 for 58.9 -> now both distinct
        ("delta_f_hz", -0.18966, "-0.1897"),  # a deviation: same rule
        ("settled_hz", 60.0, "60.0000"),  # an integer-valued frequency keeps its decimals
        ("p_kw", 59.8103, "59.81"),  # other units: 4 significant digits as before
    ],
)
def test_frequencies_print_to_a_tenth_of_a_millihertz(key: str, value: float, text: str) -> None:
    assert format_value(key, value) == text


def test_an_empty_list_prints_as_a_dash() -> None:
    assert format_value("ufls_stages", []) == "-"
    assert format_value("ufls_stages", [1, 2]) == "1, 2"


def test_frequency_cascade_text_and_json_for_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[frequency]\nreg_minutes = 10\ndr_notify_hour = 16\ndr_start_hour = 17\n")
    code, out, _ = run_cli(capsys, "frequency", "cascade", "-s", str(scen), "--json")
    assert code == 0
    data = json.loads(out)

    def stages(d: object) -> list[list[int]]:
        found: list[list[int]] = []
        if isinstance(d, dict):
            for k, v in d.items():
                if k == "ufls_stages":
                    found.append(v)
                else:
                    found += stages(v)
        return found

    json_stages = stages(data)
    assert json_stages and all(isinstance(s, list) for s in json_stages)
    code, out, _ = run_cli(capsys, "frequency", "cascade", "-s", str(scen))
    lines = [ln.split() for ln in out.splitlines() if ln.strip().startswith("ufls_stages")]
    assert len(lines) == len(json_stages)
    for words, s in zip(lines, json_stages, strict=True):
        assert " ".join(words[1:]) == (", ".join(map(str, s)) if s else "-")  # never blank
