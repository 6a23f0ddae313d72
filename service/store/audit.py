"""The audit's reads: the head, and a verification of the chain over a snapshot of the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import asyncpg

from contracts.audit import SignedHead, VerifyFailure, VerifyReport
from service.domain.audit import (
    GENESIS_HASH,
    ChainVerifier,
    Failure,
    Head,
    SigningKey,
    check_saved_head,
    key_id,
)
from service.domain.errors import InvalidParameter
from service.store.queries import SQL

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

PREFETCH: Final = 5000


@dataclass(frozen=True, slots=True)
class SavedHead:
    """A head an auditor saved earlier: its position and hash."""

    position: int
    hash: str


class AuditReader:
    """Reads the log for the audit, each answer from one consistent snapshot."""

    def __init__(self, pool: asyncpg.Pool, signing: SigningKey | None) -> None:
        self.pool = pool
        self.signing = signing

    def sign(self, head: Head) -> SignedHead:
        """The head as the API shows it, signed when there is a key."""
        if self.signing is None:
            return SignedHead(
                position=head.position,
                hash=head.hash,
                recorded_at=head.recorded_at,
                algorithm=None,
                signature=None,
                key_id=None,
            )
        return SignedHead(
            position=head.position,
            hash=head.hash,
            recorded_at=head.recorded_at,
            algorithm="Ed25519",
            signature=self.signing.sign(head),
            key_id=key_id(self.signing.public),
        )

    async def head(self) -> SignedHead:
        """The log's head now."""
        async with self.pool.acquire() as conn:
            return self.sign(await _head(conn))

    async def verify(
        self, start: int | None, end: int | None, saved: SavedHead | None = None
    ) -> VerifyReport:
        """Recompute the chain over positions ``start``..``end`` (default: the whole log)."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            head = await _head(conn)
            first = 1 if start is None else start
            last = head.position if end is None else end
            if first < 1 or last < first - 1:
                raise InvalidParameter(
                    f"from ({first}) must be at least 1 and at most to + 1 ({last + 1})",
                    field="from" if start is not None else "to",
                )
            if last > head.position:
                raise InvalidParameter(
                    f"to ({last}) is past the log's head ({head.position})", field="to"
                )
            verifier, failure = await _verify(conn, first, last)
            if failure is None and end is None and verifier.expected <= head.position:
                failure = Failure(
                    verifier.expected,
                    f"position {verifier.expected} is missing: the head says {head.position}",
                )
            if failure is None and end is None and verifier.last_hash.hex() != head.hash:
                failure = Failure(head.position, "the head's hash is not the chain's last hash")
            saved_state: Literal["holds", "broken", "not given"] = "not given"
            if saved is not None:
                stored = (
                    GENESIS_HASH
                    if saved.position == 0
                    else await conn.fetchval(SQL["read_hash_at"], saved.position)
                )
                broken = check_saved_head(
                    Head(position=saved.position, hash=saved.hash, recorded_at=None),
                    None if stored is None else bytes(stored),
                    head.position,
                )
                saved_state = "holds" if broken is None else "broken"
                if broken is not None and (failure is None or saved.position < failure.position):
                    failure = Failure(saved.position, broken)
        return VerifyReport(
            ok=failure is None,
            from_position=first,
            to_position=last,
            checked=verifier.checked,
            head=self.sign(head),
            failure=None if failure is None else VerifyFailure(failure.position, failure.reason),
            saved_head=saved_state,
        )


async def _head(conn: Connection) -> Head:
    row = await conn.fetchrow(SQL["read_head_detail"])
    assert row is not None  # the migration inserts the head row
    return Head(
        position=row["position"], hash=bytes(row["hash"]).hex(), recorded_at=row["recorded_at"]
    )


async def _verify(
    conn: Connection,
    first: int,
    last: int,
) -> tuple[ChainVerifier, Failure | None]:
    prev = GENESIS_HASH
    if first > 1:
        stored = await conn.fetchval(SQL["read_hash_at"], first - 1)
        if stored is None:
            return ChainVerifier(first, prev), Failure(
                first - 1, f"position {first - 1} is missing: the chain cannot be followed"
            )
        prev = bytes(stored)
    verifier = ChainVerifier(first, prev)
    async for row in conn.cursor(SQL["read_log_for_verify"], first, last, prefetch=PREFETCH):
        failure = verifier.check(row)
        if failure is not None:
            return verifier, failure
    if verifier.expected <= last:
        return verifier, Failure(
            verifier.expected, f"position {verifier.expected} is missing: the log ends before it"
        )
    return verifier, None
