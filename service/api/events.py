"""/v1/events: append (one, a batch, or an NDJSON import) and replay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Final

import msgspec
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from contracts.events import EVENT_TYPES, Event
from contracts.responses import (
    AppendResult,
    EventDetail,
    EventPage,
    ImportResult,
    Problem,
    StoredEvent,
)
from service.api.deps import AnyRequest, ServicesDep
from service.api.openapi import IngestOperation
from service.domain.append import AppendRequest
from service.domain.errors import BodyTooLarge, InvalidEvent, InvalidParameter, NotFound
from service.domain.records import PreparedEvent, prepare_event, source_key
from service.domain.validation import decode_events
from service.store.appender import import_ndjson, split_lines
from service.store.events import EventFilter

NDJSON: Final = "application/x-ndjson"
_encode: Final = msgspec.json.Encoder().encode


def problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


async def _read_limited(request: AnyRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _prepare(events: list[Event], batch: bool) -> tuple[PreparedEvent, ...]:
    prepared = []
    for index, event in enumerate(events):
        try:
            prepared.append(prepare_event(event))
        except InvalidEvent as error:
            if batch:
                where = f"events[{index}].{error.field}" if error.field else f"events[{index}]"
                raise InvalidEvent(error.detail, field=where) from None
            raise
    return tuple(prepared)


def _wants_ndjson(request: AnyRequest) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _filter(place: str | None, type_: str | None, source: str | None) -> EventFilter:
    if type_ is not None and type_ not in EVENT_TYPES:
        raise InvalidParameter(
            f"unknown event type {type_!r}; one of: {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    return EventFilter(
        place=place, type=type_, source=source_key(source) if source is not None else None
    )


class EventsController(Controller):
    """The log: append and replay."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @post(
        "/",
        summary="Append events",
        description=(
            "One event or an atomic batch (JSON), answered with receipts: 201 when anything "
            "new was stored, 200 when every event was already stored with the same content "
            "(an idempotent retry). With `Content-Type: application/x-ndjson`, a bulk import "
            "of any size, committed in chunks, answered with counts and the rejected lines."
        ),
        operation_class=IngestOperation,
        status_code=201,
        responses={
            200: ResponseSpec(AppendResult, description="Every event was already stored."),
            400: problem_spec("The body is not JSON."),
            409: problem_spec("An `expect` precondition does not hold; nothing was written."),
            413: problem_spec("The body is over the configured limit."),
            422: problem_spec("An event breaks the contract; `field` names it. Nothing written."),
            500: problem_spec("The database refused the write for a reason no check foresaw."),
            503: problem_spec("The database is unavailable."),
        },
    )
    async def append(
        self, request: AnyRequest, services: ServicesDep
    ) -> Response[AppendResult | ImportResult]:
        """Append one event, a batch, or an NDJSON stream."""
        settings = services.settings
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == NDJSON:
            result = await import_ndjson(
                services.store,
                split_lines(request.stream()),
                chunk_size=settings.import_chunk,
            )
            return Response(result, status_code=200)
        body = await _read_limited(request, settings.max_body_bytes)
        events, expect, is_batch = decode_events(body, settings.max_batch)
        prepared = _prepare(events, batch=is_batch)
        receipts = await services.committer.append(AppendRequest(events=prepared, expect=expect))
        created = any(not r.duplicate for r in receipts)
        return Response(AppendResult(receipts=receipts), status_code=201 if created else 200)

    @get(
        "/",
        summary="Replay the log",
        description=(
            "Events in position order after `after`, with their positions, recorded_at and "
            "hashes. `next` is the `after` of the following call. With "
            "`Accept: application/x-ndjson`, the whole selection (or `limit` events) is "
            "streamed, one stored event per line."
        ),
        responses={422: problem_spec("A query parameter is invalid.")},
    )
    async def replay(
        self,
        request: AnyRequest,
        services: ServicesDep,
        after: Annotated[int, QueryParameter(ge=0, description="Last position already seen.")] = 0,
        limit: Annotated[
            int | None, QueryParameter(ge=1, description="Most events to return (default 100).")
        ] = None,
        place: Annotated[
            str | None, QueryParameter(description="Only events about this place.")
        ] = None,
        type_: Annotated[
            str | None, QueryParameter(name="type", description="Only events of this type.")
        ] = None,
        source: Annotated[
            str | None, QueryParameter(description="Only events by this source (name).")
        ] = None,
    ) -> Response[EventPage] | Stream:
        """A page of the log, or all of it as NDJSON."""
        where = _filter(place, type_, source)
        max_page = services.settings.max_page
        if _wants_ndjson(request):
            return Stream(_ndjson(services, after, where, limit), media_type=NDJSON)
        if limit is not None and limit > max_page:
            raise InvalidParameter(f"limit is at most {max_page}", field="limit")
        events = await services.store.page(after, limit or 100, where)
        return Response(EventPage(events=events, next=events[-1].position if events else after))

    @get(
        "/{event_id:str}",
        summary="One event",
        description="The event as stored, with the events that link to it.",
        responses={
            404: problem_spec("No event has this id."),
            422: problem_spec("The id is not a UUID."),
        },
    )
    async def one(
        self,
        event_id: Annotated[str, PathParameter(description="The event's id (a UUID).")],
        services: ServicesDep,
    ) -> EventDetail:
        """One stored event and the events that link to it."""
        try:
            wanted = uuid.UUID(event_id)
        except ValueError:
            raise InvalidParameter(f"{event_id!r} is not a UUID", field="event_id") from None
        found = await services.store.get(wanted)
        if found is None:
            raise NotFound(f"no event has id {event_id}", field="event_id")
        event, linked_from = found
        return EventDetail(event=event, linked_from=linked_from)


async def _ndjson(
    services: ServicesDep, after: int, where: EventFilter, limit: int | None
) -> AsyncIterator[bytes]:
    lines: list[bytes] = []
    async for event in services.store.stream(after, where, limit):
        lines.append(_encode(event))
        if len(lines) >= 500:
            yield b"\n".join(lines) + b"\n"
            lines.clear()
    if lines:
        yield b"\n".join(lines) + b"\n"


__all__ = ["EventsController", "StoredEvent"]
