"""The problem catalogue: every ``type`` of RFC 9457 problem Frontline answers with, in one
place, with its status, its title and when it is answered.

A problem's ``type`` is ``TYPE_BASE`` followed by its slug (``.../problems/invalid-parameter``)
and never changes meaning: a client may branch on it. ``service.api.problems`` maps every
error class and every error of the web framework to one of these, the connection guard
(``service.server``) answers with the four it owns, the OpenAPI document lists them all
(``components.schemas.Problem`` and the document's description), and so does the README
(``tests/unit/test_problem_map.py`` checks that every type the code can answer with is here,
and ``tests/api/test_problem_catalogue.py`` that the document and the README list them).
"""

from __future__ import annotations

from typing import Final, NamedTuple

TYPE_BASE: Final = "https://frontline.dev/problems/"
"""Every problem type is this followed by a slug of :data:`CATALOGUE`."""


class ProblemType(NamedTuple):
    """One kind of problem: its slug (the end of its ``type``), status, title and when."""

    slug: str
    status: int
    title: str
    when: str


_TYPES: Final = (
    ProblemType(
        "malformed-body",
        400,
        "The body cannot be parsed",
        "a JSON body that is not JSON (or not UTF-8), or a batch that is not an object",
    ),
    ProblemType(
        "nested-too-deeply",
        400,
        "The JSON nests too deeply",
        "a JSON body nesting arrays or objects more than 32 deep",
    ),
    ProblemType(
        "bad-upload",
        400,
        "The multipart upload cannot be read",
        "a `multipart/form-data` upload to `POST /v1/imports` without a boundary, with a "
        "broken part, or without exactly one part named `file`",
    ),
    ProblemType(
        "bad-request",
        400,
        "Bad request",
        "a request the server cannot read that no more specific type describes",
    ),
    ProblemType(
        "unauthorized",
        401,
        "An API key is required",
        "no API key, or an unknown or revoked one (with a `WWW-Authenticate: Bearer` challenge)",
    ),
    ProblemType(
        "forbidden",
        403,
        "This key's role may not do this",
        "a key whose role lacks the access the route needs",
    ),
    ProblemType(
        "not-the-source",
        403,
        "Only the source that made an event may withdraw it",
        "a `retracts`, `corrects` or `supersedes` link to an event another source made or "
        "another key appended (`field` names the link, `id` the event)",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "no such route (answered before the key check), event, place or signing key",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "a route that exists, asked with a method it does not take (`Allow` lists those it "
        "takes; answered before the key check)",
    ),
    ProblemType(
        "request-timeout",
        408,
        "Request timeout",
        "the request head did not arrive within `FRONTLINE_HEADER_TIMEOUT` seconds (the "
        "connection closes)",
    ),
    ProblemType(
        "wrong-expected-version",
        409,
        "A place is not at the expected version",
        "an `expect` precondition that does not hold (`place`, `expected`, `actual`); nothing "
        "written",
    ),
    ProblemType(
        "alias-taken",
        409,
        "The name already means another side or source",
        "a registry edit (`POST /v1/sides`, `POST /v1/sources`) giving a side or source a "
        "name (an id or an alias) that another side or source holds; `field` names it; "
        "nothing written",
    ),
    ProblemType(
        "merge-refused",
        409,
        "The merge or unmerge does not fit the merges in force",
        "`POST /v1/places/{id}/merges` or `/unmerges` against the place registry as the log "
        "holds it: a place already merged, a merge into a merged place or of a place others "
        "are merged into (no chains, no cycles), or an unmerge of a merge not in force; "
        "`field` names the member; nothing written",
    ),
    ProblemType(
        "rebuild-under-way",
        409,
        "A rebuild of the projections is under way",
        "a rebuild asked for while one runs",
    ),
    ProblemType(
        "body-too-large",
        413,
        "The body is too large",
        "a JSON body over `FRONTLINE_MAX_BODY`, a file to import over `FRONTLINE_MAX_IMPORT`",
    ),
    ProblemType(
        "uri-too-long",
        414,
        "URI too long",
        "a request line over `FRONTLINE_MAX_HEADER_LINE` bytes (the connection closes)",
    ),
    ProblemType(
        "id-conflict",
        422,
        "The event id is already used",
        "an event id (or an `Idempotency-Key`) already stored with other content (`id`)",
    ),
    ProblemType(
        "invalid-event",
        422,
        "The event breaks the contract",
        "an event that breaks the wire contract, or a batch over `FRONTLINE_MAX_BATCH` "
        "(`field` names the field, such as `occurred.start` or `events[2].type`)",
    ),
    ProblemType(
        "invalid-parameter",
        422,
        "A request parameter is invalid",
        "a query, path or header parameter that is missing or not in its format; `field` "
        "names it and `detail` says the format expected and the value given",
    ),
    ProblemType(
        "unknown-parameter",
        422,
        "Unknown query parameter",
        "a query parameter the route does not take (a misspelt filter is never ignored); "
        "`field` names the first, `detail` all of them and those the route takes",
    ),
    ProblemType(
        "unreadable-file",
        422,
        "The file cannot be read in its format",
        "a file `POST /v1/imports` cannot read as a whole in the `format` named",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "over `FRONTLINE_RATE_LIMIT` (a key) or `FRONTLINE_ANONYMOUS_RATE_LIMIT` (an address "
        "without a valid key) requests a minute (`Retry-After`)",
    ),
    ProblemType(
        "too-many-streams",
        429,
        "Too many live streams for this key",
        "a key holding `FRONTLINE_STREAMS_PER_KEY` live streams (`Retry-After`)",
    ),
    ProblemType(
        "header-too-large",
        431,
        "Header too large",
        "a request head over `FRONTLINE_MAX_HEADER_BYTES`, or a header line over "
        "`FRONTLINE_MAX_HEADER_LINE` (the connection closes)",
    ),
    ProblemType(
        "internal",
        500,
        "Internal error",
        "a failure no check foresaw; `request_id` finds it in the log",
    ),
    ProblemType(
        "write-refused",
        500,
        "The database refused the write",
        "the database refused a write no check foresaw; nothing of it stored",
    ),
    ProblemType(
        "import-stopped",
        500,
        "The import stopped before its end",
        "an import that failed part-way: `through_line` and `result` say what it stored",
    ),
    ProblemType(
        "rebuild-failed",
        500,
        "The rebuild failed; the served rows are untouched",
        "a rebuild that failed for a reason that does not pass",
    ),
    ProblemType(
        "unavailable",
        503,
        "The database is unavailable",
        "the database is unreachable, not migrated or too slow (`FRONTLINE_DB_TIMEOUT`); "
        "`/ready` also while the projections lag the log",
    ),
    ProblemType(
        "import-stopped-unavailable",
        503,
        "The import stopped: the database is unavailable",
        "an import stopped by the database: `through_line` and `result` say what it stored",
    ),
    ProblemType(
        "rebuild-interrupted",
        503,
        "The rebuild was interrupted by a passing condition; the served rows are untouched",
        "a rebuild stopped by a condition that passes (`Retry-After`)",
    ),
    ProblemType(
        "streams-busy",
        503,
        "Too many live streams without a key",
        "`FRONTLINE_ANONYMOUS_STREAMS` live streams without a key are open (`Retry-After`)",
    ),
    ProblemType(
        "server-busy",
        503,
        "Server busy",
        "every one of `FRONTLINE_MAX_CONNECTIONS` connections is busy with a request",
    ),
)

CATALOGUE: Final[dict[str, ProblemType]] = {kind.slug: kind for kind in _TYPES}
"""Every problem type by its slug, in status order."""


def problem_type(slug: str) -> str:
    """The ``type`` URI of the problem ``slug`` (KeyError for a slug not in the catalogue)."""
    return TYPE_BASE + CATALOGUE[slug].slug


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (the OpenAPI document's description holds it)."""
    rows = [f"| `{k.slug}` | {k.status} | {k.when} |" for k in _TYPES]
    return "\n".join(["| type | status | when |", "| --- | --- | --- |", *rows])
