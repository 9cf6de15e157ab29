"""Battery health in the study: the fleet's capacity fade over the years under uncontrolled charging and under the
V2G schedule the study sells, and how the V2G offer and the schedule change when the battery models, not the flat
placeholder ``markets.degradation_per_mwh``, price the discharge.

The fade compares the same EVs both ways: the schedule's EVs (reachable targets; a sample above
``markets.schedule_max_evs``), each aged for ``battery.years`` on its daily duty cycle
(:func:`v2gtwin.battery.cost.calc_daily_duty_soc`) from its uncontrolled day, and from its scheduled day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from v2gtwin.battery.cost import DegradationCost, calc_daily_duty_soc, degradation_cost_per_mwh
from v2gtwin.battery.degradation import FadeResult, calc_fade, summarize_fade

if TYPE_CHECKING:
    from v2gtwin.fleet import Fleet, SocResult
    from v2gtwin.markets.scheduling import ScheduleAnalysis
    from v2gtwin.scenario import Scenario

__all__ = ["BatteryHealthAnalysis", "calc_discharge_weighted_cost_per_mwh", "run_battery_health_analysis"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BatteryHealthAnalysis:
    """The study's battery section.

    Attributes
    ----------
    cost : the degradation cost the study used. other : the comparison run's cost (flat when the study used
    the models, the models when it used the flat cost).
    fade_uncontrolled, fade_v2g : the schedule's EVs aged on their uncontrolled and their scheduled days.
    n_evs : EVs aged [-]. years [-].
    compare : the V2G offer and the schedule priced both ways (keys ``<figure>_model`` and ``<figure>_flat``);
    ``schedule_degradation_per_mwh_aggregate_batteries_*`` is the one cost of the aggregate models,
    ``schedule_degradation_per_mwh_discharge_weighted_*`` what the solved schedule pays per MWh discharged.
    eol_fade_pu : end-of-life loss the fade summaries count EVs past [pu].
    """

    cost: DegradationCost
    other: DegradationCost
    fade_uncontrolled: FadeResult
    fade_v2g: FadeResult
    n_evs: int
    years: int
    compare: dict[str, Any]
    eol_fade_pu: float = 0.2

    def to_frames(self, currency: str) -> dict[str, Any]:
        """``battery_evs`` (per EV) and ``battery`` (headline figures) as pandas DataFrames:
        :func:`v2gtwin.tables.other.battery_frames`."""
        from v2gtwin.tables.other import battery_frames

        return battery_frames(self, currency)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the cost, the fade both ways by year, and the comparison with the placeholder."""
        model = self.cost if self.cost.source != "flat" else self.other
        return {
            "degradation_cost_source": self.cost.source,
            "cost": model.summary(),
            "years": self.years,
            "n_evs": self.n_evs,
            "fade_uncontrolled": summarize_fade(self.fade_uncontrolled, self.cost.temp_c, self.eol_fade_pu),
            "fade_v2g": summarize_fade(self.fade_v2g, self.cost.temp_c, self.eol_fade_pu),
            "compare": dict(self.compare),
        }


def calc_discharge_weighted_cost_per_mwh(p_ev_kw: npt.ArrayLike, cost_per_mwh: npt.ArrayLike) -> float | None:
    """The degradation cost a schedule pays per MWh it discharges: ``sum_i c_i E_i / sum_i E_i`` with ``E_i`` the
    energy EV ``i`` discharges (``p_ev_kw`` (n_steps, n_ev), discharge negative) and ``c_i`` its cost
    [currency/MWh]; None when nothing is discharged."""
    p = np.asarray(p_ev_kw, dtype=float)
    e = -np.clip(p, None, 0.0).sum(axis=0)
    c = np.asarray(cost_per_mwh, dtype=float)
    return float((c * e).sum() / e.sum()) if e.sum() > 0 else None


def _schedule_figures(s: ScheduleAnalysis, per_ev_per_mwh: FloatArray) -> dict[str, Any]:
    d = s.summary()
    idx = s.ev_index if s.ev_index is not None else np.arange(per_ev_per_mwh.size)
    paid = calc_discharge_weighted_cost_per_mwh(s.p_ev_kw, per_ev_per_mwh[idx]) if s.p_ev_kw is not None else None
    return {
        "cost_per_horizon": d["disaggregated_cost_per_horizon"],
        "energy_discharged_kwh": d["energy_discharged_kwh"],
        # the one cost the aggregate (virtual-battery) models use: discharge-power-weighted over the EVs
        "degradation_per_mwh_aggregate_batteries": d["degradation_per_mwh"],
        # what the schedule actually solved pays per MWh it discharges, each EV at its own cost
        "degradation_per_mwh_discharge_weighted": paid,
    }


def run_battery_health_analysis(
    scenario: Scenario,
    fleet: Fleet,
    uncontrolled: SocResult,
    cost: DegradationCost,
    schedule: ScheduleAnalysis,
    market: dict[str, Any] | None = None,
) -> BatteryHealthAnalysis:
    """Age the schedule's EVs both ways and price the V2G offer and the schedule with the other cost.

    ``cost`` and ``schedule`` are the study's (``schedule`` solved with ``cost``); ``market`` the study's TOU/RTP
    analysis (its V2G offer). The comparison reruns the schedule (and the market) with the other cost.
    """
    from v2gtwin.fleet import simulate_soc
    from v2gtwin.markets.analysis import run_market_analysis, summarize_market
    from v2gtwin.markets.scheduling import run_schedule_analysis

    sc, spec = scenario, scenario.battery
    kind_used = spec.degradation_cost  # the cost asked for ("model" even when no EV could be probed)
    other_kind = "flat" if kind_used == "model" else "model"
    other = degradation_cost_per_mwh(_with_cost(sc, other_kind), fleet, uncontrolled.soc_pu)
    rerun = run_schedule_analysis(
        fleet,
        uncontrolled,
        sc.markets,
        sc.time,
        sc.seed,
        sc.currency,
        degradation_per_mwh=other.per_ev_per_mwh,
        degradation_source=other.source,
    )
    by_kind = {kind_used: (schedule, cost), other_kind: (rerun, other)}
    compare: dict[str, Any] = {}
    for kind, (s, c) in by_kind.items():
        for k, v in _schedule_figures(s, c.per_ev_per_mwh).items():
            compare[f"schedule_{k}_{kind}"] = v
    if market is not None:
        costs = {kind_used: cost, other_kind: other}
        for kind, c in costs.items():
            m = (
                market
                if c is cost
                else run_market_analysis(fleet, uncontrolled, sc.markets, sc.time, None, c.per_ev_per_mwh)
            )
            ms = summarize_market(m)
            compare[f"v2g_offer_price_per_mwh_{kind}"] = ms["v2g_offer_price_per_mwh"]
            compare[f"v2g_sold_kwh_{kind}"] = ms["v2g_sold_kwh"]
    # The same EVs both ways: the schedule's.
    idx = np.asarray(schedule.ev_index if schedule.ev_index is not None else np.arange(fleet.n))
    sub = fleet.subset(idx)
    chem = [cost.chemistry[i] for i in idx]
    duty_unc = calc_daily_duty_soc(sub, uncontrolled.soc_pu[:, idx])
    p_v2g = schedule.p_ev_kw if schedule.p_ev_kw is not None else uncontrolled.p_kw[:, idx]
    duty_v2g = calc_daily_duty_soc(sub, simulate_soc(sub, p_v2g).soc_pu)
    fade_unc = calc_fade(duty_unc, fleet.dt_h, spec.temp_c, spec.years, chem, capacity_kwh=sub.capacity_kwh)
    fade_v2g = calc_fade(duty_v2g, fleet.dt_h, spec.temp_c, spec.years, chem, capacity_kwh=sub.capacity_kwh)
    return BatteryHealthAnalysis(
        cost, other, fade_unc, fade_v2g, int(idx.size), spec.years, compare, float(spec.eol_fade_pu)
    )


def _with_cost(scenario: Scenario, kind: str) -> Scenario:
    """``scenario`` with ``[battery] degradation_cost = kind``, validated."""
    from v2gtwin.scenario import Scenario as _Scenario

    data = scenario.model_dump()
    data["battery"]["degradation_cost"] = kind
    return _Scenario.model_validate(data)
