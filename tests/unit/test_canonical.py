"""RFC 8785 canonical JSON: ``canonical_json`` writes exactly what the reference implementation
(``rfc8785.dumps``) writes, on the fast path (msgspec, sorted) and on the exact path (non-ASCII
keys, integral floats, floats msgspec writes with exponents) alike.

The stored record and the payload digest are hashed over these bytes, so a single differing
byte would make a verifier using any other JCS implementation report tampering.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import EVENT_TYPES, Event, event_decoder
from service.domain.canonical import canonical_json

#: Largest integer magnitude JCS (I-JSON) can represent exactly: the reference refuses more.
SAFE_INT = 2**53 - 1

#: Characters worth forcing into keys and strings: astral, private use, UTF-16 order traps
#: (U+E000.. sorts after surrogate pairs in UTF-16, before them in code points), controls.
TRICKY_CHARS = (
    "\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80\xe9\u2028\u2029\ud7ff\ue000\uf8ff\ufb01\ufeff"
    '\uffff\U00010000\U0001f600\U0010ffff"\\/aAzZ0'
)

# Every code point except lone surrogates, which no JSON text can carry as UTF-8.
_chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY_CHARS))
keys = st.text(_chars, max_size=6)
strings = st.text(_chars, max_size=12)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-SAFE_INT, SAFE_INT).map(float),  # integral floats: 38.0 must be "38"
    st.builds(
        lambda mantissa, exponent: mantissa * 10.0**exponent,
        st.floats(-10, 10, allow_nan=False),
        st.integers(-30, 30),
    ),  # around the 1e-7 and 1e21 switches between plain and exponent notation
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-SAFE_INT, SAFE_INT), floats, strings)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=24,
)

EXAMPLES = settings(max_examples=300, deadline=None)


@EXAMPLES
@given(json_values)
def test_matches_reference_on_any_json_value(value: Any) -> None:
    """Any JSON value (unicode keys, floats of every magnitude, safe ints) encodes as JCS."""
    assert canonical_json(value) == rfc8785.dumps(value)


@EXAMPLES
@given(st.dictionaries(keys, st.integers(-SAFE_INT, SAFE_INT), min_size=2, max_size=8))
def test_keys_are_ordered_by_utf16_code_units(value: dict[str, int]) -> None:
    """Object members are sorted by the UTF-16 code units of their names, not code points."""
    assert canonical_json(value) == rfc8785.dumps(value)


@EXAMPLES
@given(floats)
def test_matches_reference_on_floats(number: float) -> None:
    """A float alone, and as a member value, is written as ECMAScript's Number.toString."""
    assert canonical_json(number) == rfc8785.dumps(number)
    assert canonical_json({"lat": number}) == rfc8785.dumps({"lat": number})


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (38.0, b"38"),
        (-0.0, b"0"),
        (0.0001, b"0.0001"),
        (1e-7, b"1e-7"),
        (1.5e-7, b"1.5e-7"),
        (1e20, b"100000000000000000000"),
        (1e21, b"1e+21"),
        (123456789012345.6, b"123456789012345.6"),
        (5e-324, b"5e-324"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
    ],
)
def test_float_spellings(number: float, text: bytes) -> None:
    """The float spellings JCS fixes: no '.0', no '-0', exponents only outside [1e-6, 1e21)."""
    assert canonical_json(number) == text == rfc8785.dumps(number)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(number: float) -> None:
    """NaN and infinities have no JSON spelling: encoding them fails instead of inventing one."""
    with pytest.raises(ValueError, match="NaN or Infinity"):
        canonical_json({"\ue000": number})


def test_control_characters_are_escaped_as_jcs_says() -> None:
    """Controls use the short escapes where JCS has them, else lower-case \\u00xx; DEL is raw."""
    text = "".join(chr(c) for c in range(0x20)) + '\x7f"\\/\u2028'
    assert canonical_json(text) == rfc8785.dumps(text)
    assert canonical_json({"k\x01": text}) == rfc8785.dumps({"k\x01": text})


# --- events --------------------------------------------------------------------------------

# One line of text as the contract's ``Text`` allows it: no C0 controls, no DEL.
_line = st.text(
    st.characters(codec="utf-8", exclude_characters=[*map(chr, range(0x20)), "\x7f"]),
    min_size=1,
    max_size=20,
)
_slug = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,12}\Z")
_count = st.integers(0, 10_000_000)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Wire-contract events with every optional field sometimes present, through the decoder."""
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    place: dict[str, Any] = {"id": draw(_slug)}
    if draw(st.booleans()):
        place["lat"] = draw(st.floats(-90, 90))
        place["lon"] = draw(st.floats(-180, 180))
    if draw(st.booleans()):
        place["name"] = draw(_line)
        place["aliases"] = draw(st.lists(_line, max_size=3))
    body: dict[str, Any] = {
        "type": kind,
        "id": str(draw(st.uuids())),
        "place": place,
        "occurred": {"start": "2017-06-03", "precision": "day"},
        "source": {
            "name": draw(_line),
            "reliability": draw(st.sampled_from("ABCDEF")),
            "alignment": draw(_slug),
        },
        "credibility": draw(st.integers(1, 6)),
        "quote": draw(st.none() | st.text(_chars, max_size=40)),
    }
    if kind == "other":
        body["code"] = draw(_line)
    if kind not in ("casualties", "equipment_loss", "strike", "other", "statement") or draw(
        st.booleans()
    ):
        body["side"] = draw(_slug)
    if kind == "statement" or draw(st.booleans()):
        body["relates_to"] = [{"event": str(draw(st.uuids())), "relation": "confirms"}]
    if kind == "casualties" or draw(st.booleans()):
        body["casualties"] = {"killed": draw(_count), "low": draw(_count)}
    decoded: Event = event_decoder.decode(msgspec.json.encode(body))
    return decoded


@settings(max_examples=150, deadline=None)
@given(events())
def test_matches_reference_on_events(event: Event) -> None:
    """An event's builtins (the stored payload) encode exactly as the reference does."""
    builtins = msgspec.to_builtins(event)
    assert canonical_json(builtins) == rfc8785.dumps(builtins)
