"""`v2gtwin csms token`: the HTTP API's bearer tokens; and the remote mode of `v2gtwin csms dispatch`
(set-points through a running server's API)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, _emit
from v2gtwin.cli.csms import _open_store, csms_app
from v2gtwin.errors import V2GTwinError

token_app = typer.Typer(
    help="Bearer tokens of the HTTP API (csms serve --api-port): create (shown once), list, revoke.",
    no_args_is_help=True,
)
csms_app.add_typer(token_app, name="token")

DbOpt = Annotated[str, typer.Option(help="SQLAlchemy database URL (the central system's).")]


def _tokens(db: str) -> Any:
    from v2gtwin.cyber.csms.tokens import TokenStore

    return TokenStore(_open_store(db).engine)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token (1 to 64 characters).")],
    db: DbOpt = "sqlite:///csms.sqlite",
    json_out: JsonOpt = False,
) -> None:
    """Create a token and print it (once: the database keeps only its SHA-256 hash)."""
    from v2gtwin.errors import DataError

    try:
        token = _tokens(db).create(name)
    except DataError as exc:
        raise V2GTwinError(f"NAME: {exc}") from None
    if json_out:
        _emit({"name": name, "token": token}, True)
        return
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(db: DbOpt = "sqlite:///csms.sqlite", json_out: JsonOpt = False) -> None:
    """Every token's id, name, creation and revocation time (never the token)."""
    rows = _tokens(db).list_tokens()
    if json_out:
        _emit({"tokens": rows}, True)
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        sys.stdout.write(f"{r['id']:>4}  {r['name']:<32} created {r['created_at']}  {state}\n")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(min=1, help="The token's id (see 'token list').")],
    db: DbOpt = "sqlite:///csms.sqlite",
    json_out: JsonOpt = False,
) -> None:
    """Revoke a token (a running server stops accepting it within 2 s)."""
    from v2gtwin.errors import DataError

    try:
        _tokens(db).revoke(token_id)
    except DataError as exc:
        raise V2GTwinError(f"ID: {exc}") from None
    if json_out:
        _emit({"id": token_id, "revoked": True}, True)
        return
    sys.stdout.write(f"token {token_id} revoked\n")


def read_token_file(path: Path) -> str:
    """The token in ``path`` (its first line, stripped); a one-line error naming --token-file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise V2GTwinError(f"--token-file {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    token = (text.splitlines() or [""])[0].strip()
    if not token:
        raise V2GTwinError(f"--token-file {path}: empty (put the token from 'csms token create' in it)")
    return token


def dispatch_remote(
    limits_w: dict[str, float], server: str, token_file: Path | None, timeout_s: float, cafile: Path | None
) -> dict[str, dict[str, Any]]:
    """Send set-points [W] through a running server's API; each station's outcome as ``Csms.dispatch`` gives it
    (status, latency_s, settled_s, attempts)."""
    from v2gtwin.cyber.api_client import ApiClient, ApiError

    token = read_token_file(token_file) if token_file is not None else None
    try:
        client = ApiClient(server, token, timeout_s=timeout_s, cafile=str(cafile) if cafile else None)
        results = client.post_setpoints(
            [{"station_id": sid, "evse_id": 1, "p_kw": w / 1000.0} for sid, w in limits_w.items()], timeout_s
        )
    except ApiError as exc:
        raise V2GTwinError(f"--server: {exc}") from None
    return {
        r["station_id"]: {
            "status": r["status"],
            "latency_s": r["latency_s"],
            "settled_s": r.get("settled_s"),
            "attempts": r.get("attempts", 0),
        }
        for r in results
    }


def outcome_summary(result: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Stations, accepted, outcome counts and latency percentiles over every station (one that did not accept
    ranks above every latency)."""
    from v2gtwin.cyber.csms.outcomes import latency_note, percentile_s

    lat = [r["latency_s"] if r["status"] == "Accepted" else None for r in result.values()]
    outcomes = dict(Counter(r["status"] for r in result.values()))
    out: dict[str, Any] = {
        "stations": len(result),
        "accepted": sum(r["status"] == "Accepted" for r in result.values()),
        "outcomes": outcomes,
        "latency_p50_s": percentile_s(lat, 0.5),
        "latency_p99_s": percentile_s(lat, 0.99),
    }
    note = latency_note(lat, outcomes, (("p50", 0.5), ("p99", 0.99)))
    if note is not None:  # a null percentile always comes with its reason
        out["latency_note"] = note
    return out
