"""Errors meet HTTP here, and only here: each error class to one RFC 9457 answer."""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import structlog
from litestar import Response
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Send

from contracts import problems as contracts_problems
from contracts.problems import CATALOGUE
from contracts.responses import Problem
from service.api.deps import AnyRequest
from service.api.errors import (
    BodyTooLarge,
    Forbidden,
    MethodNotAllowed,
    RateLimited,
    Unauthorized,
)
from service.api.parameters import expected, invalid_parameter
from service.domain.errors import (
    FrontlineError,
    IdConflict,
    InvalidEvent,
    MalformedBody,
    NestedTooDeep,
    NotTheSource,
    WrongExpectedVersion,
)
from service.domain.registry import AliasTaken, MergeRefused
from service.errors import (
    BadUpload,
    ImportStopped,
    ImportStoppedUnavailable,
    InvalidParameter,
    NotFound,
    NotReady,
    RebuildFailed,
    RebuildInterrupted,
    RebuildUnderWay,
    StreamsBusy,
    TooManyStreams,
    UnknownParameter,
    UnreadableFile,
    WriteRefused,
)
from service.store.events import UNAVAILABLE

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
TYPE_BASE: Final = contracts_problems.TYPE_BASE

#: The catalogue's slug of each error class; the most specific class listed wins. Status and
#: title come from the catalogue (contracts/problems.py), the one list of problem types.
PROBLEMS: Final[dict[type[FrontlineError], str]] = {
    NestedTooDeep: "nested-too-deeply",
    MalformedBody: "malformed-body",
    BadUpload: "bad-upload",
    Unauthorized: "unauthorized",
    NotTheSource: "not-the-source",
    Forbidden: "forbidden",
    NotFound: "not-found",
    MethodNotAllowed: "method-not-allowed",
    WrongExpectedVersion: "wrong-expected-version",
    AliasTaken: "alias-taken",
    MergeRefused: "merge-refused",
    RebuildUnderWay: "rebuild-under-way",
    TooManyStreams: "too-many-streams",
    RateLimited: "rate-limited",
    BodyTooLarge: "body-too-large",
    IdConflict: "id-conflict",
    InvalidEvent: "invalid-event",
    UnknownParameter: "unknown-parameter",
    InvalidParameter: "invalid-parameter",
    UnreadableFile: "unreadable-file",
    WriteRefused: "write-refused",
    RebuildInterrupted: "rebuild-interrupted",
    RebuildFailed: "rebuild-failed",
    ImportStoppedUnavailable: "import-stopped-unavailable",
    ImportStopped: "import-stopped",
    NotReady: "unavailable",
    StreamsBusy: "streams-busy",
    FrontlineError: "bad-request",
}

#: The catalogue's slug of the web framework's own errors, by status (any other 4xx is
#: ``bad-request``, any other 5xx ``internal``); a parameter Litestar refuses is
#: ``invalid-parameter``, like one a handler refuses.
HTTP_PROBLEMS: Final[dict[int, str]] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    422: "invalid-parameter",
    429: "rate-limited",
    500: "internal",
    503: "unavailable",
}


def http_slug(status: int) -> str:
    """The catalogue's slug for an error of the web framework with this status."""
    return HTTP_PROBLEMS.get(status, "bad-request" if status < 500 else "internal")


def new_problem(slug: str, detail: str, path: str | None, **members: Any) -> Problem:
    """A problem of the catalogue's type ``slug``: its status and title from there."""
    kind = CATALOGUE[slug]
    return Problem(
        type=TYPE_BASE + kind.slug,
        title=kind.title,
        status=kind.status,
        detail=detail,
        instance=path,
        **members,
    )


def problem_spec(description: str) -> ResponseSpec:
    """An answer the OpenAPI document lists: a problem body, described for this route."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=PROBLEM_MEDIA_TYPE,
        generate_examples=False,
    )


def _problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _request_id(request: AnyRequest) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def frontline_error(request: AnyRequest, error: FrontlineError) -> Response[bytes]:
    """A domain or store error as a problem."""
    problem = problem_of(error, request.url.path, _request_id(request))
    headers = {"www-authenticate": BEARER} if problem.status == 401 else {}
    headers.update(_error_headers(error))
    return _problem_response(problem, headers or None)


def _error_headers(error: FrontlineError) -> dict[str, str]:
    """The headers an error's answer carries besides the body (``Retry-After``, ``Allow``)."""
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if isinstance(error, MethodNotAllowed):
        headers["allow"] = error.allow
    return headers


BEARER: Final = 'Bearer realm="frontline"'


def problem_of(error: FrontlineError, path: str, request_id: str | None) -> Problem:
    """The problem body of a domain or store error (also for code below Litestar)."""
    slug = next(slug for cls, slug in PROBLEMS.items() if isinstance(error, cls))
    status = CATALOGUE[slug].status
    extra: dict[str, object] = {}
    if isinstance(error, WrongExpectedVersion):
        extra = {"place": error.place, "expected": error.expected, "actual": error.actual}
    elif isinstance(error, IdConflict | NotTheSource):
        extra = {"id": error.event_id}
    elif isinstance(error, ImportStopped):
        extra = {"through_line": error.through_line, "result": error.result}
    if isinstance(error, NotTheSource):
        log.info("authz_fail", field=error.field, detail=error.detail)
    if status == 422:
        log.info("input_validation_fail", field=error.field, detail=error.detail)
    return new_problem(slug, error.detail, path, field=error.field, request_id=request_id, **extra)


async def send_problem(send: Send, problem: Problem, error: FrontlineError) -> None:
    """Answer with a problem straight through ASGI (for code that runs before routing)."""
    body = msgspec.json.encode(problem)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if problem.status == 401:
        headers.append((b"www-authenticate", BEARER.encode()))
    headers.extend((k.encode(), v.encode()) for k, v in _error_headers(error).items())
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _wire_name(item: dict[str, object]) -> str:
    """A parameter's name as the client sent it (headers are spelled with hyphens)."""
    key = str(item.get("key")).removesuffix("_")
    return key.replace("_", "-") if item.get("source") == "header" else key


#: Litestar says which required parameter is missing only in its message (no ``extra``).
_MISSING: Final = re.compile(r"Missing required (query|header|path|cookie) parameter '([^']+)'")


def _parameter(request: AnyRequest, key: str) -> tuple[str, str, str | None] | None:
    """A refused parameter of the request's route, by its Python or wire name: its wire name,
    what it takes in words, and the value the request gave (None: none)."""
    handler = request.scope.get("route_handler")
    signature = getattr(handler, "parsed_fn_signature", None)
    if signature is None:
        return None
    for name, definition in signature.parameters.items():
        kwarg = definition.kwarg_definition
        wire = getattr(kwarg, "name", None) or name
        if key not in (name, wire):
            continue
        source = getattr(kwarg, "param_type", None)
        path_params = request.scope.get("path_params") or {}
        if source == ParamType.HEADER:
            given = request.headers.get(wire)
        elif name in path_params:
            given = str(path_params[name])
        else:
            given = request.query_params.get(wire)
        return wire, expected(definition, given), given
    return None


def _invalid_parameters(request: AnyRequest, error: ValidationException) -> tuple[str | None, str]:
    """The first refused parameter and a detail naming each with what it takes and what it
    got, in words (Litestar's own message quotes the pattern: never shown)."""
    extra = error.extra if isinstance(error.extra, list) else []
    keys = [str(item["key"]) for item in extra if isinstance(item, dict) and item.get("key")]
    missing = _MISSING.match(str(error.detail))
    if missing is not None and not keys:
        keys = [missing.group(2)]
    details: list[str] = []
    names: list[str] = []
    for key in keys:
        found = _parameter(request, key)
        if found is None:
            # Not a declared parameter (a body field, say): its name and Litestar's message
            # without any pattern it quotes.
            item = next((i for i in extra if isinstance(i, dict) and i.get("key") == key), {})
            message = _PATTERN_QUOTE.sub("", str(item.get("message", "missing or invalid")))
            names.append(_wire_name(item) if item else key)
            details.append(f"{names[-1]}: {message}")
            continue
        wire, words, given = found
        names.append(wire)
        details.append(invalid_parameter(wire, words, given).detail)
    if not details:
        return None, _PATTERN_QUOTE.sub("", str(error.detail))
    return names[0], "; ".join(details)


_PATTERN_QUOTE: Final = re.compile(r" matching regex '.*?'(?=$|;| - )")


def http_error(request: AnyRequest, error: HTTPException) -> Response[bytes]:
    """Litestar's own errors (unknown route, method, a parameter it refuses) as problems."""
    status = error.status_code
    field: str | None = None
    detail = str(error.detail)
    if isinstance(error, ValidationException):
        slug = "invalid-parameter"
        field, detail = _invalid_parameters(request, error)
        log.info("input_validation_fail", field=field, detail=detail)
    elif isinstance(error, NotFoundException):
        slug = "not-found"
        detail = f"no route {request.url.path}" if detail == "Not Found" else detail
    else:
        slug = http_slug(status)
    problem = new_problem(
        slug, detail, request.url.path, field=field, request_id=_request_id(request)
    )
    return _problem_response(problem, headers=dict(error.headers or {}))


def unexpected_error(request: AnyRequest, error: Exception) -> Response[bytes]:
    """Anything else: a 500 problem, and the traceback in the log, never in the answer."""
    log.error("unhandled_error", error_type=type(error).__name__, exc_info=error)
    return _problem_response(
        new_problem(
            "internal",
            "the server failed to answer; the request id identifies it in the logs",
            request.url.path,
            request_id=_request_id(request),
        )
    )


def database_unavailable(request: AnyRequest, error: Exception) -> Response[bytes]:
    """A read whose connection broke, or could not be had, while PostgreSQL was down or
    recovering, or whose statement timed out (``FRONTLINE_DB_TIMEOUT``: a database that
    stopped answering): 503, as ``/ready`` says then, never a 500; the client may retry.
    (Appends translate these errors in the store; reads let them rise to here.)"""
    log.warning("database_unavailable", error_type=type(error).__name__)
    unavailable = NotReady(f"the database is unavailable: {type(error).__name__}")
    return frontline_error(request, unavailable)


#: The driver's errors for a database that is down: the store's UNAVAILABLE, one rule for
#: reads, appends, the key check and /ready. It holds plain ``OSError``: asyncpg's connect
#: fails with one when the server is gone (``FileNotFoundError`` on a Unix socket,
#: ``EHOSTUNREACH``, ``socket.gaierror``, asyncio's "Multiple exceptions" ``OSError``), and
#: ``ConnectionError`` and ``TimeoutError`` (a statement nobody answered) are ``OSError``s.
#: No handler reads files (the static router answers a missing one with 404), so an
#: ``OSError`` reaching here comes from the database.
DATABASE_DOWN: Final[tuple[type[Exception], ...]] = UNAVAILABLE

EXCEPTION_HANDLERS: Final[dict[int | type[Exception], Any]] = {
    FrontlineError: frontline_error,
    **dict.fromkeys(DATABASE_DOWN, database_unavailable),
    HTTPException: http_error,
    Exception: unexpected_error,
}
