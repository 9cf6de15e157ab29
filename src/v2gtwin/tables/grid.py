"""The grid's tables: the feeder per step and per bus, hosting capacity, losses by charging policy, bulk-grid
services per step and per service, the cascade, protection, resilience and the network of feeders."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v2gtwin.tables._util import rows_frame, step_frame, summary_frame

if TYPE_CHECKING:
    from v2gtwin.grid.network_analysis import NetworkSection
    from v2gtwin.grid.protection.analysis import ProtectionAnalysis
    from v2gtwin.grid.resilience_analysis import ResilienceAnalysis
    from v2gtwin.optimize.network_battery import NetworkBattery
    from v2gtwin.scenario import TimeGrid
    from v2gtwin.study_result import FeederSection, ServicesSection

__all__ = [
    "feeder_frames",
    "network_battery_frames",
    "network_frames",
    "protection_frames",
    "resilience_frames",
    "services_frames",
]


def feeder_frames(section: FeederSection, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``feeder_steps`` (power flows of the day: base load, uncontrolled EVs, lowest voltage and losses three
    ways, the EV inverters' reactive power), ``feeder_buses`` (each bus's upstream bus and voltage at the worst
    step three ways), ``hosting`` (per bus, ``case`` 'plain' or 'voltvar'), ``losses`` (per charging policy)
    and ``losses_steps`` (each policy's EV charging per step)."""
    ts = section.timeseries
    steps = step_frame(
        time,
        {
            "p_base_total_kw": section.p_base_total_kw,
            "p_ev_total_kw": section.p_ev_total_kw,
            "v_min_base_pu": ts.v_min_base_pu,
            "v_min_fleet_pu": ts.v_min_fleet_pu,
            "v_min_voltvar_pu": ts.v_min_voltvar_pu,
            "losses_base_kw": ts.losses_base_kw,
            "losses_fleet_kw": ts.losses_fleet_kw,
            "losses_voltvar_kw": ts.losses_voltvar_kw,
            "q_voltvar_kvar": ts.q_voltvar_kvar,
        },
    )
    labels = np.asarray(section.bus_labels).astype(str)
    parent = section.parent
    buses = pd.DataFrame(
        {
            "bus": labels,
            "parent_bus": [None if p < 0 else labels[p] for p in parent] if parent is not None else None,
            "v_worst_base_pu": ts.v_profile_base_pu,
            "v_worst_fleet_pu": ts.v_profile_fleet_pu,
            "v_worst_voltvar_pu": ts.v_profile_voltvar_pu,
        }
    )
    buses.attrs["worst_step"] = int(ts.worst_step)
    hosting = [section.hosting.to_frame().assign(case="plain")]
    if section.hosting_voltvar is not None:
        hosting.append(section.hosting_voltvar.to_frame().assign(case="voltvar"))
    d = section.dispatch
    losses = pd.DataFrame(
        {
            "policy": list(d.policies),
            "losses_kwh": list(d.losses_kwh),
            "losses_due_to_evs_kwh": [lo - d.losses_base_kwh for lo in d.losses_kwh],
            "energy_kwh": list(d.energy_kwh),
            "v_min_pu": list(d.v_min_pu),
        }
    )
    losses_steps = step_frame(time, {f"p_ev_{p}_kw": d.p_ev_total_kw[k] for k, p in enumerate(d.policies)})
    return {
        "feeder_steps": steps,
        "feeder_buses": buses,
        "hosting": pd.concat(hosting, ignore_index=True),
        "losses": losses,
        "losses_steps": losses_steps,
    }


def services_frames(section: ServicesSection, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``services_steps`` (contingency reserve and the demand-response event per step, network-secure
    variants when sold within a network), ``services`` (every service's headline figures, long: ``service``,
    ``quantity``, ``value``, ``text``), ``cascade`` (per disconnection mode) and ``cascade_t`` (frequency, DER
    output and load shed of each mode against ``t_s``, the seconds after the loss)."""
    r, dr = section.reserve, section.dr
    steps = step_frame(
        time,
        {
            "reserve_kw": r.reserve_kw,
            "reserve_from_charging_kw": r.from_charging_kw,
            "n_reserve_available": r.n_available,
            "reserve_secure_kw": r.reserve_secure_kw,
            "dr_p_baseline_kw": dr.p_baseline_kw,
            "dr_p_kw": dr.p_dr_kw,
            "dr_p_secure_kw": dr.p_dr_secure_kw,
        },
    )
    per_service = pd.concat(
        [summary_frame(v).assign(service=k) for k, v in section.summary().items()], ignore_index=True
    )[["service", "quantity", "value", "text"]]
    modes = pd.DataFrame(
        [
            {
                "mode": c.mode,
                "nadir_hz": c.nadir_hz,
                "nadir_t_s": c.nadir_t_s,
                "load_shed_kw": c.load_shed_kw,
                "der_lost_kw": c.der_lost_kw,
                "ramped_kw": c.ramped_kw,
                "n_ufls_stages": len(c.ufls_stages),
            }
            for c in section.cascade.values()
        ]
    )
    cascade_t = pd.concat(
        [
            pd.DataFrame(
                {"mode": c.mode, "t_s": c.t_s, "f_hz": c.f_hz, "p_der_kw": c.p_der_kw, "p_shed_kw": c.p_shed_kw}
            )
            for c in section.cascade.values()
        ],
        ignore_index=True,
    )
    return {"services_steps": steps, "services": per_service, "cascade": modes, "cascade_t": cascade_t}


def protection_frames(analysis: ProtectionAnalysis) -> dict[str, pd.DataFrame]:
    """``protection_faults`` (per bus), ``protection_devices`` (per device), ``protection_pairs`` (per
    backup/primary pair): the rows of ``v2gtwin protection --json``."""
    return {
        "protection_faults": rows_frame(analysis.fault_table()),
        "protection_devices": rows_frame(analysis.device_table()),
        "protection_pairs": rows_frame(analysis.pair_table()),
    }


def resilience_frames(analysis: ResilienceAnalysis, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``resilience_t``: the critical facility through the outage with and without V2G, indexed by ``time``
    (the outage start + ``t_s``; the outage simulation's own step); ``resilience``: the headline figures (long)."""
    w, wo = analysis.with_v2g, analysis.without_v2g
    start = time.index()[0] + pd.Timedelta(seconds=analysis.outage_start_step * time.dt_s)
    t_s = w.t_s
    series = pd.DataFrame(
        {
            "t_s": t_s,
            "q_with_v2g_pu": w.q,  # performance Q: served / critical load [pu of the load]
            "q_without_v2g_pu": wo.q,
            "p_load_kw": w.p_load_kw,
            "p_served_with_v2g_kw": w.p_served_kw,
            "p_served_without_v2g_kw": wo.p_served_kw,
            "p_pv_kw": w.p_pv_kw,
            "p_gen_kw": w.p_gen_kw,
            "p_battery_kw": w.p_battery_kw,
            "p_v2g_kw": w.p_v2g_kw,
            "e_v2g_kwh": w.e_v2g_kwh[: t_s.size],  # stored V2G energy at the start of each step
        },
        index=pd.DatetimeIndex(start + pd.to_timedelta(t_s, unit="s"), name="time"),
    )
    return {"resilience_t": series, "resilience": summary_frame(analysis.summary())}


def network_frames(section: NetworkSection, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``network_feeders`` (one row per feeder: the network summary's figures) and ``network_steps`` (per
    feeder and step, long: base load, uncontrolled EV charging, lowest voltage base and with the EVs)."""
    summary = section.summary()
    rows = summary.get("feeders", [])
    feeders = rows_frame(rows)
    names = [f.name for f in section.network.feeders]
    parts = []
    for name, fl in zip(names, section.flows, strict=True):
        df = step_frame(
            time,
            {
                "p_base_total_kw": fl.p_base_total_kw,
                "p_ev_total_kw": fl.p_ev_total_kw,
                "v_min_base_pu": fl.v_min_base_pu,
                "v_min_uncontrolled_pu": fl.v_min_uncontrolled_pu,
            },
        )
        df.insert(0, "feeder", name)
        parts.append(df)
    steps = pd.concat(parts) if parts else pd.DataFrame()
    return {"network_feeders": feeders, "network_steps": steps}


def network_battery_frames(nb: NetworkBattery, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``network_battery_steps``: the fleet's power band per virtual battery kind (outer, inner, network-secure
    inner) and step, long (``kind``, ``p_min_kw``, ``p_max_kw``)."""
    parts = []
    for kind, band in nb.series().items():
        df = step_frame(time, {"p_min_kw": band["p_min_kw"], "p_max_kw": band["p_max_kw"]})
        df.insert(0, "kind", kind)
        parts.append(df)
    return {"network_battery_steps": pd.concat(parts) if parts else pd.DataFrame()}
