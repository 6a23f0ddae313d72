"""Planning a group commit (DESIGN section 6), without a database: ``plan_group`` decides each
request of a group as if it ran alone, in order, against a hand-built :class:`Known` slice of
the log, then chains the rows of those that succeed.

Pinned here: dense positions and per-place versions, idempotent retries (checked before
preconditions), id conflicts, expected-version checks, link rules, isolation of a failing
request from the rest of its group, and the hash chain over the records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Casualties, Event, Expectation, Relation
from contracts.responses import Receipt
from service.domain.append import (
    AppendRequest,
    GroupPlan,
    Known,
    StoredInfo,
    ids_to_look_up,
    places_to_look_up,
    plan_group,
)
from service.domain.canonical import canonical_json
from service.domain.errors import IdConflict, InvalidEvent, NotTheSource, WrongExpectedVersion
from service.domain.records import GENESIS_HASH, PreparedEvent, chain_hash, prepare_event
from service.domain.time import utc_text
from tests.unit.builders import (
    GOV,
    ISIS,
    capture,
    confirmation,
    event,
    link,
    retraction,
    source,
    statement,
    uid,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2024, 4, 1, 9, 30, tzinfo=UTC)
HEAD_HASH = hashlib.sha256(b"the head").digest()
OTHER = "sy-raqqa"

Version = int | Literal["none", "any-existing"]
E = TypeVar("E", bound=Exception)


def prep(event: Event) -> PreparedEvent:
    """An event prepared as the API would."""
    return prepare_event(event)


def request(
    *events: Event | PreparedEvent,
    expect: Sequence[tuple[str, Version]] = (),
    submitter: str | None = None,
    admin: bool = False,
) -> AppendRequest:
    """One POST of ``events`` with ``(place, version)`` expectations."""
    prepared = tuple(e if isinstance(e, PreparedEvent) else prep(e) for e in events)
    expectations = tuple(Expectation(place=p, version=v) for p, v in expect)
    return AppendRequest(prepared, expectations, submitter, admin)


def stored(
    prepared: PreparedEvent,
    position: int,
    version: int,
    commit_position: int | None = None,
    submitter: str | None = None,
) -> StoredInfo:
    """What the log would hold about ``prepared`` stored earlier at ``position``."""
    return StoredInfo(
        id=prepared.id,
        position=position,
        place_id=prepared.place_id,
        place_version=version,
        recorded_at=EARLIER,
        commit_position=position if commit_position is None else commit_position,
        payload_digest=prepared.payload_digest,
        source_key=prepared.source_key,
        submitter=submitter,
    )


def known(*infos: StoredInfo, versions: dict[str, int] | None = None) -> Known:
    """A slice of the log holding ``infos``; place versions default to what they imply."""
    implied: dict[str, int] = {}
    for info in infos:
        implied[info.place_id] = max(implied.get(info.place_id, 0), info.place_version)
    return Known({i.id: i for i in infos}, {**implied, **(versions or {})})


def plan(*requests: AppendRequest, log: Known | None = None, head: int = 10) -> GroupPlan:
    """plan_group over ``requests`` with the head at ``head``."""
    return plan_group(
        requests,
        log or Known({}, {}),
        head_position=head,
        head_hash=HEAD_HASH,
        recorded_at=NOW,
    )


def receipts(outcome: list[Receipt] | Exception) -> list[Receipt]:
    """The receipts of a request that must have succeeded."""
    assert isinstance(outcome, list), outcome
    return outcome


def error(outcome: list[Receipt] | Exception, kind: type[E]) -> E:
    """The error of a request that must have failed with ``kind``."""
    assert isinstance(outcome, kind), outcome
    return outcome


# --- positions and versions --------------------------------------------------------------------


def test_positions_and_versions_are_assigned_in_order() -> None:
    """Events get the next positions in request order; each place's version counts on from
    what the log holds; receipts come back in the order sent."""
    events = [
        capture(GOV, id=1),
        capture(ISIS, id=2, place=OTHER),
        capture(ISIS, id=3),
    ]
    result = plan(request(*events), log=known(versions={"sy-maskanah": 4}))
    got = receipts(result.outcomes[0])
    assert [(r.id, r.position, r.place, r.place_version) for r in got] == [
        (uid(1), 11, "sy-maskanah", 5),
        (uid(2), 12, OTHER, 1),
        (uid(3), 13, "sy-maskanah", 6),
    ]
    assert all(r.recorded_at == NOW and not r.duplicate for r in got)
    assert [row.position for row in result.rows] == [11, 12, 13]
    assert [row.place_version for row in result.rows] == [5, 1, 6]
    assert result.head_position == 13
    assert result.created


def test_receipts_carry_casualty_flags() -> None:
    """A flagged event is stored, and its receipt (new or duplicate) says why it is worth a
    look."""
    odd = prep(event("casualties", id=3, casualties=Casualties(killed=5, high=2)))
    flags = ("casualties.killed exceeds casualties.high",)
    assert receipts(plan(request(odd)).outcomes[0])[0].flags == flags
    retry = plan(request(odd), log=known(stored(odd, 3, 1))).outcomes[0]
    assert receipts(retry)[0].flags == flags
    assert receipts(plan(request(capture(GOV, id=2))).outcomes[0])[0].flags == ()


# --- idempotency -------------------------------------------------------------------------------


def test_a_fully_stored_request_gets_its_original_receipts() -> None:
    """A retry of a stored batch returns the original receipts, marked duplicate, writes
    nothing, and leaves the head where it was."""
    first, second = prep(capture(GOV, id=1)), prep(capture(GOV, id=2))
    log = known(stored(first, 3, 1, commit_position=4), stored(second, 4, 2))
    result = plan(request(first, second), log=log)
    assert receipts(result.outcomes[0]) == [
        Receipt(
            id=uid(1),
            position=3,
            place="sy-maskanah",
            place_version=1,
            recorded_at=EARLIER,
            commit_position=4,
            duplicate=True,
        ),
        Receipt(
            id=uid(2),
            position=4,
            place="sy-maskanah",
            place_version=2,
            recorded_at=EARLIER,
            commit_position=4,
            duplicate=True,
        ),
    ]
    assert not result.created
    assert (result.head_position, result.head_hash) == (10, HEAD_HASH)


@pytest.mark.parametrize("version", [1, 7, "none"])
def test_ids_are_checked_before_preconditions(version: Version) -> None:
    """A retried batch whose events are all stored gets its receipts even if ``expect`` no
    longer holds."""
    first = prep(capture(GOV, id=1))
    log = known(stored(first, 3, 1), versions={"sy-maskanah": 5})
    result = plan(request(first, expect=[("sy-maskanah", version)]), log=log)
    assert receipts(result.outcomes[0])[0].duplicate


def test_same_id_with_other_content_is_a_conflict() -> None:
    """An id stored with different content is an IdConflict naming the id."""
    log = known(stored(prep(capture(GOV, id=1)), 3, 1))
    outcome = plan(request(capture(ISIS, id=1)), log=log).outcomes[0]
    conflict = error(outcome, IdConflict)
    assert conflict.field == "id"
    assert conflict.event_id == str(uid(1))
    assert "different content" in conflict.detail


def test_a_conflict_inside_a_batch_names_the_event() -> None:
    """In a batch, the conflicting event is named by its index."""
    log = known(stored(prep(capture(GOV, id=1)), 3, 1))
    outcome = plan(request(capture(GOV, id=2), capture(ISIS, id=1)), log=log).outcomes[0]
    assert error(outcome, IdConflict).field == "events[1].id"


def test_a_partly_stored_batch_is_a_conflict() -> None:
    """A batch of which only some events are stored is refused as a whole: field ``events``."""
    first = prep(capture(GOV, id=1))
    result = plan(request(capture(GOV, id=2), first), log=known(stored(first, 3, 1)))
    conflict = error(result.outcomes[0], IdConflict)
    assert conflict.field == "events"
    assert conflict.event_id == str(uid(1))
    assert not result.created


def test_an_id_repeated_within_a_batch_is_a_conflict() -> None:
    """Two events of one batch with one id: IdConflict on the second."""
    outcome = plan(request(capture(GOV, id=1), capture(GOV, id=1))).outcomes[0]
    assert error(outcome, IdConflict).field == "events[1].id"


# --- expected versions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "actual"),
    [(3, 4), (5, 4), (0, 4), (1, 0), ("none", 4), ("any-existing", 0)],
)
def test_a_precondition_that_does_not_hold_is_409_with_both_versions(
    version: Version, actual: int
) -> None:
    """int, ``none`` and ``any-existing`` mismatches raise WrongExpectedVersion with the place,
    what was expected and the current version; nothing of the batch is placed."""
    log = known(versions={"sy-maskanah": actual} if actual else {})
    result = plan(request(capture(GOV, id=1), expect=[("sy-maskanah", version)]), log=log)
    wrong = error(result.outcomes[0], WrongExpectedVersion)
    assert (wrong.place, wrong.expected, wrong.actual) == ("sy-maskanah", version, actual)
    assert str(actual) in wrong.detail
    assert str(version) in wrong.detail
    assert wrong.field == "expect"
    assert not result.created


@pytest.mark.parametrize(("version", "actual"), [(4, 4), (0, 0), ("none", 0), ("any-existing", 2)])
def test_a_precondition_that_holds_lets_the_batch_through(version: Version, actual: int) -> None:
    """A matching version, ``none`` on an empty place, ``any-existing`` on a used one: written."""
    log = known(versions={"sy-maskanah": actual})
    result = plan(request(capture(GOV, id=1), expect=[("sy-maskanah", version)]), log=log)
    assert receipts(result.outcomes[0])[0].place_version == actual + 1


def test_a_precondition_on_another_place_is_checked_too() -> None:
    """``expect`` may name a place the batch does not write to."""
    log = known(versions={OTHER: 2})
    outcome = plan(request(capture(GOV, id=1), expect=[(OTHER, 1)])).outcomes[0]
    assert error(outcome, WrongExpectedVersion).actual == 0
    result = plan(request(capture(GOV, id=1), expect=[(OTHER, 2)]), log=log)
    assert receipts(result.outcomes[0])[0].place_version == 1


# --- requests of one group ---------------------------------------------------------------------


def test_a_failing_request_does_not_disturb_the_next() -> None:
    """A 409 in the middle of a group leaves no trace: positions stay dense, versions too."""
    result = plan(
        request(capture(GOV, id=1)),
        request(capture(GOV, id=2), capture(GOV, id=3), expect=[("sy-maskanah", 7)]),
        request(capture(ISIS, id=4)),
    )
    first, failed, third = result.outcomes
    error(failed, WrongExpectedVersion)
    assert [(r.position, r.place_version) for r in receipts(first) + receipts(third)] == [
        (11, 1),
        (12, 2),
    ]
    assert [row.position for row in result.rows] == [11, 12]
    assert result.head_position == 12


@pytest.mark.parametrize(
    "bad",
    [
        request(capture(GOV, id=1)),  # an id the first request already took, other content
        request(capture(GOV, id=5), capture(GOV, id=5)),
        request(statement(link(uid(404), "denies"), id=5)),
    ],
)
def test_any_failing_request_leaves_the_plan_as_it_was(bad: AppendRequest) -> None:
    """Id conflicts and bad links fail one request only; the others are placed as if it
    had not been sent."""
    result = plan(request(capture(ISIS, id=1)), bad, request(capture(GOV, id=2)))
    error(result.outcomes[1], InvalidEvent)
    assert [r.position for r in receipts(result.outcomes[2])] == [12]
    assert [row.prepared.id for row in result.rows] == [uid(1), uid(2)]


def test_later_requests_see_earlier_versions() -> None:
    """Preconditions are checked against the versions earlier requests of the group made."""
    result = plan(
        request(capture(GOV, id=1), expect=[("sy-maskanah", "none")]),
        request(capture(GOV, id=2), expect=[("sy-maskanah", "none")]),
        request(capture(GOV, id=3), expect=[("sy-maskanah", 1)]),
        request(capture(GOV, id=4), expect=[("sy-maskanah", "any-existing")]),
    )
    assert error(result.outcomes[1], WrongExpectedVersion).actual == 1
    assert receipts(result.outcomes[2])[0].place_version == 2
    assert receipts(result.outcomes[3])[0].place_version == 3


def test_a_link_to_an_event_placed_earlier_in_the_group_is_allowed() -> None:
    """A statement may confirm an event that an earlier request of the same group placed."""
    taken = capture(GOV, id=1)
    result = plan(request(taken), request(confirmation(taken, source("SOHR"), id=2)))
    assert receipts(result.outcomes[1])[0].position == 12


def test_a_duplicate_of_an_event_placed_earlier_in_the_group_gets_its_receipt() -> None:
    """A retry that lands in the same group as the original is a duplicate of it."""
    taken = prep(capture(GOV, id=1))
    result = plan(request(taken), request(taken), request(capture(ISIS, id=1)))
    original, retry = receipts(result.outcomes[0])[0], receipts(result.outcomes[1])[0]
    assert retry.duplicate
    assert (retry.position, retry.place_version) == (original.position, original.place_version)
    assert error(result.outcomes[2], IdConflict).event_id == str(uid(1))
    assert len(result.rows) == 1


def test_a_duplicate_within_the_group_has_the_group_commit_position() -> None:
    """The duplicate receipt of an event placed by this very group says the group's commit
    position, like the original's receipt.

    Regression test (``_Planner.plan`` stored ``commit_position=0`` in
    ``new_events``, and ``_duplicate_receipt`` copies it; before the fix: the retry's receipt says
    commit_position 0.
    """
    taken = prep(capture(GOV, id=1))
    result = plan(request(taken), request(taken), request(capture(GOV, id=2)))
    original, retry = receipts(result.outcomes[0])[0], receipts(result.outcomes[1])[0]
    assert original.commit_position == 12
    assert retry.commit_position == 12


# --- links ---------------------------------------------------------------------------------


def test_a_link_to_a_missing_event_is_rejected() -> None:
    """``relates_to`` naming an event the log does not hold is a 422 on that link."""
    outcome = plan(request(statement(link(uid(404), "denies"), id=2))).outcomes[0]
    assert error(outcome, InvalidEvent).field == "relates_to[0].event"


def test_a_link_to_a_later_event_of_the_batch_is_rejected() -> None:
    """Links point back in time: an event later in the same batch is not there yet."""
    taken = capture(GOV, id=1)
    outcome = plan(request(confirmation(taken, source("SOHR"), id=2), taken)).outcomes[0]
    assert error(outcome, InvalidEvent).field == "events[0].relates_to[0].event"


def test_a_link_to_an_earlier_event_of_the_batch_is_allowed() -> None:
    """A batch may hold an event and the statements about it, in that order."""
    taken = capture(GOV, id=1)
    result = plan(request(taken, retraction(taken, id=2)))
    assert [r.position for r in receipts(result.outcomes[0])] == [11, 12]


@pytest.mark.parametrize("in_batch", [False, True])
def test_a_link_to_another_place_is_rejected(in_batch: bool) -> None:
    """Links stay within one place, whether the target is stored or earlier in the batch."""
    elsewhere = capture(GOV, id=1, place=OTHER)
    about = confirmation(elsewhere, source("SOHR"), id=2, place="sy-maskanah")
    if in_batch:
        outcome = plan(request(elsewhere, about)).outcomes[0]
        field = "events[1].relates_to[0].event"
    else:
        outcome = plan(request(about), log=known(stored(prep(elsewhere), 3, 1))).outcomes[0]
        field = "relates_to[0].event"
    rejection = error(outcome, InvalidEvent)
    assert rejection.field == field
    assert OTHER in rejection.detail


@pytest.mark.parametrize("relation", ["retracts", "corrects", "supersedes"])
@pytest.mark.parametrize("admin", [False, True])
def test_another_source_may_not_retract_correct_or_supersede(
    relation: Relation, admin: bool
) -> None:
    """Another source's retraction (correction, supersession) is NotTheSource (403) naming
    the link, from the key that appended the original and from an admin alike (the fold
    would ignore it: only a withdrawal by the event's own source takes it out of force)."""
    taken = prep(capture(GOV, id=1))
    other = statement(link(uid(1), relation), id=2, by=source("SOHR"))
    log = known(stored(taken, 3, 1, submitter="alice"))
    outcome = plan(request(other, submitter="alice", admin=admin), log=log).outcomes[0]
    refused = error(outcome, NotTheSource)
    assert refused.field == "relates_to[0].event"
    assert refused.event_id == str(uid(1))
    assert "another source" in refused.detail


@pytest.mark.parametrize("relation", ["retracts", "corrects", "supersedes"])
def test_the_same_source_name_from_another_key_may_not_withdraw(relation: Relation) -> None:
    """The attack of issue 13: the original's source name, sent by another ingest key, is
    refused; only the key that appended the original may withdraw it."""
    taken = prep(capture(GOV, id=1))
    same_name = statement(link(uid(1), relation), id=2, by=source("South Front"))
    log = known(stored(taken, 3, 1, submitter="alice"))
    outcome = plan(request(same_name, submitter="mallory"), log=log).outcomes[0]
    refused = error(outcome, NotTheSource)
    assert refused.field == "relates_to[0].event"
    assert "API key" in refused.detail
    assert "alice" not in refused.detail  # who appended it is for auditors to see
    anonymous = plan(request(same_name, submitter=None), log=log).outcomes[0]
    assert error(anonymous, NotTheSource).field == "relates_to[0].event"
    own = plan(request(same_name, submitter="alice"), log=log).outcomes[0]
    assert receipts(own)[0].position == 11


def test_an_admin_may_withdraw_in_the_name_of_the_same_source() -> None:
    """An admin key may retract an event another key appended, when it speaks for the same
    source; an event appended without a key (the command line) is withdrawn only by the
    command line or an admin."""
    taken = prep(capture(GOV, id=1))
    retracts = statement(link(uid(1), "retracts"), id=2, by=source("south front"))
    by_alice = known(stored(taken, 3, 1, submitter="alice"))
    result = plan(request(retracts, submitter="root", admin=True), log=by_alice)
    assert receipts(result.outcomes[0])[0].position == 11
    by_cli = known(stored(taken, 3, 1, submitter=None))
    assert receipts(plan(request(retracts), log=by_cli).outcomes[0])
    refused = plan(request(retracts, submitter="alice"), log=by_cli).outcomes[0]
    assert isinstance(refused, NotTheSource)


def test_a_batch_may_withdraw_its_own_earlier_event() -> None:
    """A batch may retract an event appended earlier in the same batch (the same key sent
    both); a link to a later event of the batch is still a 422."""
    first = capture(GOV, id=1)
    retracts = statement(link(uid(1), "retracts"), id=2, by=source("South Front"))
    result = plan(request(first, retracts, submitter="alice"))
    assert [r.position for r in receipts(result.outcomes[0])] == [11, 12]
    backwards = plan(request(retracts, first, submitter="alice")).outcomes[0]
    assert error(backwards, InvalidEvent).field == "events[0].relates_to[0].event"


def test_a_withdrawal_in_the_same_group_needs_the_same_key() -> None:
    """Within one group commit, a request may withdraw an event an earlier request placed
    only when the same key sent both: the planner remembers each placed event's submitter.
    The refused request leaves the others of its group untouched."""
    first = capture(GOV, id=1)
    retracts = statement(link(uid(1), "retracts"), id=2, by=source("South Front"))
    again = statement(link(uid(1), "corrects"), id=3, by=source("South Front"))
    result = plan(
        request(first, submitter="alice"),
        request(retracts, submitter="mallory"),
        request(again, submitter="alice"),
    )
    assert receipts(result.outcomes[0])[0].position == 11
    assert error(result.outcomes[1], NotTheSource).field == "relates_to[0].event"
    assert receipts(result.outcomes[2])[0].position == 12
    assert [row.submitter for row in result.rows] == ["alice", "alice"]


@pytest.mark.parametrize("name", ["South Front", "south front", "  SOUTH   Front "])
def test_the_same_source_is_matched_case_and_space_insensitively(name: str) -> None:
    """A source named "  SOUTH   Front " may retract what "South Front" reported: same source
    (sent by the key that appended the original)."""
    taken = prep(capture(GOV, id=1))
    own = statement(link(uid(1), "retracts"), id=2, by=source(name, reliability="A"))
    result = plan(
        request(own, submitter="alice"), log=known(stored(taken, 3, 1, submitter="alice"))
    )
    assert receipts(result.outcomes[0])[0].place_version == 2


@pytest.mark.parametrize("relation", ["confirms", "denies"])
def test_another_source_may_confirm_or_deny(relation: Relation) -> None:
    """Confirming and denying are open to every source."""
    taken = prep(capture(GOV, id=1))
    other = statement(link(uid(1), relation), id=2, by=source("SOHR"))
    result = plan(request(other), log=known(stored(taken, 3, 1)))
    assert receipts(result.outcomes[0])[0].position == 11


# --- records and the hash chain ----------------------------------------------------------------


def test_rows_form_a_hash_chain_from_the_head() -> None:
    """Each row's prev_hash is the previous row's hash (the head's for the first), and
    ``hash = SHA-256(prev_hash || record)``; the plan's head moves to the last row."""
    result = plan(
        request(capture(GOV, id=1), capture(ISIS, id=2)),
        request(capture(GOV, id=3, place=OTHER), submitter="ingest"),
    )
    previous = HEAD_HASH
    for row in result.rows:
        assert row.prev_hash == previous
        assert row.hash == chain_hash(row.prev_hash, row.record)
        assert row.hash == hashlib.sha256(row.prev_hash + row.record).digest()
        previous = row.hash
    assert result.head_hash == previous
    assert result.head_position == result.rows[-1].position == 13


def test_the_chain_starts_at_genesis_on_an_empty_log() -> None:
    """On an empty log the first row chains from the genesis hash (32 zero bytes)."""
    result = plan_group(
        [request(capture(GOV, id=1))],
        Known({}, {}),
        head_position=0,
        head_hash=GENESIS_HASH,
        recorded_at=NOW,
    )
    assert result.rows[0].prev_hash == bytes(32)
    assert result.rows[0].position == 1


def test_the_record_holds_the_server_fields_and_the_payload_digest_only() -> None:
    """The record is canonical JSON of the server's fields plus the payload's SHA-256, never
    the payload itself (so payload text can be redacted without breaking the chain)."""
    taken = msgspec.structs.replace(capture(GOV, id=1), quote="Tiger Forces entered the town")
    result = plan(request(capture(ISIS, id=9)), request(taken, submitter="alice"))
    row = result.rows[1]
    record = json.loads(row.record)
    assert record == {
        "commit_position": 12,
        "id": str(uid(1)),
        "payload_sha256": hashlib.sha256(row.prepared.payload).hexdigest(),
        "place": "sy-maskanah",
        "place_version": 2,
        "position": 12,
        "recorded_at": utc_text(NOW),
        "submitter": "alice",
        "type": "capture",
        "v": 1,
    }
    assert row.record == canonical_json(record)
    assert row.submitter == "alice"
    assert b"Tiger" not in row.record


def test_commit_position_is_the_last_position_of_the_group_everywhere() -> None:
    """Every record and every new receipt of the group carries the group's last position."""
    result = plan(
        request(capture(GOV, id=1)),
        request(capture(GOV, id=2), expect=[("sy-maskanah", "none")]),
        request(capture(ISIS, id=3), capture(GOV, id=4, place=OTHER)),
    )
    assert result.head_position == 13
    assert {json.loads(row.record)["commit_position"] for row in result.rows} == {13}
    placed = [r for o in result.outcomes if isinstance(o, list) for r in o]
    assert {r.commit_position for r in placed} == {13}


def test_a_group_that_writes_nothing_keeps_the_head() -> None:
    """When every request fails or is a duplicate, the head position and hash stay."""
    result = plan(request(statement(link(uid(404), "denies"), id=2)))
    assert not result.created
    assert (result.head_position, result.head_hash) == (10, HEAD_HASH)
    assert result.recorded_at == NOW


# --- what the store must look up ---------------------------------------------------------------


def test_lookups_cover_ids_link_targets_and_expected_places() -> None:
    """The store fetches every id of the group and its link targets, and the versions of
    every place written to or named in ``expect``, sorted."""
    requests = [
        request(capture(GOV, id=3), expect=[("sy-aleppo", 1)]),
        request(statement(link(uid(1), "confirms"), id=2, place=OTHER)),
    ]
    assert ids_to_look_up(requests) == [uid(1), uid(2), uid(3)]
    assert places_to_look_up(requests) == ["sy-aleppo", "sy-maskanah", OTHER]


# --- a model of the rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A generated request: fresh events at these places, maybe one expectation."""

    places: tuple[str, ...]
    expect: tuple[str, Version] | None


PLACES = ("sy-a", "sy-b", "sy-c")
steps = st.builds(
    Step,
    st.lists(st.sampled_from(PLACES), min_size=1, max_size=3).map(tuple),
    st.none()
    | st.tuples(
        st.sampled_from(PLACES),
        st.integers(0, 4) | st.sampled_from(["none", "any-existing"]),
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(steps, min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(PLACES), st.integers(1, 3)),
)
def test_a_group_decides_like_requests_run_one_by_one(
    group: list[Step], start_versions: dict[str, int]
) -> None:
    """Whatever the mix of passing and failing requests, the plan equals running them alone
    in order: dense positions from the head, consecutive versions per place."""
    counter = iter(range(1, 1000))
    requests = [
        request(
            *(capture(GOV, id=next(counter), place=p) for p in step.places),
            expect=[step.expect] if step.expect else [],
        )
        for step in group
    ]
    result = plan(*requests, log=known(versions=dict(start_versions)), head=100)
    versions, position = dict(start_versions), 100
    for step, outcome in zip(group, result.outcomes, strict=True):
        if step.expect is not None:
            place, wanted = step.expect
            actual = versions.get(place, 0)
            holds = (
                actual == 0
                if wanted == "none"
                else actual > 0
                if wanted == "any-existing"
                else actual == wanted
            )
            if not holds:
                assert error(outcome, WrongExpectedVersion).actual == actual
                continue
        for place, receipt in zip(step.places, receipts(outcome), strict=True):
            position += 1
            versions[place] = versions.get(place, 0) + 1
            assert (receipt.position, receipt.place, receipt.place_version) == (
                position,
                place,
                versions[place],
            )
            assert receipt.commit_position == result.head_position
    assert result.head_position == position
    assert [row.position for row in result.rows] == list(range(101, position + 1))


def test_requests_are_not_reordered_by_place() -> None:
    """Two requests on different places keep the order they were taken in."""
    result = plan(request(capture(GOV, id=1, place=OTHER)), request(capture(GOV, id=2)))
    assert [row.prepared.id for row in result.rows] == [uid(1), uid(2)]
