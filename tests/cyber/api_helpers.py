"""A running central system with its HTTP API and simulated stations, in a background thread's event loop, for
tests that talk to it over loopback from the test's own thread (the API client is blocking, as a user's is)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from v2gtwin.cyber.csms.api_server import ApiServer
from v2gtwin.cyber.csms.live_state import AlarmSettings
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.simulator import SimEV, SimStation, SimStation21, run_station
from v2gtwin.cyber.csms.store import Store
from v2gtwin.cyber.csms.tokens import TokenStore


class LiveSystem:
    """``Csms`` + ``ApiServer`` on free loopback ports and one simulated station per EV of ``evs`` (ids
    ``SIM-0``, ``SIM-1``, ...; each sends ``reports`` MeterValues, then ``report_every_s`` > 0 keeps it
    reporting, except the stations in ``quiet``), in a thread of their own. ``token`` is an active API token."""

    def __init__(
        self,
        tmp_path: Path,
        evs: list[SimEV] | None = None,
        *,
        reports: int = 1,
        report_every_s: float = 0.0,
        open_reads: bool = False,
        alarms: AlarmSettings | None = None,
        sample_every_s: float = 10.0,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
        self.tokens = TokenStore(self.store.engine, refresh_s=0.2)
        self.token = self.tokens.create("tests")
        self.evs = evs or []
        self.reports = reports
        self.report_every_s = report_every_s
        self.open_reads = open_reads
        self.alarms = alarms
        self.sample_every_s = sample_every_s
        self.quiet = quiet  # stations left out of the regular reports
        self.registry: dict[str, SimStation | SimStation21] = {}
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveSystem:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the central system did not start within 60 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.csms = Csms(self.store, port=0)
            await self.csms.start()
            self.api = ApiServer(
                self.csms,
                self.tokens,
                port=0,
                open_reads=self.open_reads,
                alarms=self.alarms,
                sample_every_s=self.sample_every_s,
            )
            await self.api.start()
            self.url = self.api.url
            readies = [asyncio.Event() for _ in self.evs]
            stop_stations = asyncio.Event()
            tasks = [
                asyncio.create_task(
                    run_station(
                        f"ws://127.0.0.1:{self.csms.port}",
                        f"SIM-{k}",
                        ev=ev,
                        reports=self.reports,
                        ready=readies[k],
                        stop=stop_stations,
                        registry=self.registry,
                    )
                )
                for k, ev in enumerate(self.evs)
            ]
            await asyncio.gather(*(r.wait() for r in readies))
            reporter = asyncio.create_task(self._keep_reporting()) if self.report_every_s > 0 else None
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        if reporter is not None:
            reporter.cancel()
        stop_stations.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.api.stop()
        await self.csms.stop()

    async def _keep_reporting(self) -> None:
        while True:
            await asyncio.sleep(self.report_every_s)
            stations = [st for sid, st in self.registry.items() if sid not in self.quiet]
            await asyncio.gather(*(st.report(1.0) for st in stations), return_exceptions=True)

    def call(self, coro: Any, timeout_s: float = 30.0) -> Any:
        """Run a coroutine in the system's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


def http(
    method: str, url: str, token: str | None = None, body: bytes | None = None, timeout_s: float = 30.0
) -> tuple[int, bytes]:
    """One raw request: (status, body). ``body`` is sent as is (JSON content type)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def loc_of(answer: bytes) -> list[list[Any]]:
    """The ``loc`` of each error of a 422 answer."""
    return [e["loc"] for e in json.loads(answer)["detail"]]
