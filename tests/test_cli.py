"""CLI wiring and error paths: every bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gtwin.cli import main

SMALL_TOML = "[fleet]\nn_evs = 200\n[time]\nn_steps = 24\ndt_s = 3600\n"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err


def test_study_writes_report_and_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, out, _ = run_cli(capsys, "study", "--scenario", str(scen), "--out", str(tmp_path / "o"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["fleet"]["summary"]["n_evs"] == 200
    assert Path(data["files"]["report"]).is_file()


def test_scenario_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "scenario", "show")
    assert code == 0 and "[fleet]" in out
    path = tmp_path / "d.toml"
    path.write_text(out)
    code, out, _ = run_cli(capsys, "scenario", "validate", str(path), "--json")
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = run_cli(capsys, "scenario", "schema")
    assert code == 0 and json.loads(out)["title"] == "Scenario"


def test_fleet_summary_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, out, _ = run_cli(capsys, "fleet", "summary", "-s", str(scen), "--json")
    assert code == 0 and json.loads(out)["n_evs"] == 200


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["study", "--out"],
        ["nosuchcommand"],
        ["study", "--scenario", "/nonexistent/scenario.toml"],
        ["scenario", "validate"],
        ["fleet", "compare-acn", "--seed", "-1"],
    ],
)
def test_bad_options_and_missing_files(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err)


def test_bad_scenario_names_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[time]\nn_steps = 0\n")
    code, _, err = run_cli(capsys, "scenario", "validate", str(bad))
    assert_one_line_error(code, err)
    assert "time.n_steps" in err and ">= 1" in err


def test_failed_study_keeps_earlier_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(SMALL_TOML)
    out = tmp_path / "o"
    assert run_cli(capsys, "study", "-s", str(good), "-o", str(out))[0] == 0
    before = (out / "report.html").read_bytes()
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet]\nn_evs = 'x'\n")
    code, _, err = run_cli(capsys, "study", "-s", str(bad), "-o", str(out))
    assert_one_line_error(code, err)
    assert (out / "report.html").read_bytes() == before


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet]\nsoc_target_pu = 2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "v2gtwin.cli", "scenario", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "fleet.soc_target_pu" in proc.stderr


toml_fragments = st.sampled_from(
    [
        "[time]\n",
        "[fleet]\n",
        "[feeder]\n",
        "[bogus]\n",
        "dt_s = -1\n",
        "n_steps = 0\n",
        "n_evs = 'ten'\n",
        "soc_min_pu = 2.0\n",
        "name = ''\n",
        "seed = -5\n",
        "source = 'nowhere'\n",
        "battery_share = [0.5]\n",
        "= broken\n",
        "[fleet\n",
        "x = [1, 'a']\n",
        '"unterminated = 1\n',
        "\x00\n",
        "eta_charge = nan\n",
        "start_hour = 24\n",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(toml_fragments, min_size=1, max_size=6), st.binary(max_size=20))
def test_fuzzed_scenario_files_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fragments: list[str], junk: bytes
) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes("".join(fragments).encode() + junk)
    code, _, err = run_cli(capsys, "scenario", "validate", str(path))
    if code == 0:
        return  # the fragments happened to form a valid scenario
    assert_one_line_error(code, err)


option_words = st.sampled_from(
    [
        "study",
        "scenario",
        "fleet",
        "show",
        "validate",
        "schema",
        "summary",
        "compare-acn",
        "--json",
        "--out",
        "--scenario",
        "-s",
        "--seed",
        "--site",
        "x",
        "-1",
        "--",
        "--debugx",
        "--zz",
        "/nonexistent",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(option_words, min_size=1, max_size=4))
def test_fuzzed_options_never_trace_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], words: list[str]
) -> None:
    # A whole study, the ACN comparison or the bid's 40 simulated days run (correctly) for seconds: other tests
    # cover them.
    if ("study" in words and "/nonexistent" not in words) or "compare-acn" in words or words[:1] == ["bid"]:
        return
    monkeypatch.chdir(tmp_path)  # anything a command writes lands in a temporary folder
    code, _, err = run_cli(capsys, *words)
    assert "Traceback" not in err
    if code != 0:
        assert_one_line_error(code, err)


def test_feeder_powerflow_json_reproduces_baran_wu(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "feeder", "powerflow", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["losses_kw"] == pytest.approx(202.677, abs=0.01)
    assert data["v_min_pu"] == pytest.approx(0.91309, abs=1e-5) and data["v_min_bus"] == "18"  # Baran & Wu's numbering


def test_feeder_commands_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, out, _ = run_cli(capsys, "feeder", "hosting", "--json", "--voltvar", "B")
    assert code == 0 and len(json.loads(out)["nodes"]) == 32
    code, out, _ = run_cli(capsys, "feeder", "losses", "-s", str(scen), "--json")
    data = json.loads(out)
    assert code == 0 and set(data["dispatch"]) == {"uniform", "random", "loss_aware", "loss_optimal"}
    code, out, _ = run_cli(capsys, "feeder", "voltvar", "-s", str(scen), "--curve", "A", "--json")
    assert code == 0 and json.loads(out)["curve"] == "A"


@pytest.mark.parametrize(
    "args",
    [
        ["feeder", "powerflow", "--method", "newton"],
        ["feeder", "powerflow", "--load-scale", "-2"],
        ["feeder", "hosting", "--v-min", "2"],
        ["feeder", "hosting", "--voltvar", "C"],
        ["feeder", "voltvar", "--curve", "Z"],
    ],
)
def test_feeder_bad_options(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err)


@pytest.mark.parametrize("command", ["droop", "dynamics", "agc", "reserve", "dr", "cascade"])
def test_frequency_commands_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[frequency]\nreg_minutes = 10\ndr_notify_hour = 16\ndr_start_hour = 17\n")
    code, out, err = run_cli(capsys, "frequency", command, "-s", str(scen), "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), dict)


def test_frequency_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sig = tmp_path / "sig.csv"
    sig.write_text("t_s,signal_pu\n0,0.1\n2,0.2\n6,0.3\n")
    code, _, err = run_cli(capsys, "frequency", "agc", "--signal", str(sig))
    assert_one_line_error(code, err)
    assert "gap" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[frequency]\nh_s = 0\n")
    code, _, err = run_cli(capsys, "frequency", "dynamics", "-s", str(bad))
    assert_one_line_error(code, err)
    assert "frequency.h_s" in err
    bad.write_text("[frequency]\ndr_start_hour = 20\ndr_end_hour = 18\n")
    code, _, err = run_cli(capsys, "frequency", "dr", "-s", str(bad))
    assert_one_line_error(code, err)
    code, _, err = run_cli(capsys, "frequency", "droop", "--step-mw", "nan")
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [["market", "compare"], ["market", "stackelberg"], ["bid", "--price", "20"], ["schedule", "--robust"]],
)
def test_market_and_schedule_commands_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[markets]\nbid_days = 5\n")
    code, out, err = run_cli(capsys, *args, "-s", str(scen), "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), dict)


def test_market_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[markets]\ngen_capacity_mw = [10.0]\ngen_cost_per_mwh = [1.0, 2.0]\n")
    code, _, err = run_cli(capsys, "market", "compare", "-s", str(bad))
    assert_one_line_error(code, err)
    assert "same length" in err
    code, _, err = run_cli(capsys, "bid", "--penalty", "0")
    assert_one_line_error(code, err)
    assert "reg_penalty_per_mw" in err


def test_version_and_bare_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("v2gtwin ")
    code, out, _ = run_cli(capsys)
    assert code == 0 and "Usage" in out


def test_csms_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "csms", "simulate", "--url", "foo")
    assert_one_line_error(code, err)
    # Nothing listens on port 1: one line after the reconnection attempts, not a wait of minutes.
    code, _, err = run_cli(
        capsys, "csms", "simulate", "--url", "ws://127.0.0.1:1", "--stations", "1", "--reconnects", "0"
    )
    assert_one_line_error(code, err)
    assert "cannot connect" in err
    code, _, err = run_cli(capsys, "csms", "simulate", "--reconnects", "-1")
    assert_one_line_error(code, err)
    code, _, err = run_cli(capsys, "csms", "serve", "--max-frame-kib", "0")
    assert_one_line_error(code, err)
    code, _, err = run_cli(capsys, "csms", "serve", "--status-every", "-1")
    assert_one_line_error(code, err)
    assert "--status-every" in err
    csv = tmp_path / "sp.csv"
    csv.write_text("station,limit\nA,1\n")
    code, _, err = run_cli(capsys, "csms", "dispatch", str(csv), "--wait", "0")
    assert_one_line_error(code, err)
    assert "header" in err
    csv.write_text("station_id,limit_w\nA,lots\n")
    code, _, err = run_cli(capsys, "csms", "dispatch", str(csv), "--wait", "0")
    assert_one_line_error(code, err)
    assert "line 2" in err
    code, _, err = run_cli(capsys, "csms", "pki", str(tmp_path / "pki"), "--station", "bad id!")
    assert_one_line_error(code, err)
    code, _, err = run_cli(
        capsys, "csms", "password", "CS-1", "--password", "short", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}"
    )
    assert_one_line_error(code, err)
    assert "16 characters" in err
