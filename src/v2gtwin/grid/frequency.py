"""Primary frequency response of an EV fleet: steady-state droop and single-area dynamics.

Sign conventions: frequency deviation ``df_hz = f - f_nom``; power of the response is counted as an
*injection* into the grid (a charging EV that reduces its charging by 3 kW responds with +3 kW); a load
step ``dp_load_kw > 0`` is a loss of generation / increase of load.

Each EV has an IEEE 1547-2018 frequency-droop (frequency-watt) characteristic (clause 6.5.2.7, Table 24
defaults: deadband 0.036 Hz, droop 5 % in both directions): outside the deadband, its response is
``K_i (|df| - db_i)`` with gain ``K_i = P_rated,i / (f_nom k_i)`` [kW/Hz], limited by its headroom: up to
``p0 + p_discharge_max`` upward (stop charging, then discharge) and ``p_charge_max - p0`` downward, and not
at all in a direction its SoC forbids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from v2gtwin.errors import DataError

__all__ = [
    "DroopFleet",
    "DynamicsResult",
    "SteadyStateResult",
    "SystemParams",
    "calc_droop_response_kw",
    "run_dynamics",
    "run_steady_state",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class DroopFleet:
    """The EVs taking part in primary response, one array entry per EV.

    Attributes
    ----------
    p_rated_kw : power rating the droop is expressed in (charger rating) [kW].
    headroom_up_kw : largest increase of injection (p0 + discharge limit; 0 when SoC forbids) [kW].
    headroom_down_kw : largest decrease of injection (charge limit - p0; 0 when full) [kW].
    deadband_hz : droop deadband [Hz].
    droop_pu : droop k: per-unit frequency change for a 1 pu power change [-].
    t_response_s : time constant of the inverter's first-order response [s].
    """

    p_rated_kw: FloatArray
    headroom_up_kw: FloatArray
    headroom_down_kw: FloatArray
    deadband_hz: FloatArray
    droop_pu: FloatArray
    t_response_s: FloatArray

    def __post_init__(self) -> None:
        n = len(self.p_rated_kw)
        for name in ("p_rated_kw", "headroom_up_kw", "headroom_down_kw", "deadband_hz", "droop_pu", "t_response_s"):
            arr = np.ascontiguousarray(np.broadcast_to(np.asarray(getattr(self, name), dtype=float), (n,)))
            if not np.isfinite(arr).all():
                raise DataError(f"droop fleet.{name}: values must be finite")
            object.__setattr__(self, name, arr)
        checks = (
            ("p_rated_kw", self.p_rated_kw < 0, ">= 0"),
            ("headroom_up_kw", self.headroom_up_kw < 0, ">= 0"),
            ("headroom_down_kw", self.headroom_down_kw < 0, ">= 0"),
            ("deadband_hz", (self.deadband_hz < 0) | (self.deadband_hz > 1.0), "0 to 1 Hz"),
            ("droop_pu", (self.droop_pu <= 0) | (self.droop_pu > 1.0), "> 0 and <= 1"),
            ("t_response_s", (self.t_response_s <= 0) | (self.t_response_s > 600), "> 0 and <= 600 s"),
        )
        for name, bad, rng in checks:
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"droop fleet.{name}[{i}] = {getattr(self, name)[i]}: allowed range {rng}")

    @property
    def n(self) -> int:
        """Number of EVs [-]."""
        return int(self.p_rated_kw.shape[0])

    def gain_kw_per_hz(self, f_nom_hz: float) -> FloatArray:
        """Droop gain of each EV, ``P_rated / (f_nom k)`` [kW/Hz]."""
        return np.asarray(self.p_rated_kw / (f_nom_hz * self.droop_pu))

    @classmethod
    def ieee1547_default(
        cls,
        p_rated_kw: npt.ArrayLike,
        headroom_up_kw: npt.ArrayLike,
        headroom_down_kw: npt.ArrayLike,
        t_response_s: float | npt.ArrayLike = 1.0,
    ) -> DroopFleet:
        """EVs with the IEEE 1547-2018 default frequency droop (deadband 0.036 Hz, droop 5 %)."""
        p = np.asarray(p_rated_kw, dtype=float)
        return cls(
            p,
            np.asarray(headroom_up_kw, float),
            np.asarray(headroom_down_kw, float),
            np.full(p.shape, 0.036),
            np.full(p.shape, 0.05),
            np.broadcast_to(t_response_s, p.shape),
        )


def calc_droop_response_kw(fleet: DroopFleet, df_hz: npt.ArrayLike, f_nom_hz: float = 60.0) -> FloatArray:
    """Steady-state response of each EV [kW, + injection] to frequency deviations ``df_hz`` [Hz].

    ``df_hz`` of shape (m,) gives an (m, N) array; a scalar gives (N,).
    """
    df = np.asarray(df_hz, dtype=float)
    k = fleet.gain_kw_per_hz(f_nom_hz)
    under = np.clip(-df[..., None] - fleet.deadband_hz, 0.0, None) * k
    over = np.clip(df[..., None] - fleet.deadband_hz, 0.0, None) * k
    return np.asarray(np.minimum(under, fleet.headroom_up_kw) - np.minimum(over, fleet.headroom_down_kw))


@dataclass(frozen=True)
class SteadyStateResult:
    """Settled frequency after a load step.

    Attributes
    ----------
    df_hz : settled frequency deviation [Hz].
    response_kw : response of each EV [kW, + injection].
    saturated : EVs at their headroom limit [-].
    k_fleet_kw_per_hz : unsaturated droop gain of the fleet, sum of K_i [kW/Hz].
    fleet_response_kw : total EV response [kW].
    """

    df_hz: float
    response_kw: FloatArray
    saturated: npt.NDArray[np.bool_]
    k_fleet_kw_per_hz: float
    fleet_response_kw: float


def run_steady_state(
    fleet: DroopFleet,
    dp_load_kw: float,
    d_load_kw_per_hz: float,
    k_gen_kw_per_hz: float = 0.0,
    f_nom_hz: float = 60.0,
) -> SteadyStateResult:
    """Settled frequency deviation of a system after a load step, with the fleet's droop.

    Parameters
    ----------
    fleet : the droop fleet.
    dp_load_kw : load increase (or generation lost) [kW].
    d_load_kw_per_hz : load damping D_f: load change per Hz [kW/Hz] (>= 0).
    k_gen_kw_per_hz : governor droop gain of conventional generation, ``P_gen / (f_nom R)`` [kW/Hz].
    f_nom_hz : nominal frequency [Hz].

    Notes
    -----
    Without deadband or saturation, ``df_ss = -dP_L / (D_f + K_gen + K_fleet)`` (Kundur, Power System
    Stability and Control, 1994, eq. 11.16 generalised to several droop sources). With per-EV deadbands and
    headroom limits the fleet response is piecewise linear and monotone in ``df``; the balance
    ``D_f (-df) + K_gen (-df) + sum_i R_i(df) = dP_L`` is solved exactly by locating the segment between
    consecutive breakpoints (each EV's deadband edge and saturation point) and solving it linearly.
    """
    if d_load_kw_per_hz < 0 or k_gen_kw_per_hz < 0:
        raise DataError("d_load_kw_per_hz and k_gen_kw_per_hz: must be >= 0")
    if f_nom_hz <= 0:
        raise DataError(f"f_nom_hz: must be > 0, got {f_nom_hz}")
    k = fleet.gain_kw_per_hz(f_nom_hz)
    sign = 1.0 if dp_load_kw >= 0 else -1.0  # under-frequency for a load increase
    target = abs(dp_load_kw)
    head = fleet.headroom_up_kw if sign > 0 else fleet.headroom_down_kw
    lin = d_load_kw_per_hz + k_gen_kw_per_hz

    # x = |df| >= 0; balance g(x) = lin x + sum min(K_i max(x - db_i, 0), head_i) = target; g is increasing.
    with np.errstate(divide="ignore", invalid="ignore"):
        sat_x = np.where(k > 0, fleet.deadband_hz + head / k, np.inf)
    breaks = np.unique(np.concatenate([[0.0], fleet.deadband_hz, sat_x[np.isfinite(sat_x)]]))

    def g(x: float) -> float:
        return float(lin * x + np.minimum(np.clip(x - fleet.deadband_hz, 0.0, None) * k, head).sum())

    if target == 0:
        x = 0.0
    else:
        vals = np.array([g(b) for b in breaks])
        idx = int(np.searchsorted(vals, target))
        if idx >= breaks.size:
            # Beyond the last breakpoint only the linear part grows.
            if lin <= 0:
                raise DataError("no steady state: the step exceeds every EV's headroom and the system has no damping")
            x = breaks[-1] + (target - vals[-1]) / lin
        else:
            x0, x1 = breaks[max(idx - 1, 0)], breaks[idx]
            g0, g1 = vals[max(idx - 1, 0)], vals[idx]
            x = x1 if g1 == g0 else x0 + (target - g0) * (x1 - x0) / (g1 - g0)
    df = -sign * x
    resp = calc_droop_response_kw(fleet, df, f_nom_hz)
    saturated = np.isclose(np.abs(resp), head, rtol=0, atol=1e-9) & (head > 0) & (np.abs(resp) > 0)
    return SteadyStateResult(
        df_hz=float(df),
        response_kw=resp,
        saturated=saturated,
        k_fleet_kw_per_hz=float(k.sum()),
        fleet_response_kw=float(resp.sum()),
    )


@dataclass(frozen=True)
class SystemParams:
    """Single-area system: swing equation with load damping and a non-reheat governor-turbine.

    Attributes
    ----------
    s_base_kw : system rating the inertia refers to [kW].
    h_s : inertia constant [s].
    d_load_kw_per_hz : load damping [kW/Hz].
    p_gen_kw : rating of the governor-controlled generation [kW].
    r_pu : governor droop R [-].
    t_gov_s, t_turb_s : governor and turbine time constants [s].
    f_nom_hz : nominal frequency [Hz].

    Defaults follow the non-reheat steam example of Kundur (1994), section 11.1: H = 5 s, R = 0.05,
    T_G = 0.2 s, T_CH = 0.3 s, D = 1 % load per 1 % frequency.
    """

    s_base_kw: float = 100_000.0
    h_s: float = 5.0
    d_load_kw_per_hz: float = 100_000.0 / 60.0
    p_gen_kw: float = 100_000.0
    r_pu: float = 0.05
    t_gov_s: float = 0.2
    t_turb_s: float = 0.3
    f_nom_hz: float = 60.0

    def __post_init__(self) -> None:
        checks = (
            ("s_base_kw", self.s_base_kw > 0),
            ("h_s", self.h_s > 0),
            ("d_load_kw_per_hz", self.d_load_kw_per_hz >= 0),
            ("p_gen_kw", self.p_gen_kw >= 0),
            ("r_pu", 0 < self.r_pu <= 1),
            ("t_gov_s", self.t_gov_s > 0),
            ("t_turb_s", self.t_turb_s > 0),
            ("f_nom_hz", self.f_nom_hz > 0),
        )
        for name, ok in checks:
            if not ok or not np.isfinite(getattr(self, name)):
                raise DataError(f"system.{name} = {getattr(self, name)}: non-physical (must be > 0; r_pu <= 1)")

    @property
    def k_gen_kw_per_hz(self) -> float:
        """Governor droop gain ``P_gen / (f_nom R)`` [kW/Hz]."""
        return self.p_gen_kw / (self.f_nom_hz * self.r_pu)


@dataclass(frozen=True)
class DynamicsResult:
    """Frequency trajectory after a load step.

    Attributes
    ----------
    t_s : time [s].
    df_hz : frequency deviation [Hz].
    p_fleet_kw : total EV response [kW, + injection].
    p_mech_kw : governor-turbine output change [kW].
    nadir_hz : frequency at the nadir, ``f_nom + df_nadir_hz`` (absolute) [Hz]; nadir_t_s its time [s].
    df_nadir_hz : frequency deviation at the nadir, the largest |df| (negative for a load increase) [Hz].
    rocof_hz_per_s : rate of change of frequency where |df/dt| is largest, signed: negative when the
        frequency falls (at the step: ``-dP f_nom / (2 H S)``) [Hz/s].
    settling_df_hz : deviation at the end [Hz].
    """

    t_s: FloatArray
    df_hz: FloatArray
    p_fleet_kw: FloatArray
    p_mech_kw: FloatArray
    nadir_hz: float
    df_nadir_hz: float
    nadir_t_s: float
    rocof_hz_per_s: float
    settling_df_hz: float


@njit(cache=True, inline="always")
def _ev_target(df, db, k, up, down):  # type: ignore[no-untyped-def]
    if df < -db:
        r = k * (-df - db)
        return r if r < up else up
    if df > db:
        r = k * (df - db)
        return -(r if r < down else down)
    return 0.0


#: Fewest EVs for which the dynamics spread the EV stages over threads. Below it one thread runs them: the
#: RK4 loop calls the EV stage 4 times a step (12,000 parallel regions in a 30 s run at 10 ms), and for a
#: small fleet thread start-up costs more than the work, and much more when the cores are busy (OpenMP
#: threads spinning against another load). Measured with ``benchmarks/bench_frequency_parallel.py`` on a
#: shared 2-core machine: one thread was faster up to 500,000 EVs (0.51 s against 4.05 s for 1 s of dynamics),
#: the threads from about 1,000,000 (0.83 s against 1.16 s).
PARALLEL_MIN_EVS = 1_000_000


@njit(parallel=True, cache=True)
def _fleet_rhs_parallel(df, p_ev, db, k, up, down, tau, dp_out):  # type: ignore[no-untyped-def]
    """dP_i/dt of every EV (threads over the EVs); returns the summed injection."""
    n = p_ev.shape[0]
    total = 0.0
    for i in prange(n):
        dp_out[i] = (_ev_target(df, db[i], k[i], up[i], down[i]) - p_ev[i]) / tau[i]
        total += p_ev[i]
    return total


@njit(cache=True)
def _fleet_rhs_serial(df, p_ev, db, k, up, down, tau, dp_out):  # type: ignore[no-untyped-def]
    """dP_i/dt of every EV (one thread); returns the summed injection."""
    n = p_ev.shape[0]
    total = 0.0
    for i in range(n):
        dp_out[i] = (_ev_target(df, db[i], k[i], up[i], down[i]) - p_ev[i]) / tau[i]
        total += p_ev[i]
    return total


@njit(cache=True, inline="always")
def _fleet_rhs(parallel, df, p_ev, db, k, up, down, tau, dp_out):  # type: ignore[no-untyped-def]
    if parallel:
        return _fleet_rhs_parallel(df, p_ev, db, k, up, down, tau, dp_out)
    return _fleet_rhs_serial(df, p_ev, db, k, up, down, tau, dp_out)


@njit(cache=True)
def _simulate(  # type: ignore[no-untyped-def]
    n_steps, dt, dp_load, m, d, kg, tg, tt, db, k, up, down, tau, out_df, out_pev, out_pm, parallel
):
    """Classic RK4 on [df, dPv, dPm, P_ev_1..N]; m = 2 H S / f_nom [kW s/Hz]."""
    n = db.shape[0]
    pev = np.zeros(n)
    k1 = np.empty(n)
    k2 = np.empty(n)
    k3 = np.empty(n)
    k4 = np.empty(n)
    tmp = np.empty(n)
    df = 0.0
    pv = 0.0
    pm = 0.0
    out_df[0] = 0.0
    out_pev[0] = 0.0
    out_pm[0] = 0.0
    for s in range(n_steps):
        # stage 1
        e1 = _fleet_rhs(parallel, df, pev, db, k, up, down, tau, k1)
        f1 = (pm - dp_load - d * df + e1) / m
        v1 = (-pv - kg * df) / tg
        q1 = (pv - pm) / tt
        for i in range(n):
            tmp[i] = pev[i] + 0.5 * dt * k1[i]
        e2 = _fleet_rhs(parallel, df + 0.5 * dt * f1, tmp, db, k, up, down, tau, k2)
        f2 = (pm + 0.5 * dt * q1 - dp_load - d * (df + 0.5 * dt * f1) + e2) / m
        v2 = (-(pv + 0.5 * dt * v1) - kg * (df + 0.5 * dt * f1)) / tg
        q2 = ((pv + 0.5 * dt * v1) - (pm + 0.5 * dt * q1)) / tt
        for i in range(n):
            tmp[i] = pev[i] + 0.5 * dt * k2[i]
        e3 = _fleet_rhs(parallel, df + 0.5 * dt * f2, tmp, db, k, up, down, tau, k3)
        f3 = (pm + 0.5 * dt * q2 - dp_load - d * (df + 0.5 * dt * f2) + e3) / m
        v3 = (-(pv + 0.5 * dt * v2) - kg * (df + 0.5 * dt * f2)) / tg
        q3 = ((pv + 0.5 * dt * v2) - (pm + 0.5 * dt * q2)) / tt
        for i in range(n):
            tmp[i] = pev[i] + dt * k3[i]
        e4 = _fleet_rhs(parallel, df + dt * f3, tmp, db, k, up, down, tau, k4)
        f4 = (pm + dt * q3 - dp_load - d * (df + dt * f3) + e4) / m
        v4 = (-(pv + dt * v3) - kg * (df + dt * f3)) / tg
        q4 = ((pv + dt * v3) - (pm + dt * q3)) / tt
        df += dt / 6.0 * (f1 + 2 * f2 + 2 * f3 + f4)
        pv += dt / 6.0 * (v1 + 2 * v2 + 2 * v3 + v4)
        pm += dt / 6.0 * (q1 + 2 * q2 + 2 * q3 + q4)
        total = 0.0
        for i in range(n):
            pev[i] += dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i])
            total += pev[i]
        out_df[s + 1] = df
        out_pev[s + 1] = total
        out_pm[s + 1] = pm


def run_dynamics(
    fleet: DroopFleet,
    system: SystemParams,
    dp_load_kw: float,
    *,
    t_end_s: float = 30.0,
    dt_s: float = 0.01,
    parallel: bool | None = None,
) -> DynamicsResult:
    """Frequency response of a single area to a load step at t = 0, every EV modelled individually.

    Notes
    -----
    State ``x = [df, dP_v, dP_m, P_1 .. P_N]`` with

    ``(2 H S / f_nom) d(df)/dt = dP_m - dP_L - D_f df + sum_i P_i`` (swing equation, Kundur 1994 ch. 11),
    ``T_G dP_v/dt = -dP_v - (P_gen / (f_nom R)) df`` (governor), ``T_CH dP_m/dt = dP_v - dP_m`` (non-reheat
    turbine), ``T_i dP_i/dt = R_i(df) - P_i`` (each EV: first-order lag towards its droop target with
    deadband and headroom limits). Integrated with the classic 4th-order Runge-Kutta method at a fixed
    step ``dt_s`` (numba; the EV stages on threads from :data:`PARALLEL_MIN_EVS` EVs up, or as ``parallel``
    says; both give the same trajectory up to the order of one floating-point sum). Over tens of seconds the
    EVs' SoC changes by well under 0.1 % and is not tracked here; headroom limits carry the SoC constraint.
    """
    if not (0 < dt_s <= 1.0) or not (0 < t_end_s <= 3600.0):
        raise DataError(f"dt_s must be in (0, 1] s and t_end_s in (0, 3600] s; got {dt_s}, {t_end_s}")
    n_steps = round(t_end_s / dt_s)
    m = 2.0 * system.h_s * system.s_base_kw / system.f_nom_hz
    k = fleet.gain_kw_per_hz(system.f_nom_hz)
    out_df = np.empty(n_steps + 1)
    out_pev = np.empty(n_steps + 1)
    out_pm = np.empty(n_steps + 1)
    _simulate(
        n_steps,
        dt_s,
        float(dp_load_kw),
        m,
        system.d_load_kw_per_hz,
        system.k_gen_kw_per_hz,
        system.t_gov_s,
        system.t_turb_s,
        fleet.deadband_hz,
        k,
        fleet.headroom_up_kw,
        fleet.headroom_down_kw,
        fleet.t_response_s,
        out_df,
        out_pev,
        out_pm,
        bool(fleet.n >= PARALLEL_MIN_EVS if parallel is None else parallel),
    )
    if not np.isfinite(out_df).all():
        raise DataError("dynamics: the trajectory diverged; check the time step against the EV time constants")
    t = np.arange(n_steps + 1) * dt_s
    i_nadir = int(np.argmax(np.abs(out_df)))
    rocof = np.diff(out_df) / dt_s
    return DynamicsResult(
        t_s=t,
        df_hz=out_df,
        p_fleet_kw=out_pev,
        p_mech_kw=out_pm,
        nadir_hz=float(system.f_nom_hz + out_df[i_nadir]),
        df_nadir_hz=float(out_df[i_nadir]),
        nadir_t_s=float(t[i_nadir]),
        rocof_hz_per_s=float(rocof[int(np.argmax(np.abs(rocof)))]) if rocof.size else 0.0,
        settling_df_hz=float(out_df[-1]),
    )
