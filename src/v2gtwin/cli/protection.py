"""`v2gtwin protection`: fault currents by bus with and without V2G, and relay coordination (CTI, sympathetic
tripping, blinding, proposed settings, the fleet size at which coordination first fails)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _print_json, app, load_scenario_with

protection_app = typer.Typer(
    help="Fault currents and overcurrent protection of the feeder with and without V2G.", no_args_is_help=True
)
app.add_typer(protection_app, name="protection")

SscOpt = Annotated[
    float | None,
    typer.Option("--s-sc-mva", help="Grid short-circuit power at the feeder head [MVA] (default: the scenario's)."),
]
RxOpt = Annotated[
    float | None, typer.Option("--r-over-x", help="R/X of the grid's impedance (default: the scenario's).")
]
KOpt = Annotated[
    float | None,
    typer.Option("--k", help="V2G fault current / rated current, 1.0 to 3.0 (default: the scenario's [protection] k)."),
]


def _changes(**values: Any) -> dict[str, dict[str, Any]]:
    picked = {k: v for k, v in values.items() if v is not None}
    return {"protection": picked} if picked else {}


def _feeder_and_fleet(scen):  # type: ignore[no-untyped-def]
    """The scenario's feeder, its fleet, and its load over the horizon (base + uncontrolled EV charging)."""
    from v2gtwin.study import StudyChain

    chain = StudyChain(scen)
    feeder = chain.get("feeder")  # the study's feeder step and what it needs
    assert chain.feeder_fleet is not None and chain.base_load_ is not None and chain.p_ev_bus_kw is not None
    p, q = chain.base_load_
    return feeder, chain.feeder_fleet, p + chain.p_ev_bus_kw, q


@protection_app.command("faults")
def protection_faults(
    scenario: ScenarioOpt = None,
    s_sc_mva: SscOpt = None,
    r_over_x: RxOpt = None,
    k: KOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Three-phase fault current at every bus without and with the V2G aggregators (IEC 60909 superposition,
    aggregators as current sources limited to k x rated current), and the current each protective device sees."""
    import numpy as np

    from v2gtwin.grid.protection.analysis import (
        build_aggregators,
        build_scheme,
        grid_source,
        grid_source_notes,
        options_of,
    )
    from v2gtwin.grid.protection.coordination import calc_device_currents
    from v2gtwin.grid.protection.devices import calc_load_current_a
    from v2gtwin.grid.protection.faults import run_faults

    scen = load_scenario_with(scenario, _changes(s_sc_mva=s_sc_mva, r_over_x=r_over_x, k=k))
    spec = scen.protection
    source = grid_source(spec)
    feeder, fleet, p_kw, q_kvar = _feeder_and_fleet(scen)
    aggs = build_aggregators(feeder, fleet.bus, fleet.p_discharge_max_kw, spec, scen.feeder.s_over_p)
    base = run_faults(feeder, source, None, combination=spec.combination)
    v2g = run_faults(feeder, source, aggs, combination=spec.combination, angle_deg=spec.angle_deg)
    rise = 100.0 * (v2g.i_fault_a[1:] - base.i_fault_a[1:]) / base.i_fault_a[1:]
    head = {
        "feeder": feeder.name,
        "s_sc_mva": source.s_sc_mva,
        "r_over_x": source.r_over_x,
        "c_factor": source.c_factor,
        "combination": spec.combination,
        "angle_deg": "IEC 60909 (in phase with its own bus voltage)" if spec.angle_deg is None else spec.angle_deg,
        "n_aggregators": aggs.n,
        "s_v2g_kva": float(aggs.s_rated_kva.sum()),
        "k": spec.k,
        "i_fault_rise_max_pct": float(rise.max()),
        "i_fault_rise_max_bus": str(feeder.bus_labels[1 + int(np.argmax(rise))]),
        "notes": list(grid_source_notes(spec)),
    }
    rows = [
        {
            "bus": str(feeder.bus_labels[i]),
            "i_fault_base_a": float(base.i_fault_a[i]),
            "i_fault_v2g_a": float(v2g.i_fault_a[i]),
            "i_fault_v2g_part_a": float(v2g.i_fault_v2g_a[i]),
        }
        for i in range(feeder.n_bus)
    ]
    order = list(range(feeder.n_bus))
    if all(str(r["bus"]).isdigit() for r in rows):  # numbered buses (Baran & Wu's 1-33): in their order
        order.sort(key=lambda i: int(str(rows[i]["bus"])))
    rows = [rows[i] for i in order]
    # Branch currents seen by every protective device for a fault at every bus (while the aggregators inject).
    scheme, _, _ = build_scheme(feeder, source, spec, calc_load_current_a(feeder, p_kw, q_kvar))
    opts = options_of(spec)
    cur_b = calc_device_currents(feeder, source, None, scheme, opts)
    cur_v = calc_device_currents(feeder, source, aggs, scheme, opts)
    devices = [
        {
            "device": d.label,
            "bus": str(feeder.bus_labels[d.branch]),
            "fault_bus": [rows[k]["bus"] for k in range(len(rows))],
            "i_base_a": cur_b.i_first_a[order, j].tolist(),
            "i_v2g_a": cur_v.i_first_a[order, j].tolist(),
        }
        for j, d in enumerate(scheme.devices)
    ]
    if json_out:
        _print_json({"summary": head, "buses": rows, "devices": devices})
        return
    _emit(head, False)
    names = [d["device"] for d in devices]
    sys.stdout.write(
        "fault current at each bus, and the current each device sees [A], without -> with V2G:\n"
        f"{'bus':>6} {'fault':>17} {'V2G part':>9}  " + "  ".join(f"{n:>17}" for n in names) + "\n"
    )
    for k, r in enumerate(rows):
        seen = "  ".join(f"{dv['i_base_a'][k]:>7,.0f} ->{dv['i_v2g_a'][k]:>7,.0f}" for dv in devices)
        sys.stdout.write(
            f"{r['bus']:>6} {r['i_fault_base_a']:>7,.0f} ->{r['i_fault_v2g_a']:>7,.0f} "
            f"{r['i_fault_v2g_part_a']:>9,.0f}  {seen}\n"
        )


@protection_app.command("coordination")
def protection_coordination(
    scenario: ScenarioOpt = None,
    s_sc_mva: SscOpt = None,
    r_over_x: RxOpt = None,
    k: KOpt = None,
    cti_margin: Annotated[
        float | None, typer.Option("--cti-margin", help="Smallest acceptable coordination interval [s] (default 0.3).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Coordination of the feeder's protective devices without and with V2G: CTI of every backup/primary pair,
    sympathetic tripping, blinding, settings that restore coordination (or why none exist), and the fleet
    size at which coordination first fails."""
    from v2gtwin.study import StudyChain

    changes = _changes(s_sc_mva=s_sc_mva, r_over_x=r_over_x, k=k, cti_margin_s=cti_margin)
    scen = load_scenario_with(scenario, changes)
    out = StudyChain(scen).get("protection").to_dict()  # the study's protection step: results.json's protection
    if json_out:
        _print_json(out)
        return
    _emit(out["summary"], False)
    sys.stdout.write("devices (pickup [A], time dial; back-feed [A]; slowest time in reach [s]; proposal):\n")
    for d in out["devices"]:
        flags = [f for f, on in (("SYMPATHETIC", d["sympathetic_v2g"]), ("BLINDED", d["blinded_v2g"])) if on]
        prop = (
            f"-> {d['proposed_pickup_a']:,.0f} A, {d['proposed_tds']:.2f}"
            if d["proposed_pickup_a"] is not None
            else f"-> none: {d['proposal_note']}"
        )
        t_b = "no trip" if d["t_blind_v2g_s"] is None else f"{d['t_blind_v2g_s']:.3f} s at bus {d['blind_bus_v2g']}"
        sys.stdout.write(
            f"  {d['device']:<12} bus {d['bus']:>4} {d['curve']:<8} {d['pickup_a']:>7,.0f} A {d['tds']:>5.2f}; "
            f"back-feed {d['i_backfeed_v2g_a']:>7,.1f} A; {t_b} {' '.join(flags)} {prop}\n"
        )
    sys.stdout.write("pairs (CTI at the downstream zone's largest fault current, without -> with V2G):\n")
    for r in out["pairs"]:

        def fmt(x: float | None) -> str:
            return "no trip" if x is None else f"{x:.3f} s"

        bad = " MISCOORDINATED" if r["miscoordinated_v2g"] else ""
        sys.stdout.write(
            f"  {r['upstream']} / {r['downstream']} (fault at bus {r['fault_bus_v2g']}): CTI {fmt(r['cti_base_s'])} -> "
            f"{fmt(r['cti_v2g_s'])}{bad}\n"
        )
