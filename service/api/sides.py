"""/v1/sides and /v1/sources: the registries, as known at a position, and their edits
(DESIGN section 8)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from contracts.registry import SideEntry, SidesPage, SourceEntry, SourcesPage
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
from service.api.openapi import SidesOperation, SourcesOperation
from service.api.parameters import KnownAt, SideId, SourceName
from service.api.replicas import REPLICA
from service.errors import NotFound
from service.usecases import registry


class SidesController(Controller):
    """The side registry: GET it as known at a position; POST an entry (editor or admin)."""

    path = "/v1/sides"

    @get(
        "/",
        opt=REPLICA,
        operation_id="getSides",
        tags=["registries"],
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
        return await registry.sides_page(services.log, position)

    @get(
        "/{side:str}",
        opt=REPLICA,
        operation_id="getSide",
        tags=["registries"],
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
        entry = await registry.side_at(services.log, side, position)
        if entry is None:
            raise NotFound(f"no side registers the name {side!r}", field="side")
        return entry

    @post(
        "/",
        operation_id="registerSides",
        tags=["registries"],
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
            200: ResponseSpec(
                AppendResult, description="The entry was already stored as given: nothing new."
            ),
            409: problem_spec(
                "An alias already names another side (or the side's id is another side's "
                "alias), or an `expect` precondition does not hold. Nothing written."
            ),
            400: problem_spec("The body is not JSON."),
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
        return appended(receipts)


class SourcesController(Controller):
    """The source registry: GET it as known at a position; POST an entry (editor or admin)."""

    path = "/v1/sources"

    @get(
        "/",
        opt=REPLICA,
        operation_id="getSources",
        tags=["registries"],
        summary="The source registry",
        description=(
            "Every registered source as the registry stood at `known_at` (default: the log's "
            "head): name, key (the name without case or white space), grade, alignment, "
            "aliases, url, and the version, position and submitter of the statement in force. "
            "Every claim of a registered source (under its name or an alias) is scored with "
            "this grade and alignment in every answer known at or after that position."
        ),
        responses={422: problem_spec("A query parameter is invalid.")},
    )
    async def sources(self, services: ServicesDep, known_at: KnownAt = None) -> SourcesPage:
        """The source registry as known at a position."""
        position = (await services.front.resolve(params.known_at(known_at), log=True)).position
        return await registry.sources_page(services.log, position)

    @get(
        "/{source:str}",
        opt=REPLICA,
        operation_id="getSource",
        tags=["registries"],
        summary="One source of the registry",
        description=(
            "A source's entry as known at `known_at`, by its name or an alias (case and "
            "spacing aside; URL-encode it). 404 when no source registers the name."
        ),
        responses={
            404: problem_spec("No source registers this name."),
            422: problem_spec("A parameter is invalid."),
        },
    )
    async def source(
        self, services: ServicesDep, source: SourceName, known_at: KnownAt = None
    ) -> SourceEntry:
        """One source's entry as known at a position."""
        position = (await services.front.resolve(params.known_at(known_at), log=True)).position
        entry = await registry.source_at(services.log, source, position)
        if entry is None:
            raise NotFound(f"no source registers the name {source!r}", field="source")
        return entry

    @post(
        "/",
        operation_id="registerSources",
        tags=["registries"],
        summary="Register a source, or re-grade it",
        operation_class=SourcesOperation,
        description=(
            "Appends a `source_registered` event (the whole entry) to the source's registry "
            "stream `source:<key>`: the first registers the source, a later one re-grades it "
            "from its position on (earlier answers and the events themselves are never "
            "rewritten). An event may then name the source without its grade. An alias makes "
            "two names one source (rule 5). The places citing the source are folded again in "
            "the same commit. Needs an `editor` or `admin` key."
        ),
        status_code=201,
        responses={
            200: ResponseSpec(
                AppendResult, description="The entry was already stored as given: nothing new."
            ),
            409: problem_spec(
                "An alias already names another source (or the name is another source's "
                "alias), or an `expect` precondition does not hold. Nothing written."
            ),
            400: problem_spec("The body is not JSON."),
            413: problem_spec("The body is over the configured limit."),
            422: problem_spec("The entry breaks the contract; `field` names it. Nothing written."),
            503: problem_spec("The database is unavailable."),
        },
    )
    async def register(self, request: AnyRequest, services: ServicesDep) -> Response[AppendResult]:
        """Register sources."""
        receipts = await registry.register_sources(
            services.committer,
            await read_limited(request, services.settings.max_body_bytes),
            submitter=submitter_of(request),
            admin=sent_by_admin(request),
        )
        return appended(receipts)
