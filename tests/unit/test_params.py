"""Query parameters, pure: the cursor of ``GET /v1/state/changes``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.params import KwargDefinition

from service import query
from service.api import parameters as params
from service.app import create_app
from service.errors import InvalidParameter
from service.settings import Settings

CURSOR: re.Pattern[str] = re.compile(params.CHANGES_CURSOR_PATTERN)


def test_a_cursor_round_trips_to_the_microsecond() -> None:
    """``next_cursor`` names the last change's place and instant (UTC, microseconds), and
    parsing it gives them back exactly; an empty or absent cursor is the first page."""
    at = datetime(2017, 6, 3, 10, 5, 7, 123456, tzinfo=UTC)
    text = query.change_cursor_text(query.ChangeCursor("sy-al-zkuf", at))
    assert text == "sy-al-zkuf@2017-06-03T10:05:07.123456Z"
    assert CURSOR.search(text)
    assert params.change_cursor(text) == query.ChangeCursor("sy-al-zkuf", at)
    assert params.change_cursor("") is None
    assert params.change_cursor(None) is None


@given(st.from_regex(CURSOR, fullmatch=True))
def test_every_cursor_the_document_allows_is_one_the_parser_takes(text: str) -> None:
    """The documented pattern and the parser agree: nothing the pattern allows is refused."""
    params.change_cursor(text)


@pytest.mark.parametrize(
    "text", ["sy-al-zkuf", "@2017-06-03", "sy-al-zkuf@", "sy-al-zkuf@2017-02-30", "x@y"]
)
def test_a_malformed_cursor_is_refused_naming_cursor(text: str) -> None:
    """A cursor that is not ``place@instant`` is refused by the pattern and by the parser,
    which names ``cursor``."""
    assert not CURSOR.search(text)
    with pytest.raises(InvalidParameter) as refused:
        params.change_cursor(text)
    assert refused.value.field == "cursor"


def test_every_declared_pattern_has_its_words() -> None:
    """A refused parameter says what it takes in words (``params.EXPECTED``), never its
    pattern: every pattern a route of the app declares has its words, so a parameter added
    with a new pattern fails here until it says what it takes."""
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    patterns = {
        definition.kwarg_definition.pattern
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for definition in handler.parsed_fn_signature.parameters.values()
        if isinstance(definition.kwarg_definition, KwargDefinition)
        and definition.kwarg_definition.pattern is not None
    }
    assert len(patterns) > 10
    missing = {p for p in patterns if p not in params.EXPECTED}
    assert not missing, missing
    for words in params.EXPECTED.values():
        assert "(?:" not in words
        assert "$" not in words
