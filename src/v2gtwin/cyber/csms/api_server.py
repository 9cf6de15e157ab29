"""Serving the HTTP API (:mod:`v2gtwin.cyber.csms.api`) with uvicorn in the central system's own event loop:
not a thread, not a second process. The API's handlers read the central system's connections and call its
dispatch directly, and the OCPP websockets and the HTTP requests share one loop.

uvicorn's ``Server.startup`` / ``main_loop`` / ``shutdown`` run as a task of the caller's loop (``Server.serve``
would take over the process's signal handlers). Its access log is off: no request line (nor a query string)
is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

import uvicorn

from v2gtwin.cyber.csms.api import build_app
from v2gtwin.cyber.csms.live_state import AlarmSettings, LiveState
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.tokens import TokenStore

__all__ = ["ApiServer"]

logger = logging.getLogger(__name__)


class ApiServer:
    """The HTTP API and dashboard of a running :class:`Csms`.

    Parameters
    ----------
    csms : the central system (started or not; its loop must be the one :meth:`start` runs in).
    host, port : where to listen (127.0.0.1 by default; port 0 picks a free one, see :attr:`port`).
    ssl_context : TLS server context (``https``); ``v2gtwin csms serve`` passes the OCPP server's own one when
    the OCPP side runs security profile 2 or 3 (without client certificates: the API authenticates by token).
    open_reads : GET routes without a token. alarms : the dashboard's alarm settings.
    sample_every_s : spacing of the dashboard's fleet history [s]; history_h : hours kept [h].
    """

    def __init__(
        self,
        csms: Csms,
        tokens: TokenStore | None = None,
        host: str = "127.0.0.1",
        port: int = 9001,
        *,
        ssl_context: ssl.SSLContext | None = None,
        open_reads: bool = False,
        alarms: AlarmSettings | None = None,
        sample_every_s: float = 10.0,
        history_h: float = 6.0,
    ) -> None:
        self.csms = csms
        self.tokens = tokens or TokenStore(csms.store.engine)
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.live = LiveState(alarms=alarms or AlarmSettings(), history_h=history_h, sample_every_s=sample_every_s)
        self.app = build_app(csms, self.tokens, self.live, open_reads=open_reads)
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._sockets: list[socket.socket] = []

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """The API's base URL (``http[s]://host:port``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve (returns once listening; the actual port is in :attr:`port`)."""
        self.csms.value_listeners.append(self.live.on_values)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)
        sock.setblocking(False)
        self._sockets = [sock]
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            server_header=False,
            loop="none",
            http="h11",
            ws="none",
            backlog=2048,
        )
        config.load()
        config.ssl = self.ssl_context  # the central system's context (uvicorn would build its own from files)
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)  # as Server._serve does (lifespan "off": a no-op)
        await self._server.startup(sockets=self._sockets)
        self._tasks = [
            asyncio.create_task(self._server.main_loop()),
            asyncio.create_task(self._sample()),
        ]

    async def _sample(self) -> None:
        while True:
            self.live.sample(set(self.csms.stations))
            await asyncio.sleep(self.live.sample_every_s)

    async def stop(self) -> None:
        """End the event streams, stop listening and close the connections."""
        self.app.state.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        if self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await self._tasks[0]
        if self._server is not None and self._server.started:
            await self._server.shutdown(sockets=self._sockets)
        for task in self._tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ValueError):
            self.csms.value_listeners.remove(self.live.on_values)

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
