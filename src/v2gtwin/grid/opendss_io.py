"""OpenDSS scripts read into the balanced single-phase (positive-sequence) equivalent radial
:class:`~v2gtwin.grid.feeder.Feeder`: OpenDSS compiles and solves the script (through opendssdirect), then the
circuit is walked element by element. See :func:`read_opendss`; :func:`v2gtwin.grid.network_io.read_feeder_file`
dispatches here for ``.dss`` files.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid._feeder_files import _one_line, _rating_notes, _read_text
from v2gtwin.grid.feeder import Feeder, _order_tree

__all__ = ["read_opendss"]


#: Circuit element classes the reduction walks (the rest are refused by name); meters only observe.
_DSS_CLASSES = {"vsource", "line", "load", "transformer", "capacitor", "generator", "pvsystem"}
#: Elements whose output is taken from OpenDSS's solution of the file (a constant injection thereafter).
_DSS_DER = ("generator", "pvsystem")
_DSS_OBSERVERS = {"energymeter", "monitor"}
_DSS_WHY: dict[str, str] = {
    "regcontrol": "regulators are not supported",
    "capcontrol": "capacitor controls are not supported",
    "reactor": "reactors are not supported",
}

#: Symmetrical-component transform: Z012 = A^-1 Zabc A (Fortescue 1918), a = exp(j 2 pi / 3).
_A_OP = np.exp(2j * np.pi / 3)
_A_MAT = np.array([[1, 1, 1], [1, _A_OP**2, _A_OP], [1, _A_OP, _A_OP**2]])
_A_INV = np.linalg.inv(_A_MAT)


def _positive_sequence(z_abc: npt.NDArray[np.complexfloating[Any, Any]]) -> tuple[complex, float]:
    """(positive-sequence value, largest coupling between sequences relative to it) of a 3x3 phase matrix."""
    z012 = _A_INV @ z_abc @ _A_MAT
    z1 = complex(z012[1, 1])
    off = np.abs(z012 - np.diag(np.diag(z012))).max()
    return z1, float(off / abs(z1)) if abs(z1) > 0 else 0.0


def _yprim(ctx: Any, n_cond: int) -> npt.NDArray[np.complex128]:
    y = np.asarray(ctx.CktElement.YPrim(), dtype=float)
    m = y[0::2] + 1j * y[1::2]
    return m.reshape(2 * n_cond, 2 * n_cond)


def _bus_of(spec: str) -> tuple[str, list[int]]:
    """('bus', [nodes]) of an OpenDSS bus specification 'bus.1.2.3' (no nodes: all phases)."""
    parts = spec.lower().split(".")
    return parts[0], [int(p) for p in parts[1:] if p.isdigit()]


def read_opendss(path: Path, *, default_ampacity_a: float | None = None) -> Feeder:
    """Read a balanced three-phase radial OpenDSS model into its single-phase (positive-sequence) equivalent.

    OpenDSS compiles and solves the script (its own parser, through opendssdirect, in a context of its own);
    the circuit is then walked:

    * the one Vsource: its EMF (``pu`` x ``basekV``) is the feeder's source, its Thevenin impedance the first
      branch (labelled "Vsource.<name>", from a bus of that label to the Vsource's bus); positive-sequence
      impedance from the Vsource's primitive admittance matrix;
    * every enabled three-phase Line: the series phase-impedance matrix ``Z = -(Y12)^-1`` from its primitive
      admittance matrix (so R1/X1, LineCodes, Z-matrices and geometries all reduce alike), then
      ``Z1 = (A^-1 Z A)[1, 1]``; a line with all conductors of a terminal open is an open switch and dropped;
      an untransposed line's coupling between sequences is neglected (the notes count such lines);
    * a substation Transformer (at most one: two windings, the first at the Vsource's bus, nominal taps): its
      series impedance ``(%R1 + %R2)/100 + j %Xhl/100`` on its kVA, referred to the secondary, which sets the
      feeder's base voltage; the source's impedance and EMF referred alike; rated by its nameplate kVA;
    * shunt admittances as constant injections at the voltages of OpenDSS's solution of the file (so that the
      base case is OpenDSS's; at 1 pu if OpenDSS did not converge), each named in the notes since OpenDSS keeps
      them admittances: line charging (``Y11 + Y12``, positive sequence, ``V^2 B`` at each end), single-step
      three-phase shunt Capacitors (``kvar (V / kV_rated)^2``), the transformer's magnetising branch
      (``%noloadloss``, ``%imag`` of its kVA, at its secondary, where OpenDSS's solution places it);
    * every enabled three-phase Load: kW x the solution's LoadMult and kvar, summed per bus, as constant power
      (the notes count loads of another model);
    * three-phase Generators and PVSystems at their output in OpenDSS's solution of the file, as constant
      negative loads (named in the notes; refused when OpenDSS's solution did not converge);
    * ratings: a Line's ``normamps`` when the file sets it (on the line, its LineCode, or a value other than
      OpenDSS's default of 400 A through a geometry); otherwise ``default_ampacity_a`` or none (noted).

    Refused, with one line naming the file and the element: single- and two-phase elements (unbalanced-only),
    further transformers, off-nominal taps, regulators, capacitor controls, series or multi-step capacitors,
    reactors, storage, inverter and generator controls and any other element class; a mesh (the loop); a bus without a
    path to the source; more than one voltage level below the source; more than one Vsource.

    Parameters
    ----------
    path : the ``.dss`` script (a master file; its ``redirect``s are followed by OpenDSS).
    default_ampacity_a : rating of lines without one in the file [A].

    References
    ----------
    R. C. Dugan, T. E. McDermott, "An open source platform for collaborating on smart grid research", IEEE PES
    General Meeting 2011 (OpenDSS); C. L. Fortescue, "Method of symmetrical co-ordinates applied to the solution
    of polyphase networks", Trans. AIEE 37(2), 1918 (the sequence transform).
    """
    path = Path(path)
    _read_text(path)
    import opendssdirect

    ctx = opendssdirect.NewContext()
    ctx.Basic.AllowChangeDir(False)  # redirects still resolve next to the file; our working directory stays
    ctx.Basic.AllowEditor(False)  # 'show' commands in a script must not start an editor
    ctx.Basic.AllowDOScmd(False)  # nor a script run shell commands
    try:
        ctx.Text.Command(f'compile "{path.resolve()}"')
    except Exception as exc:  # OpenDSS's own parse errors: one line naming the file
        raise DataError(f"{path.name}: OpenDSS could not compile it: {_one_line(exc)}") from exc
    if ctx.Basic.NumCircuits() == 0:
        raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no circuit defined")
    # OpenDSS builds its bus list when it solves (or on MakeBusList): a valid script need not end in 'solve'.
    try:
        ctx.Solution.Solve()
        solved = bool(ctx.Solution.Converged())
    except Exception:
        solved = False
    if not ctx.Circuit.AllBusNames():
        with contextlib.suppress(Exception):  # an empty bus list is refused just below
            ctx.Text.Command("makebuslist")
    if not ctx.Circuit.AllBusNames():
        raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no circuit defined")
    return _reduce_opendss(ctx, path.name, default_ampacity_a, solved)


def _reduce_opendss(ctx: Any, name: str, default_ampacity_a: float | None, solved: bool) -> Feeder:
    found: dict[str, list[str]] = {cls: [] for cls in _DSS_CLASSES}
    for el in ctx.Circuit.AllElementNames():
        cls = el.split(".", 1)[0].lower()
        ctx.Circuit.SetActiveElement(el)
        if not ctx.CktElement.Enabled():
            continue
        if cls in _DSS_OBSERVERS:
            continue
        if cls not in _DSS_CLASSES:
            why = _DSS_WHY.get(cls, f"{cls} elements are not supported")
            raise DataError(f"{name}: {el}: {why} in the balanced single-phase reduction")
        if ctx.CktElement.NumPhases() != 3:
            raise DataError(
                f"{name}: {el}: {ctx.CktElement.NumPhases()}-phase element (unbalanced-only): the balanced "
                f"single-phase reduction needs three-phase elements"
            )
        # The phase terminals (a Vsource's second terminal is its grounded reference; a Load's is unused).
        terminals = ctx.CktElement.BusNames()[: 2 if cls in ("line", "transformer") else 1]
        for spec in terminals:
            _, nodes = _bus_of(spec)
            if nodes and set(nodes[:3]) != {1, 2, 3}:
                raise DataError(f"{name}: {el}: connected to nodes {spec} (unbalanced-only): needs phases 1, 2 and 3")
        found[cls].append(el)
    vsources = found["vsource"]
    if len(vsources) != 1:
        raise DataError(f"{name}: needs exactly one Vsource (the feeder's source), found {len(vsources)}")

    bus_names = [b.lower() for b in ctx.Circuit.AllBusNames()]
    src_label = vsources[0]
    labels = [src_label, *bus_names]
    pos = {b: k + 1 for k, b in enumerate(bus_names)}
    ctx.Circuit.SetActiveElement(src_label)
    kv_src = float(ctx.Vsources.BasekV())
    v_source_pu = float(ctx.Vsources.PU())
    src_bus = _bus_of(ctx.CktElement.BusNames()[0])[0]
    y = _yprim(ctx, 3)
    z_src, _ = _positive_sequence(np.linalg.inv(y[:3, :3]))
    v_base_kv = kv_src
    tr = _substation_transformer(ctx, name, found["transformer"], src_bus)
    if tr is not None:
        # Everything upstream of the transformer referred to its secondary: impedances by the square of the
        # turns ratio, the EMF in pu of the primary's rated voltage.
        z_src *= (tr.kv_lv / tr.kv_hv) ** 2
        v_source_pu *= kv_src / tr.kv_hv
        v_base_kv = tr.kv_lv
    # Shunt admittances (line charging, capacitors, magnetising branch) become constant injections at the
    # voltages of OpenDSS's solution of the file, so that the base case is OpenDSS's (at 1 pu when unsolved).
    v_solved_pu = {}
    for b in bus_names:
        ctx.Circuit.SetActiveBus(b)
        kv = float(ctx.Bus.kVBase()) * math.sqrt(3.0)
        expected = tr.kv_hv if tr is not None and b == tr.hv_bus else v_base_kv
        v1 = float(ctx.Bus.SeqVoltages()[1]) / (expected / math.sqrt(3.0) * 1000.0)
        v_solved_pu[b] = v1 if solved and math.isfinite(v1) and v1 > 0 else 1.0
        if kv > 0 and not math.isclose(kv, expected, rel_tol=1e-4):
            raise DataError(
                f"{name}: bus {b}: base {kv:.4g} kV differs from the feeder's {expected:.4g} kV (more than one "
                f"voltage level below the source)"
            )

    edge_labels: dict[int, str] = {0: src_label}
    edges: list[tuple[int, int, int]] = [(0, pos[src_bus], 0)]
    z_branch: dict[int, complex] = {0: z_src}
    amp_branch: dict[int, float] = {0: math.inf}
    rated_branch: dict[int, bool] = {0: True}
    p_kw = np.zeros(len(labels))
    q_kvar = np.zeros(len(labels))
    if tr is not None:
        edges.append((pos[tr.hv_bus], pos[tr.lv_bus], 1))
        edge_labels[1] = tr.label
        z_branch[1] = tr.z_ohm
        amp_branch[1] = tr.ampacity_a
        rated_branch[1] = True
        # OpenDSS's magnetising branch sits behind the leakage impedance as seen from the source (its solution
        # agrees to 1e-7 pu with the branch at the secondary, to 5e-4 pu with it at the primary).
        p_kw[pos[tr.lv_bus]] += tr.p_mag_kw * v_solved_pu[tr.lv_bus] ** 2
        q_kvar[pos[tr.lv_bus]] += tr.q_mag_kvar * v_solved_pu[tr.lv_bus] ** 2
    n_untransposed = 0
    q_charging_kvar = 0.0
    n_charging = 0
    for el in found["line"]:
        ctx.Circuit.SetActiveElement(el)
        open_cond = [[ctx.CktElement.IsOpen(t, c) for c in range(1, 4)] for t in (1, 2)]
        if any(all(o) for o in open_cond):
            continue  # an open switch: the line carries nothing
        if any(any(o) for o in open_cond):
            raise DataError(f"{name}: {el}: some but not all phases open (unbalanced-only)")
        b1, b2 = (_bus_of(s)[0] for s in ctx.CktElement.BusNames())
        if tr is not None and tr.hv_bus in (b1, b2):
            raise DataError(
                f"{name}: {el}: connects at the substation transformer's primary bus {tr.hv_bus} (a feeder has "
                f"one voltage level below its substation)"
            )
        y = _yprim(ctx, 3)
        z1, coupling = _positive_sequence(np.linalg.inv(-y[:3, 3:]))
        if coupling > 1e-6:
            n_untransposed += 1
        y_sh1, _ = _positive_sequence(y[:3, :3] + y[:3, 3:])
        if abs(y_sh1) > 0:
            # Three-phase injection of half the line's shunt admittance at each end.
            s_kva = v_base_kv**2 * 1e3 * np.conj(y_sh1)
            for b in (b1, b2):
                p_kw[pos[b]] += s_kva.real * v_solved_pu[b] ** 2
                q_kvar[pos[b]] += s_kva.imag * v_solved_pu[b] ** 2
                q_charging_kvar += s_kva.imag * v_solved_pu[b] ** 2
            n_charging += 1
        k = len(edges)
        edges.append((pos[b1], pos[b2], k))
        edge_labels[k] = el
        z_branch[k] = z1
        ctx.Lines.Name(el.split(".", 1)[1])
        amp_branch[k] = float(ctx.Lines.NormAmps())
        rated_branch[k] = _dss_line_rated(ctx, amp_branch[k])
    try:
        order, parent_pos, feed = _order_tree(len(labels), 0, edges, labels, edge_labels=edge_labels)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from exc

    load_mult = float(ctx.Solution.LoadMult())
    n_other_model = 0
    n_below_vmin = 0
    for el in found["load"]:
        ctx.Circuit.SetActiveElement(el)
        ctx.Loads.Name(el.split(".", 1)[1])
        b = _bus_of(ctx.CktElement.BusNames()[0])[0]
        p_kw[pos[b]] += ctx.Loads.kW() * load_mult
        q_kvar[pos[b]] += ctx.Loads.kvar() * load_mult
        n_other_model += int(ctx.Loads.Model() != 1)
        n_below_vmin += int(solved and v_solved_pu[b] < float(ctx.Loads.Vminpu()))
    n_der = 0
    p_der_kw = q_der_kvar = 0.0
    for el in (e for cls in _DSS_DER for e in found[cls]):
        if not solved:
            raise DataError(
                f"{name}: {el}: its output comes from OpenDSS's solution of the file, which did not converge"
            )
        ctx.Circuit.SetActiveElement(el)
        b = _bus_of(ctx.CktElement.BusNames()[0])[0]
        n_cond = int(ctx.CktElement.NumConductors())
        s_kva = np.asarray(ctx.CktElement.Powers(), dtype=float)[: 2 * n_cond]  # into terminal 1: + = consumed
        p_kw[pos[b]] += s_kva[0::2].sum()
        q_kvar[pos[b]] += s_kva[1::2].sum()
        p_der_kw -= s_kva[0::2].sum()
        q_der_kvar -= s_kva[1::2].sum()
        n_der += 1
    q_cap_kvar = 0.0
    n_cap = 0
    for el in found["capacitor"]:
        ctx.Circuit.SetActiveElement(el)
        ctx.Capacitors.Name(el.split(".", 1)[1])
        b1, b2 = (_bus_of(spec)[0] for spec in ctx.CktElement.BusNames())
        if b1 != b2:
            raise DataError(f"{name}: {el}: series capacitors are not supported (only shunt banks)")
        if ctx.Capacitors.NumSteps() != 1:
            raise DataError(f"{name}: {el}: capacitor banks of several steps are not supported")
        if not ctx.Capacitors.States()[0]:
            continue  # switched off
        kv_bus = tr.kv_hv if tr is not None and b1 == tr.hv_bus else v_base_kv
        q_inj = float(ctx.Capacitors.kvar()) * (v_solved_pu[b1] * kv_bus / float(ctx.Capacitors.kV())) ** 2
        q_kvar[pos[b1]] -= q_inj
        q_cap_kvar += q_inj
        n_cap += 1

    n = len(order)
    z = np.array([0j] + [z_branch[int(feed[k])] for k in range(1, n)])
    amp = np.array([np.inf] + [amp_branch[int(feed[k])] for k in range(1, n)])
    rated = np.array([True] + [rated_branch[int(feed[k])] for k in range(1, n)])
    # Lines only: the source impedance (edge 0) has no rating, the transformer (edge 1) its own.
    not_lines = {0, 1} if tr is not None else {0}
    conductor = np.array([k > 0 and int(feed[k]) not in not_lines for k in range(n)])
    amp, notes = _rating_notes(name, amp, rated, conductor, default_ampacity_a, "OpenDSS normamps")
    amp[~conductor] = np.inf
    if tr is not None:
        amp[int(np.flatnonzero(feed == 1)[0])] = tr.ampacity_a
        conductor_note = (
            f"substation {tr.label} ({tr.kv_hv:g}/{tr.kv_lv:g} kV, {tr.kva:g} kVA) as a series impedance "
            f"referred to {tr.kv_lv:g} kV, the source's impedance referred alike; its rating {tr.ampacity_a:.4g} A "
            f"from its nameplate kVA"
        )
        if tr.p_mag_kw or tr.q_mag_kvar:
            conductor_note += f"; its no-load losses and magnetising current as a constant load at {tr.lv_bus}"
        notes.insert(0, conductor_note)
    notes.insert(
        0,
        f"OpenDSS model reduced to its balanced single-phase (positive-sequence) equivalent; source "
        f"{src_label} at {v_source_pu:g} pu of {v_base_kv if tr is None else tr.kv_hv:g} kV behind its impedance "
        f"(branch {src_label})",
    )
    at_v = "at the voltages of OpenDSS's solution of the file" if solved else "at nominal voltage"
    if n_untransposed:
        notes.append(f"{n_untransposed} lines with unbalanced phase impedance: coupling between sequences neglected")
    if n_charging:
        notes.append(
            f"line charging of {n_charging} lines ({-q_charging_kvar:.4g} kvar {at_v}) taken as constant reactive "
            f"injections (OpenDSS: admittances)"
        )
    if n_cap:
        notes.append(
            f"{n_cap} capacitor banks ({q_cap_kvar:.4g} kvar {at_v}) taken as constant reactive injections "
            f"(OpenDSS: admittances)"
        )
    if n_der:
        notes.append(
            f"{n_der} generators / PV systems at their output in OpenDSS's solution of the file ({p_der_kw:.4g} kW, "
            f"{q_der_kvar:.4g} kvar), constant thereafter"
        )
    if n_other_model:
        notes.append(f"{n_other_model} loads of a model other than constant power taken as constant power")
    if n_below_vmin:
        notes.append(
            f"{n_below_vmin} loads below their vminpu in OpenDSS's solution of the file: OpenDSS turns them into "
            f"impedances there, here they stay constant power (set vminpu lower to compare)"
        )
    if load_mult != 1.0:
        notes.append(f"loads scaled by OpenDSS's LoadMult = {load_mult:g}")
    if not solved:
        notes.append("OpenDSS's own solution of the file did not converge")
    return Feeder(
        name=name,
        parent=parent_pos,
        r_ohm=z.real,
        x_ohm=z.imag,
        v_base_kv=v_base_kv,
        p_load_kw=p_kw[order],
        q_load_kvar=q_kvar[order],
        ampacity_a=amp,
        v_source_pu=v_source_pu,
        bus_index=np.asarray(order, dtype=np.int64) - 1,
        bus_labels=np.asarray([labels[o] for o in order], dtype=np.str_),
        branch_label=("", *(edge_labels[int(feed[k])] for k in range(1, n))),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _Transformer:
    """A substation transformer, positive sequence, impedance referred to its secondary."""

    label: str
    hv_bus: str
    lv_bus: str
    kv_hv: float
    kv_lv: float
    kva: float
    z_ohm: complex
    ampacity_a: float
    p_mag_kw: float
    q_mag_kvar: float


def _substation_transformer(ctx: Any, name: str, transformers: list[str], src_bus: str) -> _Transformer | None:
    """The one two-winding transformer fed straight from the Vsource's bus, at nominal taps, or None.

    Positive-sequence series impedance ``(%R1 + %R2)/100 + j %Xhl/100`` in pu of the nameplate kVA and the
    secondary's rated kV (the winding connection's phase shift does not change magnitudes); magnetising branch
    (``%noloadloss``, ``%imag``) in kW / kvar at rated voltage.
    """
    if not transformers:
        return None
    if len(transformers) > 1:
        raise DataError(
            f"{name}: {transformers[1]}: only one transformer, at the source, is supported (a feeder has one "
            f"voltage level below it)"
        )
    el = transformers[0]
    ctx.Circuit.SetActiveElement(el)
    ctx.Transformers.Name(el.split(".", 1)[1])
    if ctx.Transformers.NumWindings() != 2:
        raise DataError(f"{name}: {el}: only two-winding transformers are supported")
    hv_bus, lv_bus = (_bus_of(spec)[0] for spec in ctx.CktElement.BusNames()[:2])
    if hv_bus != src_bus:
        raise DataError(
            f"{name}: {el}: only a substation transformer whose first winding is at the Vsource's bus "
            f"({src_bus}) is supported (a feeder has one voltage level)"
        )
    kv, kva, r_pct, tap = [], [], [], []
    for w in (1, 2):
        ctx.Transformers.Wdg(w)
        kv.append(float(ctx.Transformers.kV()))
        kva.append(float(ctx.Transformers.kVA()))
        r_pct.append(float(ctx.Transformers.R()))
        tap.append(float(ctx.Transformers.Tap()))
    if tap != [1.0, 1.0]:
        raise DataError(f"{name}: {el}: off-nominal taps {tap} are not supported (nominal tap 1.0 only)")
    if kva[0] != kva[1]:
        raise DataError(f"{name}: {el}: windings of different kVA ({kva[0]:g}, {kva[1]:g}) are not supported")
    z_pu = (r_pct[0] + r_pct[1]) / 100.0 + 1j * float(ctx.Transformers.Xhl()) / 100.0
    mag = []
    for prop in ("%noloadloss", "%imag"):
        ctx.Text.Command(f"? {el}.{prop}")
        mag.append(float(ctx.Text.Result()))
    return _Transformer(
        label=el,
        hv_bus=hv_bus,
        lv_bus=lv_bus,
        kv_hv=kv[0],
        kv_lv=kv[1],
        kva=kva[0],
        z_ohm=complex(z_pu * kv[1] ** 2 / (kva[0] / 1000.0)),
        ampacity_a=kva[0] / (math.sqrt(3.0) * kv[1]),
        p_mag_kw=mag[0] / 100.0 * kva[0],
        q_mag_kvar=mag[1] / 100.0 * kva[0],
    )


#: OpenDSS's normamps of a line whose data sets none [A] (OpenDSS Line object default).
_DSS_DEFAULT_NORMAMPS_A = 400.0


def _dss_line_rated(ctx: Any, normamps_a: float) -> bool:
    """Whether the active line's normamps comes from the file, not OpenDSS's default."""
    props = json.loads(ctx.Element.ToJSON())
    code = props.get("LineCode")
    if code:
        ctx.Circuit.SetActiveClass("LineCode")
        ctx.ActiveClass.Name(code)
        return "NormAmps" in json.loads(ctx.Element.ToJSON()) or normamps_a != _DSS_DEFAULT_NORMAMPS_A
    if props.get("Geometry") or props.get("Spacing"):
        return normamps_a != _DSS_DEFAULT_NORMAMPS_A
    return "NormAmps" in props
