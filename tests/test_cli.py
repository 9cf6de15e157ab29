"""CLI wiring and error paths: every bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_helpers import assert_one_line_error, run_cli

SMALL_TOML = "[fleet]\nn_evs = 200\n[time]\nn_steps = 24\ndt_s = 3600\n"


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
    assert code == 0 and json.loads(out)["summary"]["n_evs"] == 200


def test_fleet_summary_json_has_the_keys_of_the_results_json_fleet_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, out, _ = run_cli(capsys, "fleet", "summary", "-s", str(scen), "--json")
    assert code == 0
    summary = json.loads(out)
    assert run_cli(capsys, "study", "-s", str(scen), "-o", str(tmp_path / "o"))[0] == 0
    fleet = json.loads((tmp_path / "o" / "results.json").read_text())["fleet"]
    # The same quantity under the same key with the same value; results.json adds only the per-step series.
    assert summary["summary"] == fleet["summary"]
    assert set(fleet) - set(summary) == {
        "time_h", "clock_h", "arrivals", "departures", "n_plugged", "p_uncontrolled_kw",
        "e_uncontrolled_kwh", "p_max_kw", "p_min_kw", "e_lower_kwh", "e_upper_kwh",
    }  # fmt: skip
    # Counts are JSON integers, also per step.
    assert all(isinstance(summary["summary"][k], int) for k in ("n_evs", "n_unmet", "n_infeasible", "p_peak_step"))
    assert all(isinstance(v, int) for k in ("arrivals", "departures", "n_plugged") for v in fleet[k])


def test_text_output_refuses_non_finite_values_like_json(capsys: pytest.CaptureFixture[str]) -> None:
    import math

    from v2gtwin.cli._common import _emit
    from v2gtwin.jsonout import NonFiniteOutputError

    for json_out in (False, True):
        with pytest.raises(NonFiniteOutputError, match="p_peak_kw"):
            _emit({"summary": {"p_peak_kw": math.inf}}, json_out)
    _emit({"restore_s": math.nan}, False)  # documented as possibly missing: shown as "-"
    assert capsys.readouterr().out.split() == ["restore_s", "-"]


def test_fleet_summary_text_labels_steps_with_clock_time_and_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML)
    code, out, _ = run_cli(capsys, "fleet", "summary", "-s", str(scen), "--json")
    step = json.loads(out)["summary"]["p_peak_step"]
    code, text, _ = run_cli(capsys, "fleet", "summary", "-s", str(scen))
    assert code == 0
    # Independent clock arithmetic: the default scenario starts at 12:00, SMALL_TOML has 1-hour steps.
    import datetime as dt

    clock = (dt.datetime(2026, 1, 1, 12, 0) + dt.timedelta(hours=step)).strftime("%H:%M")
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith("p_peak_step")]
    assert line.split()[1:] == [str(step), f"({clock})"]
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith("n_evs")]
    assert line.split()[1] == "200"  # an integer, not 200.000


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),  # an integral float prints as an integer
        (0.123456, "0.1235"),  # 4 significant digits
        (12.3456, "12.35"),
        (1234.56, "1,235"),  # thousands: no decimals, separators
        (-0.5, "-0.5"),
        (0.0, "0"),
        (1.5e-5, "1.500e-05"),
    ],
)
def test_text_numbers_round_to_four_significant_digits(value: float, text: str) -> None:
    from v2gtwin.cli._common import format_value

    assert format_value("x_kw", value) == text


def test_text_step_keys_show_clock_time() -> None:
    from v2gtwin.cli._common import format_value
    from v2gtwin.scenario import TimeGrid

    grid = TimeGrid(n_steps=96, dt_s=900, start_hour=12.0)
    # Step 42 of 15 minutes after 12:00 is 12:00 + 10 h 30 min = 22:30.
    assert format_value("worst_step", 42, grid) == "42 (22:30)"
    assert format_value("worst_step", 42.0, grid) == "42 (22:30)"
    assert format_value("worst_step", 42) == "42"  # no time grid: the index alone
    assert format_value("restore_s", None) == "-"  # a missing value


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


def test_schedule_violation_prob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[markets]\nrobust_cap_share = 3.0\nrobust_radius_bound = 'cantelli'\n")
    code, out, err = run_cli(capsys, "schedule", "-s", str(scen), "--violation-prob", "0.2", "--json")
    assert code == 0, err
    rob = json.loads(out)["robust"]
    # Cantelli: Omega = sqrt((1 - 0.2) / 0.2) = 2, promising 0.2 for each constraint; the nominal schedule first.
    assert [v["omega"] for v in rob["radii"].values()] == pytest.approx([0.0, 2.0])
    assert rob["radii"]["omega_2"]["violation_prob_promised_at_most"] == pytest.approx(0.2)
    assert json.loads(out)["currency"] == "USD" and "currency" not in rob
    code, _, err = run_cli(capsys, "schedule", "--violation-prob", "1.5")
    assert_one_line_error(code, err)
    assert "robust_violation_prob" in err


def test_readme_schedule_violation_prob_on_the_default_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    # The README's line `v2gtwin schedule --violation-prob 0.05`, on the default scenario itself (about 5 s).
    code, out, err = run_cli(capsys, "schedule", "--violation-prob", "0.05", "--json")
    assert code == 0, err
    data = json.loads(out)
    rob = data["robust"]
    # Default bound Cantelli: Omega = sqrt((1 - 0.05) / 0.05) = sqrt(19) = 4.359, promising 1 / (1 + 19) = 0.05
    # at most; the nominal schedule (Omega = 0) promises nothing.
    assert rob["radius_bound"] == "cantelli" and rob["n_radii_feasible"] == 2
    nominal, robust = rob["radii"].values()
    assert robust["omega"] == pytest.approx(math.sqrt(19.0))
    assert robust["violation_prob_promised_at_most"] == pytest.approx(0.05)
    assert nominal["violation_prob_promised_at_most"] is None
    # No fallback from the requested solver: null, not "".
    assert data["solver_fallback_reason"] is None
    code, out, err = run_cli(capsys, "schedule", "--violation-prob", "0.05")
    assert code == 0, err
    assert "no violation promise" in out and "violation promised at most 5.00%" in out
    assert re.search(r"solver_fallback_reason +-\n", out)


def test_schedule_robust_prints_an_infeasible_radius(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    # Omega = 40 sd of net load above the mean cannot stay under 1.2 x the mean peak; Omega = 0 can.
    scen.write_text(SMALL_TOML + "[markets]\nrobust_omegas = [0.0, 40.0]\nrobust_cap_share = 1.2\n")
    code, out, err = run_cli(capsys, "schedule", "-s", str(scen), "--robust")
    assert code == 0, err
    assert re.search(r"omega_40 +infeasible \(robust schedule is infeasible at Omega = 40: ", out)
    assert re.search(r"omega_0 +expected cost ", out)


def test_bid_and_market_print_clock_times(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SMALL_TOML + "[markets]\nbid_days = 5\n")
    code, out, err = run_cli(capsys, "bid", "-s", str(scen), "--json")
    # The default event hour 20 h and offer hour 18 h are "20:00" and "18:00" on the clock.
    assert code == 0, err
    assert json.loads(out)["event_clock"] == "20:00"
    code, out, err = run_cli(capsys, "market", "compare", "-s", str(scen), "--json")
    assert code == 0, err
    assert json.loads(out)["v2g_offer_clock"] == "18:00"


@pytest.mark.parametrize(
    ("spec", "field"),
    [("normal:1e300,1e300", "mean_kw"), ("normal:1500,1e-300", "sd_kw"), ("beta:100,10,1e300", "scale_kw")],
)
def test_bid_huge_availability_is_one_line_without_warnings(
    capsys: pytest.CaptureFixture[str], spec: str, field: str
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a scipy IntegrationWarning / RuntimeWarning fails the test
        code, _, err = run_cli(capsys, "bid", "--availability", spec)
    assert_one_line_error(code, err)
    assert field in err and "1e+07" in err and "Warning" not in err


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


def test_frequency_commands_print_the_study_results_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One key per quantity: `frequency <name> --json` prints exactly results.json's services.summary[<name>].
    scen = tmp_path / "s.toml"
    # No live OCPP measurement in the path: its measured central system differs from run to run (docs/cyber.md).
    cyber = "[cyber]\nmeasure_ocpp_exchanges = 0\n"
    scen.write_text(SMALL_TOML + "[frequency]\nreg_minutes = 10\ndr_notify_hour = 16\ndr_start_hour = 17\n" + cyber)
    code, out, err = run_cli(capsys, "study", "-s", str(scen), "--out", str(tmp_path / "o"), "--json")
    assert code == 0, err
    summary = json.loads(out)["services"]["summary"]
    assert set(summary) == {"droop", "dynamics", "agc", "reserve", "dr", "cascade"}
    for name, section in summary.items():
        code, out, err = run_cli(capsys, "frequency", name, "-s", str(scen), "--json")
        assert code == 0, err
        assert json.loads(out) == section, name
    # The published conventions: an absolute nadir below nominal, a deviation, RoCoF negative when falling,
    # UFLS stage 1 the first.
    dyn = summary["dynamics"]
    assert (
        dyn["nadir_hz"] == pytest.approx(60.0 + dyn["df_nadir_hz"]) and dyn["rocof_hz_per_s"] < 0 < 60 - dyn["nadir_hz"]
    )
    assert all(k >= 1 for m, c in summary["cascade"].items() if m != "fleet_ramp_effect" for k in c["ufls_stages"])


# ---------------------------------------------------------------------------------------------------------------
# Every command of the app, found by walking the click command tree (a new command is covered without editing
# this file), fed bad input: one line on stderr, exit code 2, no traceback, nothing on stdout.

#: str parameters that take free text (an address, a URL, a secret, a station id): not fed "bogus", because
#: "bogus" is a valid host name or station id, but values each must refuse (and name the parameter): a host that
#: is neither an address nor a resolvable name (RFC 952 allows no space or "!"), a URL websockets' parser
#: refuses (an unclosed IPv6 bracket, a port above 65535, a port that is not a number), a station id outside
#: OCPP's identifierString characters and a password under OCPP 2.0.1's 16 characters. Every other str option is
#: a choice among names. VALID holds a placeholder each accepts, for when the parameter is required.
FREE_TEXT = {
    "host": ["no such host!"],
    "url": ["ws://[bad", "ws://h:99999", "ws://h:port", "http://127.0.0.1:9000"],
    "password": ["fifteen-chars!!"],
    "station_id": ["bad id!", "x" * 49, ""],
}
VALID = {"password": "sixteen-chars-ok", "station_id": "CS-1"}
#: Extra arguments under which an option is read at all (csms serve reads --pki only for profiles 2 and 3).
CONTEXT = {("csms", "serve", "pki"): ["--profile", "2"]}
JUNK_TOML = b"[fleet\nn_evs = \x00\xff 'ten'\n"


def _walk(cmd: object, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], object]]:
    subs = getattr(cmd, "commands", None)
    if subs is None:
        return [(path, cmd)]
    return [c for name in sorted(subs) for c in _walk(subs[name], (*path, name))]


def _all_commands() -> list[tuple[tuple[str, ...], object]]:
    import typer

    from v2gtwin.cli import app

    return _walk(typer.main.get_command(app), ())


def _kind(param: object) -> object:
    """The annotated Python type of a typer parameter (``Path | None`` options are unwrapped by typer)."""
    return param.type_descriptor.annotation  # type: ignore[attr-defined]


def _bad_inputs(path: tuple[str, ...], cmd: object, tmp: Path) -> list[tuple[str, list[str]]]:
    """(what, argv) cases of bad input for one command."""
    params = list(cmd.params)  # type: ignore[attr-defined]
    missing = str(tmp / "no-such-folder" / "no-such-file.csv")
    # Placeholders for required arguments and options, so that the bad value is what fails.
    placeholders: dict[str, list[str]] = {}
    for p in params:
        if p.required and p.param_type_name == "argument":
            placeholders[p.name] = [missing if _kind(p) is Path else VALID.get(p.name, "CS-1")]
        elif p.required:
            placeholders[p.name] = [p.opts[0], VALID.get(p.name, "x")]
    required = [t for tokens in placeholders.values() for t in tokens]
    cases: list[tuple[str, list[str]]] = [("unknown option", [*path, *required, "--no-such-option"])]
    if required:
        cases.append(("required input missing", list(path)))
    for p in params:
        if p.param_type_name != "option" or p.is_flag:
            continue
        flag, kind = p.opts[0], _kind(p)
        ctx = CONTEXT.get((*path, p.name), [])
        if kind in (int, float):
            cases.append((f"{flag} not a number", [*path, *required, flag, "not-a-number"]))
            if p.min is not None:
                cases.append((f"{flag} below range", [*path, *required, flag, str(p.min - 1)]))
            if p.max is not None:
                cases.append((f"{flag} above range", [*path, *required, flag, str(p.max + 1)]))
        elif kind is Path and p.name == "scenario":
            junk = tmp / "junk.toml"
            junk.write_bytes(JUNK_TOML)
            cases.append((f"{flag} junk file", [*path, *required, flag, str(junk)]))
            cases.append((f"{flag} missing file", [*path, *required, flag, missing]))
        elif kind is Path:
            # A path inside a missing folder: neither readable (input) nor creatable (output).
            cases.append((f"{flag} missing folder", [*path, *required, *ctx, flag, missing]))
        elif kind is str and p.name not in FREE_TEXT and not p.required:
            cases.append((f"{flag} unknown name", [*path, *required, *ctx, flag, "bogus://nowhere"]))
    # Free text: each malformed value in place of its parameter's placeholder (required) or added (optional).
    for p in params:
        for bad in FREE_TEXT.get(p.name, []) if _kind(p) is str else []:
            given = {**placeholders, p.name: [bad] if p.param_type_name == "argument" else [p.opts[0], bad]}
            argv = [*path, *(t for tokens in given.values() for t in tokens)]
            label = p.name if p.param_type_name == "argument" else p.opts[0]  # what the error must name
            cases.append((f"free text {label} {bad!r}", argv))
    if any(p.param_type_name == "argument" and _kind(p) is Path for p in params):
        cases.append(("argument path in a missing folder", [*path, *required]))
    return cases


class _HungError(Exception):
    pass


def test_every_command_is_walked() -> None:
    # The walk reaches the commands the README documents (a wiring check of the enumeration itself).
    names = {" ".join(p) for p, _ in _all_commands()}
    assert {"study", "fleet summary", "csms serve", "scenario validate", "frequency agc", "bid"} <= names
    assert len(names) >= 25


@pytest.mark.parametrize("path", [p for p, _ in _all_commands()], ids=lambda p: " ".join(p))
def test_every_command_rejects_bad_input_with_one_line(
    path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    cmd = dict(_all_commands())[path]
    monkeypatch.chdir(tmp_path)  # anything a command writes (a database, a folder) lands in a temporary folder
    (tmp_path / "no-such-folder").write_text("a file, so nothing can be created beneath it")

    def hung(signum: int, frame: object) -> None:
        raise _HungError  # a command that serves or computes instead of failing at once (stops a server it started)

    old = signal.signal(signal.SIGALRM, hung)
    try:
        for what, argv in _bad_inputs(path, cmd, tmp_path):
            signal.alarm(60)
            try:
                code, out, err = run_cli(capsys, *argv)
            except _HungError:
                pytest.fail(f"{' '.join(argv)} ({what}): still running after 60 s instead of failing")
            finally:
                signal.alarm(0)
            assert code == 2, f"{' '.join(argv)} ({what}): exit {code}, stderr {err!r}"
            assert err.count("\n") == 1 and err.startswith("error: "), f"{' '.join(argv)} ({what}): {err!r}"
            assert "Traceback" not in err and out == "", f"{' '.join(argv)} ({what}): stdout {out!r}"
            if what.startswith("free text"):  # the error names the parameter that was refused
                assert what.split()[2] in err, f"{' '.join(argv)} ({what}): {err!r}"
    finally:
        signal.signal(signal.SIGALRM, old)
