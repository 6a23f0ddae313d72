"""Which database answers a read: ``min_position``, the position header, a replica's failure.

Every ``GET`` of a route marked as a read (``opt`` ``pinnable`` or ``replica``) is answered by
the node ``services.reads`` chooses (service/store/replicas.py): a read replica that has
applied the position the request needs, else the primary. The request needs

* ``min_position=N`` (query) or ``Frontline-Min-Position: N`` (header; the larger of the two
  when both are given): a client that wrote at N reads its own write;
* N of ``known_at=position:N``: an answer as known at N is the same on every node that has
  applied N, and no other node gives it (so a pinned answer is immutable on the node that
  serves it, DESIGN section 8).

Every such answer says where it was served: ``Frontline-Served-At`` (the position the serving
node is known to have applied: the answer reflects every commit up to it) and
``Frontline-Served-By`` (``primary`` or ``replica-N``). ``min_position`` is taken off the
query before the route sees it: it changes who answers, never the answer.

A replica whose answer is a 5xx (it stopped, it cancelled the statement for its replay) is
taken out of the rotation and the request is answered again by the primary, so a replica's
trouble never reaches a client. A stream already under way cannot be replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Parameter, Schema
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.api.caching import pinned_at
from service.api.deps import Services
from service.query import MAX_POSITION, position
from service.store.replicas import Served

MIN_POSITION: Final = "min_position"
MIN_POSITION_HEADER: Final = "Frontline-Min-Position"
POSITION_HEADER: Final = "Frontline-Served-At"
SERVED_BY_HEADER: Final = "Frontline-Served-By"
REPLICA: Final[dict[str, Any]] = {"replica": True}
"""A route's ``opt`` when its answer may come from a read replica (pinnable routes may too)."""


def routed(scope: Scope) -> bool:
    """Whether the matched route's answer may come from a read replica."""
    handler: Any = scope.get("route_handler")
    return handler is not None and bool(handler.opt.get("replica") or handler.opt.get("pinnable"))


def needed(scope: Scope) -> tuple[int, bytes]:
    """The position a read needs (``min_position``, its header, ``known_at=position:N``; 0:
    none) and the query string without ``min_position``. InvalidParameter (422) for a
    ``min_position`` that is not a position."""
    raw: bytes = scope["query_string"]
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    need = 0
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if name == MIN_POSITION:
            need = max(need, position(value, MIN_POSITION))
        else:
            kept.append((name, value))
    header = next(
        (v for k, v in scope["headers"] if k.lower() == MIN_POSITION_HEADER.lower().encode()),
        None,
    )
    if header is not None:
        need = max(need, position(header.decode("latin-1").strip(), MIN_POSITION_HEADER))
    pinned = pinned_at(raw)
    if pinned is not None:
        need = max(need, min(pinned, MAX_POSITION))
    query = raw if len(kept) == len(pairs) else urlencode(kept).encode("latin-1")
    return need, query


def read_routing(app: ASGIApp, services: Callable[[], Services]) -> ASGIApp:
    """The middleware around the routes, outside the conditional GET (whose check of a pin
    then reads the serving node's projections)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "GET" or not routed(scope):
            await app(scope, receive, send)
            return
        found = services()
        need, query = needed(scope)
        if query is not scope["query_string"]:
            scope = {**scope, "query_string": query}
        served = await found.reads.route(need)
        if served.replica:
            failure = await _attempt(app, scope, receive, send, found, served)
            if failure is None:
                return
            found.reads.failed(served, failure)
            served = await found.reads.route_primary(need)
        await _attempt(app, scope, receive, send, found, served, last=True)

    return middleware


async def _attempt(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    found: Services,
    served: Served,
    *,
    last: bool = False,
) -> str | None:
    """Answer the request on ``served``'s node; unless ``last``, hold back a 5xx start (and
    what follows it) and return why, so the primary can answer instead."""
    failed: str | None = None

    async def sending(message: Message) -> None:
        nonlocal failed
        if failed is not None:
            return
        if message["type"] == "http.response.start":
            if not last and message["status"] >= 500:
                failed = f"HTTP {message['status']}"
                return
            found.metrics.observe_read(served.node)
            headers = [
                *message.get("headers", []),
                (POSITION_HEADER.lower().encode(), str(served.position).encode()),
                (SERVED_BY_HEADER.lower().encode(), served.node.encode()),
            ]
            message = {**message, "headers": headers}
        await send(message)

    with found.reads.using(served):
        await app(scope, receive, sending)
    return failed


def document(app: Litestar) -> None:
    """Say in the OpenAPI document what every routed read takes and answers:
    ``min_position`` (query), ``Frontline-Min-Position`` (header), and the
    ``Frontline-Served-At`` and ``Frontline-Served-By`` headers of its answers."""
    routed_ids = {
        handler.operation_id
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get("replica") or handler.opt.get("pinnable")
    }
    wants = "the log position the answer must reflect (read your writes): a replica answers "
    wants += "only once it has applied it, else the primary does"

    def position_schema() -> Schema:
        return Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=MAX_POSITION)

    for item in (app.openapi_schema.paths or {}).values():
        operation = item.get
        if operation is None or operation.operation_id not in routed_ids:
            continue
        operation.parameters = [
            *(operation.parameters or []),
            Parameter(
                name=MIN_POSITION, param_in="query", schema=position_schema(), description=wants
            ),
            Parameter(
                name=MIN_POSITION_HEADER,
                param_in="header",
                schema=position_schema(),
                description=f"{wants} (the larger of this and `min_position` counts)",
            ),
        ]
        ok = operation.responses.get("200") if operation.responses else None
        if isinstance(ok, OpenAPIResponse):
            ok.headers = {
                **(ok.headers or {}),
                POSITION_HEADER: OpenAPIHeader(
                    schema=position_schema(),
                    description="The log position the serving database had applied: the "
                    "answer reflects every commit up to it.",
                ),
                SERVED_BY_HEADER: OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description="`primary` or `replica-N` (the N-th of FRONTLINE_READ_URLS).",
                ),
            }
