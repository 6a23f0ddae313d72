"""Query, path and header parameters: their documented shapes, their parsers, and their
declarations for the routes.

Each declaration carries its pattern or bounds, so the OpenAPI document states exactly what
the service takes, and Litestar refuses anything else with a 422 problem naming the
parameter (service.api.problems.http_error) before a handler runs. Each pattern is exactly
what its parser below accepts: a value the document allows is then one the parsers accept,
and schemathesis's positive and negative checks hold both directions
(tests/api/test_openapi_document.py). The parsers of values (``known_at``, ``valid_time``,
``bbox``, ``change_cursor``, ``position``) live in ``service.query`` beside the types they
build, so the CLI parses its options with the same code; they are named here for the routes.
"""

from __future__ import annotations

import re
import types
from datetime import datetime
from typing import Annotated, Any, Final, Union, get_args, get_origin

from litestar.params import HeaderParameter, KwargDefinition, PathParameter, QueryParameter
from litestar.typing import FieldDefinition

from contracts.events import LOG_TYPES
from contracts.idempotency import MAX_KEY_LENGTH
from service.domain.time import INSTANT
from service.domain.time import INSTANT_PATTERN as INSTANT_PATTERN
from service.query import (
    BBOX_TEXT,
    CHANGES_CURSOR_TEXT,
    INSTANT_TEXT,
    KNOWN_AT_TEXT,
    MAX_POSITION,
)
from service.query import bbox as bbox
from service.query import change_cursor as change_cursor
from service.query import invalid_parameter as invalid_parameter
from service.query import known_at as known_at
from service.query import position as position
from service.query import valid_time as valid_time

STATUSES: Final = ("controlled", "encircled", "contested", "unknown")
FORMATS: Final = ("json", "geojson", "csv")

# The documented shapes of query parameters (the OpenAPI document states them and Litestar
# enforces them before a handler runs), each exactly what the parsers below accept, so that
# a value the document allows is never refused and a value it refuses is never taken.
# Patterns end with `$(?!\n)`, as in contracts/events.py (Python's `$` also matches before a
# final newline).
OPTIONAL_INSTANT_PATTERN: Final = f"^(?:{INSTANT})?$(?!\\n)"
"""An instant, or empty (the default)."""
KNOWN_AT_PATTERN: Final = f"^(?:position:[0-9]{{1,30}}|{INSTANT})?$(?!\\n)"
"""``position:N`` or an instant, or empty (the latest)."""
SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]*$(?!\n)"
"""A place or side id (contracts.events.Slug)."""
CURSOR_PATTERN: Final = r"^(?:[a-z0-9][a-z0-9_-]*)?$(?!\n)"
"""A page cursor of a list in place id order, or empty (the first page)."""
CHANGES_CURSOR_PATTERN: Final = f"^(?:[a-z0-9][a-z0-9_-]*@{INSTANT})?$(?!\\n)"
"""A page cursor of the front's changes: ``place@instant``, the last change of the previous
page (the instant as Frontline writes it, in UTC), or empty (the first page)."""
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$(?!\n)"
"""One line of text without control characters (contracts.events.Text)."""
UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$(?!\n)"
)
_LON: Final = r"-?(?:180(?:\.0{1,12})?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]{1,12})?)"
_LAT: Final = r"-?(?:90(?:\.0{1,12})?|[1-8]?[0-9](?:\.[0-9]{1,12})?)"
BBOX_PATTERN: Final = f"^(?:{_LON},{_LAT},{_LON},{_LAT})?$(?!\\n)"
"""west,south,east,north in degrees, each in range, at most 12 decimals; or empty."""


SLUG_TEXT: Final = "an id of lower-case letters, digits, '-' and '_' (sy-maskanah)"
TEXT_TEXT: Final = "one line of text without control characters"
UUID_TEXT: Final = "a UUID (5b0c2c1e-6f0a-4a53-9d7e-6b7a3c1f2a10)"

EXPECTED: Final[dict[str, str]] = {
    INSTANT_PATTERN: INSTANT_TEXT,
    OPTIONAL_INSTANT_PATTERN: INSTANT_TEXT,
    KNOWN_AT_PATTERN: KNOWN_AT_TEXT,
    SLUG_PATTERN: SLUG_TEXT,
    CURSOR_PATTERN: "the next_cursor of the previous page (a place id), or empty",
    CHANGES_CURSOR_PATTERN: CHANGES_CURSOR_TEXT,
    TEXT_PATTERN: TEXT_TEXT,
    UUID_PATTERN: UUID_TEXT,
    BBOX_PATTERN: BBOX_TEXT,
}
"""Each parameter pattern in words: a refusal says what a parameter takes this way, never as
the pattern (tests/unit/test_params.py checks that every pattern a route declares is here;
:func:`words_pattern` adds its own)."""


def words_pattern(words: tuple[str, ...] | list[str]) -> str:
    """A pattern for exactly one of these words (and its words in :data:`EXPECTED`)."""
    pattern = "^(?:" + "|".join(re.escape(w) for w in words) + ")$(?!\\n)"
    EXPECTED.setdefault(pattern, "one of " + ", ".join(words))
    return pattern


def one_of(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """A parameter that takes one of a few words (or is absent)."""
    if value is None or value in allowed:
        return value
    raise invalid_parameter(field, "one of " + ", ".join(allowed), value)


def position_cursor(value: str | None) -> int | None:
    """The position a ``cursor`` of a list in position order names (None: absent or empty)."""
    if value is None or value == "":
        return None
    return position(value, "cursor")


def time_range(
    start: str | None, end: str | None, start_name: str, end_name: str
) -> tuple[datetime | None, datetime | None]:
    """A range of valid or recorded time: either end may be open; the end not before the
    start (a 422 naming ``end_name``)."""
    first = valid_time(start, start_name) if start else None
    last = valid_time(end, end_name) if end else None
    if first is not None and last is not None and last < first:
        raise invalid_parameter(end_name, f"an instant not before {start_name} ({start})", end)
    return first, last


def required(value: str | None, field: str) -> str:
    """A parameter that must be given."""
    if value is None or value == "":
        raise invalid_parameter(field, "a value (it is required)", value)
    return value


def page_limit(limit: int | None, max_page: int) -> None:
    """``limit`` within ``FRONTLINE_MAX_PAGE`` (its lower bound is declared with it)."""
    if limit is not None and limit > max_page:
        raise invalid_parameter("limit", f"a whole number from 1 to {max_page}", str(limit))


def _types(annotation: Any) -> set[Any]:
    """The types an annotation allows (``int | None`` is int and NoneType)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return {t for arg in get_args(annotation) for t in _types(arg)}
    if get_origin(annotation) is Annotated:
        return _types(get_args(annotation)[0])
    return {annotation}


def expected(definition: FieldDefinition, given: str | None = None) -> str:
    """What a declared parameter takes, in words (for the detail of its refusal of
    ``given``: its length is named when that is what is wrong)."""
    kwarg = definition.kwarg_definition
    bounds = kwarg if isinstance(kwarg, KwargDefinition) else None
    allowed = _types(definition.annotation) - {type(None)}
    if bounds is not None and bounds.pattern is not None:
        words = EXPECTED.get(bounds.pattern, "a value in the format the API document states")
        if bounds.max_length is not None and given is not None and len(given) > bounds.max_length:
            words += f", at most {bounds.max_length} characters"
        return words
    if allowed == {bool}:
        return "true or false"
    if allowed == {int}:
        low = None if bounds is None else bounds.ge
        high = None if bounds is None else bounds.le
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        if low is not None:
            return f"a whole number of at least {low}"
        return "a whole number"
    return "text"


_SF_CHAR: Final = r"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\\"])"
IDEMPOTENCY_KEY_PATTERN: Final = (
    f'^(?:"{_SF_CHAR}{{1,{MAX_KEY_LENGTH}}}"'
    f"|[\\x21\\x23-\\x7e][\\x20-\\x7e]{{0,{MAX_KEY_LENGTH - 1}}})$(?!\\n)"
)
"""An ``Idempotency-Key`` header: a Structured Field String (``"..."``, with ``\\"`` and
``\\\\`` escapes; the draft's form) or, as many clients send it, the bare key; either way 1
to 255 printable ASCII characters."""
_SF_ESCAPE: Final = re.compile(r"\\(.)")
IDEMPOTENCY_KEY_TEXT: Final = (
    '1 to 255 printable ASCII characters, as a quoted Structured Field String ("8e03978e-'
    '40d5-43e8-bc93-6894a57f9324") or bare'
)
LAST_EVENT_ID_PATTERN: Final = r"^[0-9]{1,18}$(?!\n)"
"""A ``Last-Event-ID``: the position of the last event received."""
HASH_PATTERN: Final = r"^[0-9a-fA-F]{64}$(?!\n)"
"""A chain hash: SHA-256 as 64 hexadecimal digits."""
EXPECTED.update(
    {
        IDEMPOTENCY_KEY_PATTERN: IDEMPOTENCY_KEY_TEXT,
        LAST_EVENT_ID_PATTERN: "the position of the last event received (up to 18 digits)",
        HASH_PATTERN: "a chain hash: 64 hexadecimal digits",
    }
)


def idempotency_key(value: str | None) -> str | None:
    """The key an ``Idempotency-Key`` header holds (unquoted, unescaped), or None."""
    if value is None:
        return None
    if not re.search(IDEMPOTENCY_KEY_PATTERN, value):
        raise invalid_parameter("idempotency-key", IDEMPOTENCY_KEY_TEXT, value)
    return _SF_ESCAPE.sub(r"\1", value[1:-1]) if value.startswith('"') else value


MAX_TEXT: Final = 2000

ValidAt = Annotated[
    str | None,
    QueryParameter(
        description="Valid time: a date (its first instant, UTC) or a datetime with offset; "
        "default now.",
        pattern=OPTIONAL_INSTANT_PATTERN,
        max_length=40,
    ),
]
KnownAt = Annotated[
    str | None,
    QueryParameter(
        description="As known at: a timestamp (the last commit recorded at or before it) or "
        "`position:N` (the last commit ending at or before N); default the latest.",
        pattern=KNOWN_AT_PATTERN,
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
        pattern=SLUG_PATTERN,
        max_length=128,
    ),
]
TypeFilter = Annotated[
    str | None,
    QueryParameter(
        name="type",
        description="Only events of this type.",
        pattern=words_pattern(sorted(LOG_TYPES)),
    ),
]
SourceFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events by this source (name).",
        pattern=TEXT_PATTERN,
        max_length=MAX_TEXT,
    ),
]
EventSideFilter = Annotated[
    str | None,
    QueryParameter(
        name="side",
        description="Only events whose `side` or `opponent` is this side.",
        pattern=SLUG_PATTERN,
        max_length=128,
    ),
]
ActorFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only events whose `actor` is this text (case folded: `tiger forces` "
        "finds `Tiger Forces`).",
        pattern=TEXT_PATTERN,
        max_length=MAX_TEXT,
    ),
]
CountryFilter = Annotated[
    str | None,
    QueryParameter(
        description="A place id: only events about it or about a place inside it (whose "
        "`parent`, or its parent's, and so on, is this place), as the registry records "
        "parents.",
        pattern=SLUG_PATTERN,
        max_length=128,
    ),
]


def instant_filter(name: str, description: str) -> object:
    """An optional instant query parameter of the events' filters."""
    return QueryParameter(
        name=name, description=description, pattern=OPTIONAL_INSTANT_PATTERN, max_length=40
    )


ValidFrom = Annotated[
    str | None,
    instant_filter(
        "valid_from",
        "Only events whose valid interval ends after this instant (a date: its first "
        "instant, UTC; or a datetime with offset).",
    ),
]
ValidTo = Annotated[
    str | None,
    instant_filter(
        "valid_to",
        "Only events whose valid interval starts at or before this instant; not before "
        "`valid_from`.",
    ),
]
RecordedFrom = Annotated[
    str | None,
    instant_filter("recorded_from", "Only events recorded at or after this instant."),
]
RecordedTo = Annotated[
    str | None,
    instant_filter(
        "recorded_to", "Only events recorded at or before this instant; not before `recorded_from`."
    ),
]
SideFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only places this side controls (an alias of a registered side names it).",
        pattern=SLUG_PATTERN,
        max_length=128,
    ),
]
StatusFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only this status: controlled, encircled, contested, unknown.",
        pattern=words_pattern(STATUSES),
    ),
]
StateFormat = Annotated[
    str | None,
    QueryParameter(
        name="format",
        description="`json`, `geojson` (a FeatureCollection) or `csv` (the whole front).",
        pattern=words_pattern(FORMATS),
    ),
]
BBox = Annotated[
    str | None,
    QueryParameter(
        description="west,south,east,north in degrees (at most 12 decimals), with "
        "west <= east and south <= north.",
        pattern=BBOX_PATTERN,
        max_length=120,
    ),
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page (empty: the first page).",
        pattern=CURSOR_PATTERN,
        max_length=128,
    ),
]
POSITION_CURSOR_PATTERN: Final = r"^(?:[0-9]{1,19})?$(?!\n)"
"""A page cursor of a list in position order (the log, a place's events, a place's history),
or empty (the first page)."""
EXPECTED[POSITION_CURSOR_PATTERN] = "the next_cursor of the previous page (a position), or empty"
UNMAPPED_CURSOR_PATTERN: Final = r"^(?:[0-9]{1,19}:[a-z0-9][a-z0-9_-]*)?$(?!\n)"
"""A page cursor of the unmapped sides (most used first): ``events:side``, the last of the
previous page, or empty (the first page)."""
EXPECTED[UNMAPPED_CURSOR_PATTERN] = (
    "the next_cursor of the previous page (events:side, such as 12:syrian-arab-army), or empty"
)
UnmappedCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page (`events:side`; empty: the first page).",
        pattern=UNMAPPED_CURSOR_PATTERN,
        max_length=150,
    ),
]


def unmapped_cursor(value: str | None) -> tuple[int, str] | None:
    """The (events, side) a ``cursor`` of the unmapped sides names (None: absent or empty);
    the route's pattern has checked its form."""
    if value is None or value == "":
        return None
    events, _, side = value.partition(":")
    if not events.isdigit() or not side:
        raise invalid_parameter("cursor", EXPECTED[UNMAPPED_CURSOR_PATTERN], value)
    return int(events), side


PositionCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page, as given (empty: the first page).",
        pattern=POSITION_CURSOR_PATTERN,
        max_length=19,
    ),
]
ChangesCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page (`place@instant`; empty: the first page).",
        pattern=CHANGES_CURSOR_PATTERN,
        max_length=200,
    ),
]
PlaceId = Annotated[
    str,
    PathParameter(description="The place's id.", pattern=SLUG_PATTERN, max_length=128),
]
SideId = Annotated[
    str,
    PathParameter(
        description="A side's id, or one of its aliases.", pattern=SLUG_PATTERN, max_length=128
    ),
]
SourceName = Annotated[
    str,
    PathParameter(
        description="A source's name or one of its aliases (case and spacing aside).",
        pattern=r"^[^\x00-\x1f\x7f]+$(?!\n)",
        min_length=1,
        max_length=2000,
    ),
]
EventId = Annotated[
    str,
    PathParameter(description="The event's id (a UUID).", pattern=UUID_PATTERN),
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="last-event-id",
        description="The last id received, to resume after it (wins over `after`).",
        pattern=LAST_EVENT_ID_PATTERN,
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
        pattern=IDEMPOTENCY_KEY_PATTERN,
    ),
]
