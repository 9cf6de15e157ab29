"""Numba kernels of the radial power flow (hand-written: the speed of the feeder studies is the product's own
value; see docs/feeder.md for the measured comparison with OpenDSS and pandapower).

Buses are in topological order: ``parent[i] < i`` for every bus ``i >= 1``, bus 0 is the source. Branch ``i``
joins ``parent[i]`` to ``i`` with series impedance ``r_pu[i] + j x_pu[i]``. Loads are per unit of the
feeder's power base, positive = consumption, shaped (n_steps, n_bus).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Time steps per parallel block; within a block, the solution of one step (or group of steps) is the starting
#: point of the next.
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


# Cephes' atan (S. L. Moshier, Cephes Mathematical Library, atan.c): range reduction to |t| <= 0.66 and a
# (4, 5) rational approximation; relative error about 1e-16. Written without branches (selects only) so that
# loops over it compile to SIMD instructions, which a call to the C library's atan2 prevents.
_T3P8 = 2.41421356237309504880  # tan(3 pi / 8)
_MOREBITS = 6.123233995736765886130e-17  # pi / 2 - double(pi / 2)
_ATAN_P = (
    -8.750608600031904122785e-1,
    -1.615753718733365076637e1,
    -7.500855792314704667340e1,
    -1.228866684490136173410e2,
    -6.485021904942025371773e1,
)
_ATAN_Q = (
    2.485846490142306297962e1,
    1.650270098316988542046e2,
    4.328810604912902668951e2,
    4.853903996359136964868e2,
    1.945506571482613964425e2,
)


@njit(cache=True, inline="always", error_model="numpy")
def atan2(y, x):  # type: ignore[no-untyped-def]
    """``atan2(y, x)`` [rad] within 2 ulp of the C library's (branch-free; NaN for y = x = 0)."""
    ay = abs(y)
    ax = abs(x)
    big = ay > _T3P8 * ax
    mid = ay > 0.66 * ax
    num = -ax if big else (ay - ax if mid else ay)
    den = ay if big else (ay + ax if mid else ax)
    t = num / den
    a0 = np.pi / 2 if big else (np.pi / 4 if mid else 0.0)
    extra = _MOREBITS if big else (0.5 * _MOREBITS if mid else 0.0)
    z = t * t
    p = (((_ATAN_P[0] * z + _ATAN_P[1]) * z + _ATAN_P[2]) * z + _ATAN_P[3]) * z + _ATAN_P[4]
    q = ((((z + _ATAN_Q[0]) * z + _ATAN_Q[1]) * z + _ATAN_Q[2]) * z + _ATAN_Q[3]) * z + _ATAN_Q[4]
    a = a0 + (t * (z * p / q) + t + extra)
    a = np.pi - a if x < 0.0 else a
    return -a if y < 0.0 else a


#: Most steps solved side by side: the bus loops run over up to this many steps at once (the innermost loop,
#: contiguous in memory), which the compiler turns into SIMD instructions.
LANES = 32


@njit(cache=True, error_model="numpy")
def _branch_currents_lanes(parent, pl, ql, vr, vi, jr, ji):  # type: ignore[no-untyped-def]
    """Branch currents J of the voltages (vr, vi), all lanes, in place on (jr, ji): each bus's load current
    I = conj(S / V) = conj(S) V / |V|^2, summed over the subtree fed by each branch (pu)."""
    n, w = pl.shape
    for i in range(n):
        for lane in range(w):
            a = vr[i, lane]
            b = vi[i, lane]
            inv = 1.0 / (a * a + b * b)
            jr[i, lane] = (pl[i, lane] * a + ql[i, lane] * b) * inv
            ji[i, lane] = (pl[i, lane] * b - ql[i, lane] * a) * inv
    for i in range(n - 1, 0, -1):
        k = parent[i]
        for lane in range(w):
            jr[k, lane] += jr[i, lane]
            ji[k, lane] += ji[i, lane]


@njit(cache=True, error_model="numpy")
def _sweep_lanes(parent, r, x, pl, ql, v0, tol, max_iter, vr, vi, jr, ji, d, iters):  # type: ignore[no-untyped-def]
    """Backward/forward sweep of W steps side by side (the lanes), in place on (vr, vi) shaped (n_bus, W).

    Each lane (step) iterates until its own largest voltage update ``|dVr| + |dVi|`` is below ``tol``;
    ``iters[l]`` is the iteration count at which lane ``l`` converged, or -1 (not within ``max_iter``, or
    diverged: a non-finite or huge update). Lanes that converged early keep iterating with the others, which
    only brings them closer to the solution. Every loop over buses runs over the lanes innermost, so that it
    compiles to SIMD instructions.
    """
    n, w = pl.shape
    for lane in range(w):
        iters[lane] = -1
    for it in range(max_iter):
        # Backward sweep: load currents, summed towards the source.
        _branch_currents_lanes(parent, pl, ql, vr, vi, jr, ji)
        # Forward sweep: V_i = V_parent - Z_i J_i.
        for lane in range(w):
            d[lane] = 0.0
            vr[0, lane] = v0
            vi[0, lane] = 0.0
        for i in range(1, n):
            k = parent[i]
            ri = r[i]
            xi = x[i]
            for lane in range(w):
                nr = vr[k, lane] - (ri * jr[i, lane] - xi * ji[i, lane])
                ni = vi[k, lane] - (ri * ji[i, lane] + xi * jr[i, lane])
                dd = abs(nr - vr[i, lane]) + abs(ni - vi[i, lane])
                # NaN-propagating maximum: a NaN update marks the lane as diverged, never as converged.
                d[lane] = d[lane] if dd <= d[lane] else dd
                vr[i, lane] = nr
                vi[i, lane] = ni
        done = True
        for lane in range(w):
            if iters[lane] == -1:
                if d[lane] < tol:
                    iters[lane] = it + 1
                elif not d[lane] <= 1e6:
                    iters[lane] = -2
                else:
                    done = False
        if done:
            break
    for lane in range(w):
        if iters[lane] < 0:
            iters[lane] = -1


@njit(cache=True, error_model="numpy")
def _sweep_single(  # type: ignore[no-untyped-def]
    parent, r, x, p_kw, q_kvar, t, s_base_kva, i_base_a, v0, tol, max_iter, vm_out, va_out, im_out, ps_out, qs_out
):
    """One step ``t`` alone from a flat start (bus by bus, no lanes: faster for one step of a large feeder);
    returns (iterations or -1, active and reactive losses [pu], summed loads [pu])."""
    n = parent.shape[0]
    inv_s = 1.0 / s_base_kva
    vr = np.full(n, v0)
    vi = np.zeros(n)
    jr = np.empty(n)
    ji = np.empty(n)
    pl = np.empty(n)
    ql = np.empty(n)
    pl[0] = 0.0
    ql[0] = 0.0
    psum = 0.0
    qsum = 0.0
    for i in range(1, n):
        pl[i] = p_kw[t, i] * inv_s
        ql[i] = q_kvar[t, i] * inv_s
        psum += pl[i]
        qsum += ql[i]
    iters = _sweep_one(parent, r, x, pl, ql, v0, tol, max_iter, vr, vi, jr, ji)
    # Branch currents of the final voltages (one more backward sweep keeps J consistent with V).
    for i in range(n):
        m2 = vr[i] * vr[i] + vi[i] * vi[i]
        jr[i] = (pl[i] * vr[i] + ql[i] * vi[i]) / m2
        ji[i] = (pl[i] * vi[i] - ql[i] * vr[i]) / m2
    for i in range(n - 1, 0, -1):
        k = parent[i]
        jr[k] += jr[i]
        ji[k] += ji[i]
    loss = 0.0
    qloss = 0.0
    rad2deg = 180.0 / np.pi
    vm_out[t, 0] = np.sqrt(vr[0] * vr[0] + vi[0] * vi[0])
    va_out[t, 0] = atan2(vi[0], vr[0]) * rad2deg
    im_out[t, 0] = 0.0
    ps_out[t, 0] = 0.0
    qs_out[t, 0] = 0.0
    for i in range(1, n):
        k = parent[i]
        j2 = jr[i] * jr[i] + ji[i] * ji[i]
        loss += r[i] * j2
        qloss += x[i] * j2
        vm_out[t, i] = np.sqrt(vr[i] * vr[i] + vi[i] * vi[i])
        va_out[t, i] = atan2(vi[i], vr[i]) * rad2deg
        im_out[t, i] = np.sqrt(j2) * i_base_a
        ps_out[t, i] = (vr[k] * jr[i] + vi[k] * ji[i]) * s_base_kva
        qs_out[t, i] = (vi[k] * jr[i] - vr[k] * ji[i]) * s_base_kva
    return iters, loss, qloss, psum, qsum


@njit(parallel=True, cache=True, error_model="numpy")
def sweep(  # type: ignore[no-untyped-def]
    parent,
    r,
    x,
    p_kw,
    q_kvar,
    s_base_kva,
    i_base_a,
    v0,
    tol,
    max_iter,
    vm_out,
    va_out,
    im_out,
    ps_out,
    qs_out,
    loss_out,
    qloss_out,
    psrc_out,
    qsrc_out,
    iters_out,
):
    """Exact radial AC power flow for every step, results written in place in engineering units.

    Loads ``p_kw``, ``q_kvar`` (n_steps, n_bus) [kW], [kvar] (bus 0's entries ignored); ``r``, ``x`` in pu of
    the feeder's impedance base; ``v0`` and ``tol`` in pu. Out: voltage magnitude [pu] and angle [deg],
    branch current magnitude [A], power entering each branch at its sending end [kW], [kvar], the step's
    active / reactive losses and source power [kW], [kvar], iterations (-1: not converged).

    Steps are solved in groups of up to ``LANES`` side by side (:func:`_sweep_lanes`); blocks of
    ``STEP_BLOCK`` steps run in parallel. A block's first group starts flat, every later group from the
    solution of the step just before it. A step that does not converge is retried alone from a flat start.
    """
    n_steps, n = p_kw.shape
    n_blocks = (n_steps + STEP_BLOCK - 1) // STEP_BLOCK
    inv_s = 1.0 / s_base_kva
    rad2deg = 180.0 / np.pi
    for b in prange(n_blocks):
        t0 = b * STEP_BLOCK
        t1 = min(n_steps, t0 + STEP_BLOCK)
        wmax = min(LANES, t1 - t0)
        if wmax == 1:
            it1, loss, qloss, psum, qsum = _sweep_single(
                parent,
                r,
                x,
                p_kw,
                q_kvar,
                t0,
                s_base_kva,
                i_base_a,
                v0,
                tol,
                max_iter,
                vm_out,
                va_out,
                im_out,
                ps_out,
                qs_out,
            )
            iters_out[t0] = it1
            loss_out[t0] = loss * s_base_kva
            qloss_out[t0] = qloss * s_base_kva
            psrc_out[t0] = (psum + loss) * s_base_kva
            qsrc_out[t0] = (qsum + qloss) * s_base_kva
            continue
        vr = np.empty((n, wmax))
        vi = np.empty((n, wmax))
        jr = np.empty((n, wmax))
        ji = np.empty((n, wmax))
        pl = np.zeros((n, wmax))
        ql = np.zeros((n, wmax))
        d = np.empty(wmax)
        it = np.empty(wmax, dtype=np.int64)
        sr = np.empty(n)
        si = np.empty(n)
        sjr = np.empty(n)
        sji = np.empty(n)
        spl = np.empty(n)
        sql = np.empty(n)
        start_r = np.full(n, v0)
        start_i = np.zeros(n)
        tm = np.empty((n, wmax))
        ta = np.empty((n, wmax))
        ti = np.empty((n, wmax))
        tp = np.empty((n, wmax))
        tq = np.empty((n, wmax))
        loss_l = np.empty(wmax)
        qloss_l = np.empty(wmax)
        psum_l = np.empty(wmax)
        qsum_l = np.empty(wmax)
        for g in range(t0, t1, wmax):
            w = min(wmax, t1 - g)
            for lane in range(wmax):
                t = g + min(lane, w - 1)  # a short last group repeats its last step in the spare lanes
                for i in range(1, n):
                    pl[i, lane] = p_kw[t, i] * inv_s
                    ql[i, lane] = q_kvar[t, i] * inv_s
            for i in range(n):
                for lane in range(wmax):
                    vr[i, lane] = start_r[i]
                    vi[i, lane] = start_i[i]
            _sweep_lanes(parent, r, x, pl, ql, v0, tol, max_iter, vr, vi, jr, ji, d, it)
            for lane in range(w):
                if it[lane] < 0:
                    # Retry this step alone from a flat start before giving up on it.
                    for i in range(n):
                        sr[i] = v0
                        si[i] = 0.0
                        spl[i] = pl[i, lane]
                        sql[i] = ql[i, lane]
                    it[lane] = _sweep_one(parent, r, x, spl, sql, v0, tol, max_iter, sr, si, sjr, sji)
                    for i in range(n):
                        vr[i, lane] = sr[i]
                        vi[i, lane] = si[i]
            # Branch currents of the final voltages (one more backward sweep keeps J consistent with V).
            _branch_currents_lanes(parent, pl, ql, vr, vi, jr, ji)
            # Outputs, all lanes at once (SIMD), then copied step by step into the (n_steps, n_bus) arrays.
            for lane in range(wmax):
                a = vr[0, lane]
                c = vi[0, lane]
                tm[0, lane] = np.sqrt(a * a + c * c)
                ta[0, lane] = atan2(c, a) * rad2deg
                ti[0, lane] = 0.0
                tp[0, lane] = 0.0
                tq[0, lane] = 0.0
                loss_l[lane] = 0.0
                qloss_l[lane] = 0.0
                psum_l[lane] = 0.0
                qsum_l[lane] = 0.0
            # (Short loops with few arrays each: the compiler vectorises them, it gives up on one long loop.)
            for i in range(1, n):
                for lane in range(wmax):
                    a = vr[i, lane]
                    c = vi[i, lane]
                    tm[i, lane] = np.sqrt(a * a + c * c)
                    ta[i, lane] = atan2(c, a) * rad2deg
            for i in range(1, n):
                ri = r[i]
                xi = x[i]
                for lane in range(wmax):
                    cr = jr[i, lane]
                    ci = ji[i, lane]
                    j2 = cr * cr + ci * ci
                    ti[i, lane] = np.sqrt(j2) * i_base_a
                    loss_l[lane] += ri * j2
                    qloss_l[lane] += xi * j2
            for i in range(1, n):
                k = parent[i]
                for lane in range(wmax):
                    # S_send = V_parent conj(J_i)
                    cr = jr[i, lane]
                    ci = ji[i, lane]
                    tp[i, lane] = (vr[k, lane] * cr + vi[k, lane] * ci) * s_base_kva
                    tq[i, lane] = (vi[k, lane] * cr - vr[k, lane] * ci) * s_base_kva
            for i in range(1, n):
                for lane in range(wmax):
                    psum_l[lane] += pl[i, lane]
                    qsum_l[lane] += ql[i, lane]
            for lane in range(w):
                t = g + lane
                for i in range(n):
                    vm_out[t, i] = tm[i, lane]
                    va_out[t, i] = ta[i, lane]
                    im_out[t, i] = ti[i, lane]
                    ps_out[t, i] = tp[i, lane]
                    qs_out[t, i] = tq[i, lane]
                loss_out[t] = loss_l[lane] * s_base_kva
                qloss_out[t] = qloss_l[lane] * s_base_kva
                psrc_out[t] = (psum_l[lane] + loss_l[lane]) * s_base_kva
                qsrc_out[t] = (qsum_l[lane] + qloss_l[lane]) * s_base_kva
                iters_out[t] = it[lane]
            # The next group starts from the last solved step (flat when that step failed).
            last = w - 1
            for i in range(n):
                if it[last] >= 0:
                    start_r[i] = vr[i, last]
                    start_i[i] = vi[i, last]
                else:
                    start_r[i] = v0
                    start_i[i] = 0.0


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
