"""What handlers are given and share: the services (built by ``service.bootstrap``, asked
for as ``services: ServicesDep``), the request body read under a limit, and who sent a
request (the key's name, whether it is an admin's)."""

from __future__ import annotations

from typing import Any, Final

import multipart
from litestar import Request, Response
from litestar.di import NamedDependency

from contracts.responses import AppendResult, Receipt
from service.api.errors import BodyTooLarge
from service.bootstrap import Services as Services  # handlers' type, built by the bootstrap
from service.errors import BadUpload

AnyRequest = Request[Any, Any, Any]
"""A request, whatever its user, auth and state types."""

ServicesDep = NamedDependency[Services]
"""How a handler asks for the services."""


async def read_limited(request: AnyRequest, limit: int) -> bytes:
    """The request body, refused with BodyTooLarge (413) past ``limit`` bytes, declared or
    streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


MULTIPART: Final = "multipart/form-data"
UPLOAD_FIELD: Final = "file"
"""The one part of a ``multipart/form-data`` upload: the file (``curl -F file=@x.csv``)."""


def is_multipart(request: AnyRequest) -> bool:
    """Whether the body is a ``multipart/form-data`` upload."""
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == MULTIPART


async def read_upload(request: AnyRequest, limit: int) -> bytes:
    """The file of a ``multipart/form-data`` upload: its one part, named ``file``, streamed
    and refused with BodyTooLarge (413) past ``limit`` bytes (the same limit as the file
    sent as the body); BadUpload (400) when the upload has no boundary, a broken part, another
    part, or no ``file`` part."""
    _, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if not boundary:
        raise BadUpload("a multipart/form-data upload needs a boundary", field="content-type")
    parts: list[bytes] = []
    size = 0
    seen = 0
    try:
        with multipart.PushMultipartParser(boundary, max_segment_count=1) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        seen += 1
                        if event.name != UPLOAD_FIELD:
                            raise BadUpload(
                                f"the upload's part is named {event.name[:80]!r}; it must be "
                                f"one part named {UPLOAD_FIELD!r} (curl -F file=@events.csv)",
                                field=UPLOAD_FIELD,
                            )
                    elif event:
                        size += len(event)
                        if size > limit:
                            raise BodyTooLarge(f"the file exceeds the limit of {limit} bytes")
                        parts.append(bytes(event))
                if parser.closed:
                    break
    except multipart.ParserLimitReached:
        raise BadUpload(
            f"the upload holds more than one part; it takes one, named {UPLOAD_FIELD!r}",
            field=UPLOAD_FIELD,
        ) from None
    except multipart.MultipartError as error:
        raise BadUpload(
            f"the multipart/form-data upload is broken: {error}", field="body"
        ) from None
    if seen == 0:
        raise BadUpload(
            f"the upload holds no part named {UPLOAD_FIELD!r} (curl -F file=@events.csv)",
            field=UPLOAD_FIELD,
        )
    return b"".join(parts)


def submitter_of(request: AnyRequest) -> str | None:
    """The name of the key that sent the request (recorded with each event it appends)."""
    principal = getattr(request.state, "principal", None)
    return None if principal is None else str(principal.name)


def sent_by_admin(request: AnyRequest) -> bool:
    """Whether an admin key sent the request (it may withdraw events other keys appended)."""
    principal = getattr(request.state, "principal", None)
    return principal is not None and principal.role == "admin"


def appended(receipts: list[Receipt], *, location: bool = False) -> Response[Any]:
    """The answer to an append: 201 when anything was stored anew, 200 when every event was
    already stored. With ``location``, one event stored anew is a resource created, and
    ``Location`` names it (a batch's are in its receipts)."""
    created = any(not r.duplicate for r in receipts)
    headers = (
        {"location": f"/v1/events/{receipts[0].id}"}
        if location and created and len(receipts) == 1
        else None
    )
    return Response(
        AppendResult(receipts=receipts), status_code=201 if created else 200, headers=headers
    )
