"""`v2gtwin network import`: a MATPOWER / OpenDSS feeder's summary and base case, or one line and exit 2."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli

DATA = Path(__file__).resolve().parent / "data"


def test_import_matpower_json_matches_pandapower(capsys: pytest.CaptureFixture[str]) -> None:
    import pandapower as pp
    from pandapower.converter.matpower import from_mpc

    code, out, err = run_cli(
        capsys, "network", "import", str(DATA / "case33bw_data.m"), "--default-ampacity-a", "300", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["format"] == "matpower" and data["n_bus"] == 33 and data["n_branch"] == 32
    assert data["n_branch_rated"] == 32 and data["n_branch_unrated"] == 0
    assert data["notes"] == ["ampacity: default of 300 A for 32 branches without a rating in case33bw_data.m"]
    # Reference: pandapower's own conversion and Newton-Raphson on the same file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net = from_mpc(str(DATA / "case33bw_data.m"), f_hz=50)
    pp.runpp(net, tolerance_mva=1e-11)
    pf = data["powerflow"]
    assert pf["v_min_pu"] == pytest.approx(net.res_bus.vm_pu.min(), abs=1e-6)
    assert pf["v_min_bus"] == str(int(net.res_bus.vm_pu.idxmin()) + 1)  # MATPOWER's number: pandapower's + 1
    # Every bus, by MATPOWER's number, in the file's order.
    assert list(pf["v_pu"]) == [str(i) for i in range(1, 34)]
    for b, v in net.res_bus.vm_pu.items():
        assert pf["v_pu"][str(int(b) + 1)] == pytest.approx(v, abs=1e-6)
    assert pf["losses_kw"] == pytest.approx(net.res_line.pl_mw.sum() * 1e3, rel=1e-6)
    # Highest loading: the first branch carries the whole feeder; its current over the 300 A default.
    i_a = net.res_line.i_ka.max() * 1e3
    assert pf["branch_loading_max"] == "branch 1-2"
    assert pf["branch_loading_max_pu"] == pytest.approx(i_a / 300.0, rel=1e-6)


def test_import_opendss_text_names_the_reduction(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "network", "import", str(DATA / "ieee33.dss"))
    assert code == 0, err
    assert "format                           opendss" in out
    assert "v_min_bus                      18" in out
    assert "note: OpenDSS model reduced to its balanced single-phase (positive-sequence) equivalent" in out
    assert "note: ampacity: no rating for 32 branches in ieee33.dss" in out


def test_import_bad_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    code, _, err = run_cli(capsys, "network", "import", str(p))
    assert_one_line_error(code, err)
    assert "notes.txt: not a MATPOWER case (.m) or OpenDSS script (.dss)" in err
    code, _, err = run_cli(capsys, "network", "import", str(DATA / "case33bw.m"))
    assert_one_line_error(code, err)
    assert "case33bw.m: line" in err and "MATPOWER code changes the case" in err
    lateral = (
        (DATA / "ieee33.dss")
        .read_text()
        .replace(
            "set voltagebases", "new line.lat bus1=18.1 bus2=40.1 phases=1 r1=0.5 x1=0.3 length=1\nset voltagebases"
        )
    )
    q = tmp_path / "lateral.dss"
    q.write_text(lateral)
    code, _, err = run_cli(capsys, "network", "import", str(q))
    assert_one_line_error(code, err)
    assert "lateral.dss: Line.lat: 1-phase element (unbalanced-only)" in err
    code, _, err = run_cli(capsys, "network", "import", str(tmp_path / "missing.m"))
    assert_one_line_error(code, err)
    assert "missing.m: no such file" in err
    code, _, err = run_cli(capsys, "network", "import", str(DATA / "ieee33.dss"), "--default-ampacity-a", "-5")
    assert_one_line_error(code, err)
    assert "--default-ampacity-a" in err


def test_import_follows_redirects_and_keeps_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (DATA / "ieee33.dss").read_text().splitlines()
    sub = tmp_path / "model"
    sub.mkdir()
    (sub / "lines.dss").write_text("\n".join(x for x in lines if x.startswith("new line")) + "\n")
    (sub / "loads.dss").write_text("\n".join(x for x in lines if x.startswith("new load")) + "\n")
    head = [x for x in lines if x.startswith(("clear", "new circuit"))]
    (sub / "master.dss").write_text("\n".join([*head, "redirect lines.dss", "redirect loads.dss", "solve"]) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli(capsys, "network", "import", str(sub / "master.dss"), "--json")
    assert code == 0, err
    data = json.loads(out)
    # Every load of the case found through the redirect: 3,715 kW (Baran & Wu's total).
    assert data["p_load_total_kw"] == pytest.approx(3715.0)
    assert Path.cwd() == elsewhere


def test_import_directory_and_collapsing_base_case_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "feeders.dss"
    d.mkdir()
    code, _, err = run_cli(capsys, "network", "import", str(d))
    assert_one_line_error(code, err)
    assert "feeders.dss: a directory, not a MATPOWER case" in err
    # Baran & Wu's loads x 20 (OpenDSS's LoadMult): at x 1 the far end is already at 0.913 pu (an 8.7 % drop),
    # twenty times that load has no power-flow solution (voltage collapse); the error names the file.
    p = tmp_path / "heavy.dss"
    p.write_text((DATA / "ieee33.dss").read_text().replace("\nsolve", "\nset loadmult=20\nsolve"))
    code, _, err = run_cli(capsys, "network", "import", str(p))
    assert_one_line_error(code, err)
    assert err.startswith("error: heavy.dss: its base case") and "no power-flow solution" in err


def test_scenario_feeder_path_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "adir").mkdir()
    s = tmp_path / "s.toml"
    s.write_text('[network]\n[[network.feeders]]\nsource = "file"\npath = "adir"\n')
    code, _, err = run_cli(capsys, "scenario", "validate", str(s))
    assert_one_line_error(code, err)
    assert "network.feeders.0.path: a directory, not a feeder file" in err
    assert "more)" not in err  # the feeders list left empty by the dropped entry is no second error


def test_require_ratings_names_the_file_and_branch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # tests/data/ieee33.dss sets no normamps (Baran & Wu publish no ratings): its first line is unrated.
    code, _, err = run_cli(capsys, "network", "import", str(DATA / "ieee33.dss"), "--require-ratings")
    assert_one_line_error(code, err)
    assert "ieee33.dss: Line.l1_2: no thermal rating (32 branches without one)" in err
    code, _, err = run_cli(
        capsys, "network", "import", str(DATA / "ieee33.dss"), "--require-ratings", "--default-ampacity-a", "300"
    )
    assert code == 0, err
    # In a scenario: require_ratings refuses the file (no 400 A default); the feeder's own ampacity_a satisfies it.
    feeder = f'[[network.feeders]]\nsource = "file"\npath = "{DATA / "ieee33.dss"}"\n'
    s = tmp_path / "s.toml"
    s.write_text("[fleet]\nn_evs = 20\n[network]\nrequire_ratings = true\n" + feeder)
    code, _, err = run_cli(capsys, "network", "feeders", "--scenario", str(s))
    assert_one_line_error(code, err)
    assert "ieee33.dss: Line.l1_2: no thermal rating" in err and "ampacity_a" in err
    s.write_text("[fleet]\nn_evs = 20\n[network]\n" + feeder + "ampacity_a = 250\n")
    code, out, err = run_cli(capsys, "network", "feeders", "--scenario", str(s), "--require-ratings", "--json")
    assert code == 0, err
    (row,) = json.loads(out)["feeders"]
    assert row["n_branch_rated"] == 32
    assert any("the scenario's ampacity_a, 250 A" in n for n in row["notes"])
    # The default scenario's built-in feeders have no ratings: --require-ratings refuses them by name.
    code, _, err = run_cli(capsys, "network", "envelope", "--require-ratings")
    assert_one_line_error(code, err)
    assert "ieee33: line 0: no thermal rating" in err


def test_default_rating_is_said_and_limits_export_hosting(capsys: pytest.CaptureFixture[str]) -> None:
    # The default network's first feeder gets OpenDSS's 400 A on every branch, said in the output; at bus 2 the
    # export hosting is then bound by line 0 (the substation branch): its current at the limit is 400 A, i.e.
    # I = |S| / (sqrt(3) V) with S the export less the base load downstream (checked by pandapower's own flow).
    import numpy as np
    import pandapower as pp

    from v2gtwin.grid.feeder import to_pandapower
    from v2gtwin.grid.network import build_network_feeder
    from v2gtwin.scenario import DEFAULT_SCENARIO

    code, out, err = run_cli(capsys, "feeder", "hosting", "--direction", "export", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert any("OpenDSS's default Line NormAmps, 400 A" in n for n in data["notes"])
    (bus2,) = [n for n in data["nodes"] if n["bus"] == "2"]
    assert bus2["binding"] == "ampacity of line 0"
    assert DEFAULT_SCENARIO.network is not None
    feeder, scale, _ = build_network_feeder(DEFAULT_SCENARIO.network.feeders[0], DEFAULT_SCENARIO.seed, 0)
    assert data["load_scale"] == pytest.approx(scale)
    p = feeder.p_load_kw * scale
    p[int(np.flatnonzero(feeder.bus_labels == "2")[0])] -= bus2["p_host_kw"]
    net = to_pandapower(feeder, p, feeder.q_load_kvar * scale)
    pp.runpp(net, tolerance_mva=1e-9)
    i_line0_a = float(net.res_line.i_ka.iloc[0]) * 1e3
    assert i_line0_a == pytest.approx(400.0, rel=2e-3)
    code, out, _ = run_cli(capsys, "feeder", "powerflow")
    assert code == 0 and "note: ampacity: no rating in ieee33's data for every branch" in out
