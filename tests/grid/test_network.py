"""The fleet on a network of feeders: placement by load share, base-load profiles, bad specs, the study's step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from v2gtwin.errors import DataError, ScenarioError
from v2gtwin.fleet import run_uncontrolled
from v2gtwin.grid.network import build_network, calc_load_share_counts
from v2gtwin.grid.network_analysis import run_network_analysis
from v2gtwin.jsonout import dumps_strict
from v2gtwin.scenario import load_scenario, parse_scenario
from v2gtwin.study import StudyChain, build_fleet

# Baran & Wu (1989), Table of loads of the 33-bus feeder [kW], buses 2..33 (bus 1 is the source): total 3715 kW.
BARAN_WU_P_KW = [
    100, 90, 120, 60, 60, 200, 200, 60, 60, 45, 60, 60, 120, 60, 60, 60,
    90, 90, 90, 90, 90, 90, 420, 420, 60, 60, 60, 120, 200, 150, 210, 60,
]  # fmt: skip


def _scenario(n_evs: int, feeders: list[dict[str, object]], **network: object) -> object:
    return parse_scenario({"fleet": {"n_evs": n_evs}, "network": {"feeders": feeders, **network}})


def test_largest_remainder_counts_by_hand() -> None:
    # 8 EVs on loads 0, 1, 2, 1 (shares 0, 1/4, 1/2, 1/4): exactly 0, 2, 4, 2.
    assert calc_load_share_counts(8, [0.0, 1.0, 2.0, 1.0]).tolist() == [0, 2, 4, 2]
    # 7 on 0.5, 0.3, 0.2: quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); the one left goes to the largest
    # remainder (0.5, the first): 4, 2, 1.
    assert calc_load_share_counts(7, [0.5, 0.3, 0.2]).tolist() == [4, 2, 1]
    # 10 on three equal loads: quotas 3.33 each, ties broken by the lower index: 4, 3, 3.
    assert calc_load_share_counts(10, [1.0, 1.0, 1.0]).tolist() == [4, 3, 3]
    with pytest.raises(DataError, match="all zero"):
        calc_load_share_counts(3, [0.0, 0.0])
    with pytest.raises(DataError, match="finite values >= 0"):
        calc_load_share_counts(3, [1.0, -1.0])


@given(
    st.integers(0, 5000),
    st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=60).filter(lambda w: sum(w) > 0),
)
def test_largest_remainder_counts_are_within_one_of_the_exact_share(n: int, load: list[float]) -> None:
    counts = calc_load_share_counts(n, load)
    quota = n * np.asarray(load) / np.sum(load)
    assert counts.sum() == n and (counts >= 0).all()
    assert np.all(np.abs(counts - quota) < 1.0 + 1e-9)
    assert np.all(counts[np.asarray(load) == 0] == 0)


def test_evs_per_bus_of_the_33_bus_feeder_follow_baran_wu_loads_exactly() -> None:
    # 743 EVs on 3715 kW: one EV per 5 kW, and every Baran & Wu load is a multiple of 5 kW, so the load-share
    # count of each bus is exact: bus 2 (100 kW) 20 EVs, bus 11 (45 kW) 9, buses 24 and 25 (420 kW) 84 each.
    sc = _scenario(743, [{"source": "ieee33", "peak_scale_spread": 0.0, "shift_max_h": 0.0}])
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    # Feeder order is topological; the labels stay the source's (Baran & Wu's bus numbers 1-33).
    by_label = dict(zip(net.feeders[0].bus_labels.astype(int).tolist(), net.n_evs_per_bus(0).tolist(), strict=True))
    assert by_label[1] == 0
    assert [by_label[b] for b in range(2, 34)] == [p // 5 for p in BARAN_WU_P_KW]
    assert [by_label[b] for b in (2, 11, 24, 25)] == [20, 9, 84, 84]


def test_feeder_shares_follow_base_load_energy() -> None:
    # Two 33-bus feeders, no seeded variation, peak scales 0.5 and 1.0: base-load energies 1 : 2, so 300 EVs
    # split exactly 100 : 200.
    feeders = [
        {"source": "ieee33", "peak_load_scale": 0.5, "peak_scale_spread": 0.0, "shift_max_h": 0.0},
        {"source": "ieee33", "peak_load_scale": 1.0, "peak_scale_spread": 0.0, "shift_max_h": 0.0},
    ]
    sc = _scenario(300, feeders)
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    assert net.n_evs_per_feeder().tolist() == [100, 200]
    assert [f.name for f in net.feeders] == ["ieee33-1", "ieee33-2"]  # same name twice: numbered
    frame = net.to_frame(sc.time.dt_h)
    assert frame["n_evs"].tolist() == [100, 200] and frame["feeder"].tolist() == ["ieee33-1", "ieee33-2"]
    # Energies 1 : 2 as the peak scales (no variation): 0.5 and 1.0 x the same day.
    assert frame["e_base_kwh"][1] == pytest.approx(2.0 * frame["e_base_kwh"][0], rel=1e-12)
    assert frame["notes"][0] == (
        "ampacity: no rating in ieee33's data for every branch: OpenDSS's default Line NormAmps, 400 A, on them"
    )
    assert np.all(net.feeders[0].ampacity_a[1:] == 400.0) and frame["n_branch_rated"].tolist() == [32, 32]


def test_counts_within_one_ev_of_the_load_share_on_mixed_feeders() -> None:
    feeders = [
        {"source": "ieee33"},
        {"source": "synthetic", "count": 3, "n_bus": 45, "total_load_kw": 2500.0},
        {"source": "synthetic", "n_bus": 80, "profile": "commercial"},
    ]
    sc = _scenario(1234, feeders)
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    energy = np.array([p.sum() for p in net.p_base_kw])
    per_feeder = net.n_evs_per_feeder()
    assert per_feeder.sum() == 1234
    assert np.all(np.abs(per_feeder - 1234 * energy / energy.sum()) < 1.0)
    for k, f in enumerate(net.feeders):
        on_bus = net.n_evs_per_bus(k)
        share = np.clip(f.p_load_kw, 0, None) * (np.arange(f.n_bus) > 0)
        assert np.all(np.abs(on_bus - per_feeder[k] * share / share.sum()) < 1.0)
        assert on_bus[0] == 0
        evs = net.evs_of(k)
        assert np.all((net.ev_bus[evs] >= 1) & (net.ev_bus[evs] < f.n_bus))
    # Five synthetic topologies, each drawn with its own seed: no two alike.
    parents = [tuple(f.parent) for f in net.feeders[1:]]
    assert len(set(parents)) == len(parents)


def test_base_load_follows_its_profile_source_values() -> None:
    # BDEW H25, January working day, quarter-hour values (demandlib bdew_data/h25.csv): 18:00-19:00 40.960,
    # 41.542, 41.918, 42.120 (mean 41.635, the day's highest hour); 03:00-04:00 15.018, 14.938, 14.943, 14.958
    # (mean 14.964): 35.94 % of the peak hour. G25 (commercial): 10:00-11:00 67.977, 68.225, 68.078, 67.838
    # (mean 68.030, highest); 18:00-19:00 39.406, 36.687, 33.488, 31.331 (mean 35.228): 51.78 %.
    feeders = [
        {"source": "ieee33", "peak_scale_spread": 0.0, "shift_max_h": 0.0, "profile": "residential"},
        {"source": "ieee33", "peak_scale_spread": 0.0, "shift_max_h": 0.0, "profile": "commercial"},
    ]
    sc = _scenario(10, feeders)
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    total_kw = 0.5 * 3715.0  # peak_load_scale x Baran & Wu's total load
    t = sc.time
    res, com = (p.sum(axis=1) for p in net.p_base_kw)
    assert res[t.step_at(18.25)] == pytest.approx(total_kw, rel=1e-9)
    # The package's table is rounded to 0.1 % of the peak: up to 0.05 / 35.9 = 0.14 % off at 03:00.
    assert res[t.step_at(3.0)] == pytest.approx(total_kw * 14.964 / 41.635, rel=1.5e-3)
    assert com[t.step_at(10.5)] == pytest.approx(total_kw, rel=1e-9)
    assert com[t.step_at(18.0)] == pytest.approx(total_kw * 35.228 / 68.030, rel=1e-3)
    # q follows the same shape: Baran & Wu's 2300 kvar x 0.5 at the residential peak.
    assert net.q_base_kvar[0].sum(axis=1)[t.step_at(18.0)] == pytest.approx(0.5 * 2300.0, rel=1e-9)


def test_seeded_variation_stays_in_its_stated_range() -> None:
    sc = _scenario(50, [{"source": "synthetic", "count": 6, "peak_scale_spread": 0.2, "shift_max_h": 1.0}])
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    scales, shifts = np.array(net.peak_scale), np.array(net.shift_h)
    assert np.all((scales >= 0.5 * 0.8) & (scales <= 0.5 * 1.2)) and np.unique(scales).size == 6
    assert np.all(np.abs(shifts) <= 1.0)
    for k, f in enumerate(net.feeders):
        # The profile's peak hour is 1.0: the feeder's base peak is its scale times its nominal load.
        assert net.p_base_kw[k].sum(axis=1).max() == pytest.approx(scales[k] * f.p_load_kw.sum(), rel=1e-9)


def test_study_network_step_places_the_fleet_and_runs_the_first_feeder_in_detail() -> None:
    sc = _scenario(400, [{"source": "ieee33"}, {"source": "synthetic", "count": 2, "n_bus": 40}])
    chain = StudyChain(sc)
    for step in ("build_fleet", "envelope", "uncontrolled", "network", "feeder"):
        getattr(chain, step)()
    section = chain.network_
    assert section is not None
    net = section.network
    fleet = chain._fleet()
    assert np.array_equal(fleet.bus, net.ev_bus)
    unc = chain.uncontrolled_
    assert unc is not None
    # Every EV's power lands on exactly one feeder: the feeders' EV totals add up to the fleet's.
    total = sum(fl.p_ev_total_kw for fl in section.flows)
    np.testing.assert_allclose(total, unc.p_kw.sum(axis=1), rtol=1e-12, atol=1e-9)
    # The detail feeder is the network's first, with its own EVs only.
    assert chain.feeder_ is net.feeders[0]
    assert chain.feeder_fleet is not None and chain.feeder_fleet.n == int(np.sum(net.ev_feeder == 0))
    assert chain.feeder_notes[0].startswith("feeder 1 of the network's 3 (ieee33)")
    out = json.loads(dumps_strict(section.to_dict()))
    assert [r["n_evs"] for r in out["summary"]["feeders"]] == net.n_evs_per_feeder().tolist()
    # The linear models are taken around each feeder's own base load: exact at zero extra power.
    for k, lin in enumerate(net.linear_models()):
        assert lin.feeder is net.feeders[k]
        np.testing.assert_allclose(lin.base.v_pu.min(axis=1), section.flows[k].v_min_base_pu, rtol=0, atol=1e-12)
    assert len(out["series"][0]["v_min_base_pu"]) == sc.time.n_steps


def test_a_collapsing_feeder_is_counted_and_written_as_null() -> None:
    # A weak synthetic feeder (0.8 pu at its nominal 4 MW) at 30 % load with 6,000 EVs (about 7 MW of
    # uncontrolled charging in the evening): no power-flow solution at the evening peak.
    sc = _scenario(6000, [{"source": "synthetic", "n_bus": 20, "v_min_base_pu": 0.8, "peak_load_scale": 0.3}])
    fleet = build_fleet(sc)
    net = build_network(sc.network, fleet, sc.time, sc.seed)
    fleet = net.place(fleet)
    section = run_network_analysis(sc.network, net, fleet, run_uncontrolled(fleet).p_kw, sc.time)
    fl = section.flows[0]
    assert fl.n_steps_collapsed > 0
    out = json.loads(dumps_strict(section.to_dict()))
    series = out["series"][0]["v_min_uncontrolled_pu"]
    assert series.count(None) == fl.n_steps_collapsed
    assert out["summary"]["feeders"][0]["n_steps_collapsed"] == fl.n_steps_collapsed


def test_scenario_without_network_keeps_the_single_feeder() -> None:
    sc = parse_scenario({})
    assert sc.network is None
    chain = StudyChain(sc)
    for step in ("build_fleet", "envelope", "uncontrolled", "network"):
        getattr(chain, step)()
    assert chain.network_ is None


@pytest.mark.parametrize(
    ("network", "field"),
    [
        ({"feeders": [{"source": "file"}]}, "network.feeders.0: source = 'file' needs path"),
        ({"feeders": [{"source": "file", "path": "no_such.m"}]}, "network.feeders.0.path: no such feeder file"),
        ({"feeders": [{"source": "ieee33", "n_bus": 40}]}, "n_bus is only for source = 'synthetic'"),
        ({"feeders": [{"source": "synthetic", "path": "x.m"}]}, "network.feeders.0.path"),
        ({"feeders": [{"source": "ieee33", "colour": 1}]}, "network.feeders.0.colour: unknown key"),
        ({"feeders": [{"source": "ieee33", "count": 0}]}, "network.feeders.0.count"),
        ({"feeders": [{"source": "ieee33", "count": 600}, {"source": "ieee33", "count": 600}]}, "1200 feeders"),
        ({"feeders": []}, "network.feeders"),
        ({"feeders": [{"source": "ieee33"}], "v_max_pu": 0.99}, "network.v_max_pu"),
        ({"feeders": [{"source": "ieee33"}], "allocation_rule": "fair"}, "network.allocation_rule"),
        ({"feeders": [{"source": "nowhere"}]}, "network.feeders.0.source"),
    ],
)
def test_bad_network_specs_are_one_line_errors_naming_the_field(network: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"network": network}, source="s.toml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("s.toml: ") and field in msg


def test_relative_feeder_path_is_taken_from_the_scenario_files_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    case = tmp_path / "sub" / "feeder.m"
    case.write_text("% not a case\n")
    toml = tmp_path / "sub" / "s.toml"
    toml.write_text('[network]\n[[network.feeders]]\nsource = "file"\npath = "feeder.m"\n')
    sc = load_scenario(toml)
    assert sc.network is not None and sc.network.feeders[0].path == str(case)


def test_a_file_feeder_that_cannot_be_read_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.m"
    bad.write_text("this is neither a MATPOWER case nor an OpenDSS script\n")
    sc = _scenario(5, [{"source": "file", "path": str(bad)}])
    with pytest.raises(DataError, match=r"notes\.m"):
        build_network(sc.network, build_fleet(sc), sc.time, sc.seed)


def test_cli_network_feeders_prints_the_study_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli_helpers import assert_one_line_error, run_cli

    scen = tmp_path / "net.toml"
    scen.write_text(
        "[fleet]\nn_evs = 120\n[network]\nallocation_rule = 'per_bus_max'\n"
        "[[network.feeders]]\nsource = 'ieee33'\n"
        "[[network.feeders]]\nsource = 'synthetic'\ncount = 2\nn_bus = 30\nprofile = 'commercial'\n"
    )
    code, out, err = run_cli(capsys, "network", "feeders", "--scenario", str(scen), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["allocation_rule"] == "per_bus_max"
    assert [f["feeder"] for f in data["feeders"]] == ["ieee33", "synthetic30-1", "synthetic30-2"]
    assert sum(f["n_evs"] for f in data["feeders"]) == data["totals"]["n_evs"] == 120
    code, out, _ = run_cli(capsys, "network", "feeders", "--scenario", str(scen))
    assert code == 0 and "synthetic30-2" in out and "OpenDSS's default Line NormAmps, 400 A" in out
    plain = tmp_path / "plain.toml"
    plain.write_text("[fleet]\nn_evs = 10\n")
    assert_one_line_error(*run_cli(capsys, "network", "feeders", "--scenario", str(plain))[::2])


DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name", ["case33bw_data.m", "ieee33.dss"])
def test_file_feeders_place_evs_by_their_own_loads_and_keep_their_labels(name: str) -> None:
    # The same Baran & Wu case as a MATPOWER file and as an OpenDSS script: 743 EVs land one per 5 kW of the
    # published loads, at the file's own bus names.
    sc = _scenario(743, [{"source": "file", "path": str(DATA / name), "peak_scale_spread": 0.0, "shift_max_h": 0.0}])
    net = build_network(sc.network, build_fleet(sc), sc.time, sc.seed)
    feeder = net.feeders[0]
    assert net.source == ("file",)
    counts = net.n_evs_per_bus(0)
    loads = feeder.p_load_kw
    assert counts.sum() == 743
    np.testing.assert_array_equal(counts, np.round(loads / 5.0).astype(int))
    assert sorted(np.round(loads[loads > 0]).astype(int).tolist()) == sorted(BARAN_WU_P_KW)
    assert any("rating" in n or "ampacity" in n for n in feeder.notes)  # no ratings in the file: said so
