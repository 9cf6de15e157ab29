"""OpenDSS scripts read into the balanced single-phase (positive-sequence) equivalent radial
:class:`~v2gtwin.grid.feeder.Feeder`: OpenDSS compiles and solves the script (through opendssdirect), then the
circuit is walked element by element. See :func:`read_opendss`; :func:`v2gtwin.grid.network_io.read_feeder_file`
dispatches here for ``.dss`` files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid._feeder_files import _one_line, _rating_notes, _read_text
from v2gtwin.grid.feeder import Feeder, _order_tree

__all__ = ["read_opendss"]


#: Circuit element classes the reduction walks (the rest are refused by name); meters only observe.
_DSS_CLASSES = {"vsource", "line", "load"}
_DSS_OBSERVERS = {"energymeter", "monitor"}
_DSS_WHY: dict[str, str] = {
    "transformer": "transformers are not supported (a feeder has one voltage level)",
    "regcontrol": "regulators are not supported",
    "capacitor": "capacitors are not supported (constant-impedance shunts)",
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
    * line charging (shunt admittance ``Y11 + Y12``, positive sequence) as a constant reactive injection
      ``V_LL^2 B`` at each end at nominal voltage (named in the notes: OpenDSS keeps it an admittance);
    * every enabled three-phase Load: kW x the solution's LoadMult and kvar, summed per bus, as constant power
      (the notes count loads of another model);
    * ratings: a Line's ``normamps`` when the file sets it (on the line, its LineCode, or a value other than
      OpenDSS's default of 400 A through a geometry); otherwise ``default_ampacity_a`` or none (noted).

    Refused, with one line naming the file and the element: single- and two-phase elements (unbalanced-only),
    transformers, regulators, capacitors, generators, PV systems, storage and any other element class; a mesh
    (the loop); a bus without a path to the source; more than one voltage level; more than one Vsource.

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
    if ctx.Basic.NumCircuits() == 0 or not ctx.Circuit.AllBusNames():
        raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no circuit defined")
    try:
        ctx.Solution.Solve()
        solved = bool(ctx.Solution.Converged())
    except Exception:
        solved = False
    return _reduce_opendss(ctx, path.name, default_ampacity_a, solved)


def _reduce_opendss(ctx: Any, name: str, default_ampacity_a: float | None, solved: bool) -> Feeder:
    vsources: list[str] = []
    lines: list[str] = []
    loads: list[str] = []
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
        terminals = ctx.CktElement.BusNames()[: 2 if cls == "line" else 1]
        for spec in terminals:
            _, nodes = _bus_of(spec)
            if nodes and set(nodes[:3]) != {1, 2, 3}:
                raise DataError(f"{name}: {el}: connected to nodes {spec} (unbalanced-only): needs phases 1, 2 and 3")
        {"vsource": vsources, "line": lines, "load": loads}[cls].append(el)
    if len(vsources) != 1:
        raise DataError(f"{name}: needs exactly one Vsource (the feeder's source), found {len(vsources)}")

    bus_names = [b.lower() for b in ctx.Circuit.AllBusNames()]
    src_label = vsources[0]
    labels = [src_label, *bus_names]
    pos = {b: k + 1 for k, b in enumerate(bus_names)}
    ctx.Circuit.SetActiveElement(src_label)
    v_base_kv = float(ctx.Vsources.BasekV())
    v_source_pu = float(ctx.Vsources.PU())
    src_bus = _bus_of(ctx.CktElement.BusNames()[0])[0]
    y = _yprim(ctx, 3)
    z_src, _ = _positive_sequence(np.linalg.inv(y[:3, :3]))
    for b in bus_names:
        ctx.Circuit.SetActiveBus(b)
        kv = float(ctx.Bus.kVBase()) * math.sqrt(3.0)
        if kv > 0 and not math.isclose(kv, v_base_kv, rel_tol=1e-4):
            raise DataError(
                f"{name}: bus {b}: base {kv:.4g} kV differs from the source's {v_base_kv:.4g} kV (more than one "
                f"voltage level)"
            )

    edge_labels: dict[int, str] = {0: src_label}
    edges: list[tuple[int, int, int]] = [(0, pos[src_bus], 0)]
    z_branch: dict[int, complex] = {0: z_src}
    amp_branch: dict[int, float] = {0: math.inf}
    rated_branch: dict[int, bool] = {0: True}
    p_kw = np.zeros(len(labels))
    q_kvar = np.zeros(len(labels))
    n_untransposed = 0
    q_charging_kvar = 0.0
    n_charging = 0
    for el in lines:
        ctx.Circuit.SetActiveElement(el)
        open_cond = [[ctx.CktElement.IsOpen(t, c) for c in range(1, 4)] for t in (1, 2)]
        if any(all(o) for o in open_cond):
            continue  # an open switch: the line carries nothing
        if any(any(o) for o in open_cond):
            raise DataError(f"{name}: {el}: some but not all phases open (unbalanced-only)")
        b1, b2 = (_bus_of(s)[0] for s in ctx.CktElement.BusNames())
        y = _yprim(ctx, 3)
        z1, coupling = _positive_sequence(np.linalg.inv(-y[:3, 3:]))
        if coupling > 1e-6:
            n_untransposed += 1
        y_sh1, _ = _positive_sequence(y[:3, :3] + y[:3, 3:])
        if abs(y_sh1) > 0:
            # Three-phase injection at nominal voltage of half the line's shunt admittance at each end.
            s_kva = v_base_kv**2 * 1e3 * np.conj(y_sh1)
            for b in (b1, b2):
                p_kw[pos[b]] += s_kva.real
                q_kvar[pos[b]] += s_kva.imag
            q_charging_kvar += 2 * s_kva.imag
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
    for el in loads:
        ctx.Circuit.SetActiveElement(el)
        ctx.Loads.Name(el.split(".", 1)[1])
        b = _bus_of(ctx.CktElement.BusNames()[0])[0]
        p_kw[pos[b]] += ctx.Loads.kW() * load_mult
        q_kvar[pos[b]] += ctx.Loads.kvar() * load_mult
        n_other_model += int(ctx.Loads.Model() != 1)

    n = len(order)
    z = np.array([0j] + [z_branch[int(feed[k])] for k in range(1, n)])
    amp = np.array([np.inf] + [amp_branch[int(feed[k])] for k in range(1, n)])
    rated = np.array([True] + [rated_branch[int(feed[k])] for k in range(1, n)])
    conductor = np.array([k > 0 and int(feed[k]) != 0 for k in range(n)])
    amp, notes = _rating_notes(name, amp, rated, conductor, default_ampacity_a, "OpenDSS normamps")
    amp[~conductor] = np.inf
    notes.insert(
        0,
        f"OpenDSS model reduced to its balanced single-phase (positive-sequence) equivalent; source "
        f"{src_label} at {v_source_pu:g} pu of {v_base_kv:g} kV behind its impedance (branch {src_label})",
    )
    if n_untransposed:
        notes.append(f"{n_untransposed} lines with unbalanced phase impedance: coupling between sequences neglected")
    if n_charging:
        notes.append(
            f"line charging of {n_charging} lines ({-q_charging_kvar:.4g} kvar at nominal voltage) taken as "
            f"constant reactive injections (OpenDSS: admittances)"
        )
    if n_other_model:
        notes.append(f"{n_other_model} loads of a model other than constant power taken as constant power")
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
