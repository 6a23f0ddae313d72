"""Decoding and checking client events (DESIGN section 3): every bad input gets the right error
class and names the field at fault, as a dotted path a client can act on.

``decode_events`` tells a single event from a batch and decodes it against the contract;
``field_of`` turns msgspec's errors into (detail, field); ``prepare_event`` checks what the
decoder cannot and derives the stored payload.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import (
    SERVER_OWNED_FIELDS,
    Casualties,
    Event,
    Expectation,
    Link,
    Statement,
)
from service.domain.canonical import canonical_json
from service.domain.errors import BatchTooLarge, InvalidEvent, MalformedBody
from service.domain.records import prepare_event, source_key
from service.domain.validation import decode_events, field_of
from tests.unit.builders import GOV, capture, event, statement, uid

MAX_BATCH = 5


def body(**changes: Any) -> dict[str, Any]:
    """A valid capture as a JSON object, with top-level members changed (None removes one)."""
    result: dict[str, Any] = {
        "id": str(uid(1)),
        "type": "capture",
        "place": {"id": "sy-maskanah", "name": "Maskanah", "lat": 35.96, "lon": 38.04},
        "side": GOV,
        "occurred": {"start": "2017-06-03", "precision": "day"},
        "source": {"name": "South Front", "reliability": "C"},
        "credibility": 3,
    }
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def with_path(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with the member at dotted ``path`` set to ``value``."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = changed
    for name in parents:
        target = target[name]
    target[last] = value
    return changed


def decode(document: Any, max_batch: int = MAX_BATCH) -> tuple[list[Event], Any, bool]:
    """decode_events on a JSON document."""
    return decode_events(json.dumps(document).encode(), max_batch)


def rejected(document: Any, max_batch: int = MAX_BATCH) -> InvalidEvent:
    """The InvalidEvent decoding ``document`` raises."""
    with pytest.raises(InvalidEvent) as caught:
        decode(document, max_batch)
    return caught.value


# --- single event or batch ------------------------------------------------------------------


def test_a_single_event_is_not_a_batch() -> None:
    """An object with a ``type`` is one event: a list of one, no expectations, not a batch."""
    events, expect, is_batch = decode(body())
    assert is_batch is False
    assert expect == ()
    assert len(events) == 1
    assert events[0].id == uid(1)


def test_an_object_with_events_is_a_batch() -> None:
    """``{"events": [...], "expect": [...]}`` is a batch, in order, with its expectations."""
    events, expect, is_batch = decode(
        {
            "events": [body(id=str(uid(1))), body(id=str(uid(2)))],
            "expect": [{"place": "sy-maskanah", "version": "none"}],
        }
    )
    assert is_batch is True
    assert [e.id for e in events] == [uid(1), uid(2)]
    assert expect == (Expectation(place="sy-maskanah", version="none"),)


def test_a_batch_of_one_is_still_a_batch() -> None:
    """A one-event batch answers like a batch (the client asked for one)."""
    _, _, is_batch = decode({"events": [body()]})
    assert is_batch is True


def test_an_empty_batch_is_rejected() -> None:
    """A batch needs at least one event: 422 naming ``events``."""
    assert rejected({"events": []}).field == "events"


@pytest.mark.parametrize("document", [[body()], 3, "capture", None])
def test_a_body_that_is_not_an_object_is_invalid(document: Any) -> None:
    """JSON that is not an object is a 422 (contract broken), not a 400 (JSON broken)."""
    error = rejected(document)
    assert type(error) is InvalidEvent
    assert "Expected `object`" in error.detail


# --- contract violations: class and field ----------------------------------------------------


def test_unknown_type_names_type() -> None:
    """An unknown ``type`` is rejected, never guessed: field ``type``."""
    error = rejected(body(type="battle"))
    assert error.field == "type"
    assert "battle" in error.detail


def test_missing_type_names_type() -> None:
    """Without a ``type`` the event kind is unknown: field ``type``."""
    assert rejected(body(type=None)).field == "type"


def test_missing_side_on_capture_names_side() -> None:
    """A capture without ``side`` says who took nothing: field ``side``."""
    error = rejected(body(side=None))
    assert error.field == "side"
    assert "missing required field" in error.detail


def test_statement_without_side_is_accepted_but_needs_a_link() -> None:
    """``side`` is optional on a statement, but a statement acts only through its links."""
    link = [{"event": str(uid(9)), "relation": "denies"}]
    events, _, _ = decode(body(type="statement", side=None, relates_to=link))
    assert events[0].side is None
    assert rejected(body(type="statement", side=None)).field == "relates_to"


def test_missing_place_names_place() -> None:
    """An event must say where: field ``place``."""
    assert rejected(body(place=None)).field == "place"


def test_unknown_field_is_named() -> None:
    """A member the contract does not know is a 422 naming it, at its depth."""
    assert rejected(body(colour="red")).field == "colour"
    nested = with_path(body(), "source.colour", "red")
    assert rejected(nested).field == "source.colour"


@pytest.mark.parametrize("name", sorted(SERVER_OWNED_FIELDS))
def test_server_owned_fields_are_refused_by_name(name: str) -> None:
    """``position``, ``recorded_at``, ``hash``, ``version``...: the message says the server sets
    them, and the field is named."""
    error = rejected(body(**{name: 1}))
    assert error.field == name
    assert "set by the server" in error.detail
    assert name in error.detail


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("place.lat", 90.5),
        ("place.lat", -91),
        ("place.lon", 180.01),
        ("place.lon", -181),
        ("place.lat", "35.9"),
        ("place.id", "Sy Maskanah"),
        ("place.kind", "castle"),
        ("source.reliability", "G"),
        ("source.reliability", "c"),
        ("source.alignment", "Syrian Government"),
        ("occurred.precision", "minute"),
        ("hedge", "rumoured"),
        ("credibility", 0),
        ("credibility", 7),
        ("credibility", 3.5),
        ("id", "not-a-uuid"),
        ("casualties", {"killed": -1}),
        ("relates_to", [{"event": str(uid(2)), "relation": "likes"}]),
    ],
)
def test_out_of_contract_values_name_their_field(path: str, value: Any) -> None:
    """Each constraint of the contract names the offending member by its dotted path."""
    error = rejected(with_path(body(), path, value))
    assert type(error) is InvalidEvent
    assert error.field is not None
    assert error.field.startswith(path)
    assert f"(at {error.field})" in error.detail


@settings(max_examples=50, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=90, exclude_min=True, allow_infinity=False),
        st.floats(max_value=-90, exclude_max=True, allow_infinity=False),
    )
)
def test_any_latitude_out_of_range_names_place_lat(lat: float) -> None:
    """Every latitude beyond +-90 is a 422 on ``place.lat``."""
    assert rejected(with_path(body(), "place.lat", lat)).field == "place.lat"


@pytest.mark.parametrize("raw", [b"{not json", b'{"type": "capture",', b"", b"\xff", b"nul"])
def test_malformed_json_is_a_malformed_body(raw: bytes) -> None:
    """Bytes that are not JSON at all are a MalformedBody (400), with no field."""
    with pytest.raises(MalformedBody, match="malformed JSON") as caught:
        decode_events(raw, MAX_BATCH)
    assert caught.value.field is None


@pytest.mark.parametrize("raw", [b"[1,]", b'"x" y'])
def test_malformed_json_that_starts_like_a_non_object_is_a_malformed_body(raw: bytes) -> None:
    """Broken JSON is a 400 whatever its first token, not a 422 about its type.

    Regression test (decode_events): before the fix, when the peek failed with a
    ValidationError the body goes to the typed event decoder, which reports "Expected
    `object`, got `array`" (InvalidEvent, 422) before it ever reaches the syntax error.
    """
    with pytest.raises(MalformedBody):
        decode_events(raw, MAX_BATCH)


def test_trailing_garbage_is_malformed() -> None:
    """A valid event followed by more bytes is not one JSON document."""
    with pytest.raises(MalformedBody):
        decode_events(json.dumps(body()).encode() + b" {}", MAX_BATCH)


def test_a_batch_over_max_batch_is_too_large() -> None:
    """More events than ``max_batch`` is BatchTooLarge naming ``events``; the limit itself is
    accepted."""
    events = [body(id=str(uid(n))) for n in range(MAX_BATCH + 1)]
    decoded, _, _ = decode({"events": events[:MAX_BATCH]})
    assert len(decoded) == MAX_BATCH
    with pytest.raises(BatchTooLarge, match=f"at most {MAX_BATCH}") as caught:
        decode({"events": events})
    assert caught.value.field == "events"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("place.lat", 91, "events[2].place.lat"),
        ("side", None, "events[2].side"),
        ("hash", "ab", "events[2].hash"),
        ("type", "battle", "events[2].type"),
        ("source.reliability", "G", "events[2].source.reliability"),
    ],
)
def test_errors_inside_a_batch_name_the_event(path: str, value: Any, field: str) -> None:
    """An error in the third event of a batch is named ``events[2]....``."""
    bad = with_path(body(id=str(uid(3))), path, value)
    if value is None:
        bad.pop(path)
    error = rejected({"events": [body(id=str(uid(1))), body(id=str(uid(2))), bad]})
    assert error.field == field


def test_bad_expectation_is_named() -> None:
    """A malformed precondition names ``expect[i]....``."""
    document = {"events": [body()], "expect": [{"place": "sy-maskanah", "version": "latest"}]}
    assert rejected(document).field == "expect[0].version"


@pytest.mark.parametrize("text", ["Mask\nanah", "Mask\tanah", "Mask\x00anah", "Mask\x7fanah"])
def test_a_control_character_in_a_place_name_is_rejected(text: str) -> None:
    """Names are one line of text: a control character is a 422 on ``place.name``."""
    assert rejected(with_path(body(), "place.name", text)).field == "place.name"


@pytest.mark.parametrize(
    ("path", "value"),
    [("place.name", "Maskanah\n"), ("place.id", "sy-maskanah\n")],
)
def test_a_trailing_newline_is_a_control_character_too(path: str, value: str) -> None:
    """A newline at the very end of a one-line text or a slug is rejected like any other.

    Regression test (the Slug and Text patterns): msgspec matches ``pattern`` with
    Python's ``re.search``, where ``$`` also matches just before a final newline, so
    ``"Maskanah\\n"`` and ``"sy-maskanah\\n"`` (a different place stream) are accepted.
    """
    assert rejected(with_path(body(), path, value)).field == path


# --- field_of --------------------------------------------------------------------------------


def test_field_of_a_syntax_error_has_no_field() -> None:
    """A JSON syntax error has no field, and its detail says the JSON is malformed."""
    with pytest.raises(msgspec.DecodeError) as caught:
        msgspec.json.decode(b"{")
    detail, field = field_of(caught.value)
    assert field is None
    assert detail.startswith("malformed JSON: ")


def test_field_of_a_root_error_has_no_field() -> None:
    """A type error on the whole document has no field (there is no member to name)."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(b"[]", type=dict[str, int])
    assert field_of(caught.value) == ("Expected `object`, got `array`", None)


def test_field_of_reads_the_path_and_appends_named_fields() -> None:
    """The path comes from msgspec's `` - at `$...` ``; a missing or unknown member is
    appended to it."""
    error = rejected({"events": [body(), with_path(body(), "source.extra", 1)]})
    assert error.field == "events[1].source.extra"
    assert error.detail == "Object contains unknown field `extra` (at events[1].source.extra)"


def test_field_of_is_not_fooled_by_a_client_value() -> None:
    """A client value that looks like msgspec's wording does not change the field named.

    Regression test (field_of): before the fix, the regex ran over
    the whole message, which quotes the client's value, so ``"type": "unknown field
    `position`"`` is reported as field ``type.position`` with "set by the server".
    """
    error = rejected(body(type="unknown field `position`"))
    assert error.field == "type"
    assert "set by the server" not in error.detail


# --- prepare_event ---------------------------------------------------------------------------


def decoded(document: dict[str, Any]) -> Event:
    """One event through the real decoder."""
    events, _, _ = decode(document)
    return events[0]


@pytest.mark.parametrize(
    ("place", "field"),
    [
        ({"id": "sy-x", "lat": 35.0}, "place.lon"),
        ({"id": "sy-x", "lon": 38.0}, "place.lat"),
    ],
)
def test_one_coordinate_without_the_other_is_rejected(place: dict[str, Any], field: str) -> None:
    """Coordinates come in pairs: the missing one is named."""
    with pytest.raises(InvalidEvent) as caught:
        prepare_event(decoded(body(place=place)))
    assert caught.value.field == field


def test_an_event_cannot_link_to_itself() -> None:
    """A link to the event's own id is a 422 on that link."""
    own = statement(Link(event=uid(7), relation="confirms"), id=7)
    with pytest.raises(InvalidEvent, match="itself") as caught:
        prepare_event(own)
    assert caught.value.field == "relates_to[0].event"


def test_a_repeated_link_is_rejected_naming_the_repeat() -> None:
    """The same (event, relation) twice in ``relates_to`` is a 422 on the repeat (it reached
    event_links' primary key as a 500 before); one event with two relations is fine."""
    twice = statement(
        Link(event=uid(1), relation="denies"),
        Link(event=uid(1), relation="retracts"),
        Link(event=uid(1), relation="denies"),
        id=7,
    )
    with pytest.raises(InvalidEvent, match=r"repeats relates_to\[0\]") as caught:
        prepare_event(twice)
    assert caught.value.field == "relates_to[2]"
    both = statement(Link(event=uid(1), relation="denies"), Link(uid(1), "retracts"), id=7)
    prepared = prepare_event(both).event
    assert isinstance(prepared, Statement)
    assert len(prepared.relates_to) == 2


@pytest.mark.parametrize("published_at", ["2017-06-05T10:00", "June 5", "2017-06-31"])
def test_a_bad_published_at_is_rejected(published_at: str) -> None:
    """``source.published_at`` follows the time rules: naive datetimes and non-dates are 422."""
    document = with_path(body(), "source.published_at", published_at)
    with pytest.raises(InvalidEvent) as caught:
        prepare_event(decoded(document))
    assert caught.value.field == "source.published_at"


@pytest.mark.parametrize("published_at", ["2017-06-05", "2017-06-05T10:00+03:00"])
def test_a_good_published_at_is_kept_as_given(published_at: str) -> None:
    """A date or an offset datetime is accepted and stored as the client wrote it."""
    prepared = prepare_event(decoded(with_path(body(), "source.published_at", published_at)))
    assert json.loads(prepared.payload)["source"]["published_at"] == published_at


def test_a_bad_occurred_is_rejected_by_prepare() -> None:
    """``occurred`` is checked when preparing: a naive start is a 422 on ``occurred.start``."""
    document = with_path(body(), "occurred.start", "2017-06-03T10:00")
    with pytest.raises(InvalidEvent) as caught:
        prepare_event(decoded(document))
    assert caught.value.field == "occurred.start"


def test_casualty_figures_out_of_order_are_flagged_not_refused() -> None:
    """``low > killed > high`` is stored as given, with one flag per broken bound."""
    figures = Casualties(killed=20, low=30, high=10)
    prepared = prepare_event(event("casualties", casualties=figures))
    assert prepared.flags == (
        "casualties.low exceeds casualties.killed",
        "casualties.killed exceeds casualties.high",
        "casualties.low exceeds casualties.high",
    )
    assert json.loads(prepared.payload)["casualties"] == {"killed": 20, "low": 30, "high": 10}


@pytest.mark.parametrize(
    "figures",
    [
        Casualties(killed=20, low=10, high=30),
        Casualties(killed=20),
        Casualties(low=5, high=5),
        Casualties(wounded=3),
    ],
)
def test_casualty_figures_in_order_are_not_flagged(figures: Casualties) -> None:
    """Consistent or partial figures raise no flag."""
    assert prepare_event(event("casualties", casualties=figures)).flags == ()


def test_the_server_assigns_an_id_when_absent() -> None:
    """An event without ``id`` gets a fresh UUID, in the event and in its payload."""
    event_without_id = decoded(body(id=None))
    first, second = prepare_event(event_without_id), prepare_event(event_without_id)
    assert event_without_id.id is None
    assert first.id.version == 4
    assert first.event.id == first.id
    assert json.loads(first.payload)["id"] == str(first.id)
    assert first.id != second.id


def test_a_client_id_is_kept() -> None:
    """A client-chosen id is the idempotency key: kept as sent."""
    assert prepare_event(decoded(body())).id == uid(1)


def test_the_payload_excludes_defaults() -> None:
    """Members equal to their default are left out of the payload, sent or not, so the
    digest of an event does not depend on how explicit its client was."""
    explicit = body(
        type="strike",
        side=None,
        credibility=6,
        hedge="reported",
        relates_to=[],
        casualties=None,
        source={"name": "South Front", "reliability": "F"},
        occurred={"start": "2017-06-03", "precision": "day", "end": None},
        place={"id": "sy-maskanah", "aliases": [], "name": None},
    )
    explicit["notes"] = None
    explicit["actor"] = None
    implicit = {
        "id": str(uid(1)),
        "type": "strike",
        "place": {"id": "sy-maskanah"},
        "occurred": {"start": "2017-06-03"},
        "source": {"name": "South Front"},
    }
    prepared = prepare_event(decoded(explicit))
    assert prepared.payload == prepare_event(decoded(implicit)).payload
    assert json.loads(prepared.payload) == implicit


def test_an_explicit_default_alignment_is_left_out_of_the_payload() -> None:
    """``"alignment": "neutral"`` sent explicitly gives the same payload (and digest) as
    leaving it out, so a retry that spells the default out is a duplicate, not a conflict.

    Regression test (``Source.alignment: Slug = "neutral"`` with
    service/domain/records.py ``prepare_event``'s ``msgspec.to_builtins``; before the fix: msgspec's
    ``omit_defaults`` compares a str default by identity; a decoded "neutral" is a new string
    object, so it is kept. (Literal-typed defaults such as ``hedge`` are not affected.)
    """
    source = {"name": "South Front", "reliability": "C"}
    implicit = prepare_event(decoded(body(source=source)))
    explicit = prepare_event(decoded(body(source={**source, "alignment": "neutral"})))
    assert explicit.payload == implicit.payload
    assert "alignment" not in json.loads(explicit.payload)["source"]


def test_the_payload_is_canonical_and_stable() -> None:
    """The payload is the RFC 8785 encoding of the event; preparing again gives the same bytes
    and digest, whatever the member order of the request."""
    document = body(casualties={"killed": 3, "side": "isis"}, quote="«On Saturday» 🙂")
    reordered = dict(reversed(list(document.items())))
    first = prepare_event(decoded(document))
    again = prepare_event(decoded(reordered))
    assert first.payload == again.payload
    assert first.payload_digest == again.payload_digest == hashlib.sha256(first.payload).digest()
    assert first.payload == canonical_json(msgspec.to_builtins(first.event))
    keys = list(json.loads(first.payload))
    assert keys == sorted(keys)


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-90, 90),
    st.floats(-180, 180),
    st.text(
        st.characters(codec="utf-8", exclude_characters=[*map(chr, range(0x20)), "\x7f"]),
        min_size=1,
        max_size=10,
    ),
)
def test_a_payload_decodes_to_the_same_event(lat: float, lon: float, name: str) -> None:
    """The stored payload is a valid event of the contract, equal to the one prepared."""
    document = body(place={"id": "sy-x", "lat": lat, "lon": lon, "name": name})
    prepared = prepare_event(decoded(document))
    events, _, _ = decode_events(prepared.payload, MAX_BATCH)
    assert events[0] == prepared.event


def test_prepare_derives_the_store_fields() -> None:
    """Type, place, normalised source key and valid interval are derived once, when preparing."""
    prepared = prepare_event(capture(GOV, id=4, until="2017-06-04"))
    assert (prepared.id, prepared.type, prepared.place_id) == (uid(4), "capture", "sy-maskanah")
    assert prepared.source_key == "southfront"
    assert (prepared.valid_from.day, prepared.valid_to.day) == (3, 5)


@pytest.mark.parametrize("name", ["South Front", "south front", "  SOUTH   Front ", "South\tFront"])
def test_source_key_ignores_case_and_spacing(name: str) -> None:
    """Sources are the same when names match, case and spacing aside."""
    assert source_key(name) == "southfront"


def test_ids_are_uuids() -> None:
    """Decoded ids are UUID objects (not strings), so comparisons with stored ids work."""
    assert isinstance(decoded(body()).id, uuid.UUID)
