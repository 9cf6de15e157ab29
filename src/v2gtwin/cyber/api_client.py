"""A small client of the central system's HTTP API (:mod:`v2gtwin.cyber.csms.api`), on the standard library
alone (``urllib``): what ``v2gtwin csms dispatch --server`` and the closed loop (:mod:`v2gtwin.live`) use.

Every call raises :class:`ApiError` (a :class:`~v2gtwin.errors.V2GTwinError`) with one line naming the route and
the reason: the server unreachable, 401 (token missing, wrong or revoked), 422 (the fields the server named),
another status, an answer that is not JSON. Blocking calls: from asyncio code, run them in a thread.
"""

from __future__ import annotations

import contextlib
import json
import math
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from v2gtwin.errors import V2GTwinError

__all__ = ["ApiClient", "ApiError"]


class ApiError(V2GTwinError):
    """A call to the central system's API failed; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    """A TLS client context trusting ``cafile`` (PEM) or, without it, the system's store; a missing, unreadable
    or non-PEM file is an :class:`ApiError` naming ``--cafile`` (never a traceback)."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except FileNotFoundError:
        raise ApiError(f"--cafile {cafile}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(f"--cafile {cafile}: not a readable PEM CA certificate ({first})") from None


class ApiClient:
    """The API of a running central system at ``base_url`` (``http[s]://HOST:PORT``), with bearer ``token``.

    timeout_s : per request [s] (a set-point POST waits up to its own ``timeout_s`` and retry for the stations'
    answers: the request's time-out is raised to cover it). cafile : CA certificate to verify an https server
    with (the central system's PKI ``ca.pem``); default: the system's trust store.
    """

    def __init__(self, base_url: str, token: str | None, timeout_s: float = 10.0, cafile: str | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(f"server URL {base_url!r}: expected http://HOST:PORT or https://HOST:PORT")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ApiError(f"timeout_s: a finite number of seconds > 0; got {timeout_s!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        if cafile is not None and parts.scheme != "https":
            raise ApiError(f"--cafile {cafile}: only used with an https:// server; got {base_url!r}")
        self._ssl = _ssl_context(cafile) if parts.scheme == "https" else None

    def _request(self, method: str, path: str, body: Any = None, timeout_s: float | None = None) -> Any:
        data = None
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        route = f"{method} {path.split('?', 1)[0]}"
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s, context=self._ssl) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            detail: Any = None
            with contextlib.suppress(ValueError):
                detail = json.loads(raw) if raw else None
            if exc.code == 401:
                raise ApiError(f"{route}: 401 unauthorized (token missing, wrong or revoked)", 401) from None
            if exc.code == 422 and isinstance(detail, dict):
                fields = "; ".join(
                    f"{'.'.join(str(x) for x in e.get('loc', []))}: {e.get('msg', '')}"
                    for e in detail.get("detail", [])[:5]
                )
                raise ApiError(f"{route}: 422 {fields}", 422, detail) from None
            raise ApiError(f"{route}: HTTP {exc.code}", exc.code, detail) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ApiError(f"{route}: no answer from {self.base_url} ({reason})") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(f"{route}: the answer is not JSON") from None

    def stations(self) -> list[dict[str, Any]]:
        """``GET /api/v1/stations``: every station with its EVSEs (state, latest p_kw and soc_pu, limits)."""
        return list(self._request("GET", "/api/v1/stations")["stations"])

    def transactions(self, active: bool | None = None) -> list[dict[str, Any]]:
        """``GET /api/v1/transactions``: transactions (``active`` True: not Ended)."""
        q = "" if active is None else f"?active={'true' if active else 'false'}"
        return list(self._request("GET", "/api/v1/transactions" + q)["transactions"])

    def charging_needs(self) -> list[dict[str, Any]]:
        """``GET /api/v1/charging-needs``: what the plugged-in EVs declared (departure, energy, limits, V2X)."""
        return list(self._request("GET", "/api/v1/charging-needs")["needs"])

    def meter_values(
        self,
        station_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
        cursor: str | None = None,
        measurand: str | None = None,
    ) -> dict[str, Any]:
        """``GET /api/v1/meter-values``: one page ``{"items", "next_cursor", "unreadable_timestamps"}``."""
        params = {
            k: v
            for k, v in {
                "station_id": station_id,
                "since": since,
                "until": until,
                "limit": limit,
                "cursor": cursor,
                "measurand": measurand,
            }.items()
            if v is not None
        }
        return dict(self._request("GET", "/api/v1/meter-values?" + urllib.parse.urlencode(params)))

    def all_meter_values(self, **filters: Any) -> Iterable[dict[str, Any]]:
        """Every meter value matching ``filters`` (as :meth:`meter_values`), following the pages."""
        cursor = None
        while True:
            page = self.meter_values(cursor=cursor, **filters)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def dashboard(self) -> dict[str, Any]:
        """``GET /api/v1/dashboard``: the dashboard's state and fleet history."""
        return dict(self._request("GET", "/api/v1/dashboard"))

    def post_setpoints(
        self, setpoints: list[Mapping[str, Any]], timeout_s: float = 10.0, duration_s: int | None = None
    ) -> list[dict[str, Any]]:
        """``POST /api/v1/setpoints``: set-points ``{"station_id", "evse_id" (1), "p_kw"}``; returns each
        station's ``{"station_id", "status", "latency_s", "error", ...}``. A non-finite ``p_kw`` is refused
        here (strict JSON) and by the server (422). ``duration_s``: the set-points hold that long, then each
        station falls back to its default (a loop that stops leaves no EV discharging); None: until replaced."""
        body: dict[str, Any] = {"setpoints": [dict(sp) for sp in setpoints], "timeout_s": timeout_s}
        if duration_s is not None:
            body["duration_s"] = int(duration_s)
        try:
            json.dumps(body, allow_nan=False)
        except ValueError:
            raise ApiError("POST /api/v1/setpoints: a p_kw is not a finite number (nothing sent)") from None
        # The server answers once every station has (up to timeout_s x 2 attempts), plus time to send them all.
        wait_s = max(self.timeout_s, 2.0 * timeout_s + 30.0)
        return list(self._request("POST", "/api/v1/setpoints", body, timeout_s=wait_s)["results"])
