"""Fused numba kernels behind :mod:`v2gtwin.fleet`.

Written by hand because they are the product's core speed: one pass over (time x EV) memory per call,
parallel over blocks of EVs (numba ``prange``), the state of each EV kept in a register. A plain numpy loop
over time steps makes about six passes per step and reaches roughly 3e7 EV-steps/s; these kernels are
needed for the 1e8 EV-steps/s target of ``benchmarks/bench_fleet.py``.

Conventions (shared with :mod:`v2gtwin.fleet`): arrays of power are shaped (n_steps, N), SoC trajectories
(n_steps + 1, N), EV ``i`` is plugged in during step ``t`` when ``arrival[i] <= t < departure[i]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: EVs per parallel block: large enough to amortise scheduling, small enough to stay in cache per step.
BLOCK = 2048


@njit(cache=True, inline="always")
def _step(p_req, soc, cap, soc_lo, soc_hi, pch, pdis, eta_c, eta_d, dt_h):  # type: ignore[no-untyped-def]
    """One EV, one step: clip the request to power and SoC limits, return (p_kw, new soc_pu)."""
    p = p_req
    if p > pch:
        p = pch
    elif p < -pdis:
        p = -pdis
    if p > 0.0:
        p_room = (soc_hi - soc) * cap / (eta_c * dt_h)
        if p_room < 0.0:
            p_room = 0.0
        if p > p_room:
            p = p_room
        soc = soc + p * eta_c * dt_h / cap
    elif p < 0.0:
        p_room = -(soc - soc_lo) * cap * eta_d / dt_h
        if p_room > 0.0:
            p_room = 0.0
        if p < p_room:
            p = p_room
        soc = soc + p / eta_d * dt_h / cap
    return p, soc


@njit(parallel=True, cache=True)
def simulate(  # type: ignore[no-untyped-def]
    p_req,
    uncontrolled,
    arr,
    dep,
    cap,
    soc0,
    soc_lo,
    soc_hi,
    pch,
    pdis,
    eta_c,
    eta_d,
    dt_h,
    p_out,
    soc_out,
    clip_out,
):
    """Fill ``p_out`` (realised power), ``soc_out`` and ``clip_out`` (request minus realised) in place.

    With ``uncontrolled`` true, ``p_req`` is ignored and every plugged EV requests its full charging power
    (``clip_out`` is then left untouched).
    """
    n_steps = p_out.shape[0]
    n = p_out.shape[1]
    n_blocks = (n + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        i0 = b * BLOCK
        i1 = min(n, i0 + BLOCK)
        soc = np.empty(i1 - i0)
        for i in range(i0, i1):
            soc[i - i0] = soc0[i]
            soc_out[0, i] = soc0[i]
        for t in range(n_steps):
            for i in range(i0, i1):
                j = i - i0
                req = pch[i] if uncontrolled else p_req[t, i]
                if t < arr[i] or t >= dep[i]:
                    p = 0.0
                else:
                    p, soc[j] = _step(
                        req, soc[j], cap[i], soc_lo[i], soc_hi[i], pch[i], pdis[i], eta_c[i], eta_d[i], dt_h
                    )
                p_out[t, i] = p
                soc_out[t + 1, i] = soc[j]
                if not uncontrolled:
                    clip_out[t, i] = req - p


@njit(cache=True, inline="always")
def _bounds_at(k, arr, dep, e0, e_min, e_max, e_tgt, pch, pdis, eta_c, eta_d, dt_h):  # type: ignore[no-untyped-def]
    """Stored-energy bounds [kWh] of one EV at step boundary ``k`` (arr <= k <= dep)."""
    up = e0 + pch * eta_c * dt_h * (k - arr)
    if up > e_max:
        up = e_max
    if up < e0:
        up = e0
    lo = e_min if e_min < e0 else e0
    late = e_tgt - pch * eta_c * dt_h * (dep - k)
    if late > lo:
        lo = late
    fast_down = e0 - pdis / eta_d * dt_h * (k - arr)
    if fast_down > lo:
        lo = fast_down
    if lo > up:
        lo = up
    return lo, up


@njit(parallel=True, cache=True)
def envelope(  # type: ignore[no-untyped-def]
    n_steps, arr, dep, cap, soc0, soc_min, soc_max, soc_tgt, pch, pdis, eta_c, eta_d, dt_h
):
    """Aggregate flexibility envelope; returns per-step arrays (p_max, p_min, e_lower, e_upper, n_plugged)
    and the number of EVs whose target cannot be reached."""
    n = arr.shape[0]
    n_blocks = (n + BLOCK - 1) // BLOCK
    pmax_b = np.zeros((n_blocks, n_steps))
    pmin_b = np.zeros((n_blocks, n_steps))
    elo_b = np.zeros((n_blocks, n_steps))
    eup_b = np.zeros((n_blocks, n_steps))
    cnt_b = np.zeros((n_blocks, n_steps), dtype=np.int64)
    infeasible_b = np.zeros(n_blocks, dtype=np.int64)
    for b in prange(n_blocks):
        i0 = b * BLOCK
        i1 = min(n, i0 + BLOCK)
        for i in range(i0, i1):
            a = arr[i]
            d = dep[i]
            if d > n_steps:
                d = n_steps
            if d <= a:
                continue
            e0 = soc0[i] * cap[i]
            e_min = soc_min[i] * cap[i]
            e_max = soc_max[i] * cap[i]
            e_tgt = soc_tgt[i] * cap[i]
            if e0 + pch[i] * eta_c[i] * dt_h * (d - a) < e_tgt - 1e-9 * cap[i]:
                infeasible_b[b] += 1
            for t in range(a, d):
                lo, up = _bounds_at(t + 1, a, d, e0, e_min, e_max, e_tgt, pch[i], pdis[i], eta_c[i], eta_d[i], dt_h)
                elo_b[b, t] += lo
                eup_b[b, t] += up
                pmax_b[b, t] += pch[i]
                pmin_b[b, t] -= pdis[i]
                cnt_b[b, t] += 1
    return (
        pmax_b.sum(axis=0),
        pmin_b.sum(axis=0),
        elo_b.sum(axis=0),
        eup_b.sum(axis=0),
        cnt_b.sum(axis=0),
        infeasible_b.sum(),
    )


@njit(parallel=True, cache=True)
def energy_bounds(  # type: ignore[no-untyped-def]
    n_steps, arr, dep, cap, soc0, soc_min, soc_max, soc_tgt, pch, pdis, eta_c, eta_d, dt_h, lo_out, up_out
):
    """Per-EV stored-energy bounds [kWh] at every step boundary, shaped (n_steps + 1, N), in place.

    Outside the plug-in interval both bounds hold the EV's energy at the nearest end of the interval.
    """
    n = arr.shape[0]
    for i in prange(n):
        a = min(arr[i], n_steps)
        d = min(dep[i], n_steps)
        e0 = soc0[i] * cap[i]
        e_min = soc_min[i] * cap[i]
        e_max = soc_max[i] * cap[i]
        e_tgt = soc_tgt[i] * cap[i]
        for k in range(n_steps + 1):
            kk = min(max(k, a), max(d, a))
            if d <= a:
                lo, up = e0, e0
            else:
                lo, up = _bounds_at(kk, a, d, e0, e_min, e_max, e_tgt, pch[i], pdis[i], eta_c[i], eta_d[i], dt_h)
            lo_out[k, i] = lo
            up_out[k, i] = up
