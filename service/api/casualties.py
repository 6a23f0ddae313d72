"""Casualty figures side by side: a place's, and every place's over a range of valid time."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from contracts.casualties import CasualtiesInRange, PlaceCasualties
from service.api import parameters as params
from service.api.deps import AnyRequest, ServicesDep
from service.api.front import BAD_PARAMETER, NO_PLACE, _frame
from service.api.pages import next_url, page
from service.api.parameters import BBox, Cursor, KnownAt, PlaceId
from service.api.replicas import REPLICA
from service.usecases.casualties import place_page, range_page


class CasualtiesController(Controller):
    """Every casualty claim with its source, grouped by incident, never averaged."""

    tags = ["front"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @get(
        "/v1/places/{place_id:str}/casualties",
        opt=REPLICA,
        operation_id="getPlaceCasualties",
        summary="A place's casualty claims, side by side, by incident",
        description=(
            "Every claim of casualty figures about the place as known at `known_at`: its "
            "source, best (`killed`), `low`, `high`, `wounded`, side and date, whether it is "
            "in force, and the bounds it breaks (`low <= killed <= high`: listed as given, "
            "never repaired). Reports linked to each other (`relates_to`: MAVERICK's reports "
            "of one event confirm its first) are one incident, with the spread of its best "
            "figures (min and max over the claims in force): figures are never averaged. In "
            "the order of each incident's first event, paginated with `cursor`/`limit` "
            "(`next_cursor`, `next` and a `Link` header name the next page)."
        ),
        responses=NO_PLACE,
    )
    async def place(
        self,
        request: AnyRequest,
        services: ServicesDep,
        place_id: PlaceId,
        known_at: KnownAt = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Incidents per page.")] = 100,
        cursor: Cursor = None,
    ) -> Response[PlaceCasualties]:
        """One page of the place's incidents."""
        params.page_limit(limit, services.settings.max_page)
        found = await services.front.place(place_id)
        rows_at = await services.front.rows_at(params.known_at(known_at))
        items, following = await place_page(
            services.casualties,
            place_id,
            rows_at.position,
            cursor,
            limit,
            await services.log.side_registry(rows_at.position),
        )
        next_ = next_url(request, following)
        return page(
            PlaceCasualties(
                place=found.info,
                frame=_frame(None, rows_at),
                items=items,
                next_cursor=following,
                next=next_,
            ),
            next_,
        )

    @get(
        "/v1/casualties",
        opt=REPLICA,
        operation_id="getCasualties",
        summary="Casualty claims over a range of valid time, place by place",
        description=(
            "The incidents (as `/v1/places/{id}/casualties` lists them) of every place with a "
            "casualty claim whose valid time meets `from`..`to` (both included; either may be "
            "left out) and whose point is in `bbox` (a place without a point is in no box), as "
            "known at `known_at`; only the claims inside the range are listed, and the spread "
            "is theirs. In place id order, each place's incidents whole; `limit` counts "
            "places, paginated with `cursor` (`next_cursor`, `next`, a `Link` header)."
        ),
        responses=BAD_PARAMETER,
    )
    async def in_range(
        self,
        request: AnyRequest,
        services: ServicesDep,
        from_: Annotated[
            str | None,
            QueryParameter(
                name="from",
                description="The start of the range, included (a date, or a datetime with offset).",
                pattern=params.INSTANT_PATTERN,
                max_length=40,
            ),
        ] = None,
        to: Annotated[
            str | None,
            QueryParameter(
                description="The end of the range, included (a date: its first instant; or a "
                "datetime with offset); not before `from`.",
                pattern=params.INSTANT_PATTERN,
                max_length=40,
            ),
        ] = None,
        bbox: BBox = None,
        known_at: KnownAt = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Places per page.")] = 100,
        cursor: Cursor = None,
    ) -> Response[CasualtiesInRange]:
        """One page of the range's places' incidents."""
        params.page_limit(limit, services.settings.max_page)
        start, end = params.time_range(from_, to, "from", "to")
        rows_at = await services.front.rows_at(params.known_at(known_at))
        items, following = await range_page(
            services.casualties,
            rows_at.position,
            start,
            end,
            params.bbox(bbox),
            cursor,
            limit,
            await services.log.side_registry(rows_at.position),
        )
        next_ = next_url(request, following)
        return page(
            CasualtiesInRange(
                frame=_frame(None, rows_at),
                from_=start,
                to=end,
                items=items,
                next_cursor=following,
                next=next_,
            ),
            next_,
        )
