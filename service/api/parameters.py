"""Query, path and header parameters shared by the routes, with their documented shapes.

Each carries its pattern or bounds (service.domain.params), so the OpenAPI document states
exactly what the service takes, and Litestar refuses anything else with a 422 problem naming
the parameter (service.api.problems.http_error) before a handler runs. A value the document
allows is then one the parsers accept: schemathesis's positive and negative checks hold
both directions (tests/api/test_openapi_document.py).
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import HeaderParameter, PathParameter, QueryParameter

from contracts.events import EVENT_TYPES
from service.domain import params
from service.domain.params import MAX_POSITION

MAX_TEXT: Final = 2000

ValidAt = Annotated[
    str | None,
    QueryParameter(
        description="Valid time: a date (its first instant, UTC) or a datetime with offset; "
        "default now.",
        pattern=params.OPTIONAL_INSTANT_PATTERN,
        max_length=40,
    ),
]
KnownAt = Annotated[
    str | None,
    QueryParameter(
        description="As known at: a timestamp (the last commit recorded at or before it) or "
        "`position:N` (the last commit ending at or before N); default the latest.",
        pattern=params.KNOWN_AT_PATTERN,
        max_length=40,
    ),
]
After = Annotated[
    int,
    QueryParameter(ge=0, le=MAX_POSITION, description="Last position already seen."),
]
PlaceFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events about this place.",
        pattern=params.SLUG_PATTERN,
        max_length=128,
    ),
]
TypeFilter = Annotated[
    str | None,
    QueryParameter(
        name="type",
        description="Only events of this type.",
        pattern=params.words_pattern(sorted(EVENT_TYPES)),
    ),
]
SourceFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events by this source (name).",
        pattern=params.TEXT_PATTERN,
        max_length=MAX_TEXT,
    ),
]
SideFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only places this side controls.",
        pattern=params.SLUG_PATTERN,
        max_length=128,
    ),
]
StatusFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only this status: controlled, encircled, contested, unknown.",
        pattern=params.words_pattern(params.STATUSES),
    ),
]
StateFormat = Annotated[
    str | None,
    QueryParameter(
        name="format",
        description="`json`, `geojson` (a FeatureCollection) or `csv` (the whole front).",
        pattern=params.words_pattern(params.FORMATS),
    ),
]
BBox = Annotated[
    str | None,
    QueryParameter(
        description="west,south,east,north in degrees (at most 12 decimals), with "
        "west <= east and south <= north.",
        pattern=params.BBOX_PATTERN,
        max_length=120,
    ),
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page (empty: the first page).",
        pattern=params.CURSOR_PATTERN,
        max_length=128,
    ),
]
ChangesCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page (`place@instant`; empty: the first page).",
        pattern=params.CHANGES_CURSOR_PATTERN,
        max_length=200,
    ),
]
PlaceId = Annotated[
    str,
    PathParameter(description="The place's id.", pattern=params.SLUG_PATTERN, max_length=128),
]
EventId = Annotated[
    str,
    PathParameter(description="The event's id (a UUID).", pattern=params.UUID_PATTERN),
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="last-event-id",
        description="The last id received, to resume after it (wins over `after`).",
        pattern=r"^[0-9]{1,18}$(?!\n)",
    ),
]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="idempotency-key",
        description=(
            "A key naming this request (IETF draft-ietf-httpapi-idempotency-key-header), "
            'as a Structured Field String (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`) or bare. '
            "Each event without an `id` gets the id `contracts.idempotency.keyed_event_id` "
            "derives from the key and the event's index (0 for one event, its index in "
            "`events` for a batch, its line number minus one for NDJSON): a retry with the "
            "same key gets the original receipts; other content under the same key is a 422."
        ),
        pattern=params.IDEMPOTENCY_KEY_PATTERN,
    ),
]
