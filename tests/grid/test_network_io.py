"""Feeders read from MATPOWER and OpenDSS files: the imported feeder's exact power flow against the file's own
tool (pandapower on the MATPOWER case, OpenDSS on the OpenDSS script), and the one-line refusals."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import run_powerflow
from v2gtwin.grid.network_io import check_ratings, read_feeder_file, read_matpower, read_opendss

DATA = Path(__file__).resolve().parents[1] / "data"
CASE33_DATA = DATA / "case33bw_data.m"  # MATPOWER's case33bw in per unit (tests/data/SOURCES.md)
CASE33_ORIG = DATA / "case33bw.m"  # MATPOWER's file as distributed (ohms and kW converted by code)
IEEE33_DSS = DATA / "ieee33.dss"


def _pandapower_v_pu(path: Path) -> dict[str, float]:
    """pandapower's Newton-Raphson on pandapower's own conversion of the file, by MATPOWER bus number."""
    import pandapower as pp
    from pandapower.converter.matpower import from_mpc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net = from_mpc(str(path), f_hz=50)
    pp.runpp(net, tolerance_mva=1e-11)
    return {str(int(b) + 1): float(v) for b, v in net.res_bus.vm_pu.items()}


def _opendss_v_pu(path: Path) -> tuple[dict[str, float], Any]:
    """OpenDSS's own solution of the file: positive-sequence voltage of every bus [pu of its kVBase]."""
    import opendssdirect

    ctx = opendssdirect.NewContext()
    ctx.Basic.AllowChangeDir(False)
    ctx.Text.Command(f'compile "{path}"')
    ctx.Text.Command("set tolerance=0.0000001")  # OpenDSS's default is 1e-4 pu: too coarse for a 1e-6 check
    ctx.Solution.Solve()
    assert ctx.Solution.Converged()
    v = {}
    for b in ctx.Circuit.AllBusNames():
        ctx.Circuit.SetActiveBus(b)
        v[b] = ctx.Bus.SeqVoltages()[1] / (ctx.Bus.kVBase() * 1000.0)
    return v, ctx


def _our_v_pu(feeder: Any) -> dict[str, float]:
    res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
    return {str(lab): float(res.v_pu[0, i]) for i, lab in enumerate(feeder.bus_labels)}


# --- MATPOWER ---------------------------------------------------------------------------------------------
def test_matpower_case_reproduces_pandapowers_power_flow() -> None:
    feeder = read_feeder_file(CASE33_DATA)
    assert feeder.name == "case33bw_data.m"
    assert sorted(feeder.bus_labels.tolist(), key=int) == [str(i) for i in range(1, 34)]
    # The file's branches by its from-to bus numbers: bus 19 hangs from bus 2 (Baran & Wu, Fig. 5).
    i19 = feeder.bus_labels.tolist().index("19")
    assert feeder.branch_label[i19] == "branch 2-19"
    assert feeder.bus_labels[feeder.parent[i19]] == "2"
    ref = _pandapower_v_pu(CASE33_DATA)
    ours = _our_v_pu(feeder)
    assert set(ours) == set(ref)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6
    # Published figure, independent of both tools: V_min 0.9131 pu at bus 18 (Baran & Wu 1989, Table 1 case).
    assert min(ours, key=ours.__getitem__) == "18"
    assert ours["18"] == pytest.approx(0.9131, abs=5e-5)


def test_matpower_without_ratings_says_so_and_check_ratings_names_a_branch() -> None:
    feeder = read_matpower(CASE33_DATA)
    assert not np.isfinite(feeder.ampacity_a).any()
    assert "ampacity: no rating for 32 branches in case33bw_data.m (no thermal limit on them)" in feeder.notes
    with pytest.raises(DataError, match=r"^case33bw_data\.m: branch 1-2: no thermal rating \(32 branches"):
        check_ratings(feeder)
    with_default = read_feeder_file(CASE33_DATA, default_ampacity_a=400.0)
    assert np.all(with_default.ampacity_a[1:] == 400.0)
    assert "ampacity: default of 400 A for 32 branches without a rating in case33bw_data.m" in with_default.notes
    check_ratings(with_default)


def _edit_case(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = CASE33_DATA.read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return p


def test_matpower_rate_a_becomes_ampacity(tmp_path: Path) -> None:
    # rateA = 1 MVA on branch 2-3 at 12.66 kV: I = 1e6 / (sqrt(3) * 12660) = 45.604 A.
    p = _edit_case(
        tmp_path,
        "rated.m",
        "\t2\t3\t0.03075951673242839\t0.0156667639990117\t0\t0\t",
        "\t2\t3\t0.03075951673242839\t0.0156667639990117\t0\t1\t",
    )
    feeder = read_matpower(p, default_ampacity_a=300.0)
    i3 = feeder.bus_labels.tolist().index("3")
    assert feeder.ampacity_a[i3] == pytest.approx(1e6 / (math.sqrt(3) * 12660.0), rel=1e-12)
    assert "ampacity: from MATPOWER rateA for 1 branches" in feeder.notes
    assert "ampacity: default of 300 A for 31 branches without a rating in rated.m" in feeder.notes


def test_matpower_code_after_the_data_is_refused() -> None:
    # MATPOWER's own case33bw.m gives ohms and kW and converts them in code: reading the data alone would take
    # ohms for per unit.
    with pytest.raises(DataError, match=r"^case33bw\.m: line \d+: MATPOWER code changes the case after its data"):
        read_feeder_file(CASE33_ORIG)


def test_matpower_meshed_case_names_the_loop(tmp_path: Path) -> None:
    p = _edit_case(
        tmp_path,
        "meshed.m",
        "\t18\t33\t0.031196264434511553\t0.031196264434511553\t0\t0\t0\t0\t0\t0\t0\t",
        "\t18\t33\t0.031196264434511553\t0.031196264434511553\t0\t0\t0\t0\t0\t0\t1\t",
    )
    with pytest.raises(DataError, match=r"^meshed\.m: network is not radial: closing branch 18-33 makes the loop"):
        read_feeder_file(p)


def test_matpower_bus_without_path_is_named(tmp_path: Path) -> None:
    # Branch 32-33 out of service: bus 33 is cut off.
    p = _edit_case(
        tmp_path,
        "island.m",
        "\t32\t33\t0.02127585234433688\t0.03308051880635605\t0\t0\t0\t0\t0\t0\t1\t",
        "\t32\t33\t0.02127585234433688\t0.03308051880635605\t0\t0\t0\t0\t0\t0\t0\t",
    )
    with pytest.raises(DataError, match=r"^island\.m: bus 33 has no path to the source \(1 such buses\)"):
        read_feeder_file(p)


def test_matpower_pv_bus_and_line_charging_are_refused(tmp_path: Path) -> None:
    p = _edit_case(tmp_path, "pv.m", "\t5\t1\t0.06\t0.03\t", "\t5\t2\t0.06\t0.03\t")
    text = p.read_text().replace(
        "mpc.gen = [\n", "mpc.gen = [\n\t5\t0.1\t0\t1\t-1\t1.0\t1\t1\t1\t0" + "\t0" * 11 + ";\n"
    )
    p.write_text(text)
    with pytest.raises(DataError, match=r"^pv\.m: gen \d+ at bus 5: voltage-controlled generators"):
        read_feeder_file(p)
    p = _edit_case(
        tmp_path,
        "charging.m",
        "\t1\t2\t0.005752591161723931\t0.002932448856844086\t0\t",
        "\t1\t2\t0.005752591161723931\t0.002932448856844086\t0.001\t",
    )
    with pytest.raises(DataError, match=r"^charging\.m: branch 1-2: line charging"):
        read_feeder_file(p)


# --- OpenDSS ----------------------------------------------------------------------------------------------
def test_opendss_feeder_reproduces_opendss_positive_sequence_solution() -> None:
    feeder = read_feeder_file(IEEE33_DSS)
    ref, ctx = _opendss_v_pu(IEEE33_DSS)
    ours = _our_v_pu(feeder)
    # Every OpenDSS bus under its own name; the Vsource's EMF is the one bus added (the source).
    assert set(ours) == set(ref) | {"Vsource.source"}
    assert feeder.bus_labels[0] == "Vsource.source" and feeder.branch_label[1] == "Vsource.source"
    assert "Line.l2_19" in feeder.branch_label
    # OpenDSS solved to 1e-7 pu (set above); the brief's bound is 1e-4 pu, the agreement is far tighter.
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6
    # Independent of both: Baran & Wu's case (stiff source), 202.68 kW losses and 0.9131 pu at bus 18.
    assert ctx.Circuit.Losses()[0] / 1e3 == pytest.approx(202.677, abs=0.05)
    assert ours["18"] == pytest.approx(0.9131, abs=5e-5)


def _variant(tmp_path: Path, name: str, edits: list[tuple[str, str]]) -> Path:
    text = IEEE33_DSS.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    p = tmp_path / name
    p.write_text(text)
    return p


L23 = "new line.l2_3 bus1=2 bus2=3 phases=3 r1=0.4930 x1=0.2511 r0=0.4930 x0=0.2511 c1=0 c0=0 length=1 units=none"
L34 = "new line.l3_4 bus1=3 bus2=4 phases=3 r1=0.3660 x1=0.1864 r0=0.3660 x0=0.1864 c1=0 c0=0 length=1 units=none"


def test_opendss_linecode_zmatrix_and_source_impedance(tmp_path: Path) -> None:
    p = _variant(
        tmp_path,
        "variant.dss",
        [
            (" mvasc3=1e7 mvasc1=1e7", ""),  # OpenDSS's default source impedance (MVAsc3 = 2000)
            # The same branch through a LineCode in ohm/km over 2,000 m (0.2465 ohm/km x 2 km = 0.4930 ohm).
            (
                L23,
                "new linecode.lc23 nphases=3 r1=0.2465 x1=0.12555 r0=0.7 x0=0.5 c1=0 c0=0 units=km normamps=250\n"
                "new line.l2_3 bus1=2.1.2.3 bus2=3.1.2.3 linecode=lc23 length=2000 units=m",
            ),
            # The same branch as a phase-impedance matrix: Zs - Zm = 0.3660 + j0.1864 ohm with Zm = 0.1 + j0.05.
            (
                L34,
                "new line.l3_4 bus1=3 bus2=4 phases=3 rmatrix=[0.4660|0.1 0.4660|0.1 0.1 0.4660] "
                "xmatrix=[0.2364|0.05 0.2364|0.05 0.05 0.2364] cmatrix=[0|0 0|0 0 0] length=1 units=none normamps=300",
            ),
        ],
    )
    feeder = read_opendss(p)
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6
    lab = list(feeder.branch_label)
    k23, k34 = lab.index("Line.l2_3"), lab.index("Line.l3_4")
    assert feeder.r_ohm[k23] == pytest.approx(0.4930, rel=1e-9) and feeder.x_ohm[k23] == pytest.approx(0.2511, rel=1e-9)
    assert feeder.r_ohm[k34] == pytest.approx(0.3660, rel=1e-9) and feeder.x_ohm[k34] == pytest.approx(0.1864, rel=1e-9)
    # Source impedance from MVAsc3 = 2000 MVA at 12.66 kV: |Z1| = 12.66^2 / 2000 = 0.080138 ohm.
    assert math.hypot(feeder.r_ohm[1], feeder.x_ohm[1]) == pytest.approx(12.66**2 / 2000, rel=1e-6)
    # Ratings where the file sets them (the LineCode's and the line's normamps); OpenDSS's 400 A default is not
    # taken for a rating.
    assert feeder.ampacity_a[k23] == 250.0 and feeder.ampacity_a[k34] == 300.0
    assert np.isinf(np.delete(feeder.ampacity_a, [k23, k34])).all()
    assert "ampacity: from OpenDSS normamps for 2 branches" in feeder.notes
    assert "ampacity: no rating for 30 branches in variant.dss (no thermal limit on them)" in feeder.notes
    with pytest.raises(DataError, match=r"^variant\.dss: Line\.l1_2: no thermal rating \(30 branches"):
        check_ratings(feeder)
    check_ratings(read_opendss(p, default_ampacity_a=400.0))  # the source impedance needs no rating


def test_opendss_line_charging_is_named_and_close(tmp_path: Path) -> None:
    text = IEEE33_DSS.read_text().replace(" c1=0 c0=0 length=1 units=none", " c1=10 c0=5 length=1 units=km")
    p = tmp_path / "charging.dss"
    p.write_text(text)
    feeder = read_opendss(p)
    # Charging at the voltages of OpenDSS's solution: 32 lines x (12.66 kV)^2 x 2 pi 60 Hz x 10 nF ~ 0.60 kvar
    # each at 1 pu (OpenDSS's base frequency is 60 Hz), a little less at the solved voltages.
    note = next(n for n in feeder.notes if n.startswith("line charging of 32 lines"))
    q_note_kvar = float(note.split("(")[1].split(" kvar")[0])
    assert (
        0.85 * 32 * 12.66**2 * 2 * math.pi * 60 * 10e-9 * 1e3
        < q_note_kvar
        < 32 * 12.66**2 * 2 * math.pi * 60 * 10e-9 * 1e3
    )
    assert "at the voltages of OpenDSS's solution of the file" in note
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6


def test_opendss_substation_transformer_and_capacitor(tmp_path: Path) -> None:
    p = _variant(
        tmp_path,
        "substation.dss",
        [
            (
                "new circuit.ieee33 basekv=12.66 pu=1.0 phases=3 bus1=1 mvasc3=1e7 mvasc1=1e7",
                "new circuit.ieee33 basekv=69 pu=1.02 phases=3 bus1=sub\n"
                "new transformer.sub phases=3 windings=2 buses=[sub 1] conns=[delta wye] kvs=[69 12.66] "
                "kvas=[10000 10000] xhl=8 %rs=[0.5 0.5] %noloadloss=0.1 %imag=0.5",
            ),
            (
                "set voltagebases=[12.66]",
                "new capacitor.c30 bus1=30 phases=3 kvar=600 kv=12.66\nset voltagebases=[69 12.66]",
            ),
        ],
    )
    feeder = read_opendss(p)
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    # OpenDSS adds a 1 ppm "anti-float" admittance to transformer windings: agreement to 1e-6, not 1e-9.
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6
    assert feeder.v_base_kv == 12.66 and feeder.bus_labels[1] == "sub"
    k = list(feeder.branch_label).index("Transformer.sub")
    # 8 % on 10 MVA at 12.66 kV: X = 0.08 x 12.66^2 / 10 = 1.2822 ohm; R = 0.01 x 16.0276 = 0.16028 ohm.
    assert feeder.x_ohm[k] == pytest.approx(0.08 * 12.66**2 / 10, rel=1e-9)
    assert feeder.r_ohm[k] == pytest.approx(0.01 * 12.66**2 / 10, rel=1e-9)
    # Rated by its nameplate: 10,000 kVA / (sqrt 3 x 12.66 kV) = 456.0 A.
    assert feeder.ampacity_a[k] == pytest.approx(10000 / (math.sqrt(3) * 12.66), rel=1e-12)
    assert any(n.startswith("substation Transformer.sub (69/12.66 kV, 10000 kVA)") for n in feeder.notes)
    assert any(n.startswith("1 capacitor banks (") for n in feeder.notes)
    # A line on the primary side: two voltage levels below the source, refused by name.
    hv_line = "new line.hv bus1=sub bus2=far phases=3 r1=0.5 x1=0.5 r0=0.5 x0=0.5 c1=0 c0=0 length=1 units=none\n"
    q = tmp_path / "hv_line.dss"
    q.write_text(p.read_text().replace("set voltagebases", hv_line + "set voltagebases"))
    with pytest.raises(DataError, match=r"^hv_line\.dss: bus far: base 69 kV differs from the feeder's 12.66 kV"):
        read_opendss(q)
    # Without voltage bases OpenDSS cannot tell the levels apart: the line itself is refused.
    q.write_text(q.read_text().replace("calcvoltagebases\n", ""))
    with pytest.raises(DataError, match=r"^hv_line\.dss: Line\.hv: connects at the substation transformer's primary"):
        read_opendss(q)


def test_opendss_random_tree_reproduces_opendss(tmp_path: Path) -> None:
    # A seeded random radial feeder of 300 buses (lines listed in random order, random orientation, a LineCode
    # in ohm/km): the walk must rebuild OpenDSS's tree exactly.
    rng = np.random.default_rng(7)
    n = 300
    out = [
        "clear",
        "new circuit.tree basekv=12.66 pu=1.03 phases=3 bus1=b0",
        "new linecode.lc nphases=3 r1=0.3 x1=0.2 r0=0.6 x0=0.4 c1=0 c0=0 units=km normamps=300",
    ]
    lines = []
    for i in range(1, n):
        p = int(rng.integers(max(0, i - 8), i))
        ends = (f"b{p}", f"b{i}") if rng.random() < 0.5 else (f"b{i}", f"b{p}")
        lines.append(f"new line.l{i} bus1={ends[0]} bus2={ends[1]} linecode=lc length={rng.uniform(0.05, 0.2):.4f}")
    out += [lines[k] for k in rng.permutation(len(lines))]
    # Constant power down to 0.7 pu (vminpu), as ours.
    out += [
        f"new load.d{i} bus1=b{i} phases=3 kv=12.66 kw={rng.uniform(10, 40):.3f} kvar=8 vminpu=0.7" for i in range(1, n)
    ]
    out += ["set voltagebases=[12.66]", "calcvoltagebases", "solve"]
    p = tmp_path / "tree.dss"
    p.write_text("\n".join(out) + "\n")
    feeder = read_opendss(p)
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    assert min(ref.values()) < 0.97  # a loaded feeder, not a flat profile (its lowest bus: 0.950 pu)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6
    assert "ampacity: from OpenDSS normamps for 299 branches" in feeder.notes


def test_opendss_generator_and_pv_at_their_solved_output(tmp_path: Path) -> None:
    der = (
        "new generator.g25 bus1=25 phases=3 kv=12.66 kw=500 pf=0.95 model=1\n"
        "new pvsystem.pv14 bus1=14 phases=3 kv=12.66 kva=300 pmpp=280 irradiance=0.9 pf=1\n"
    )
    p = _variant(tmp_path, "der.dss", [("set voltagebases", der + "set voltagebases")])
    feeder = read_opendss(p)
    # 500 kW at pf 0.95 (164.3 kvar) and 0.9 x 280 kW = 252 kW at pf 1: 752 kW, 164.3 kvar.
    assert "2 generators / PV systems at their output in OpenDSS's solution of the file (752 kW, 164.3 kvar), " in (
        " ".join(feeder.notes) + " "
    )
    assert feeder.p_load_kw.sum() == pytest.approx(3715.0 - 752.0, abs=1e-6)
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6


def test_opendss_loads_below_their_vminpu_are_noted(tmp_path: Path) -> None:
    # OpenDSS's default vminpu is 0.95: at Baran & Wu's 0.913 pu the far loads become impedances in OpenDSS.
    p = _variant(tmp_path, "vmin.dss", [(" vminpu=0.7", "")])
    ref, _ = _opendss_v_pu(p)
    n_below = sum(1 for b, v in ref.items() if v < 0.95 and b != "1")  # bus 1 (the source bus) has no load
    assert n_below > 10
    feeder = read_opendss(p)
    note = next(n for n in feeder.notes if "below their vminpu" in n)
    assert note.startswith(f"{n_below} loads below their vminpu")  # one load per bus in this case


def test_opendss_untransposed_line_is_noted(tmp_path: Path) -> None:
    p = _variant(
        tmp_path,
        "untransposed.dss",
        [
            (
                L34,
                "new line.l3_4 bus1=3 bus2=4 phases=3 rmatrix=[0.4660|0.1 0.4660|0.12 0.1 0.4660] "
                "xmatrix=[0.2364|0.05 0.2364|0.07 0.05 0.2364] cmatrix=[0|0 0|0 0 0] length=1 units=none",
            )
        ],
    )
    feeder = read_opendss(p)
    assert "1 lines with unbalanced phase impedance: coupling between sequences neglected" in feeder.notes
    # The neglected coupling unbalances OpenDSS's solution a little: its positive sequence moves by 1.4e-7 pu.
    ref, _ = _opendss_v_pu(p)
    ours = _our_v_pu(feeder)
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6


# --- bad input --------------------------------------------------------------------------------------------
def test_neither_format_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("bus 1 -- bus 2, 0.1 ohm\n")
    with pytest.raises(DataError, match=r"^notes\.txt: not a MATPOWER case \(\.m\) or OpenDSS script \(\.dss\)"):
        read_feeder_file(p)
    b = tmp_path / "blob.bin"
    b.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"^blob\.bin: not a MATPOWER case .*: not a text file"):
        read_feeder_file(b)
    m = tmp_path / "empty.m"
    m.write_text("x = 1;\n")
    with pytest.raises(DataError, match=r"^empty\.m: not a MATPOWER case .*no mpc\.bus"):
        read_feeder_file(m)
    d = tmp_path / "empty.dss"
    d.write_text("! nothing\n")
    with pytest.raises(DataError, match=r"^empty\.dss: not a MATPOWER case .*no circuit defined"):
        read_feeder_file(d)
    with pytest.raises(DataError, match=r"^missing\.dss: no such file"):
        read_feeder_file(tmp_path / "missing.dss")


def test_format_is_sniffed_from_content(tmp_path: Path) -> None:
    m = tmp_path / "case33.txt"
    m.write_text(CASE33_DATA.read_text())
    assert read_feeder_file(m).n_bus == 33
    d = tmp_path / "feeder.txt"
    d.write_text(IEEE33_DSS.read_text())
    assert read_feeder_file(d).n_bus == 34


def test_opendss_single_phase_lateral_is_refused(tmp_path: Path) -> None:
    p = _variant(
        tmp_path,
        "lateral.dss",
        [
            (
                "set voltagebases",
                "new line.lat bus1=18.1 bus2=40.1 phases=1 r1=0.5 x1=0.3 c1=0 length=1 units=none\nset voltagebases",
            )
        ],
    )
    with pytest.raises(DataError, match=r"^lateral\.dss: Line\.lat: 1-phase element \(unbalanced-only\)"):
        read_feeder_file(p)
    p = _variant(tmp_path, "nodes.dss", [(L23, L23.replace("bus2=3", "bus2=3.1.2.1"))])
    with pytest.raises(DataError, match=r"^nodes\.dss: Line\.l2_3: connected to nodes 3\.1\.2\.1 \(unbalanced-only\)"):
        read_feeder_file(p)


def test_opendss_mesh_island_and_transformer_are_named(tmp_path: Path) -> None:
    tie = "new line.tie bus1=18 bus2=33 phases=3 r1=0.5 x1=0.5 r0=0.5 x0=0.5 c1=0 c0=0 length=1 units=none\n"
    p = _variant(tmp_path, "mesh.dss", [("set voltagebases", tie + "set voltagebases")])
    with pytest.raises(DataError, match=r"^mesh\.dss: network is not radial: closing Line\.tie makes the loop"):
        read_feeder_file(p)
    island = "new load.far bus1=99 phases=3 kv=12.66 kw=10 kvar=5\n"
    p = _variant(tmp_path, "island.dss", [("set voltagebases", island + "set voltagebases")])
    with pytest.raises(DataError, match=r"^island\.dss: bus 99 has no path to the source \(1 such buses\)"):
        read_feeder_file(p)
    tr = "new transformer.t1 phases=3 windings=2 buses=[18 50] kvs=[12.66 0.4] kvas=[500 500] xhl=5\n"
    p = _variant(tmp_path, "trafo.dss", [("set voltagebases", tr + "set voltagebases")])
    with pytest.raises(DataError, match=r"^trafo\.dss: Transformer\.t1: only a substation transformer whose first"):
        read_feeder_file(p)
    p = tmp_path / "broken.dss"
    p.write_text("new circuit.x basekv=12.66\nnew line.l1 bus1=sourcebus bus2=b r1=oops\n")
    with pytest.raises(DataError, match=r"^broken\.dss: OpenDSS could not compile it"):
        read_feeder_file(p)


# --- untrusted input --------------------------------------------------------------------------------------
_CASE_LINES = CASE33_DATA.read_text().splitlines()
_DSS_LINES = IEEE33_DSS.read_text().splitlines()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from([("case.m", _CASE_LINES), ("feeder.dss", _DSS_LINES)]),
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["drop", "junk", "dup"]), st.text(max_size=12))),
)
def test_mangled_files_give_a_feeder_or_one_data_error(
    tmp_path: Path, source: tuple[str, list[str]], edits: list[tuple[int, str, str]]
) -> None:
    # Lines dropped, duplicated or replaced by junk: the reader returns a radial feeder or raises a DataError
    # naming the file, never another exception.
    name, lines = source
    lines = list(lines)
    for pos, op, junk in edits:
        k = pos % len(lines)
        if op == "drop":
            del lines[k]
        elif op == "dup":
            lines.insert(k, lines[k])
        else:
            lines[k] = junk
        if not lines:
            lines = [junk]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    try:
        feeder = read_feeder_file(p)
    except DataError as exc:
        assert str(exc).startswith(f"{name}: ") and "\n" not in str(exc)
        return
    assert np.all(feeder.parent[1:] < np.arange(1, feeder.n_bus))


def test_opendss_script_without_solve_is_read(tmp_path: Path) -> None:
    # OpenDSS builds its bus list only when it solves (or calculates voltage bases): a script that defines the
    # circuit and stops there is a valid model. The same feeder as the file with 'calcvoltagebases' and 'solve',
    # and OpenDSS's own solution of the file (with them).
    lines = IEEE33_DSS.read_text().splitlines()
    assert {"calcvoltagebases", "solve"} <= set(lines)
    p = tmp_path / "nosolve.dss"
    p.write_text("\n".join(x for x in lines if x not in ("calcvoltagebases", "solve")) + "\n")
    feeder = read_feeder_file(p)
    ref, _ = _opendss_v_pu(IEEE33_DSS)
    ours = _our_v_pu(feeder)
    assert feeder.n_bus == 34  # 33 buses and the Vsource's EMF
    assert max(abs(ours[b] - ref[b]) for b in ref) <= 1e-6


def test_default_ampacity_is_opendss_line_default() -> None:
    # The default rating of unrated network branches is OpenDSS's own Line default NormAmps: read it from OpenDSS
    # (a line defined without normamps), not from our constant's documentation.
    import opendssdirect

    from v2gtwin.grid.network_io import DEFAULT_AMPACITY_A

    ctx = opendssdirect.NewContext()
    ctx.Text.Command("clear")
    ctx.Text.Command("new circuit.c basekv=12.66 bus1=a")
    ctx.Text.Command("new line.l bus1=a bus2=b r1=0.1 x1=0.1 length=1 units=none")
    ctx.Lines.Name("l")
    assert ctx.Lines.NormAmps() == DEFAULT_AMPACITY_A == 400.0
