"""The ISO 15118 segment of the command path (charger -> EV): message timings of a real session, the session-time
model, the measured :class:`~v2gtwin.cyber.path.Segment` and the documented fallback.

The measurement itself (two network namespaces, the ``iso15118`` package's SECC and EVCC) is in
:mod:`v2gtwin.cyber.iso15118_live`; this module holds the pure functions that turn its event records into
per-message timings, the model that predicts a session's duration, and the segment.

Model
-----
An ISO 15118 session is a strict request/response sequence started by the EV (the EVCC is the TCP client; the
charger may answer only what it is asked). Its duration is

.. math::

    T_\\mathrm{session} = T_\\mathrm{SDP} + T_\\mathrm{connect} + \\sum_{i=1}^{n} (t_{\\mathrm{EV},i} + t_\\mathrm{RTT}
    + t_{\\mathrm{SECC},i})

with :math:`n` request/response pairs, the network round trip :math:`t_\\mathrm{RTT}`, the charger's processing
:math:`t_{\\mathrm{SECC},i}` (decode the request, act, encode the response) and the EV's processing before each
request :math:`t_{\\mathrm{EV},i}` (decode the previous response, build the next request);
:math:`T_\\mathrm{connect}` holds the TCP set-up and, with TLS, the handshake.

A command for the EV (a new power limit) reaches it only in the response to the EV's next charge-loop request
(ChargingStatusRes in ISO 15118-2 AC, CurrentDemandRes in DC, AC_ChargeLoopRes in -20 AC). A command arriving at
the charger at a random instant therefore waits for the next request: the residual life of the renewal process
of request arrivals with period :math:`T`, whose first two moments are (Cox 1962, sec. 5.2)

.. math::

    E[R] = \\frac{E[T^2]}{2 E[T]}, \\qquad E[R^2] = \\frac{E[T^3]}{3 E[T]},

(a constant period gives :math:`R \\sim U(0, T)`: mean :math:`T/2`, coefficient of variation :math:`1/\\sqrt 3`).
The segment's latency is then the wait :math:`R` (gamma with the same mean and coefficient of variation), the
one-way transit of the response (fixed part) and the processing: the charger's for that request plus the EV's
decoding of the response.

References
----------
.. [1] ISO 15118-2:2014, Road vehicles -- Vehicle to grid communication interface -- Part 2: Network and
   application protocol requirements, sec. 8.8 and Table 109 (message timeouts ``V2G_EVCC_Msg_Timeout``), as
   encoded in the open implementation ``iso15118`` 0.31.2, ``shared/messages/iso15118_2/timeouts.py``.
.. [2] ISO 15118-20:2022, Part 20: 2nd generation network layer and application layer requirements, message
   timeouts, as encoded in ``iso15118`` 0.31.2, ``shared/messages/iso15118_20/timeouts.py``.
.. [3] D. R. Cox, *Renewal Theory*, Methuen, 1962, sec. 5.2 (the backward/forward recurrence time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from v2gtwin.cyber.path import Segment
from v2gtwin.errors import DataError

__all__ = [
    "CHARGE_LOOP_REQUESTS",
    "DOCUMENTED_TIMEOUTS_S",
    "PROTOCOLS",
    "MessageTiming",
    "SessionMeasurement",
    "calc_message_timings",
    "calc_residual_wait",
    "calc_session_time_s",
    "check_protocol",
    "documented_segment",
    "measured_segment",
    "predict_from_sessions_s",
    "predict_session_time_s",
]


#: The protocols this segment covers, with the ``iso15118`` package's name for the EV's choice.
PROTOCOLS: dict[str, str] = {"-2": "ISO_15118_2", "-20": "ISO_15118_20_AC"}

#: The request of each protocol's charge loop (AC), whose response carries the charger's limits to the EV.
CHARGE_LOOP_REQUESTS: dict[str, str] = {"-2": "ChargingStatusReq", "-20": "AC_ChargeLoopReq"}

#: EV-side timeouts of one request/response pair [s] (``V2G_EVCC_Msg_Timeout``): ISO 15118-2:2014 Table 109 and
#: ISO 15118-20:2022, as encoded in ``iso15118`` 0.31.2 (``shared/messages/iso15118_2/timeouts.py``,
#: ``.../iso15118_20/timeouts.py``). Upper bounds a conforming charger must answer within, not typical times.
DOCUMENTED_TIMEOUTS_S: dict[str, dict[str, float]] = {
    "-2": {
        "SDP (per request)": 0.25,
        "SupportedAppProtocolReq": 2.0,
        "SessionSetupReq": 2.0,
        "ServiceDiscoveryReq": 2.0,
        "ServiceDetailReq": 5.0,
        "PaymentServiceSelectionReq": 2.0,
        "PaymentDetailsReq": 5.0,
        "AuthorizationReq": 2.0,
        "ChargeParameterDiscoveryReq": 2.0,
        "PowerDeliveryReq": 5.0,
        "ChargingStatusReq": 2.0,
        "CurrentDemandReq (DC)": 0.25,
        "SessionStopReq": 2.0,
        "communication set-up (V2G_EVCC_CommunicationSetup_Timeout)": 20.0,
        "sequence (V2G_SECC_Sequence_Timeout)": 60.0,
    },
    "-20": {
        "SDP (per request)": 0.25,
        "SupportedAppProtocolReq": 2.0,
        "SessionSetupReq": 2.0,
        "AuthorizationSetupReq": 2.0,
        "AuthorizationReq": 2.0,
        "ServiceDiscoveryReq": 2.0,
        "ServiceDetailReq": 5.0,
        "ServiceSelectionReq": 2.0,
        "AC_ChargeParameterDiscoveryReq": 2.0,
        "ScheduleExchangeReq": 2.0,
        "PowerDeliveryReq": 2.0,
        "AC_ChargeLoopReq": 0.5,
        "SessionStopReq": 2.0,
        "communication set-up (V2G_EVCC_CommunicationSetup_Timeout)": 20.0,
        "sequence (V2G_SECC_Sequence_Timeout)": 60.0,
    },
}


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is one of :data:`PROTOCOLS`, else raise :class:`DataError` naming the choices."""
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol = {protocol!r} is not one of {', '.join(PROTOCOLS)} (ISO 15118-2 or -20)")
    return protocol


@dataclass(frozen=True)
class MessageTiming:
    """One request/response pair of a measured session (times from the machine's shared clock).

    Attributes
    ----------
    name : str
        The EV's request, e.g. ``"SessionSetupReq"``; ``response`` is the charger's answer.
    response : str
        The response's name as decoded by the EV.
    req_bytes, res_bytes : int
        V2GTP message sizes (8-byte header + EXI body) [byte].
    t_req_s : float
        When the EV handed the request to its socket, from the SDP request [s].
    ev_before_s : float
        The EV's processing before this request: from the previous response (or the connection) to the
        request's hand-over [s].
    forward_s : float
        One-way transit of the request, EV socket -> charger's application [s].
    secc_processing_s : float
        The charger's processing, request read -> response handed to its socket [s].
    back_s : float
        One-way transit of the response, charger's socket -> EV's application [s].
    round_trip_s : float
        The exchange as the EV sees it, request hand-over -> response read [s].
    ev_decode_s : float
        The EV's EXI decoding of the response [s].
    """

    name: str
    response: str
    req_bytes: int
    res_bytes: int
    t_req_s: float
    ev_before_s: float
    forward_s: float
    secc_processing_s: float
    back_s: float
    round_trip_s: float
    ev_decode_s: float


@dataclass(frozen=True)
class SessionMeasurement:
    """A measured ISO 15118 session.

    Attributes
    ----------
    protocol : str
        ``"-2"`` (ISO 15118-2) or ``"-20"`` (ISO 15118-20, AC).
    tls : bool
        Whether the session ran over TLS.
    tls_version, cipher : str
        As negotiated (``"-"`` without TLS).
    sdp_s : float
        SDP request -> SDP response at the EV (UDP multicast) [s].
    connect_s : float
        TCP connection (and TLS handshake) to the charger, as the EV sees it, without ``tls_context_s`` [s].
    tls_context_s : float
        The EV's TLS context set-up (reading and decrypting its keys and certificates; 0 without TLS) [s].
    total_s : float
        SDP request -> SessionStopRes processed by the EV [s].
    messages : tuple of MessageTiming
        The request/response pairs in order.
    rtt_probe_s : float
        Median round trip of a small TCP message over the same link, measured apart from the session [s].
    failure : str or None
        None for a completed session; else the stack's reason for ending it early (e.g. the EV's message timeout
        ran out), and ``messages`` holds the pairs answered before that.
    """

    protocol: str
    tls: bool
    tls_version: str
    cipher: str
    sdp_s: float
    connect_s: float
    total_s: float
    messages: tuple[MessageTiming, ...]
    rtt_probe_s: float
    tls_context_s: float = 0.0
    failure: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        """True when the session ended with its SessionStopRes; False when it ended early (``failure`` says why)."""
        return self.failure is None

    @property
    def n_messages(self) -> int:
        """Number of request/response pairs [-]."""
        return len(self.messages)

    def loop(self) -> tuple[MessageTiming, ...]:
        """The charge-loop exchanges (their responses carry the charger's limits to the EV)."""
        req = CHARGE_LOOP_REQUESTS[self.protocol]
        return tuple(m for m in self.messages if m.name == req)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: totals, means and the message table (times in ms in ``messages``)."""
        msgs = self.messages
        return {
            "protocol": f"ISO 15118{self.protocol}",
            "tls": self.tls,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "completed": self.completed,
            "failure": self.failure,
            "n_messages": self.n_messages,
            "n_charge_loop": len(self.loop()),
            "total_s": self.total_s,
            "sdp_s": self.sdp_s,
            "tls_context_s": self.tls_context_s,
            "connect_s": self.connect_s,
            "rtt_probe_s": self.rtt_probe_s,
            "load_avg_1min": self.info.get("load_avg_1min"),
            "mean_round_trip_s": _mean([m.round_trip_s for m in msgs]),
            "mean_secc_processing_s": _mean([m.secc_processing_s for m in msgs]),
            "mean_ev_before_s": _mean([m.ev_before_s for m in msgs]),
            "mean_one_way_s": _mean([0.5 * (m.forward_s + m.back_s) for m in msgs]),
            "predicted_total_s": predict_session_time_s(self) if self.completed else None,
            "messages": [
                {
                    "name": m.name,
                    "req_bytes": m.req_bytes,
                    "res_bytes": m.res_bytes,
                    "t_req_ms": 1e3 * m.t_req_s,
                    "ev_before_ms": 1e3 * m.ev_before_s,
                    "forward_ms": 1e3 * m.forward_s,
                    "secc_processing_ms": 1e3 * m.secc_processing_s,
                    "back_ms": 1e3 * m.back_s,
                    "round_trip_ms": 1e3 * m.round_trip_s,
                }
                for m in msgs
            ],
        }


def _mean(values: Sequence[float]) -> float | None:
    """The mean, or None for no values (a session that ended before its first answer)."""
    return float(np.mean(values)) if len(values) else None


def _events(events: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("kind") == kind]


def _one(events: Sequence[Mapping[str, Any]], kind: str, side: str) -> int:
    found = _events(events, kind)
    if not found:
        raise DataError(f"{side} events: no {kind!r} record (the session did not get that far)")
    return int(found[0]["t_ns"])


def calc_message_timings(
    evcc_events: Sequence[Mapping[str, Any]], secc_events: Sequence[Mapping[str, Any]], complete: bool = True
) -> tuple[tuple[MessageTiming, ...], dict[str, float]]:
    """Pair the EV's and the charger's event records into per-message timings.

    The i-th request the EV sends is the i-th message the charger reads, the i-th response the charger sends is
    the i-th message the EV reads (one outstanding request at a time, ISO 15118-2 sec. 8.8.2); the sizes on both
    sides must agree, which checks the pairing.

    Parameters
    ----------
    evcc_events, secc_events : sequence of mapping
        Records ``{"t_ns": int, "kind": str, ...}`` as written by :mod:`v2gtwin.cyber.iso15118_runner`.
    complete : bool
        True: the session ended with its SessionStopRes (an ``end`` record) and every request was answered.
        False: it ended early (a ``failed`` record, e.g. the EV's message timeout); the answered pairs are
        returned and ``total_s`` runs to the failure.

    Returns
    -------
    messages : tuple of MessageTiming
    phases : dict
        ``sdp_s``, ``tls_context_s`` (loading the TLS keys, 0 without TLS), ``connect_s`` (TCP connection and
        TLS handshake, without the context) and ``total_s`` [s].
    """
    t0 = _one(evcc_events, "sdp_tx", "EVCC")
    t_connected = _one(evcc_events, "connected", "EVCC")
    t_end = _one(evcc_events, "end" if complete else "failed", "EVCC")
    ev_tx, ev_rx, ev_dec = (_events(evcc_events, k) for k in ("tx", "rx", "dec"))
    se_rx, se_tx = _events(secc_events, "rx"), _events(secc_events, "tx")
    n = len(ev_tx) if complete else len(ev_rx)
    paired = len(ev_rx) == len(se_rx) == len(se_tx) == n if complete else min(len(ev_tx), len(se_rx), len(se_tx)) >= n
    if not (paired and len(ev_dec) >= n) or (complete and n == 0):
        raise DataError(
            f"event records do not pair: EVCC sent {n} and read {len(ev_rx)}, SECC read {len(se_rx)} and sent "
            f"{len(se_tx)} messages"
        )
    out = []
    prev = t_connected
    for i in range(n):
        if int(ev_tx[i]["n_bytes"]) != int(se_rx[i]["n_bytes"]) or int(se_tx[i]["n_bytes"]) != int(ev_rx[i]["n_bytes"]):
            raise DataError(f"message {i} ({ev_tx[i]['name']}): sizes differ between the EVCC and SECC records")
        a, b, c, d = (int(x["t_ns"]) for x in (ev_tx[i], se_rx[i], se_tx[i], ev_rx[i]))
        if not (prev <= a <= b <= c <= d):
            raise DataError(f"message {i} ({ev_tx[i]['name']}): timestamps out of order")
        out.append(
            MessageTiming(
                name=_message_name(str(ev_tx[i]["name"])),
                response=str(ev_dec[i]["name"]),
                req_bytes=int(ev_tx[i]["n_bytes"]),
                res_bytes=int(ev_rx[i]["n_bytes"]),
                t_req_s=(a - t0) * 1e-9,
                ev_before_s=(a - prev) * 1e-9,
                forward_s=(b - a) * 1e-9,
                secc_processing_s=(c - b) * 1e-9,
                back_s=(d - c) * 1e-9,
                round_trip_s=(d - a) * 1e-9,
                ev_decode_s=(int(ev_dec[i]["t_ns"]) - d) * 1e-9,
            )
        )
        prev = d
    t_sdp_rx = _one(evcc_events, "sdp_rx", "EVCC")
    t_connect = _one(evcc_events, "connect_start", "EVCC")
    ctx = _events(evcc_events, "ssl_context_start"), _events(evcc_events, "ssl_context_done")
    context_ns = int(ctx[1][0]["t_ns"]) - int(ctx[0][0]["t_ns"]) if ctx[0] and ctx[1] else 0
    t_connect += context_ns
    phases = {
        "tls_context_s": context_ns * 1e-9,
        "sdp_s": (t_sdp_rx - t0) * 1e-9,
        "connect_s": (t_connected - t_connect) * 1e-9,
        "total_s": (t_end - t0) * 1e-9,
    }
    return tuple(out), phases


def _message_name(name: str) -> str:
    """``supportedAppProtocolReq`` (the stack's spelling of the SAP request) -> ``SupportedAppProtocolReq``;
    ``AC_ChargeLoopReq`` and the other names unchanged."""
    return name[:1].upper() + name[1:]


def calc_session_time_s(
    n_messages: int | np.ndarray,
    rtt_s: float | np.ndarray,
    secc_processing_s: float | np.ndarray,
    ev_processing_s: float | np.ndarray,
    setup_s: float | np.ndarray = 0.0,
) -> float | np.ndarray:
    """Duration of a request/response session: ``setup_s + n_messages * (ev + rtt + secc processing)`` [s].

    Parameters
    ----------
    n_messages : int or array
        Request/response pairs [-], >= 0.
    rtt_s : float or array
        Network round trip per pair [s], >= 0.
    secc_processing_s, ev_processing_s : float or array
        Mean processing per pair at the charger and at the EV [s], >= 0.
    setup_s : float or array
        SDP and connection (with TLS handshake) [s], >= 0.

    Returns
    -------
    float or ndarray
        Session duration [s].

    Notes
    -----
    :math:`T = T_\\mathrm{setup} + n (t_\\mathrm{EV} + t_\\mathrm{RTT} + t_\\mathrm{SECC})`: the exchanges are
    strictly sequential (one outstanding request, ISO 15118-2 sec. 8.8.2), so their times add.
    """
    args = {
        "n_messages": n_messages,
        "rtt_s": rtt_s,
        "secc_processing_s": secc_processing_s,
        "ev_processing_s": ev_processing_s,
        "setup_s": setup_s,
    }
    for name, value in args.items():
        arr = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise DataError(f"{name} must be finite and >= 0 (got {value!r})")
    out = np.asarray(setup_s, dtype=float) + np.asarray(n_messages, dtype=float) * (
        np.asarray(ev_processing_s, dtype=float)
        + np.asarray(rtt_s, dtype=float)
        + np.asarray(secc_processing_s, dtype=float)
    )
    return float(out) if out.ndim == 0 else out


def predict_from_sessions_s(calibrations: Sequence[SessionMeasurement], n_loop: int) -> float:
    """Predict a session of ``n_loop`` charge-loop exchanges from *other* sessions of the same kind (a held-out
    check, not a fit to the session predicted): the formula of :func:`predict_session_time_s` with, per message
    type, the median EV and charger processing pooled over every message of that type in ``calibrations``,
    the median count per session of each message type outside the loop, the median probe round trip and the
    median set-up (SDP + TLS context + connection). Medians, so one slow exchange on a shared machine does not
    carry over to the whole loop.
    """
    if not calibrations:
        raise DataError("predict_from_sessions_s needs at least one calibration session")
    kinds = {(c.protocol, c.tls) for c in calibrations}
    if len(kinds) != 1:
        raise DataError(f"calibration sessions must be of one kind (protocol, tls); got {sorted(kinds)}")
    if not (isinstance(n_loop, int) and n_loop >= 0):
        raise DataError(f"n_loop must be an integer >= 0 (got {n_loop!r})")
    loop_name = CHARGE_LOOP_REQUESTS[calibrations[0].protocol]
    pooled: dict[str, list[MessageTiming]] = {}
    for c in calibrations:
        for m in c.messages:
            pooled.setdefault(m.name, []).append(m)
    if n_loop > 0 and loop_name not in pooled:
        raise DataError(f"the calibration sessions have no {loop_name} to scale to n_loop = {n_loop}")
    rtt = float(np.median([c.rtt_probe_s for c in calibrations]))
    total = float(np.median([c.sdp_s + c.tls_context_s + c.connect_s for c in calibrations]))
    for name, msgs in pooled.items():
        per_session = [sum(m.name == name for m in c.messages) for c in calibrations]
        n = n_loop if name == loop_name else round(float(np.median(per_session)))
        total += float(
            calc_session_time_s(
                n,
                rtt,
                float(np.median([m.secc_processing_s for m in msgs])),
                float(np.median([m.ev_before_s for m in msgs])),
            )
        )
    return total


def predict_session_time_s(
    calibration: SessionMeasurement, n_loop: int | None = None, setup_s: float | None = None
) -> float:
    """Predict a session's duration from the per-message-type means of ``calibration``.

    Each message type ``k`` (SessionSetupReq, the charge-loop request, ...) counts ``n_k`` times with its mean
    processing at the EV and at the charger, and every exchange adds the round trip of the separate TCP probe
    (``rtt_probe_s``), not the session's own transit times:
    :math:`T = T_\\mathrm{setup} + \\sum_k n_k (\\bar t_{\\mathrm{EV},k} + t_\\mathrm{RTT}
    + \\bar t_{\\mathrm{SECC},k})`.
    With the calibration's own counts this is :func:`calc_session_time_s` with the overall means; with another
    charge-loop length ``n_loop`` it predicts a longer or shorter session of the same kind.

    Parameters
    ----------
    calibration : SessionMeasurement
        Where the means come from.
    n_loop : int, optional
        Charge-loop exchanges in the predicted session (default: the calibration's) [-], >= 0.
    setup_s : float, optional
        SDP + TLS context + connection [s] (default: the calibration's).
    """
    loop_name = CHARGE_LOOP_REQUESTS[calibration.protocol]
    setup = calibration.sdp_s + calibration.tls_context_s + calibration.connect_s if setup_s is None else setup_s
    by_type: dict[str, list[MessageTiming]] = {}
    for m in calibration.messages:
        by_type.setdefault(m.name, []).append(m)
    if n_loop is not None and n_loop > 0 and loop_name not in by_type:
        raise DataError(f"the calibration session has no {loop_name} to scale to n_loop = {n_loop}")
    total = float(setup)
    for name, msgs in by_type.items():
        n = len(msgs) if (n_loop is None or name != loop_name) else n_loop
        total += float(
            calc_session_time_s(
                n,
                calibration.rtt_probe_s,
                float(np.mean([m.secc_processing_s for m in msgs])),
                float(np.mean([m.ev_before_s for m in msgs])),
            )
        )
    return total


def calc_residual_wait(period_s: np.ndarray) -> tuple[float, float]:
    """Mean and coefficient of variation of the wait for the next request, for periods ``period_s`` [s].

    Parameters
    ----------
    period_s : ndarray
        Observed intervals between successive requests [s], > 0.

    Returns
    -------
    mean_s : float
        :math:`E[R] = E[T^2] / (2 E[T])` [s].
    cv : float
        :math:`\\sqrt{E[R^2] - E[R]^2} / E[R]` with :math:`E[R^2] = E[T^3] / (3 E[T])` [-].

    References
    ----------
    D. R. Cox, *Renewal Theory*, Methuen, 1962, sec. 5.2.
    """
    t = np.asarray(period_s, dtype=float)
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise DataError("period_s must hold at least one finite period > 0 s")
    m1, m2, m3 = (float(np.mean(t**k)) for k in (1, 2, 3))
    mean = m2 / (2 * m1)
    var = m3 / (3 * m1) - mean**2
    return mean, math.sqrt(max(var, 0.0)) / mean


def measured_segment(sessions: Sequence[SessionMeasurement], source: str) -> Segment:
    """The charger -> EV segment from measured sessions (their charge loops).

    fixed part: median one-way transit of the loop's responses; random part: the wait for the EV's next loop
    request (:func:`calc_residual_wait` of the request periods), gamma with that mean and coefficient of
    variation; processing: mean charger processing of a loop request + mean EV decoding of its response;
    success: answered / attempted exchanges (a session that ended early on a timeout counts its unanswered
    request as a failure).
    """
    if not sessions:
        raise DataError("measured_segment needs at least one measured session")
    loops = [s.loop() for s in sessions if len(s.loop()) >= 2]  # a session cut short may have too few
    if not loops:
        raise DataError("no session has the 2 charge-loop exchanges needed to measure the loop period")
    back = np.concatenate([[m.back_s for m in lp] for lp in loops])
    periods = np.concatenate([np.diff([m.t_req_s for m in lp]) for lp in loops])
    proc = np.concatenate([[m.secc_processing_s + m.ev_decode_s for m in lp] for lp in loops])
    wait_mean_s, wait_cv = calc_residual_wait(periods)
    # A session that ended early had one request more than its answered pairs (the one that timed out).
    attempted = sum(int(s.info.get("attempted", s.n_messages + (0 if s.completed else 1))) for s in sessions)
    completed = sum(s.n_messages for s in sessions)
    names = sorted({f"ISO 15118{s.protocol}" for s in sessions})
    return Segment(
        name=f"charger->EV ({', '.join(names)}, iso15118 stack over a veth link)",
        fixed_s=float(np.median(back)),
        random_mean_s=wait_mean_s,
        random_dist="gamma",
        random_cv=wait_cv,
        processing_s=float(np.mean(proc)),
        p_success=completed / attempted if attempted else 0.0,
        source=source,
    )


def documented_segment(protocol: str) -> Segment:
    """The charger -> EV segment from documented figures alone: the charge-loop message timeout.

    Without a measurement the standard's timeout is the only published figure: a conforming charger answers
    each charge-loop request within it, and the command waits at most one loop. The segment takes the timeout as
    a fixed latency (a conservative upper bound, not a typical time), no random part, no processing and
    success 1, and says so in its ``source``.
    """
    check_protocol(protocol)
    req = CHARGE_LOOP_REQUESTS[protocol]
    timeout_s = DOCUMENTED_TIMEOUTS_S[protocol][req]
    table = "ISO 15118-2:2014 Table 109" if protocol == "-2" else "ISO 15118-20:2022 (message timeouts)"
    return Segment(
        name=f"charger->EV (ISO 15118{protocol}, documented timeout)",
        fixed_s=timeout_s,
        random_mean_s=0.0,
        random_dist="none",
        random_cv=0.0,
        processing_s=0.0,
        p_success=1.0,
        source=(
            f"documented (not measured): {table}, V2G_EVCC_Msg_Timeout of {req} = {timeout_s:g} s as encoded in "
            "iso15118 0.31.2; an upper bound used as the latency"
        ),
    )
