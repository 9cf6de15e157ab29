"""Bulk-grid service analyses a study runs: primary response, AGC and regulation, reserve and demand
response, and the under-frequency cascade — each one function from the fleet and the scenario — and the one
JSON summary of each (``summarize_*``), which both the ``v2gtwin frequency`` commands and the study's
results.json print."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import ScenarioError
from v2gtwin.fleet import Fleet, SocResult
from v2gtwin.grid.agc import (
    AgcArea,
    AgcResult,
    RegulationResult,
    generate_regd_signal,
    run_regulation,
    run_two_area_agc,
)
from v2gtwin.grid.cascade import (
    CASCADE_MODES,
    DEFAULT_UFLS,
    CascadeResult,
    UflsStage,
    calc_fleet_ramp_effect,
    default_population,
    run_cascade,
)
from v2gtwin.grid.frequency import (
    DroopFleet,
    DynamicsResult,
    SteadyStateResult,
    SystemParams,
    run_dynamics,
    run_steady_state,
)
from v2gtwin.grid.secure import SECURE_RULE, NetworkLimits, calc_secure_band, summarize_gap
from v2gtwin.grid.services import DemandResponseResult, ReserveResult, run_demand_response, run_reserve
from v2gtwin.scenario import FrequencySpec, TimeGrid

__all__ = [
    "AgcAnalysis",
    "FrequencyAnalysis",
    "build_droop_fleet",
    "clock_to_step",
    "run_agc_analysis",
    "run_cascade_analysis",
    "run_frequency_analysis",
    "run_reserve_analysis",
    "run_reserve_dr_analysis",
    "summarize_agc",
    "summarize_cascade",
    "summarize_dr",
    "summarize_droop",
    "summarize_dynamics",
    "summarize_reserve",
    "system_params",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]


def clock_to_step(time: TimeGrid, hour: float, name: str = "hour") -> int:
    """The step that starts at (or just before) the local clock time ``hour`` (see ``TimeGrid.step_at``)."""
    return time.step_at(hour, name)


def system_params(spec: FrequencySpec) -> SystemParams:
    """The single-area system of the scenario."""
    s = spec.system_mw * 1000.0
    return SystemParams(
        s_base_kw=s,
        h_s=spec.h_s,
        d_load_kw_per_hz=spec.load_damping_pu * s / spec.f_nom_hz,
        p_gen_kw=spec.gen_mw * 1000.0,
        r_pu=spec.r_pu,
        t_gov_s=spec.t_gov_s,
        t_turb_s=spec.t_turb_s,
        f_nom_hz=spec.f_nom_hz,
    )


def build_droop_fleet(
    fleet: Fleet, baseline: SocResult, step: int, spec: FrequencySpec, rng: np.random.Generator
) -> tuple[DroopFleet, npt.NDArray[np.int64]]:
    """The EVs plugged in at ``step`` as a droop fleet (and their indices in ``fleet``).

    Headroom up: from the baseline power down to full discharge (no discharge at or below the mobility
    floor); headroom down: up to full charging (none when full). Response time constants are drawn
    uniformly between the scenario's bounds (heterogeneous inverters).
    """
    idx = np.flatnonzero((fleet.arrival_step <= step) & (step < fleet.departure_step))
    p0 = np.asarray(baseline.p_kw[step, idx], dtype=float)
    soc = np.asarray(baseline.soc_pu[step, idx], dtype=float)
    can_dis = soc > fleet.soc_min_pu[idx] + 1e-9
    can_ch = soc < fleet.soc_max_pu[idx] - 1e-9
    up = p0 + np.where(can_dis, fleet.p_discharge_max_kw[idx], 0.0)
    down = np.where(can_ch, fleet.p_charge_max_kw[idx] - p0, 0.0)
    tau = rng.uniform(spec.ev_t_response_min_s, spec.ev_t_response_max_s, idx.size)
    droop = DroopFleet(
        p_rated_kw=np.asarray(fleet.p_charge_max_kw[idx], dtype=np.float64),
        headroom_up_kw=np.clip(up, 0.0, None),
        headroom_down_kw=np.clip(down, 0.0, None),
        deadband_hz=np.full(idx.size, spec.ev_deadband_hz),
        droop_pu=np.full(idx.size, spec.ev_droop_pu),
        t_response_s=tau,
    )
    return droop, idx


@dataclass(frozen=True)
class FrequencyAnalysis:
    """Primary response to the scenario's load step, with and without the fleet.

    Attributes
    ----------
    n_evs : EVs taking part [-]. steady : closed-form settled state with the fleet.
    steady_without_df_hz : settled deviation without the fleet [Hz].
    dynamics, dynamics_without : trajectories with and without the fleet.
    event_clock : local clock time of the start of the step modelled (``event_hour`` falls in it), "HH:MM".
    """

    n_evs: int
    steady: SteadyStateResult
    steady_without_df_hz: float
    dynamics: DynamicsResult
    dynamics_without: DynamicsResult
    event_clock: str = ""


def run_frequency_analysis(
    fleet: Fleet, baseline: SocResult, spec: FrequencySpec, time: TimeGrid, seed: int
) -> FrequencyAnalysis:
    """Steady state and dynamics of the scenario's load step in the step holding ``event_hour`` (its start
    is reported as ``event_clock``)."""
    step = clock_to_step(time, spec.event_hour, "frequency.event_hour")
    droop, _ = build_droop_fleet(fleet, baseline, step, spec, np.random.default_rng([seed, 4]))
    sysp = system_params(spec)
    dp = spec.step_mw * 1000.0
    steady = run_steady_state(droop, dp, sysp.d_load_kw_per_hz, sysp.k_gen_kw_per_hz, spec.f_nom_hz)
    empty = DroopFleet(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.ones(0), np.ones(0))
    without = run_steady_state(empty, dp, sysp.d_load_kw_per_hz, sysp.k_gen_kw_per_hz, spec.f_nom_hz)
    return FrequencyAnalysis(
        n_evs=droop.n,
        steady=steady,
        steady_without_df_hz=without.df_hz,
        dynamics=run_dynamics(droop, sysp, dp),
        dynamics_without=run_dynamics(empty, sysp, dp),
        event_clock=time.clock_label(step),
    )


@dataclass(frozen=True)
class AgcAnalysis:
    """Secondary regulation: the AGC loop with and without the fleet, and the fleet following a RegD-like
    signal with pro-rata and SoC-aware allocation.

    Attributes
    ----------
    agc, agc_without : two-area AGC runs. fleet_range_kw : the fleet's AGC range (symmetric) [kW].
    regulation : {allocation: RegulationResult}. dt_s : signal resolution [s].
    fleet_range_secure_kw : the part of ``fleet_range_kw`` the network carries both ways (each EV's symmetric
        band clipped per bus to the operating envelope at ``event_hour``; None without network limits) [kW].
    capacity_kw, capacity_secure_kw : regulation capacity offered (``reg_capacity_share`` of the range), and
        of the secure range (None without network limits) [kW].
    n_bus_binding : buses whose envelope cuts the band (None without network limits) [-].
    secure_rule : the rule of the network-secure figures (empty without network limits).
    delay_mean_s : mean command-path delay the fleet's response was delayed by (0: no path) [s].
    regulation_without_delay, restore_without_delay_s : the same runs without the command delay (None when
        there is no delay) [-, s].
    """

    agc: AgcResult
    agc_without: AgcResult
    fleet_range_kw: float
    regulation: dict[str, RegulationResult]
    dt_s: float
    capacity_kw: float = 0.0
    fleet_range_secure_kw: float | None = None
    capacity_secure_kw: float | None = None
    n_bus_binding: int | None = None
    secure_rule: str = ""
    delay_mean_s: float = 0.0
    regulation_without_delay: dict[str, RegulationResult] | None = None
    restore_without_delay_s: float | None = None


def run_agc_analysis(
    fleet: Fleet,
    baseline: SocResult,
    spec: FrequencySpec,
    time: TimeGrid,
    seed: int,
    signal: tuple[float, FloatArray] | None = None,
    limits: NetworkLimits | None = None,
    delay_s: float | npt.ArrayLike = 0.0,
) -> AgcAnalysis:
    """AGC with/without the fleet, and regulation following over ``reg_minutes`` from ``event_hour``; with
    ``limits`` (the network's operating envelopes), also the network-secure range and capacity
    (:func:`v2gtwin.grid.secure.calc_secure_band` on each EV's symmetric band around its baseline power).
    ``delay_s`` (one delay or samples of the command path's delay [s]) delays the fleet's response in the AGC
    loop and in regulation following; when it is not 0, the runs without it are kept beside them."""
    delays = np.atleast_1d(np.asarray(delay_s, dtype=float))
    delayed = bool((delays != 0).any())
    step = clock_to_step(time, spec.event_hour, "frequency.event_hour")
    droop, idx = build_droop_fleet(fleet, baseline, step, spec, np.random.default_rng([seed, 5]))
    sym = float(np.minimum(droop.headroom_up_kw, droop.headroom_down_kw).sum())
    area_kw = spec.agc_area_mw * 1000.0
    ramp = area_kw * spec.agc_ramp_pct_per_min / 100.0 / 60.0
    base_area = dict(
        s_base_kw=area_kw,
        d_load_kw_per_hz=spec.load_damping_pu * area_kw / spec.f_nom_hz,
        p_gen_kw=area_kw,
        r_pu=spec.r_pu,
        h_s=spec.h_s,
        t_gov_s=spec.t_gov_s,
        t_turb_s=spec.t_turb_s,
        ramp_kw_per_s=ramp,
        f_nom_hz=spec.f_nom_hz,
    )
    with_fleet = AgcArea(
        **base_area,
        ev_up_kw=float(droop.headroom_up_kw.sum()),
        ev_down_kw=float(droop.headroom_down_kw.sum()),
    )
    plain = AgcArea(**base_area)
    dp = (spec.agc_step_mw * 1000.0, 0.0)
    tie = 2 * np.pi * 0.1 * area_kw / spec.f_nom_hz
    agc = run_two_area_agc(
        with_fleet, plain, dp, t_tie_kw_per_hz_s=tie, k_i_per_s=spec.agc_k_i_per_s, ev_delay_s=delays
    )
    agc_without = run_two_area_agc(plain, plain, dp, t_tie_kw_per_hz_s=tie, k_i_per_s=spec.agc_k_i_per_s)
    if signal is None:
        dt_s = 2.0
        sig = generate_regd_signal(int(spec.reg_minutes * 60 / dt_s), np.random.default_rng([seed, 6]), dt_s=dt_s)
    else:
        dt_s, sig = signal
    soc = np.asarray(baseline.soc_pu[step, idx], dtype=float)
    p0 = np.asarray(baseline.p_kw[step, idx], dtype=float)
    capacity = spec.reg_capacity_share * sym
    regulation, regulation_undelayed = (
        {
            alloc: run_regulation(
                sig,
                dt_s,
                capacity,
                soc,
                fleet.capacity_kwh[idx],
                fleet.soc_min_pu[idx],
                fleet.soc_max_pu[idx],
                p0,
                fleet.p_charge_max_kw[idx],
                fleet.p_discharge_max_kw[idx],
                fleet.eta_charge[idx],
                fleet.eta_discharge[idx],
                alloc,
                d,
            )
            for alloc in ("pro_rata", "soc_aware")
        }
        for d in (delays, 0.0)
    )
    out = AgcAnalysis(agc, agc_without, sym, regulation, dt_s, capacity_kw=capacity)
    if delayed:
        plain_loop = run_two_area_agc(with_fleet, plain, dp, t_tie_kw_per_hz_s=tie, k_i_per_s=spec.agc_k_i_per_s)
        out = dataclasses.replace(
            out,
            delay_mean_s=float(delays.mean()),
            regulation_without_delay=regulation_undelayed,
            restore_without_delay_s=plain_loop.restore_s,
        )
    if limits is None:
        return out
    band = np.zeros(fleet.n)
    band[idx] = np.minimum(droop.headroom_up_kw, droop.headroom_down_kw)
    band_secure, n_bind = calc_secure_band(limits, step, baseline.p_kw[step], band)
    secure = sym if n_bind == 0 else float(band_secure.sum())
    return dataclasses.replace(
        out,
        fleet_range_secure_kw=secure,
        capacity_secure_kw=spec.reg_capacity_share * secure,
        n_bus_binding=n_bind,
        secure_rule=SECURE_RULE,
    )


def run_reserve_analysis(
    fleet: Fleet, baseline: SocResult, spec: FrequencySpec, limits: NetworkLimits | None = None
) -> ReserveResult:
    """Contingency reserve over the day with the scenario's lead time and duration (exact, in seconds); with
    ``limits``, also network-secure."""
    return run_reserve(
        fleet,
        baseline,
        lead_s=spec.reserve_lead_min * 60.0,
        duration_s=spec.reserve_duration_min * 60.0,
        limits=limits,
    )


def run_reserve_dr_analysis(
    fleet: Fleet, baseline: SocResult, spec: FrequencySpec, time: TimeGrid, limits: NetworkLimits | None = None
) -> tuple[ReserveResult, DemandResponseResult]:
    """Contingency reserve over the day and the scenario's demand-response event (with ``limits``, the
    network's operating envelopes, each also network-secure)."""
    reserve = run_reserve_analysis(fleet, baseline, spec, limits)
    notify = clock_to_step(time, spec.dr_notify_hour, "frequency.dr_notify_hour")
    start = clock_to_step(time, spec.dr_start_hour, "frequency.dr_start_hour")
    end = clock_to_step(time, spec.dr_end_hour, "frequency.dr_end_hour")
    if not notify <= start < end:
        raise ScenarioError(
            f"frequency.dr_notify_hour, dr_start_hour, dr_end_hour: need notify <= start < end inside the "
            f"horizon; got steps {notify}, {start}, {end}"
        )
    dr = run_demand_response(fleet, notify, start, end, allow_discharge=spec.dr_allow_discharge, limits=limits)
    clock = {"notify": time.clock_label(notify), "start": time.clock_label(start), "end": time.clock_label(end)}
    return reserve, dataclasses.replace(dr, event_clock=clock)


def run_cascade_analysis(
    fleet: Fleet, baseline: SocResult, spec: FrequencySpec, time: TimeGrid, seed: int
) -> dict[str, CascadeResult]:
    """The cascade event in every mode of :data:`~v2gtwin.grid.cascade.CASCADE_MODES` (simultaneous, the
    fleet ramping while legacy DERs trip at once, every DER ramping, randomised delays).

    The fleet enters the DER population at ``event_hour``: ``cascade_v2g_share`` of the rated discharge
    power of its plugged EVs, discharging (generation that may trip), and ``1 - cascade_v2g_share`` of its
    baseline charging power (load that drops off).
    """
    step = clock_to_step(time, spec.event_hour, "frequency.event_hour")
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    v2g_discharge_kw = spec.cascade_v2g_share * float(fleet.p_discharge_max_kw[plugged].sum())
    ev_charging_kw = (1.0 - spec.cascade_v2g_share) * float(np.clip(baseline.p_kw[step], 0, None).sum())
    s = spec.system_mw * 1000.0
    sysp = SystemParams(
        s_base_kw=s,
        h_s=spec.cascade_h_s,
        d_load_kw_per_hz=spec.load_damping_pu * s / spec.f_nom_hz,
        p_gen_kw=spec.cascade_gen_mw * 1000.0,
        r_pu=spec.r_pu,
        t_gov_s=spec.t_gov_s,
        t_turb_s=0.5,
        f_nom_hz=spec.f_nom_hz,
    )
    pop = default_population(
        pv_legacy_kw=spec.pv_legacy_mw * 1000.0,
        pv_1547_kw=spec.pv_1547_mw * 1000.0,
        v2g_discharge_kw=v2g_discharge_kw,
        ev_charging_kw=ev_charging_kw,
        v2g_legacy_share=spec.v2g_legacy_share,
    )
    ufls = DEFAULT_UFLS
    if spec.f_nom_hz == 50.0:  # the settings are 60 Hz ones: keep their distances below nominal
        pop = dataclasses.replace(pop, f_trip_hz=pop.f_trip_hz - 10.0)
        ufls = tuple(UflsStage(st.f_hz - 10.0, st.share, st.delay_s) for st in DEFAULT_UFLS)
    return {
        mode: run_cascade(
            sysp,
            spec.cascade_loss_mw * 1000.0,
            pop,
            mode,
            ufls=ufls,
            ramp_pu_per_s=spec.ramp_pct_per_s / 100.0,
            random_delay_s=(0.16, spec.random_delay_max_s),
            rng=np.random.default_rng([seed, 7]),
        )
        for mode in CASCADE_MODES
    }


# --- The one JSON summary of each analysis (CLI `v2gtwin frequency <name> --json` == results.json's
# services.summary[<name>]).


def summarize_droop(fa: FrequencyAnalysis, step_mw: float) -> dict[str, Any]:
    """Settled state after the load step ``step_mw`` [MW], with and without the fleet."""
    return {
        "step_mw": step_mw,
        "event_clock": fa.event_clock,
        "n_evs": fa.n_evs,
        "df_ss_hz": fa.steady.df_hz,
        "df_ss_without_fleet_hz": fa.steady_without_df_hz,
        "k_fleet_kw_per_hz": fa.steady.k_fleet_kw_per_hz,
        "fleet_response_kw": fa.steady.fleet_response_kw,
        "n_saturated": int(fa.steady.saturated.sum()),
    }


def summarize_dynamics(fa: FrequencyAnalysis, step_mw: float) -> dict[str, Any]:
    """Nadir (absolute and as a deviation), RoCoF (negative when frequency falls), settling; with and
    without the fleet."""
    d, w = fa.dynamics, fa.dynamics_without
    return {
        "step_mw": step_mw,
        "event_clock": fa.event_clock,
        "n_evs": fa.n_evs,
        "nadir_hz": d.nadir_hz,
        "df_nadir_hz": d.df_nadir_hz,
        "nadir_t_s": d.nadir_t_s,
        "rocof_hz_per_s": d.rocof_hz_per_s,
        "settling_df_hz": d.settling_df_hz,
        "nadir_without_fleet_hz": w.nadir_hz,
        "df_nadir_without_fleet_hz": w.df_nadir_hz,
        "rocof_without_fleet_hz_per_s": w.rocof_hz_per_s,
        "settling_without_fleet_df_hz": w.settling_df_hz,
    }


def summarize_agc(ag: AgcAnalysis) -> dict[str, Any]:
    """AGC restoration with and without the fleet, and regulation following per allocation; with network
    limits, the range and capacity unconstrained, network-secure and the difference."""
    return (
        {
            "restore_s": ag.agc.restore_s,
            "restore_without_fleet_s": ag.agc_without.restore_s,
            "fleet_range_kw": ag.fleet_range_kw,
            "regulation": {
                k: {
                    "capacity_kw": r.capacity_kw,
                    "score": r.score.composite,
                    "accuracy": r.score.accuracy,
                    "delay": r.score.delay,
                    "precision": r.score.precision,
                    "throughput_kwh": r.throughput_kwh,
                }
                for k, r in ag.regulation.items()
            },
        }
        | _delay_keys(ag)
        | _secure_keys(
            ag,
            ("fleet_range", ag.fleet_range_kw, ag.fleet_range_secure_kw),
            ("capacity", ag.capacity_kw, ag.capacity_secure_kw),
        )
    )


def _delay_keys(ag: AgcAnalysis) -> dict[str, Any]:
    """The command delay and the figures without it, when the fleet's response was delayed (else empty)."""
    if ag.regulation_without_delay is None:
        return {}
    return {
        "command_delay_mean_s": ag.delay_mean_s,
        "restore_without_delay_s": ag.restore_without_delay_s,
        "score_without_delay": {k: r.score.composite for k, r in ag.regulation_without_delay.items()},
    }


def _secure_keys(res: Any, *figures: tuple[str, float, float | None]) -> dict[str, Any]:
    """``{name_kw, name_secure_kw, name_network_gap_kw}`` per figure, the rule and the largest count of binding
    buses, when the result carries network-secure figures (empty otherwise)."""
    if not getattr(res, "secure_rule", ""):
        return {}
    out: dict[str, Any] = {}
    for name, value, secure in figures:
        if secure is not None:
            out |= summarize_gap(value, secure, name)
    nb = res.n_bus_binding
    out["n_bus_binding_max"] = int(np.max(nb)) if nb is not None and np.size(nb) else 0
    out["secure_rule"] = res.secure_rule
    return out


def summarize_reserve(r: ReserveResult) -> dict[str, Any]:
    """Reserve over the day: largest and mean (over every start step, those past the horizon counting 0); with
    network limits, each also network-secure and the difference."""
    out: dict[str, Any] = {
        "lead_s": r.lead_s,
        "duration_s": r.duration_s,
        "max_kw": float(r.reserve_kw.max()),
        "mean_kw": float(r.reserve_kw.mean()),
        "n_steps_past_horizon": r.n_past_horizon,
    }
    if r.reserve_secure_kw is not None:
        sec = r.reserve_secure_kw
        out |= _secure_keys(r, ("max", out["max_kw"], float(sec.max())), ("mean", out["mean_kw"], float(sec.mean())))
    return out


def summarize_dr(d: DemandResponseResult) -> dict[str, Any]:
    """The demand-response event's clock times (the starts of the steps modelled), reduction, rebound and
    targets."""
    return {
        "event_clock": d.event_clock,
        "reduction_mean_kw": d.reduction_mean_kw,
        "peak_reduction_kw": d.peak_reduction_kw,
        "rebound_peak_kw": d.rebound_peak_kw,
        "rebound_baseline_kw": d.rebound_baseline_kw,
        "energy_shifted_kwh": d.energy_shifted_kwh,
        "n_unmet": d.n_unmet,
        "n_unmet_baseline": d.n_unmet_baseline,
    } | _secure_keys(
        d,
        ("reduction_mean", d.reduction_mean_kw, d.reduction_mean_secure_kw),
        ("peak_reduction", d.peak_reduction_kw, d.peak_reduction_secure_kw),
        ("rebound_peak", d.rebound_peak_kw, d.rebound_peak_secure_kw),
    )


def summarize_cascade(res: dict[str, CascadeResult]) -> dict[str, Any]:
    """Each mode's nadir, UFLS stages (numbered from 1), load shed and DER lost, and the fleet's share of
    the ramp-down's effect on the nadir (:func:`~v2gtwin.grid.cascade.calc_fleet_ramp_effect`)."""
    out: dict[str, Any] = {
        m: {
            "nadir_hz": c.nadir_hz,
            "nadir_t_s": c.nadir_t_s,
            "ufls_stages": list(c.ufls_stages),
            "load_shed_kw": c.load_shed_kw,
            "der_lost_kw": c.der_lost_kw,
            "ramped_kw": c.ramped_kw,
            "tripped_kw": c.tripped_by_group,
        }
        for m, c in res.items()
    }
    out["fleet_ramp_effect"] = calc_fleet_ramp_effect(res)
    return out
