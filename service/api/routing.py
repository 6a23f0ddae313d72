"""What the route table answers by itself: a path no route has (404) and a method its route
does not take (405), before the key check; and a query parameter the route does not take
(422 ``unknown-parameter``), read from the parameters each handler declares.

Both read Litestar's own tables (its router, and the kwargs model it builds for each
handler from the handler's signature and dependencies), so a route or a parameter added to a
handler is known here without a list to keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from litestar import Litestar
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.routes import HTTPRoute
from litestar.types import Scope
from litestar.utils import normalize_path

from service.api.deps import AnyRequest
from service.api.errors import MethodNotAllowed
from service.domain.errors import FrontlineError
from service.errors import NotFound, UnknownParameter


def route_refusal(app: Litestar) -> Callable[[Scope], FrontlineError | None]:
    """A check of a request against the app's routes, made as its router makes it (same
    normalised path, same table): NotFound for a path no route has, MethodNotAllowed for a
    method the path's route does not take, None when a route takes it. The check is only
    ever used to refuse: a request it lets by still meets the key check."""

    def refusal(scope: Scope) -> FrontlineError | None:
        path = scope["path"]
        method: Any = scope.get("method")
        if root_path := scope.get("root_path", ""):
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            app.asgi_router.handle_routing(path=normalize_path(path), method=method)
        except NotFoundException:
            return NotFound(f"no route {scope['path'][:200]!r}", field="path")
        except MethodNotAllowedException as error:
            allow = (error.headers or {}).get("allow", "")
            return MethodNotAllowed(
                f"{method} is not a method of {scope['path'][:200]!r}; it takes {allow}",
                allow=allow,
            )
        return None

    return refusal


UNCHECKED: Final = "free_query"
"""A handler whose ``opt`` holds this key takes any query parameter (none does; handlers
outside the API document are never checked: the map page carries its view in its query)."""


def accepted_parameters(app: Litestar) -> dict[int, frozenset[str]]:
    """The query parameters each documented handler takes, by the handler's id: those of the
    kwargs model Litestar parses its requests with (its signature and its dependencies)."""
    accepted: dict[int, frozenset[str]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, model in route.route_handler_map.values():
            if not handler.resolve_include_in_schema() or UNCHECKED in handler.opt:
                continue
            accepted[id(handler)] = frozenset(p.field_alias for p in model.expected_query_params)
    return accepted


def refuse_unknown_parameters() -> Callable[[AnyRequest], Any]:
    """A ``before_request`` hook: 422 ``unknown-parameter`` for a query parameter the route
    does not take, so a misspelt filter (``palce=``) is never silently ignored."""
    tables: list[dict[int, frozenset[str]]] = []  # built on the first request

    async def hook(request: AnyRequest) -> None:
        if not tables:
            tables.append(accepted_parameters(request.app))
        accepted = tables[0].get(id(request.scope.get("route_handler")))
        if accepted is None:
            return
        unknown = [name for name in dict.fromkeys(request.query_params) if name not in accepted]
        if not unknown:
            return
        takes = ", ".join(sorted(accepted)) or "no query parameter"
        names = ", ".join(repr(name[:80]) for name in unknown[:20])
        raise UnknownParameter(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {names}; "
            f"{request.method} {request.scope.get('path_template', request.url.path)} "
            f"takes {takes}",
            field=unknown[0][:80],
        )

    return hook
