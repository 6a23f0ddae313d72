"""/v1/events: append (one, a batch, or an NDJSON import) and replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any, Final, cast

import msgspec
import structlog
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import Message, Receive, Scope, Send

from contracts.events import LOG_TYPES
from contracts.responses import (
    AppendResult,
    EventDetail,
    EventFilters,
    EventPage,
    ImportResult,
    Problem,
    StoredEvent,
)
from service.api import pages
from service.api import parameters as params
from service.api.deps import (
    AnyRequest,
    ServicesDep,
    appended,
    read_limited,
    sent_by_admin,
    submitter_of,
)
from service.api.openapi import IngestOperation
from service.api.parameters import (
    ActorFilter,
    After,
    BBox,
    CountryFilter,
    EventId,
    EventSideFilter,
    IdempotencyKey,
    LastEventId,
    PlaceFilter,
    PositionCursor,
    RecordedFrom,
    RecordedTo,
    SourceFilter,
    TypeFilter,
    ValidFrom,
    ValidTo,
)
from service.api.replicas import REPLICA
from service.domain.records import source_key
from service.errors import NotFound
from service.query import invalid_parameter
from service.roles import allows
from service.store.events import EventFilter
from service.store.live import LiveEvent, follow
from service.usecases import ingest, reading

NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"
_encode: Final = msgspec.json.Encoder().encode
log = structlog.get_logger(__name__)


def problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


def _wants_ndjson(request: AnyRequest) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _filter(
    place: str | None,
    type_: str | None,
    source: str | None,
    *,
    side: str | None = None,
    actor: str | None = None,
    country: str | None = None,
    bbox: str | None = None,
    valid_from: str | None = None,
    valid_to: str | None = None,
    recorded_from: str | None = None,
    recorded_to: str | None = None,
) -> tuple[EventFilter, EventFilters]:
    """The store's filter and the ``filters`` member that names it (each bad value a 422
    naming its parameter)."""
    if type_ is not None and type_ not in LOG_TYPES:
        raise invalid_parameter("type", "one of " + ", ".join(sorted(LOG_TYPES)), type_)
    valid = params.time_range(valid_from, valid_to, "valid_from", "valid_to")
    recorded = params.time_range(recorded_from, recorded_to, "recorded_from", "recorded_to")
    box = params.bbox(bbox)
    where = EventFilter(
        place=place,
        type=type_,
        source=source_key(source) if source is not None else None,
        side=side,
        actor=actor,
        country=country,
        bbox=box,
        valid_from=valid[0],
        valid_to=valid[1],
        recorded_from=recorded[0],
        recorded_to=recorded[1],
    )
    applied = EventFilters(
        place=place,
        type=type_,
        source=source,
        side=side,
        actor=actor,
        country=country,
        bbox=(box.west, box.south, box.east, box.north) if box is not None else None,
        valid_from=valid[0],
        valid_to=valid[1],
        recorded_from=recorded[0],
        recorded_to=recorded[1],
    )
    return where, applied


class EventsController(Controller):
    """The log: append and replay."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @post(
        "/",
        operation_id="appendEvents",
        summary="Append events",
        description=(
            "One event or an atomic batch (JSON), answered with receipts: 201 when anything "
            "new was stored (one event: `Location` names it), 200 when every event was "
            "already stored with the same content (an idempotent retry). With "
            "`Content-Type: application/x-ndjson`, a bulk import of any size, committed in "
            "chunks, answered with counts and the rejected lines: 201 when it stored "
            "anything new, else 200."
        ),
        operation_class=IngestOperation,
        status_code=201,
        responses={
            200: ResponseSpec(AppendResult, description="Every event was already stored."),
            400: problem_spec("The body is not JSON."),
            403: problem_spec(
                "A `retracts`, `corrects` or `supersedes` link to an event another source "
                "made, or another key appended (an admin key may withdraw it in the name of "
                "its source); `field` names the link. Nothing written."
            ),
            409: problem_spec("An `expect` precondition does not hold; nothing was written."),
            413: problem_spec("The body is over the configured limit."),
            422: problem_spec("An event breaks the contract; `field` names it. Nothing written."),
            500: problem_spec("The database refused the write for a reason no check foresaw."),
            503: problem_spec("The database is unavailable."),
        },
    )
    async def append(
        self, request: AnyRequest, services: ServicesDep, idempotency_key: IdempotencyKey = None
    ) -> Response[AppendResult | ImportResult]:
        """Append one event, a batch, or an NDJSON stream."""
        settings = services.settings
        key = params.idempotency_key(idempotency_key)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == NDJSON:
            result = await ingest.import_ndjson(
                services.store,
                ingest.split_lines(request.stream(), settings.max_line_bytes),
                chunk_size=settings.import_chunk,
                submitter=submitter_of(request),
                admin=sent_by_admin(request),
                max_errors=settings.import_max_errors,
                idempotency_key=key,
            )
            return Response(result, status_code=201 if result.accepted else 200)
        receipts = await ingest.append_body(
            services.committer,
            await read_limited(request, settings.max_body_bytes),
            max_batch=settings.max_batch,
            idempotency_key=key,
            submitter=submitter_of(request),
            admin=sent_by_admin(request),
        )
        return appended(receipts, location=True)

    @get(
        "/",
        opt=REPLICA,
        operation_id="replayEvents",
        summary="Replay the log",
        description=(
            "Events in position order after `after` (default 0, the log's start), with "
            "their positions, recorded_at and hashes, one page of `limit` (default 100). "
            "Paginated with `cursor`: pass `next_cursor` (or follow `next`, or the "
            '`Link: <...>; rel="next"` header) for the following page; both are null on '
            "the last page (the log's end when it was read; a follower resumes with "
            "`after` set to the last position it holds). Filters, all of which must hold: "
            "`place`, `type`, `source`, `side` (the event's side or opponent), `actor` "
            "(case folded), `country` (a place and every place inside it, by the "
            "registry's parents), `bbox` (places located in it), `valid_from`/`valid_to` "
            "(the event's valid interval overlaps the range), `recorded_from`/"
            "`recorded_to` (when it was recorded); `filters` names those applied. With "
            "`Accept: application/x-ndjson`, the whole selection (or `limit` events) up "
            "to the head when the read began is streamed, one stored event per line. Each "
            "event carries `read_as`: how the registries as known at that head read it "
            "(canonical side and display name, the source's registered grade), beside the "
            "event as stated."
        ),
        responses={422: problem_spec("A query parameter is invalid.")},
    )
    async def replay(
        self,
        request: AnyRequest,
        services: ServicesDep,
        after: After = 0,
        cursor: PositionCursor = None,
        limit: Annotated[
            int | None, QueryParameter(ge=1, description="Most events to return (default 100).")
        ] = None,
        place: PlaceFilter = None,
        type_: TypeFilter = None,
        source: SourceFilter = None,
        side: EventSideFilter = None,
        actor: ActorFilter = None,
        country: CountryFilter = None,
        bbox: BBox = None,
        valid_from: ValidFrom = None,
        valid_to: ValidTo = None,
        recorded_from: RecordedFrom = None,
        recorded_to: RecordedTo = None,
    ) -> Response[EventPage] | Stream:
        """A page of the log, or all of it as NDJSON."""
        where, applied = _filter(
            place,
            type_,
            source,
            side=side,
            actor=actor,
            country=country,
            bbox=bbox,
            valid_from=valid_from,
            valid_to=valid_to,
            recorded_from=recorded_from,
            recorded_to=recorded_to,
        )
        start = params.position_cursor(cursor)
        if start is None:
            start = after
        max_page = services.settings.max_page
        if _wants_ndjson(request):
            return Stream(_ndjson(services, start, where, limit), media_type=NDJSON)
        params.page_limit(limit, max_page)
        size = limit or 100
        events = await services.log.page(start, size + 1, where)
        following = str(events[size - 1].position) if len(events) > size else None
        link = pages.next_url(request, following)
        shown = await reading.stored_read(services.log, events[:size])
        return pages.page(
            EventPage(events=shown, next_cursor=following, next=link, filters=applied),
            link,
        )

    @get(
        "/stream",
        operation_id="followEvents",
        summary="Follow the log live",
        description=(
            "Catches up from `after` (or the `Last-Event-ID` header, which wins), then stays "
            "open and delivers each event as its commit lands, in position order, with a "
            "heartbeat after `FRONTLINE_STREAM_HEARTBEAT` seconds (10) of silence. "
            "Server-Sent Events by default: each message is `id: <position>`, "
            "`event: event`, `data: <stored event JSON>`; heartbeats are `: heartbeat` "
            "comments. With `Accept: application/x-ndjson`, one stored event per line and "
            "an empty line as heartbeat. A client that does not take a chunk within "
            "`FRONTLINE_STREAM_STALL` seconds (30) is disconnected; it resumes from the last "
            "id it received, with no gap and no duplicate. Filters `place`, `type` and "
            "`source` as on `GET /v1/events`. "
            "A key may hold `FRONTLINE_STREAMS_PER_KEY` streams (16) at once, and clients "
            "without a key `FRONTLINE_ANONYMOUS_STREAMS` (100) together, per process."
        ),
        responses={
            422: problem_spec("A query parameter or Last-Event-ID is invalid."),
            429: problem_spec("This key holds as many live streams as a key may."),
            503: problem_spec("As many streams without a key are open as the server serves."),
        },
    )
    async def live(
        self,
        request: AnyRequest,
        services: ServicesDep,
        after: After = 0,
        place: PlaceFilter = None,
        type_: TypeFilter = None,
        source: SourceFilter = None,
        last_event_id: LastEventId = None,
    ) -> Stream:
        """The live stream (SSE or NDJSON)."""
        where, _ = _filter(place, type_, source)
        if last_event_id is not None:
            after = params.position(last_event_id.strip(), "last-event-id")
        ndjson = _wants_ndjson(request)
        settings = services.settings
        principal = getattr(request.state, "principal", None)
        # 429 past FRONTLINE_STREAMS_PER_KEY, 503 past FRONTLINE_ANONYMOUS_STREAMS.
        subscription = services.live.subscribe(None if principal is None else principal.name)
        chunks = follow(
            services.live, subscription, after, where, heartbeat=settings.stream_heartbeat
        )
        return LiveStream(
            _live(chunks, ndjson=ndjson),
            stall=settings.stream_stall,
            on_close=subscription.close,
            media_type=NDJSON if ndjson else SSE,
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @get(
        "/{event_id:str}",
        opt=REPLICA,
        operation_id="getEvent",
        summary="One event",
        description=(
            "The event as stored, with the events that link to it, and (`read_as`) how the "
            "registries as known at the log's head read it: canonical side and display "
            "name, the source's registered grade. The stored `event` is as it was sent."
        ),
        responses={
            404: problem_spec("No event has this id."),
            422: problem_spec("The id is not a UUID."),
        },
    )
    async def one(
        self,
        request: AnyRequest,
        event_id: EventId,
        services: ServicesDep,
    ) -> EventDetail:
        """One stored event and the events that link to it (and, for the audit and admin
        roles, the name of the key that submitted it)."""
        try:
            wanted = uuid.UUID(event_id)
        except ValueError:
            raise invalid_parameter("event_id", params.UUID_TEXT, event_id) from None
        found = await services.log.get(wanted)
        if found is None:
            raise NotFound(f"no event has id {event_id}", field="event_id")
        event, linked_from, submitter = found
        (event,) = await reading.stored_read(services.log, [event])
        principal = getattr(request.state, "principal", None)
        if principal is not None and allows(principal.role, "audit"):
            return EventDetail(event=event, linked_from=linked_from, submitter=submitter)
        return EventDetail(event=event, linked_from=linked_from)


async def _live(
    chunks: AsyncGenerator[list[LiveEvent] | None, None], *, ndjson: bool
) -> AsyncIterator[bytes]:
    """Format the followed batches (each event's JSON encoded once, for every stream) as
    SSE messages or NDJSON lines."""
    try:
        async for batch in chunks:
            if batch is None:
                yield b"\n" if ndjson else b": heartbeat\n\n"
            elif ndjson:
                yield b"".join(event.json + b"\n" for event in batch)
            else:
                yield b"".join(
                    b"id: %d\nevent: event\ndata: %s\n\n" % (event.position, event.json)
                    for event in batch
                )
    finally:
        await chunks.aclose()


class LiveStream(Stream):
    """A stream whose client must take each chunk within ``stall`` seconds.

    The server's sends wait while the client's socket is full (the back-pressure that bounds
    memory to about one chunk); a client that takes no chunk for ``stall`` seconds has its
    connection closed, and resumes after the last id it got.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        stall: float,
        on_close: Callable[[], None],
        **kw: Any,
    ) -> None:
        super().__init__(content, **kw)
        self.stall = stall
        self.on_close = on_close

    def to_asgi_response(self, *args: Any, **kw: Any) -> ASGIResponse:
        inner = super().to_asgi_response(*args, **kw)
        return cast("ASGIResponse", _StallGuard(inner, self.stall, self.on_close))


class _StallGuard:
    """Wraps an ASGI response: each send must complete within ``stall`` seconds;
    ``on_close`` runs when the response ends, however it ends (even if it never started
    reading its content)."""

    def __init__(self, inner: ASGIResponse, stall: float, on_close: Callable[[], None]) -> None:
        self.inner = inner
        self.stall = stall
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def guarded(message: Message) -> None:
            try:
                async with asyncio.timeout(self.stall):  # no task per send, unlike wait_for
                    await send(message)
            except TimeoutError:
                raise _Stalled from None

        try:
            await self.inner(scope, receive, guarded)
        except* _Stalled:
            # The server then closes the connection (the response is left incomplete).
            log.info("live_stream_closed_slow_client", stall_seconds=self.stall)
        finally:
            self.on_close()


class _Stalled(Exception):
    """The client took no chunk within the stall limit."""


async def _ndjson(
    services: ServicesDep, after: int, where: EventFilter, limit: int | None
) -> AsyncIterator[bytes]:
    lines: list[bytes] = []
    async for event in reading.stored_stream(services.log, after, where, limit):
        lines.append(_encode(event))
        if len(lines) >= 500:
            yield b"\n".join(lines) + b"\n"
            lines.clear()
    if lines:
        yield b"\n".join(lines) + b"\n"


__all__ = ["EventsController", "StoredEvent"]
