"""The place registry's merges: what ``POST /v1/places/{id}/merges``, ``/unmerges`` and
``GET /v1/places/merges`` do (DESIGN section 8).

A merge is a ``place_merged`` event in the merged place's registry stream
(``place:<merged>``), appended through the group committer like any event and checked
under the head lock against the merges as the log then holds it
(:meth:`~service.domain.registry.SideRegistry.check_merge`): both places must be places of
the log, a place is merged once, and merges do not chain. The places whose timelines it
joins are folded again in its commit. An unmerge is a ``place_merge_retracted`` event
naming the merge it retracts.
"""

from __future__ import annotations

import uuid
from typing import Literal

from contracts.events import Expectation, PlaceMerged, PlaceMergeRetracted
from contracts.registry import PlaceMergeEntry, PlaceMergesPage
from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.records import prepare_merge
from service.domain.registry import MergeRefused, place_stream
from service.domain.validation import decode_merge, decode_unmerge
from service.store.appender import GroupCommitter
from service.store.events import EventStore


def _request(
    event: PlaceMerged | PlaceMergeRetracted,
    expect: int | Literal["none", "any-existing"] | None,
    *,
    submitter: str | None,
    admin: bool,
) -> AppendRequest:
    return AppendRequest(
        events=(prepare_merge(event),),
        expect=()
        if expect is None
        else (Expectation(place=place_stream(event.merged), version=expect),),
        submitter=submitter,
        admin=admin,
    )


async def merge_places(
    committer: GroupCommitter,
    place: str,
    body: bytes,
    *,
    submitter: str | None,
    admin: bool = False,
) -> list[Receipt]:
    """Merge the body's ``merged`` into ``place``: its receipt, or the FrontlineError that
    refused it (nothing written)."""
    merge = decode_merge(body)
    event = PlaceMerged(id=merge.id, place=place, merged=merge.merged, notes=merge.notes)
    return await committer.append(_request(event, merge.expect, submitter=submitter, admin=admin))


async def unmerge_places(
    committer: GroupCommitter,
    store: EventStore,
    place: str,
    body: bytes,
    *,
    submitter: str | None,
    admin: bool = False,
) -> list[Receipt]:
    """Retract the merge of the body's ``merged`` into ``place`` in force (the one
    ``retracts`` names, when given): its receipt, or the FrontlineError that refused it."""
    unmerge = decode_unmerge(body)
    retracts = unmerge.retracts
    if retracts is None:
        head, _ = await store.head()
        merge = (await store.side_registry(head)).merges.get(unmerge.merged)
        if merge is None or merge.place != place:
            raise MergeRefused(
                f"place {unmerge.merged!r} is not merged into {place!r}: there is no merge "
                "to retract",
                field="merged",
            )
        retracts = uuid.UUID(merge.id)
    event = PlaceMergeRetracted(
        id=unmerge.id,
        retracts=retracts,
        place=place,
        merged=unmerge.merged,
        notes=unmerge.notes,
    )
    return await committer.append(_request(event, unmerge.expect, submitter=submitter, admin=admin))


async def merges_page(store: EventStore, position: int) -> PlaceMergesPage:
    """The merges in force as known at ``position``, in merged-place order."""
    registry = await store.side_registry(position)
    return PlaceMergesPage(
        known_position=position,
        merges=[registry.merges[merged] for merged in sorted(registry.merges)],
    )


async def merge_state(
    store: EventStore, place: str, position: int
) -> tuple[PlaceMergeEntry | None, tuple[str, ...]]:
    """As known at ``position``: the merge that took ``place`` into another (or None), and
    the places merged into it."""
    registry = await store.side_registry(position)
    return registry.merges.get(place), registry.absorbed(place)
