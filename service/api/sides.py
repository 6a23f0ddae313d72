"""/v1/sides: the side registry, as known at a position, and its edits (DESIGN section 8)."""

from __future__ import annotations

from litestar import Controller, Response, get, post

from contracts.registry import SideEntry, SidesPage
from contracts.responses import AppendResult
from service.api import parameters as params
from service.api.deps import AnyRequest, ServicesDep, read_limited, sent_by_admin, submitter_of
from service.api.events import problem_spec
from service.api.openapi import SidesOperation
from service.api.parameters import KnownAt, SideId
from service.errors import NotFound
from service.usecases import registry


class SidesController(Controller):
    """The side registry: GET it as known at a position; POST an entry (editor or admin)."""

    path = "/v1/sides"

    @get(
        "/",
        summary="The side registry",
        description=(
            "Every registered side as the registry stood at `known_at` (default: the log's "
            "head): canonical id, display name, kind, colour, aliases, and the version, "
            "position and submitter of the statement in force. A claim made under an alias "
            "counts for the side in every answer known at or after the alias's position."
        ),
        responses={422: problem_spec("A query parameter is invalid.")},
    )
    async def sides(self, services: ServicesDep, known_at: KnownAt = None) -> SidesPage:
        """The registry as known at a position."""
        position = (await services.front.resolve(params.known_at(known_at), log=True)).position
        return await registry.sides_page(services.store, position)

    @get(
        "/{side:str}",
        summary="One side of the registry",
        description=(
            "A side's entry as known at `known_at`; a name that is an alias finds its side. "
            "404 when no side registers the name."
        ),
        responses={
            404: problem_spec("No side registers this name."),
            422: problem_spec("A parameter is invalid."),
        },
    )
    async def side(
        self, services: ServicesDep, side: SideId, known_at: KnownAt = None
    ) -> SideEntry:
        """One side's entry as known at a position."""
        position = (await services.front.resolve(params.known_at(known_at), log=True)).position
        entry = await registry.side_at(services.store, side, position)
        if entry is None:
            raise NotFound(f"no side registers the name {side!r}", field="side")
        return entry

    @post(
        "/",
        summary="Register a side, or change its entry",
        operation_class=SidesOperation,
        description=(
            "Appends a `side_registered` event (the whole entry) to the side's registry "
            "stream `side:<id>`: the first registers the side, a later one replaces its name, "
            "kind, colour and aliases from its position on. A registry file "
            '(`{"sides": [...]}`) is one atomic commit. The places whose claims the edit '
            "remaps (an alias added or removed) are folded again in the same commit. Needs "
            "an `editor` or `admin` key; the key's name is recorded as the submitter."
        ),
        status_code=201,
        responses={
            409: problem_spec(
                "An alias already names another side (or the side's id is another side's "
                "alias), or an `expect` precondition does not hold. Nothing written."
            ),
            413: problem_spec("The body is over the configured limit."),
            422: problem_spec("The entry breaks the contract; `field` names it. Nothing written."),
            503: problem_spec("The database is unavailable."),
        },
    )
    async def register(self, request: AnyRequest, services: ServicesDep) -> Response[AppendResult]:
        """Register sides."""
        receipts = await registry.register_sides(
            services.committer,
            await read_limited(request, services.settings.max_body_bytes),
            submitter=submitter_of(request),
            admin=sent_by_admin(request),
        )
        created = any(not r.duplicate for r in receipts)
        return Response(AppendResult(receipts=receipts), status_code=201 if created else 200)
