"""The voltage-profile figure's paths: from the substation to each end of the feeder."""

from __future__ import annotations

from v2gtwin.grid.feeder import ieee33
from v2gtwin.report.figures import root_leaf_paths


def test_ieee33_paths_run_from_the_substation_to_each_end() -> None:
    # Baran & Wu (1989) Fig. 2: main feeder 1-18; laterals 2-19..22, 3-23..25, 6-26..33: four ends, each path
    # from bus 1 (the substation). Deepest end first: 18 (17 branches), 33 (5 + 8 = 13), then 22 and 25 (5 each).
    f = ieee33()
    paths = [[str(f.bus_labels[b]) for b in p] for p in root_leaf_paths(f.parent)]
    assert paths[0] == [str(i) for i in range(1, 19)]
    assert paths[1] == [*map(str, range(1, 7)), *map(str, range(26, 34))]
    assert sorted(paths[2:]) == [["1", "2", "19", "20", "21", "22"], ["1", "2", "3", "23", "24", "25"]]
