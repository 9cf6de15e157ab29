"""Cascading under-frequency disconnection of DERs (EVs among them) against staggered ramp-down, with
under-frequency load shedding (UFLS), in the single-area model of :mod:`v2gtwin.grid.frequency`.

UFLS stages are numbered from 1 (stage 1 is the first, highest-frequency stage), as regional UFLS programmes
under NERC PRC-006 number them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.frequency import SystemParams
from v2gtwin.ieee1547 import read_ieee1547

__all__ = [
    "CASCADE_MODES",
    "CascadeResult",
    "DerPopulation",
    "UflsStage",
    "calc_fleet_ramp_effect",
    "default_population",
    "run_cascade",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]

#: IEEE Std 1547-2018 default under-frequency trip settings (clause 6.5.1, the same for all abnormal operating
#: performance categories): UF1 58.5 Hz / 300 s, UF2 56.5 Hz / 0.16 s, and the legacy DERs' IEEE Std 1547-2003
#: setting (59.3 Hz / 0.16 s), read from the package's one IEEE 1547 table (:mod:`v2gtwin.ieee1547`), which the
#: compliance audit checks settings against.
_TRIP = read_ieee1547().defaults("trip", "III")
IEEE1547_UF1 = (_TRIP["uf1_hz"], _TRIP["uf1_s"])
IEEE1547_UF2 = (_TRIP["uf2_hz"], _TRIP["uf2_s"])
LEGACY_UF = (read_ieee1547().legacy.uf_hz, read_ieee1547().legacy.uf_s)

#: Groups of :func:`default_population` that belong to the aggregator's V2G fleet.
FLEET_GROUPS = ("V2G legacy", "V2G IEEE 1547", "EV charging")


@dataclass(frozen=True)
class DerPopulation:
    """DER units with under-frequency trip settings, one entry per unit (or per group of identical units).

    Attributes
    ----------
    name : group label of each unit.
    p_kw : pre-event output, + generation (PV, discharging V2G), - consumption (charging EVs) [kW].
    f_trip_hz : trip frequency [Hz]; t_trip_s : clearing time (frequency below the setting that long) [s].
    is_fleet : the unit belongs to the aggregator's V2G fleet (default: none does) [-].
    """

    name: tuple[str, ...]
    p_kw: FloatArray
    f_trip_hz: FloatArray
    t_trip_s: FloatArray
    is_fleet: BoolArray | None = None

    def __post_init__(self) -> None:
        n = len(self.name)
        fleet = np.zeros(n, dtype=bool) if self.is_fleet is None else np.asarray(self.is_fleet)
        if fleet.shape != (n,) or fleet.dtype != np.bool_:
            raise DataError(f"DER population.is_fleet: need {n} booleans")
        object.__setattr__(self, "is_fleet", fleet)
        for attr in ("p_kw", "f_trip_hz", "t_trip_s"):
            a = np.asarray(getattr(self, attr), dtype=float)
            if a.shape != (n,) or not np.isfinite(a).all():
                raise DataError(f"DER population.{attr}: need {n} finite values")
            object.__setattr__(self, attr, a)
        if np.any((self.f_trip_hz < 40) | (self.f_trip_hz > 70)):
            raise DataError("DER population.f_trip_hz: allowed range 40 to 70 Hz")
        if np.any(self.t_trip_s < 0):
            raise DataError("DER population.t_trip_s: must be >= 0 s")


def default_population(
    pv_legacy_kw: float = 8000.0,
    pv_1547_kw: float = 8000.0,
    v2g_discharge_kw: float = 3000.0,
    ev_charging_kw: float = 4000.0,
    v2g_legacy_share: float = 0.5,
    units_per_group: int = 50,
) -> DerPopulation:
    """An illustrative DER mix: legacy PV (59.3 Hz / 0.16 s), IEEE 1547-2018 PV (UF1 58.5 Hz / 300 s), V2G
    EVs discharging (a share on legacy settings, the rest on 1547 defaults) and EVs charging (legacy-style
    chargers that drop off at 59.3 Hz). Each group is split into ``units_per_group`` equal units; the V2G
    and EV-charging groups (:data:`FLEET_GROUPS`) are marked ``is_fleet``."""
    groups = [
        ("PV legacy", pv_legacy_kw, *LEGACY_UF),
        ("PV IEEE 1547", pv_1547_kw, *IEEE1547_UF1),
        ("V2G legacy", v2g_discharge_kw * v2g_legacy_share, *LEGACY_UF),
        ("V2G IEEE 1547", v2g_discharge_kw * (1 - v2g_legacy_share), *IEEE1547_UF1),
        ("EV charging", -ev_charging_kw, *LEGACY_UF),
    ]
    names, p, f, t = [], [], [], []
    for name, total, ft, tt in groups:
        if total == 0:
            continue
        names += [name] * units_per_group
        p += [total / units_per_group] * units_per_group
        f += [ft] * units_per_group
        t += [tt] * units_per_group
    return DerPopulation(tuple(names), np.array(p), np.array(f), np.array(t), np.isin(np.array(names), FLEET_GROUPS))


@dataclass(frozen=True)
class UflsStage:
    """One under-frequency load-shedding stage: shed ``share`` [-] of the load after ``delay_s`` [s] below
    ``f_hz`` [Hz]."""

    f_hz: float
    share: float
    delay_s: float = 0.1


#: An illustrative three-stage scheme (regional schemes under NERC PRC-006 differ; set your own).
DEFAULT_UFLS: tuple[UflsStage, ...] = (UflsStage(59.0, 0.06), UflsStage(58.7, 0.06), UflsStage(58.4, 0.08))


@dataclass(frozen=True)
class _ModeRule:
    """How tripping units leave in one cascade mode: which units ramp (the rest drop at once), and whether
    the legacy clearing times are randomised."""

    ramps: Callable[[DerPopulation], BoolArray]
    random_delay: bool = False


#: Disconnection modes: 'simultaneous' (every tripping unit drops at once), 'fleet_ramp' (the fleet's
#: generating units ramp down, every other unit drops at once), 'ramp' (every generating unit ramps down) and
#: 'random_delay' (units drop at once after randomised legacy clearing times). Loads (``p_kw < 0``, charging
#: EVs) drop at once in every mode: slowing a load's drop would only deepen the nadir.
CASCADE_MODES: dict[str, _ModeRule] = {
    "simultaneous": _ModeRule(lambda pop: np.zeros(pop.p_kw.size, dtype=bool)),
    "fleet_ramp": _ModeRule(lambda pop: np.asarray(pop.is_fleet) & (pop.p_kw > 0)),
    "ramp": _ModeRule(lambda pop: pop.p_kw > 0),
    "random_delay": _ModeRule(lambda pop: np.zeros(pop.p_kw.size, dtype=bool), random_delay=True),
}


@dataclass(frozen=True)
class CascadeResult:
    """One cascade simulation.

    Attributes
    ----------
    mode : a key of :data:`CASCADE_MODES`.
    t_s, f_hz : time [s] and frequency [Hz].
    p_der_kw : total DER output [kW, + generation]; p_shed_kw : load shed so far [kW].
    nadir_hz, nadir_t_s : lowest frequency (absolute) [Hz] and when [s].
    ufls_stages : numbers of the UFLS stages that acted, stage 1 the first (highest frequency) [-].
    load_shed_kw : total shed [kW].
    der_lost_kw : DER generation lost (net of charging load dropped) by the end [kW].
    ramped_kw : pre-event output of the tripped units that ramped down instead of dropping at once [kW].
    tripped_by_group : {group: kW of units tripped}.
    """

    mode: str
    t_s: FloatArray
    f_hz: FloatArray
    p_der_kw: FloatArray
    p_shed_kw: FloatArray
    nadir_hz: float
    nadir_t_s: float
    ufls_stages: tuple[int, ...]
    load_shed_kw: float
    der_lost_kw: float
    ramped_kw: float = 0.0
    tripped_by_group: dict[str, float] = field(default_factory=dict)


def run_cascade(
    system: SystemParams,
    dp_loss_kw: float,
    population: DerPopulation,
    mode: str = "simultaneous",
    *,
    ufls: tuple[UflsStage, ...] = DEFAULT_UFLS,
    load_kw: float | None = None,
    ramp_pu_per_s: float = 0.1,
    random_delay_s: tuple[float, float] = (0.16, 2.0),
    rng: np.random.Generator | None = None,
    t_end_s: float = 30.0,
    dt_s: float = 0.01,
) -> CascadeResult:
    """Simulate a generation loss of ``dp_loss_kw`` [kW] at t = 0 with a DER population and UFLS.

    DER units whose frequency stays below their trip setting for their clearing time leave. How they leave depends
    on ``mode`` (:data:`CASCADE_MODES`): at once ('simultaneous'); the fleet's generating units
    (``population.is_fleet`` and ``p_kw > 0``) ramping their output to zero at ``ramp_pu_per_s`` [1/s] of it while
    every other unit drops at once ('fleet_ramp'); every generating unit ramping ('ramp': staggered ramp-down of all
    DERs; loads drop at once in every mode); or at once but after a clearing time drawn uniformly from
    ``random_delay_s`` [s] for the units on the legacy 0.16 s setting ('random_delay'). A clearing timer resets when
    the frequency recovers above the setting. UFLS stages shed their share of ``load_kw`` (default: the system
    rating) after their delay below their frequency; each acts once.

    Notes
    -----
    The swing equation, governor and turbine of :func:`~v2gtwin.grid.frequency.run_dynamics` (Kundur 1994,
    ch. 11), with the DER output change and the shed load entering the power balance:
    ``(2 H S / f_nom) d(df)/dt = dP_m - dP_loss + dP_DER + P_shed - D_f df``. RK4 for the continuous states;
    trips, ramps and sheds are decided at the start of each step from the frequency there and hold over the
    step (explicit events at ``dt_s`` resolution: a unit that trips at the start of step k is at 0, or when
    ramping at ``1 - ramp dt`` of its output, during step k, then ``1 - 2 ramp dt``, ...).
    """
    if mode not in CASCADE_MODES:
        raise DataError(f"mode: must be one of {', '.join(CASCADE_MODES)}; got {mode!r}")
    rule = CASCADE_MODES[mode]
    if not (0 < dt_s <= 0.1 and 0 < t_end_s <= 600):
        raise DataError("cascade: need 0 < dt_s <= 0.1 s and 0 < t_end_s <= 600 s")
    if not ramp_pu_per_s > 0:
        raise DataError(f"ramp_pu_per_s: must be > 0, got {ramp_pu_per_s}")
    for k, st in enumerate(ufls):
        if not (40 <= st.f_hz <= 70 and 0 <= st.share <= 1 and st.delay_s >= 0):
            raise DataError(f"ufls[{k}]: need 40 <= f_hz <= 70, 0 <= share <= 1, delay_s >= 0")
    load = system.s_base_kw if load_kw is None else float(load_kw)
    n_steps = round(t_end_s / dt_s)
    m = 2.0 * system.h_s * system.s_base_kw / system.f_nom_hz
    d, kg, tg, tt = system.d_load_kw_per_hz, system.k_gen_kw_per_hz, system.t_gov_s, system.t_turb_s
    p0 = population.p_kw
    f_trip = population.f_trip_hz
    t_trip = population.t_trip_s.copy()
    ramps = rule.ramps(population)
    if rule.random_delay:
        r = rng if rng is not None else np.random.default_rng(0)
        legacy = t_trip <= 0.2
        t_trip[legacy] = r.uniform(*random_delay_s, int(legacy.sum()))
    timer = np.zeros(p0.size)
    scale = np.ones(p0.size)  # output as a share of pre-event output
    tripping = np.zeros(p0.size, dtype=bool)
    stage_timer = np.zeros(len(ufls))
    stage_done = np.zeros(len(ufls), dtype=bool)
    shed = 0.0
    df = pv = pm = 0.0
    t_out = np.arange(n_steps + 1) * dt_s
    f_out = np.empty(n_steps + 1)
    der_out = np.empty(n_steps + 1)
    shed_out = np.empty(n_steps + 1)

    def rhs(df: float, pv: float, pm: float, extra: float) -> tuple[float, float, float]:
        return (pm - dp_loss_kw + extra - d * df) / m, (-pv - kg * df) / tg, (pv - pm) / tt

    for s in range(n_steps + 1):
        f = system.f_nom_hz + df
        f_out[s], der_out[s], shed_out[s] = f, float((scale * p0).sum()), shed
        if s == n_steps:
            break
        # Events: DER clearing timers, trips and ramps.
        below = f < f_trip
        timer = np.where(below & ~tripping, timer + dt_s, np.where(tripping, timer, 0.0))
        newly = ~tripping & (timer >= t_trip - 1e-12) & below
        tripping |= newly
        ramped = np.clip(scale - ramp_pu_per_s * dt_s, 0.0, 1.0)
        scale = np.where(tripping, np.where(ramps, ramped, 0.0), scale)
        for k, st in enumerate(ufls):
            if stage_done[k]:
                continue
            stage_timer[k] = stage_timer[k] + dt_s if f < st.f_hz else 0.0
            if stage_timer[k] >= st.delay_s - 1e-12 and f < st.f_hz:
                stage_done[k] = True
                shed += st.share * load
        d_der = float(((scale - 1.0) * p0).sum())  # change of DER output over this step (trips lower it)
        extra = d_der + shed
        k1 = rhs(df, pv, pm, extra)
        k2 = rhs(df + 0.5 * dt_s * k1[0], pv + 0.5 * dt_s * k1[1], pm + 0.5 * dt_s * k1[2], extra)
        k3 = rhs(df + 0.5 * dt_s * k2[0], pv + 0.5 * dt_s * k2[1], pm + 0.5 * dt_s * k2[2], extra)
        k4 = rhs(df + dt_s * k3[0], pv + dt_s * k3[1], pm + dt_s * k3[2], extra)
        df += dt_s / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        pv += dt_s / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        pm += dt_s / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
    i = int(np.argmin(f_out))
    names = np.asarray(population.name)
    tripped = {g: float(p0[(names == g) & tripping].sum()) for g in dict.fromkeys(population.name)}
    return CascadeResult(
        mode=mode,
        t_s=t_out,
        f_hz=f_out,
        p_der_kw=der_out,
        p_shed_kw=shed_out,
        nadir_hz=float(f_out[i]),
        nadir_t_s=float(t_out[i]),
        ufls_stages=tuple(int(k) + 1 for k in np.flatnonzero(stage_done)),
        load_shed_kw=shed,
        der_lost_kw=float(p0.sum() - (scale * p0).sum()),
        ramped_kw=float(p0[tripping & ramps].sum()),
        tripped_by_group=tripped,
    )


def calc_fleet_ramp_effect(results: dict[str, CascadeResult], min_gain_hz: float = 1e-6) -> dict[str, Any]:
    """The fleet's own share of what staggered ramp-down does to the nadir.

    From the 'simultaneous', 'fleet_ramp' and 'ramp' runs of the same event: the nadir gain when only the
    fleet's generating units ramp (every other DER still trips at once),
    ``gain_fleet = nadir_fleet_ramp - nadir_simultaneous`` [Hz], the gain when every tripping DER ramps,
    ``gain_all = nadir_ramp - nadir_simultaneous`` [Hz], and the fleet's share ``gain_fleet / gain_all`` [-]
    (``None`` when ``|gain_all| < min_gain_hz``: ramping changes nothing and a share is undefined).
    """
    missing = [m for m in ("simultaneous", "fleet_ramp", "ramp") if m not in results]
    if missing:
        raise DataError(f"cascade results: need the modes {', '.join(missing)} for the fleet's ramp effect")
    sim, fleet, every = results["simultaneous"], results["fleet_ramp"], results["ramp"]
    gain_fleet = fleet.nadir_hz - sim.nadir_hz
    gain_all = every.nadir_hz - sim.nadir_hz
    return {
        "fleet_ramped_kw": fleet.ramped_kw,
        "all_ramped_kw": every.ramped_kw,
        "nadir_gain_fleet_ramp_hz": gain_fleet,
        "nadir_gain_all_ramp_hz": gain_all,
        "fleet_share_of_gain": gain_fleet / gain_all if abs(gain_all) >= min_gain_hz else None,
    }
