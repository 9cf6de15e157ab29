"""The measured OCPP segment: real SetChargingProfile round trips between the central system and a simulated
station through the shaping proxy, at several one-way delays and loss rates, and the path segment fitted to them.

Measurement
-----------
The central system (:class:`~v2gtwin.cyber.csms.server.Csms`, SQLite store in a temporary directory) and one
simulated OCPP 2.0.1 station (:func:`~v2gtwin.cyber.csms.simulator.run_station`) run in one event loop on
loopback; the station connects through a :class:`~v2gtwin.cyber.shaping.ShapingProxy` that adds the one-way
delay ``d`` in each direction and emulates the loss ``p`` (a lost TCP segment is held for one retransmission
time-out, RTO, doubling on each repeated loss; see :mod:`v2gtwin.cyber.shaping`). The aggregator's dispatch
path, :meth:`Csms.dispatch`, sends ``n_exchanges`` set-points one after the other; each exchange's
``latency_s`` (request out, ``Accepted`` back, timed by the central system) is one round trip ``R``. The kernel
here has no ``netem``, so the proxy, not ``tc``, shapes the link; loss is therefore the proxy's emulation of
TCP's retransmission delay, not a real drop.

Model (one traversal = one segment)
-----------------------------------
A round trip is two traversals of the same segment (command out, acknowledgement back over the same link)

.. math::

    R = 2 k d + c + X_1 + X_2,

with ``k`` the fitted delay factor (1 for a proxy that adds exactly ``d``), ``c`` the round trip's fixed
overhead at ``d = 0`` (both ends' processing and the proxy's loopback hops), and ``X`` the random part of one
traversal. The fit (least squares on the loss-free points, except a held-out delay) takes ``2k`` and ``c`` as
slope and intercept of each point's 5th-percentile round trip against ``d``; the random part without loss is
what remains above that line, per fitted delay (the scatter grows with the delay; pooling it over all delays
overpredicted the tail at the small delays, e.g. a 95th percentile of 11.2 ms for 0.55 ms measured at 0 ms):
its mean ``m(d)`` and variance ``v(d)`` per round trip, interpolated linearly between the fitted delays, give
per traversal the mean ``m(d) / 2`` and variance ``v(d) / 2``. Loss adds per traversal the hold
``H = RTO (2^M - 1)``, ``M`` geometric with ``P(M = m) = (1 - p) p^m``:

.. math::

    E[H] = \\mathrm{RTO}\\, \\frac{p}{1 - 2p}, \\qquad
    E[H^2] = \\mathrm{RTO}^2 \\left(\\frac{1 - p}{1 - 4p} - 2\\frac{1 - p}{1 - 2p} + 1\\right) \\quad (p < 1/4).

The segment at ``(d, p)``: ``fixed_s = k d``, ``processing_s = c / 2``, random part a gamma distribution with
the mean and variance of ``X`` (moment matching), ``p_success`` the share of attempts answered within the
dispatch time-out. Its predicted round trip (two traversals) is set beside the measurement at every measured
point; the loss rows are predictions (the fit uses no lossy point).

References
----------
.. [1] V. Paxson et al., "Computing TCP's Retransmission Timer", RFC 6298, 2011 (§5.5 back-off by doubling).
.. [2] Open Charge Alliance, OCPP 2.0.1 Part 4, JSON over WebSocket (one CALL, one CALLRESULT per exchange).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path as FsPath
from typing import Any

import numpy as np

from v2gtwin.cyber.netns import VethPair, run_in_netns_thread, veth_namespaces
from v2gtwin.cyber.path import Path, Segment, calc_attempt_grid
from v2gtwin.cyber.shaping import LINUX_RTO_MIN_S, ShapingProxy
from v2gtwin.errors import DataError

__all__ = [
    "DEFAULT_POINTS",
    "OcppFit",
    "OcppPoint",
    "calc_hold_moments",
    "calc_round_trip_quantiles_s",
    "fit_ocpp_segment",
    "measure_ocpp_segment",
    "run_ocpp_round_trips",
]

logger = logging.getLogger(__name__)

DEFAULT_POINTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.02, 0.0),
    (0.05, 0.0),
    (0.1, 0.0),
    (0.02, 0.01),
    (0.02, 0.05),
)
"""Measured (one-way delay [s], loss [-]) points of ``v2gtwin cyber path --measure``."""

_SET_POINT_W = 7400.0  # the dispatched set-point: 32 A on one 230-V phase; its value does not matter here


@dataclass(frozen=True)
class OcppPoint:
    """Round trips measured at one shaping point.

    Attributes
    ----------
    delay_s : float
        One-way delay the proxy added in each direction [s].
    loss : float
        Loss probability per transmission the proxy emulated [-].
    rto_s : float
        Initial retransmission time-out of the emulation [s].
    rtt_s : tuple of float
        Round trip of each exchange answered in time (dispatch's ``latency_s``) [s].
    n_attempts : int
        Exchanges attempted [-].
    n_losses : int
        Losses the proxy emulated (both directions, the station's connection and boot included) [-].
    """

    delay_s: float
    loss: float
    rto_s: float
    rtt_s: tuple[float, ...]
    n_attempts: int
    n_losses: int

    @property
    def p_success(self) -> float:
        """Share of attempts answered within the time-out [-]."""
        return len(self.rtt_s) / self.n_attempts if self.n_attempts else 0.0


def _check_point(delay_s: float, loss: float) -> None:
    if not (math.isfinite(delay_s) and delay_s >= 0.0):
        raise DataError(f"delay_s must be a finite number >= 0 s (got {delay_s})")
    if not (math.isfinite(loss) and 0.0 <= loss < 0.25):
        raise DataError(f"loss must be in [0, 0.25) (the hold's variance is infinite from 1/4; got {loss})")


async def _measure_point(
    csms: Any, k: int, delay_s: float, loss: float, n_exchanges: int, rto_s: float | None, seed: int, timeout_s: float
) -> OcppPoint:
    """``n_exchanges`` dispatches to a fresh station connected through a fresh proxy at (delay_s, loss)."""
    from v2gtwin.cyber.csms.simulator import run_station

    station_id = f"SEG-{k:03d}"
    async with ShapingProxy(
        ("127.0.0.1", 0), ("127.0.0.1", csms.port), delay_s=delay_s, loss=loss, rto_s=rto_s, seed=seed + k
    ) as proxy:
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            run_station(f"ws://127.0.0.1:{proxy.port}", station_id, reports=0, ready=ready, stop=stop)
        )
        try:
            await ready.wait()
            if task.done():
                task.result()  # the station gave up: its error surfaces here
            rtts: list[float] = []
            for _ in range(n_exchanges):
                out = await csms.dispatch({station_id: _SET_POINT_W}, timeout_s=timeout_s, retries=0)
                row = out[station_id]
                if row["status"] == "Accepted" and row["latency_s"] is not None:
                    rtts.append(float(row["latency_s"]))
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
        return OcppPoint(delay_s, loss, proxy.rto_s, tuple(rtts), n_exchanges, proxy.stats.n_losses)


def _station_side_in_netns(
    pair: VethPair,
    csms_port: int,
    station_id: str,
    shaping: dict[str, Any],
    ready: threading.Event,
    done: threading.Event,
) -> tuple[float, int]:
    """In namespace ``pair.ns_b`` (on a thread of its own): the shaping proxy to the central system across the
    veth pair and a station through it; set ``ready`` once the station has booted, end when ``done`` is set.
    Returns the proxy's RTO [s] and its emulated losses."""

    async def side() -> tuple[float, int]:
        from v2gtwin.cyber.csms.simulator import run_station

        async with ShapingProxy(("127.0.0.1", 0), (pair.ipv4_a, csms_port), **shaping) as proxy:
            booted, stop = asyncio.Event(), asyncio.Event()
            url = f"ws://127.0.0.1:{proxy.port}"
            task = asyncio.create_task(run_station(url, station_id, reports=0, ready=booted, stop=stop))
            try:
                await booted.wait()
                if task.done():
                    task.result()  # the station gave up: its error surfaces here
                ready.set()
                await asyncio.to_thread(done.wait)
            finally:
                stop.set()
                await asyncio.gather(task, return_exceptions=True)
            return proxy.rto_s, proxy.stats.n_losses

    return run_in_netns_thread(pair.ns_b, lambda: asyncio.run(side()))


async def _measure_point_netns(
    csms: Any, pair: VethPair, k: int, delay_s: float, loss: float, n_exchanges: int, rto_s: float | None,
    seed: int, timeout_s: float,
) -> OcppPoint:  # fmt: skip
    """As :func:`_measure_point`, with the station and the proxy in ``pair.ns_b`` and the central system (this
    loop) in ``pair.ns_a``: the round trips cross the veth pair."""
    station_id = f"SEG-{k:03d}"
    ready, done = threading.Event(), threading.Event()
    shaping = {"delay_s": delay_s, "loss": loss, "rto_s": rto_s, "seed": seed + k}
    side = asyncio.ensure_future(
        asyncio.to_thread(_station_side_in_netns, pair, csms.port, station_id, shaping, ready, done)
    )
    rtts: list[float] = []
    try:
        while not ready.is_set():
            if side.done():
                side.result()
                raise DataError(f"netns: the station in {pair.ns_b} ended before it booted")
            await asyncio.sleep(0.01)
        for _ in range(n_exchanges):
            out = await csms.dispatch({station_id: _SET_POINT_W}, timeout_s=timeout_s, retries=0)
            row = out[station_id]
            if row["status"] == "Accepted" and row["latency_s"] is not None:
                rtts.append(float(row["latency_s"]))
    finally:
        done.set()
        rto_used_s, n_losses = await side
    return OcppPoint(delay_s, loss, rto_used_s, tuple(rtts), n_exchanges, n_losses)


async def _measure_all(
    points: Sequence[tuple[float, float]],
    n_exchanges: int,
    n_exchanges_lossy: int,
    rto_s: float | None,
    seed: int,
    timeout_s: float,
    db_dir: str,
    progress: Callable[[int, int], None] | None,
    pair: VethPair | None = None,
) -> list[OcppPoint]:
    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.cyber.csms.store import Store

    out: list[OcppPoint] = []
    host = "127.0.0.1" if pair is None else pair.ipv4_a
    async with Csms(Store(f"sqlite:///{FsPath(db_dir) / 'segment.sqlite'}"), host=host, port=0) as csms:
        for k, (delay_s, loss) in enumerate(points):
            n = n_exchanges_lossy if loss > 0 else n_exchanges
            if pair is None:
                point = await _measure_point(csms, k, delay_s, loss, n, rto_s, seed, timeout_s)
            else:
                point = await _measure_point_netns(csms, pair, k, delay_s, loss, n, rto_s, seed, timeout_s)
            out.append(point)
            if progress is not None:
                progress(k + 1, len(points))
    return out


def run_ocpp_round_trips(
    points: Sequence[tuple[float, float]] = DEFAULT_POINTS,
    *,
    n_exchanges: int = 40,
    n_exchanges_lossy: int = 150,
    rto_s: float | None = None,
    seed: int = 0,
    timeout_s: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    netns: bool = False,
) -> list[OcppPoint]:
    """Measure ``n_exchanges`` SetChargingProfile round trips at each loss-free (one-way delay [s], loss [-])
    point, ``n_exchanges_lossy`` at each lossy one (a loss is rare: more exchanges to see a few).

    ``rto_s``: the emulation's initial RTO [s] (default: the proxy's ``2 d + 0.2``). ``timeout_s``: dispatch
    time-out per attempt [s]; an attempt past it counts against ``p_success``. ``progress(done, total)`` is
    called after each point. Runs its own event loop (call it from synchronous code).

    ``netns``: run the central system in one network namespace and the proxy and the station in another,
    joined by a veth pair (:mod:`v2gtwin.cyber.netns`; needs root and ``ip``), so that the round trips cross
    a real kernel link instead of loopback.
    """
    for name, n in (("n_exchanges", n_exchanges), ("n_exchanges_lossy", n_exchanges_lossy)):
        if n < 1:
            raise DataError(f"{name} must be an integer >= 1 (got {n})")
    if not points:
        raise DataError("points: give at least one (delay_s, loss) point")
    for delay_s, loss in points:
        _check_point(delay_s, loss)
    args = (points, n_exchanges, n_exchanges_lossy, rto_s, seed, timeout_s)
    with tempfile.TemporaryDirectory() as db_dir:
        if not netns:
            return asyncio.run(_measure_all(*args, db_dir, progress))
        with veth_namespaces() as pair:
            return run_in_netns_thread(pair.ns_a, lambda: asyncio.run(_measure_all(*args, db_dir, progress, pair)))


def calc_hold_moments(loss: float, rto_s: float) -> tuple[float, float]:
    """Mean [s] and variance [s^2] of one traversal's retransmission hold ``RTO (2^M - 1)`` (module notes).

    ``M`` is geometric, ``P(M = m) = (1 - p) p^m``; the variance is finite for ``p < 1/4``.
    """
    p = float(loss)
    if not 0.0 <= p < 0.25:
        raise DataError(f"loss must be in [0, 0.25) (got {p})")
    e2 = (1.0 - p) / (1.0 - 2.0 * p)  # E[2^M]
    e4 = (1.0 - p) / (1.0 - 4.0 * p)  # E[4^M]
    mean_s = rto_s * (e2 - 1.0)
    second_s2 = rto_s**2 * (e4 - 2.0 * e2 + 1.0)
    return mean_s, max(second_s2 - mean_s**2, 0.0)


@dataclass(frozen=True)
class OcppFit:
    """The fitted OCPP segment model (module notes).

    Attributes
    ----------
    k_delay : float
        Fitted round-trip delay per one-way delay, divided by two (1 for an exact proxy) [-].
    overhead_s : float
        Round trip at zero added delay, 5th percentile (processing at both ends, loopback hops) [s].
    random_mean_s, random_var_s2 : float
        Mean [s] and variance [s^2] of a round trip's random part without loss.
    p_success : float
        Share of attempts answered in time over every measured point [-].
    fitted_delays_s : tuple of float
        Delays of the points the fit used [s].
    source : str
        Where the figures come from.
    scatter_mean_s, scatter_var_s2 : tuple of float
        The random part's mean [s] and variance [s^2] at each of ``fitted_delays_s`` (the scatter grows with
        the delay: the proxy's and the stack's timers); :meth:`segment` interpolates them linearly in the delay
        (constant beyond the fitted range). Empty: the pooled ``random_mean_s`` / ``random_var_s2`` at every
        delay.
    """

    k_delay: float
    overhead_s: float
    random_mean_s: float
    random_var_s2: float
    p_success: float
    fitted_delays_s: tuple[float, ...]
    source: str
    scatter_mean_s: tuple[float, ...] = ()
    scatter_var_s2: tuple[float, ...] = ()

    def scatter_at(self, delay_s: float) -> tuple[float, float]:
        """Mean [s] and variance [s^2] of a loss-free round trip's random part at one-way delay ``delay_s``."""
        if not self.scatter_mean_s:
            return self.random_mean_s, self.random_var_s2
        d = self.fitted_delays_s
        return float(np.interp(delay_s, d, self.scatter_mean_s)), float(np.interp(delay_s, d, self.scatter_var_s2))

    def segment(self, delay_s: float, loss: float = 0.0, rto_s: float | None = None) -> Segment:
        """The central system -> station segment at one-way delay ``delay_s`` [s] and loss ``loss`` [-];
        ``rto_s`` the initial RTO [s] (default ``2 delay_s + 0.2``, the proxy's)."""
        _check_point(delay_s, loss)
        rto = 2.0 * delay_s + LINUX_RTO_MIN_S if rto_s is None else float(rto_s)
        hold_mean_s, hold_var_s2 = calc_hold_moments(loss, rto)
        scatter_mean_s, scatter_var_s2 = self.scatter_at(delay_s)
        mean_s = scatter_mean_s / 2.0 + hold_mean_s
        var_s2 = scatter_var_s2 / 2.0 + hold_var_s2
        cv = math.sqrt(var_s2) / mean_s if mean_s > 0 else 0.0
        dist = "gamma" if mean_s > 0 and cv > 0 else "none"
        return Segment(
            name=f"csms->charger (OCPP over TCP, {delay_s * 1e3:g} ms one-way, {loss:.0%} loss; measured fit)",
            fixed_s=self.k_delay * delay_s,
            random_mean_s=mean_s if dist != "none" else 0.0,
            random_dist=dist,
            random_cv=min(cv, 100.0),
            processing_s=self.overhead_s / 2.0,
            p_success=self.p_success,
            source=self.source,
        )


def fit_ocpp_segment(
    points: Sequence[OcppPoint], holdout_delays_s: Sequence[float] = (), link: str = "loopback"
) -> OcppFit:
    """Fit the OCPP segment model to the loss-free points whose delay is not held out (module notes).

    Raises :class:`DataError` when fewer than two distinct delays remain to fit.
    """
    held = {round(d, 9) for d in holdout_delays_s}
    used = [p for p in points if p.loss == 0.0 and round(p.delay_s, 9) not in held and p.rtt_s]
    delays = sorted({p.delay_s for p in used})
    if len(delays) < 2:
        raise DataError(f"points: the fit needs loss-free points at two delays or more not held out (got {delays})")
    d = np.array([p.delay_s for p in used])
    low = np.array([float(np.quantile(p.rtt_s, 0.05)) for p in used])
    slope, intercept = np.polyfit(d, low, 1)
    by_delay = [
        np.maximum(
            np.concatenate([np.asarray(p.rtt_s) - (slope * p.delay_s + intercept) for p in used if p.delay_s == dd]),
            0.0,
        )
        for dd in delays
    ]
    excess = np.concatenate(by_delay)
    n_ok = sum(len(p.rtt_s) for p in points)
    n_all = sum(p.n_attempts for p in points)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return OcppFit(
        k_delay=float(slope / 2.0),
        overhead_s=float(max(intercept, 0.0)),
        random_mean_s=float(excess.mean()),
        random_var_s2=float(excess.var()),
        p_success=n_ok / n_all if n_all else 0.0,
        fitted_delays_s=tuple(delays),
        scatter_mean_s=tuple(float(e.mean()) for e in by_delay),
        scatter_var_s2=tuple(float(e.var()) for e in by_delay),
        source=(
            "measured: v2gtwin cyber path --measure (OCPP 2.0.1 SetChargingProfile round trips, central system "
            f"<-> simulated station on {link} through the shaping proxy), {today}"
        ),
    )


def calc_round_trip_quantiles_s(segment: Segment, qs: Sequence[float] = (0.5, 0.95)) -> dict[str, float | None]:
    """Mean and quantiles [s] of a round trip: two independent traversals of ``segment`` (the command, and
    its acknowledgement back over the same link), by the path model's numerical convolution
    (:func:`~v2gtwin.cyber.path.calc_attempt_grid`) among the attempts that get through. Keys ``mean_s``
    (exact: twice the segment's mean) and ``p50_s``, ``p95_s``, ... for ``qs``."""
    back = replace(segment, name="charger->csms (acknowledgement over the same link)")
    grid = calc_attempt_grid(Path((segment, back), name="OCPP round trip"), n_grid=2**15)
    out: dict[str, float | None] = {"mean_s": 2.0 * segment.mean_s}
    for q in qs:
        out[f"p{round(q * 100):d}_s"] = grid.quantile_s(q * grid.p_success) if grid.p_success > 0 else None
    return out


def _table(points: Sequence[OcppPoint], fit: OcppFit) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        pred = calc_round_trip_quantiles_s(fit.segment(p.delay_s, p.loss, p.rto_s))
        rtt = np.asarray(p.rtt_s)
        rows.append(
            {
                "delay_s": p.delay_s,
                "loss": p.loss,
                "rto_s": p.rto_s,
                "used_in_fit": p.loss == 0.0 and p.delay_s in fit.fitted_delays_s,
                "n_exchanges": p.n_attempts,
                "n_answered": len(p.rtt_s),
                "n_losses_emulated": p.n_losses,
                "measured_mean_s": float(rtt.mean()) if rtt.size else None,
                "predicted_mean_s": pred["mean_s"],
                "measured_p50_s": float(np.quantile(rtt, 0.5)) if rtt.size else None,
                "predicted_p50_s": pred["p50_s"],
                "measured_p95_s": float(np.quantile(rtt, 0.95)) if rtt.size else None,
                "predicted_p95_s": pred["p95_s"],
            }
        )
    return rows


def measure_ocpp_segment(
    points: Sequence[tuple[float, float]] = DEFAULT_POINTS,
    *,
    at: tuple[float, float] = (0.05, 0.01),
    holdout_delays_s: Sequence[float] = (0.05,),
    n_exchanges: int = 40,
    n_exchanges_lossy: int = 150,
    rto_s: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    netns: bool = False,
) -> tuple[Segment, list[dict[str, Any]]]:
    """Measure, fit, and return the segment at ``at`` = (one-way delay [s], loss [-]) with the table of
    predicted against measured round trips at every measured point (``used_in_fit`` marks the fitted rows;
    the others, held-out delays and every lossy point, are predictions).

    Used by ``v2gtwin cyber path --measure``. See :func:`run_ocpp_round_trips` for the arguments.
    """
    _check_point(*at)
    measured = run_ocpp_round_trips(
        points,
        n_exchanges=n_exchanges,
        n_exchanges_lossy=n_exchanges_lossy,
        rto_s=rto_s,
        seed=seed,
        progress=progress,
        netns=netns,
    )
    link = "a veth pair between two network namespaces" if netns else "loopback"
    fit = fit_ocpp_segment(measured, holdout_delays_s, link=link)
    return fit.segment(at[0], at[1], rto_s), _table(measured, fit)
