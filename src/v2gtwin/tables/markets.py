"""The markets' tables: the TOU vs RTP day per market hour, the day-ahead schedule per step, the robust schedule
per radius, the regulation bid's profit curve and every headline figure (long)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v2gtwin.tables._util import step_frame, summary_frame

if TYPE_CHECKING:
    from v2gtwin.scenario import TimeGrid
    from v2gtwin.study_result import MarketsSection

__all__ = ["IMPORT_CAP_TOL_KW", "markets_frames"]

#: A scheduled step counts as above the import cap when it exceeds it by more than this [kW] (solver tolerance).
IMPORT_CAP_TOL_KW = 1e-6


def markets_frames(section: MarketsSection, time: TimeGrid, currency: str) -> dict[str, pd.DataFrame]:
    """``market_hours`` (the market's 24 clock hours, indexed by ``clock`` "HH:00": consumer price and
    consumption under RTP and TOU), ``schedule_steps`` (per step: price, the per-EV schedule's total, the
    aggregate and disaggregated plans, the import cap and whether a step exceeds it), ``robust`` (one row per
    radius), ``bid_curve`` (expected
    profit of each regulation bid) and ``markets`` (every headline figure, long: ``part``, ``quantity``,
    ``value``, ``text``). Money columns are in ``currency``, a column of every table that holds money."""
    m = section.market
    # The market's day is the 24 clock hours from midnight: indexed by clock time "HH:00" (``clock``).
    n_hours = len(m["rtp"].price_per_mwh)
    hours = pd.DataFrame(index=pd.Index([f"{h:02d}:00" for h in range(n_hours)], name="clock"))
    for scheme in ("rtp", "tou"):
        r = m[scheme]
        hours[f"price_{scheme}_per_mwh"] = r.price_per_mwh
        hours[f"system_price_{scheme}_per_mwh"] = r.system_price_per_mwh
        hours[f"q_{scheme}_kw"] = r.q_kw
        hours[f"v2g_{scheme}_kw"] = r.v2g_kw
    hours["currency"] = currency

    sc = section.schedule
    p_schedule = np.asarray(sc.individual.p_total_kw, dtype=float)
    agg = sc.aggregate
    disagg = np.asarray(sc.disaggregated_kw, dtype=float)
    steps = step_frame(
        time,
        {
            "price_per_mwh": sc.price_per_mwh,
            "p_schedule_kw": p_schedule,
            "p_aggregate_kw": np.asarray(agg.p_charge_kw) - np.asarray(agg.p_discharge_kw),
            "e_aggregate_kwh": np.asarray(agg.e_kwh)[1:],
            "p_disaggregated_kw": disagg.sum(axis=1) if disagg.ndim == 2 else disagg,
            "p_inner_kw": None if sc.inner is None else sc.inner.p_total_kw,
            "import_cap_kw": np.full(time.n_steps, sc.import_cap_kw),
            "above_import_cap": p_schedule > sc.import_cap_kw + IMPORT_CAP_TOL_KW,
        },
    )
    steps["currency"] = currency

    robust = pd.DataFrame(list(section.robust.summary()["radii"].values()))
    robust["currency"] = currency

    b = section.bid
    bid = pd.DataFrame(
        {
            "bid_kw": b.bids_kw,
            "profit_exact_per_h": b.profit_exact_per_h,
            "profit_mc_per_h": b.profit_mc_per_h,
            "currency": currency,
        }
    )
    summary = section.summary()
    long = pd.concat([summary_frame(v).assign(part=k) for k, v in summary.items()], ignore_index=True)[
        ["part", "quantity", "value", "text"]
    ]
    return {"market_hours": hours, "schedule_steps": steps, "robust": robust, "bid_curve": bid, "markets": long}
