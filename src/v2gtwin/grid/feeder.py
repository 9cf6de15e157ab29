"""Radial distribution feeders as arrays, and the exact and linearised power flows over whole time series.

A :class:`Feeder` holds one entry per bus, in topological order (``parent[i] < i``; bus 0 is the source):
the series impedance of the branch that feeds bus ``i`` from ``parent[i]``, the bus's base load and the
branch's ampacity. Builders: :func:`from_pandapower` (any radial pandapower network of lines),
:func:`ieee33` (Baran & Wu 1989, from pandapower's ``case33bw``) and :func:`synthetic_feeder` (a seeded random
radial feeder of any size, for scale tests).

Power flows (all steps at once, loads shaped (n_steps, n_bus) in kW / kvar, positive = consumption):

* :func:`run_powerflow` with ``method="exact"``: backward/forward sweep to ``tol_pu`` (default 1e-10 pu on the
  sum of real and imaginary voltage updates), up to 32 steps solved side by side, each group of steps started
  from the solution of the step before it;
* ``method="lindistflow"``: Baran & Wu's DistFlow without the loss terms, in squared-voltage form.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from v2gtwin.errors import ConvergenceError, DataError
from v2gtwin.grid import _kernels

__all__ = [
    "Feeder",
    "PowerFlowResult",
    "from_pandapower",
    "ieee33",
    "run_powerflow",
    "synthetic_feeder",
    "to_pandapower",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Power base of the per-unit system [kVA].
S_BASE_KVA = 1000.0


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder, one entry per bus in topological order (bus 0 is the source).

    Attributes
    ----------
    name : label.
    parent : upstream bus of each bus (-1 for bus 0) [-].
    r_ohm, x_ohm : series resistance and reactance of the branch feeding each bus (0 for bus 0) [ohm].
    v_base_kv : nominal line-to-line voltage [kV].
    p_load_kw, q_load_kvar : base load of each bus [kW], [kvar].
    ampacity_a : current limit of the branch feeding each bus (inf when unknown) [A].
    v_source_pu : source (slack) voltage magnitude [pu].
    bus_index : the bus's index in the source model's table (e.g. the pandapower bus index), for
        cross-references to that model [-].
    bus_labels : the bus's label as the source publishes it, shown in every output (text, JSON, report):
        Baran & Wu's numbers 1-33 for :func:`ieee33`, a pandapower network's bus names (or its bus indices
        when the names are not all set and distinct; a MATPOWER case converted by pandapower keeps its
        bus numbers), "1".."n" in feeder order for :func:`synthetic_feeder`, the feeder index otherwise.
    branch_label : label of the branch feeding each bus in the source model ("" for bus 0).
    notes : what a reader of any output must know about how the feeder was built (e.g. "ampacity: default
        of 400 A for 23 branches without a rating in the file"); printed with the feeder's results.
    """

    name: str
    parent: IntArray
    r_ohm: FloatArray
    x_ohm: FloatArray
    v_base_kv: float
    p_load_kw: FloatArray
    q_load_kvar: FloatArray
    ampacity_a: FloatArray
    v_source_pu: float = 1.0
    bus_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bus_labels: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, dtype=np.str_))
    branch_label: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.parent)
        for name in ("parent", "r_ohm", "x_ohm", "p_load_kw", "q_load_kvar", "ampacity_a"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.int64 if name == "parent" else np.float64)
            if arr.shape != (n,):
                raise DataError(f"feeder.{name}: expected {n} entries (one per bus), got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if np.size(self.bus_index) == 0:
            object.__setattr__(self, "bus_index", np.arange(n, dtype=np.int64))
        if np.size(self.bus_labels) == 0:
            object.__setattr__(self, "bus_labels", np.arange(n).astype(np.str_))
        for name, dtype in (("bus_index", np.int64), ("bus_labels", np.str_)):
            arr = np.array(getattr(self, name), dtype=dtype)
            if arr.shape != (n,):
                raise DataError(f"feeder.{name}: expected {n} entries (one per bus), got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if np.unique(self.bus_labels).size != n:
            raise DataError("feeder.bus_labels: every bus needs its own label (duplicates found)")
        if not self.branch_label:
            object.__setattr__(self, "branch_label", ("", *(f"branch {i}" for i in range(1, n))))
        if n < 2:
            raise DataError("feeder: needs at least 2 buses (the source and one load bus)")
        if self.parent[0] != -1 or np.any(self.parent[1:] < 0) or np.any(self.parent[1:] >= np.arange(1, n)):
            raise DataError("feeder.parent: buses must be in topological order (parent[i] < i, parent[0] = -1)")
        for name in ("r_ohm", "x_ohm"):
            a = getattr(self, name)
            bad = ~np.isfinite(a) | (a < 0)
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"{self.branch_label[i]}: negative or non-finite {name[0]} = {a[i]} ohm")
        z0 = (self.r_ohm[1:] == 0) & (self.x_ohm[1:] == 0)
        if z0.any():
            i = int(np.argmax(z0)) + 1
            raise DataError(f"{self.branch_label[i]}: zero impedance (merge the two buses instead)")
        if not (self.v_base_kv > 0 and math.isfinite(self.v_base_kv)):
            raise DataError(f"feeder.v_base_kv: must be > 0, got {self.v_base_kv}")
        if not (0.5 <= self.v_source_pu <= 1.5):
            raise DataError(f"feeder.v_source_pu: allowed range 0.5 to 1.5, got {self.v_source_pu}")
        if np.any(self.ampacity_a <= 0):
            i = int(np.argmax(self.ampacity_a <= 0))
            raise DataError(f"{self.branch_label[i]}: ampacity must be > 0 A, got {self.ampacity_a[i]}")

    @property
    def n_bus(self) -> int:
        """Number of buses [-]."""
        return int(self.parent.shape[0])

    @property
    def z_base_ohm(self) -> float:
        """Impedance base [ohm] (``V_base^2 / S_base``)."""
        return self.v_base_kv**2 / (S_BASE_KVA / 1000.0)

    @property
    def i_base_a(self) -> float:
        """Current base [A] (``S_base / (sqrt(3) V_base)``)."""
        return S_BASE_KVA / (math.sqrt(3.0) * self.v_base_kv)

    @property
    def r_pu(self) -> FloatArray:
        """Branch resistances in pu of :attr:`z_base_ohm`."""
        return self.r_ohm / self.z_base_ohm

    @property
    def x_pu(self) -> FloatArray:
        """Branch reactances in pu of :attr:`z_base_ohm`."""
        return self.x_ohm / self.z_base_ohm

    def path_resistance_ohm(self) -> FloatArray:
        """Common-path resistance matrix R[j, m] = sum of r over branches shared by the paths to j and m
        [ohm], shape (n_bus, n_bus). Dense: meant for feeders up to a few thousand buses."""
        return self._common_path(self.r_ohm)

    def path_reactance_ohm(self) -> FloatArray:
        """Common-path reactance matrix [ohm], as :meth:`path_resistance_ohm`."""
        return self._common_path(self.x_ohm)

    def _common_path(self, z: FloatArray) -> FloatArray:
        # R = A diag(z) A^T with A[j, b] = 1 when branch b is on the path to bus j (sparse: nnz = sum of depths).
        a = self.ancestors_sparse()
        return np.asarray((a @ (a.multiply(z[None, :])).T).toarray())

    def ancestors_sparse(self) -> Any:
        """:meth:`ancestors` as a scipy.sparse CSR matrix of floats (n_bus x n_bus)."""
        import scipy.sparse as sp

        rows: list[int] = []
        cols: list[int] = []
        paths: list[list[int]] = [[]]
        for j in range(1, self.n_bus):
            path = [*paths[self.parent[j]], j]
            paths.append(path)
            rows.extend([j] * len(path))
            cols.extend(path)
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.n_bus, self.n_bus))

    def ancestors(self) -> npt.NDArray[np.bool_]:
        """A[j, b] true when branch b (feeding bus b) lies on the path from the source to bus j."""
        n = self.n_bus
        anc = np.zeros((n, n), dtype=bool)
        for j in range(1, n):
            anc[j] = anc[self.parent[j]]
            anc[j, j] = True
        return anc

    def depth(self) -> IntArray:
        """Number of branches between each bus and the source [-]."""
        d = np.zeros(self.n_bus, dtype=np.int64)
        for i in range(1, self.n_bus):
            d[i] = d[self.parent[i]] + 1
        return d

    def to_frame(self) -> pd.DataFrame:
        """One row per bus."""
        return pd.DataFrame(
            {
                "bus": self.bus_labels,
                "parent": self.parent,
                "r_ohm": self.r_ohm,
                "x_ohm": self.x_ohm,
                "p_load_kw": self.p_load_kw,
                "q_load_kvar": self.q_load_kvar,
                "ampacity_a": self.ampacity_a,
            }
        )


# --- builders ---------------------------------------------------------------------------------------------
def _order_tree(
    n: int,
    root: int,
    edges: list[tuple[int, int, int]],
    labels: list[Any],
    edge_labels: dict[int, str] | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """Breadth-first order of a tree given as (u, v, edge index) on nodes 0..n-1.

    Returns (order, parent position, edge index feeding each ordered node). Raises DataError naming the loop
    (by ``edge_labels[e]`` when given, else "branch e") or the unreachable bus.
    """
    # Union-find first: it names the loop precisely.
    uf = list(range(n))

    def find(a: int) -> int:
        while uf[a] != a:
            uf[a] = uf[uf[a]]
            a = uf[a]
        return a

    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for u, v, e in edges:
        ru, rv = find(u), find(v)
        if ru == rv:
            path = _tree_path(adj, u, v)
            names = " -> ".join(str(labels[b]) for b in [*path, path[0]])
            closing = edge_labels[e] if edge_labels is not None else f"branch {e}"
            raise DataError(f"network is not radial: closing {closing} makes the loop {names}")
        uf[ru] = rv
        adj[u].append((v, e))
        adj[v].append((u, e))
    order = [root]
    parent_pos = [-1]
    feed_edge = [-1]
    pos = {root: 0}
    head = 0
    while head < len(order):
        u = order[head]
        for v, e in adj[u]:
            if v not in pos:
                pos[v] = len(order)
                order.append(v)
                parent_pos.append(pos[u])
                feed_edge.append(e)
        head += 1
    if len(order) < n:
        missing = sorted(set(range(n)) - set(pos))
        raise DataError(f"bus {labels[missing[0]]} has no path to the source ({len(missing)} such buses)")
    return np.array(order), np.array(parent_pos), np.array(feed_edge)


def _tree_path(adj: list[list[tuple[int, int]]], a: int, b: int) -> list[int]:
    prev = {a: -1}
    stack = [a]
    while stack:
        u = stack.pop()
        if u == b:
            break
        for v, _ in adj[u]:
            if v not in prev:
                prev[v] = u
                stack.append(v)
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


#: pandapower's converter writes this max_i_ka [kA] for a MATPOWER branch with rateA = 0 ("no limit").
_PP_NO_LIMIT_KA = 99999.0

#: pandapower tables whose in-service elements a feeder of constant-power loads cannot represent.
_UNSUPPORTED_TABLES: dict[str, str] = {
    "gen": "voltage-controlled generators (PV buses) are",
    "shunt": "shunts are",
    "ward": "ward equivalents are",
    "xward": "extended ward equivalents are",
    "storage": "storage units are",
    "motor": "motors are",
    "asymmetric_load": "asymmetric loads are",
    "asymmetric_sgen": "asymmetric static generators are",
}


def from_pandapower(net: Any, name: str = "pandapower") -> Feeder:
    """Build a :class:`Feeder` from a radial pandapower network of lines.

    In-service lines are the branches (``r_ohm_per_km * length_km / parallel``), labelled by their names when
    every line has a distinct one (else "line <index>"); the ext_grid's bus is the source at its ``vm_pu``;
    loads (``p_mw * scaling``) are summed per bus, static generators subtracted; ampacity is
    ``max_i_ka * df * parallel`` (inf for pandapower's converter placeholder of 99999 kA, which stands for
    MATPOWER's rateA = 0, "no limit"). Transformers, voltage-controlled generators, shunts, line charging and
    more than one ext_grid are not supported (clear errors naming the element); switches that open lines
    drop them.
    """
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise DataError("pandapower network: exactly one in-service ext_grid is needed (the source)")
    for table in ("trafo", "trafo3w", "impedance", "dcline"):
        if table in net and len(net[table][net[table].in_service]) > 0:
            raise DataError(f"pandapower network: {table} elements are not supported in radial feeders yet")
    # Elements a feeder of PQ loads cannot represent: refused by name rather than dropped.
    for table, what in _UNSUPPORTED_TABLES.items():
        if table in net and len(net[table]) and net[table].in_service.any():
            el = net[table][net[table].in_service].index[0]
            bus = net[table].bus.loc[el]
            bus_name = net.bus.name.get(bus) if "name" in net.bus else None
            where = bus if bus_name is None or pd.isna(bus_name) else bus_name
            raise DataError(f"{table} {el} at bus {where}: {what} not supported in radial feeders")
    buses = net.bus[net.bus.in_service]
    vn = buses.vn_kv.unique()
    if len(vn) != 1:
        raise DataError(f"pandapower network: all buses need one nominal voltage, found {sorted(vn)} kV")
    idx = {b: i for i, b in enumerate(buses.index)}
    lines = net.line[net.line.in_service]
    if "switch" in net and len(net.switch):
        open_lines = net.switch[(net.switch.et == "l") & (~net.switch.closed)].element
        lines = lines.drop(index=[i for i in open_lines if i in lines.index])
    line_names = [None if pd.isna(v) else str(v).strip() for v in lines.name] if "name" in lines else []
    named = bool(line_names) and all(line_names) and len(set(line_names)) == len(line_names)
    line_label: dict[int, str] = {li: str(line_names[k]) if named else f"line {li}" for k, li in enumerate(lines.index)}
    edges = []
    for li, row in lines.iterrows():
        if row.from_bus not in idx or row.to_bus not in idx:
            raise DataError(f"{line_label[li]}: connects an out-of-service bus")
        for col in ("c_nf_per_km", "g_us_per_km"):
            if col in row and float(row[col]) != 0.0:
                raise DataError(
                    f"{line_label[li]}: line charging ({col} = {row[col]}) is not supported in radial feeders"
                )
        edges.append((idx[row.from_bus], idx[row.to_bus], li))
    ext = net.ext_grid[net.ext_grid.in_service].iloc[0]
    labels = list(buses.index)
    # A person's name for each bus: the network's own names when every bus has a distinct one, else its index.
    raw = [None if pd.isna(v) else str(v).strip() for v in buses.name] if "name" in buses else []
    names = raw if raw and all(raw) and len(set(raw)) == len(raw) else [str(b) for b in labels]
    order, parent_pos, feed = _order_tree(
        len(buses), idx[ext.bus], edges, names, edge_labels=line_label if named else None
    )
    n = len(order)
    r = np.zeros(n)
    x = np.zeros(n)
    amp = np.full(n, np.inf)
    branch_label = [""]
    for k in range(1, n):
        row = lines.loc[feed[k]]
        par = float(row.parallel)
        r[k] = row.r_ohm_per_km * row.length_km / par
        x[k] = row.x_ohm_per_km * row.length_km / par
        if r[k] < 0 or x[k] < 0:
            raise DataError(f"{line_label[feed[k]]}: negative impedance r={r[k]} ohm, x={x[k]} ohm")
        if float(row.max_i_ka) < _PP_NO_LIMIT_KA:
            amp[k] = float(row.max_i_ka) * 1000.0 * float(row.df) * par
        branch_label.append(line_label[feed[k]])
    p = np.zeros(n)
    q = np.zeros(n)
    pos = {labels[o]: k for k, o in enumerate(order)}
    for table, sign in (("load", 1.0), ("sgen", -1.0)):
        if table not in net:
            continue
        el = net[table][net[table].in_service]
        for _, row in el.iterrows():
            if row.bus in pos:
                p[pos[row.bus]] += sign * row.p_mw * row.scaling * 1000.0
                q[pos[row.bus]] += sign * row.q_mvar * row.scaling * 1000.0
    return Feeder(
        name=name,
        parent=parent_pos,
        r_ohm=r,
        x_ohm=x,
        v_base_kv=float(vn[0]),
        p_load_kw=p,
        q_load_kvar=q,
        ampacity_a=amp,
        v_source_pu=float(ext.vm_pu),
        bus_index=np.asarray([labels[o] for o in order], dtype=np.int64),
        bus_labels=np.asarray([names[o] for o in order], dtype=np.str_),
        branch_label=tuple(branch_label),
    )


def ieee33(ampacity_a: float | None = None) -> Feeder:
    """Baran & Wu's 33-bus, 12.66 kV radial feeder (tie lines open), from the packaged table
    ``data/ieee33_baran_wu.csv`` (no pandapower import: the feeder commands start without it).

    The published case has no branch ratings; ``ampacity_a`` sets one rating for every branch (default: none).
    Buses are labelled 1-33 as Baran & Wu (and MATPOWER's ``case33bw``) number them: the source is bus 1 and
    the lowest voltage of the base case is at bus 18. The buses are in the breadth-first order
    :func:`from_pandapower` gives pandapower's ``case33bw`` (``bus_index``: pandapower's bus index, the label
    - 1) and branch ``k`` of the paper is labelled "line k-1" (pandapower's line index), so the feeder equals
    ``from_pandapower(pandapower.networks.case33bw())`` with those labels (tests/grid check it).

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss reduction and load
    balancing", IEEE Trans. Power Delivery 4(2), 1989, doi:10.1109/61.25627.
    """
    from importlib.resources import files

    text = files("v2gtwin").joinpath("data", "ieee33_baran_wu.csv").read_text(encoding="utf-8")
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")][1:]
    table = np.array([[float(v) for v in row] for row in rows])
    branch, u, v = (table[:, c].astype(np.int64) for c in range(3))
    n = int(v.max())
    edges = [(int(a) - 1, int(b) - 1, int(e) - 1) for a, b, e in zip(u, v, branch, strict=True)]
    names = [str(b + 1) for b in range(n)]
    order, parent_pos, feed = _order_tree(n, 0, edges, names)
    row_of = {int(e) - 1: i for i, e in enumerate(branch)}
    rows_k = np.array([row_of[int(e)] for e in feed[1:]])
    r, x, p, q = (np.concatenate([[0.0], table[rows_k, c]]) for c in (3, 4, 5, 6))
    amp = np.full(n, np.inf if ampacity_a is None else float(ampacity_a))
    amp[0] = np.inf
    return Feeder(
        name="ieee33",
        parent=parent_pos,
        r_ohm=r,
        x_ohm=x,
        v_base_kv=12.66,
        p_load_kw=p,
        q_load_kvar=q,
        ampacity_a=amp,
        v_source_pu=1.0,
        bus_index=np.asarray(order, dtype=np.int64),
        bus_labels=(np.asarray(order) + 1).astype(np.str_),
        branch_label=("", *(f"line {int(e)}" for e in feed[1:])),
    )


def synthetic_feeder(
    n_bus: int,
    rng: np.random.Generator,
    *,
    v_base_kv: float = 12.66,
    total_load_kw: float = 5000.0,
    v_min_target_pu: float = 0.95,
    r_over_x: float = 2.0,
) -> Feeder:
    """A seeded random radial feeder for scale tests.

    Each new bus hangs from a random earlier bus, drawn with a bias towards recent buses so that the tree
    has long laterals; loads are lognormal (power factor 0.95) summing to ``total_load_kw``; branch
    impedances are random with ratio ``r_over_x`` and then scaled so that the LinDistFlow voltage at the
    weakest bus is ``v_min_target_pu`` under the base load. Buses are labelled "1".."n" in feeder order
    (the source is bus "1"), the numbering of the published test feeders.
    """
    if n_bus < 2:
        raise DataError(f"n_bus: allowed range >= 2, got {n_bus}")
    u = rng.random(n_bus)
    # parent in [max(0, i - window), i): mostly recent buses, sometimes far back (new laterals).
    window = np.where(rng.random(n_bus) < 0.1, np.arange(n_bus), np.minimum(np.arange(n_bus), 8))
    parent = np.arange(n_bus) - 1 - np.floor(u * window).astype(np.int64)
    parent[0] = -1
    parent[1:] = np.clip(parent[1:], 0, None)
    z = rng.uniform(0.5, 1.5, n_bus)
    r = z * r_over_x / math.hypot(r_over_x, 1.0)
    x = z / math.hypot(r_over_x, 1.0)
    r[0] = x[0] = 0.0
    p = rng.lognormal(0.0, 0.5, n_bus)
    p[0] = 0.0
    p *= total_load_kw / p.sum()
    q = p * math.tan(math.acos(0.95))
    feeder = Feeder(
        name=f"synthetic{n_bus}",
        parent=parent,
        r_ohm=r,
        x_ohm=x,
        v_base_kv=v_base_kv,
        p_load_kw=p,
        q_load_kvar=q,
        ampacity_a=np.full(n_bus, np.inf),
        bus_labels=np.arange(1, n_bus + 1).astype(np.str_),
    )
    pu = np.ascontiguousarray(p[None, :] / S_BASE_KVA)
    qu = np.ascontiguousarray(q[None, :] / S_BASE_KVA)
    v2, pf, qf = np.empty_like(pu), np.empty_like(pu), np.empty_like(pu)
    _kernels.lindistflow(feeder.parent, feeder.r_pu, feeder.x_pu, pu, qu, 1.0, v2, pf, qf)
    drop = 1.0 - v2.min()
    scale = (1.0 - v_min_target_pu**2) / drop
    return Feeder(**{**feeder.__dict__, "r_ohm": r * scale, "x_ohm": x * scale})


def to_pandapower(
    feeder: Feeder, p_load_kw: npt.ArrayLike | None = None, q_load_kvar: npt.ArrayLike | None = None
) -> Any:
    """The feeder as a pandapower network (one line per branch, one load per bus), e.g. for cross-checks."""
    import pandapower as pp

    p = feeder.p_load_kw if p_load_kw is None else np.asarray(p_load_kw, dtype=float)
    q = feeder.q_load_kvar if q_load_kvar is None else np.asarray(q_load_kvar, dtype=float)
    net = pp.create_empty_network(sn_mva=S_BASE_KVA / 1000.0)
    buses = [pp.create_bus(net, vn_kv=feeder.v_base_kv, name=str(label)) for label in feeder.bus_labels]
    pp.create_ext_grid(net, buses[0], vm_pu=feeder.v_source_pu)
    for i in range(1, feeder.n_bus):
        amp = feeder.ampacity_a[i]
        pp.create_line_from_parameters(
            net,
            buses[feeder.parent[i]],
            buses[i],
            length_km=1.0,
            r_ohm_per_km=feeder.r_ohm[i],
            x_ohm_per_km=feeder.x_ohm[i],
            c_nf_per_km=0.0,
            max_i_ka=amp / 1000.0 if np.isfinite(amp) else 99999.0,
        )
        pp.create_load(net, buses[i], p_mw=p[i] / 1000.0, q_mvar=q[i] / 1000.0)
    return net


# --- power flow -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerFlowResult:
    """Solved states of a feeder over time.

    Attributes
    ----------
    v_pu : voltage magnitude of each bus, shape (n_steps, n_bus) [pu].
    v_angle_deg : voltage angle (exact method; zeros for LinDistFlow) [deg].
    i_branch_a : current magnitude of the branch feeding each bus (0 for bus 0) [A].
    p_branch_kw, q_branch_kvar : power entering each branch at its sending end (LinDistFlow: lossless
        downstream sums) [kW], [kvar].
    p_loss_kw : active losses of the feeder per step [kW].
    p_source_kw, q_source_kvar : power drawn from the source per step [kW], [kvar].
    iterations : sweep iterations per step (0 for LinDistFlow) [-].
    method : 'exact' or 'lindistflow'.
    """

    v_pu: FloatArray
    v_angle_deg: FloatArray
    i_branch_a: FloatArray
    p_branch_kw: FloatArray
    q_branch_kvar: FloatArray
    p_loss_kw: FloatArray
    p_source_kw: FloatArray
    q_source_kvar: FloatArray
    iterations: IntArray
    method: str

    def v_min(self) -> tuple[float, int, int]:
        """(lowest voltage [pu], its step, its bus's index in the feeder) over the whole horizon."""
        flat = int(np.argmin(self.v_pu))
        t, b = divmod(flat, self.v_pu.shape[1])
        return float(self.v_pu[t, b]), t, b

    def summary(self, feeder: Feeder) -> dict[str, Any]:
        """Headline figures (JSON-ready): losses, lowest voltage and where (``v_min_bus``: the bus's label as the
        source publishes it), highest branch loading (None without branch ratings)."""
        v, t, b = self.v_min()
        loading = self.i_branch_a / feeder.ampacity_a
        lt, lb = divmod(int(np.argmax(loading)), loading.shape[1])
        rated = bool(np.isfinite(feeder.ampacity_a).any()) and bool(np.isfinite(loading[lt, lb]))
        return {
            "method": self.method,
            "n_steps": int(self.v_pu.shape[0]),
            "n_bus": feeder.n_bus,
            "losses_kw": float(self.p_loss_kw.max()) if self.p_loss_kw.size == 1 else None,
            "losses_max_kw": float(self.p_loss_kw.max()),
            "losses_mean_kw": float(self.p_loss_kw.mean()),
            "v_min_pu": v,
            "v_min_step": t,
            "v_min_bus": str(feeder.bus_labels[b]),
            "p_source_max_kw": float(self.p_source_kw.max()),
            # None when no branch has a rating (e.g. Baran & Wu's case): no loading to report.
            "branch_loading_max_pu": float(loading[lt, lb]) if rated else None,
            "branch_loading_max": feeder.branch_label[lb] if rated else None,
            "iterations_max": int(self.iterations.max()),
        }


def _as_load(feeder: Feeder, a: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != feeder.n_bus:
        raise DataError(f"{name}: expected shape (n_steps, {feeder.n_bus}), got {np.shape(a)}")
    if not np.isfinite(arr).all():
        t, b = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"{name}[{t}, {b}] is not finite")
    return np.ascontiguousarray(arr)


def run_powerflow(
    feeder: Feeder,
    p_kw: npt.ArrayLike,
    q_kvar: npt.ArrayLike,
    *,
    method: Literal["exact", "lindistflow"] = "exact",
    tol_pu: float = 1e-10,
    max_iter: int = 100,
    on_nonconvergence: Literal["raise", "nan"] = "raise",
) -> PowerFlowResult:
    """Solve the feeder for every step at once.

    Parameters
    ----------
    feeder : the feeder.
    p_kw, q_kvar : bus loads, shape (n_steps, n_bus) or (n_bus,) [kW], [kvar]; positive = consumption
        (EV discharging and generation are negative). Bus 0's entries are ignored.
    method : 'exact' (backward/forward sweep) or 'lindistflow'.
    tol_pu : convergence tolerance of the sweep on the largest voltage update [pu].
    max_iter : iteration limit per step.
    on_nonconvergence : 'raise' a ConvergenceError, or mark the failed steps with NaN voltages and
        iterations -1 (used by searches that probe the edge of feasibility).

    Raises
    ------
    ConvergenceError
        The sweep did not converge (voltage collapse); the message names the first failing step.

    Notes
    -----
    LinDistFlow (Baran & Wu 1989, eqs. (3) without the loss terms): ``P_i = sum_{k in subtree(i)} p_k``,
    ``v_i^2 = v_{parent(i)}^2 - 2 (r_i P_i + x_i Q_i)`` in per unit; its losses are estimated as
    ``sum r_i (P_i^2 + Q_i^2) / v_{parent(i)}^2``.
    The exact sweep iterates ``J = sum_subtree conj(S / V)``, ``V_i = V_parent - Z_i J_i`` (Shirmohammadi et
    al., "A compensation-based power flow method for weakly meshed distribution and transmission networks",
    IEEE Trans. Power Systems 3(2), 1988).
    """
    p_kw_arr = _as_load(feeder, p_kw, "p_kw")
    q_kvar_arr = _as_load(feeder, q_kvar, "q_kvar")
    if p_kw_arr.shape != q_kvar_arr.shape:
        raise DataError(f"p_kw and q_kvar shapes differ: {p_kw_arr.shape} vs {q_kvar_arr.shape}")
    n_steps = p_kw_arr.shape[0]
    r, x = feeder.r_pu, feeder.x_pu
    v0 = feeder.v_source_pu
    if method == "lindistflow":
        p = p_kw_arr / S_BASE_KVA
        q = q_kvar_arr / S_BASE_KVA
        p[:, 0] = 0.0
        q[:, 0] = 0.0
        v2 = np.empty_like(p)
        pf = np.empty_like(p)
        qf = np.empty_like(p)
        _kernels.lindistflow(feeder.parent, r, x, p, q, v0, v2, pf, qf)
        collapsed = v2 <= 0
        if collapsed.any() and on_nonconvergence == "nan":
            v2[collapsed.any(axis=1)] = np.nan
        elif collapsed.any():
            t, b = np.argwhere(collapsed)[0]
            raise ConvergenceError(f"LinDistFlow: voltage collapses at step {t}, bus {feeder.bus_labels[b]}")
        v = np.sqrt(v2)
        vpar2 = v2[:, np.maximum(feeder.parent, 0)]
        loss_b = r * (pf**2 + qf**2) / vpar2
        loss_b[:, 0] = 0.0
        i_a = np.sqrt(pf**2 + qf**2) / v[:, np.maximum(feeder.parent, 0)] * feeder.i_base_a
        i_a[:, 0] = 0.0
        p_loss = loss_b.sum(axis=1) * S_BASE_KVA
        return PowerFlowResult(
            v_pu=v,
            v_angle_deg=np.zeros_like(v),
            i_branch_a=i_a,
            p_branch_kw=pf * S_BASE_KVA,
            q_branch_kvar=qf * S_BASE_KVA,
            p_loss_kw=p_loss,
            p_source_kw=p.sum(axis=1) * S_BASE_KVA + p_loss,
            q_source_kvar=(q.sum(axis=1) + (x * (pf**2 + qf**2) / vpar2)[:, 1:].sum(axis=1)) * S_BASE_KVA,
            iterations=np.zeros(n_steps, dtype=np.int64),
            method="lindistflow",
        )
    if method != "exact":
        raise DataError(f"method: must be 'exact' or 'lindistflow', got {method!r}")
    # One buffer for the five (n_steps, n_bus) outputs: numpy asks the kernel for huge pages on large
    # allocations, which saves thousands of page faults (a third of the time of a year's run on 33 buses).
    vm, va, im, ps, qs = np.empty((5, *p_kw_arr.shape))
    loss, qloss, p_src, q_src = np.empty((4, n_steps))
    iters = np.empty(n_steps, dtype=np.int64)
    _kernels.sweep(
        feeder.parent,
        r,
        x,
        p_kw_arr,
        q_kvar_arr,
        S_BASE_KVA,
        feeder.i_base_a,
        v0,
        tol_pu,
        max_iter,
        vm,
        va,
        im,
        ps,
        qs,
        loss,
        qloss,
        p_src,
        q_src,
        iters,
    )
    failed = iters < 0
    if failed.any() and on_nonconvergence == "nan":
        for arr in (vm, va, im, ps, qs):
            arr[failed] = np.nan
        for arr1 in (loss, qloss, p_src, q_src):
            arr1[failed] = np.nan
    elif failed.any():
        t = int(np.argmax(failed))
        raise ConvergenceError(
            f"exact power flow did not converge at step {t} ({int(np.sum(failed))} steps in all): "
            f"the load exceeds what the feeder can carry (voltage collapse)"
        )
    return PowerFlowResult(
        v_pu=vm,
        v_angle_deg=va,
        i_branch_a=im,
        p_branch_kw=ps,
        q_branch_kvar=qs,
        p_loss_kw=loss,
        p_source_kw=p_src,
        q_source_kvar=q_src,
        iterations=iters,
        method="exact",
    )
