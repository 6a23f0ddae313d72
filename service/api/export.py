"""GET /v1/export: the log up to a known position, reproducibly (same bytes, same ETag)."""

from __future__ import annotations

from typing import Annotated, Final

from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream

from service.api import parameters as params
from service.api.caching import PINNABLE
from service.api.deps import ServicesDep
from service.api.etags import etag_matches, log_etag
from service.api.parameters import KnownAt
from service.api.problems import problem_spec
from service.usecases.export import LOG_FORMATS, log_at, log_chunks

#: Litestar adds ``; charset=utf-8`` to every ``text/`` type itself.
MEDIA: Final = {"ndjson": "application/x-ndjson", "csv": "text/csv", "acled": "text/csv"}
#: The file name's extension per format.
EXTENSION: Final = {"ndjson": "ndjson", "csv": "csv", "acled": "acled.csv"}


class ExportController(Controller):
    """Reproducible exports of the log."""

    tags = ["audit"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @get(
        "/v1/export",
        operation_id="exportLog",
        summary="The log up to a known position, reproducibly",
        description=(
            "Every event up to the commit `known_at` names (a timestamp or `position:N`; "
            "default the latest), in position order: as NDJSON (one stored event per line, "
            "as `GET /v1/events` replays them) or as RFC 4180 CSV (position, id, place, "
            "place_version, type, valid_from, valid_to, recorded_at, commit_position, "
            "source, reliability, alignment, side, opponent, hedge, credibility, killed, "
            "hash, payload), or ACLED-shaped CSV (`format=acled`: ACLED's 31 columns, then "
            "frontline_id, position, type, place_id, recorded_at; docs/interop.md). "
            "The same question gives the same bytes; the `ETag` is derived "
            "from the format, the position and its chain hash, so it is known before the "
            "body is read (`If-None-Match`: 304)."
        ),
        responses={
            304: ResponseSpec(None, description="`If-None-Match` names this export's ETag."),
            422: problem_spec("A query parameter is invalid; `field` names it."),
        },
        opt=PINNABLE,
    )
    async def export(
        self,
        services: ServicesDep,
        known_at: KnownAt = None,
        format_: Annotated[
            str,
            QueryParameter(
                name="format",
                description="`ndjson` (default), `csv` or `acled`.",
                pattern=params.words_pattern(LOG_FORMATS),
            ),
        ] = "ndjson",
        if_none_match: Annotated[
            str | None,
            HeaderParameter(name="if-none-match", description="ETags the client holds."),
        ] = None,
    ) -> Stream | Response[bytes]:
        """The export, streamed."""
        fmt = params.one_of(format_, LOG_FORMATS, "format") or "ndjson"
        position, chain_hash = await log_at(services.front, params.known_at(known_at))
        etag = log_etag(fmt, position, chain_hash)
        filename = f"frontline-log-{position}.{EXTENSION[fmt]}"
        headers = {
            "etag": etag,
            "content-disposition": f'attachment; filename="{filename}"',
            "x-frontline-position": str(position),
        }
        if etag_matches(if_none_match, etag):
            return Response(b"", status_code=304, headers=headers)
        return Stream(
            log_chunks(services.log, position, fmt), media_type=MEDIA[fmt], headers=headers
        )
