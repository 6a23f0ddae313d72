"""Who may do what: roles, what each grants, API keys. Pure.

A route needs one *access* (the route table is ``service.api.access.route_access``):
``open`` (anyone), ``ingest`` (append), ``read`` (the front, the events, the streams, a
place's history), ``audit`` (``/v1/audit/*`` and exports), ``edit`` (the registries: sides)
or ``admin`` (rebuild, keys). A role grants a set of accesses: ``audit`` reads too,
``editor`` reads and edits the registries, ``admin`` does everything. Keys are
random (256 bits), shown once, stored as their SHA-256 only (a slow hash buys nothing for a
key nobody chose)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["ingest", "read", "audit", "editor", "admin"]
Access = Literal["open", "ingest", "read", "audit", "edit", "admin"]

ROLES: Final[tuple[Role, ...]] = ("ingest", "read", "audit", "editor", "admin")
GRANTS: Final[dict[Role, frozenset[Access]]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "audit": frozenset({"read", "audit"}),
    "editor": frozenset({"read", "edit"}),
    "admin": frozenset({"ingest", "read", "audit", "edit", "admin"}),
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


def allows(role: Role, access: Access) -> bool:
    """Whether ``role`` may use a route that needs ``access``."""
    return access == "open" or access in GRANTS[role]


def new_key() -> str:
    """A fresh API key (shown once)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> bytes:
    """What is stored of a key."""
    return hashlib.sha256(key.encode()).digest()
