"""POST /v1/imports: a file in a format conflict researchers use (ACLED, UCDP GED, PLOVER)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import QueryParameter

from contracts.responses import ImportResult
from service.api import parameters as params
from service.api.deps import AnyRequest, ServicesDep, is_multipart, read_upload
from service.api.deps import read_limited as _read_limited
from service.api.deps import submitter_of as _submitter
from service.api.problems import problem_spec
from service.errors import UnreadableFile
from service.interop.formats import READERS, read_all
from service.usecases.ingest import import_rows


@dataclass
class ImportOperation(Operation):
    """POST /v1/imports: the file itself is the body, or the ``file`` part of a
    ``multipart/form-data`` upload."""

    def __post_init__(self) -> None:
        raw = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        self.request_body = RequestBody(
            required=True,
            description=(
                "The file in the format `format` names, as it is (UTF-8); or a "
                "`multipart/form-data` upload whose one part, `file`, is the file "
                "(`curl -F file=@acled.csv`)."
            ),
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={"file": raw},
                        required=["file"],
                        additional_properties=False,
                    )
                ),
                "text/csv": OpenAPIMediaType(schema=raw),
                "application/json": OpenAPIMediaType(schema=raw),
                "application/x-ndjson": OpenAPIMediaType(schema=raw),
            },
        )


class ImportsController(Controller):
    """Imports of source files, mapped to events."""

    path = "/v1/imports"
    tags = ["events"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @post(
        "/",
        operation_id="importFile",
        summary="Import a source file (ACLED, UCDP GED, PLOVER)",
        description=(
            "The file is the body; `format` names its format. Each record is mapped to "
            "events (docs/interop.md), its place matched by name, alias and distance, and "
            "committed in chunks. Answered with counts (`accepted` and `duplicate` count "
            "events, `rejected` and `flagged` count records) and, for each rejected or "
            "flagged record, its line, the source's own id and the reason: 201 when it stored "
            "anything new, else 200. Event ids derive from the source's ids: importing the "
            "same file again stores nothing new (200)."
        ),
        operation_class=ImportOperation,
        status_code=201,
        responses={
            200: ResponseSpec(
                ImportResult,
                description="Nothing new stored (every event already was, or "
                "every record was rejected).",
            ),
            400: problem_spec(
                "A `multipart/form-data` upload without a boundary, with a broken part, or "
                "without exactly one part named `file` (`bad-upload`)."
            ),
            413: problem_spec("The file is over `FRONTLINE_MAX_IMPORT` bytes."),
            422: problem_spec("Unknown `format`, or the file cannot be read in it."),
            503: problem_spec("The database is unavailable."),
        },
    )
    async def import_file(
        self,
        request: AnyRequest,
        services: ServicesDep,
        format_: Annotated[
            str,
            QueryParameter(
                name="format",
                description="The file's format: " + ", ".join(f"`{f}`" for f in READERS) + ".",
                pattern=params.words_pattern(tuple(READERS)),
            ),
        ],
    ) -> Response[ImportResult]:
        """Import one file."""
        params.one_of(format_, tuple(READERS), "format")
        limit = services.settings.max_import_bytes
        if is_multipart(request):
            data = await read_upload(request, limit)
        else:
            data = await _read_limited(request, limit)
        try:
            # Read whole before anything is stored: an unreadable file stores nothing. In a
            # thread (the reader is pure), so the loop keeps serving while a big file parses.
            rows = await asyncio.to_thread(read_all, format_, data)
        except ValueError as error:
            raise UnreadableFile(f"not a readable {format_} file: {error}", field="body") from None
        result = await import_rows(
            services.store,
            rows,
            chunk_size=services.settings.import_chunk,
            submitter=_submitter(request),
            max_errors=services.settings.import_max_errors,
        )
        return Response(result, status_code=201 if result.accepted else 200)
