"""Builders of wire-contract events for tests: short to call, complete enough to store.

Every builder returns a frozen contract struct with an ``id`` (a fresh UUID unless given).
Defaults: place ``sy-maskanah``, day precision on 2017-06-03, source "South Front" graded
C, neutral, credibility 3, hedge ``reported``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import msgspec

from contracts.events import (
    EVENT_TYPES,
    Casualties,
    Event,
    Link,
    Occurred,
    Place,
    Relation,
    Source,
    TimePrecision,
    event_decoder,
)

DAY = "2017-06-03"
PLACE = "sy-maskanah"
GOV = "syrian-government"
ISIS = "isis"
SDF = "sdf"
US = "us-coalition"


def uid(n: int) -> uuid.UUID:
    """A readable fixed id: ``uid(1)`` is 00000000-0000-0000-0000-000000000001."""
    return uuid.UUID(int=n)


def source(
    name: str = "South Front",
    reliability: str = "C",
    alignment: str = "neutral",
) -> Source:
    """A source struct (a default alignment is left out, as a client would)."""
    fields = {"name": name, "reliability": reliability}
    if alignment != "neutral":
        fields["alignment"] = alignment
    return msgspec.convert(fields, Source)


def link(target: Event | uuid.UUID, relation: Relation) -> Link:
    """A link to an earlier event (or to its id)."""
    event_id = target if isinstance(target, uuid.UUID) else target.id
    assert event_id is not None
    return Link(event=event_id, relation=relation)


def event(
    kind: str,
    side: str | None = None,
    *,
    on: str = DAY,
    until: str | None = None,
    precision: TimePrecision = "day",
    opponent: str | None = None,
    by: Source | None = None,
    credibility: int = 3,
    hedge: str = "reported",
    links: Iterable[Link] = (),
    casualties: Casualties | None = None,
    id: uuid.UUID | int | None = None,
    place: str = PLACE,
    code: str | None = None,
) -> Event:
    """An event of type ``kind``; builders below are shorthands for the common kinds.
    ``code``: the source's own event code, required by ``other``."""
    assert kind in EVENT_TYPES, kind
    event_id = uid(id) if isinstance(id, int) else uuid.uuid4() if id is None else id
    fields: dict[str, Any] = {
        "type": kind,
        "id": str(event_id),
        "place": msgspec.to_builtins(Place(id=place)),
        "occurred": msgspec.to_builtins(Occurred(start=on, end=until, precision=precision)),
        "source": msgspec.to_builtins(by or source()),
        "credibility": credibility,
        "hedge": hedge,
    }
    if side is not None:
        fields["side"] = side
    if opponent is not None:
        fields["opponent"] = opponent
    linked = tuple(links)
    if linked:
        fields["relates_to"] = msgspec.to_builtins(linked)
    if casualties is not None:
        fields["casualties"] = msgspec.to_builtins(casualties)
    if code is not None:
        fields["code"] = code
    # Through the real decoder, so every built event is one the API would accept.
    built: Event = event_decoder.decode(msgspec.json.encode(fields))
    return built


def capture(side: str, **kw: Any) -> Event:
    """``side`` takes the place."""
    return event("capture", side, **kw)


def withdrawal(side: str, **kw: Any) -> Event:
    """``side`` leaves the place (to ``opponent`` if given)."""
    return event("withdrawal", side, **kw)


def control(side: str, **kw: Any) -> Event:
    """A statement that ``side`` holds the place."""
    return event("control", side, **kw)


def base_established(side: str, **kw: Any) -> Event:
    """``side`` sets up a base at the place."""
    return event("base_established", side, **kw)


def base_evacuated(side: str, **kw: Any) -> Event:
    """``side`` leaves its base at the place."""
    return event("base_evacuated", side, **kw)


def encirclement(side: str, **kw: Any) -> Event:
    """``side`` encircles the place."""
    return event("encirclement", side, **kw)


def siege_lifted(side: str, **kw: Any) -> Event:
    """The encirclement ends."""
    return event("siege_lifted", side, **kw)


def clash(side: str, **kw: Any) -> Event:
    """``side`` contests the place."""
    return event("clash", side, **kw)


def counter_attack(side: str, **kw: Any) -> Event:
    """``side`` counter-attacks at the place."""
    return event("counter_attack", side, **kw)


def strike(side: str | None = None, **kw: Any) -> Event:
    """Informational: a strike."""
    return event("strike", side, **kw)


def casualties(killed: int = 21, **kw: Any) -> Event:
    """Informational: casualty figures."""
    return event("casualties", casualties=Casualties(killed=killed), **kw)


def statement(*links: Link, **kw: Any) -> Event:
    """A statement acting only through its links."""
    return event("statement", links=links, **kw)


def retraction(of: Event, *, relation: Relation = "retracts", **kw: Any) -> Event:
    """A statement by ``of``'s own source taking ``of`` out of force."""
    kw.setdefault("on", of.occurred.start)
    return statement(link(of, relation), by=of.source, **kw)


def confirmation(of: Event, by: Source, **kw: Any) -> Event:
    """A statement by ``by`` confirming ``of``."""
    kw.setdefault("on", of.occurred.start)
    return statement(link(of, "confirms"), by=by, **kw)


def denial(of: Event, by: Source, **kw: Any) -> Event:
    """A statement by ``by`` denying ``of``."""
    kw.setdefault("on", of.occurred.start)
    return statement(link(of, "denies"), by=by, **kw)
