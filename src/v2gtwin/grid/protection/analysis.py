"""The protection study of a scenario's feeder: fault currents by bus, the device scheme (the scenario's or the
derived default), its coordination without and with V2G, proposed settings and the fleet size at which
coordination first fails."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder
from v2gtwin.grid.protection.coordination import (
    CoordinationCheck,
    CoordinationOptions,
    calc_device_currents,
    run_coordination,
)
from v2gtwin.grid.protection.devices import Device, Scheme, calc_load_current_a, place_default_devices
from v2gtwin.grid.protection.faults import Aggregators, FaultResult, GridSource, run_faults
from v2gtwin.grid.protection.relays import CURVES, calc_trip_time_s
from v2gtwin.grid.protection.search import Proposal, ScaleSearch, find_failing_scale, propose_settings

if TYPE_CHECKING:
    from v2gtwin.scenario import ProtectionSpec

__all__ = [
    "ProtectionAnalysis",
    "build_aggregators",
    "build_scheme",
    "grid_source",
    "grid_source_notes",
    "run_protection_analysis",
]

FloatArray = npt.NDArray[np.float64]


def grid_source(spec: ProtectionSpec) -> GridSource:
    """The upstream grid of ``spec``; an error naming the field when its short-circuit power is missing."""
    if spec.s_sc_mva is None:
        raise DataError(
            "protection.s_sc_mva: the grid's short-circuit power is missing; set it (e.g. 100 MVA) with its "
            "r_over_x, from the network operator's data"
        )
    return GridSource(s_sc_mva=spec.s_sc_mva, r_over_x=spec.r_over_x, c_factor=spec.c_factor)


def grid_source_notes(spec: ProtectionSpec) -> tuple[str, ...]:
    """A note when the scenario leaves the grid's short-circuit data (``s_sc_mva``, ``r_over_x``) to the
    package defaults: the fault currents then rest on an assumed grid, which the outputs must say."""
    unset = [name for name in ("s_sc_mva", "r_over_x") if name not in spec.model_fields_set]
    if not unset:
        return ()
    values = ", ".join(f"{name} = {getattr(spec, name):g}" for name in unset)
    return (
        f"grid short-circuit data not in the scenario: the defaults {values} stand in for the network "
        "operator's data (set [protection] s_sc_mva and r_over_x)",
    )


def build_aggregators(
    feeder: Feeder, bus: npt.ArrayLike, p_discharge_max_kw: npt.ArrayLike, spec: ProtectionSpec, s_over_p: float
) -> Aggregators:
    """One aggregator per bus with V2G chargers: rating ``s_over_p`` x the sum of the chargers' discharge power
    x ``v2g_share`` [kVA] (every charger plugged in: the worst case for fault current), limit factor ``k``; or,
    when ``spec.aggregators`` lists some, those (ratings x ``v2g_share``)."""
    if spec.aggregators:
        index = {str(label): i for i, label in enumerate(feeder.bus_labels)}
        for a in spec.aggregators:
            if a.bus not in index:
                raise DataError(f"protection.aggregators: bus {a.bus!r} is not a bus of feeder {feeder.name}")
        at_list = [index[a.bus] for a in spec.aggregators]
        return Aggregators(
            bus=np.array(at_list, dtype=np.int64),
            s_rated_kva=np.array([a.s_rated_kva * spec.v2g_share for a in spec.aggregators]),
            k=np.full(len(at_list), spec.k),
            label=tuple(f"V2G at bus {a.bus}" for a in spec.aggregators),
        )
    p = np.asarray(p_discharge_max_kw, dtype=float)
    w = np.where(p > 0, p, 0.0)
    s_bus: FloatArray = np.bincount(np.asarray(bus, dtype=np.int64), weights=w, minlength=feeder.n_bus).astype(float)
    s_bus = s_bus * s_over_p * spec.v2g_share
    at = np.flatnonzero(s_bus > 0)
    labels = tuple(f"V2G at bus {feeder.bus_labels[b]}" for b in at)
    return Aggregators(bus=at, s_rated_kva=s_bus[at], k=np.full(at.size, spec.k), label=labels)


def options_of(spec: ProtectionSpec) -> CoordinationOptions:
    """The coordination options of ``spec``."""
    return CoordinationOptions(
        cti_margin_s=spec.cti_margin_s,
        t_max_s=spec.t_max_s,
        t_ride_through_s=spec.t_ride_through_s,
        combination=spec.combination,
        angle_deg=spec.angle_deg,
    )


def build_scheme(
    feeder: Feeder, source: GridSource, spec: ProtectionSpec, i_load_max_a: FloatArray
) -> tuple[Scheme, bool, tuple[str, ...]]:
    """The scenario's devices, or the default scheme derived without V2G; (scheme, is_default, notes). A default
    device that cannot be coordinated even without V2G keeps its first settings, and a note says so."""
    if spec.devices:
        index = {str(label): i for i, label in enumerate(feeder.bus_labels)}
        devs = []
        for d in spec.devices:
            if d.bus not in index or index[d.bus] == 0:
                raise DataError(
                    f"device {d.label}: bus {d.bus!r} is not a load bus of feeder {feeder.name} "
                    f"(labels {feeder.bus_labels[1]}..{feeder.bus_labels[-1]})"
                )
            devs.append(Device(d.label, index[d.bus], d.curve, d.pickup_a, d.tds, d.kind))
        return Scheme.build(feeder, devs), False, ()
    opts = options_of(spec)
    scheme = Scheme.build(feeder, place_default_devices(feeder, i_load_max_a, pickup_margin=spec.pickup_margin))
    base = calc_device_currents(feeder, source, None, scheme, opts)
    prop = propose_settings(feeder, scheme, [base], opts, i_load_max_a=i_load_max_a, pickup_margin=spec.pickup_margin)
    notes = tuple(
        f"default scheme: {scheme.devices[j].label} keeps pickup {scheme.devices[j].pickup_a:g} A, time dial "
        f"{scheme.devices[j].tds:g}: not coordinated even without V2G ({prop.reason[j]})"
        for j in np.flatnonzero(~prop.feasible)
    )
    return scheme.with_settings(prop.pickup_a, prop.tds), True, notes


@dataclass(frozen=True)
class ProtectionAnalysis:
    """Everything the protection study found.

    Attributes
    ----------
    feeder_name : the feeder studied.
    bus_labels : label of every bus.
    faults_base, faults_v2g : fault at every bus without and with the aggregators.
    aggregators : the aggregators (one per bus with V2G chargers).
    scheme : the devices and their settings.
    default_scheme : the scheme is the derived default.
    i_load_max_a : largest load current of every branch over the horizon (exact power flow) [A].
    base, v2g : coordination without and with V2G.
    proposal : settings that restore coordination in both cases (or why none exist).
    scale : fleet size at which coordination first fails.
    options : the coordination options.
    source : the upstream grid.
    notes : what a reader must know about how the scheme was built.
    parent : the feeder's parent of every bus (-1 at the source) [-] (plots break their lines between
        laterals); None when not given.
    """

    feeder_name: str
    bus_labels: npt.NDArray[np.str_]
    faults_base: FaultResult
    faults_v2g: FaultResult
    aggregators: Aggregators
    scheme: Scheme
    default_scheme: bool
    i_load_max_a: FloatArray
    base: CoordinationCheck
    v2g: CoordinationCheck
    proposal: Proposal
    scale: ScaleSearch
    options: CoordinationOptions
    source: GridSource
    notes: tuple[str, ...] = ()
    parent: npt.NDArray[np.int64] | None = None

    def to_frames(self) -> dict[str, Any]:
        """Faults, devices, pairs as pandas DataFrames: :func:`v2gtwin.tables.grid.protection_frames`."""
        from v2gtwin.tables.grid import protection_frames

        return protection_frames(self)

    def fault_table(self) -> list[dict[str, Any]]:
        """One row per bus: fault current without and with V2G [A]."""
        return [
            {
                "bus": str(self.bus_labels[i]),
                "i_fault_base_a": float(self.faults_base.i_fault_a[i]),
                "i_fault_v2g_a": float(self.faults_v2g.i_fault_a[i]),
                "i_fault_v2g_part_a": float(self.faults_v2g.i_fault_v2g_a[i]),
            }
            for i in range(self.bus_labels.size)
        ]

    def device_table(self) -> list[dict[str, Any]]:
        """One row per device: settings, the proposal, sympathetic tripping and blinding without and with V2G."""
        rows = []
        for j, d in enumerate(self.scheme.devices):
            row: dict[str, Any] = {
                "device": d.label,
                "bus": str(self.bus_labels[d.branch]),
                "kind": d.kind,
                "curve": d.curve,
                "pickup_a": d.pickup_a,
                "tds": d.tds,
                "i_load_max_a": float(self.i_load_max_a[d.branch]),
            }
            for tag, chk in (("base", self.base), ("v2g", self.v2g)):
                row |= {
                    f"i_backfeed_{tag}_a": float(chk.i_backfeed_a[j]),
                    f"sympathetic_{tag}": bool(chk.sympathetic[j]),
                    f"blind_bus_{tag}": str(self.bus_labels[chk.blind_bus[j]]),
                    f"t_blind_{tag}_s": _finite(chk.t_blind_s[j]),
                    f"blinded_{tag}": bool(chk.blinded[j]),
                }
            row |= {
                "proposed_pickup_a": float(self.proposal.pickup_a[j]) if self.proposal.feasible[j] else None,
                "proposed_tds": float(self.proposal.tds[j]) if self.proposal.feasible[j] else None,
                "proposal_note": self.proposal.reason[j],
            }
            rows.append(row)
        return rows

    def pair_table(self) -> list[dict[str, Any]]:
        """One row per backup/primary pair: CTI at the downstream zone's largest fault current, without and with V2G."""
        devs = self.scheme.devices
        rows = []
        for k in range(self.base.up.size):
            row: dict[str, Any] = {"upstream": devs[self.base.up[k]].label, "downstream": devs[self.base.down[k]].label}
            for tag, chk in (("base", self.base), ("v2g", self.v2g)):
                row |= {
                    f"fault_bus_{tag}": str(self.bus_labels[chk.fault_bus[k]]),
                    f"i_up_{tag}_a": float(chk.i_up_a[k]),
                    f"i_down_{tag}_a": float(chk.i_down_a[k]),
                    f"t_up_{tag}_s": _finite(chk.t_up_s[k]),
                    f"t_down_{tag}_s": _finite(chk.t_down_s[k]),
                    f"cti_{tag}_s": _finite(chk.cti_s[k]),
                    f"miscoordinated_{tag}": bool(chk.miscoordinated[k]),
                }
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """Headline figures (units in the keys)."""
        i_b, i_v = self.faults_base.i_fault_a[1:], self.faults_v2g.i_fault_a[1:]
        rise = (i_v - i_b) / i_b
        return {
            "feeder": self.feeder_name,
            "s_sc_mva": self.source.s_sc_mva,
            "r_over_x": self.source.r_over_x,
            "c_factor": self.source.c_factor,
            "combination": self.options.combination,
            "n_aggregators": self.aggregators.n,
            "s_v2g_kva": float(self.aggregators.s_rated_kva.sum()),
            "k": float(self.aggregators.k[0]) if self.aggregators.n else None,
            "t_ride_through_s": self.options.t_ride_through_s,
            "n_devices": self.scheme.n,
            "default_scheme": self.default_scheme,
            "i_fault_max_base_a": float(i_b.max()),
            "i_fault_min_base_a": float(i_b.min()),
            "i_fault_rise_max_pct": float(100.0 * rise.max()),
            "i_fault_rise_max_bus": str(self.bus_labels[1 + int(np.argmax(rise))]),
            "cti_margin_s": self.options.cti_margin_s,
            "issues_base": self.base.n_issues(),
            "issues_v2g": self.v2g.n_issues(),
            "coordinated_base": self.base.ok,
            "coordinated_v2g": self.v2g.ok,
            "proposal_restores": self.proposal.restored,
            "failing_scale": self.scale.scale,
            "failing_s_v2g_kva": self.scale.s_rated_kva,
            "failing_issue": self.scale.first_issue,
            "notes": list(self.notes),
        }

    def affected_devices(self) -> list[int]:
        """Indices of the devices V2G affects: in a miscoordinated pair, tripping sympathetically or blinded
        with V2G when they are not without it."""
        out: set[int] = set()
        new_mis = self.v2g.miscoordinated & ~self.base.miscoordinated
        out.update(self.v2g.up[new_mis].tolist() + self.v2g.down[new_mis].tolist())
        out.update(np.flatnonzero(self.v2g.sympathetic & ~self.base.sympathetic).tolist())
        out.update(np.flatnonzero(self.v2g.blinded & ~self.base.blinded).tolist())
        return sorted(out)

    def tcc_points(self, n_points: int = 200) -> list[tuple[str, FloatArray, FloatArray]]:
        """Time-current curve of every device, (label, current [A], operating time [s]), from 1.05 x pickup to
        the largest fault current on the feeder, log-spaced."""
        i_top = float(max(self.faults_v2g.i_fault_a.max(), self.faults_base.i_fault_a.max()))
        out = []
        for d in self.scheme.devices:
            i = np.geomspace(1.05 * d.pickup_a, max(i_top, 1.1 * d.pickup_a), n_points)
            out.append((d.label, i, calc_trip_time_s(d.curve, i, d.pickup_a, d.tds)))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: summary, faults by bus, devices, pairs, the fleet-size search."""
        return {
            "summary": self.summary(),
            "faults": self.fault_table(),
            "devices": self.device_table(),
            "pairs": self.pair_table(),
            "scale_search": self.scale.to_dict(),
            "curves": {d.curve: CURVES[d.curve].title for d in self.scheme.devices},
        }


def _finite(x: float) -> float | None:
    """A time for output: None when the device does not operate (inf) or the interval is undefined (nan)."""
    return float(x) if math.isfinite(x) else None


def run_protection_analysis(
    feeder: Feeder,
    spec: ProtectionSpec,
    ev_bus: npt.ArrayLike,
    p_discharge_max_kw: npt.ArrayLike,
    p_load_kw: npt.ArrayLike,
    q_load_kvar: npt.ArrayLike,
    *,
    s_over_p: float = 1.0,
) -> ProtectionAnalysis:
    """The protection study of a feeder with its V2G fleet.

    Parameters
    ----------
    feeder : the feeder.
    spec : the scenario's ``[protection]`` section.
    ev_bus, p_discharge_max_kw : each EV's feeder bus [-] and discharge power [kW].
    p_load_kw, q_load_kvar : the feeder's load over the horizon, shape (n_steps, n_bus), for the largest load
        current of each branch [kW], [kvar].
    s_over_p : inverter apparent-power rating per kW of charger power [kVA/kW].
    """
    source = grid_source(spec)
    opts = options_of(spec)
    aggs = build_aggregators(feeder, ev_bus, p_discharge_max_kw, spec, s_over_p)
    i_load = calc_load_current_a(feeder, p_load_kw, q_load_kvar)
    scheme, is_default, scheme_notes = build_scheme(feeder, source, spec, i_load)
    notes = grid_source_notes(spec) + scheme_notes
    base, v2g, cur_b, cur_v = run_coordination(feeder, source, aggs, scheme, opts)
    prop = propose_settings(feeder, scheme, [cur_b, cur_v], opts, i_load_max_a=i_load, pickup_margin=spec.pickup_margin)
    if aggs.n:
        scale = find_failing_scale(feeder, source, aggs, scheme, opts, scale_max=spec.scale_max)
    else:
        scale = ScaleSearch(None, None, {}, 0, spec.scale_max)
    return ProtectionAnalysis(
        feeder_name=feeder.name,
        bus_labels=feeder.bus_labels,
        faults_base=run_faults(feeder, source, None, combination=opts.combination),
        faults_v2g=run_faults(feeder, source, aggs, combination=opts.combination, angle_deg=opts.angle_deg),
        aggregators=aggs,
        scheme=scheme,
        default_scheme=is_default,
        i_load_max_a=i_load,
        base=base,
        v2g=v2g,
        proposal=prop,
        scale=scale,
        options=opts,
        source=source,
        notes=notes,
        parent=feeder.parent,
    )
