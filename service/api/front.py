"""The front: state at any valid time as known at any position, places, disputes, changes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from contracts.front import (
    Frame,
    GeoFeature,
    GeoPoint,
    GeoState,
    NetChange,
    PlaceDetail,
    PlaceEvents,
    PlaceHistory,
    PlaceInfo,
    PlaceState,
    PlaceTimeline,
    RebuildResult,
    StateChanges,
    StateExtent,
    StateNetChanges,
    StatePage,
    Transition,
)
from contracts.timeline import Segment
from service import query
from service.api import pages
from service.api import parameters as params
from service.api.caching import PINNABLE
from service.api.deps import AnyRequest, ServicesDep
from service.api.etags import content_etag, etag_matches
from service.api.parameters import (
    BBox,
    ChangesCursor,
    Cursor,
    KnownAt,
    PlaceId,
    PositionCursor,
    SideFilter,
    StateFormat,
    StatusFilter,
    ValidAt,
)
from service.api.problems import problem_spec
from service.api.replicas import REPLICA
from service.domain.net_changes import net_changes
from service.domain.projection import segment_at
from service.projections.reads import ChangesQuery, RegisteredPlace, RowsAt, StateQuery
from service.query import ChangeCursor, change_cursor_text
from service.usecases import places, reading
from service.usecases.export import front_csv

LAST_INSTANT: Final = datetime(9899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant a changes cursor can name (its pattern's last year): a net page's
cursor names its last place at this instant, so the next page starts after that place."""

GEOJSON: Final = "application/geo+json"
CSV: Final = "text/csv"  # Litestar adds "; charset=utf-8" to text/ types

BAD_PARAMETER = {422: problem_spec("A query parameter is invalid; `field` names it.")}
CSV_OR_BAD = {
    **BAD_PARAMETER,
    304: ResponseSpec(None, description="`format=csv` and `If-None-Match` names its ETag."),
}
NO_PLACE = {
    404: problem_spec("No event names this place."),
    422: problem_spec("A query parameter is invalid; `field` names it."),
}


def _now() -> datetime:
    return datetime.now(UTC)


def _frame(valid_at: datetime | None, rows: RowsAt) -> Frame:
    """What an answer names: the policy of the rows it read (not the one this code serves:
    while a rebuild to a new policy runs, answers come from the old one's rows), the
    valid time and the known position."""
    return Frame(
        policy=rows.policy,
        policy_version=rows.policy_version,
        valid_at=valid_at,
        known_position=rows.position,
    )


async def _place_as_known(
    services: ServicesDep, place_id: str, known_at: str | None
) -> tuple[RegisteredPlace, RowsAt]:
    """A place's registry entry (404 when unknown) and the rows ``known_at`` names."""
    place = await services.front.place(place_id)
    return place, await services.front.rows_at(params.known_at(known_at))


async def _timeline_as_known(
    services: ServicesDep, place_id: str, known_at: str | None
) -> tuple[RegisteredPlace, RowsAt, list[Segment]]:
    """A place's registry entry (404 when unknown), its timeline as ``known_at`` names it,
    and what the rows read are (policy, position)."""
    place = await services.front.place(place_id)
    known, segments = await services.front.read_at(
        params.known_at(known_at), lambda at: services.front.timeline(place_id, at.position)
    )
    return place, known, segments


_segment: Final = msgspec.json.Decoder(Segment)


class _PlaceStateWire(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`PlaceState` as it is encoded, its segment already JSON (same fields, order)."""

    place: PlaceInfo
    segment: msgspec.Raw


class _StatePageWire(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`StatePage` as it is encoded, with :class:`_PlaceStateWire` items."""

    frame: Frame
    items: list[_PlaceStateWire]
    next_cursor: str | None
    next: str | None


def _csv_answer(request: AnyRequest, body: bytes, name: str) -> Response[Any]:
    """A reproducible CSV answer with its ETag (304 when the client holds it)."""
    etag = content_etag(body)
    headers = {"etag": etag, "content-disposition": f'attachment; filename="frontline-{name}.csv"'}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=CSV, headers=headers)


def _feature(state: PlaceState) -> GeoFeature:
    place = state.place
    # Only called for located places.
    assert place.lat is not None
    assert place.lon is not None
    properties = {
        "name": place.name,
        "kind": place.kind,
        "parent": place.parent,
        "aliases": place.aliases,
        "precision": place.precision,
        **msgspec.to_builtins(state.segment),
    }
    return GeoFeature(
        id=place.id, geometry=GeoPoint(coordinates=(place.lon, place.lat)), properties=properties
    )


async def _net_page(
    services: ServicesDep, query: ChangesQuery
) -> tuple[list[NetChange], str | None]:
    """Up to ``query.limit`` places' net changes after the cursor, and the next cursor.

    The every-transition form is read in pages of ``FRONTLINE_MAX_PAGE`` until it reaches a
    place past the ``limit``-th (so that each place listed has all its changes) or its end.
    The next cursor names the last place listed at the last instant a cursor can hold, so
    the next page starts with the place after it.
    """
    found: dict[str, list[Transition]] = {}
    after = query.after
    while True:
        page, following = await services.front.changes(
            dataclasses.replace(query, after=after, limit=services.settings.max_page)
        )
        for item in page:
            found.setdefault(item.place.id, []).append(item)
        if len(found) > query.limit or following is None:
            break
        after = params.change_cursor(following)
    places = list(found)
    if len(places) <= query.limit:
        return net_changes(t for steps in found.values() for t in steps), None
    kept = places[: query.limit]
    items = net_changes(t for place in kept for t in found[place])
    return items, change_cursor_text(ChangeCursor(kept[-1], LAST_INSTANT))


class FrontController(Controller):
    """Who holds what, when, as known when."""

    tags = ["front"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @get(
        "/v1/state",
        operation_id="getState",
        summary="The front at a date, as known at a position",
        description=(
            "Every place's segment at `valid_at` as known at `known_at`, in place id order, "
            "paginated with `cursor`. With `Accept: application/geo+json` or "
            "`format=geojson`, a GeoJSON FeatureCollection whose feature properties carry "
            "the same fields; places without a point are listed in `unlocated`. With "
            "`format=csv`, the whole front (every page; `limit` and `cursor` do not apply) "
            "as RFC 4180 CSV: place_id, name, lat, lon (as the log knew the place then), "
            "controller, status, status_by, disputed, confidence, basis, held_since, sources; "
            "the same question gives the same bytes and `ETag` (`If-None-Match`: 304)."
        ),
        responses=CSV_OR_BAD,
        opt=PINNABLE,
    )
    async def state(
        self,
        request: AnyRequest,
        services: ServicesDep,
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
        bbox: BBox = None,
        side: SideFilter = None,
        status: StatusFilter = None,
        disputed: Annotated[
            bool | None, QueryParameter(description="Only (un)disputed places.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Places per page.")] = 500,
        cursor: Cursor = None,
        format_: StateFormat = None,
    ) -> Response[StatePage | GeoState | bytes]:
        """The front as a page of places, or as GeoJSON."""
        params.page_limit(limit, services.settings.max_page)
        status = params.one_of(status, params.STATUSES, "status")
        format_ = params.one_of(format_, params.FORMATS, "format")
        moment = params.valid_time(valid_at, "valid_at") if valid_at else _now()
        known = params.known_at(known_at)
        query = StateQuery(
            valid_at=moment,
            known_position=0,  # that of the rows read (below)
            bbox=params.bbox(bbox),
            side=side,
            status=status,
            disputed=disputed,
            cursor=cursor or "",
            limit=limit,
        )
        if format_ == "csv":
            _, body = await front_csv(services.front, query, known)
            return _csv_answer(request, body, "front")
        rows_at, (rows, next_cursor) = await services.front.read_at(
            known,
            lambda at: services.front.state_rows(
                dataclasses.replace(query, known_position=at.position)
            ),
        )
        frame = _frame(moment, rows_at)
        link = pages.next_url(request, next_cursor)
        if format_ == "geojson" or (
            format_ is None and GEOJSON in request.headers.get("accept", "")
        ):
            items = [PlaceState(place=r.place, segment=_segment.decode(r.body)) for r in rows]
            located = [s for s in items if s.place.lat is not None and s.place.lon is not None]
            return pages.page(
                GeoState(
                    features=[_feature(s) for s in located],
                    unlocated=[s for s in items if s.place.lat is None or s.place.lon is None],
                    frame=frame,
                    next_cursor=next_cursor,
                    next=link,
                ),
                link,
                media_type=GEOJSON,
            )
        # The stored segment JSON goes out as it is: the same bytes as a StatePage whose
        # segments were decoded, without decoding them (test_state_page_bytes_...).
        page = _StatePageWire(
            frame=frame,
            items=[_PlaceStateWire(place=r.place, segment=msgspec.Raw(r.body)) for r in rows],
            next_cursor=next_cursor,
            next=link,
        )
        return pages.page(cast("StatePage", page), link)

    @get(
        "/v1/state/changes",
        operation_id="getStateChanges",
        summary="Every change of the front between two dates",
        description=(
            "Each change with `from <= at <= to`, as known at `known_at`: every boundary "
            "between two consecutive segments of a place's timeline where the controller, the "
            "status, `status_by` or the disputed flag differs, and a place's first segment when "
            "it starts inside the range (`before` null), with the segments on either side and "
            "what changed. A place that changed hands and changed back inside the range lists "
            "both changes. In (place id, `at`) order, paginated with `cursor` (pass "
            "`next_cursor`); `place`, `side` and `bbox` narrow it. A page costs one probe of "
            "the projection per place it visits, so a quiet range over many places is quicker "
            "with `bbox` or `place`. With `net=true`, the net form: each place whose reading "
            "differs between the start and the end of the range, once, with the segment before "
            "its first change and the segment after its last (a place that changed and changed "
            "back is not listed); `limit` counts places, and a page may hold fewer."
        ),
        responses=BAD_PARAMETER,
        opt=PINNABLE,
    )
    async def changes(
        self,
        request: AnyRequest,
        services: ServicesDep,
        from_: Annotated[
            str,
            QueryParameter(
                name="from",
                description="The start of the range, included (a date, or a datetime with offset).",
                pattern=params.INSTANT_PATTERN,
                max_length=40,
            ),
        ],
        to: Annotated[
            str,
            QueryParameter(
                description="The end of the range, included (a date: its first instant; or a "
                "datetime with offset); not before `from`.",
                pattern=params.INSTANT_PATTERN,
                max_length=40,
            ),
        ],
        known_at: KnownAt = None,
        place: Annotated[
            str | None,
            QueryParameter(
                description="Only this place's changes.",
                pattern=params.SLUG_PATTERN,
                max_length=128,
            ),
        ] = None,
        side: Annotated[
            str | None,
            QueryParameter(
                description="Only changes where this side holds, encircles or contests the "
                "place, before or after.",
                pattern=params.SLUG_PATTERN,
                max_length=128,
            ),
        ] = None,
        bbox: BBox = None,
        limit: Annotated[
            int, QueryParameter(ge=1, description="Changes (with `net=true`: places) per page.")
        ] = 500,
        cursor: ChangesCursor = None,
        net: Annotated[
            bool,
            QueryParameter(
                description="Each place's reading before the range's first change and after "
                "its last, once, instead of every change."
            ),
        ] = False,
    ) -> Response[StateChanges | StateNetChanges]:
        """One page of the changes inside the range, each with its segments before and after
        (with ``net``: one item per place, its reading before and after the range)."""
        params.page_limit(limit, services.settings.max_page)
        start = params.valid_time(from_, "from")
        end = params.valid_time(to, "to")
        if end < start:
            raise params.invalid_parameter("to", f"an instant not before from ({from_})", to)
        query = ChangesQuery(
            start=start,
            end=end,
            known_position=0,  # that of the rows read (below)
            place=place,
            side=side,
            bbox=params.bbox(bbox),
            after=params.change_cursor(cursor),
            limit=limit,
        )
        known = params.known_at(known_at)
        if net:
            rows_at, (places, following) = await services.front.read_at(
                known,
                lambda at: _net_page(
                    services, dataclasses.replace(query, known_position=at.position)
                ),
            )
            link = pages.next_url(request, following)
            return pages.page(
                StateNetChanges(
                    net=True,
                    frame=_frame(None, rows_at),
                    from_=start,
                    to=end,
                    items=places,
                    next_cursor=following,
                    next=link,
                ),
                link,
            )
        rows_at, (items, next_cursor) = await services.front.read_at(
            known,
            lambda at: services.front.changes(
                dataclasses.replace(query, known_position=at.position)
            ),
        )
        link = pages.next_url(request, next_cursor)
        return pages.page(
            StateChanges(
                frame=_frame(None, rows_at),
                from_=start,
                to=end,
                items=items,
                next_cursor=next_cursor,
                next=link,
            ),
            link,
        )

    @get(
        "/v1/state/extent",
        operation_id="getStateExtent",
        summary="How far the log reaches in valid and in known time",
        description=(
            "The earliest valid time and the end of the latest valid interval of the events "
            "known at `known_at`, their count, and when the first and the last of them were "
            "recorded: the range of the map page's time slider and of its as-known-at control."
        ),
        responses=BAD_PARAMETER,
        opt=PINNABLE,
    )
    async def extent(self, services: ServicesDep, known_at: KnownAt = None) -> StateExtent:
        """The span of the log as known at `known_at`."""
        known = await services.front.known_position(params.known_at(known_at))
        return await services.front.extent(known)

    @get(
        "/v1/disputes",
        operation_id="getDisputes",
        summary="Disputed places",
        description=(
            "The places disputed at `valid_at` as known at `known_at`; each segment lists "
            "every competing claim (side, source, score, event), each side's support, and "
            "the reason the controller won."
        ),
        responses=BAD_PARAMETER,
        opt=PINNABLE,
    )
    async def disputes(
        self,
        request: AnyRequest,
        services: ServicesDep,
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Places per page.")] = 500,
        cursor: Cursor = None,
    ) -> Response[StatePage]:
        """One page of disputed places."""
        params.page_limit(limit, services.settings.max_page)
        moment = params.valid_time(valid_at, "valid_at") if valid_at else _now()
        query = StateQuery(
            valid_at=moment,
            known_position=0,  # that of the rows read (below)
            disputed=True,
            cursor=cursor or "",
            limit=limit,
        )
        rows_at, (items, next_cursor) = await services.front.read_at(
            params.known_at(known_at),
            lambda at: services.front.state(dataclasses.replace(query, known_position=at.position)),
        )
        link = pages.next_url(request, next_cursor)
        return pages.page(
            StatePage(
                frame=_frame(moment, rows_at), items=items, next_cursor=next_cursor, next=link
            ),
            link,
        )

    @get(
        "/v1/places/{place_id:str}",
        opt=REPLICA,
        operation_id="getPlace",
        summary="A place and its segment now",
        responses=NO_PLACE,
    )
    async def place(
        self,
        services: ServicesDep,
        place_id: PlaceId,
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
    ) -> PlaceDetail:
        """The registry's entry and the segment at `valid_at` (default now)."""
        found, known, segments = await _timeline_as_known(services, place_id, known_at)
        moment = params.valid_time(valid_at, "valid_at") if valid_at else _now()
        here = segment_at(segments, moment)
        merge, absorbed = await places.merge_state(services.log, place_id, known.position)
        return PlaceDetail(
            place=found.info,
            version=found.version,
            first_position=found.first_position,
            last_position=found.last_position,
            frame=_frame(moment, known),
            segment=here,
            merged_into=None if merge is None else merge.place,
            merged=absorbed,
        )

    @get(
        "/v1/places/{place_id:str}/timeline",
        operation_id="getPlaceTimeline",
        summary="A place's timeline as known at a position",
        responses=NO_PLACE,
        opt=PINNABLE,
    )
    async def timeline(
        self,
        services: ServicesDep,
        place_id: PlaceId,
        known_at: KnownAt = None,
    ) -> PlaceTimeline:
        """Every segment, in valid-time order."""
        found, known, segments = await _timeline_as_known(services, place_id, known_at)
        return PlaceTimeline(place=found.info, frame=_frame(None, known), segments=segments)

    @get(
        "/v1/places/{place_id:str}/events",
        operation_id="getPlaceEvents",
        summary="Every event about a place, with links and whether each is in force",
        description=(
            "The place's events up to `known_at`, in position order, each with its links "
            "both ways and whether it is in force (among all of them, not only the page's). "
            "Paginated with `cursor` (pass `next_cursor`, or follow `next`); `total` counts "
            "every page's events."
        ),
        responses=NO_PLACE,
        opt=PINNABLE,
    )
    async def events(
        self,
        request: AnyRequest,
        services: ServicesDep,
        place_id: PlaceId,
        known_at: KnownAt = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Events per page.")] = 500,
        cursor: PositionCursor = None,
    ) -> Response[PlaceEvents]:
        """The place's events in position order (confirms, denies, corrects, retracts,
        supersedes links both ways)."""
        params.page_limit(limit, services.settings.max_page)
        after = params.position_cursor(cursor) or 0
        found, known = await _place_as_known(services, place_id, known_at)
        # Whether an event is in force depends on every event about the place: all are read.
        every = await services.front.place_events(place_id, known.position)
        rest = [e for e in every if e.position > after]
        following = str(rest[limit - 1].position) if len(rest) > limit else None
        link = pages.next_url(request, following)
        return pages.page(
            PlaceEvents(
                place=found.info,
                known_position=known.position,
                events=await reading.place_events_read(services.log, rest[:limit], known.position),
                total=len(every),
                next_cursor=following,
                next=link,
            ),
            link,
        )

    @get(
        "/v1/places/{place_id:str}/history",
        opt=REPLICA,
        operation_id="getPlaceHistory",
        summary="How each report changed a place's story",
        description=(
            "The place's commits in position order, each with its events (source, side, "
            "hedge), the timeline segments it replaced and added, and the valid intervals "
            "where the map's reading (controller, status, status_by, disputed) changed, "
            "before and after. Paginated by commit with `cursor` (pass `next_cursor`, or "
            "follow `next`)."
        ),
        responses=NO_PLACE,
    )
    async def history(
        self,
        request: AnyRequest,
        services: ServicesDep,
        place_id: PlaceId,
        cursor: PositionCursor = None,
        limit: Annotated[int, QueryParameter(ge=1, description="Commits per page.")] = 100,
    ) -> Response[PlaceHistory]:
        """The place's history, one page of commits."""
        params.page_limit(limit, services.settings.max_page)
        after = params.position_cursor(cursor) or 0
        found = await services.front.place(place_id)
        rows_at, (entries, following) = await services.front.read_at(
            query.KnownAt(), lambda _: services.front.history(place_id, after, limit)
        )
        next_cursor = None if following is None else str(following)
        link = pages.next_url(request, next_cursor)
        return pages.page(
            PlaceHistory(
                place=found.info,
                policy=rows_at.policy,
                policy_version=rows_at.policy_version,
                entries=await reading.history_read(services.log, entries, rows_at.position),
                next_cursor=next_cursor,
                next=link,
            ),
            link,
        )

    @post(
        "/v1/admin/rebuild",
        operation_id="rebuildProjections",
        summary="Rebuild the projections from the log",
        description=(
            "Recomputes every projection row from the log under the served policy, in worker "
            "processes, into a twin table, and answers when the new rows are swapped in. "
            "The service goes on meanwhile: reads answer from the old rows until the swap, "
            "appends go on and are in the new rows (the rebuild catches up with them, the "
            "last few under the head lock for a moment). One rebuild at a time: another "
            "request gets 409 (one may be running since start-up, when the stored rows were "
            "stale). A client that disconnects does not stop it."
        ),
        status_code=200,
        tags=["admin"],
        responses={
            409: problem_spec("A rebuild is under way (`detail` says how far it is)."),
            500: problem_spec("The rebuild failed; the served rows are untouched."),
            503: problem_spec(
                "The rebuild was interrupted by a condition that passes (a worker killed, as "
                "when memory runs out; no database connection to be had; long reads holding "
                "the table past every try of the swap; the service stopping); the served rows "
                "are untouched: retry after `Retry-After` seconds."
            ),
        },
    )
    async def rebuild(self, services: ServicesDep) -> RebuildResult:
        """Rebuild every projection."""
        report = await services.rebuilds.rebuild()
        return RebuildResult(
            rows=report.rows,
            position=report.position,
            policy=report.policy,
            policy_version=report.policy_version,
        )
