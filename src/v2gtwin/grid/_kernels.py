"""Numba kernels of the radial power flow (hand-written: the speed of the feeder studies is the product's own
value; see docs/feeder.md for the measured comparison with OpenDSS and pandapower).

Buses are in topological order: ``parent[i] < i`` for every bus ``i >= 1``, bus 0 is the source. Branch ``i``
joins ``parent[i]`` to ``i`` with series impedance ``r_pu[i] + j x_pu[i]``. Loads are per unit of the
feeder's power base, positive = consumption, shaped (n_steps, n_bus).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Time steps per parallel block; the solution of one step is the starting point of the next.
STEP_BLOCK = 64


@njit(cache=True, inline="always")
def _sweep_pass(parent, r, x, p, q, v0, vr, vi, jr, ji):  # type: ignore[no-untyped-def]
    """One backward/forward sweep in place on (vr, vi); returns the largest voltage update (pu)."""
    n = parent.shape[0]
    # Backward sweep: load currents I = conj(S / V) = conj(S) V / |V|^2, accumulated towards the source.
    for i in range(n):
        m2 = vr[i] * vr[i] + vi[i] * vi[i]
        jr[i] = (p[i] * vr[i] + q[i] * vi[i]) / m2
        ji[i] = (p[i] * vi[i] - q[i] * vr[i]) / m2
    for i in range(n - 1, 0, -1):
        k = parent[i]
        jr[k] += jr[i]
        ji[k] += ji[i]
    # Forward sweep: V_i = V_parent - Z_i J_i.
    dmax = 0.0
    vr[0] = v0
    vi[0] = 0.0
    for i in range(1, n):
        k = parent[i]
        nr = vr[k] - (r[i] * jr[i] - x[i] * ji[i])
        ni = vi[k] - (r[i] * ji[i] + x[i] * jr[i])
        d = abs(nr - vr[i]) + abs(ni - vi[i])
        if d > dmax:
            dmax = d
        vr[i] = nr
        vi[i] = ni
    return dmax


@njit(cache=True)
def _sweep_one(parent, r, x, p, q, v0, tol, max_iter, vr, vi, jr, ji):  # type: ignore[no-untyped-def]
    """Backward/forward sweep for one step, in place on (vr, vi) (start values in, solution out).

    Returns the number of iterations used, or -1 when not converged within ``max_iter``.
    """
    for it in range(max_iter):
        dmax = _sweep_pass(parent, r, x, p, q, v0, vr, vi, jr, ji)
        if dmax != dmax or dmax > 1e6:
            return -1
        if dmax < tol:
            return it + 1
    return -1


@njit(parallel=True, cache=True)
def sweep(  # type: ignore[no-untyped-def]
    parent, r, x, p, q, v0, tol, max_iter, vm_out, va_out, im_out, ps_out, qs_out, loss_out, qloss_out, iters_out
):
    """Exact radial AC power flow for every step, results written in place (all per unit):
    voltage magnitude and angle [rad], branch current magnitude, power entering each branch at its sending
    end, and the step's active / reactive losses. Each block of steps starts flat; every later step starts
    from the previous step's solution."""
    n_steps, n = p.shape
    n_blocks = (n_steps + STEP_BLOCK - 1) // STEP_BLOCK
    for b in prange(n_blocks):
        t0 = b * STEP_BLOCK
        t1 = min(n_steps, t0 + STEP_BLOCK)
        vr = np.empty(n)
        vi = np.empty(n)
        jr = np.empty(n)
        ji = np.empty(n)
        for i in range(n):
            vr[i] = v0
            vi[i] = 0.0
        for t in range(t0, t1):
            iters_out[t] = _sweep_one(parent, r, x, p[t], q[t], v0, tol, max_iter, vr, vi, jr, ji)
            if iters_out[t] < 0:
                # Retry from a flat start before giving up on this step.
                for i in range(n):
                    vr[i] = v0
                    vi[i] = 0.0
                iters_out[t] = _sweep_one(parent, r, x, p[t], q[t], v0, tol, max_iter, vr, vi, jr, ji)
            # Branch currents of the final voltages (one more backward sweep keeps J consistent with V).
            for i in range(n):
                m2 = vr[i] * vr[i] + vi[i] * vi[i]
                jr[i] = (p[t, i] * vr[i] + q[t, i] * vi[i]) / m2
                ji[i] = (p[t, i] * vi[i] - q[t, i] * vr[i]) / m2
            for i in range(n - 1, 0, -1):
                k = parent[i]
                jr[k] += jr[i]
                ji[k] += ji[i]
            loss = 0.0
            qloss = 0.0
            vm_out[t, 0] = np.sqrt(vr[0] * vr[0] + vi[0] * vi[0])
            va_out[t, 0] = np.arctan2(vi[0], vr[0])
            im_out[t, 0] = 0.0
            ps_out[t, 0] = 0.0
            qs_out[t, 0] = 0.0
            for i in range(1, n):
                k = parent[i]
                j2 = jr[i] * jr[i] + ji[i] * ji[i]
                loss += r[i] * j2
                qloss += x[i] * j2
                vm_out[t, i] = np.sqrt(vr[i] * vr[i] + vi[i] * vi[i])
                va_out[t, i] = np.arctan2(vi[i], vr[i])
                im_out[t, i] = np.sqrt(j2)
                # S_send = V_parent conj(J_i)
                ps_out[t, i] = vr[k] * jr[i] + vi[k] * ji[i]
                qs_out[t, i] = vi[k] * jr[i] - vr[k] * ji[i]
            loss_out[t] = loss
            qloss_out[t] = qloss
            if iters_out[t] < 0:
                for i in range(n):
                    vr[i] = v0
                    vi[i] = 0.0


@njit(parallel=True, cache=True)
def lindistflow(parent, r, x, p, q, v0, v2_out, pf_out, qf_out):  # type: ignore[no-untyped-def]
    """LinDistFlow for every step: squared voltage magnitudes and lossless branch flows (pu), in place.

    ``P_i = sum of loads downstream of (and at) bus i``; ``v_i^2 = v_parent^2 - 2 (r_i P_i + x_i Q_i)``.
    """
    n_steps, n = p.shape
    for t in prange(n_steps):
        for i in range(n):
            pf_out[t, i] = p[t, i]
            qf_out[t, i] = q[t, i]
        for i in range(n - 1, 0, -1):
            k = parent[i]
            pf_out[t, k] += pf_out[t, i]
            qf_out[t, k] += qf_out[t, i]
        v2_out[t, 0] = v0 * v0
        for i in range(1, n):
            k = parent[i]
            v2_out[t, i] = v2_out[t, k] - 2.0 * (r[i] * pf_out[t, i] + x[i] * qf_out[t, i])


@njit(cache=True, inline="always")
def _curve_q(v, cv, cq):  # type: ignore[no-untyped-def]
    """Piecewise-linear Q(V) [pu of rating], flat beyond the end points (cv non-decreasing)."""
    m = cv.shape[0]
    if v <= cv[0]:
        return cq[0]
    if v >= cv[m - 1]:
        return cq[m - 1]
    for k in range(m - 1):
        if v <= cv[k + 1]:
            span = cv[k + 1] - cv[k]
            if span <= 0.0:
                return cq[k + 1]
            return cq[k] + (cq[k + 1] - cq[k]) * (v - cv[k]) / span
    return cq[m - 1]


@njit(parallel=True, cache=True)
def sweep_voltvar(  # type: ignore[no-untyped-def]
    parent,
    r,
    x,
    p,
    q,
    p_inv,
    s_rated,
    cv,
    cq,
    var_priority,
    damping,
    v0,
    tol,
    max_iter,
    vr_out,
    vi_out,
    q_inv_out,
    p_inv_out,
    iters_out,
):
    """Exact radial power flow with volt-var inverters, the Q(V) update fused into the sweep iterations.

    Per step: each iteration updates the inverter set-points from the present voltages (damped), then does
    one backward/forward sweep; converged when both the voltage update and |Q_target - Q| fall below ``tol``
    (pu). The damping starts at ``damping`` and is halved whenever the residual stops shrinking. Steps
    start from the previous step's voltages and set-points.
    """
    n_steps, n = p.shape
    n_blocks = (n_steps + STEP_BLOCK - 1) // STEP_BLOCK
    for b in prange(n_blocks):
        t0 = b * STEP_BLOCK
        t1 = min(n_steps, t0 + STEP_BLOCK)
        vr = np.empty(n)
        vi = np.empty(n)
        jr = np.empty(n)
        ji = np.empty(n)
        qi = np.zeros(n)
        pi = np.zeros(n)
        pl = np.empty(n)
        ql = np.empty(n)
        for i in range(n):
            vr[i] = v0
            vi[i] = 0.0
        for t in range(t0, t1):
            for i in range(n):
                pi[i] = p_inv[t, i]
            iters_out[t] = -1
            a = damping
            dq_prev = np.inf
            for it in range(max_iter):
                # Set-points from the present voltages.
                dq = 0.0
                for i in range(n):
                    s = s_rated[t, i]
                    if s <= 0.0:
                        qi[i] = 0.0
                        pi[i] = p_inv[t, i]
                        continue
                    vm = np.sqrt(vr[i] * vr[i] + vi[i] * vi[i])
                    qt = _curve_q(vm, cv, cq) * s
                    pt = p_inv[t, i]
                    if var_priority:
                        pc = np.sqrt(max(s * s - qt * qt, 0.0))
                        if pt > pc:
                            pt = pc
                        elif pt < -pc:
                            pt = -pc
                    else:
                        qc = np.sqrt(max(s * s - pt * pt, 0.0))
                        if qt > qc:
                            qt = qc
                        elif qt < -qc:
                            qt = -qc
                    d = abs(qt - qi[i])
                    if d > dq:
                        dq = d
                    qi[i] += a * (qt - qi[i])
                    pi[i] += a * (pt - pi[i])
                # A residual that stops shrinking means the loop gain is too high for this step size:
                # halve it (a stiff Q(V) curve on a weak bus needs a small step).
                if dq > 0.95 * dq_prev and a > 1e-4:
                    a *= 0.5
                dq_prev = dq
                # One sweep with the loads and set-points.
                for i in range(n):
                    pl[i] = p[t, i] + pi[i]
                    ql[i] = q[t, i] - qi[i]
                dmax = _sweep_pass(parent, r, x, pl, ql, v0, vr, vi, jr, ji)
                if dmax != dmax or dmax > 1e6:
                    break
                if dmax < tol and dq < tol:
                    iters_out[t] = it + 1
                    break
            for i in range(n):
                vr_out[t, i] = vr[i]
                vi_out[t, i] = vi[i]
                q_inv_out[t, i] = qi[i]
                p_inv_out[t, i] = pi[i]
            if iters_out[t] < 0:
                for i in range(n):
                    vr[i] = v0
                    vi[i] = 0.0
                    qi[i] = 0.0
