"""State equations of the empirical ageing trajectories, stepped one duty period at a time.

An empirical ageing model gives a trajectory at constant stress, e.g. ``y = k x^p`` with ``x`` the time or the
charge throughput. When stress changes from one period to the next, the state ``y`` is carried forward with
the trajectory's slope at the *equivalent* ``x`` that gives the present ``y`` under the present rate ``k``
(explicit Euler on the state equation ``dy/dx = f(y; k)``); the first step from a fresh cell (``y = 0``) uses
the trajectory itself. This is how NREL's BLAST-Lite accumulates degradation (Smith et al. 2017), and the
functions here follow that structure so that the twin and BLAST-Lite agree step by step.

Because the trajectories are concave, the Euler step from the tangent overestimates the exact trajectory a
little; at constant stress with daily steps the excess is below 0.5 % of the loss after a year (see
``tests/battery/test_degradation.py``, which bounds it against the closed form).

References
----------
K. Smith, A. Saxon, M. Keyser, B. Lundstrom, Z. Cao, A. Roc, "Life prediction model for grid-connected Li-ion
battery energy storage system", 2017 American Control Conference, pp. 4062-4068, doi:10.23919/ACC.2017.7963578
(state-equation form of the trajectories).
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["step_power_b_state", "step_power_state", "step_sigmoid_state"]


@njit(cache=True)
def step_power_state(y0: float, dx: float, k: float, p: float) -> float:
    """Increment of a power-law state ``y = k x^p`` over ``dx``.

    Parameters
    ----------
    y0 : present state [-].
    dx : increment of the independent variable (days, Ah, cycles) [unit of x].
    k : rate of the trajectory [1/unit of x^p].
    p : exponent [-].

    Returns
    -------
    float
        ``dy``: ``k dx^p`` from a fresh state, else ``k p (y0/k)^((p-1)/p) dx`` (the slope at the equivalent
        ``x``); 0 when ``dx`` or ``k`` is 0.
    """
    if dx == 0.0 or k == 0.0:
        return 0.0
    if y0 == 0.0:
        return k * dx**p
    return k * p * (y0 / k) ** ((p - 1.0) / p) * dx


@njit(cache=True)
def step_power_b_state(y0: float, dx: float, k: float, p: float) -> float:
    """Increment of a power-law state ``y = (k x)^p`` over ``dx``: ``(k dx)^p`` from a fresh state, else
    ``p k y0^(1 - 1/p) dx`` (the slope ``p (k z)^p / z`` at the equivalent ``z = y0^(1/p)/k``) [-]."""
    if dx == 0.0 or k == 0.0:
        return 0.0
    if y0 == 0.0:
        return (k * dx) ** p
    return p * k * y0 ** (1.0 - 1.0 / p) * dx


@njit(cache=True)
def step_sigmoid_state(y0: float, dx: float, y_inf: float, k: float, p: float) -> float:
    """Increment of a sigmoid state ``y = 2 y_inf (1/2 - 1/(1 + exp((k x)^p)))`` over ``dx``.

    From a fresh state the trajectory itself; else the slope at the equivalent ``x``, which with
    ``L = ln((y_inf + y0)/(y_inf - y0)) = (k x)^p`` is ``p k (y_inf^2 - y0^2) / (2 y_inf) L^(1 - 1/p)``
    (algebraically the same as the form written with ``x_inv`` and ``exp(z)``). A state at or beyond its
    asymptote ``y_inf`` does not grow (the exact trajectory never reaches it; only an Euler overshoot could).
    """
    if dx == 0.0 or y_inf == 0.0:
        return 0.0
    if y0 == 0.0:
        return 2.0 * y_inf * (0.5 - 1.0 / (1.0 + math.exp((k * dx) ** p)))
    if y0 >= y_inf:
        return 0.0
    big_l = math.log((y_inf + y0) / (y_inf - y0))
    return p * k * (y_inf * y_inf - y0 * y0) / (2.0 * y_inf) * big_l ** (1.0 - 1.0 / p) * dx
