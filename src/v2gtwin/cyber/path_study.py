"""The command path of a scenario: its default path, retries, the services' deadlines and threshold, and beside
it the study's cyber section: the TLS handshake breakdown on the path's own links, a short real OCPP measurement
(the measured central system beside the assumed one) and the ISO 15118 segment, measured (from a file
written by ``v2gtwin cyber iso15118 --measure --json``) or the documented default."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, fields
from pathlib import Path as FsPath
from typing import Any

import numpy as np

from v2gtwin.cyber.path import Path, RetryPolicy, Segment
from v2gtwin.cyber.path_analysis import PathAnalysis, run_path_analysis
from v2gtwin.cyber.path_defaults import ISO_LOOPS, build_default_path, build_services
from v2gtwin.errors import DataError
from v2gtwin.scenario import Scenario

__all__ = [
    "HANDSHAKE_PROFILES",
    "OCPP_STUDY_DELAYS_S",
    "OCPP_STUDY_HOLDOUT_S",
    "REG_SIGNAL_DT_S",
    "PathStudy",
    "calc_study_handshakes",
    "drop_csms_for_measured_link",
    "read_iso15118_measurement",
    "run_ocpp_check",
    "run_path_study",
]

#: Period of the regulation signal the study follows (its AGC step generates a 2-s RegD-like signal) [s].
REG_SIGNAL_DT_S = 2.0

#: The handshakes of the study's breakdown: ISO 15118-2 and -20 on the charger -> EV link, OCPP security
#: profile 3 on the central system -> charger link.
HANDSHAKE_PROFILES: tuple[str, ...] = ("iso15118-2", "iso15118-20", "ocpp-sp3")

#: One-way delays the study's short OCPP measurement runs at [s]: 0 and 25 ms fitted, 10 ms held out.
OCPP_STUDY_DELAYS_S: tuple[float, ...] = (0.0, 0.01, 0.025)
#: The held-out delay of the study's OCPP measurement [s].
OCPP_STUDY_HOLDOUT_S = 0.01

_ISO_HOP = "charger->EV"
_LINK_HOP = "csms->charger"
_CSMS_HOP = "csms"
_ISO_MEASURE_CMD = "v2gtwin cyber iso15118 --measure --json > FILE (root, Java, .venv-iso15118; about 3 min)"


@dataclass(frozen=True)
class PathStudy(PathAnalysis):
    """The path analysis with the study's cyber section beside it.

    Attributes
    ----------
    handshakes : dict
        :func:`calc_study_handshakes`: the TLS handshake breakdown on the path's links.
    ocpp_measurement : dict
        :func:`run_ocpp_check`'s table (``{"skipped": reason}`` when not measured).
    iso15118_segment : dict
        Which ISO 15118 segment the path uses (measured or documented default), beside the default.
    notes : tuple of str
        What replaced or dropped what in the path, in words.
    """

    handshakes: dict[str, Any]
    ocpp_measurement: dict[str, Any]
    iso15118_segment: dict[str, Any]
    notes: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """:meth:`PathAnalysis.summary` with ``handshakes``, ``ocpp_measurement``, ``iso15118_segment`` and
        ``path_notes``."""
        return super().summary() | {
            "handshakes": self.handshakes,
            "ocpp_measurement": self.ocpp_measurement,
            "iso15118_segment": self.iso15118_segment,
            "path_notes": list(self.notes),
        }


def _seg_dict(seg: Segment) -> dict[str, Any]:
    return {f.name: getattr(seg, f.name) for f in fields(seg)} | {"mean_s": seg.mean_s}


def _hop(path: Path, hop: str) -> Segment | None:
    return next((s for s in path.segments if s.hop == hop), None)


# --- the measured link in place of the default: no second count of the central system ------------------------


def drop_csms_for_measured_link(path: Path, measured_link: Segment) -> tuple[Path, str]:
    """``path`` with ``measured_link`` in place of its ``csms->charger`` link and without its separate
    ``csms`` processing segment: a round trip measured from the central system includes the central system's
    own processing, so the assumed ``csms`` segment would count it a second time. Returns the path and a
    sentence saying what was dropped."""
    new = path.with_segment(measured_link)
    csms = _hop(new, _CSMS_HOP)
    if csms is None:
        return new, "the path has no separate csms segment; nothing dropped"
    kept = tuple(s for s in new.segments if s.hop != _CSMS_HOP)
    note = (
        f"the assumed csms segment ({csms.mean_s * 1e3:g} ms) is dropped: the measured csms->charger segment "
        "includes the central system's processing"
    )
    return Path(kept, name=f"{path.name}, measured OCPP link"), note


# --- the ISO 15118 measurement file ---------------------------------------------------------------------------

_SEG_NUMBERS = ("fixed_s", "random_mean_s", "random_cv", "processing_s", "p_success")


def read_iso15118_measurement(file: str) -> Segment:
    """The measured charger -> EV segment of a JSON file written by ``v2gtwin cyber iso15118 --measure --json``
    (its ``segment`` object; ``mode`` must be ``"measured"``). Errors are one line naming the file and field."""
    where = f"cyber.iso15118_measurement {file!r}"
    try:
        text = FsPath(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text, parse_constant=lambda c: math.nan)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}: must hold a JSON object (the output of v2gtwin cyber iso15118 --json)")
    mode = data.get("mode")
    if mode != "measured":
        blocker = data.get("measurement_blocker")
        why = f"; the stack did not run: {blocker}" if isinstance(blocker, str) and blocker else ""
        raise DataError(f"{where}: field 'mode' is {mode!r}, must be 'measured' (from --measure){why}")
    seg = data.get("segment")
    if not isinstance(seg, dict):
        raise DataError(f"{where}: field 'segment' must be an object with the measured segment")
    for key in ("name", "random_dist", "source"):
        if not isinstance(seg.get(key), str):
            raise DataError(f"{where}: field 'segment.{key}' must be a string")
    for key in _SEG_NUMBERS:
        v = seg.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DataError(f"{where}: field 'segment.{key}' must be a finite number (got {v!r})")
    if not seg["name"].startswith(_ISO_HOP):
        raise DataError(f"{where}: field 'segment.name' must start with {_ISO_HOP!r} (got {seg['name']!r})")
    if not seg["source"].startswith("measured"):
        raise DataError(f"{where}: field 'segment.source' must start with 'measured' (got {seg['source'][:40]!r})")
    try:
        return Segment(
            name=seg["name"],
            fixed_s=float(seg["fixed_s"]),
            random_mean_s=float(seg["random_mean_s"]),
            random_dist=seg["random_dist"],
            random_cv=float(seg["random_cv"]),
            processing_s=float(seg["processing_s"]),
            p_success=float(seg["p_success"]),
            source=seg["source"],
        )
    except DataError as e:
        raise DataError(f"{where}: field 'segment': {e}") from None


def _iso_section(default: Segment, used: Segment, file: str | None, loop: str) -> dict[str, Any]:
    lp = ISO_LOOPS[loop]
    if file is None:
        return {
            "mode": "documented",
            "file": None,
            "segment": _seg_dict(used),
            "default_segment": _seg_dict(default),
            "note": (
                f"the ISO 15118 segment is the documented default ({lp.label}, {lp.request} loop: wait uniform "
                f"on [0, {lp.timeout_s:g} s] from the request's timeout, {lp.table}; 20 ms PLC, 50 ms EV "
                f"processing, p_success 0.999 assumed); measure it with {_ISO_MEASURE_CMD} and set "
                '[cyber] iso15118_measurement = "FILE"'
            ),
        }
    return {
        "mode": "measured",
        "file": file,
        "segment": _seg_dict(used),
        "default_segment": _seg_dict(default),
        "note": f"the ISO 15118 segment is the measured one of {file}; the documented default is shown beside it",
    }


# --- the short OCPP measurement -------------------------------------------------------------------------------


def run_ocpp_check(n_exchanges: int, seed: int, assumed_csms: Segment | None) -> tuple[dict[str, Any], Segment]:
    """Measure ``n_exchanges`` real SetChargingProfile round trips (central system <-> simulated station through
    the shaping proxy, loopback) at each of :data:`OCPP_STUDY_DELAYS_S`, fit the OCPP segment without the
    held-out delay :data:`OCPP_STUDY_HOLDOUT_S`, and compare its prediction with every measured point.

    Returns the JSON-ready table and the measured central-system segment (``csms`` hop): the fitted segment at
    zero added delay, i.e. half the round trip through the central system, the simulated station and the
    proxy's loopback hops. See :mod:`v2gtwin.cyber.ocpp_segment` for the measurement and the fit.
    """
    from v2gtwin.cyber.ocpp_segment import calc_round_trip_quantiles_s, fit_ocpp_segment, run_ocpp_round_trips

    t0 = time.perf_counter()
    points = run_ocpp_round_trips([(d, 0.0) for d in OCPP_STUDY_DELAYS_S], n_exchanges=n_exchanges, seed=seed)
    took_s = time.perf_counter() - t0
    fit = fit_ocpp_segment(points, (OCPP_STUDY_HOLDOUT_S,))
    rows = []
    for p in points:
        pred = calc_round_trip_quantiles_s(fit.segment(p.delay_s, 0.0))
        rtt = np.asarray(p.rtt_s)
        rows.append(
            {
                "delay_s": p.delay_s,
                "used_in_fit": p.delay_s in fit.fitted_delays_s,
                "n_exchanges": p.n_attempts,
                "n_answered": len(p.rtt_s),
                "measured_mean_s": float(rtt.mean()) if rtt.size else None,
                "predicted_mean_s": pred["mean_s"],
                "measured_p50_s": float(np.median(rtt)) if rtt.size else None,
                "predicted_p50_s": pred["p50_s"],
            }
        )
    at0 = fit.segment(0.0, 0.0)
    csms = Segment(
        "csms (measured: OCPP round trip through the central system at zero added delay, halved)",
        0.0,
        at0.random_mean_s,
        at0.random_dist,
        at0.random_cv,
        at0.processing_s,
        fit.p_success,
        fit.source.replace("v2gtwin cyber path --measure", "v2gtwin study [cyber] measure_ocpp_exchanges"),
    )
    out = {
        "n_exchanges_per_delay": n_exchanges,
        "took_s": took_s,
        "link": "loopback through the shaping proxy (no loss)",
        "fit": {
            "k_delay": fit.k_delay,
            "overhead_s": fit.overhead_s,
            "random_mean_s": fit.random_mean_s,
            "p_success": fit.p_success,
            "fitted_delays_s": list(fit.fitted_delays_s),
            "held_out_delay_s": OCPP_STUDY_HOLDOUT_S,
        },
        "table": rows,
        "csms_measured_s": csms.mean_s,
        "csms_assumed_s": None if assumed_csms is None else assumed_csms.mean_s,
    }
    return out, csms


# --- the TLS handshakes on the path's links -------------------------------------------------------------------


def calc_study_handshakes(
    path: Path, cpu_ev: float | str, cpu_charger: float | str, cpu_csms: float | str
) -> dict[str, Any]:
    """The handshake breakdown (:func:`v2gtwin.cyber.handshake.handshake_breakdown`) of ISO 15118-2, ISO 15118-20
    and OCPP security profile 3 on the path's own links, no rate limit:

    - ISO 15118 on the ``charger->EV`` segment, RTT = 2 x its fixed part (PLC and EXI transit; the wait for
      the next charge-loop request and the EV's processing of a command are not part of a handshake);
    - OCPP on the ``csms->charger`` segment, RTT = 2 x (fixed part + mean random part) (the link's mean
      transit; the charger's processing of a command is not part of a handshake).

    Returns ``{"links": [...], "cpu": {...}, "profiles": [HandshakeResult.to_dict() + role keys], "dominant": str}``.
    """
    from v2gtwin.cyber.handshake import handshake_breakdown
    from v2gtwin.cyber.handshake_profiles import CPU_PRESETS, PROFILES, cpu_factor

    iso, link = _hop(path, _ISO_HOP), _hop(path, _LINK_HOP)
    if iso is None or link is None:
        raise DataError(f"path {path.name!r} needs a {_ISO_HOP} and a {_LINK_HOP} segment for the handshakes")
    rtt = {"iso": 2.0 * iso.fixed_s, "ocpp": 2.0 * (link.fixed_s + link.random_mean_s)}
    links = [
        {"link": iso.name, "rtt_s": rtt["iso"], "rule": "2 x fixed part (PLC + EXI transit)", "for": "ISO 15118"},
        {"link": link.name, "rtt_s": rtt["ocpp"], "rule": "2 x (fixed + mean random part)", "for": "OCPP"},
    ]
    cpu = {}
    for role, v in (("EV", cpu_ev), ("charger", cpu_charger), ("CSMS", cpu_csms)):
        f = cpu_factor(v, f"cyber.cpu_{role.lower()}")
        src = CPU_PRESETS[v].source if isinstance(v, str) else "given as a number in the scenario"
        cpu[role] = {"preset": v if isinstance(v, str) else None, "factor": f, "source": src}
    rows = []
    for name in HANDSHAKE_PROFILES:
        r = handshake_breakdown(
            name, rtt["ocpp" if name.startswith("ocpp") else "iso"], None, cpu_ev, cpu_charger, cpu_csms
        )
        prof = PROFILES[name]
        parts = {
            "round trips": r["t_rtt_s"],
            "transfer": r["t_transfer_s"],
            f"{prof.client_role} processing": r["t_crypto_client_s"] + r["t_overhead_client_s"],
            f"{prof.server_role} processing": r["t_crypto_server_s"] + r["t_overhead_server_s"],
        }
        top = max(parts, key=lambda k: parts[k])
        rows.append(r | {"client_role": prof.client_role, "server_role": prof.server_role, "dominant_part": top})
    words = "; ".join(
        f"{r['profile']}: {r['dominant_part']} ({_dominant_s(r) * 1e3:.3g} of {r['t_handshake_s'] * 1e3:.3g} ms)"
        for r in rows
    )
    return {
        "links": links,
        "rate_bytes_per_s": None,
        "cpu": cpu,
        "profiles": rows,
        "dominant": f"Largest part of each handshake: {words}.",
    }


def _dominant_s(r: dict[str, Any]) -> float:
    part = r["dominant_part"]
    if part == "round trips":
        return float(r["t_rtt_s"])
    if part == "transfer":
        return float(r["t_transfer_s"])
    side = "client" if part.startswith(r["client_role"]) else "server"
    return float(r[f"t_crypto_{side}_s"] + r[f"t_overhead_{side}_s"])


# --- the study's path ---------------------------------------------------------------------------------------


def run_path_study(
    scenario: Scenario, path: Path | None = None, *, n_samples: int = 100_000, ocpp_exchanges: int | None = None
) -> PathStudy:
    """The scenario's command path (``[cyber] path`` and ``iso15118_loop``, or ``path``) with its retries,
    checked against primary response, AGC / regulation (one 2-s signal period), contingency reserve
    (``frequency.reserve_lead_min``) and demand response (``frequency.dr_notify_hour`` to ``dr_start_hour``);
    Monte Carlo seeded from the scenario's seed.

    Beside it: ``[cyber] iso15118_measurement`` (a measured ISO 15118 segment in place of the default),
    ``measure_ocpp_exchanges`` (``ocpp_exchanges`` overrides it; a short real OCPP measurement shown beside the
    assumed ``csms`` segment, which the services keep so that the results are reproducible; 0 skips it) and the
    TLS handshake breakdown on the resulting path's links with ``cpu_ev``, ``cpu_charger``, ``cpu_csms``.
    """
    cy, fr = scenario.cyber, scenario.frequency
    dr_lead_s = ((fr.dr_start_hour - fr.dr_notify_hour) % 24.0) * 3600.0
    services = build_services(REG_SIGNAL_DT_S, fr.reserve_lead_min * 60.0, dr_lead_s)
    base = path if path is not None else build_default_path(cy.path, cy.iso15118_loop)
    notes: list[str] = []
    default_iso = _hop(build_default_path(cy.path, cy.iso15118_loop), _ISO_HOP)
    assert default_iso is not None
    used_iso = _hop(base, _ISO_HOP) or default_iso
    if cy.iso15118_measurement is not None:
        used_iso = read_iso15118_measurement(cy.iso15118_measurement)
        base = base.with_segment(used_iso)
        notes.append(f"the measured ISO 15118 segment of {cy.iso15118_measurement} replaces the default one")
    iso = _iso_section(default_iso, used_iso, cy.iso15118_measurement, cy.iso15118_loop)
    n_ocpp = cy.measure_ocpp_exchanges if ocpp_exchanges is None else ocpp_exchanges
    assumed = _hop(base, _CSMS_HOP)
    if n_ocpp <= 0:
        ocpp: dict[str, Any] = {"skipped": "[cyber] measure_ocpp_exchanges = 0: no OCPP round trips measured"}
    elif assumed is None:
        ocpp = {"skipped": "the path's link is already a measured OCPP segment (it includes the central system)"}
    else:
        ocpp, csms = run_ocpp_check(n_ocpp, scenario.seed, assumed)
        # Shown beside the model, not put into the path the services use: a live measurement differs from run to
        # run, and the study's results must follow from the scenario and its seed alone.
        notes.append(
            f"measured central system {csms.mean_s * 1e3:.3g} ms against the assumed csms segment "
            f"({assumed.mean_s * 1e3:g} ms) the services use; the measurement's link is loopback, so the default "
            "link stays"
        )
    analysis = run_path_analysis(
        base,
        RetryPolicy(cy.retry_timeout_s, cy.retry_max_attempts),
        services,
        cy.deadline_miss_max,
        np.random.default_rng([scenario.seed, 14]),
        n_samples=n_samples,
    )
    return PathStudy(
        **{f.name: getattr(analysis, f.name) for f in fields(PathAnalysis)},
        handshakes=calc_study_handshakes(base, cy.cpu_ev, cy.cpu_charger, cy.cpu_csms),
        ocpp_measurement=ocpp,
        iso15118_segment=iso,
        notes=tuple(notes),
    )
