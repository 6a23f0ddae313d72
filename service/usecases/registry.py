"""The registries: what ``POST /v1/sides``, ``GET /v1/sides``, ``/v1/sources`` and
``frontline sides`` do.

Every edit is a ``side_registered`` event appended to the log through the group committer,
like any event (hash-chained, one commit, checked under the head lock against the registry
as the log then holds it: :meth:`~service.domain.registry.SideRegistry.check`); the places
whose claims an edit remaps are folded again in that same commit. A read folds the registry
events up to the position asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from importlib import resources
from typing import Final

import msgspec

from contracts.events import (
    Expectation,
    SideRegistered,
    SideRegistration,
    SourceRegistered,
    SourceRegistration,
)
from contracts.registry import (
    SideEntry,
    SidesPage,
    SourceEntry,
    SourcesPage,
    UnmappedSide,
)
from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, InvalidEvent
from service.domain.records import prepare_side, prepare_source, source_key
from service.domain.registry import side_stream, source_stream
from service.domain.validation import decode_sides, decode_sources
from service.store.appender import GroupCommitter
from service.store.events import EventStore
from service.store.unmapped import unmapped_sides

#: Where the ids of the default registry's events come from (``uuid5(DEFAULT_NAMESPACE,
#: side)``): loading it twice stores it once.
DEFAULT_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://frontline.invalid/demo/sides")


def default_registry() -> bytes:
    """The default registry of the seed's theatre (Syria, 2017), ``demo/sides.json``: the
    sides the seed names and their neighbours, with the labels ACLED, UCDP GED and PLOVER
    give them as aliases."""
    return resources.files("demo").joinpath("sides.json").read_bytes()


async def load_default_registry(
    committer: GroupCommitter, *, submitter: str | None = None
) -> list[Receipt]:
    """Register the default registry, each entry under an id of its own side's name: a
    second load stores nothing new (its receipts say ``duplicate``)."""
    registrations = [
        msgspec.structs.replace(r, id=uuid.uuid5(DEFAULT_NAMESPACE, r.side)) if r.id is None else r
        for r in decode_sides(default_registry())
    ]
    return await committer.append(side_request(registrations, submitter=submitter))


#: Where the ids of the default source registry's events come from (``uuid5(
#: SOURCES_NAMESPACE, key)``, the source's key): loading it twice stores it once.
SOURCES_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://frontline.invalid/demo/sources")


def default_sources() -> bytes:
    """The default source registry of the seed's theatre, ``demo/sources.json``: the
    sources the seed article and the demo's follow-up reports cite, with the grades and
    alignments they are cited with."""
    return resources.files("demo").joinpath("sources.json").read_bytes()


async def load_default_sources(
    committer: GroupCommitter, *, submitter: str | None = None
) -> list[Receipt]:
    """Register the default source registry, each entry under an id of its source's key:
    a second load stores nothing new (its receipts say ``duplicate``)."""
    registrations = [
        msgspec.structs.replace(r, id=uuid.uuid5(SOURCES_NAMESPACE, source_key(r.source)))
        if r.id is None
        else r
        for r in decode_sources(default_sources())
    ]
    return await committer.append(source_request(registrations, submitter=submitter))


async def load_default_registries(
    committer: GroupCommitter, *, submitter: str | None = None
) -> tuple[list[Receipt], list[Receipt]]:
    """The demo's registries after its reports: the side registry (``demo/sides.json``),
    then the source registry (``demo/sources.json``), a commit each; their receipts. The
    reports name sides by their canonical ids and sources with the grades registered, so
    no answer changes."""
    sides = await load_default_registry(committer, submitter=submitter)
    sources = await load_default_sources(committer, submitter=submitter)
    return sides, sources


def side_event(registration: SideRegistration) -> SideRegistered:
    """The ``side_registered`` event an entry posts (its ``expect`` goes to the request)."""
    fields = msgspec.structs.asdict(registration)
    del fields["expect"]
    return SideRegistered(**fields)


def side_request(
    registrations: Sequence[SideRegistration], *, submitter: str | None, admin: bool = False
) -> AppendRequest:
    """One atomic request registering the entries, with their ``expect`` preconditions on
    the sides' registry streams."""
    seen: dict[str, int] = {}
    for index, registration in enumerate(registrations):
        first = seen.setdefault(registration.side, index)
        if first != index:
            raise InvalidEvent(
                f"side {registration.side!r} is given twice (sides[{first}] and sides[{index}])",
                field=f"sides[{index}].side",
            )
    return AppendRequest(
        events=tuple(prepare_side(side_event(r)) for r in registrations),
        expect=tuple(
            Expectation(place=side_stream(r.side), version=r.expect)
            for r in registrations
            if r.expect is not None
        ),
        submitter=submitter,
        admin=admin,
    )


async def _append_as(
    committer: GroupCommitter, request: AppendRequest, member: str
) -> list[Receipt]:
    """Append a registry edit; a refusal names the body's ``member[i]`` (``sides[2]``) where
    the planner named a batch's ``events[i]``."""
    try:
        return await committer.append(request)
    except FrontlineError as error:
        if error.field is not None and error.field.startswith("events["):
            error.field = member + "[" + error.field.removeprefix("events[")
        raise


async def register_sides(
    committer: GroupCommitter, body: bytes, *, submitter: str | None, admin: bool = False
) -> list[Receipt]:
    """Register one side (``{"side": ...}``) or a registry file (``{"sides": [...]}``),
    atomically; the receipts, or the FrontlineError that refused it (nothing written)."""
    request = side_request(decode_sides(body), submitter=submitter, admin=admin)
    return await _append_as(committer, request, "sides")


async def sides_page(store: EventStore, position: int) -> SidesPage:
    """The registry as known at ``position``, in side id order."""
    registry = await store.side_registry(position)
    return SidesPage(
        known_position=position,
        sides=[registry.entries[side] for side in sorted(registry.entries)],
    )


async def side_at(store: EventStore, side: str, position: int) -> SideEntry | None:
    """One side's entry as known at ``position`` (a name given as an alias finds its side)."""
    registry = await store.side_registry(position)
    return registry.entries.get(registry.canonical(side))


def source_event(registration: SourceRegistration) -> SourceRegistered:
    """The ``source_registered`` event an entry posts (its ``expect`` goes to the request)."""
    fields = msgspec.structs.asdict(registration)
    del fields["expect"]
    return SourceRegistered(**fields)


def source_request(
    registrations: Sequence[SourceRegistration], *, submitter: str | None, admin: bool = False
) -> AppendRequest:
    """One atomic request registering the source entries, with their ``expect``
    preconditions on the sources' registry streams."""
    seen: dict[str, int] = {}
    for index, registration in enumerate(registrations):
        first = seen.setdefault(source_key(registration.source), index)
        if first != index:
            raise InvalidEvent(
                f"source {registration.source!r} is given twice (sources[{first}] and "
                f"sources[{index}], case and spacing aside)",
                field=f"sources[{index}].source",
            )
    return AppendRequest(
        events=tuple(prepare_source(source_event(r)) for r in registrations),
        expect=tuple(
            Expectation(place=source_stream(r.source), version=r.expect)
            for r in registrations
            if r.expect is not None
        ),
        submitter=submitter,
        admin=admin,
    )


async def register_sources(
    committer: GroupCommitter, body: bytes, *, submitter: str | None, admin: bool = False
) -> list[Receipt]:
    """Register (or re-grade) one source or a registry file (``{"sources": [...]}``),
    atomically; the receipts, or the FrontlineError that refused it (nothing written)."""
    request = source_request(decode_sources(body), submitter=submitter, admin=admin)
    return await _append_as(committer, request, "sources")


async def sources_page(store: EventStore, position: int) -> SourcesPage:
    """The source registry as known at ``position``, in key order."""
    registry = await store.side_registry(position)
    return SourcesPage(
        known_position=position,
        sources=[registry.sources[key] for key in sorted(registry.sources)],
    )


async def source_at(store: EventStore, name: str, position: int) -> SourceEntry | None:
    """One source's entry as known at ``position`` (its name or an alias, case and spacing
    aside)."""
    return (await store.side_registry(position)).source_of(name)


async def unmapped_page(
    store: EventStore, position: int, after: tuple[int, str] | None, limit: int
) -> tuple[list[UnmappedSide], str | None]:
    """One page of the side names the events known at ``position`` use that the registry
    as known at ``position`` does not know (most used first, then by name), and the cursor
    of the next page (``events:side``; None on the last)."""
    registry = await store.side_registry(position)
    rows = await unmapped_sides(store.pool, position, registry.known_names(), after, limit + 1)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], f"{last.events}:{last.side}"
