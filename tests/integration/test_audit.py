"""Tamper evidence on the real database: the verifier names exactly what was altered.

Each test appends a log through the store, then, as the owning role with the append-only
triggers disabled, alters it behind the service's back, and checks the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from contracts.audit import VerifyReport
from service.domain.audit import Head, SigningKey, signature_valid
from service.errors import InvalidParameter
from service.store.audit import AuditReader, SavedHead
from service.store.events import EventStore
from tests.integration.helpers import Conn, append_ok
from tests.payloads import at_place, event_json

EVENTS = 12


@pytest.fixture
async def log(store: EventStore) -> int:
    """A log of EVENTS events over three places, some in one commit; its last position."""
    places = ("sy-maskanah", "sy-raqqa", "sy-deir-hafer")
    for n in range(EVENTS - 3):
        await append_ok(store, at_place(places[n % 3], occurred={"start": f"2017-06-{n + 1:02d}"}))
    receipts = await append_ok(store, event_json(), event_json(), at_place(places[1]))
    return receipts[-1].position


@pytest.fixture
async def tamper(owner: Conn) -> AsyncIterator[Conn]:
    """The owner's connection with the append-only triggers off (as an attacker would)."""
    await owner.execute("ALTER TABLE events DISABLE TRIGGER USER")
    await owner.execute("ALTER TABLE log_head DISABLE TRIGGER USER")
    yield owner
    await owner.execute("ALTER TABLE events ENABLE TRIGGER USER")
    await owner.execute("ALTER TABLE log_head ENABLE TRIGGER USER")


def failed_at(report: VerifyReport, position: int, *words: str) -> None:
    """The report is a failure at ``position`` whose reason holds every word."""
    assert not report.ok
    assert report.failure is not None
    assert report.failure.position == position, report.failure
    for word in words:
        assert word in report.failure.reason, report.failure.reason


async def test_an_untouched_log_verifies_whole_and_in_ranges(pool: asyncpg.Pool, log: int) -> None:
    """An untouched log verifies whole and in a sub-range, counting what it checked, and its own
    head as a saved head holds."""
    reader = AuditReader(pool, None)
    report = await reader.verify(None, None)
    assert report.ok, report.failure
    assert (report.from_position, report.to_position, report.checked) == (1, log, log)
    assert report.head.position == log
    part = await reader.verify(4, 7)
    assert part.ok
    assert part.checked == 4
    saved = SavedHead(position=log, hash=report.head.hash)
    assert (await reader.verify(None, None, saved)).saved_head == "holds"


async def test_an_empty_log_verifies(pool: asyncpg.Pool) -> None:
    """An empty log verifies, with nothing checked and the all-zero genesis hash as its head."""
    report = await AuditReader(pool, None).verify(None, None)
    assert report.ok
    assert report.checked == 0
    assert report.head.hash == "0" * 64


@pytest.mark.parametrize("position", [1, 5, EVENTS])
async def test_one_changed_byte_of_a_payload_is_named(
    pool: asyncpg.Pool, log: int, tamper: Conn, position: int
) -> None:
    """Changing one character of a stored payload (a digit of a casualty figure, say)."""
    await tamper.execute(
        "UPDATE events SET payload = replace(payload, '\"South Front\"', '\"South Frost\"') "
        "WHERE position = $1",
        position,
    )
    report = await AuditReader(pool, None).verify(None, None)
    failed_at(report, position, "payload", "digest")
    assert report.checked == position - 1


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("type", "type || '-x'", ("column type",)),
        ("place_id", "'sy-elsewhere'", ("column place_id",)),
        ("submitter", "'someone'", ("column submitter",)),
        ("recorded_at", "recorded_at + interval '1 second'", ("column recorded_at",)),
        ("source_key", "'amaq'", ("column source_key", "payload")),
        ("valid_from", "valid_from - interval '1 day'", ("column valid_from",)),
        ("record", "replace(record, '\"v\":1', '\"v\":2')", ("hash", "record")),
        ("hash", "sha256(hash)", ("hash",)),
    ],
)
async def test_a_changed_column_is_named(
    pool: asyncpg.Pool, log: int, tamper: Conn, column: str, value: str, words: tuple[str, ...]
) -> None:
    """Changing any hashed column of one stored event fails verification at that position with a
    reason naming what was changed (the column, or the hash)."""
    await tamper.execute(f"UPDATE events SET {column} = {value} WHERE position = 6")
    failed_at(await AuditReader(pool, None).verify(None, None), 6, *words)


async def test_a_deleted_event_is_named_as_the_missing_position(
    pool: asyncpg.Pool, log: int, tamper: Conn
) -> None:
    """A deleted event fails verification as its missing position, whether verified from the
    start or from the position after it."""
    await tamper.execute("DELETE FROM events WHERE position = 7")
    failed_at(await AuditReader(pool, None).verify(None, None), 7, "position 7 is missing")
    failed_at(await AuditReader(pool, None).verify(8, None), 7, "position 7 is missing")


async def test_a_truncated_tail_shows_against_the_head_or_a_saved_head(
    pool: asyncpg.Pool, log: int, tamper: Conn
) -> None:
    """Deleting the newest events: the head still names the old end; an attacker who also
    moves the head back leaves a shorter chain that verifies, and only a head saved before
    the truncation proves it, at exactly the first removed position."""
    reader = AuditReader(pool, None)
    before = await reader.head()
    await tamper.execute("DELETE FROM events WHERE position > $1", log - 3)
    failed_at(await reader.verify(None, None), log - 2, f"position {log - 2} is missing")
    await tamper.execute(
        "UPDATE log_head SET position = $1, hash = (SELECT hash FROM events WHERE position = $1)",
        log - 3,
    )
    assert (await reader.verify(None, None)).ok  # a shorter chain is still a chain
    saved = SavedHead(position=before.position, hash=before.hash)
    report = await reader.verify(None, None, saved)
    failed_at(report, log, "removed", f"{log - 2}-{log}")
    assert report.saved_head == "broken"


async def test_a_rewritten_chain_breaks_a_saved_head(
    pool: asyncpg.Pool, log: int, tamper: Conn
) -> None:
    """A saved head at a position whose hash is now another (the chain was recomputed)."""
    reader = AuditReader(pool, None)
    before = await reader.head()
    await tamper.execute("UPDATE events SET hash = sha256(hash) WHERE position = $1", log)
    await tamper.execute("UPDATE log_head SET hash = sha256(hash)")
    report = await reader.verify(None, None, SavedHead(position=log, hash=before.hash))
    failed_at(report, log, "hash")


async def test_a_signed_head_checks_and_a_forged_one_does_not(pool: asyncpg.Pool, log: int) -> None:
    """A head signed with Ed25519 checks with its public key, but not with another position, a
    malformed signature or another key."""
    key = SigningKey.generate()
    signed = await AuditReader(pool, key).head()
    assert signed.signature is not None
    assert signed.algorithm == "Ed25519"
    head = Head(position=signed.position, hash=signed.hash, recorded_at=signed.recorded_at)
    assert signature_valid(key.public, head, signed.signature)
    forged = msgspec.structs.replace(head, position=head.position + 1)
    assert not signature_valid(key.public, forged, signed.signature)
    assert not signature_valid(key.public, head, "not base64!")
    other = SigningKey.generate()
    assert not signature_valid(other.public, head, signed.signature)


async def test_a_consistently_rewritten_event_is_named_not_its_successor(
    pool: asyncpg.Pool, log: int, tamper: Conn
) -> None:
    """Rewriting an event's submitter in its column, its record and its hash leaves that row
    whole; the next row, chained to the old hash, shows it, and the verifier names the
    rewritten one."""
    await tamper.execute(
        """
        UPDATE events SET
          submitter = 'mallory',
          record = replace(record, '"submitter":null', '"submitter":"mallory"')
        WHERE position = 6
        """
    )
    await tamper.execute(
        "UPDATE events SET hash = sha256(prev_hash || convert_to(record, 'UTF8')) "
        "WHERE position = 6"
    )
    failed_at(await AuditReader(pool, None).verify(None, None), 6, "position 6 was rewritten")


async def test_ranges_and_saved_heads_at_the_edges(pool: asyncpg.Pool, log: int) -> None:
    """The genesis head (position 0) holds as a saved head, a range ending past the head is an
    invalid 'to', and a range starting past it is ok with nothing checked."""
    reader = AuditReader(pool, None)
    genesis = SavedHead(position=0, hash="0" * 64)
    assert (await reader.verify(None, None, genesis)).saved_head == "holds"
    with pytest.raises(InvalidParameter) as past:
        await reader.verify(1, log + 1)
    assert past.value.field == "to"
    empty = await reader.verify(log + 1, None)
    assert empty.ok
    assert empty.checked == 0
