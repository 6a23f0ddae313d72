"""Wire contract v1 of an event (DESIGN section 3).

Each event kind is a frozen msgspec Struct tagged by ``type``; the union of them is
:data:`Event`. Input structs forbid unknown fields, so a client that sends a server-owned
field (``position``, ``recorded_at``, ``hash``, ``version``) gets a 422 naming it.

Schema evolution follows msgspec's rules: a new field always gets a default, a field's type
never changes, and ``omit_defaults`` keeps the canonical encoding of an old event unchanged
when a field is added.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

# Patterns end with `$(?!\n)`: msgspec matches with Python's re.search, where a bare `$` also
# matches before a final newline; the lookahead refuses it (and means the same in JSON Schema).
Slug = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]*$(?!\n)",
        min_length=1,
        max_length=128,
        description="Lower-case identifier: letters, digits, '-' and '_'.",
    ),
]
Text = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=2000,
        pattern=r"^[^\x00-\x1f\x7f]+$(?!\n)",
        description="One line of text: no control characters.",
    ),
]
LongText = Annotated[str, Meta(max_length=20000)]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0)]
Count = Annotated[int, Meta(ge=0, le=10_000_000)]

PlaceKind = Literal[
    "town", "village", "hill", "road", "base", "roundabout", "school", "district", "city"
]
LocationPrecision = Literal["exact", "near", "district", "region", "country"]
TimePrecision = Literal["exact", "hour", "day", "week", "month", "year"]
Reliability = Literal["A", "B", "C", "D", "E", "F"]
Credibility = Annotated[int, Meta(ge=1, le=6)]
Hedge = Literal["confirmed", "reported", "claimed", "alleged", "unconfirmed"]
Relation = Literal["confirms", "denies", "corrects", "retracts", "supersedes"]

#: Fields the server owns; a client that sends one gets a 422 naming it.
SERVER_OWNED_FIELDS: Final = frozenset(
    {"position", "recorded_at", "hash", "prev_hash", "version", "submitter", "payload_digest"}
)


class _Input(
    Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, gc=False
):
    """Base of every input struct: frozen, strict, canonical without defaults.

    ``gc=False``: an event holds strings, numbers and other frozen structs, never a cycle, so
    the garbage collector need not track the millions a bulk import decodes.
    """


class Place(_Input, frozen=True):
    """The place an event is about. The first event naming a place registers it."""

    id: Slug
    name: Text | None = None
    kind: PlaceKind | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    parent: Slug | None = None
    aliases: tuple[Text, ...] = ()
    precision: LocationPrecision | None = None


class Occurred(_Input, frozen=True):
    """Valid time: ``start`` (a date, or a datetime with its offset), optional ``end``."""

    start: Annotated[str, Meta(min_length=4, max_length=40, examples=["2017-06-03"])]
    end: Annotated[str, Meta(min_length=4, max_length=40)] | None = None
    precision: TimePrecision = "day"


class Source(_Input, frozen=True):
    """Who reported the event, graded on the Admiralty scale."""

    name: Text
    reliability: Reliability = "F"
    alignment: Slug = "neutral"
    published_at: Annotated[str, Meta(max_length=40)] | None = None
    attribution: Text | None = None
    url: Annotated[str, Meta(max_length=2000)] | None = None


class Link(_Input, frozen=True):
    """A link to an earlier event."""

    event: uuid.UUID
    relation: Relation


class Casualties(_Input, frozen=True):
    """Casualty figures as one source claimed them; ``killed`` is its best figure."""

    killed: Count | None = None
    wounded: Count | None = None
    low: Count | None = None
    high: Count | None = None
    side: Slug | None = None


class _EventBase(_Input, tag_field="type", kw_only=True, frozen=True):
    """Fields shared by every event kind."""

    id: uuid.UUID | None = None
    place: Place
    side: Slug | None = None
    actor: Text | None = None
    opponent: Slug | None = None
    occurred: Occurred
    source: Source
    credibility: Credibility = 6
    hedge: Hedge = "reported"
    relates_to: tuple[Link, ...] = ()
    casualties: Casualties | None = None
    quote: LongText | None = None
    notes: LongText | None = None


class Capture(_EventBase, tag="capture", kw_only=True, frozen=True):
    """``side`` takes control of the place."""

    side: Slug


class Withdrawal(_EventBase, tag="withdrawal", kw_only=True, frozen=True):
    """``side`` leaves; control passes to ``opponent`` if named, else becomes unknown."""

    side: Slug


class BaseEstablished(_EventBase, tag="base_established", kw_only=True, frozen=True):
    """``side`` controls the place as a base."""

    side: Slug


class BaseEvacuated(_EventBase, tag="base_evacuated", kw_only=True, frozen=True):
    """``side`` leaves the base; control unknown unless ``opponent`` is named."""

    side: Slug


class Control(_EventBase, tag="control", kw_only=True, frozen=True):
    """A statement that ``side`` holds the place at that time, without a change."""

    side: Slug


class Encirclement(_EventBase, tag="encirclement", kw_only=True, frozen=True):
    """The place is encircled or besieged by ``side``; its controller does not change."""

    side: Slug


class SiegeLifted(_EventBase, tag="siege_lifted", kw_only=True, frozen=True):
    """The encirclement ends, by ``side`` breaking through."""

    side: Slug


class CounterAttack(_EventBase, tag="counter_attack", kw_only=True, frozen=True):
    """The place is contested by ``side`` during the event's interval."""

    side: Slug


class Clash(_EventBase, tag="clash", kw_only=True, frozen=True):
    """The place is contested by ``side`` during the event's interval."""

    side: Slug


class Advance(_EventBase, tag="advance", kw_only=True, frozen=True):
    """``side`` advances near the place; no control change."""

    side: Slug


class CasualtiesReport(_EventBase, tag="casualties", kw_only=True, frozen=True):
    """Informational: casualty figures; no control change."""

    casualties: Casualties


class EquipmentLoss(_EventBase, tag="equipment_loss", kw_only=True, frozen=True):
    """Informational: equipment lost; no control change."""


class Strike(_EventBase, tag="strike", kw_only=True, frozen=True):
    """Informational: a strike on the place; no control change."""


class Other(_EventBase, tag="other", kw_only=True, frozen=True):
    """Informational: a reported event no other kind fits, kept with the source's own code
    (e.g. ``PLOVER:PROTEST``); no control change."""

    code: Text


class Statement(_EventBase, tag="statement", kw_only=True, frozen=True):
    """A source's statement about earlier events; acts only through ``relates_to``."""

    relates_to: Annotated[tuple[Link, ...], Meta(min_length=1)]


Event = (
    Capture
    | Withdrawal
    | BaseEstablished
    | BaseEvacuated
    | Control
    | Encirclement
    | SiegeLifted
    | CounterAttack
    | Clash
    | Advance
    | CasualtiesReport
    | EquipmentLoss
    | Strike
    | Other
    | Statement
)
"""Any event of wire contract v1, told apart by its ``type``."""

EVENT_TYPES: Final[dict[str, type[_EventBase]]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (
        Capture, Withdrawal, BaseEstablished, BaseEvacuated, Control, Encirclement,
        SiegeLifted, CounterAttack, Clash, Advance, CasualtiesReport, EquipmentLoss, Strike,
        Other, Statement,
    )
}  # fmt: skip


def event_type(event: Event) -> str:
    """The wire ``type`` of an event."""
    return str(type(event).__struct_config__.tag)


class Expectation(_Input, frozen=True):
    """A precondition on a place stream: its version, ``none`` (no events) or ``any-existing``."""

    place: Slug
    version: Annotated[int, Meta(ge=0)] | Literal["none", "any-existing"]


MAX_BATCH_HARD_LIMIT: Final = 100_000


class Batch(_Input, frozen=True):
    """An atomic batch: all of it is written, or none of it."""

    events: Annotated[list[Event], Meta(min_length=1, max_length=MAX_BATCH_HARD_LIMIT)]
    expect: tuple[Expectation, ...] = ()


# --- Registries (DESIGN section 8) ----------------------------------------------------

SideKind = Literal[
    "state_force", "non_state_armed_group", "coalition", "civilians", "protesters", "other"
]
Colour = Annotated[
    str,
    Meta(
        pattern=r"^#[0-9a-f]{6}$(?!\n)",
        description="A colour as '#rrggbb', lower-case hexadecimal.",
        examples=["#c0392b"],
    ),
]

#: The prefix of a side's registry stream in the log (a slug never holds ':', so no place
#: stream can take it).
SIDE_STREAM: Final = "side:"


class SideRegistered(_Input, tag_field="type", tag="side_registered", kw_only=True, frozen=True):
    """A side of the side registry as an editor states it: the whole entry, each time.

    The first ``side_registered`` of a side registers it; a later one replaces its name,
    kind, colour and aliases from its position on (the log keeps every earlier statement).
    A claim made under an alias counts for ``side`` wherever the registry applies: the
    event's ``side``, ``opponent`` and ``source.alignment`` (DESIGN section 8).
    """

    id: uuid.UUID | None = None
    side: Slug
    name: Text
    kind: SideKind = "other"
    colour: Colour | None = None
    aliases: Annotated[tuple[Slug, ...], Meta(max_length=1000)] = ()
    notes: Text | None = None


#: The prefix of a source's registry stream in the log (``source:`` and the source's key:
#: its name without case or white space).
SOURCE_STREAM: Final = "source:"


class SourceRegistered(
    _Input, tag_field="type", tag="source_registered", kw_only=True, frozen=True
):
    """A source of the source registry as an editor grades it: the whole entry, each time.

    A source is known by its name, case and white space aside (DESIGN 4, rule 5). The first
    ``source_registered`` of a source registers it; a later one re-grades it, from its
    position on. Every claim of the source (under its name or an alias) is then scored with
    this ``reliability`` and ``alignment``, whatever the event states: an event may name a
    registered source without restating its grade. An alias makes two names one source.
    """

    id: uuid.UUID | None = None
    source: Text
    reliability: Reliability = "F"
    alignment: Slug = "neutral"
    aliases: Annotated[tuple[Text, ...], Meta(max_length=1000)] = ()
    url: Annotated[str, Meta(max_length=2000)] | None = None
    notes: Text | None = None


#: The prefix of a place's registry stream in the log (``place:`` and the id of the place
#: merged away): its merges and their retractions.
PLACE_STREAM: Final = "place:"


class PlaceMerged(_Input, tag_field="type", tag="place_merged", kw_only=True, frozen=True):
    """An editor's statement that ``merged`` is the same place as ``place`` (DESIGN 8).

    From its position on, the events about ``merged`` belong to the timeline of ``place``
    (the surviving place), those stated before the merge and after it alike; ``merged`` has
    no timeline of its own while the merge is in force. Answers known before the merge
    still see two places. Its stream is ``place:<merged>``.
    """

    id: uuid.UUID | None = None
    place: Slug
    merged: Slug
    notes: Text | None = None


class PlaceMergeRetracted(
    _Input, tag_field="type", tag="place_merge_retracted", kw_only=True, frozen=True
):
    """An unmerge: the retraction of the ``place_merged`` event ``retracts`` (which merged
    ``merged`` into ``place``), by an editor or an admin. From its position on the two
    places have their own timelines again; the merge stays in the log."""

    id: uuid.UUID | None = None
    retracts: uuid.UUID
    place: Slug
    merged: Slug
    notes: Text | None = None


RegistryEvent = SideRegistered | SourceRegistered | PlaceMerged | PlaceMergeRetracted
"""Any registry event of the log, told apart by its ``type``."""

REGISTRY_TYPES: Final[dict[str, type[_Input]]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (SideRegistered, SourceRegistered, PlaceMerged, PlaceMergeRetracted)
}

#: Every ``type`` the log holds: events about places and registry events.
LOG_TYPES: Final = frozenset(EVENT_TYPES) | frozenset(REGISTRY_TYPES)


class SideRegistration(_Input, kw_only=True, frozen=True):
    """The body of ``POST /v1/sides``: a side's whole entry, and optionally the version of
    its registry stream the editor saw (``none``: the side must not be registered yet)."""

    id: uuid.UUID | None = None
    side: Slug
    name: Text
    kind: SideKind = "other"
    colour: Colour | None = None
    aliases: Annotated[tuple[Slug, ...], Meta(max_length=1000)] = ()
    notes: Text | None = None
    expect: Annotated[int, Meta(ge=0)] | Literal["none", "any-existing"] | None = None


class SourceRegistration(_Input, kw_only=True, frozen=True):
    """The body of ``POST /v1/sources``: a source's whole entry, and optionally the version
    of its registry stream the editor saw (``none``: not registered yet)."""

    id: uuid.UUID | None = None
    source: Text
    reliability: Reliability = "F"
    alignment: Slug = "neutral"
    aliases: Annotated[tuple[Text, ...], Meta(max_length=1000)] = ()
    url: Annotated[str, Meta(max_length=2000)] | None = None
    notes: Text | None = None
    expect: Annotated[int, Meta(ge=0)] | Literal["none", "any-existing"] | None = None


class SourceRegistrations(_Input, frozen=True):
    """A registry file of sources, written as one atomic commit."""

    sources: Annotated[list[SourceRegistration], Meta(min_length=1, max_length=10_000)]


class PlaceMerge(_Input, kw_only=True, frozen=True):
    """The body of ``POST /v1/places/{id}/merges``: the place to merge into ``{id}``, and
    optionally the version of its registry stream (``place:<merged>``) the editor saw."""

    id: uuid.UUID | None = None
    merged: Slug
    notes: Text | None = None
    expect: Annotated[int, Meta(ge=0)] | Literal["none", "any-existing"] | None = None


class PlaceUnmerge(_Input, kw_only=True, frozen=True):
    """The body of ``POST /v1/places/{id}/unmerges``: the place to take out of ``{id}``
    again (the merge in force is retracted); ``retracts`` may name the merge's event id."""

    id: uuid.UUID | None = None
    merged: Slug
    retracts: uuid.UUID | None = None
    notes: Text | None = None
    expect: Annotated[int, Meta(ge=0)] | Literal["none", "any-existing"] | None = None


class SideRegistrations(_Input, frozen=True):
    """A registry file: several sides' entries, written as one atomic commit."""

    sides: Annotated[list[SideRegistration], Meta(min_length=1, max_length=10_000)]


event_decoder: Final = msgspec.json.Decoder(Event)
registry_decoder: Final = msgspec.json.Decoder(RegistryEvent)
side_registration_decoder: Final = msgspec.json.Decoder(SideRegistration)
side_registrations_decoder: Final = msgspec.json.Decoder(SideRegistrations)
source_registration_decoder: Final = msgspec.json.Decoder(SourceRegistration)
source_registrations_decoder: Final = msgspec.json.Decoder(SourceRegistrations)
place_merge_decoder: Final = msgspec.json.Decoder(PlaceMerge)
place_unmerge_decoder: Final = msgspec.json.Decoder(PlaceUnmerge)
batch_decoder: Final = msgspec.json.Decoder(Batch)


class _Peek(Struct):
    """Just enough of a body to tell a batch from a single event."""

    events: msgspec.Raw = msgspec.Raw()
    """Empty unless the body has an ``events`` member (msgspec.Raw cannot be optional)."""


peek_decoder: Final = msgspec.json.Decoder(_Peek)
