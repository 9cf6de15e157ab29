"""`v2gtwin comply`: exit status 0 / 1 / 2, the JSON, one-line errors (wiring and error paths)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from tests.compliance.registers import base
from v2gtwin.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "register.toml"


def _write(tmp_path: Path, d: dict) -> Path:  # type: ignore[type-arg]
    p = tmp_path / "reg.toml"
    p.write_bytes(tomli_w.dumps(d).encode())
    return p


def test_compliant_register_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comply", str(_write(tmp_path, base()))]) == 0
    out = capsys.readouterr().out
    assert "result: PASS (exit status 0)" in out and "nothing to remediate" in out


def test_example_register_fails_with_exit_1_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comply", str(EXAMPLE), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] is False and d["counts"]["fail"] > 0
    rules = {(f["rule"], f["asset"]): f["status"] for f in d["findings"]}
    # The example's deliberate failures (see the comments in examples/register.toml).
    assert rules[("IEEE1547-TRIP-UF1", "INV-LEGACY")] == "fail"
    assert rules[("METER-SUM", "SUM-HOME")] == "fail"
    assert rules[("FERC2222-DOUBLE", "INV-HOME")] == "fail"
    assert rules[("IEEE1547-TRIP-UF1", "INV-DEPOT")] == "pass"
    assert set(d) >= {"findings", "remediation", "counts", "meter_sums", "passed"}


def test_text_output_has_findings_and_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comply", str(EXAMPLE)]) == 1
    out = capsys.readouterr().out
    assert "FAIL    IEEE1547-TRIP-UF1" in out and "remediation plan (USD)" in out and "exit status 1" in out
    # A finding resting on a single-source value carries " *" and the footnote says what it means, and that no
    # value was checked against the standards' texts.
    assert any(line.endswith("] *") for line in out.splitlines())
    assert "* rests on a value only one (secondary) source gives" in out
    assert "No reference value was checked against the standards' own texts" in out


def test_no_costs_given_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = base()
    d["meters"][0]["revenue_grade"] = False
    assert main(["comply", str(_write(tmp_path, d))]) == 1
    out = capsys.readouterr().out
    assert "total cost: no costs given" in out and "total cost 0" not in out


def test_options_change_the_market(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = base()
    d["meters"][0]["interval_min"] = 15
    p = _write(tmp_path, d)
    assert main(["comply", str(p)]) == 1  # 15-min meter, 5-min market
    capsys.readouterr()
    assert main(["comply", str(p), "--market-interval-min", "15", "--json"]) == 0
    assert main(["comply", str(p), "--market-interval-min", "15", "--min-size-kw", "500"]) == 1  # 220 kW < 500


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--market-interval-min", "-5"], "settlement_interval_min"),
        (["--required-class", "0.3"], "required_accuracy_class"),
        (["--family", "nope"], "unknown rule family"),
        (["--market-interval-min", "nan"], "settlement_interval_min: must be a finite number in (0, 1440]"),
    ],
)
def test_bad_options_exit_2_one_line(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comply", str(EXAMPLE), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_bad_register_names_asset_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tomllib.loads(EXAMPLE.read_text())
    d["inverters"][1]["trip"]["uf1_hz"] = 0.975
    assert main(["comply", str(_write(tmp_path, d))]) == 2
    err = capsys.readouterr().err
    assert "inverter 'INV-HOME': field trip.uf1_hz: 0.975 looks like per-unit" in err and err.count("\n") == 1


def test_real_process_exit_status() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "v2gtwin.cli", "comply", str(EXAMPLE), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and json.loads(proc.stdout)["passed"] is False and proc.stderr == ""
