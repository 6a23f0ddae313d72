"""API keys in PostgreSQL: create (the key shown once), list, revoke, look up by hash."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg

from service.errors import InvalidParameter, NotReady
from service.roles import ROLES, Principal, key_hash, new_key
from service.store.events import UNAVAILABLE
from service.store.queries import SQL

V = TypeVar("V")

KNOWN_ENTRIES = 10_000
"""Most live keys remembered at once (least recently used go first)."""
UNKNOWN_ENTRIES = 1_000
"""Most unknown or revoked keys remembered at once (least recently used go first): a client
sending ever new bogus keys costs a look-up each, never memory."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as ``frontline keys list`` shows it (never the key, never its hash)."""

    id: uuid.UUID
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class KeyStore:
    """The keys, with a short cache of look-ups (a revocation takes effect within ``ttl``)."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 5.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self._known: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        """By the key itself: in this process's memory only, like the request carrying it."""
        self._unknown: OrderedDict[str, float] = OrderedDict()
        """Keys the database does not hold (or holds revoked), bounded the same way. The
        caller refuses a key longer than any minted one before it gets here."""

    async def create(self, name: str, role: str) -> tuple[Principal, str]:
        """A new key for ``name`` with ``role``; the key itself is returned once, here."""
        if role not in ROLES:
            raise InvalidParameter(f"role must be one of {', '.join(ROLES)}", field="role")
        if not name.strip():
            raise InvalidParameter("a key needs a name", field="name")
        key = new_key()
        principal = Principal(id=uuid.uuid4(), name=name.strip(), role=role)
        try:
            await self.pool.execute(
                SQL.insert_key, principal.id, principal.name, role, key_hash(key)
            )
        except asyncpg.UniqueViolationError:
            raise InvalidParameter(f"a key named {name!r} exists", field="name") from None
        return principal, key

    async def list(self) -> list[KeyInfo]:
        return [KeyInfo(**dict(r)) for r in await self.pool.fetch(SQL.read_keys)]

    async def revoke(self, name: str) -> bool:
        """Revoke the live key of that name; False when there is none."""
        self._known.clear()
        return await self.pool.fetchval(SQL.revoke_key, name) is not None

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(True, holder or None when unknown) for a key looked up less than ``ttl`` ago;
        (False, None) when it must be looked up (``find``). No hashing, no await."""
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < self.ttl:
            self._known.move_to_end(key)
            return True, known[1]
        unknown = self._unknown.get(key)
        if unknown is not None and now - unknown < self.ttl:
            self._unknown.move_to_end(key)
            return True, None
        return False, None

    def known_before(self, key: str) -> bool:
        """Whether ``key`` was found live at some look-up still remembered (however long
        ago): its holder's requests are never refused a look-up for its address's sake."""
        return key in self._known

    def __len__(self) -> int:
        """Keys remembered now, known and unknown."""
        return len(self._known) + len(self._unknown)

    async def find(self, key: str) -> Principal | None:
        """The live key's holder, or None (remembered for ``ttl`` seconds either way).

        NotReady (503) when the database cannot say: the key check runs before routing, for
        every request, and a lost database must not look like a server bug (500).
        """
        try:
            row = await self.pool.fetchrow(SQL.read_key_by_hash, key_hash(key))
        except UNAVAILABLE as error:  # TimeoutError too: it is an OSError
            raise NotReady(f"the database is unavailable: {type(error).__name__}") from error
        now = time.monotonic()
        if row is None:
            self._known.pop(key, None)
            _remember(self._unknown, key, now, UNKNOWN_ENTRIES)
            return None
        found = Principal(row["id"], row["name"], row["role"])
        self._unknown.pop(key, None)
        _remember(self._known, key, (now, found), KNOWN_ENTRIES)
        return found


def _remember(cache: OrderedDict[str, V], key: str, value: V, entries: int) -> None:
    """Put ``key`` at the recent end of ``cache``; drop the least recent past ``entries``."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > entries:
        cache.popitem(last=False)
