"""A structure-exploiting interior-point method for the per-EV schedule LP of :mod:`v2gtwin.optimize.schedule`.

Why it is written here rather than left to a general LP solver: the fleet LP is N independent chains (one EV's
stored energy linked step to step) coupled only by the T import-cap rows — a block-angular LP. A general
solver factorises the whole normal-equation matrix with a general sparse ordering; HiGHS' interior-point
solvers took 51-118 s for 10,000 EVs x 96 steps on 2 cores (docs/markets.md). Here the normal-equation
matrix ``A Theta A^T`` is, per EV, tridiagonal; the cap rows are eliminated by a dense T x T Schur complement
(Schur-complement IPMs for block-angular LPs: Gondzio & Sarkissian, Math. Prog. 2003; Castro, SIAM J. Optim.
2000). One iteration costs O(sum_i K_i^2) for the Schur complement (K_i = steps EV i is plugged in) plus O(T^3).

The method is Mehrotra's predictor-corrector (Mehrotra, SIAM J. Optim. 2(4), 1992; Wright, *Primal-Dual
Interior-Point Methods*, SIAM 1997, ch. 10) for ``min c x  s.t.  A x = b, l <= x <= u`` with every variable
boxed; fixed variables (``l == u``) are held at their value. It declares optimality at relative primal and
dual infeasibility and relative duality gap below ``tol``; it reports failure (the caller then hands the LP to
HiGHS, which names what is infeasible) when that does not happen within ``max_iter`` iterations.

Layout: chain rows r = 0..R-1, EV i owning rows ``start[i] .. start[i] + length[i] - 1`` (its plugged steps in
order). Per row the variables charge ``c_r``, discharge ``d_r``, energy ``e_r``; row r reads
``e_r - e_{r-1} - alpha_r c_r + beta_r d_r = b_r``. Cap row j reads ``sum_{r: cap[r] = j} (c_r - d_r) + s_j = cap_j``
with a slack ``s_j >= 0``. The variable vector is ``[c (R), d (R), e (R), s (J)]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
import scipy.linalg
from numba import njit, prange

logger = logging.getLogger(__name__)

_STALL_ITER = 40
_ETA = 0.995  # fraction of the step to the boundary
_TOL_STALL = 1e-6  # accepted when the Newton step breaks down near the optimum (primal, dual, gap)
_PIVOT_TOL = 1e-14
_HUGE = 1e128
_HUGE_ROOT = 1e64

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ChainLP:
    """The block-angular LP (see the module docstring). All arrays per chain row unless said otherwise."""

    alpha: FloatArray
    beta: FloatArray
    first: npt.NDArray[np.bool_]  # the row is its EV's first (no e_{r-1})
    start: IntArray  # per EV
    length: IntArray  # per EV
    cap_index: IntArray  # cap row of the row's step, -1 when that step has no cap
    b_rows: FloatArray
    b_cap: FloatArray  # per cap row
    cost: FloatArray  # over the variable vector
    lower: FloatArray
    upper: FloatArray

    @property
    def n_rows(self) -> int:
        return int(self.alpha.size)

    @property
    def n_cap(self) -> int:
        return int(self.b_cap.size)


@dataclass(frozen=True)
class IpmResult:
    optimal: bool
    x: FloatArray
    objective: float
    iterations: int
    message: str
    accuracy: float = float("nan")


def _a_mul(lp: ChainLP, x: FloatArray) -> FloatArray:
    r = lp.n_rows
    c, d, e, s = x[:r], x[r : 2 * r], x[2 * r : 3 * r], x[3 * r :]
    e_prev = np.empty(r)
    if r:
        e_prev[0] = 0.0
        e_prev[1:] = e[:-1]
    e_prev[lp.first] = 0.0
    rows = e - e_prev - lp.alpha * c + lp.beta * d
    has = lp.cap_index >= 0
    cap = np.bincount(lp.cap_index[has], weights=(c - d)[has], minlength=lp.n_cap) + s
    return np.concatenate([rows, cap])


def _at_mul(lp: ChainLP, y: FloatArray) -> FloatArray:
    r = lp.n_rows
    yr, yc = y[:r], y[r:]
    ycap = np.zeros(r)
    has = lp.cap_index >= 0
    ycap[has] = yc[lp.cap_index[has]]
    y_next = np.zeros(r)
    if r:
        y_next[:-1] = yr[1:]
    last = np.zeros(r, dtype=bool)
    last[:-1] = lp.first[1:]
    if r:
        last[-1] = True
    y_next[last] = 0.0
    return np.concatenate([-lp.alpha * yr + ycap, lp.beta * yr - ycap, yr - y_next, yc])


@njit(cache=True)
def _factor_ev(diag: FloatArray, off: FloatArray, lo: int, n: int, dvec: FloatArray, lvec: FloatArray) -> None:
    """LDL' of one EV's tridiagonal block (rows lo .. lo+n-1): d_k, l_k (l_k = B[k, k-1] / d_{k-1})."""
    dvec[lo] = _pivot(diag[lo], diag[lo])
    for k in range(lo + 1, lo + n):
        lvec[k] = off[k] / dvec[k - 1]
        dvec[k] = _pivot(diag[k] - lvec[k] * off[k], diag[k])


@njit(cache=True, inline="always")
def _pivot(d: float, scale: float) -> float:
    """A pivot that has vanished by cancellation (the normal equations of a degenerate LP are singular near the
    optimum) is replaced by a huge number, which zeroes that component of the step — the usual safeguard of
    interior-point Cholesky factorisations (Wright 1997, sec. 11.1)."""
    if d <= _PIVOT_TOL * scale or d <= 1e-300:
        return _HUGE
    return d


@njit(cache=True)
def _cholesky_skip(a: FloatArray) -> FloatArray:
    """Lower Cholesky factor of the (positive semidefinite) Schur complement with the same safeguard."""
    n = a.shape[0]
    low = np.zeros((n, n))
    for j in range(n):
        d = a[j, j]
        for k in range(j):
            d -= low[j, k] * low[j, k]
        if d <= _PIVOT_TOL * abs(a[j, j]) or d <= 1e-300:
            low[j, j] = _HUGE_ROOT
            continue
        low[j, j] = np.sqrt(d)
        for i in range(j + 1, n):
            v = a[i, j]
            for k in range(j):
                v -= low[i, k] * low[j, k]
            low[i, j] = v / low[j, j]
    return low


@njit(parallel=True, cache=True)
def _factor_schur(
    diag: FloatArray,
    off: FloatArray,
    g: FloatArray,
    cap_index: IntArray,
    start: IntArray,
    length: IntArray,
    n_cap: int,
    n_chunks: int,
    dvec: FloatArray,
    lvec: FloatArray,
) -> FloatArray:
    """Factor every EV's block and return sum_i G_i B_i^-1 G_i' (n_cap x n_cap), G_i holding g at (cap, row)."""
    n_ev = start.size
    parts = np.zeros((n_chunks, n_cap, n_cap))
    for ch in prange(n_chunks):
        acc = parts[ch]
        kmax = 0
        for i in range(ch, n_ev, n_chunks):
            kmax = max(kmax, length[i])
        z = np.empty(kmax)
        for i in range(ch, n_ev, n_chunks):
            lo, n = start[i], length[i]
            if n == 0:
                continue
            _factor_ev(diag, off, lo, n, dvec, lvec)
            for j in range(n):
                cj = cap_index[lo + j]
                if cj < 0 or g[lo + j] == 0.0:
                    continue
                # z = B^-1 (g_j e_j): forward from j, then divide, then back over all rows.
                for k in range(j):
                    z[k] = 0.0
                z[j] = g[lo + j]
                for k in range(j + 1, n):
                    z[k] = -lvec[lo + k] * z[k - 1]
                for k in range(j, n):
                    z[k] /= dvec[lo + k]
                for k in range(n - 2, -1, -1):
                    z[k] -= lvec[lo + k + 1] * z[k + 1]
                for k in range(n):
                    ck = cap_index[lo + k]
                    if ck >= 0:
                        acc[ck, cj] += g[lo + k] * z[k]
    out = np.zeros((n_cap, n_cap))
    for ch in range(n_chunks):
        out += parts[ch]
    return out


@njit(parallel=True, cache=True)
def _solve_blocks(dvec: FloatArray, lvec: FloatArray, start: IntArray, length: IntArray, rhs: FloatArray) -> FloatArray:
    """B^-1 rhs with the per-EV LDL' factors."""
    out = rhs.copy()
    for i in prange(start.size):
        lo, n = start[i], length[i]
        for k in range(lo + 1, lo + n):
            out[k] -= lvec[k] * out[k - 1]
        for k in range(lo, lo + n):
            out[k] /= dvec[k]
        for k in range(lo + n - 2, lo - 1, -1):
            out[k] -= lvec[k + 1] * out[k + 1]
    return out


class _NormalEquations:
    """``A Theta A'`` for one Theta, factored: per-EV tridiagonal LDL' plus the Cholesky factor of the Schur
    complement on the cap rows."""

    def __init__(self, lp: ChainLP, theta: FloatArray, n_chunks: int) -> None:
        r = lp.n_rows
        tc, td, te, ts = theta[:r], theta[r : 2 * r], theta[2 * r : 3 * r], theta[3 * r :]
        te_prev = np.zeros(r)
        if r:
            te_prev[1:] = te[:-1]
        te_prev[lp.first] = 0.0
        diag = te + te_prev + lp.alpha**2 * tc + lp.beta**2 * td
        # A row whose variables are all fixed would make B singular; such a row's dual is arbitrary, hold it.
        diag[diag <= 0.0] = 1.0
        off = -te_prev
        self.lp = lp
        self.has = lp.cap_index >= 0
        self.g = np.where(self.has, -(lp.alpha * tc + lp.beta * td), 0.0)
        self.dvec = np.empty(r)
        self.lvec = np.zeros(r)
        schur = _factor_schur(
            diag, off, self.g, lp.cap_index, lp.start, lp.length, lp.n_cap, n_chunks, self.dvec, self.lvec
        )
        d_cap = np.bincount(lp.cap_index[self.has], weights=(tc + td)[self.has], minlength=lp.n_cap) + ts
        s = np.diag(d_cap) - schur
        s = 0.5 * (s + s.T)
        self.chol = _cholesky_skip(s)

    def solve(self, rhs: FloatArray) -> FloatArray:
        lp = self.lp
        r = lp.n_rows
        rr, rc = rhs[:r], rhs[r:]
        t1 = _solve_blocks(self.dvec, self.lvec, lp.start, lp.length, rr)
        if lp.n_cap == 0:
            return t1
        rc2 = rc - np.bincount(lp.cap_index[self.has], weights=(self.g * t1)[self.has], minlength=lp.n_cap)
        yc = scipy.linalg.solve_triangular(self.chol, rc2, lower=True, check_finite=False)
        yc = scipy.linalg.solve_triangular(self.chol.T, yc, lower=False, check_finite=False)
        gty = np.zeros(r)
        gty[self.has] = self.g[self.has] * yc[lp.cap_index[self.has]]
        yr = _solve_blocks(self.dvec, self.lvec, lp.start, lp.length, rr - gty)
        return np.concatenate([yr, yc])


def _max_step(v: FloatArray, dv: FloatArray) -> float:
    """Largest a in (0, 1] with v + a dv >= 0 (v > 0)."""
    neg = dv < 0
    if not neg.any():
        return 1.0
    return float(min(1.0, np.min(-v[neg] / dv[neg])))


@dataclass
class _Point:
    """One interior point and the quantities of one iteration that both Newton solves share."""

    lp: ChainLP
    free: npt.NDArray[np.bool_]
    x: FloatArray
    y: FloatArray
    z: FloatArray
    w: FloatArray
    dl: FloatArray  # x - l (1 for fixed variables)
    du: FloatArray  # u - x
    rp: FloatArray  # b - A x
    rd: FloatArray  # c - A'y - z + w
    ne: _NormalEquations | None = None
    theta: FloatArray | None = None

    def direction(self, r_zl: FloatArray, r_wu: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Newton direction for complementarity right-hand sides ``r_zl`` (lower) and ``r_wu`` (upper)."""
        assert self.ne is not None and self.theta is not None
        r_hat = self.rd - r_zl / self.dl + r_wu / self.du
        dy = self.ne.solve(self.rp + _a_mul(self.lp, self.theta * r_hat))
        dx = self.theta * (_at_mul(self.lp, dy) - r_hat)
        dz = np.where(self.free, (r_zl - self.z * dx) / self.dl, 0.0)
        dw = np.where(self.free, (r_wu + self.w * dx) / self.du, 0.0)
        return dx, dy, dz, dw

    def steps(self, dx: FloatArray, dz: FloatArray, dw: FloatArray) -> tuple[float, float]:
        f = self.free
        ap = min(_max_step(self.dl[f], dx[f]), _max_step(self.du[f], -dx[f]))
        ad = min(_max_step(self.z[f], dz[f]), _max_step(self.w[f], dw[f]))
        return ap, ad


def solve_chain_lp(lp: ChainLP, *, tol: float = 1e-8, max_iter: int = 100, n_chunks: int | None = None) -> IpmResult:
    """Mehrotra predictor-corrector on the block-angular LP (see the module docstring). ``n_chunks``: EV
    blocks factored in parallel (default: numba's thread count)."""
    if n_chunks is None:
        n_chunks = max(1, int(numba.get_num_threads()))
    c, lo, up = lp.cost, lp.lower, lp.upper
    b = np.concatenate([lp.b_rows, lp.b_cap])
    free = up - lo > 1e-9
    x = np.where(free, 0.5 * (lo + up), lo)
    # Start the bound duals at the cost's scale so that the initial dual residual is not dominated by them.
    scale = max(float(np.abs(c).max()) if c.size else 1.0, 1e-6)
    z = np.where(free, scale, 0.0)
    w = np.where(free, scale, 0.0)
    y = np.zeros(b.size)
    with np.errstate(all="ignore"):
        return _iterate(lp, x, y, z, w, free, tol, max_iter, n_chunks)


def _iterate(
    lp: ChainLP,
    x: FloatArray,
    y: FloatArray,
    z: FloatArray,
    w: FloatArray,
    free: npt.NDArray[np.bool_],
    tol: float,
    max_iter: int,
    n_chunks: int,
) -> IpmResult:
    c, lo, up = lp.cost, lp.lower, lp.upper
    b = np.concatenate([lp.b_rows, lp.b_cap])
    nf = max(int(free.sum()), 1)
    norm_b = 1.0 + (float(np.abs(b).max()) if b.size else 0.0)
    norm_c = 1.0 + (float(np.abs(c).max()) if c.size else 0.0)
    message = "iteration limit"
    accuracy = float("inf")
    for it in range(1, max_iter + 1):
        dl = np.where(free, x - lo, 1.0)
        du = np.where(free, up - x, 1.0)
        aty = _at_mul(lp, y)
        pt = _Point(lp, free, x, y, z, w, dl, du, b - _a_mul(lp, x), np.where(free, c - aty - z + w, 0.0))
        mu = float((dl * z + du * w)[free].sum()) / (2 * nf)
        pobj = float(c @ x)
        dobj = float(b @ y + (lo * z - up * w)[free].sum() + (lo * (c - aty))[~free].sum())
        p_inf = float(np.abs(pt.rp).max()) / norm_b if pt.rp.size else 0.0
        d_inf = float(np.abs(pt.rd).max()) / norm_c if pt.rd.size else 0.0
        gap = abs(pobj - dobj) / (1.0 + abs(pobj))
        logger.debug("IPM %3d pobj %.10e dobj %.10e pinf %.1e dinf %.1e gap %.1e", it, pobj, dobj, p_inf, d_inf, gap)
        accuracy = max(p_inf, d_inf, gap)
        if p_inf < tol and d_inf < tol and gap < tol:
            return IpmResult(True, x, pobj, it - 1, "optimal", accuracy)
        if not (np.isfinite(mu) and np.isfinite(pobj) and np.isfinite(dobj)) or mu > 1e30:
            message = "diverged (the LP is probably infeasible)"
            break
        if it > _STALL_ITER and p_inf > 1e-6:
            # A feasible schedule LP is primal feasible to this level long before; an infeasible one never is.
            message = f"primal infeasibility {p_inf:.1e} after {it - 1} iterations (the LP is probably infeasible)"
            break
        pt.theta = np.divide(1.0, z / dl + w / du, out=np.zeros_like(x), where=free)
        pt.ne = _NormalEquations(lp, pt.theta, n_chunks)
        # Predictor (affine scaling), then Mehrotra's corrector with centring sigma = (mu_aff / mu)^3.
        dx, dy, dz, dw = pt.direction(-dl * z, -du * w)
        ap, ad = pt.steps(dx, dz, dw)
        mu_aff = float(((dl + ap * dx) * (z + ad * dz) + (du - ap * dx) * (w + ad * dw))[free].sum()) / (2 * nf)
        sigma = min((mu_aff / mu) ** 3, 1.0) if mu > 0 else 0.0
        dx, dy, dz, dw = pt.direction(sigma * mu - dl * z - dx * dz, sigma * mu - du * w + dx * dw)
        if not (np.isfinite(dx).all() and np.isfinite(dy).all()):
            if p_inf < _TOL_STALL and d_inf < _TOL_STALL and gap < _TOL_STALL:
                # Near the optimum of a degenerate LP the normal equations become singular: the iterate is
                # primal and dual feasible and the gap small, but not below tol. Named in the result.
                msg = f"optimal to {accuracy:.1e} (the Newton step broke down before {tol:.0e})"
                return IpmResult(True, x, pobj, it - 1, msg, accuracy)
            message = "numerical failure in the Newton step (the LP is probably infeasible)"
            break
        ap, ad = pt.steps(dx, dz, dw)
        x = x + _ETA * ap * dx
        y = y + _ETA * ad * dy
        z = z + _ETA * ad * dz
        w = w + _ETA * ad * dw
    return IpmResult(False, x, float(c @ x), it, message, accuracy)
