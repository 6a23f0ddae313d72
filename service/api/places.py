"""/v1/places/{id}/merges, /unmerges and /v1/places/merges: the place registry's merges, as
known at a position, and their edits (DESIGN section 8)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from contracts.registry import PlaceMergesPage
from contracts.responses import AppendResult
from service.api import parameters as params
from service.api.deps import (
    AnyRequest,
    ServicesDep,
    appended,
    read_limited,
    sent_by_admin,
    submitter_of,
)
from service.api.events import problem_spec
from service.api.openapi import PlaceMergeOperation, PlaceUnmergeOperation
from service.api.parameters import KnownAt, PlaceId
from service.api.replicas import REPLICA
from service.usecases import places

_EDIT_ANSWERS = {
    200: ResponseSpec(
        AppendResult, description="The event was already stored as given: nothing new."
    ),
    400: problem_spec("The body is not JSON."),
    409: problem_spec(
        "The merges in force refuse it (`merge-refused`: a place merged already, a chain, no "
        "merge to retract), or an `expect` precondition does not hold. Nothing written."
    ),
    413: problem_spec("The body is over the configured limit."),
    422: problem_spec(
        "The body breaks the contract, or names a place no event names (or the place itself); "
        "`field` names it. Nothing written."
    ),
    503: problem_spec("The database is unavailable."),
}


class PlaceMergesController(Controller):
    """Merges of places: GET those in force as known at a position; POST a merge or an
    unmerge (editor or admin)."""

    path = "/v1/places"

    @get(
        "/merges",
        opt=REPLICA,
        operation_id="getPlaceMerges",
        tags=["registries"],
        summary="The merges of places in force",
        description=(
            "Every merge in force as the registry stood at `known_at` (default: the log's "
            "head): the surviving `place`, the `merged` place whose events belong to its "
            "timeline, the merge's event id (what an unmerge retracts), its position and "
            "submitter."
        ),
        responses={422: problem_spec("A query parameter is invalid.")},
    )
    async def merges(self, services: ServicesDep, known_at: KnownAt = None) -> PlaceMergesPage:
        """The merges in force as known at a position."""
        position = (await services.front.resolve(params.known_at(known_at), log=True)).position
        return await places.merges_page(services.log, position)

    @post(
        "/{place_id:str}/merges",
        operation_id="mergePlaces",
        tags=["registries"],
        summary="Merge a place into this one",
        operation_class=PlaceMergeOperation,
        description=(
            "Appends a `place_merged` event (`place`: this place, `merged`: the body's) to the "
            "merged place's registry stream `place:<merged>`. From its position on, every "
            "event about the merged place (earlier and later ones) belongs to this place's "
            "timeline, and the merged place has none; both timelines are folded again in the "
            "same commit. Answers known before the merge still show two places. Both must be "
            "places of the log; a place is merged once, and merges do not chain (no merge "
            "into a merged place, nor of a place others are merged into). Needs an `editor` or "
            "`admin` key; the key's name is recorded as the submitter."
        ),
        status_code=201,
        responses=_EDIT_ANSWERS,
    )
    async def merge(
        self, request: AnyRequest, services: ServicesDep, place_id: PlaceId
    ) -> Response[AppendResult]:
        """Merge a place into this one."""
        receipts = await places.merge_places(
            services.committer,
            place_id,
            await read_limited(request, services.settings.max_body_bytes),
            submitter=submitter_of(request),
            admin=sent_by_admin(request),
        )
        return appended(receipts)

    @post(
        "/{place_id:str}/unmerges",
        operation_id="unmergePlaces",
        tags=["registries"],
        summary="Undo a merge into this place",
        operation_class=PlaceUnmergeOperation,
        description=(
            "Appends a `place_merge_retracted` event retracting the merge in force of the "
            "body's `merged` into this place (`retracts` may name the merge's event id). From "
            "its position on the two places have their own timelines again, both folded again "
            "in the same commit; the merge stays in the log, and answers known between the "
            "merge and the unmerge keep seeing one place. Needs an `editor` or `admin` key."
        ),
        status_code=201,
        responses=_EDIT_ANSWERS,
    )
    async def unmerge(
        self, request: AnyRequest, services: ServicesDep, place_id: PlaceId
    ) -> Response[AppendResult]:
        """Undo a merge into this place."""
        receipts = await places.unmerge_places(
            services.committer,
            services.store,
            place_id,
            await read_limited(request, services.settings.max_body_bytes),
            submitter=submitter_of(request),
            admin=sent_by_admin(request),
        )
        return appended(receipts)
