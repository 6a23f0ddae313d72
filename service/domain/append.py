"""Planning an append: which requests of a group commit succeed, at which positions.

Pure: the store looks up what the log already holds (:class:`Known`) under the head lock,
and :func:`plan_group` decides, request by request, exactly as if each had run alone in
order. A request that fails (409 or 422) leaves no trace in the plan, so it never fails the
others of its group: this is the savepoint of each request, kept in memory instead of in
the database, because nothing is written until the whole group is planned.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from contracts.events import Event, Expectation, PlaceMerged
from contracts.responses import Receipt
from service.domain.errors import (
    FrontlineError,
    IdConflict,
    InvalidEvent,
    NotTheSource,
    WrongExpectedVersion,
)
from service.domain.records import PreparedEvent, build_record, chain_hash
from service.domain.registry import EMPTY, SideRegistry
from service.domain.time import utc_text

#: Relations only the source that made an event may use on it (DESIGN 3): they withdraw it.
OWN_SOURCE_RELATIONS = frozenset({"retracts", "corrects", "supersedes"})


class AppendRequest(msgspec.Struct, frozen=True, gc=False):
    """One POST: events that must be written together, with their preconditions."""

    events: tuple[PreparedEvent, ...]
    expect: tuple[Expectation, ...] = ()
    submitter: str | None = None
    """The name of the API key that sends the request (None: the command line, no key)."""
    admin: bool = False
    """The key is an admin's: it may withdraw an event another key appended, on behalf of
    the event's source (the source's name must still be the same)."""


class StoredInfo(msgspec.Struct, frozen=True, gc=False):
    """What the log holds about one stored event, enough for receipts and link checks."""

    id: uuid.UUID
    position: int
    place_id: str
    place_version: int
    recorded_at: datetime
    commit_position: int
    payload_digest: bytes
    source_key: str
    submitter: str | None
    """The API key that appended it (None: the command line)."""


@dataclass(slots=True)
class Known:
    """The slice of the log a group needs: events by id and place versions by place."""

    events: dict[uuid.UUID, StoredInfo]
    place_versions: dict[str, int]
    """Versions of the group's streams: its places and its registry entries."""
    sides: SideRegistry = EMPTY
    """The side registry as the log stands under the head lock."""


class EventRow(msgspec.Struct, frozen=True, gc=False):
    """One row of the events table, ready to write."""

    prepared: PreparedEvent
    position: int
    place_version: int
    record: bytes
    prev_hash: bytes
    hash: bytes
    submitter: str | None


@dataclass(slots=True)
class GroupPlan:
    """The outcome of a group: receipts or an error per request, and the rows to write."""

    outcomes: list[list[Receipt] | FrontlineError]
    recorded_at: datetime
    rows: list[EventRow] = field(default_factory=list)
    head_position: int = 0
    head_hash: bytes = b""
    sides: SideRegistry = EMPTY
    """The side registry once the group is written (the one its commit is folded with)."""

    @property
    def created(self) -> bool:
        """Whether the group writes anything."""
        return bool(self.rows)


def ids_to_look_up(requests: Sequence[AppendRequest]) -> list[uuid.UUID]:
    """Every id a group needs from the log: its own events' ids and their link targets."""
    wanted: set[uuid.UUID] = set()
    for request in requests:
        for prepared in request.events:
            wanted.add(prepared.id)
            if isinstance(prepared.event, Event):
                wanted.update(link.event for link in prepared.event.relates_to)
    return sorted(wanted)


def places_to_look_up(requests: Sequence[AppendRequest]) -> list[str]:
    """Every place whose version a group needs."""
    wanted: set[str] = set()
    for request in requests:
        wanted.update(p.place_id for p in request.events)  # registry streams included
        for prepared in request.events:
            if isinstance(prepared.event, PlaceMerged):  # both places must exist
                wanted.update((prepared.event.place, prepared.event.merged))
        wanted.update(e.place for e in request.expect)
    return sorted(wanted)


def _duplicate_receipt(info: StoredInfo, prepared: PreparedEvent) -> Receipt:
    return Receipt(
        id=info.id,
        position=info.position,
        place=info.place_id,
        place_version=info.place_version,
        recorded_at=info.recorded_at,
        commit_position=info.commit_position,
        duplicate=True,
        flags=prepared.flags,
    )


class _Planner:
    def __init__(self, known: Known, head_position: int, recorded_at: datetime) -> None:
        self.known = known
        self.position = head_position
        self.recorded_at = recorded_at
        # Placed events: (prepared, position, place_version, submitter), in position order.
        self.placed: list[tuple[PreparedEvent, int, int, str | None]] = []
        self.new_events: dict[uuid.UUID, StoredInfo] = {}
        self.new_versions: dict[str, int] = {}
        self.sides = known.sides

    def lookup(self, event_id: uuid.UUID) -> StoredInfo | None:
        return self.new_events.get(event_id) or self.known.events.get(event_id)

    def version(self, place: str) -> int:
        found = self.new_versions.get(place)
        return found if found is not None else self.known.place_versions.get(place, 0)

    def plan(self, request: AppendRequest) -> list[Receipt] | None:
        """Duplicate receipts for a fully stored request, or None once it is placed."""
        events = request.events
        seen: set[uuid.UUID] = set()
        for index, prepared in enumerate(events if len(events) > 1 else ()):
            if prepared.id in seen:
                raise IdConflict(
                    f"event id {prepared.id} appears twice in the batch",
                    event_id=str(prepared.id),
                    field=f"events[{index}].id",
                )
            seen.add(prepared.id)
        stored = [self.lookup(p.id) for p in events]
        for index, (prepared, info) in enumerate(zip(events, stored, strict=True)):
            if info is not None and info.payload_digest != prepared.payload_digest:
                raise IdConflict(
                    f"event id {prepared.id} is already stored with different content",
                    event_id=str(prepared.id),
                    field=_field(len(events), index, "id"),
                )
        if all(info is not None for info in stored):
            return [
                _duplicate_receipt(info, prepared)
                for prepared, info in zip(events, stored, strict=True)
                if info is not None
            ]
        if any(info is not None for info in stored):
            first = next(p for p, info in zip(events, stored, strict=True) if info is not None)
            raise IdConflict(
                f"part of this batch is already stored (event {first.id}); "
                "resend exactly the original batch, or only the events not yet stored",
                event_id=str(first.id),
                field="events",
            )
        self._check_expectations(request.expect)
        self._check_links(request)
        sides = self._check_registry(request)
        for prepared in events:
            self.position += 1
            version = self.version(prepared.place_id) + 1
            self.new_versions[prepared.place_id] = version
            self.new_events[prepared.id] = StoredInfo(
                id=prepared.id,
                position=self.position,
                place_id=prepared.place_id,
                place_version=version,
                recorded_at=self.recorded_at,
                commit_position=0,  # known once the whole group is planned
                payload_digest=prepared.payload_digest,
                source_key=prepared.source_key,
                submitter=request.submitter,
            )
            self.placed.append((prepared, self.position, version, request.submitter))
            if not isinstance(prepared.event, Event):  # a registry event
                sides = sides.stated(
                    prepared.event,
                    version=version,
                    position=self.position,
                    submitter=request.submitter,
                )
        self.sides = sides
        return None

    def _check_registry(self, request: AppendRequest) -> SideRegistry:
        """Check the request's registry events against the registry as each finds it (the
        request's earlier ones included); the registry before them (the caller states them
        once placed)."""
        events = request.events
        trial = self.sides
        for index, prepared in enumerate(events):
            if not isinstance(prepared.event, Event):  # a registry event
                prepared_event = prepared.event
                if isinstance(prepared_event, PlaceMerged):
                    self._check_places_exist(prepared_event, _field(len(events), index, ""))
                trial.check(prepared_event, _field(len(events), index, ""))
                trial = trial.stated(prepared_event, version=0, position=0, submitter=None)
        return self.sides

    def _check_places_exist(self, event: PlaceMerged, where: str) -> None:
        """Both places of a merge must be places of the log (some event named them)."""
        for name, place in (("place", event.place), ("merged", event.merged)):
            if self.version(place) == 0:
                raise InvalidEvent(
                    f"no event names place {place!r}: only places of the log can be merged",
                    field=where + name,
                )

    def _check_expectations(self, expectations: Sequence[Expectation]) -> None:
        for expectation in expectations:
            actual = self.version(expectation.place)
            wanted = expectation.version
            holds = (
                actual == 0
                if wanted == "none"
                else actual > 0
                if wanted == "any-existing"
                else actual == wanted
            )
            if not holds:
                raise WrongExpectedVersion(expectation.place, wanted, actual)

    def _check_links(self, request: AppendRequest) -> None:
        events = request.events
        if not any(isinstance(p.event, Event) and p.event.relates_to for p in events):
            return
        in_batch = {p.id: p for p in events}
        for event_index, prepared in enumerate(events):
            if not isinstance(prepared.event, Event):
                continue
            for link_index, link in enumerate(prepared.event.relates_to):
                where = _field(len(events), event_index, f"relates_to[{link_index}].event")
                target = self.lookup(link.event)
                earlier = in_batch.get(link.event)
                if target is not None:
                    target_place, target_source = target.place_id, target.source_key
                    target_submitter = target.submitter
                elif earlier is not None and events.index(earlier) < event_index:
                    target_place, target_source = earlier.place_id, earlier.source_key
                    target_submitter = request.submitter
                else:
                    raise InvalidEvent(
                        f"relates_to names event {link.event}, which is not in the log",
                        field=where,
                    )
                if target_place != prepared.place_id:
                    raise InvalidEvent(
                        f"relates_to names event {link.event} about place {target_place!r}; "
                        f"links stay within one place ({prepared.place_id!r})",
                        field=where,
                    )
                if link.relation in OWN_SOURCE_RELATIONS:
                    _check_withdrawal(
                        link.event,
                        link.relation,
                        same_source=target_source == prepared.source_key,
                        same_submitter=target_submitter == request.submitter,
                        admin=request.admin,
                        where=where,
                    )


def _check_withdrawal(
    target: uuid.UUID,
    relation: str,
    *,
    same_source: bool,
    same_submitter: bool,
    admin: bool,
    where: str,
) -> None:
    """Only the source that made an event may withdraw it (DESIGN 3): the same source name
    and the same submitter, or an admin. The name is required of an admin too: the fold
    takes an event out of force only for a withdrawal by its own source (DESIGN 4, rule 1),
    so another name's "retraction" would be stored and change nothing."""
    verb = relation[:-1]
    if not same_source:
        raise NotTheSource(
            f"only the source that made event {target} may {verb} it, and this statement "
            f"names another source; another source may deny or confirm it",
            event_id=str(target),
            field=where,
        )
    if not same_submitter and not admin:
        raise NotTheSource(
            f"only the API key that appended event {target} (or an admin key) may {verb} "
            f"it, even in the name of the same source; another source may deny or confirm it",
            event_id=str(target),
            field=where,
        )


def _field(batch_size: int, index: int, name: str) -> str:
    return name if batch_size == 1 else f"events[{index}].{name}"


def plan_group(
    requests: Sequence[AppendRequest],
    known: Known,
    *,
    head_position: int,
    head_hash: bytes,
    recorded_at: datetime,
) -> GroupPlan:
    """Decide each request of a group in order, then chain the rows of those that succeed."""
    planner = _Planner(known, head_position, recorded_at)
    outcomes: list[list[Receipt] | FrontlineError | None] = []
    for request in requests:
        try:
            # Every check of a request runs before it touches the planner, so a request that
            # fails leaves the plan exactly as it was.
            outcomes.append(planner.plan(request))
        except FrontlineError as error:
            outcomes.append(error)
    commit_position = planner.position
    rows: list[EventRow] = []
    receipts_by_id: dict[uuid.UUID, Receipt] = {}
    prev_hash = head_hash
    recorded_text = utc_text(recorded_at)
    for prepared, position, version, submitter in planner.placed:
        record = build_record(
            prepared,
            position=position,
            place_version=version,
            recorded_at=recorded_text,
            commit_position=commit_position,
            submitter=submitter,
        )
        digest = chain_hash(prev_hash, record)
        rows.append(EventRow(prepared, position, version, record, prev_hash, digest, submitter))
        prev_hash = digest
        receipts_by_id[prepared.id] = Receipt(
            id=prepared.id,
            position=position,
            place=prepared.place_id,
            place_version=version,
            recorded_at=recorded_at,
            commit_position=commit_position,
            flags=prepared.flags,
        )
    final: list[list[Receipt] | FrontlineError] = []
    for request, outcome in zip(requests, outcomes, strict=True):
        if outcome is None:
            final.append([receipts_by_id[p.id] for p in request.events])
        elif isinstance(outcome, list):
            # A duplicate of an event placed earlier in this group: its commit ends here too.
            final.append([
                msgspec.structs.replace(r, commit_position=commit_position)
                if r.id in receipts_by_id else r
                for r in outcome
            ])  # fmt: skip
        else:
            final.append(outcome)
    return GroupPlan(final, recorded_at, rows, commit_position, prev_hash, planner.sides)
