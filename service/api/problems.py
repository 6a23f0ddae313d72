"""Errors meet HTTP here, and only here: each error class to one RFC 9457 answer."""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import structlog
from litestar import Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Send

from contracts.responses import Problem
from service.api.deps import AnyRequest
from service.api.errors import BodyTooLarge, Forbidden, RateLimited, Unauthorized
from service.domain.errors import (
    FrontlineError,
    IdConflict,
    InvalidEvent,
    MalformedBody,
    NestedTooDeep,
    NotTheSource,
    WrongExpectedVersion,
)
from service.domain.registry import AliasTaken
from service.errors import (
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
    UnreadableFile,
    WriteRefused,
)
from service.store.events import UNAVAILABLE

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
TYPE_BASE: Final = "https://frontline.dev/problems/"

#: (status, type slug, title) per error class; the most specific class listed wins.
PROBLEMS: Final[dict[type[FrontlineError], tuple[int, str, str]]] = {
    NestedTooDeep: (400, "nested-too-deeply", "The JSON nests too deeply"),
    MalformedBody: (400, "malformed-body", "The body is not valid JSON"),
    Unauthorized: (401, "unauthorized", "An API key is required"),
    NotTheSource: (403, "not-the-source", "Only the source that made an event may withdraw it"),
    Forbidden: (403, "forbidden", "This key's role may not do this"),
    NotFound: (404, "not-found", "Not found"),
    WrongExpectedVersion: (409, "wrong-expected-version", "A place is not at the expected version"),
    AliasTaken: (409, "alias-taken", "The name already means another side or source"),
    RebuildUnderWay: (409, "rebuild-under-way", "A rebuild of the projections is under way"),
    TooManyStreams: (429, "too-many-streams", "Too many live streams for this key"),
    RateLimited: (429, "rate-limited", "Too many requests"),
    BodyTooLarge: (413, "body-too-large", "The body is too large"),
    IdConflict: (422, "id-conflict", "The event id is already used"),
    InvalidEvent: (422, "invalid-event", "The event breaks the contract"),
    InvalidParameter: (422, "invalid-parameter", "A query parameter is invalid"),
    UnreadableFile: (422, "unreadable-file", "The file cannot be read in its format"),
    WriteRefused: (500, "write-refused", "The database refused the write"),
    RebuildInterrupted: (
        503,
        "rebuild-interrupted",
        "The rebuild was interrupted by a passing condition; the served rows are untouched",
    ),
    RebuildFailed: (500, "rebuild-failed", "The rebuild failed; the served rows are untouched"),
    ImportStoppedUnavailable: (
        503,
        "import-stopped-unavailable",
        "The import stopped: the database is unavailable",
    ),
    ImportStopped: (500, "import-stopped", "The import stopped before its end"),
    NotReady: (503, "unavailable", "The database is unavailable"),
    StreamsBusy: (503, "streams-busy", "Too many live streams without a key"),
    FrontlineError: (400, "bad-request", "Bad request"),
}


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
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return _problem_response(problem, headers or None)


BEARER: Final = 'Bearer realm="frontline"'


def problem_of(error: FrontlineError, path: str, request_id: str | None) -> Problem:
    """The problem body of a domain or store error (also for code below Litestar)."""
    status, slug, title = next(spec for cls, spec in PROBLEMS.items() if isinstance(error, cls))
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
    return Problem(
        type=TYPE_BASE + slug,
        title=title,
        status=status,
        detail=error.detail,
        instance=path,
        field=error.field,
        request_id=request_id,
        **extra,  # type: ignore[arg-type]
    )


async def send_problem(send: Send, problem: Problem, error: FrontlineError) -> None:
    """Answer with a problem straight through ASGI (for code that runs before routing)."""
    body = msgspec.json.encode(problem)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if problem.status == 401:
        headers.append((b"www-authenticate", BEARER.encode()))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _wire_name(item: dict[str, object]) -> str:
    """A parameter's name as the client sent it (headers are spelled with hyphens)."""
    key = str(item.get("key")).removesuffix("_")
    return key.replace("_", "-") if item.get("source") == "header" else key


#: Litestar says which required parameter is missing only in its message (no ``extra``).
_MISSING: Final = re.compile(r"Missing required (?:query|header|path|cookie) parameter '([^']+)'")


def http_error(request: AnyRequest, error: HTTPException) -> Response[bytes]:
    """Litestar's own errors (unknown route, bad query parameter, method) as problems."""
    status = error.status_code
    field: str | None = None
    detail = str(error.detail)
    if isinstance(error, ValidationException):
        status = 422
        extra = error.extra if isinstance(error.extra, list) else []
        # Litestar names a parameter by its Python name; ``from_`` and ``format_`` (Python
        # keywords and builtins, with the usual trailing underscore) are ``from`` and
        # ``format`` on the wire.
        keys = [_wire_name(item) for item in extra if isinstance(item, dict) and item.get("key")]
        missing = _MISSING.match(detail)
        field = keys[0] if keys else missing.group(1) if missing else None
        messages = [str(item.get("message")) for item in extra if isinstance(item, dict)]
        detail = "; ".join(f"{k}: {m}" for k, m in zip(keys, messages, strict=False)) or detail
        log.info("input_validation_fail", field=field, detail=detail)
    slug = "not-found" if isinstance(error, NotFoundException) else f"http-{status}"
    return _problem_response(
        Problem(
            type=TYPE_BASE + slug,
            title=error.detail if status != 422 else "A request parameter is invalid",
            status=status,
            detail=detail,
            instance=request.url.path,
            field=field,
            request_id=_request_id(request),
        ),
        headers=dict(error.headers or {}),
    )


def unexpected_error(request: AnyRequest, error: Exception) -> Response[bytes]:
    """Anything else: a 500 problem, and the traceback in the log, never in the answer."""
    log.error("unhandled_error", error_type=type(error).__name__, exc_info=error)
    return _problem_response(
        Problem(
            type=TYPE_BASE + "internal",
            title="Internal error",
            status=HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the server failed to answer; the request id identifies it in the logs",
            instance=request.url.path,
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
