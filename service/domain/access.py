"""Who may do what: roles, what each grants, API keys (issue 5). Pure.

A route needs one *access*: ``open`` (anyone), ``ingest`` (append), ``read`` (the front, the
events, the streams, a place's history), ``audit`` (``/v1/audit/*`` and exports) or
``admin`` (rebuild, keys). A role grants a set of accesses: ``audit`` reads too, ``admin``
does everything. Keys are random (256 bits), shown once, stored as their SHA-256 only (a
slow hash buys nothing for a key nobody chose).
"""

from __future__ import annotations

import hashlib
import posixpath
import secrets
import uuid
from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["ingest", "read", "audit", "admin"]
Access = Literal["open", "ingest", "read", "audit", "admin"]

ROLES: Final[tuple[Role, ...]] = ("ingest", "read", "audit", "admin")
GRANTS: Final[dict[Role, frozenset[Access]]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "audit": frozenset({"read", "audit"}),
    "admin": frozenset({"ingest", "read", "audit", "admin"}),
}
KEY_PREFIX: Final = "flk_"
KEY_BYTES: Final = 32
"""Random bytes in a key."""
KEY_LENGTH: Final = len(KEY_PREFIX) + (KEY_BYTES * 4 + 2) // 3
"""Characters in every key Frontline mints (the prefix and unpadded base64url of the bytes):
a longer one is refused as unknown before it is hashed, looked up or remembered."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a key: its name (recorded as each event's submitter) and role."""

    id: uuid.UUID
    name: str
    role: Role


OPEN_PATHS: Final = frozenset({"/health", "/ready", "/metrics", "/schema"})
"""Paths open to anyone (and everything below ``/schema``)."""

MAP_PREFIX: Final = "/map/"
"""The map page is ``/``; its files are below this prefix. Both are open to GET and HEAD:
the page holds no data, it reads the front through ``/v1/`` with the user's key."""


def route_access(method: str, path: str) -> Access:
    """The access a request needs, from its method and path (README's table, in code).

    The path is first normalised as a router could read it (repeated slashes collapsed,
    ``.`` and ``..`` resolved, no trailing slash), so no spelling of a route escapes its
    rule. Only OPEN_PATHS and the map page (GET and HEAD of ``/`` and below MAP_PREFIX)
    are open; every other path outside ``/v1/`` needs ``admin`` (a
    new route is closed until it is given a rule, and nobody learns which paths exist
    without a key). Inside ``/v1/``, a method no route takes needs ``admin`` too.
    """
    clean = posixpath.normpath("/" + path.lstrip("/"))
    if clean in OPEN_PATHS or clean.startswith("/schema/"):
        return "open"
    if method in ("GET", "HEAD") and (clean == "/" or clean.startswith(MAP_PREFIX)):
        return "open"
    if not clean.startswith("/v1/"):
        return "admin"
    if clean.startswith("/v1/admin/"):
        return "admin"
    if clean.startswith("/v1/audit/") or clean == "/v1/export":
        return "audit"
    if method == "POST" and clean in ("/v1/events", "/v1/imports"):
        return "ingest"
    if method in ("GET", "HEAD"):
        return "read"
    return "admin"


def allows(role: Role, access: Access) -> bool:
    """Whether ``role`` may use a route that needs ``access``."""
    return access == "open" or access in GRANTS[role]


def new_key() -> str:
    """A fresh API key (shown once)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> bytes:
    """What is stored of a key."""
    return hashlib.sha256(key.encode()).digest()


def bearer(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
