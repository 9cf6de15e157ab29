"""docs/tables.md cannot rot: its ```python blocks run, in order, in one namespace (the one real end-to-end study
of the table and CSV tests: the CSV example, whose files the tables must reproduce)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tables.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_the_walk_through_has_code() -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 5 and any("to_frames()" in b for b in blocks) and any(".replace(" in b for b in blocks)


@pytest.mark.slow
def test_docs_tables_walk_through_runs_on_the_csv_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "docs_tables"}
    for block in python_blocks(DOC.read_text()):
        exec(compile(block, str(DOC), "exec"), ns)
    assert (tmp_path / "fleet_power.png").stat().st_size > 0
    frames, data = ns["frames"], tmp_path / "examples" / "data"
    assert not (frames["study_steps"]["status"] == "failed").any(), frames["study_steps"]
    # The tables carry the files' data: the 40 sessions on the files' clock, the prices, the base load.
    sessions = pd.read_csv(data / "sessions.csv")
    evs = frames["fleet_evs"]
    arrival = pd.to_datetime(sessions["arrival_time"]).dt.tz_localize("America/Los_Angeles")
    assert len(evs) == 40 and (evs["arrival_time"].to_numpy() == arrival.to_numpy()).all()
    np.testing.assert_allclose(
        frames["schedule_steps"]["price_per_mwh"], pd.read_csv(data / "prices.csv")["price_per_mwh"]
    )
    base = pd.read_csv(data / "base_load.csv")["p_kw"]
    np.testing.assert_allclose(frames["feeder_steps"]["p_base_total_kw"], base, rtol=1e-9)
    steps = ns["steps"]
    assert str(steps.index.tz) == "America/Los_Angeles" and steps.index[0] == pd.Timestamp("2025-01-15 20:00", tz="UTC")
    # Energy from the frame = the sum of p_kw x dt_h the walk-through prints.
    assert ns["energy_kwh"] == pytest.approx(float(steps["p_uncontrolled_kw"].sum()) * 0.25)
