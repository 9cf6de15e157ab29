"""`v2gtwin csms`: the OCPP central system, its station simulator, dispatch, PKI and passwords."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _emit,
    app,
)
from v2gtwin.errors import V2GTwinError

csms_app = typer.Typer(
    help="The OCPP 2.0.1 / 2.1 central system: serve stations, simulate them, dispatch set-points, make a PKI, "
    "set passwords.",
    no_args_is_help=True,
)
app.add_typer(csms_app, name="csms")


def _open_store(db: str) -> Any:
    """The store at ``db``, or a one-line error naming --db (a URL SQLAlchemy cannot parse, a driver that is not
    installed, a database that cannot be opened)."""
    from sqlalchemy.exc import SQLAlchemyError

    from v2gtwin.cyber.csms.store import Store
    from v2gtwin.errors import DataError

    try:
        return Store(db)
    except DataError as exc:
        raise V2GTwinError(f"--db {_shown_url(db)}: {exc}") from None
    except (SQLAlchemyError, ImportError) as exc:
        raise V2GTwinError(
            f"--db {_shown_url(db)}: cannot open the database ({_driver_reason(exc, db)}; expected an SQLAlchemy URL "
            "such as sqlite:///csms.sqlite or postgresql+psycopg://USER@HOST:PORT/DATABASE)"
        ) from None


def _driver_reason(exc: BaseException, db: str) -> str:
    """The error's class and the driver's first line (e.g. 'connection refused', 'password authentication
    failed'), with the URL's password, if any, replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    try:
        password = make_url(db).password
    except (ArgumentError, ValueError):
        password = None
    if password:
        first = first.replace(str(password), "***")
    first = first[:200]
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def _shown_url(db: str) -> str:
    """A database URL as printed: its password, if any, as ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(db).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return db


def _check_station_id(station_id: str, field: str) -> None:
    """A one-line error naming ``field`` when ``station_id`` breaks the central system's rule (the server refuses
    such a station at connection time: ``STATION_ID``)."""
    from v2gtwin.cyber.csms.server import STATION_ID

    if not STATION_ID.match(station_id):
        raise V2GTwinError(f"{field} {station_id!r}: 1 to 48 of A-Z a-z 0-9 . _ : -")


def _check_host(host: str, port: int, option: str = "--host") -> None:
    """A one-line error naming ``option`` when ``host`` is neither an address nor a name this machine resolves
    (checked before anything is read, opened or served)."""
    import socket

    try:
        socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise V2GTwinError(f"{option} {host!r}: not an address or a name this machine resolves ({reason})") from None


def _check_url(url: str) -> None:
    """A one-line error naming --url unless it is a ws:// or wss:// URL (websockets' own URI parser: host,
    port 0-65535) without a query (the station id is appended as the last path segment)."""
    from websockets.exceptions import InvalidURI
    from websockets.uri import parse_uri

    try:
        uri = parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise V2GTwinError(f"--url {url!r}: expected ws://HOST:PORT or wss://HOST:PORT, port 0-65535 ({exc})") from None
    if uri.query:
        raise V2GTwinError(f"--url {url!r}: no query allowed (the station id is appended to the path)")


@csms_app.command("serve")
def csms_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 9000,
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
    profile: Annotated[
        int, typer.Option(min=0, max=3, help="Security profile: 0 none (development), 1 Basic, 2 TLS + Basic, 3 mTLS.")
    ] = 0,
    pki: Annotated[
        Path | None, typer.Option(help="PKI folder made by 'v2gtwin csms pki FOLDER' (profiles 2 and 3).")
    ] = None,
    max_frame_kib: Annotated[
        int, typer.Option(min=1, max=16_384, help="Largest accepted frame [KiB]; larger ones close the connection.")
    ] = 64,
    status_every: Annotated[
        float,
        typer.Option(min=0.0, max=86_400.0, help="Seconds between status lines on stderr (0: none)."),
    ] = 60.0,
    inventory: Annotated[
        bool,
        typer.Option(
            help="After a station's boot, ask for its device model (GetBaseReport) and, on OCPP 2.1, its DER "
            "controls (GetDERControl), and store them (read by 'v2gtwin comply --from-csms')."
        ),
    ] = True,
    api_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve the HTTP API and dashboard on this port too (0: any free port; default: no API). Tokens: "
            "'csms token create'.",
        ),
    ] = None,
    api_host: Annotated[str, typer.Option(help="Address the HTTP API listens on.")] = "127.0.0.1",
    api_open_reads: Annotated[
        bool, typer.Option(help="Let the API's GET routes answer without a token (writes always need one).")
    ] = False,
    alarm_stale_s: Annotated[
        float,
        typer.Option(min=1.0, max=86_400.0, help="Dashboard: a station silent this long [s] has stopped reporting."),
    ] = 180.0,
    alarm_settle_s: Annotated[
        float, typer.Option(min=0.0, max=3600.0, help="Dashboard: time to follow a set-point before it is checked [s].")
    ] = 30.0,
    alarm_tolerance_kw: Annotated[
        float, typer.Option(min=0.0, max=1000.0, help="Dashboard: allowed gap between power and set-point [kW].")
    ] = 0.5,
) -> None:
    """Run the OCPP 2.0.1 / 2.1 central system until interrupted (stations connect at
    ws[s]://HOST:PORT/<station_id>). Prints the address it listens on (the actual port with --port 0), then a
    status line every --status-every seconds: stations connected, stations that were connected and went away,
    meter values committed and their rate."""
    import asyncio

    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.errors import DataError

    _check_host(host, port)
    store = _open_store(db)
    certfile = keyfile = cafile = None
    if profile >= 2:
        if pki is None or not pki.is_dir():
            where = "--pki:" if pki is None else f"--pki {pki}: not a folder;"
            raise V2GTwinError(
                f"{where} profile {profile} needs the PKI folder made by 'v2gtwin csms pki FOLDER --station ID'"
            )
        certfile, keyfile, cafile = str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem")
    try:
        csms = Csms(
            store,
            host=host,
            port=port,
            max_message_bytes=max_frame_kib * 1024,
            security_profile=profile,
            certfile=certfile,
            keyfile=keyfile,
            cafile=cafile,
            inventory_on_boot=inventory,
        )
    except DataError as exc:
        raise V2GTwinError(f"--pki {pki}: {exc}") from None
    scheme = "wss" if profile >= 2 else "ws"
    _check_host(api_host, api_port or 0, "--api-host")  # checked even without --api-port: a typo is never ignored

    async def serve() -> None:
        async with csms, contextlib.AsyncExitStack() as stack:
            api = None
            if api_port is not None:  # bound before anything is printed: a busy port is the only line
                alarms = (alarm_stale_s, alarm_settle_s, alarm_tolerance_kw)
                api = await stack.enter_async_context(_api_server(csms, api_host, api_port, api_open_reads, alarms))
            sys.stderr.write(
                f"csms: {scheme}://{host}:{csms.port}/<station_id> (ocpp2.1 / ocpp2.0.1, security profile "
                f"{profile}), db {_shown_url(db)}\n"
            )
            if api is not None:
                sys.stderr.write(
                    f"csms: HTTP API and dashboard at {api.url}/ (reads {'open' if api_open_reads else 'by token'})\n"
                )
            sys.stderr.flush()
            if status_every <= 0:
                await asyncio.Future()
            loop = asyncio.get_running_loop()
            t_last, n_last = loop.time(), csms.committed_values
            while True:
                await asyncio.sleep(status_every)
                now, n = loop.time(), csms.committed_values
                sys.stderr.write(
                    f"csms: {len(csms.stations)} stations connected, {len(csms.disconnected)} disconnected, "
                    f"{n} meter values committed "
                    f"({(n - n_last) / (now - t_last):.0f}/s over the last {now - t_last:.3g} s)\n"
                )
                sys.stderr.flush()
                t_last, n_last = now, n

    try:
        asyncio.run(serve())
    except _ApiListenError as exc:
        raise V2GTwinError(f"--api-port {api_port}: cannot listen on {api_host} ({exc})") from None
    except OSError as exc:
        raise V2GTwinError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None


class _ApiListenError(Exception):
    """The API's port could not be bound (told apart from the OCPP port's error)."""


@contextlib.asynccontextmanager
async def _api_server(csms: Any, host: str, port: int, open_reads: bool, alarms: tuple[float, float, float]) -> Any:
    """The HTTP API beside a started central system, with its TLS context (profiles 2 and 3: the server's own
    certificate, no client certificate) and the dashboard's alarm settings (stale_after_s, settle_s,
    tolerance_kw)."""
    from v2gtwin.cyber.csms.api_server import ApiServer
    from v2gtwin.cyber.csms.live_state import AlarmSettings

    api = ApiServer(
        csms,
        host=host,
        port=port,
        ssl_context=csms.api_ssl_context(),
        open_reads=open_reads,
        alarms=AlarmSettings(*alarms),
    )
    try:
        await api.start()
    except OSError as exc:
        raise _ApiListenError(exc.strerror or str(exc)) from None
    try:
        yield api
    finally:
        await api.stop()


@csms_app.command("simulate")
def csms_simulate(
    url: Annotated[str, typer.Option(help="Central system URL (ws://HOST:PORT).")] = "ws://127.0.0.1:9000",
    stations: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated stations.")] = 10,
    reports: Annotated[int, typer.Option(min=0, max=100_000, help="MeterValues each station sends.")] = 3,
    interval: Annotated[float, typer.Option(min=0.0, max=3600.0, help="Seconds between reports.")] = 1.0,
    hold: Annotated[float, typer.Option(min=0.0, max=86_400.0, help="Seconds to stay connected afterwards.")] = 0.0,
    reconnects: Annotated[
        int, typer.Option(min=0, max=100, help="Reconnection attempts per station (exponential back-off).")
    ] = 3,
    scenario: ScenarioOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run simulated stations (security profile 0 servers), each with an EV drawn from the scenario's fleet
    model: they boot, declare their charging needs (V2X EVs on OCPP 2.1), report, and obey charging profiles."""
    import asyncio

    import numpy as np
    from websockets.exceptions import WebSocketException

    from v2gtwin.cyber.csms.simulator import CentralSystemLostError, run_fleet
    from v2gtwin.cyber.csms.validation import configure_ocpp_validation
    from v2gtwin.cyber.fleet_link import fleet_to_sim_evs
    from v2gtwin.fleet import synthesize_fleet
    from v2gtwin.scenario import load_scenario

    _check_url(url)
    scen = load_scenario(scenario)
    # Derived through replace, validated like a file (model_copy would skip the checks).
    spec = scen.replace(fleet={"n_evs": stations, "source": "synthetic", "sessions_csv": None}).fleet
    ev_fleet = synthesize_fleet(spec, scen.time, 33, np.random.default_rng([scen.seed, 71]))
    evs = fleet_to_sim_evs(ev_fleet)
    configure_ocpp_validation()  # this process runs simulated stations alone (the documented opt-in)
    try:
        fleet = asyncio.run(
            run_fleet(
                url,
                stations,
                evs=evs,
                reports=reports,
                interval_s=interval,
                hold_s=hold,
                max_attempts=reconnects + 1,
                freeze_gc=stations >= 1000,  # this process is the simulator's alone
            )
        )
    except CentralSystemLostError as exc:  # connected, then lost the central system
        raise V2GTwinError(f"--url {url}: {exc}") from None
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise V2GTwinError(f"--url {url}: cannot connect ({getattr(exc, 'strerror', None) or exc})") from None
    _emit(
        {
            "stations": len(fleet),
            "stations_failed": stations - len(fleet),
            "v2x_stations": sum(s.ev.v2x for s in fleet),
            "reports_each": reports,
            "profiles_received": sum(len(s.profiles) for s in fleet),
            "soc_mean_pu": sum(s.soc_pu for s in fleet) / max(len(fleet), 1),
        },
        json_out,
    )


def _read_set_points(csv_file: Path) -> dict[str, float]:
    """The CSV's set-points: header 'station_id,limit_w', then one line per station; a one-line error names the
    line of a malformed row, a station id outside OCPP's characters, a value that is not a finite number, or a
    station listed twice."""
    import csv
    import math

    try:
        with csv_file.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise V2GTwinError(f"{csv_file}: cannot read ({exc})") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["station_id", "limit_w"]:
        raise V2GTwinError(f"{csv_file}: the first line must be the header 'station_id,limit_w'")
    limits: dict[str, float] = {}
    first_line: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=2):
        try:
            sid, value = row[0].strip(), float(row[1])
        except (ValueError, IndexError):
            raise V2GTwinError(f"{csv_file}, line {i}: expected 'station_id,limit_w', got {row!r}") from None
        _check_station_id(sid, f"{csv_file}, line {i}: station_id")
        if not math.isfinite(value):
            raise V2GTwinError(f"{csv_file}, line {i}: limit_w {row[1].strip()!r} is not a finite number of W")
        if sid in limits:
            raise V2GTwinError(f"{csv_file}, line {i}: station_id {sid!r} already given on line {first_line[sid]}")
        limits[sid], first_line[sid] = value, i
    if not limits:
        raise V2GTwinError(f"{csv_file}: no set-points after the header")
    return limits


@csms_app.command("dispatch")
def csms_dispatch(
    csv_file: Annotated[Path, typer.Argument(help="CSV 'station_id,limit_w' of set-points.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to serve on.")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
    wait: Annotated[float, typer.Option(min=0.0, max=3600.0, help="Seconds to wait for the stations.")] = 30.0,
    timeout: Annotated[float, typer.Option(min=0.1, max=600.0, help="Per-call timeout [s].")] = 10.0,
    server: Annotated[
        str | None,
        typer.Option(
            help="Send through the HTTP API of a running 'csms serve --api-port' (http[s]://HOST:PORT) instead of "
            "serving here (--port, --host, --db, --wait then unused)."
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the API token ('csms token create'), with --server.")
    ] = None,
    cafile: Annotated[Path | None, typer.Option(help="CA certificate of an https --server (the PKI's ca.pem).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Serve, wait until the CSV's stations are connected and their BootNotification accepted (or --wait passes),
    push their set-points as charging profiles concurrently, and report each station's outcome and the latency
    distribution. A station is sent nothing before its boot is accepted. Exit code 1 when no station accepted.
    With --server, the set-points go through a running server's API instead (same dispatch, same records)."""
    import asyncio

    from v2gtwin.cli.csms_api import dispatch_remote, outcome_summary
    from v2gtwin.cyber.csms.server import Csms

    if server is None:
        _check_host(host, port)  # every option is checked before the file is read
    limits = _read_set_points(csv_file)
    if server is not None:
        result = dispatch_remote(limits, server, token_file, timeout, cafile)
        _report_dispatch(result, json_out, outcome_summary)
        return
    store = _open_store(db)

    async def go() -> dict[str, dict[str, Any]]:
        async with Csms(store, host=host, port=port) as csms:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not set(limits) <= (set(csms.stations) & csms.booted) and loop.time() < deadline:
                await asyncio.sleep(0.1)
            return await csms.dispatch(limits, timeout_s=timeout)

    try:
        result = asyncio.run(go())
    except OSError as exc:
        raise V2GTwinError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
    _report_dispatch(result, json_out, outcome_summary)


def _report_dispatch(result: dict[str, dict[str, Any]], json_out: bool, summary: Any) -> None:
    """Print a dispatch's outcome (percentiles over every station of the CSV: one that did not accept counts
    above every latency); exit code 1 when no station accepted."""
    out: dict[str, Any] = summary(result)
    if json_out:
        out["per_station"] = result
    _emit(out, json_out)
    if out["accepted"] == 0:
        sys.stderr.write(f"error: no station accepted its set-point ({out['outcomes']})\n")
        raise typer.Exit(1)


@csms_app.command("pki")
def csms_pki(
    folder: Annotated[Path, typer.Argument(help="Folder for the CA, server and station keys and certificates.")],
    station: Annotated[list[str], typer.Option("--station", help="Station id (repeat for several).")],
    json_out: JsonOpt = False,
) -> None:
    """Create a CA, the server certificates (ECDSA P-256 and RSA 2048) and one certificate per station."""
    from v2gtwin.cyber.csms.pki import init_pki

    for sid in station:
        _check_station_id(sid, "--station")
    try:
        out = init_pki(folder, station)
    except (FileExistsError, OSError) as exc:
        raise V2GTwinError(f"{folder}: {exc}") from None
    _emit({"folder": str(out), "stations": station}, json_out)


@csms_app.command("password")
def csms_password(
    station_id: Annotated[str, typer.Argument(help="Station id.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 16 characters.")],
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
) -> None:
    """Provision a station's HTTP Basic password (security profiles 1 and 2)."""
    _check_station_id(station_id, "station_id")
    store = _open_store(db)
    try:
        store.set_password(station_id, password)
    except ValueError as exc:
        raise V2GTwinError(f"--password: {exc}") from None
    sys.stdout.write(f"{station_id}: password set\n")
