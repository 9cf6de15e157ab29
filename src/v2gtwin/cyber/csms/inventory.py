"""What a station says it is: its device model (GetBaseReport → NotifyReport, OCPP 2.0.1 and 2.1) and its DER
control settings (GetDERControl → ReportDERControl, OCPP 2.1), requested once its boot is accepted and kept in the
store (tables ``reported_variables`` and ``der_controls``), so that an audit can run on what is installed
(:mod:`v2gtwin.compliance.from_csms`).

The handlers are mix-ins of the station classes of :mod:`v2gtwin.cyber.csms.server` (the ``ocpp`` package routes
by the ``@on`` methods a class has); :func:`request_inventory` is what the central system sends. A report comes in
parts (``tbc`` true on all but the last); each part is committed through the group-commit writer before it is
answered, like every other message that changes the store.

References
----------
OCA, *OCPP 2.0.1 Part 2 — Specification*, B07 Get Base Report, B08 Get Custom Report (NotifyReportRequest
``reportData``: component, variable, variableAttribute, variableCharacteristics).
OCA, *OCPP 2.1 Edition 1*, block R (DER control): GetDERControlRequest, ReportDERControlRequest; the message
schemas as shipped in the ``ocpp`` package (``ocpp/v21/schemas``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v21 import call_result as call_result21
from ocpp.v201 import call_result

from v2gtwin.cyber.csms.store import Store

if TYPE_CHECKING:
    from v2gtwin.cyber.csms.server import Csms

__all__ = ["DER_LISTS", "InventoryRequests", "der_control_rows", "report_rows", "request_inventory"]

logger = logging.getLogger(__name__)

# ReportDERControlRequest's lists (snake_case, as the ``ocpp`` package passes them) and the DERControlEnumType of
# their elements; ``curve`` elements carry their own ``curveType``.
DER_LISTS: dict[str, str | None] = {
    "curve": None,
    "enter_service": "EnterService",
    "fixed_pf_absorb": "FixedPFAbsorb",
    "fixed_pf_inject": "FixedPFInject",
    "fixed_var": "FixedVar",
    "freq_droop": "FreqDroop",
    "gradient": "Gradients",
    "limit_max_discharge": "LimitMaxDischarge",
}
# The element of each *GetType that holds the setting (and its priority).
_DER_BODY = {
    "curve": "curve",
    "enter_service": "enter_service",
    "fixed_pf_absorb": "fixed_pf",
    "fixed_pf_inject": "fixed_pf",
    "fixed_var": "fixed_var",
    "freq_droop": "freq_droop",
    "gradient": "gradient",
    "limit_max_discharge": "limit_max_discharge",
}


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def report_rows(report_data: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store rows (:class:`~v2gtwin.cyber.csms.store.ReportedVariable` fields) of a NotifyReport's
    ``report_data`` (snake_case, as the ``ocpp`` package passes it): one row per variable attribute."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in report_data:
        component, variable = item["component"], item["variable"]
        evse = component.get("evse") or {}
        chars = item.get("variable_characteristics") or {}
        for attr in item.get("variable_attribute") or []:
            row = {
                "component": str(component["name"]),
                "component_instance": str(component.get("instance", "")),
                "evse_id": int(evse.get("id", 0)),
                "connector_id": int(evse.get("connector_id", 0)),
                "variable": str(variable["name"]),
                "variable_instance": str(variable.get("instance", "")),
                "attribute": str(getattr(attr.get("type"), "value", attr.get("type") or "Actual")),
                "value": None if attr.get("value") is None else str(attr["value"]),
                "unit": str(chars.get("unit", "")),
                "data_type": str(getattr(chars.get("data_type"), "value", chars.get("data_type") or "")),
                "min_limit": _opt_float(chars.get("min_limit")),
                "max_limit": _opt_float(chars.get("max_limit")),
            }
            key = tuple(row[k] for k in ("component", "component_instance", "evse_id", "connector_id"))
            rows[(*key, row["variable"], row["variable_instance"], row["attribute"])] = row  # the last one wins
    return list(rows.values())


def der_control_rows(lists: dict[str, Any]) -> list[dict[str, Any]]:
    """The store rows (:class:`~v2gtwin.cyber.csms.store.DerControlRecord` fields) of a ReportDERControl's lists
    (snake_case keys as the ``ocpp`` package passes them; each element stored back in wire format, camelCase)."""
    rows: list[dict[str, Any]] = []
    for key, control_type in DER_LISTS.items():
        for element in lists.get(key) or []:
            body = element.get(_DER_BODY[key]) or {}
            ctype = control_type or str(getattr(element["curve_type"], "value", element["curve_type"]))
            rows.append(
                {
                    "control_type": ctype,
                    "control_id": str(element["id"]),
                    "is_default": bool(element.get("is_default", True)),
                    "is_superseded": bool(element.get("is_superseded", False)),
                    "priority": int(body.get("priority", 0)),
                    "body_json": json.dumps(snake_to_camel_case(element), separators=(",", ":")),
                }
            )
    return rows


class InventoryRequests:
    """The central system's report requests: ``status`` (station -> request -> the station's answer) and the
    reports awaited (their ``requestId``) until their last part is stored."""

    def __init__(self) -> None:
        self.status: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self._awaiting: dict[str, set[int]] = {}

    def next_id(self) -> int:
        """A fresh ``requestId``."""
        return next(self._ids)

    def expect(self, station_id: str, request_id: int) -> None:
        """A report was requested from a station: awaited until its last part arrives."""
        self._awaiting.setdefault(station_id, set()).add(request_id)

    def arrived(self, station_id: str, request_id: int) -> None:
        """The last part of a report was stored (or none will come: the request was refused)."""
        self._awaiting.get(station_id, set()).discard(request_id)

    def complete(self, station_id: str) -> bool:
        """Every request was answered and every report accepted has arrived in full."""
        return station_id in self.status and not self._awaiting.get(station_id)


class InventoryHandlers:
    """NotifyReport, in both versions' station classes: the parts of a device-model report, stored."""

    id: str
    csms: Csms | None

    @on("NotifyReport")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_notify_report(
        self, generated_at: str, request_id: int, seq_no: int, report_data: list[Any] | None = None, **kw: Any
    ) -> Any:
        rows = report_rows(report_data or [])
        if rows:
            await self._commit([Store.op_reported_variables(self.id, rows)])  # type: ignore[attr-defined]
        if not kw.get("tbc", False) and self.csms is not None:
            self.csms.inventory.arrived(self.id, int(request_id))
        return call_result.NotifyReport()


class DerControlHandlers:
    """ReportDERControl (OCPP 2.1 only): the parts of a DER control report, stored."""

    id: str
    csms: Csms | None

    @on("ReportDERControl")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_report_der_control(self, request_id: int, **lists: Any) -> Any:
        rows = der_control_rows(lists)
        if rows:
            await self._commit([Store.op_der_controls(self.id, rows)])  # type: ignore[attr-defined]
        if not lists.get("tbc", False) and self.csms is not None:
            self.csms.inventory.arrived(self.id, int(request_id))
        return call_result21.ReportDERControl()


async def request_inventory(csms: Csms, station_id: str, *, timeout_s: float = 30.0) -> dict[str, str]:
    """Ask a booted station for its full device model (GetBaseReport, ``FullInventory``) and, on OCPP 2.1, for its
    default DER controls (GetDERControl, ``isDefault`` true, every type). Returns each request's answer status
    (``Accepted``, ``NotSupported``, ... or ``timeout`` / ``error``); the reports themselves arrive afterwards as
    the station's own NotifyReport / ReportDERControl calls, and :meth:`InventoryRequests.arrived` counts them in."""
    handler = csms.stations.get(station_id)
    if handler is None:
        return {}
    requests: list[tuple[str, dict[str, Any]]] = [("GetBaseReport", {"report_base": "FullInventory"})]
    if handler.version == "ocpp2.1":
        requests.append(("GetDERControl", {"is_default": True}))
    out: dict[str, str] = {}
    for action, fields in requests:
        request_id = csms.inventory.next_id()
        csms.inventory.expect(station_id, request_id)
        try:
            answer = await csms.send(station_id, action, request_id=request_id, timeout_s=timeout_s, **fields)
            status = str(getattr(answer.status, "value", answer.status))
        except TimeoutError:
            status = "timeout"
        except (LookupError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a CALLERROR (NotImplemented...) or a lost connection: logged, not fatal
            logger.info("%s to %s failed: %r", action, station_id, exc)
            status = "error"
        if status != "Accepted":
            csms.inventory.arrived(station_id, request_id)  # no report will come
        out[action] = status
    csms.inventory.status[station_id] = out
    return out
