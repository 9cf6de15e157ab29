"""Time-of-use against real-time pricing with a V2G aggregator in the supply stack: welfare accounting.

A day of ``n`` periods. Demand in each period is price-elastic (linear ``p = a - b q`` or constant elasticity
``q = A p^eps``); supply is a merit order of generators (capacity, marginal cost) plus the V2G aggregator
discharging up to ``v2g_p_max_kw`` per period at its degradation cost, within an energy budget for the day.
The budget couples the periods, so the day is cleared as one optimisation (cvxpy + Clarabel).

* RTP: maximise total welfare; each period's price is the marginal value of energy (the dual of its
  balance), i.e. the marginal cost of the last unit.
* TOU: consumers pay a fixed price per block (the quantity-weighted RTP price of the block by default);
  demand follows its curve at that price and supply meets it at least cost; generators and the aggregator are
  paid the period's marginal cost, and the retailer keeps the difference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError

__all__ = ["Demand", "MarketResult", "SupplyStack", "run_market_comparison", "run_rtp", "run_tou"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Demand:
    """Price-elastic demand per period.

    Attributes
    ----------
    kind : 'linear' (``p = a - b q``) or 'constant_elasticity' (``q = q_ref (p / p_ref)^eps``, eps < 0).
    a_per_mwh, b_per_mwh_per_kw : linear intercept [currency/MWh] and slope [currency/MWh per kW], per period.
    scale_kw, elasticity : constant elasticity: demand q_ref at the reference price, per period [kW], and eps.
    p_ref_per_mwh : the reference price [currency/MWh].
    q_min_share : consumption floor in the constant-elasticity welfare integral, share of q_ref [-].
    """

    kind: Literal["linear", "constant_elasticity"]
    a_per_mwh: FloatArray = field(default_factory=lambda: np.zeros(0))
    b_per_mwh_per_kw: FloatArray = field(default_factory=lambda: np.zeros(0))
    scale_kw: FloatArray = field(default_factory=lambda: np.zeros(0))
    elasticity: float = -0.2
    p_ref_per_mwh: float = 50.0
    q_min_share: float = 0.05

    @property
    def n(self) -> int:
        """Number of periods [-]."""
        return int(len(self.a_per_mwh) if self.kind == "linear" else len(self.scale_kw))

    def __post_init__(self) -> None:
        if self.kind == "linear":
            a, b = np.asarray(self.a_per_mwh, float), np.asarray(self.b_per_mwh_per_kw, float)
            if a.shape != b.shape or a.ndim != 1 or np.any(b <= 0) or np.any(a <= 0):
                raise DataError("linear demand: a_per_mwh and b_per_mwh_per_kw need one positive value per period")
        elif self.kind == "constant_elasticity":
            if not self.elasticity < 0 or np.any(np.asarray(self.scale_kw) <= 0):
                raise DataError("constant-elasticity demand: elasticity must be < 0 and scale_kw > 0")
        else:
            raise DataError(f"demand kind: linear or constant_elasticity, got {self.kind!r}")

    def quantity_kw(self, price_per_mwh: npt.ArrayLike) -> FloatArray:
        """Demand [kW] at prices [currency/MWh] (clipped at 0)."""
        p = np.asarray(price_per_mwh, dtype=float)
        if self.kind == "linear":
            return np.asarray(np.clip((self.a_per_mwh - p) / self.b_per_mwh_per_kw, 0.0, None))
        if np.any(p <= 0):
            raise DataError("constant-elasticity demand: defined for prices > 0 only (got a price <= 0 per MWh)")
        return np.asarray(self.scale_kw * (p / self.p_ref_per_mwh) ** self.elasticity)

    def price_per_mwh(self, q_kw: npt.ArrayLike) -> FloatArray:
        """Inverse demand [currency/MWh] at quantities [kW]."""
        q = np.asarray(q_kw, dtype=float)
        if self.kind == "linear":
            return np.asarray(self.a_per_mwh - self.b_per_mwh_per_kw * q)
        return np.asarray(self.p_ref_per_mwh * (np.maximum(q, 1e-12) / self.scale_kw) ** (1.0 / self.elasticity))

    def utility(self, q_kw: npt.ArrayLike, dt_h: float) -> FloatArray:
        """Gross consumer benefit per period, the area under inverse demand [currency] (constant elasticity:
        from ``q_min_share * q_ref``)."""
        q = np.asarray(q_kw, dtype=float)
        if self.kind == "linear":
            return np.asarray((self.a_per_mwh * q - 0.5 * self.b_per_mwh_per_kw * q * q) * dt_h / 1000.0)
        e = 1.0 + 1.0 / self.elasticity
        y = np.maximum(q, 1e-12) / self.scale_kw
        return np.asarray(self.p_ref_per_mwh * self.scale_kw / e * (y**e - self.q_min_share**e) * dt_h / 1000.0)


@dataclass(frozen=True)
class SupplyStack:
    """Generators in merit order and the V2G aggregator.

    Attributes
    ----------
    capacity_kw : each generator's capacity [kW]; cost_per_mwh its marginal cost [currency/MWh].
    v2g_p_max_kw : the aggregator's discharge limit per period [kW] (scalar or per period).
    v2g_energy_kwh : energy it can discharge over the day [kWh]. v2g_cost_per_mwh : degradation cost.
    """

    capacity_kw: FloatArray
    cost_per_mwh: FloatArray
    v2g_p_max_kw: float | FloatArray = 0.0
    v2g_energy_kwh: float = 0.0
    v2g_cost_per_mwh: float = 0.0

    def __post_init__(self) -> None:
        c, k = np.asarray(self.capacity_kw, float), np.asarray(self.cost_per_mwh, float)
        if c.shape != k.shape or c.ndim != 1 or np.any(c < 0):
            raise DataError("supply stack: one non-negative capacity_kw per cost_per_mwh")
        if np.any(np.asarray(self.v2g_p_max_kw) < 0) or self.v2g_energy_kwh < 0:
            raise DataError("supply stack: v2g_p_max_kw and v2g_energy_kwh must be >= 0")


@dataclass(frozen=True)
class MarketResult:
    """A cleared day.

    Attributes
    ----------
    scheme : 'rtp' or 'tou'. price_per_mwh : consumer price per period. system_price_per_mwh : marginal
    cost per period. q_kw : consumption. gen_kw : generator output (periods x generators). v2g_kw : aggregator
    discharge. consumer_surplus, producer_surplus, v2g_surplus, retailer_surplus, welfare : over the periods
    cleared (a day for 24 hourly periods) [currency]. Prices may be negative (a negative dual stays negative).
    """

    scheme: str
    price_per_mwh: FloatArray
    system_price_per_mwh: FloatArray
    q_kw: FloatArray
    gen_kw: FloatArray
    v2g_kw: FloatArray
    consumer_surplus: float
    producer_surplus: float
    v2g_surplus: float
    retailer_surplus: float
    welfare: float


def _dispatch(
    supply: SupplyStack, n: int, dt_h: float, demand: Demand | None, fixed_q: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Solve the day: maximise welfare (demand given) or minimise cost for fixed consumption.

    Returns (q, gen, v2g, marginal price per period [currency/MWh])."""
    import cvxpy as cp

    cap = np.asarray(supply.capacity_kw, float)
    cost = np.asarray(supply.cost_per_mwh, float)
    g = cp.Variable((n, cap.size), nonneg=True)
    v = cp.Variable(n, nonneg=True)
    vmax = np.broadcast_to(np.asarray(supply.v2g_p_max_kw, float), (n,))
    cons = [g <= np.broadcast_to(cap, (n, cap.size)), v <= vmax, cp.sum(v) * dt_h <= supply.v2g_energy_kwh]
    gen_cost = cp.sum(g @ cost) * dt_h / 1000.0 + supply.v2g_cost_per_mwh * cp.sum(v) * dt_h / 1000.0
    if fixed_q is not None:
        balance = cp.sum(g, axis=1) + v == fixed_q
        prob = cp.Problem(cp.Minimize(gen_cost), [*cons, balance])
    else:
        assert demand is not None
        q = cp.Variable(n, nonneg=True)
        if demand.kind == "linear":
            util = cp.sum(cp.multiply(demand.a_per_mwh, q) - 0.5 * cp.multiply(demand.b_per_mwh_per_kw, cp.square(q)))
        else:
            # In y = q / q_ref the utility p_ref q_ref / e (y^e - y_min^e) is well scaled (e = 1 + 1/eps < 0).
            e = 1.0 + 1.0 / demand.elasticity
            qref = np.asarray(demand.scale_kw, float)
            y = cp.multiply(q, 1.0 / qref)
            cons.append(y >= demand.q_min_share)
            util = cp.sum(cp.multiply(demand.p_ref_per_mwh * qref / e, cp.power(y, e, approx=False)))
        balance = cp.sum(g, axis=1) + v == q
        prob = cp.Problem(cp.Maximize(util * dt_h / 1000.0 - gen_cost), [*cons, balance])
    try:
        prob.solve(solver="CLARABEL")
    except cp.error.SolverError as exc:  # solver failure is reported as infeasible with its reason
        raise InfeasibleError(f"market clearing failed: {exc}") from None
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise InfeasibleError(f"market clearing is {prob.status}: demand exceeds the supply stack's capacity")
    # The balance reads supply == demand; cvxpy's dual of it is minus the marginal value of demand (checked
    # against hand-solved cases with positive and negative prices in the tests). A negative price stays negative.
    price = -np.asarray(balance.dual_value, dtype=float) * 1000.0 / dt_h
    qv = np.asarray(fixed_q if fixed_q is not None else q.value, dtype=float)
    return qv, np.asarray(g.value, float), np.asarray(v.value, float), price


def _surplus(
    scheme: str,
    demand: Demand,
    supply: SupplyStack,
    dt_h: float,
    consumer_price: FloatArray,
    q: FloatArray,
    g: FloatArray,
    v: FloatArray,
    sys_price: FloatArray,
) -> MarketResult:
    cost = np.asarray(supply.cost_per_mwh, float)
    e = dt_h / 1000.0  # kW x h -> MWh
    cs = float((demand.utility(q, dt_h) - consumer_price * q * e).sum())
    ps = float(((sys_price[:, None] - cost[None, :]) * g).sum() * e)
    vs = float(((sys_price - supply.v2g_cost_per_mwh) * v).sum() * e)
    rs = float(((consumer_price - sys_price) * q).sum() * e)
    return MarketResult(scheme, consumer_price, sys_price, q, g, v, cs, ps, vs, rs, cs + ps + vs + rs)


def run_rtp(demand: Demand, supply: SupplyStack, dt_h: float = 1.0) -> MarketResult:
    """Real-time pricing: the welfare-maximising day; consumers pay the marginal cost of each period."""
    q, g, v, price = _dispatch(supply, demand.n, dt_h, demand, None)
    return _surplus("rtp", demand, supply, dt_h, price, q, g, v, price)


def run_tou(
    demand: Demand,
    supply: SupplyStack,
    blocks: npt.ArrayLike,
    dt_h: float = 1.0,
    block_price_per_mwh: npt.ArrayLike | None = None,
    reference: MarketResult | None = None,
) -> MarketResult:
    """Time-of-use pricing: one price per block (``blocks`` gives each period's block index).

    Block prices default to the quantity-weighted RTP price of the block (``reference``, computed if not
    given). Consumption follows the demand curve at the block price; supply meets it at least cost.
    """
    b = np.asarray(blocks, dtype=int)
    if b.shape != (demand.n,) or b.min() < 0:
        raise DataError(f"blocks: need one non-negative block index per period ({demand.n})")
    if block_price_per_mwh is None:
        ref = reference if reference is not None else run_rtp(demand, supply, dt_h)
        prices = np.array(
            [
                np.average(ref.price_per_mwh[b == k], weights=np.maximum(ref.q_kw[b == k], 1e-12))
                if np.any(b == k)
                else 0.0
                for k in range(b.max() + 1)
            ]
        )
    else:
        prices = np.asarray(block_price_per_mwh, dtype=float)
        if prices.shape != (b.max() + 1,):
            raise DataError(f"block_price_per_mwh: need {b.max() + 1} prices, got {prices.shape}")
    consumer_price = prices[b]
    q = demand.quantity_kw(consumer_price)
    _, g, v, sys_price = _dispatch(supply, demand.n, dt_h, None, q)
    return _surplus("tou", demand, supply, dt_h, consumer_price, q, g, v, sys_price)


def run_market_comparison(
    demand: Demand, supply: SupplyStack, blocks: npt.ArrayLike, dt_h: float = 1.0
) -> dict[str, Any]:
    """RTP and TOU on the same day; the deadweight loss of TOU is ``welfare_RTP - welfare_TOU`` (>= 0)."""
    rtp = run_rtp(demand, supply, dt_h)
    tou = run_tou(demand, supply, blocks, dt_h, reference=rtp)
    return {"rtp": rtp, "tou": tou, "deadweight_loss": rtp.welfare - tou.welfare}
