"""Users' own feeders: MATPOWER case files and OpenDSS scripts read into a radial :class:`~v2gtwin.grid.feeder.Feeder`.

* :func:`read_matpower`: a MATPOWER version-2 case (``.m``), parsed by matpowercaseframes and converted by
  pandapower's ``from_mpc``, then :func:`~v2gtwin.grid.feeder.from_pandapower`. Bus labels are MATPOWER's bus
  numbers, branch labels "branch F-T" with the file's from and to buses, ratings from ``rateA`` [MVA].
* :func:`read_opendss`: an OpenDSS script, compiled and solved by OpenDSS itself (through opendssdirect), then
  walked element by element and reduced to its balanced single-phase (positive-sequence) equivalent. Bus labels
  are OpenDSS's bus names, branch labels OpenDSS's element names ("Line.l12").
* :func:`read_feeder_file`: either of the two, chosen by the file's suffix and a look at its content.
* :func:`check_ratings`: for callers that need thermal limits; one line naming the file and an unrated branch.

Every refusal is a one-line :class:`~v2gtwin.errors.DataError` naming the file and the element.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, V2GTwinError
from v2gtwin.grid.feeder import Feeder, _order_tree, from_pandapower

__all__ = [
    "READERS",
    "SOURCE_IMPEDANCE_PREFIX",
    "check_feeder_file",
    "check_ratings",
    "read_feeder_file",
    "read_matpower",
    "read_opendss",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Branch labels starting with this are a source's Thevenin impedance (OpenDSS Vsource), not a conductor: they
#: carry no thermal rating and :func:`check_ratings` does not ask for one.
SOURCE_IMPEDANCE_PREFIX = "Vsource."

#: Bytes read to recognise a file's format.
_SNIFF_BYTES = 65536

_MATPOWER_SNIFF = re.compile(r"^\s*(function\s+mpc\s*=|mpc\.bus\s*=)", re.MULTILINE)
_OPENDSS_SNIFF = re.compile(r"^\s*new\s+(object\s*=\s*)?circuit\.", re.MULTILINE | re.IGNORECASE)


# --- ratings ----------------------------------------------------------------------------------------------
def _rating_notes(
    name: str,
    ampacity_a: FloatArray,
    rated: npt.NDArray[np.bool_],
    conductor: npt.NDArray[np.bool_],
    default_ampacity_a: float | None,
    source: str,
) -> tuple[FloatArray, list[str]]:
    """Fill unrated conductors with the default (when given) and say where every rating came from."""
    if default_ampacity_a is not None and not (default_ampacity_a > 0 and math.isfinite(default_ampacity_a)):
        raise DataError(f"default_ampacity_a: must be a finite value > 0 A, got {default_ampacity_a}")
    amp = np.array(ampacity_a, dtype=float)
    missing = conductor & ~rated
    notes = []
    n_rated = int((conductor & rated).sum())
    if n_rated:
        notes.append(f"ampacity: from {source} for {n_rated} branches")
    if missing.any() and default_ampacity_a is not None:
        amp[missing] = default_ampacity_a
        notes.append(
            f"ampacity: default of {default_ampacity_a:g} A for {int(missing.sum())} branches without a rating "
            f"in {name}"
        )
    elif missing.any():
        amp[missing] = np.inf
        notes.append(f"ampacity: no rating for {int(missing.sum())} branches in {name} (no thermal limit on them)")
    return amp, notes


def check_ratings(feeder: Feeder) -> None:
    """Raise a one-line DataError naming the feeder (its file) and the first branch without a thermal rating.

    For callers that need thermal limits (operating envelopes with branch limits, network schedules). A source
    impedance (branch label starting with :data:`SOURCE_IMPEDANCE_PREFIX`) needs none.
    """
    labels = feeder.branch_label
    need = np.array([i > 0 and not labels[i].startswith(SOURCE_IMPEDANCE_PREFIX) for i in range(feeder.n_bus)])
    missing = need & ~np.isfinite(feeder.ampacity_a)
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(
            f"{feeder.name}: {labels[i]}: no thermal rating ({int(missing.sum())} branches without one); "
            f"give a default ampacity (default_ampacity_a / --default-ampacity-a)"
        )


# --- MATPOWER ---------------------------------------------------------------------------------------------
def _check_matpower_is_data(path: Path, text: str) -> None:
    """Refuse a case file that changes its data with MATPOWER code after defining it.

    Several of MATPOWER's distribution cases (case33bw, case69, ...) give r and x in ohms and loads in kW, then
    convert them with code at the end of the file; a parser of the data alone (matpowercaseframes) would read
    ohms as per unit. Only ``mpc.<field> = <value>`` statements, comments and the function line are data.
    """
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("%", 1)[0].strip()
        if not line:
            continue
        if depth == 0:
            if re.match(r"^(function\b|end\b|return\b)", line) or re.match(r"^mpc\.[A-Za-z_]\w*\s*=", line):
                pass
            else:
                raise DataError(
                    f"{path.name}: line {lineno}: MATPOWER code changes the case after its data "
                    f"({line[:60]!r}); only data can be read: run the case in MATPOWER and import the file "
                    f"savecase('{path.stem}_data.m', loadcase('{path.stem}')) writes"
                )
        depth += line.count("[") + line.count("{") - line.count("]") - line.count("}")
        depth = max(depth, 0)


def read_matpower(path: Path, *, default_ampacity_a: float | None = None) -> Feeder:
    """Read a radial MATPOWER (version 2) case file into a :class:`Feeder`.

    Parameters
    ----------
    path : the ``.m`` file: data statements only (``mpc.bus = [...]`` ...); one reference bus (the source).
    default_ampacity_a : rating given to branches whose ``rateA`` is 0 (MATPOWER's "no limit") [A]; without it
        they stay unrated (inf) and the feeder's notes say how many.

    Returns
    -------
    Feeder named after the file; buses labelled by MATPOWER's bus numbers, branches "branch F-T" (the file's
    from and to buses); ratings ``I = rateA / (sqrt(3) baseKV)`` [A] (pandapower's conversion).

    Raises
    ------
    DataError
        Naming the file and the element: not a version-2 case, code that changes the data, a meshed network
        (the loop), a bus without a path to the source, transformers, PV buses, shunts, line charging.

    References
    ----------
    R. D. Zimmerman, C. E. Murillo-Sanchez, R. J. Thomas, "MATPOWER: steady-state operations, planning and
    analysis tools for power systems research and education", IEEE Trans. Power Systems 26(1), 2011 (the case
    format: MATPOWER User's Manual, Appendix B, "Data File Format").
    """
    path = Path(path)
    text = _read_text(path)
    if not re.search(r"^\s*mpc\.bus\s*=", text, re.MULTILINE) or not re.search(
        r"^\s*mpc\.branch\s*=", text, re.MULTILINE
    ):
        raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no mpc.bus / mpc.branch")
    version = re.search(r"^\s*mpc\.version\s*=\s*'(\w+)'", text, re.MULTILINE)
    if version is None or version.group(1) != "2":
        found = "none" if version is None else repr(version.group(1))
        raise DataError(f"{path.name}: mpc.version: only MATPOWER case format version '2' is read, found {found}")
    _check_matpower_is_data(path, text)
    from pandapower.converter.matpower import from_mpc

    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore", FutureWarning)  # pandas' warning inside pandapower's converter
            src = path
            if path.suffix.lower() != ".m":  # the parser reads '.m' files only: a copy under that name
                src = Path(tmp) / f"{path.stem}.m"
                src.write_text(text)
            net = from_mpc(str(src), f_hz=50)
    except Exception as exc:  # the parser's own errors are not ours: one line naming the file
        raise DataError(f"{path.name}: MATPOWER case could not be parsed: {_one_line(exc)}") from exc
    # pandapower's converter numbers buses from 0 (MATPOWER's number - 1); the file's numbers are the labels.
    number = {b: str(int(b) + 1) for b in net.bus.index}
    net.bus["name"] = [number[b] for b in net.bus.index]
    net.line["name"] = [
        f"branch {number[f]}-{number[t]}" for f, t in zip(net.line.from_bus, net.line.to_bus, strict=True)
    ]
    if len(net.trafo[net.trafo.in_service]):
        tr = net.trafo[net.trafo.in_service].iloc[0]
        raise DataError(
            f"{path.name}: branch {number[tr.hv_bus]}-{number[tr.lv_bus]}: transformers (tap ratio or two "
            f"voltage levels) are not supported; a feeder has one voltage level"
        )
    try:
        feeder = from_pandapower(net, name=path.name)
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc
    rated = np.isfinite(feeder.ampacity_a)
    conductor = np.arange(feeder.n_bus) > 0
    amp, notes = _rating_notes(path.name, feeder.ampacity_a, rated, conductor, default_ampacity_a, "MATPOWER rateA")
    return Feeder(**{**feeder.__dict__, "ampacity_a": amp, "notes": (*feeder.notes, *notes)})


# --- OpenDSS ----------------------------------------------------------------------------------------------
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


# --- dispatch ---------------------------------------------------------------------------------------------
#: Readers by format (a registry, not if/elif).
READERS: dict[str, Callable[..., Feeder]] = {"matpower": read_matpower, "opendss": read_opendss}
_SUFFIXES = {".m": "matpower", ".dss": "opendss"}


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path.name}: no such file ({path})")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("latin-1") if b"\x00" not in raw else _not_text(path)
        except UnicodeDecodeError:
            return _not_text(path)


def _one_line(exc: BaseException, max_chars: int = 300) -> str:
    """A dependency's (often multi-line) error message as one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _not_text(path: Path) -> str:
    raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): not a text file")


def check_feeder_file(path: Path) -> str:
    """The format of a feeder file, 'matpower' or 'opendss': by suffix when it is '.m' or '.dss', else by its
    content; a one-line DataError naming the file when it is neither."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    head = _read_text(path)[:_SNIFF_BYTES]
    if _MATPOWER_SNIFF.search(head):
        return "matpower"
    if _OPENDSS_SNIFF.search(head):
        return "opendss"
    raise DataError(
        f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no 'function mpc' / 'mpc.bus' and no "
        f"'New Circuit.' found"
    )


def read_feeder_file(path: Path, *, default_ampacity_a: float | None = None) -> Feeder:
    """Read a MATPOWER case or an OpenDSS script into a radial :class:`Feeder` (see :func:`read_matpower`,
    :func:`read_opendss`); the format from the suffix ('.m', '.dss') or, for other names, the content.

    Raises
    ------
    DataError
        One line naming the file (and the element): not one of the two formats, or what cannot be reduced.
    """
    path = Path(path)
    fmt = check_feeder_file(path)
    try:
        return READERS[fmt](path, default_ampacity_a=default_ampacity_a)
    except V2GTwinError:
        raise
    except Exception as exc:  # a reader's dependency failing on odd input: still one line naming the file
        raise DataError(f"{path.name}: could not be read as {fmt}: {_one_line(exc)}") from exc
