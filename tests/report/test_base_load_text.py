"""The report's sentence on the feeder's base load names what the study used."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from v2gtwin.report.network_section import base_load_text
from v2gtwin.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_own_base_load_file_is_named_not_the_rts_shape() -> None:
    # examples/own_data.toml sets feeder.base_load_csv: the feeder step spreads that file's total over the buses
    # by their nominal loads (study.py, feeder step); the old sentence said "x 0.5 x the IEEE RTS-79 ... shape".
    sc = load_scenario(EXAMPLES / "own_data.toml")
    text = base_load_text(SimpleNamespace(scenario=sc, network=None))  # type: ignore[arg-type]
    assert "base_load.csv" in text and "spread over the buses by their nominal loads" in text
    assert "x the IEEE RTS-79" not in text
    # Without the file: the built-in shape, with the scenario's scale.
    plain = base_load_text(SimpleNamespace(scenario=sc.replace(feeder={"base_load_csv": None}), network=None))  # type: ignore[arg-type]
    assert f"x {sc.feeder.peak_load_scale:g} x the IEEE RTS-79" in plain
