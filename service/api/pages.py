"""One pagination style for every list: ``cursor`` and ``limit`` in, ``next_cursor`` and
``next`` out, and a ``Link: <next>; rel="next"`` header (RFC 8288).

A cursor is opaque to clients: they pass the ``next_cursor`` of one page as ``cursor`` of the
next, or follow ``next``, the relative URL of the next page with the same query (only the
cursor changed). Both are null on the last page: each list reads one item more than it
answers, so a full last page is not followed by an empty one.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from litestar import Response

from service.api.deps import AnyRequest

CURSOR: Final = "cursor"


def next_url(request: AnyRequest, cursor: str | None) -> str | None:
    """The relative URL of the page after this one: this request's path and query, with
    ``cursor`` replaced (or added); None when there is no next page."""
    if cursor is None:
        return None
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != CURSOR]
    pairs.append((CURSOR, cursor))
    return f"{request.url.path}?{urlencode(pairs)}"


def link_headers(next_: str | None) -> dict[str, str]:
    """The ``Link`` header naming the next page, when there is one."""
    return {} if next_ is None else {"link": f'<{next_}>; rel="next"'}


def page(content: Any, next_: str | None, *, media_type: str | None = None) -> Response[Any]:
    """A page of a list as its answer, with the ``Link`` header of the next page."""
    if media_type is None:
        return Response(content, headers=link_headers(next_))
    return Response(content, headers=link_headers(next_), media_type=media_type)
