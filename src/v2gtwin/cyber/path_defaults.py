"""Default command paths (cellular LTE, NB-IoT, wired internet) and the grid services they are checked
against, each figure with where it comes from.

Every default is a documented choice, not a measurement of a particular network: a segment whose figures
could not be checked against their source here says "unverified" in its ``source``. A measured segment
(``source="measured: ..."``) replaces a default one through :meth:`v2gtwin.cyber.path.Path.with_segment`.

References
----------
.. [1] 3GPP TR 25.913 v9.0.0, "Requirements for Evolved UTRA and UTRAN", section 6.2.2: user-plane latency
   below 5 ms one way in an unloaded, single-user network (the LTE design target, radio access only).
.. [2] H. Holma, A. Toskala (eds.), "LTE for UMTS", Wiley 2009, section 11.11: expected round trip of a
   small ping about 20 ms without retransmissions, about 22 ms with a 10 % block error rate.
.. [3] 3GPP TR 45.820 v13.1.0, "Cellular system support for ultra-low complexity and low throughput IoT
   (CIoT)", section 5: latency objective of 10 s or less for an exception report at the maximum coupling
   loss (164 dB).
.. [4] ISO 15118-2:2014, Table 109 (message timing, V2G_EVCC_Msg_Timeout): 0.25 s for the DC charge loop's
   CurrentDemandReq, 2 s for the AC charge loop's ChargingStatusReq and most other requests; ISO 15118-20:2022
   (message timeouts): 0.5 s for AC_ChargeLoopReq and DC_ChargeLoopReq. The SECC cannot push a new limit: it
   rides on the response to the EV's next request. Figures as encoded in the open ``iso15118`` package 0.31.2
   (iso15118/shared/messages/iso15118_2/timeouts.py: CURRENT_DEMAND_REQ = 0.25, CHARGING_STATUS_REQ = 2;
   iso15118/shared/messages/iso15118_20/timeouts.py: AC_CHARGE_LOOP_REQ = 0.5, DC_CHARGE_LOOP_REQ = 0.5).
.. [5] PJM Manual 12, "Balancing Operations", section 4.5: the regulation signal (RegA / RegD) is sent
   every 2 s; performance is scored on correlation, delay and precision.
.. [6] NERC BAL-002-3, "Disturbance Control Standard - Contingency Reserve for Recovery from a Balancing
   Contingency Event": Contingency Event Recovery Period of 15 minutes; 10-minute (spinning) reserve is the
   usual product.
.. [7] NERC BAL-003-2, "Frequency Response and Frequency Bias Setting": primary frequency response is
   measured over the first tens of seconds after an event (A/B points); it is delivered by local droop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from v2gtwin.cyber.path import Path, Segment

__all__ = ["ISO_LOOPS", "PATHS", "IsoLoop", "Service", "build_default_path", "build_iso_segment", "build_services"]

_LTE = (
    "LTE: radio one way < 5 ms target [3GPP TR 25.913 6.2.2]; ping about 20 ms round trip, 22 ms with 10 % "
    "BLER [Holma & Toskala, LTE for UMTS, 11.11]; +10 ms core/internet and the exponential tail (mean 15 ms, "
    "scheduling and load) and p_success 0.995 are assumptions (unverified)"
)
_NBIOT = (
    "NB-IoT: latency objective <= 10 s at 164 dB coupling loss [3GPP TR 45.820, 5]; the gamma part (mean "
    "1.5 s, cv 1) for normal coverage and p_success 0.99 are assumptions (unverified)"
)
_WIRED = "wired internet (DSL/fibre + VPN): 10 ms fixed, exponential 5 ms, p_success 0.999 are assumptions (unverified)"
_ISO_TAIL = (
    "the wait for that request is taken uniform on [0, T] and written as a gamma with its mean T/2 and cv "
    "1/sqrt(3); 20 ms PLC + EXI, 50 ms EV processing and p_success 0.999 are assumptions (unverified)"
)


@dataclass(frozen=True)
class IsoLoop:
    """A charge loop of ISO 15118 whose request carries the charger's new limit back to the EV.

    Attributes
    ----------
    key : the ``[cyber] iso15118_loop`` value.
    label : the protocol and loop, as in the segment's name.
    request : the EV's loop request.
    timeout_s : its V2G_EVCC_Msg_Timeout, taken as the longest loop period T [s].
    table : where the timeout is defined.
    """

    key: str
    label: str
    request: str
    timeout_s: float
    table: str


#: The charge loops the default ISO 15118 segment can model, by ``[cyber] iso15118_loop`` [4].
ISO_LOOPS: dict[str, IsoLoop] = {
    lp.key: lp
    for lp in (
        IsoLoop("dc-2", "ISO 15118-2 DC", "CurrentDemandReq", 0.25, "ISO 15118-2:2014 Table 109"),
        IsoLoop("ac-2", "ISO 15118-2 AC", "ChargingStatusReq", 2.0, "ISO 15118-2:2014 Table 109"),
        IsoLoop("dc-20", "ISO 15118-20 DC", "DC_ChargeLoopReq", 0.5, "ISO 15118-20:2022 message timeouts"),
        IsoLoop("ac-20", "ISO 15118-20 AC", "AC_ChargeLoopReq", 0.5, "ISO 15118-20:2022 message timeouts"),
    )
}


_CSMS = "central system: 5 ms to build and queue the set-point (assumption, unverified; replace by a measured segment)"


def _csms() -> Segment:
    return Segment("csms", 0.0, 0.0, "none", 0.0, 0.005, 1.0, _CSMS)


def build_iso_segment(loop: str = "dc-2") -> Segment:
    """The default charger -> EV segment for the charge loop ``loop`` (a key of :data:`ISO_LOOPS`).

    The default, ``dc-2``, is ISO 15118-2's DC charge loop (CurrentDemandReq, 0.25 s): the loop of V2G
    discharge on DC. ``ac-2`` (ChargingStatusReq, 2 s), ``dc-20`` and ``ac-20`` (0.5 s) have their own
    figures. The wait for the next loop request is uniform on [0, T] with T the request's timeout [4].
    """
    from v2gtwin.errors import DataError

    if loop not in ISO_LOOPS:
        raise DataError(f"cyber.iso15118_loop = {loop!r} is not one of {', '.join(ISO_LOOPS)}")
    lp = ISO_LOOPS[loop]
    source = (
        f"{lp.label} over HomePlug Green PHY: the limit rides on the response to the EV's next {lp.request}, "
        f"which comes within T = {lp.timeout_s:g} s [{lp.table}, V2G_EVCC_Msg_Timeout; as encoded in iso15118 "
        f"0.31.2]; {_ISO_TAIL}"
    )
    name = f"charger->EV ({lp.label} {lp.request} loop over PLC)"
    return Segment(name, 0.02, lp.timeout_s / 2.0, "gamma", 1.0 / math.sqrt(3.0), 0.05, 0.999, source)


def _lte(iso: Segment | None = None) -> Path:
    link = Segment("csms->charger (LTE)", 0.015, 0.015, "exponential", 1.0, 0.01, 0.995, _LTE)
    return Path((_csms(), link, iso or build_iso_segment()), name="LTE")


def _nbiot(iso: Segment | None = None) -> Path:
    link = Segment("csms->charger (NB-IoT)", 0.3, 1.5, "gamma", 1.0, 0.01, 0.99, _NBIOT)
    return Path((_csms(), link, iso or build_iso_segment()), name="NB-IoT")


def _wired(iso: Segment | None = None) -> Path:
    link = Segment("csms->charger (wired internet)", 0.01, 0.005, "exponential", 1.0, 0.01, 0.999, _WIRED)
    return Path((_csms(), link, iso or build_iso_segment()), name="wired internet")


#: The default paths, by ``[cyber] path``; each takes the ISO 15118 segment (default: ``dc-2``).
PATHS: dict[str, Callable[..., Path]] = {"lte": _lte, "nbiot": _nbiot, "wired": _wired}


def build_default_path(variant: str, iso_loop: str = "dc-2") -> Path:
    """The default path ``variant`` (a key of :data:`PATHS`) with the ISO 15118 segment of the charge loop
    ``iso_loop`` (a key of :data:`ISO_LOOPS`; default ISO 15118-2 DC, CurrentDemandReq)."""
    from v2gtwin.errors import DataError

    if variant not in PATHS:
        raise DataError(f"cyber.path = {variant!r} is not one of {', '.join(PATHS)}")
    return PATHS[variant](build_iso_segment(iso_loop))


@dataclass(frozen=True)
class Service:
    """A grid service and the time within which its command must land.

    Attributes
    ----------
    name : the service.
    deadline_s : time within which the command must land, None for a service that needs no command [s].
    needs_path : False when the service is delivered locally (droop) and no command travels.
    basis : what the deadline is and where it comes from.
    """

    name: str
    deadline_s: float | None
    needs_path: bool
    basis: str


def build_services(reg_dt_s: float, reserve_lead_s: float, dr_lead_s: float) -> tuple[Service, ...]:
    """The services table: primary response (local droop, no path), AGC / regulation (one signal period),
    contingency reserve (the scenario's lead time) and demand response (the scenario's notice)."""
    return (
        Service(
            "primary frequency response",
            None,
            False,
            "local droop on measured frequency; no command travels [NERC BAL-003-2]",
        ),
        Service(
            "AGC / regulation",
            reg_dt_s,
            True,
            f"a set-point must land before the next one, {reg_dt_s:g} s later [PJM Manual 12, 4.5: 2 s signal]",
        ),
        Service(
            "contingency reserve",
            reserve_lead_s,
            True,
            f"delivery within the reserve lead time, {reserve_lead_s / 60:g} min (frequency.reserve_lead_min) "
            "[NERC BAL-002-3: 15 min recovery period; 10-min spinning reserve]",
        ),
        Service(
            "demand response",
            dr_lead_s,
            True,
            f"notice before the event, {dr_lead_s / 60:g} min (frequency.dr_notify_hour to dr_start_hour)",
        ),
    )
