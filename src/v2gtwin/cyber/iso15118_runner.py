"""Run one side of a real ISO 15118 session (the ``iso15118`` package's SECC or EVCC) and timestamp every message.

This file is a standalone script, run by the Python of the separate virtual environment ``.venv-iso15118``
(``make iso15118-venv``): the ``iso15118`` package pins pydantic 1.10 and cryptography 44, which conflict with
v2gtwin's own pins, so v2gtwin never imports it. It imports nothing from v2gtwin either.
:mod:`v2gtwin.cyber.iso15118_session` starts two copies of it, the SECC in one network namespace and the EVCC in
the other, and reads the JSON-lines event files they write.

The stack runs unchanged (its own state machines, EXI codec in Java through py4j, TLS through :mod:`ssl`); this
script only wraps a few of its methods to record, with the shared wall clock of the machine
(``time.time_ns``; both namespaces share the kernel's clock, so the two files can be compared):

* ``tx``  -- a V2GTP message is handed to the TCP socket (before ``writer.write``) [name, bytes];
* ``rx``  -- a V2GTP message has been read from the TCP socket (entry of ``process_message``) [bytes];
* ``dec`` -- its EXI payload is decoded [name]; ``enc`` -- an outgoing message is EXI-encoded [name];
* ``listening`` -- the SECC's SDP server listens (the EVCC may be started);
* ``sdp_tx``/``sdp_rx`` -- the EVCC's SDP request handed to its UDP socket, and the SECC's answer read;
* ``connect_start``/``connected`` -- the EVCC's TCP (and TLS, when used) connection to the SECC, within which
  ``ssl_context_start``/``ssl_context_done`` bracket the TLS context set-up (reading and decrypting its keys and
  certificates from disk), which is no part of the handshake;
* ``failed`` -- the EVCC's session ended without a SessionStopRes (it exits with code 5);
* ``end`` -- the EVCC has processed the session's SessionStopRes (it then exits at once instead of waiting the
  stack's 5 s before closing the TCP connection, which is no part of the exchange being measured).

Usage::

    python iso15118_runner.py secc EVENTS_FILE
    python iso15118_runner.py evcc EVENTS_FILE EV_CONFIG_JSON

Settings come from environment variables read by the stack itself (``NETWORK_INTERFACE``, ``PKI_PATH``,
``ENABLE_TLS_1_3``, ``PROTOCOLS``, ``LOG_LEVEL``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

#: The EVCC gives up (exit code 3) when no SessionStopRes arrived within this time [s].
EVCC_DEADLINE_S = 120.0


class _EventLog:
    """Append-only JSON-lines event file, flushed after each event (the process may be killed at any time)."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the process's life)

    def write(self, kind: str, **fields: Any) -> None:
        rec = {"t_ns": time.time_ns(), "kind": kind, **fields}
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()


def _install_probes(log: _EventLog, side: str) -> None:  # pragma: no cover (runs in the other venv)
    from iso15118.shared.comm_session import SessionStateMachine, V2GCommunicationSession
    from iso15118.shared.exi_codec import EXI

    orig_send = V2GCommunicationSession.send
    orig_process = SessionStateMachine.process_message
    orig_from_exi = EXI.from_exi
    orig_to_exi = EXI.to_exi

    async def send(self: Any, message: Any) -> None:
        log.write("tx", name=str(self.current_state.message), n_bytes=len(message.to_bytes()))
        await orig_send(self, message)

    async def process_message(self: Any, message: bytes) -> None:
        log.write("rx", n_bytes=len(message))
        await orig_process(self, message)
        if side == "evcc" and _last_decoded[0].endswith("SessionStopRes"):
            log.write("end")
            os._exit(0)

    _last_decoded = [""]

    def from_exi(self: Any, exi_message: bytes, namespace: str) -> Any:
        decoded = orig_from_exi(self, exi_message, namespace)
        _last_decoded[0] = str(decoded)
        log.write("dec", name=str(decoded))
        return decoded

    def to_exi(self: Any, msg_element: Any, protocol_ns: str) -> bytes:
        out = orig_to_exi(self, msg_element, protocol_ns)
        log.write("enc", name=type(msg_element).__name__)
        return out

    V2GCommunicationSession.send = send
    SessionStateMachine.process_message = process_message
    EXI.from_exi = from_exi
    EXI.to_exi = to_exi

    if side == "secc":
        from iso15118.secc.transport import udp_server

        orig_start = udp_server.UDPServer.start

        async def start(self: Any, ready_event: asyncio.Event) -> None:
            orig_set = ready_event.set

            def set_() -> None:
                log.write("listening")
                orig_set()

            ready_event.set = set_  # type: ignore[method-assign]
            await orig_start(self, ready_event)

        udp_server.UDPServer.start = start

    if side == "evcc":
        from iso15118.evcc import comm_session_handler as evh
        from iso15118.evcc.transport import tcp_client

        orig_restart = evh.CommunicationSessionHandler.restart_sdp
        from iso15118.evcc.transport import udp_client

        orig_udp_send = udp_client.UDPClient.send
        orig_ctx = tcp_client.get_ssl_context

        def udp_send(self: Any, message: Any) -> None:
            log.write("sdp_tx")
            orig_udp_send(self, message)

        def get_ssl_context(*args: Any, **kwargs: Any) -> Any:
            log.write("ssl_context_start")
            ctx = orig_ctx(*args, **kwargs)
            log.write("ssl_context_done")
            return ctx

        async def restart_sdp(self: Any, new_sdp_cycle: bool) -> None:
            if new_sdp_cycle and _connected[0]:  # the session ended without its SessionStopRes
                log.write("failed")
                os._exit(5)
            await orig_restart(self, new_sdp_cycle)

        orig_udp = evh.CommunicationSessionHandler.process_incoming_udp_packet
        orig_create = tcp_client.TCPClient.create

        async def process_incoming_udp_packet(self: Any, message: Any) -> None:
            log.write("sdp_rx", n_bytes=len(message.data))
            await orig_udp(self, message)

        async def create(*args: Any, **kwargs: Any) -> Any:
            log.write("connect_start", tls=bool(args[3] if len(args) > 3 else kwargs.get("is_tls")))
            client = await orig_create(*args, **kwargs)
            _connected[0] = True
            ssl_obj = client.writer.get_extra_info("ssl_object")
            log.write(
                "connected",
                tls_version=ssl_obj.version() if ssl_obj else None,
                cipher=ssl_obj.cipher()[0] if ssl_obj else None,
            )
            return client

        _connected = [False]
        evh.CommunicationSessionHandler.restart_sdp = restart_sdp
        udp_client.UDPClient.send = udp_send
        tcp_client.get_ssl_context = get_ssl_context
        evh.CommunicationSessionHandler.process_incoming_udp_packet = process_incoming_udp_packet
        tcp_client.TCPClient.create = staticmethod(create)


async def _run_secc() -> None:  # pragma: no cover (runs in the other venv)
    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.secc.secc_settings import Config
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    config = Config()
    config.load_envs()
    ctrl = SimEVSEController()
    await ctrl.set_status(ServiceStatus.STARTING)
    await SECCHandler(exi_codec=ExificientEXICodec(), evse_controller=ctrl, config=config).start(config.iface)


async def _run_evcc(ev_config_path: str, log: _EventLog) -> None:  # pragma: no cover (runs in the other venv)
    from iso15118.evcc import Config, EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import load_from_file
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    config = Config()
    config.load_envs()
    evcc_config = await load_from_file(ev_config_path)
    handler = EVCCHandler(
        evcc_config=evcc_config,
        iface=config.iface,
        exi_codec=ExificientEXICodec(),
        ev_controller=SimEVController(evcc_config),
    )
    log.write("ready")
    try:
        await asyncio.wait_for(handler.start(), EVCC_DEADLINE_S)
    except TimeoutError:
        log.write("timeout", deadline_s=EVCC_DEADLINE_S)
        os._exit(3)
    log.write("stopped")
    os._exit(4)


def main(argv: list[str]) -> int:  # pragma: no cover (runs in the other venv)
    side, events_path = argv[1], argv[2]
    log = _EventLog(events_path)
    _install_probes(log, side)
    if side == "secc":
        asyncio.run(_run_secc())
    else:
        asyncio.run(_run_evcc(argv[3], log))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
