"""API keys in PostgreSQL: create (the key shown once), list, revoke, look up by hash."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain.access import ROLES, Principal, key_hash, new_key
from service.domain.errors import InvalidParameter, NotReady
from service.store.events import UNAVAILABLE
from service.store.queries import SQL


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
        self._seen: dict[str, tuple[float, Principal | None]] = {}
        """By the key itself: in this process's memory only, like the request carrying it."""

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
                SQL["insert_key"], principal.id, principal.name, role, key_hash(key)
            )
        except asyncpg.UniqueViolationError:
            raise InvalidParameter(f"a key named {name!r} exists", field="name") from None
        return principal, key

    async def list(self) -> list[KeyInfo]:
        return [KeyInfo(**dict(r)) for r in await self.pool.fetch(SQL["read_keys"])]

    async def revoke(self, name: str) -> bool:
        """Revoke the live key of that name; False when there is none."""
        self._seen.clear()
        return await self.pool.fetchval(SQL["revoke_key"], name) is not None

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(True, holder or None when unknown) for a key looked up less than ``ttl`` ago;
        (False, None) when it must be looked up (``find``). No hashing, no await."""
        seen = self._seen.get(key)
        if seen is not None and time.monotonic() - seen[0] < self.ttl:
            return True, seen[1]
        return False, None

    async def find(self, key: str) -> Principal | None:
        """The live key's holder, or None (remembered for ``ttl`` seconds either way).

        NotReady (503) when the database cannot say: the key check runs before routing, for
        every request, and a lost database must not look like a server bug (500).
        """
        try:
            row = await self.pool.fetchrow(SQL["read_key_by_hash"], key_hash(key))
        except UNAVAILABLE as error:  # TimeoutError too: it is an OSError
            raise NotReady(f"the database is unavailable: {type(error).__name__}") from error
        found = None if row is None else Principal(row["id"], row["name"], row["role"])
        if len(self._seen) > 10_000:
            self._seen.clear()  # unknown keys must not grow the cache without bound
        self._seen[key] = (time.monotonic(), found)
        return found
