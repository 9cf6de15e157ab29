"""Bearer tokens of the central system's HTTP API, kept in the central system's database as hashes.

A token is ``v2gt_`` followed by 32 random bytes in URL-safe base64 (``secrets.token_urlsafe(32)``: 256 bits);
only its SHA-256 digest is stored (a random 256-bit secret needs no salt or slow hash: there is nothing to
guess from a dictionary). It is shown once, when created. A request's token is checked by hashing it and
comparing the digest with each active one in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Any

from sqlalchemy import DateTime, Integer, String, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from v2gtwin.errors import DataError

__all__ = ["ApiToken", "TokenStore", "hash_token"]

TOKEN_PREFIX = "v2gt_"


class _TokenBase(DeclarativeBase):
    pass


class ApiToken(_TokenBase):
    """One API token: its ``name`` (who or what uses it), the SHA-256 hex digest of the token, when it was
    created and, once revoked, when."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a token (what the database keeps)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore:
    """The API tokens in the database behind ``engine`` (the central system's store: ``Store(url).engine``).

    refresh_s : how long the active digests are kept in memory before they are read again [s] (a token
    revoked from another process stops working within this time).
    """

    def __init__(self, engine: Any, refresh_s: float = 2.0) -> None:
        self.engine = engine
        _TokenBase.metadata.create_all(engine)
        self.refresh_s = refresh_s
        self._active: list[str] = []
        self._read_at = -float("inf")

    def create(self, name: str) -> str:
        """A new token named ``name`` (1 to 64 printable characters); returns the token itself (stored only hashed)."""
        if not 1 <= len(name) <= 64:
            raise DataError(f"name: 1 to 64 characters; got {len(name)}")
        if not name.isprintable():  # a newline or control character would break 'token list' lines
            raise DataError(f"name: printable characters only (no newline, tab or control character); got {name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as s, s.begin():
            s.execute(
                insert(ApiToken).values(name=name, token_sha256=hash_token(token), created_at=dt.datetime.now(dt.UTC))
            )
        self._read_at = -float("inf")
        return token

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token's id, name, creation and revocation time (ISO 8601 UTC; never the token or its hash)."""
        with Session(self.engine) as s:
            rows = s.scalars(select(ApiToken).order_by(ApiToken.id)).all()
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "created_at": _iso(r.created_at),
                    "revoked_at": _iso(r.revoked_at) if r.revoked_at else None,
                }
                for r in rows
            ]

    def revoke(self, token_id: int) -> None:
        """Revoke a token by its id (as :meth:`list_tokens` gives it); an unknown or already revoked id is an error."""
        with Session(self.engine) as s, s.begin():
            n = s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            ).rowcount  # type: ignore[attr-defined]
        if n != 1:
            raise DataError(f"id: no active token with id {token_id} (see 'v2gtwin csms token list')")
        self._read_at = -float("inf")

    def active_digests(self) -> list[str]:
        """The digests of the tokens not revoked (read again after ``refresh_s``)."""
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s:
            with Session(self.engine) as s:
                self._active = list(s.scalars(select(ApiToken.token_sha256).where(ApiToken.revoked_at.is_(None))))
            self._read_at = now
        return self._active

    def check(self, token: str) -> bool:
        """True when ``token`` is an active token (its digest compared with every active one in constant
        time)."""
        digest = hash_token(token)
        ok = False
        for d in self.active_digests():
            ok |= hmac.compare_digest(digest, d)
        return ok


def _iso(t: dt.datetime) -> str:
    """A stored time as ISO 8601 UTC (SQLite gives it back without its zone: it was written in UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
