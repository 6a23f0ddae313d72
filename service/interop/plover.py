"""PLOVER JSON records (format ``plover``) to Frontline events.

PLOVER (Political Language Ontology for Verifiable Event Records, Open Event Data Alliance)
codes each reported event as an ``event`` category, a ``mode`` (how) and a ``context`` (why),
between ``actor``/``source`` and ``recipient``, with a date and a location. A file is either
one JSON array of records or JSON lines (one record per line, as the specification
recommends); :func:`read` tells them apart by the first character that is not white space
('[' is an array, unless more JSON follows it: then the file is JSON lines whose first record
is a list). In JSON lines a record may also span several lines (pretty-printed); each
record's ``line`` is the line where it starts. In an array ``line`` is the record's 1-based
index.

Fields read (the specification's spellings first, then the ones other producers use):

=================  ==========================================================================
Frontline          PLOVER record
=================  ==========================================================================
id                 ``id`` (required): ``event_id("plover", id, "event")`` and, for the
                   casualties, ``event_id("plover", id, "casualties")``
type               ``event`` (a category or a list of them; the first decides) and ``mode``
                   (the first when a list), by the table below
side, actor        ``actor``, else ``source`` when it is an actor object or a list of them
                   (the specification's name for the acting party); an actor object's name is
                   ``identifier_text``, ``actor_text``, ``name``, ``text``, else
                   ``code`` + ``sector``. ``side`` is its slug, ``actor`` the text as written
opponent           the first ``target`` (PLOVER 0.5's name for the party acted upon), else
                   the first ``recipient``; without either, the second actor (two-sided
                   violence lists both parties as actors)
occurred           ``date`` (YYYY-MM-DD, required), ``enddate``; ``time`` joined to the date
                   when it carries a UTC offset (precision ``exact``), else the day (flagged)
place              ``location``, ``event_loc`` or ``eventLoc``: ``name`` (or ``asciiname``),
                   ``lat``/``latitude``, ``lon``/``lng``/``longitude``; ``admin`` from
                   ``country``/``country_code``/``cc3``, ``admin1``/``admin1_code``,
                   ``admin2``/``admin2_code`` or an ``admin`` string or list
source             ``cite_info``/``citeInfo`` ``publication`` (else ``corpus``), ``url``;
                   else ``publication``, a ``source`` that is a plain string, ``coder``;
                   else "PLOVER". Reliability F (cannot be judged)
quote              ``event_text``/``eventText`` (joined by newlines when a list), else
                   ``text``, else ``source_text``
casualties         ``dead``/``killed`` and ``injured``/``wounded``, top-level or inside
                   ``size``/``size_info``/``sizeInfo``: a separate ``casualties`` event
notes              the record as one JSON object (context and every other field kept)
=================  ==========================================================================

Event categories:

==============================================  ==============================================
PLOVER event / mode                              Frontline event
==============================================  ==============================================
COERCE / seize                                   ``capture`` by the actor (side required)
ASSAULT / firearms, primitive, or no mode        ``clash``: fighting on the ground contests the
                                                 place (side required)
ASSAULT / any other mode (explosives,            ``strike``: an attack on the place that does
heavy-weapons, aerial, drone, suicide-attack,    not by itself contest control (side optional)
destroy, assassinate, abduct, beat, torture,
execute, sexual, ...)
FIGHT (PLOVER 0.5), mode or a context           ``capture`` by the actor (side required)
``seize``, ``occupy``, ``capture``,
``territory`` or ``territorial``
FIGHT, any other mode and context                ``clash`` (side required)
anything else                                    ``other`` with ``code`` =
                                                 "PLOVER:<EVENT>/<mode>" (every category of a
                                                 list joined by '+'; mode empty when absent)
==============================================  ==============================================

A record that cannot be mapped is an error row naming the field: a line that is not JSON, a
record that is not an object or holds an unpaired surrogate escape, no id, no event, no or a
bad date, an enddate before the date, no location name, a latitude or longitude that is not a
number in range, a capture or clash without an actor. A dead/injured figure that is not a whole
number >= 0 (PLOVER allows codes) is flagged and left out of the casualties, kept in notes.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

import msgspec

from service.domain.time import INSTANT_PATTERN
from service.domain.validation import surrogate_path
from service.interop.rows import PlaceRef, SourceRow, event_id, slug
from service.interop.text import LONG_TEXT_MAX, long_text, one_line

FORMAT: Final = "plover"

#: ASSAULT modes that are fighting on the ground, so the place is contested: a ``clash``.
#: Every other ASSAULT mode is a ``strike``.
CLASH_MODES: Final = frozenset({"", "firearms", "primitive"})

#: COERCE modes that take the place: a ``capture``.
CAPTURE_MODES: Final = frozenset({"seize"})

#: FIGHT modes and contexts saying that territory changed hands: the fight is a ``capture``
#: by its actor. Any other FIGHT is a ``clash``.
TERRITORY_WORDS: Final = frozenset({"seize", "occupy", "capture", "territory", "territorial"})

_COUNT_MAX: Final = 10_000_000
_WHITE: Final = " \t\r\n"

# msgspec decodes a well-formed line and encodes the raw record several times faster than
# the json module; json stays the fallback for what msgspec refuses (a pretty-printed record
# spanning lines, NaN, integers over 64 bits) and for the error messages.
_decode: Final = msgspec.json.Decoder().decode
_encode: Final = msgspec.json.Encoder().encode
#: The instants the contract accepts (``occurred.start`` with a time).
_INSTANT: Final = re.compile(INSTANT_PATTERN)
#: Actors repeat across a file: slug each once.
_slug: Final = functools.lru_cache(maxsize=4096)(slug)


class _Unmappable(Exception):
    """The record cannot become events; ``field`` says which of its fields is why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def read(data: bytes) -> Iterator[SourceRow]:
    """The records of a PLOVER file (a JSON array or JSON lines), each mapped to events or to
    an error. Raises ``ValueError`` when the bytes are not UTF-8, the file is empty, or an
    array does not parse as a whole."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from exc
    body = text.lstrip(_WHITE)
    if not body:
        raise ValueError("the file is empty")
    records = _array(text, len(text) - len(body)) if body[0] == "[" else None
    if records is None:
        yield from _lines(text)
    else:
        for index, record in enumerate(records, start=1):
            yield map_record(index, record)


def _array(text: str, start: int) -> list[Any] | None:
    """The records of a file that is one JSON array; None when the array is only the first
    of several JSON lines."""
    try:
        records = _decode(text)
    except (msgspec.DecodeError, RecursionError):
        try:
            records, stop = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {exc.lineno}: not a JSON array: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not a JSON array: {_unparsable(exc)}") from None
        if text[stop:].strip(_WHITE):
            return None
    assert isinstance(records, list)
    return records


def _lines(text: str) -> Iterator[SourceRow]:
    decoder = json.JSONDecoder()
    pos, line, end_of_text = 0, 1, len(text)
    while True:
        # Skip white space between records, counting the lines it holds.
        start = pos
        while pos < end_of_text and text[pos] in _WHITE:
            pos += 1
        line += text.count("\n", start, pos)
        if pos >= end_of_text:
            return
        newline = text.find("\n", pos)
        line_end = end_of_text if newline < 0 else newline
        try:
            record, stop = _decode(text[pos:line_end]), line_end
        except (msgspec.DecodeError, RecursionError):
            try:
                record, stop = decoder.raw_decode(text, pos)
            except (ValueError, RecursionError) as exc:
                error = (
                    f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                    if isinstance(exc, json.JSONDecodeError)
                    else f"not JSON: {_unparsable(exc)}"
                )
                yield SourceRow(line=line, source_id=None, raw=text[pos:line_end], error=error)
                pos = line_end
                continue
        yield map_record(line, record)
        line += text.count("\n", pos, stop)
        pos = stop


def _unparsable(exc: ValueError | RecursionError) -> str:
    """Why json cannot parse what it refuses beyond syntax: nesting or an integer's size."""
    if isinstance(exc, RecursionError):
        return "arrays or objects nested too deeply"
    return "an integer too long to read (over 4300 digits)"


def map_record(line: int, record: Any) -> SourceRow:
    """One PLOVER record (decoded JSON) as a :class:`SourceRow`."""
    try:
        raw = _encode(record).decode()
    except UnicodeEncodeError:
        # JSON may escape half a surrogate pair ("\\ud800"): no UTF-8 text can hold it.
        where = surrogate_path(record)
        source_id = _id(record)
        return SourceRow(
            line=line,
            source_id=source_id if source_id and surrogate_path(source_id) is None else None,
            raw=json.dumps(record),
            error=f"{where or 'the record'} holds an unpaired surrogate escape "
            "(\\ud800-\\udfff): not text",
            fields=(where,) if where else (),
        )
    source_id = _id(record)
    try:
        if not isinstance(record, dict):
            raise _Unmappable("", "the record is not a JSON object")
        return _mapped(line, source_id, raw, record)
    except _Unmappable as exc:
        return SourceRow(
            line=line,
            source_id=source_id,
            raw=raw,
            error=exc.reason,
            fields=(exc.field,) if exc.field else (),
        )


def _id(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return one_line(str(value))


def _mapped(line: int, source_id: str | None, raw: str, record: dict[str, Any]) -> SourceRow:
    if source_id is None:
        raise _Unmappable("id", "id is missing or empty: the events' ids are derived from it")
    flags: list[str] = []
    flag_fields: list[str] = []

    def flag(reason: str, field: str) -> None:
        flags.append(reason)
        if field not in flag_fields:
            flag_fields.append(field)

    categories = [c.upper() for c in _strings(record.get("event")) if c]
    if not categories:
        raise _Unmappable("event", "event is missing: no PLOVER category")
    modes = _strings(record.get("mode"))
    mode = modes[0].lower() if modes else ""

    actors = [a for a in map(_actor, _items(_actor_field(record))) if a is not None]
    recipients = [
        a
        for key in ("target", "recipient")
        for a in map(_actor, _items(record.get(key)))
        if a is not None
    ]
    opponent = recipients[0] if recipients else (actors[1] if len(actors) > 1 else None)
    actor = actors[0] if actors else None

    kind, code = _kind(categories, mode, _strings(record.get("context")))
    if kind in ("capture", "clash") and actor is None:
        raise _Unmappable(
            "actor", f"{categories[0]}/{mode or '-'} maps to a {kind}, which needs an actor"
        )

    notes = raw
    if len(raw) > LONG_TEXT_MAX:
        notes = raw[:LONG_TEXT_MAX]
        flag(f"the record is {len(raw)} characters; notes keep its first {LONG_TEXT_MAX}", "")

    common: dict[str, Any] = {
        "side": _slug(actor[0]) if actor else None,
        "actor": actor[1] if actor else None,
        "opponent": _slug(opponent[0]) if opponent else None,
        "occurred": _occurred(record, flag),
        "source": _source(record),
        "quote": _quote(record),
        "notes": notes,
    }
    common = {k: v for k, v in common.items() if v is not None}
    place = _place(record)
    main: dict[str, Any] = {"id": str(event_id(FORMAT, source_id, "event")), "type": kind}
    if code is not None:
        main["code"] = code
    events = [main | common]
    casualties = _casualties(record, flag)
    if casualties:
        events.append(
            {
                "id": str(event_id(FORMAT, source_id, "casualties")),
                "type": "casualties",
                **common,
                "casualties": casualties,
            }
        )
    return SourceRow(
        line=line,
        source_id=source_id,
        raw=raw,
        place=place,
        events=tuple(events),
        flags=tuple(flags),
        fields=tuple(f for f in flag_fields if f),
    )


def _kind(
    categories: Sequence[str], mode: str, contexts: Sequence[str] = ()
) -> tuple[str, str | None]:
    """(Frontline type, ``code`` for an ``other`` event) of a record's categories, mode and
    contexts."""
    first = categories[0]
    if first == "COERCE" and mode in CAPTURE_MODES:
        return "capture", None
    if first == "ASSAULT":
        return ("clash" if mode in CLASH_MODES else "strike"), None
    if first == "FIGHT":
        territorial = mode in TERRITORY_WORDS or any(c.lower() in TERRITORY_WORDS for c in contexts)
        return ("capture" if territorial else "clash"), None
    code = one_line(f"PLOVER:{'+'.join(categories)}/{mode}")
    return "other", code


def _strings(value: Any) -> list[str]:
    """A field that is a string or a list of strings, as a list of one-line strings."""
    items = value if isinstance(value, list) else [value]
    return [t for v in items if isinstance(v, str) and (t := one_line(v))]


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _actor_field(record: Mapping[str, Any]) -> Any:
    if "actor" in record:
        return record["actor"]
    source = record.get("source")
    # In the specification ``source`` is the acting party (actor objects); a plain string
    # ``source`` is the outlet that reported the event (see _source).
    return None if isinstance(source, str) else source


_SLUG_KEYS: Final = ("identifier_text", "identifierText", "actor_text", "actorText", "name", "text")
_SHOWN_KEYS: Final = (
    "actor_text",
    "actorText",
    "name",
    "text",
    "identifier_text",
    "identifierText",
)


def _first_text(value: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` whose value is non-blank text, on one line."""
    for key in keys:
        text = value.get(key)
        if isinstance(text, str) and (line := one_line(text)):
            return line
    return None


def _actor(value: Any) -> tuple[str, str] | None:
    """(name to slug, text for ``actor``) of an actor given as a string or an actor object:
    the slug from identifier_text, actor_text, name or text, the text shown from actor_text,
    name, text or identifier_text, else both from code + sector."""
    if isinstance(value, str):
        text = one_line(value)
        return (text, text) if text else None
    if not isinstance(value, dict):
        return None
    named = _first_text(value, _SLUG_KEYS)
    if named is not None:
        return named, _first_text(value, _SHOWN_KEYS) or named
    coded = one_line(
        " ".join(v for k in ("code", "sector") if isinstance(v := value.get(k), str) and v)
    )
    return (coded, coded) if coded else None


def _day(value: Any, field: str) -> date:
    if not isinstance(value, str) or not value.strip():
        raise _Unmappable(field, f"{field} is missing: the event has no date")
    text = value.strip()
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        day = None
    if day is None or (len(text) > 10 and text[10] not in "Tt "):
        raise _Unmappable(field, f"{field} is not a date (YYYY-MM-DD): {value!r}")
    return day


def _occurred(record: Mapping[str, Any], flag: Any) -> dict[str, str]:
    start = _day(record.get("date"), "date")
    occurred = {"start": start.isoformat(), "precision": "day"}
    if record.get("enddate") not in (None, ""):
        end = _day(record.get("enddate"), "enddate")
        if end < start:
            raise _Unmappable("enddate", f"enddate ({end}) is before date ({start})")
        if end != start:
            occurred["end"] = end.isoformat()
    time = record.get("time")
    if isinstance(time, str) and time.strip() and "end" not in occurred:
        moment = f"{start.isoformat()}T{time.strip()}"
        try:
            parsed = datetime.fromisoformat(moment.replace("z", "Z"))
        except ValueError:
            flag(f"time {time!r} is not an ISO 8601 time: the day is kept", "time")
        else:
            # Other ISO 8601 spellings (10:00:00+0300, 1000Z, a comma or seven fraction
            # digits) are stored in the contract's; one it cannot hold keeps the day.
            instant = moment if _INSTANT.match(moment) else parsed.isoformat()
            if parsed.utcoffset() is None:
                flag(f"time {time!r} has no UTC offset: the day is kept", "time")
            elif not _INSTANT.match(instant):
                flag(f"time {time!r} is not a time Frontline can store: the day is kept", "time")
            else:
                occurred = {"start": instant, "precision": "exact"}
    return occurred


def _location(record: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("location", "event_loc", "eventLoc"):
        value = record.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            return value
    raise _Unmappable("location", "location is missing: the event has no place")


def _coordinate(loc: Mapping[str, Any], keys: Sequence[str], bound: float) -> float | None:
    key = next((k for k in keys if loc.get(k) not in (None, "")), None)
    if key is None:
        return None
    value = loc[key]
    field = f"location.{key}"
    if isinstance(value, bool):
        raise _Unmappable(field, f"{field} is not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _Unmappable(field, f"{field} is not a number: {value!r}") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise _Unmappable(field, f"{field} {value} is outside -{bound:g}..{bound:g}")
    return number


_ADMIN_KEYS: Final = (
    ("country", "country_code", "country code", "cc3"),
    ("admin1", "admin1_code", "admin1 code"),
    ("admin2", "admin2_code", "admin2 code"),
)


def _first_name(loc: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = loc.get(key)
        if value is not None and (text := _text(value)):
            return text
    return None


def _place(record: Mapping[str, Any]) -> PlaceRef:
    loc = _location(record)
    name = _first_name(loc, ("name", "asciiname", "placename"))
    if name is None:
        raise _Unmappable("location.name", "location.name is missing: the place has no name")
    lat = _coordinate(loc, ("lat", "latitude"), 90.0)
    lon = _coordinate(loc, ("lon", "lng", "longitude"), 180.0)
    if (lat is None) != (lon is None):
        missing = "location.lat" if lat is None else "location.lon"
        raise _Unmappable(missing, f"{missing} is missing: a point needs both coordinates")
    admin = [found for keys in _ADMIN_KEYS if (found := _first_name(loc, keys))]
    if "admin" in loc:
        admin.extend(_strings(loc["admin"]))
    return PlaceRef(name=name, lat=lat, lon=lon, admin=tuple(admin))


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return one_line(value) if isinstance(value, str) else None


def _source(record: Mapping[str, Any]) -> dict[str, str]:
    cite = next((v for k in ("cite_info", "citeInfo") if isinstance(v := record.get(k), dict)), {})
    candidates = [
        cite.get("publication"),
        cite.get("corpus"),
        record.get("publication"),
        record.get("source") if isinstance(record.get("source"), str) else None,
        record.get("coder"),
    ]
    name = next((t for c in candidates if isinstance(c, str) and (t := one_line(c))), "PLOVER")
    source = {"name": name}
    url = cite.get("url")
    if isinstance(url, str) and url.strip() and len(url.strip()) <= 2000:
        source["url"] = url.strip()
    return source


def _quote(record: Mapping[str, Any]) -> str | None:
    for key in ("event_text", "eventText", "text", "source_text"):
        value = record.get(key)
        if isinstance(value, list):
            value = "\n".join(v for v in value if isinstance(v, str))
        if isinstance(value, str) and value.strip():
            return long_text(value)
    return None


def _casualties(record: Mapping[str, Any], flag: Any) -> dict[str, int]:
    places = [record] + [
        v for k in ("size", "size_info", "sizeInfo") if isinstance(v := record.get(k), dict)
    ]
    figures: dict[str, int] = {}
    for target, keys in (("killed", ("dead", "killed")), ("wounded", ("injured", "wounded"))):
        for where in places:
            key = next((k for k in keys if where.get(k) not in (None, "")), None)
            if key is None:
                continue
            value = _whole(where[key])
            if value is None:
                flag(f"{key} {where[key]!r} is not a whole number >= 0: kept in notes only", key)
            else:
                figures[target] = value
            break
    return figures


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _COUNT_MAX:
        return value
    return None
