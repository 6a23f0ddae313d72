"""Least privilege: the service logs in as no superuser, and writes only through
the owner's functions, which keep the log's invariants (migration 0007, DESIGN 6).

Regression: on the embedded database the service logged in as the superuser ``postgres``
(``RESET ROLE`` was one statement away), and the service role itself could INSERT into and
UPDATE ``api_keys`` (mint an admin key), UPDATE ``log_head``, INSERT into ``event_links``
and write ``segments`` directly.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Final

import asyncpg
import pytest
from asyncpg.pool import PoolConnectionProxy

from service.domain.policy import SERVED
from service.projections.queries import SQL as PROJECTION_SQL
from service.projections.timelines import TimelineProjector, projection_state
from service.settings import Settings
from service.store.db import EMBEDDED_LOGIN, Connector
from service.store.events import EventStore
from service.store.queries import SQL as STORE_SQL
from tests.integration.helpers import Conn, append_ok, log_state
from tests.payloads import event_json

#: Every table privilege the service role holds, as the migrations grant it: read the log
#: and the keys; write only the twin a rebuild fills (its workers COPY into it).
GRANTED: Final = {
    "alembic_version": {"SELECT"},
    "api_keys": {"SELECT"},
    "event_links": {"SELECT"},
    "events": {"SELECT"},
    "log_head": {"SELECT"},
    "places": {"SELECT"},
    "projection_state": {"SELECT"},
    "segments": {"SELECT"},
    "segments_next": {"SELECT", "INSERT", "UPDATE", "DELETE"},
}
#: The functions it may execute (all SECURITY DEFINER, owned by the migration's role).
FUNCTIONS: Final = {
    "frontline_adopt_policy",
    "frontline_append",
    "frontline_clear_segments_next",
    "frontline_index_segments_next",
    "frontline_lock_head",
    "frontline_lock_segments_for_swap",
    "frontline_project_commit",
    "frontline_swap_segments",
}

DIRECT_WRITES: Final = {
    "INSERT api_keys": (
        "INSERT INTO api_keys (id, name, role, key_hash) "
        "VALUES (gen_random_uuid(), 'mallory', 'admin', sha256('k'))"
    ),
    "UPDATE api_keys": "UPDATE api_keys SET role = 'admin', revoked_at = NULL",
    "UPDATE log_head": "UPDATE log_head SET position = position + 1",
    "INSERT event_links": (
        "INSERT INTO event_links (position, id, target, relation) "
        "SELECT 2, (SELECT id FROM events WHERE position = 2), "
        "(SELECT id FROM events WHERE position = 1), 'retracts'"
    ),
    "INSERT events": (
        "INSERT INTO events SELECT position + 10, gen_random_uuid(), place_id, place_version + 10,"
        " type, source_key, valid_from, valid_to, recorded_at, commit_position + 10, submitter, "
        "payload, payload_digest, record, prev_hash, hash FROM events WHERE position = 1"
    ),
    "UPDATE places": "UPDATE places SET name = 'Mallorytown'",
    "INSERT places": (
        "INSERT INTO places (id, name, version, first_position, last_position) "
        "VALUES ('sy-forged', 'Forged', 1, 1, 1)"
    ),
    "UPDATE segments": "UPDATE segments SET controller = 'mallory-side'",
    "INSERT segments": (
        "INSERT INTO segments SELECT place_id, valid_from, valid_to, known_from + 1, known_to, "
        "controller, status, status_by, disputed, confidence, basis, body FROM segments"
    ),
    "DELETE segments": "DELETE FROM segments",
    "UPDATE projection_state": "UPDATE projection_state SET position = position + 5",
}


async def _two_linked_events(store: EventStore) -> None:
    """Two events, the second denying the first: events, links, places and segments hold rows."""
    (first,) = await append_ok(store, event_json())
    await append_ok(
        store,
        event_json(
            type="statement",
            side=None,
            source={"name": "Amaq"},
            relates_to=[{"event": str(first.id), "relation": "denies"}],
        ),
    )


async def _everything(owner: Conn) -> tuple[object, ...]:
    """What no refused statement may change: the log, keys, segments, the projection."""
    keys = await owner.fetch("SELECT id, name, role, revoked_at FROM api_keys ORDER BY id")
    segments = await owner.fetch(
        "SELECT place_id, valid_from, known_from, known_to, controller, body FROM segments "
        "ORDER BY place_id, valid_from, known_from"
    )
    state = await owner.fetchrow("SELECT policy, position FROM projection_state")
    return (await log_state(owner), keys, segments, state)


async def test_the_service_logs_in_as_no_superuser_and_cannot_become_one(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The service's connections log in as the embedded server's login role, which is no
    superuser: RESET ROLE changes nothing (the role acted as is the session's default),
    SET ROLE NONE leaves a role that holds nothing of its own (not even a read of the
    log), and SET ROLE or SET SESSION AUTHORIZATION to the superuser are refused."""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == settings.db_role
        assert await conn.fetchval("SELECT session_user") == EMBEDDED_LOGIN
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT current_user") == settings.db_role
        await conn.execute("SET ROLE NONE")
        assert await conn.fetchval("SELECT current_user") == EMBEDDED_LOGIN
        powers = await conn.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert powers is not None
        assert not any(powers.values())
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM events")
        for statement in ("SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(statement)
        await conn.execute("RESET ROLE")  # as the pool found it
        assert await conn.fetchval("SELECT current_user") == settings.db_role


@pytest.mark.parametrize("statement", DIRECT_WRITES.values(), ids=DIRECT_WRITES.keys())
async def test_the_service_role_cannot_write_keys_the_head_links_or_the_front(
    statement: str, store: EventStore, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Minting a key, moving the head, forging a link or an event, renaming a place,
    rewriting the front or its position: each is refused by privilege on the service's
    own connection, and nothing changes."""
    projecting = EventStore(pool, TimelineProjector())
    await _two_linked_events(projecting)
    before = await _everything(owner)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
    assert await _everything(owner) == before


async def _granted(owner: Conn, role: str) -> dict[str, set[str]]:
    rows = await owner.fetch(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = $1 AND table_schema = 'public'",
        role,
    )
    granted: dict[str, set[str]] = {}
    for r in rows:
        granted.setdefault(r["table_name"], set()).add(r["privilege_type"])
    return granted


async def _definers(owner: Conn, role: str) -> set[str]:
    """The SECURITY DEFINER functions of the schema, each checked: executable by ``role``,
    not by PUBLIC, search_path fixed with the temporary schema last."""
    rows = await owner.fetch(
        "SELECT p.proname, p.proconfig, has_function_privilege($1, p.oid, 'EXECUTE') AS by_role,"
        "       has_function_privilege('public', p.oid, 'EXECUTE') AS by_public "
        "FROM pg_proc AS p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef",
        role,
    )
    for r in rows:
        assert "search_path=pg_catalog, public, pg_temp" in r["proconfig"], r["proname"]
        assert r["by_role"], f"{role} may not execute {r['proname']}"
        assert not r["by_public"], f"PUBLIC may execute {r['proname']}"
    return {r["proname"] for r in rows}


async def test_the_service_role_holds_exactly_the_granted_privileges_before_and_after_a_swap(
    store: EventStore, pool: asyncpg.Pool, owner: Conn, settings: Settings
) -> None:
    """The role's actual table privileges are exactly GRANTED, and its functions exactly
    FUNCTIONS (each SECURITY DEFINER, search_path fixed with pg_temp last, not executable
    by PUBLIC); after a rebuild swaps the tables, the write grants stayed with the twin's
    name, not with the table that is now served."""
    assert await _granted(owner, settings.db_role) == GRANTED
    assert await _definers(owner, settings.db_role) == FUNCTIONS
    projector = TimelineProjector(rebuild_workers=1)
    await _two_linked_events(EventStore(pool, projector))
    await projector.rebuild(Connector.of(settings))
    assert await _granted(owner, settings.db_role) == GRANTED
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM segments")
    assert await owner.fetchval("SELECT count(*) FROM segments") > 0


# --- the functions keep the invariants --------------------------------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def _append_raw(
    conn: PoolConnectionProxy[asyncpg.Record], record: str, prev: bytes, **bad: object
) -> None:
    """Call frontline_append with one hand-made event (``bad`` overrides a column)."""
    payload = '{"type":"control"}'
    columns: dict[str, object] = {
        "id": [uuid.UUID("5b0c2c1e-6f0a-4a53-9d7e-6b7a3c1f2a10")],
        "place_id": ["sy-x"],
        "place_version": [1],
        "type": ["control"],
        "source_key": ["reuters"],
        "valid_from": [datetime(2017, 6, 1, tzinfo=UTC)],
        "valid_to": [datetime(2017, 6, 2, tzinfo=UTC)],
        "recorded_at": datetime.now(UTC),
        "submitter": [None],
        "payload": [payload],
        "digest": [_sha(payload.encode())],
        "record": [record],
        "hash": [_sha(prev + record.encode())],
    }
    columns.update(bad)
    places = [["sy-x"], ["X"], [None], [None], [None], [None], [""], [None], [1], [1], [1]]
    await conn.execute(STORE_SQL.append_commit, *columns.values(), *places)


@pytest.mark.parametrize(
    "bad",
    [
        {"hash": [bytes(32)]},
        {"digest": [bytes(32)]},
        {"recorded_at": datetime(2000, 1, 1, tzinfo=UTC)},
        {"type": ["control", "capture"]},
    ],
    ids=["hash not chained", "digest not the payload's", "recorded_at going back", "ragged"],
)
async def test_frontline_append_refuses_a_commit_that_breaks_the_chain(
    bad: dict[str, object], store: EventStore, pool: asyncpg.Pool, owner: Conn
) -> None:
    """The append function checks the chain it is given against the head (each hash
    SHA-256 of the previous hash and the record, each digest that of the payload, the
    clock not going back, arrays of one length), and refuses the whole commit otherwise:
    nothing is written, the head stays."""
    await append_ok(store, event_json())
    before = await log_state(owner)
    head_hash = bytes(await owner.fetchval("SELECT hash FROM log_head"))
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchrow(STORE_SQL.lock_head)
        with pytest.raises(asyncpg.PostgresError, match="frontline_append"):
            await _append_raw(conn, '{"position":2}', head_hash, **bad)
    assert await log_state(owner) == before


async def test_frontline_append_numbers_and_chains_what_it_writes(
    store: EventStore, pool: asyncpg.Pool, owner: Conn
) -> None:
    """A well-chained commit is written at the next position after the head, its
    prev_hash the head's hash, and the head moves to it: the caller never chooses a
    position."""
    await append_ok(store, event_json())
    head_hash = bytes(await owner.fetchval("SELECT hash FROM log_head"))
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchrow(STORE_SQL.lock_head)
        await _append_raw(conn, '{"position":2}', head_hash)
    row = await owner.fetchrow(
        "SELECT position, commit_position, prev_hash FROM events WHERE position = 2"
    )
    assert row is not None
    assert (row["position"], row["commit_position"], bytes(row["prev_hash"])) == (2, 2, head_hash)
    assert await owner.fetchval("SELECT position FROM log_head") == 2


async def test_links_are_written_as_the_payloads_state_them(store: EventStore, owner: Conn) -> None:
    """The append function derives event_links from the payloads: exactly the links each
    event's relates_to states, at its position, and none for an event without links."""
    await _two_linked_events(store)
    links = await owner.fetch("SELECT position, id, target, relation FROM event_links")
    events = {r["position"]: r["id"] for r in await owner.fetch("SELECT position, id FROM events")}
    assert [(r["position"], r["id"], r["target"], r["relation"]) for r in links] == [
        (2, events[2], events[1], "denies")
    ]


async def test_frontline_project_commit_writes_only_in_the_commits_own_transaction(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """Rows known from a commit can be written only by that commit's transaction: called
    in another transaction (the head row not written by it), or for a position that is not
    the head, the projection function refuses and writes nothing."""
    store = EventStore(pool, TimelineProjector())
    await append_ok(store, event_json())
    head = int(await owner.fetchval("SELECT position FROM log_head"))
    before = await _everything(owner)
    row = (["sy-x"], [datetime(2017, 6, 1, tzinfo=UTC)], [None], ["mallory-side"],
           ["controlled"], [None], [False], [100], ["assessed"], ['{"forged":true}'])  # fmt: skip
    async with pool.acquire() as conn:
        for commit, previous in ((head, head - 1), (head + 1, head), (head, head)):
            with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="not the head"):
                await conn.fetchval(
                    PROJECTION_SQL.project_commit, commit, previous, SERVED.name, SERVED.version,
                    [], [], *row,
                )  # fmt: skip
    assert await _everything(owner) == before


async def test_an_empty_log_alone_may_adopt_a_policy(
    store: EventStore, pool: asyncpg.Pool, owner: Conn
) -> None:
    """The adoption function moves an empty log's projection to a policy, and refuses
    (false, nothing moved) once the log holds an event."""
    assert await pool.fetchval(PROJECTION_SQL.adopt_policy, "credibility-v0", 1)
    assert (await projection_state(pool)).policy == "credibility-v0"
    await owner.execute("UPDATE projection_state SET policy = $1", SERVED.name)
    await append_ok(store, event_json())
    assert not await pool.fetchval(PROJECTION_SQL.adopt_policy, "credibility-v0", 1)
    assert (await projection_state(pool)).policy == SERVED.name
