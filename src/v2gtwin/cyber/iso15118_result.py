"""The result of ``v2gtwin cyber iso15118``: measured sessions (or the blocker), the segment, the model check."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from v2gtwin.cyber.iso15118_session import (
    DOCUMENTED_TIMEOUTS_S,
    SessionMeasurement,
    documented_segment,
    measured_segment,
    predict_from_sessions_s,
    predict_session_time_s,
)
from v2gtwin.cyber.path import Segment

__all__ = ["Iso15118Result", "build_iso15118_result", "segment_to_dict"]


def segment_to_dict(segment: Segment) -> dict[str, Any]:
    """A :class:`Segment` as a JSON-ready dict, with its mean latency ``mean_s``."""
    return dataclasses.asdict(segment) | {"mean_s": segment.mean_s}


@dataclass(frozen=True)
class Iso15118Result:
    """What ``v2gtwin cyber iso15118`` computed.

    Attributes
    ----------
    mode : str
        ``"measured"`` (real sessions ran here) or ``"documented"`` (the standard's timeouts only).
    segments : dict of str to Segment
        The charger -> EV segment per protocol (``"-2"``, ``"-20"``).
    sessions : tuple of SessionMeasurement
        The measured sessions (empty in documented mode).
    blocker : str or None
        Why a requested measurement could not run (None when it ran or was not requested).
    """

    mode: str
    segments: dict[str, Segment]
    sessions: tuple[SessionMeasurement, ...]
    blocker: str | None

    @property
    def segment(self) -> Segment:
        """The path model's ISO 15118 segment: ISO 15118-2's (today's fleet) when present, else -20's."""
        return self.segments.get("-2") or self.segments["-20"]

    def model_check(self) -> list[dict[str, Any]]:
        """Per measured session, **in-sample**: the model's session time (probe RTT + mean processing per message,
        x messages, + SDP and connection) with the session's own per-message means, against the measured one.
        It checks the model's bookkeeping, not its predictive power: that is :meth:`held_out_check`."""
        rows = []
        for s in self.sessions:
            if not s.completed:  # the model is of a completed session; the failure counts in p_success
                continue
            pred = predict_session_time_s(s)
            rows.append(
                {
                    "session": f"ISO 15118{s.protocol}{' TLS' if s.tls else ''}",
                    "n_messages": s.n_messages,
                    "measured_total_s": s.total_s,
                    "predicted_total_s": pred,
                    "error_pct": 100.0 * (pred - s.total_s) / s.total_s,
                    "check": "in-sample (the session's own per-message means)",
                }
            )
        return rows

    def held_out_check(self) -> list[dict[str, Any]]:
        """Per completed session with at least one other completed session of its kind (protocol, TLS): the
        session predicted from the *other* sessions alone (:func:`predict_from_sessions_s`, medians per
        message type, the predicted session's own charge-loop length) against the measured one. Empty with
        one session per kind (``--repeat 1``)."""
        done = [s for s in self.sessions if s.completed]
        rows = []
        for i, s in enumerate(done):
            others = [o for j, o in enumerate(done) if j != i and (o.protocol, o.tls) == (s.protocol, s.tls)]
            if not others:
                continue
            pred = predict_from_sessions_s(others, len(s.loop()))
            rows.append(
                {
                    "session": f"ISO 15118{s.protocol}{' TLS' if s.tls else ''}",
                    "n_messages": s.n_messages,
                    "n_calibration_sessions": len(others),
                    "measured_total_s": s.total_s,
                    "predicted_total_s": pred,
                    "error_pct": 100.0 * (pred - s.total_s) / s.total_s,
                    "check": "held-out (predicted from the other sessions of its kind)",
                }
            )
        return rows

    def path_effect(self, variant: str = "lte") -> dict[str, Any]:
        """The default ``variant`` path of :mod:`v2gtwin.cyber.path_defaults` with its assumed ISO 15118 segment
        and with this one in its place (:meth:`Path.with_segment`): mean and 95th percentile of one attempt."""
        from v2gtwin.cyber.path import calc_attempt_grid
        from v2gtwin.cyber.path_defaults import build_default_path

        default = build_default_path(variant)
        mine = default.with_segment(self.segment)
        out: dict[str, Any] = {"path": default.name}
        for key, path in (("default_segment", default), ("this_segment", mine)):
            out[f"mean_s_{key}"] = path.mean_s
            out[f"p95_s_{key}"] = calc_attempt_grid(path).quantile_s(0.95)
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the mode, the blocker, the segments, the model check and each session's message table."""
        return {
            "mode": self.mode,
            "measurement_blocker": self.blocker,
            "segment": segment_to_dict(self.segment),
            "segments": {f"ISO 15118{p}": segment_to_dict(seg) for p, seg in self.segments.items()},
            "path_lte": self.path_effect("lte"),
            "model_check": self.model_check(),
            "model_check_held_out": self.held_out_check(),
            "sessions": [s.summary() for s in self.sessions],
            "documented_timeouts_s": {f"ISO 15118{p}": t for p, t in DOCUMENTED_TIMEOUTS_S.items()},
        }


def build_iso15118_result(
    sessions: Sequence[SessionMeasurement], protocols: Sequence[str], blocker: str | None, source: str
) -> Iso15118Result:
    """Measured segments for the protocols that have sessions, documented ones for the others.

    Parameters
    ----------
    sessions : sequence of SessionMeasurement
        The sessions that ran (may be empty).
    protocols : sequence of str
        The protocols asked for (``"-2"``, ``"-20"``).
    blocker : str or None
        Why the measurement did not run, when it did not.
    source : str
        The measured segments' ``source`` (``"measured: <command>, <date>"``).
    """
    segments: dict[str, Segment] = {}
    for p in protocols:
        mine = [s for s in sessions if s.protocol == p]
        segments[p] = measured_segment(mine, source) if mine else documented_segment(p)
    mode = "measured" if sessions else "documented"
    return Iso15118Result(mode=mode, segments=segments, sessions=tuple(sessions), blocker=blocker)
