"""The voltage-profile figure draws the main feeder and each lateral as its own line from the substation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from v2gtwin.grid.feeder import ieee33
from v2gtwin.report.figures import feeder_paths, fig_voltage_profile


def test_ieee33_splits_into_its_main_feeder_and_three_laterals() -> None:
    # Baran & Wu (1989) Fig. 2: main feeder 1-18; laterals 2-19..22, 3-23..25, 6-26..33. Deepest end first
    # (18 at 17 branches, 33 at 5 + 8 = 13, then 22 and 25 both at 5, by feeder order).
    f = ieee33()
    paths = [[str(f.bus_labels[b]) for b in p] for p in feeder_paths(f.parent)]
    assert paths[0] == [str(i) for i in range(1, 19)]
    assert paths[1] == ["6", *map(str, range(26, 34))]
    assert sorted(paths[2:]) == [["2", "19", "20", "21", "22"], ["3", "23", "24", "25"]]
    # Every bus but the source is drawn once after its path's first bus.
    after_first = sorted(b for p in feeder_paths(f.parent) for b in p[1:])
    assert after_first == list(range(1, 33))


def test_voltage_profile_lines_never_go_back_towards_the_substation() -> None:
    f = ieee33()
    v = np.linspace(1.0, 0.9, f.n_bus)
    ts = SimpleNamespace(v_profile_base_pu=v + 0.01, v_profile_fleet_pu=v, v_profile_voltvar_pu=v, worst_step=3)
    section = SimpleNamespace(timeseries=ts, n_bus=f.n_bus, bus_labels=f.bus_labels, parent=f.parent)
    fig = fig_voltage_profile(section, "12:45")  # type: ignore[arg-type]
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 * 4  # base and with-EVs, 4 paths each (volt-var equal to with-EVs: not drawn)
    for line in lines:
        x = np.asarray(line.get_xdata())
        assert np.all(np.diff(x) == 1)  # one branch further from the substation at each point: no sawtooth
