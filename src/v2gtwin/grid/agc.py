"""Secondary regulation: a two-area AGC loop with the V2G fleet as a participant, and the market view —
following a regulation signal, allocating it across EVs, and PJM's performance score.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numba import njit

from v2gtwin.errors import DataError

__all__ = [
    "AgcArea",
    "AgcResult",
    "PjmScore",
    "RegulationResult",
    "calc_lag_weights",
    "calc_pjm_score",
    "calc_regulation_allocation",
    "generate_regd_signal",
    "read_regulation_signal",
    "run_regulation",
    "run_two_area_agc",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]


# --- command delay ----------------------------------------------------------------------------------------
def calc_lag_weights(delay_s: float | npt.ArrayLike, dt_s: float) -> FloatArray:
    """Weights ``w_l`` over lags of ``l`` steps such that a piecewise-constant set-point ``x`` delayed by the
    command path has the step average ``y[t] = sum_l w_l x[t - l]``.

    ``delay_s`` is one delay or samples of the delay (each EV's command crosses the path on its own, so the
    fleet's aggregate follows the mixture). A delay ``d = (k + f) dt`` gives weight ``1 - f`` to lag ``k`` and
    ``f`` to lag ``k + 1``: exact for the step average of a zero-order-hold signal, no rounding to steps.
    """
    d = np.atleast_1d(np.asarray(delay_s, dtype=float))
    if d.size == 0 or not np.isfinite(d).all() or (d < 0).any() or not dt_s > 0:
        raise DataError("delay_s: need one or more finite delays >= 0 s and dt_s > 0")
    x = d / dt_s
    k = np.floor(x).astype(np.int64)
    f = x - k
    n = int(k.max()) + 2
    w = np.bincount(k, weights=1.0 - f, minlength=n) + np.bincount(k + 1, weights=f, minlength=n)
    return np.asarray(w / d.size)


def _delay_signal(x: FloatArray, weights: FloatArray) -> FloatArray:
    """``y[t] = sum_l w_l x[t - l]`` with ``x`` = 0 before the start (the fleet holds its base power)."""
    return np.asarray(np.convolve(x, weights)[: x.size])


# --- two-area AGC -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgcArea:
    """One control area.

    Attributes
    ----------
    s_base_kw : rating the inertia refers to [kW]; h_s inertia constant [s].
    d_load_kw_per_hz : load damping [kW/Hz].
    p_gen_kw, r_pu, t_gov_s, t_turb_s : governor-controlled generation, droop, time constants.
    ramp_kw_per_s : ramp limit of the AGC set-point of the conventional units [kW/s].
    ev_up_kw, ev_down_kw : the V2G fleet's AGC range in this area (0: no fleet) [kW].
    t_ev_s : the fleet's response time constant [s].
    """

    s_base_kw: float = 1_000_000.0
    h_s: float = 5.0
    d_load_kw_per_hz: float = 1_000_000.0 / 60.0
    p_gen_kw: float = 1_000_000.0
    r_pu: float = 0.05
    t_gov_s: float = 0.2
    t_turb_s: float = 0.3
    ramp_kw_per_s: float = 1_000_000.0 * 0.02 / 60.0  # 2 % of rating per minute
    ev_up_kw: float = 0.0
    ev_down_kw: float = 0.0
    t_ev_s: float = 1.0
    f_nom_hz: float = 60.0

    def __post_init__(self) -> None:
        for name in (
            "s_base_kw",
            "h_s",
            "p_gen_kw",
            "r_pu",
            "t_gov_s",
            "t_turb_s",
            "ramp_kw_per_s",
            "t_ev_s",
            "f_nom_hz",
        ):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise DataError(f"area.{name} = {v}: must be a finite number > 0")
        for name in ("d_load_kw_per_hz", "ev_up_kw", "ev_down_kw"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise DataError(f"area.{name} = {v}: must be >= 0")

    @property
    def bias_kw_per_hz(self) -> float:
        """Frequency bias B = D + 1/R (natural frequency response) [kW/Hz]."""
        return self.d_load_kw_per_hz + self.p_gen_kw / (self.f_nom_hz * self.r_pu)


@dataclass(frozen=True)
class AgcResult:
    """Trajectories of a two-area AGC run (index 0 / 1 = area 1 / 2).

    Attributes
    ----------
    t_s : time [s]. df_hz : frequency deviation per area, shape (n, 2) [Hz].
    p_tie_kw : tie-line flow from area 1 to 2, deviation from schedule [kW].
    ace_kw : area control error per area [kW].
    p_ev_kw : fleet response per area [kW]; p_agc_conv_kw : conventional AGC set-point per area [kW].
    restore_s : time after which |df| < 0.01 Hz and |ACE| < 1 % of the step for good [s] (nan: never).
    """

    t_s: FloatArray
    df_hz: FloatArray
    p_tie_kw: FloatArray
    ace_kw: FloatArray
    p_ev_kw: FloatArray
    p_agc_conv_kw: FloatArray
    restore_s: float


def run_two_area_agc(
    area1: AgcArea,
    area2: AgcArea,
    dp_load_kw: tuple[float, float],
    *,
    t_tie_kw_per_hz_s: float = 2 * math.pi * 100_000.0 / 60.0,
    k_i_per_s: float = 0.05,
    ev_share: float = 1.0,
    t_end_s: float = 600.0,
    dt_s: float = 0.05,
    ev_delay_s: float | npt.ArrayLike = 0.0,
) -> AgcResult:
    """Two-area load-frequency control after load steps ``dp_load_kw`` at t = 0.

    Notes
    -----
    Per area a (Kundur 1994, sections 11.1-11.2; Bevrani, Robust Power System Frequency Control, ch. 2):
    ``(2 H_a S_a / f_nom) d(df_a)/dt = dP_m,a + dP_ev,a - dP_L,a - D_a df_a - dP_tie,a``,
    ``d(dP_tie,12)/dt = T_12 (df_1 - df_2)``, ``ACE_a = dP_tie,a + B_a df_a`` with ``B_a = D_a + 1/R_a``,
    integral AGC ``dz_a/dt = -K_I ACE_a``. The request ``z_a`` goes first to the fleet (``ev_share`` of it,
    within ``[-ev_down, ev_up]``, first-order lag ``t_ev``) and the rest to the conventional units, whose
    set-point moves at most ``ramp_kw_per_s``; governor ``T_G dP_v/dt = -dP_v - df/(R) + P_c``, turbine
    ``T_CH dP_m/dt = dP_v - dP_m``. Fixed-step RK2 (Heun) at ``dt_s``; the ramp and range limits act between
    steps. ``ev_delay_s`` (one delay, or samples of the command path's delay) delays the fleet's request by
    :func:`calc_lag_weights`; 0 (default) leaves the loop as without a path.
    """
    w_delay = calc_lag_weights(ev_delay_s, dt_s)
    if not (0 < dt_s <= 0.5 and 0 < t_end_s <= 86_400 and k_i_per_s >= 0 and 0 <= ev_share <= 1):
        raise DataError("AGC settings: need 0 < dt_s <= 0.5, 0 < t_end_s <= 86400, k_i_per_s >= 0, 0 <= ev_share <= 1")
    if not t_tie_kw_per_hz_s > 0:
        raise DataError(f"t_tie_kw_per_hz_s: must be > 0, got {t_tie_kw_per_hz_s}")
    areas = (area1, area2)
    n = round(t_end_s / dt_s)
    m = np.array([2 * a.h_s * a.s_base_kw / a.f_nom_hz for a in areas])
    d = np.array([a.d_load_kw_per_hz for a in areas])
    kg = np.array([a.p_gen_kw / (a.f_nom_hz * a.r_pu) for a in areas])
    tg = np.array([a.t_gov_s for a in areas])
    tt = np.array([a.t_turb_s for a in areas])
    b = np.array([a.bias_kw_per_hz for a in areas])
    ramp = np.array([a.ramp_kw_per_s for a in areas])
    up = np.array([a.ev_up_kw for a in areas])
    down = np.array([a.ev_down_kw for a in areas])
    tev = np.array([a.t_ev_s for a in areas])
    dpl = np.asarray(dp_load_kw, dtype=float)

    df = np.zeros(2)
    pv = np.zeros(2)
    pm = np.zeros(2)
    pev = np.zeros(2)
    z = np.zeros(2)
    pc = np.zeros(2)
    tie = 0.0
    out = {k: np.empty((n + 1, 2)) for k in ("df", "ace", "pev", "pc")}
    out_tie = np.empty(n + 1)
    hist = np.zeros((w_delay.size, 2))  # the fleet's requests, newest first, for the command delay

    def deriv(df, pv, pm, pev, tie, pc, ev_target):  # type: ignore[no-untyped-def]
        ptie = np.array([tie, -tie])
        ddf = (pm + pev - dpl - d * df - ptie) / m
        dpv = (-pv - kg * df + pc) / tg
        dpm = (pv - pm) / tt
        dpev = (ev_target - pev) / tev
        dtie = t_tie_kw_per_hz_s * (df[0] - df[1])
        return ddf, dpv, dpm, dpev, dtie

    for s in range(n + 1):
        ace = np.array([tie, -tie]) + b * df
        out["df"][s], out["ace"][s], out["pev"][s], out["pc"][s] = df, ace, pev, pc
        out_tie[s] = tie
        if s == n:
            break
        z = z - k_i_per_s * ace * dt_s
        ev_request = np.clip(ev_share * z, -down, up)
        hist = np.roll(hist, 1, axis=0)
        hist[0] = ev_request
        ev_target = w_delay @ hist
        pc_target = z - ev_request
        pc = pc + np.clip(pc_target - pc, -ramp * dt_s, ramp * dt_s)
        k1 = deriv(df, pv, pm, pev, tie, pc, ev_target)
        df1, pv1, pm1, pev1, tie1 = (
            df + dt_s * k1[0],
            pv + dt_s * k1[1],
            pm + dt_s * k1[2],
            pev + dt_s * k1[3],
            tie + dt_s * k1[4],
        )
        k2 = deriv(df1, pv1, pm1, pev1, tie1, pc, ev_target)
        df = df + 0.5 * dt_s * (k1[0] + k2[0])
        pv = pv + 0.5 * dt_s * (k1[1] + k2[1])
        pm = pm + 0.5 * dt_s * (k1[2] + k2[2])
        pev = pev + 0.5 * dt_s * (k1[3] + k2[3])
        tie = tie + 0.5 * dt_s * (k1[4] + k2[4])
    t = np.arange(n + 1) * dt_s
    step = max(float(np.abs(dpl).max()), 1e-9)
    ok = (np.abs(out["df"]).max(axis=1) < 0.01) & (np.abs(out["ace"]).max(axis=1) < 0.01 * step)
    bad = np.flatnonzero(~ok)
    restore = float(t[bad[-1] + 1]) if bad.size and bad[-1] + 1 < t.size else (0.0 if not bad.size else math.nan)
    return AgcResult(t, out["df"], out_tie, out["ace"], out["pev"], out["pc"], restore)


# --- regulation signal ------------------------------------------------------------------------------------
def generate_regd_signal(
    n_steps: int, rng: np.random.Generator, *, dt_s: float = 2.0, tau_s: float = 120.0, sd_pu: float = 0.45
) -> FloatArray:
    """A synthetic RegD-like regulation signal in [-1, 1] pu at ``dt_s`` resolution.

    Construction: an Ornstein-Uhlenbeck process with correlation time ``tau_s`` and standard deviation
    ``sd_pu``, passed through ``tanh`` to stay within [-1, 1] while keeping its extremes, then corrected to
    a zero mean over the whole horizon (RegD is designed to be energy-neutral). PJM's real RegD signal is
    not redistributable here; these statistics are choices (about 2 minutes correlation, |signal| averaging
    about 0.35), documented in docs/frequency.md with the measured statistics of the generated signal.
    """
    if n_steps < 2 or dt_s <= 0 or tau_s <= 0 or sd_pu <= 0:
        raise DataError("regulation signal: need n_steps >= 2 and dt_s, tau_s, sd_pu > 0")
    a = math.exp(-dt_s / tau_s)
    noise = rng.normal(0.0, sd_pu * math.sqrt(1 - a * a), n_steps)
    x = np.empty(n_steps)
    x[0] = rng.normal(0.0, sd_pu)
    for k in range(1, n_steps):
        x[k] = a * x[k - 1] + noise[k]
    s = np.tanh(x / 0.8)
    s = s - s.mean()
    return np.asarray(np.clip(s / max(1.0, float(np.abs(s).max())), -1.0, 1.0))


def read_regulation_signal(path: str | Path) -> tuple[float, FloatArray]:
    """Read a regulation signal CSV with columns ``t_s,signal_pu`` (uniform time step, values in [-1, 1]).

    Returns (dt_s, signal_pu). Raises DataError naming the row for gaps, non-numbers, or values out of range
    (a signal in percent or MW is refused, not rescaled silently).
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read the regulation signal ({exc})") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["t_s", "signal_pu"]:
        raise DataError(f"{p}: the first line must be the header 't_s,signal_pu'")
    t, s = [], []
    for i, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            t.append(float(row[0]))
            s.append(float(row[1]))
        except (ValueError, IndexError):
            raise DataError(f"{p}, line {i}: expected two numbers 't_s,signal_pu', got {row!r}") from None
    if len(t) < 2:
        raise DataError(f"{p}: needs at least two samples")
    ta, sa = np.asarray(t), np.asarray(s)
    if not np.isfinite(sa).all() or not np.isfinite(ta).all():
        raise DataError(f"{p}: non-finite values")
    dt = np.diff(ta)
    step = float(dt.min())
    if step <= 0:
        raise DataError(f"{p}: t_s must increase")
    bad = np.flatnonzero(np.abs(dt - step) > 1e-6 * max(step, 1.0))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{p}, line {i + 3}: time step {dt[i]:g} s after t = {ta[i]:g} s breaks the uniform {step:g} s step "
            "(gap or duplicate)"
        )
    if np.abs(sa).max() > 1.0 + 1e-9:
        i = int(np.argmax(np.abs(sa) > 1.0 + 1e-9))
        hint = " (percent? give per unit)" if np.abs(sa).max() <= 100 else " (MW? give per unit of capacity)"
        raise DataError(f"{p}, line {i + 2}: signal_pu = {sa[i]:g} is outside [-1, 1]{hint}")
    return step, sa


# --- PJM performance score ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PjmScore:
    """PJM regulation performance score (PJM Manual 12, section 4.5.6 as summarised in docs/frequency.md).

    Attributes
    ----------
    accuracy : the largest correlation between signal and response over response delays 0 .. 5 min [-].
    delay : ``|(delay* - 5 min) / 5 min|`` with delay* the delay of the largest correlation [-].
    precision : ``1 - mean|response - signal| / mean|signal|`` [-].
    composite : mean of the three [-]. delay_s : delay* [s].
    """

    accuracy: float
    delay: float
    precision: float
    composite: float
    delay_s: float


def calc_pjm_score(
    signal_pu: npt.ArrayLike, response_pu: npt.ArrayLike, dt_s: float, *, sample_s: float = 10.0
) -> PjmScore:
    """Score a response against a regulation signal (both in pu of the regulation capability).

    Both are averaged over ``sample_s`` (10 s) intervals; the correlation is taken for delays of 0 to
    5 minutes in steps of ``sample_s``; the precision uses the same (undelayed) samples.
    """
    sig = np.asarray(signal_pu, dtype=float)
    res = np.asarray(response_pu, dtype=float)
    if sig.shape != res.shape or sig.ndim != 1:
        raise DataError(f"signal and response: need equal 1-D shapes, got {sig.shape} and {res.shape}")
    k = max(1, round(sample_s / dt_s))
    m = sig.size // k
    if m < 32:
        raise DataError(f"signal: at least {32 * k} samples ({32 * sample_s:g} s) are needed to score")
    s10 = sig[: m * k].reshape(m, k).mean(axis=1)
    r10 = res[: m * k].reshape(m, k).mean(axis=1)
    max_shift = min(round(300.0 / (k * dt_s)), m - 16)
    best, best_d = -np.inf, 0
    for dshift in range(max_shift + 1):
        a, b = s10[: m - dshift], r10[dshift:]
        c = 0.0 if a.std() == 0 or b.std() == 0 else float(np.corrcoef(a, b)[0, 1])
        if c > best + 1e-12:
            best, best_d = c, dshift
    delay_s = best_d * k * dt_s
    delay = abs((delay_s - 300.0) / 300.0)
    mean_abs = float(np.abs(s10).mean())
    precision = 1.0 - float(np.abs(r10 - s10).mean()) / mean_abs if mean_abs > 0 else 0.0
    accuracy = max(best, 0.0)
    return PjmScore(accuracy, delay, precision, (accuracy + delay + precision) / 3.0, delay_s)


# --- regulation following by the fleet ------------------------------------------------------------------
# Serial: it runs once per signal step (1,800 times an hour at 2 s), and a parallel region per call cost more in
# thread start-up and barriers than its two O(n) loops gain: one hour of regulation by the 61,126 EVs plugged in at
# the event of examples/fleet_100k.toml took 15.7 s of CPU with it and 0.8 s without (same numbers, busy machine).
@njit(cache=True)
def _allocate_step(  # type: ignore[no-untyped-def]
    target, soc, cap, soc_min, soc_max, p0, pch, pdis, eta_c, eta_d, dt_h, soc_aware, room, weight, p_out, active
):
    """Split a fleet set-point change ``target`` [kW, + injection] across EVs into ``p_out``.

    Each EV's headroom in the requested direction (power and, for this step, energy limits) caps its share;
    shares are proportional to a weight (the headroom itself for pro-rata; headroom times the energy the EV
    has to give, or room to take, for SoC-aware) and water-filled: what a capped EV cannot take is
    re-split among the others. ``active`` (n ints) is scratch: the EVs still uncapped, so that each round
    visits only them (the sums run over the same EVs in the same order as over all EVs).
    """
    n = soc.shape[0]
    for i in range(n):
        if target >= 0:
            e_avail = (soc[i] - soc_min[i]) * cap[i] * eta_d[i] / dt_h
            r = p0[i] + min(pdis[i], max(e_avail, 0.0))
            r = max(r, 0.0)
            w = r * (max(soc[i] - soc_min[i], 0.0) if soc_aware else 1.0)
        else:
            e_room = (soc_max[i] - soc[i]) * cap[i] / (eta_c[i] * dt_h)
            r = min(pch[i], max(e_room, 0.0)) - p0[i]
            r = max(r, 0.0)
            w = r * (max(soc_max[i] - soc[i], 0.0) if soc_aware else 1.0)
        room[i] = r
        weight[i] = w
        p_out[i] = 0.0
    remaining = abs(target)
    wsum = 0.0
    n_active = 0
    for i in range(n):
        if weight[i] > 0.0:
            wsum += weight[i]
            active[n_active] = i
            n_active += 1
    for _ in range(50):
        if remaining <= 1e-12:
            break
        if wsum <= 0.0:
            break
        given = 0.0
        capped = 0
        # One pass per round over the EVs still uncapped: the weights left for the next round are summed (in
        # the same order) and those EVs kept as this round hands out its shares.
        wnext = 0.0
        kept = 0
        for j in range(n_active):
            i = active[j]
            share = remaining * weight[i] / wsum
            free = room[i] - p_out[i]
            if share >= free:
                share = free
                weight[i] = 0.0
                capped += 1
            else:
                wnext += weight[i]
                active[kept] = i
                kept += 1
            p_out[i] += share
            given += share
        remaining -= given
        wsum = wnext
        n_active = kept
        if capped == 0:
            break
    if target < 0:
        for i in range(n):
            p_out[i] = -p_out[i]


@njit(cache=True)
def _run_regulation(  # type: ignore[no-untyped-def]
    setpoint, soc0, cap, soc_min, soc_max, p0, pch, pdis, eta_c, eta_d, dt_h, soc_aware, resp_out, soc_end
):
    n = soc0.shape[0]
    soc = soc0.copy()
    dp = np.empty(n)
    room = np.empty(n)
    weight = np.empty(n)
    active = np.empty(n, dtype=np.int64)
    throughput = 0.0
    for t in range(setpoint.shape[0]):
        _allocate_step(
            setpoint[t],
            soc,
            cap,
            soc_min,
            soc_max,
            p0,
            pch,
            pdis,
            eta_c,
            eta_d,
            dt_h,
            soc_aware,
            room,
            weight,
            dp,
            active,
        )
        total = 0.0
        for i in range(n):
            # Injection dp means the EV's consumption is p0 - dp.
            p = p0[i] - dp[i]
            if p >= 0:
                soc[i] += p * eta_c[i] * dt_h / cap[i]
            else:
                soc[i] += p / eta_d[i] * dt_h / cap[i]
            total += dp[i]
            throughput += abs(dp[i]) * dt_h
        resp_out[t] = total
    for i in range(n):
        soc_end[i] = soc[i]
    return throughput


def _allocation_arrays(allocation: str, *ev_arrays: npt.ArrayLike) -> list[FloatArray]:
    """The regulation allocation's checks, shared by :func:`calc_regulation_allocation` and
    :func:`run_regulation`: ``allocation`` is pro_rata or soc_aware, and the EV arrays (SoC, capacity, SoC
    limits, base power, power limits, efficiencies) one contiguous float entry per EV each."""
    if allocation not in ("pro_rata", "soc_aware"):
        raise DataError(f"allocation: must be pro_rata or soc_aware, got {allocation!r}")
    arrays = [np.ascontiguousarray(np.asarray(a, dtype=float)) for a in ev_arrays]
    n = arrays[0].size
    if any(a.shape != (n,) for a in arrays):
        raise DataError("EV arrays must all have one entry per EV")
    return arrays


def calc_regulation_allocation(
    target_kw: float,
    soc_pu: npt.ArrayLike,
    capacity_kwh: npt.ArrayLike,
    soc_min_pu: npt.ArrayLike,
    soc_max_pu: npt.ArrayLike,
    p0_kw: npt.ArrayLike,
    p_charge_max_kw: npt.ArrayLike,
    p_discharge_max_kw: npt.ArrayLike,
    eta_charge: npt.ArrayLike,
    eta_discharge: npt.ArrayLike,
    dt_s: float,
    allocation: Literal["pro_rata", "soc_aware"] = "soc_aware",
) -> FloatArray:
    """One step of :func:`run_regulation`'s allocation: the fleet's change ``target_kw`` [kW, + injection, i.e.
    less charging or more discharge] split across the EVs around their base power ``p0_kw`` [kW] for a step of
    ``dt_s`` [s]. Returns each EV's injection [kW] (its power becomes ``p0_kw - injection``); what the EVs'
    power and, over the step, energy limits cannot take is not allocated (the sum falls short of the target)."""
    if not math.isfinite(target_kw):
        raise DataError(f"target_kw: must be finite, got {target_kw}")
    arrays = _allocation_arrays(
        allocation,
        soc_pu,
        capacity_kwh,
        soc_min_pu,
        soc_max_pu,
        p0_kw,
        p_charge_max_kw,
        p_discharge_max_kw,
        eta_charge,
        eta_discharge,
    )
    n = arrays[0].size
    out = np.empty(n)
    _allocate_step(  # type: ignore[call-arg]
        float(target_kw),
        *arrays,
        dt_s / 3600.0,
        allocation == "soc_aware",
        np.empty(n),
        np.empty(n),
        out,
        np.empty(n, dtype=np.int64),  # scratch: the EVs still uncapped
    )
    return out


@dataclass(frozen=True)
class RegulationResult:
    """The fleet following a regulation signal for a while.

    Attributes
    ----------
    allocation : 'pro_rata' or 'soc_aware'.
    capacity_kw : regulation capability offered (signal 1 pu = this much injection) [kW].
    signal_pu, response_pu : signal and the fleet's realised response, pu of capacity [-].
    score : the PJM performance score.
    throughput_kwh : energy moved by the regulation (sum of |deviation| dt) [kWh].
    soc_end_pu : SoC of each EV at the end [pu].
    """

    allocation: str
    capacity_kw: float
    signal_pu: FloatArray
    response_pu: FloatArray
    score: PjmScore
    throughput_kwh: float
    soc_end_pu: FloatArray


def run_regulation(
    signal_pu: npt.ArrayLike,
    dt_s: float,
    capacity_kw: float,
    soc0_pu: npt.ArrayLike,
    capacity_kwh: npt.ArrayLike,
    soc_min_pu: npt.ArrayLike,
    soc_max_pu: npt.ArrayLike,
    p0_kw: npt.ArrayLike,
    p_charge_max_kw: npt.ArrayLike,
    p_discharge_max_kw: npt.ArrayLike,
    eta_charge: npt.ArrayLike,
    eta_discharge: npt.ArrayLike,
    allocation: Literal["pro_rata", "soc_aware"] = "soc_aware",
    delay_s: float | npt.ArrayLike = 0.0,
) -> RegulationResult:
    """Follow ``signal_pu`` x ``capacity_kw`` with the plugged-in EVs around their base power ``p0_kw``.

    Each step the set-point is split across the EVs: 'pro_rata' in proportion to each EV's headroom in the
    requested direction; 'soc_aware' in proportion to headroom times the energy it has to give (SoC above
    the minimum for injection, room below the maximum for absorption), which keeps the fleet's SoC spread
    even and its headroom alive. SoC is advanced with the efficiencies; what the SoC limits forbid is not
    delivered and shows in the score. ``delay_s`` (one delay, or samples of the command path's delay) delays
    the set-point the fleet receives (:func:`calc_lag_weights`); the score compares with the signal as sent.
    """
    sig = np.asarray(signal_pu, dtype=float)
    received = _delay_signal(sig, calc_lag_weights(delay_s, dt_s))
    if not (capacity_kw >= 0 and math.isfinite(capacity_kw)):
        raise DataError(f"capacity_kw: must be >= 0, got {capacity_kw}")
    arrays = _allocation_arrays(
        allocation,
        soc0_pu,
        capacity_kwh,
        soc_min_pu,
        soc_max_pu,
        p0_kw,
        p_charge_max_kw,
        p_discharge_max_kw,
        eta_charge,
        eta_discharge,
    )
    n = arrays[0].size
    resp = np.empty(sig.size)
    soc_end = np.empty(n)
    throughput = _run_regulation(  # type: ignore[call-arg]
        np.ascontiguousarray(received * capacity_kw), *arrays, dt_s / 3600.0, allocation == "soc_aware", resp, soc_end
    )
    resp_pu = resp / capacity_kw if capacity_kw > 0 else np.zeros_like(resp)
    return RegulationResult(
        allocation=allocation,
        capacity_kw=capacity_kw,
        signal_pu=sig,
        response_pu=resp_pu,
        score=calc_pjm_score(sig, resp_pu, dt_s),
        throughput_kwh=float(throughput),
        soc_end_pu=soc_end,
    )
