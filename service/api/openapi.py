"""OpenAPI: the event contract's JSON Schema from msgspec, and the documented request bodies.

POST /v1/events reads its body itself (one event, a batch, or an NDJSON stream), so Litestar
cannot infer the body's schema; the schemas come from the contract structs instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.openapi.spec.enums import OpenAPIType

from contracts.events import (
    Batch,
    Event,
    PlaceMerge,
    PlaceUnmerge,
    SideRegistration,
    SideRegistrations,
    SourceRegistration,
    SourceRegistrations,
)
from contracts.problems import CATALOGUE, TYPE_BASE, catalogue_markdown
from contracts.responses import EventPage
from service.api.access import route_access
from service.api.map import DOCS_ASSETS, REDOC, SWAGGER_UI
from service.domain.time import INSTANT_PATTERN
from service.query import MAX_POSITION

REF: Final = "#/components/schemas/{name}"
NO_FAVICON: Final = "<link rel='icon' href='data:,'>"
"""No favicon (Litestar's default is fetched from a CDN)."""


@dataclass
class RawSchema(Schema):
    """A JSON Schema written out as given (msgspec's output), inside Litestar's spec."""

    raw: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return self.raw


def contract_components() -> dict[str, Schema]:
    """Schemas of the wire contract: every event kind, the Event union, the Batch."""
    (event_schema, batch_schema, *_), components = msgspec.json.schema_components(
        (
            Event,
            Batch,
            SideRegistration,
            SideRegistrations,
            SourceRegistration,
            SourceRegistrations,
            PlaceMerge,
            PlaceUnmerge,
        ),
        ref_template=REF,
    )
    _instants(components)
    schemas: dict[str, Schema] = {name: RawSchema(raw=s) for name, s in components.items()}
    schemas["Event"] = RawSchema(
        raw={**event_schema, "description": "Any event of wire contract v1, told apart by `type`."}
    )
    # Batch is a Struct, so msgspec put it in the components already and `batch_schema` is
    # just a reference to it: storing that reference as "Batch" made Batch refer to itself.
    assert batch_schema == {"$ref": REF.format(name="Batch")}
    return schemas


def _instants(components: dict[str, Any]) -> None:
    """State the times a client may send (``service.domain.records.prepare_event`` refuses
    any other): the contract's fields are plain strings, so that events stored before this
    rule still decode."""
    for struct, name in (("Occurred", "start"), ("Occurred", "end"), ("Source", "published_at")):
        schema = components[struct]["properties"][name]
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch["pattern"] = INSTANT_PATTERN
                branch.pop("minLength", None)


@dataclass
class SidesOperation(Operation):
    """POST /v1/sides: one side's entry, or a registry file."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "One side's whole entry (`side`, `name`, `kind`, `colour`, `aliases`, and "
                'optionally `expect`), or a registry file `{"sides": [...]}` written as one '
                "atomic commit."
            ),
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            Reference(ref=REF.format(name="SideRegistration")),
                            Reference(ref=REF.format(name="SideRegistrations")),
                        ]
                    )
                )
            },
        )


@dataclass
class SourcesOperation(Operation):
    """POST /v1/sources: one source's entry, or a registry file."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "One source's whole entry (`source`, `reliability`, `alignment`, `aliases`, "
                '`url`, and optionally `expect`), or a registry file `{"sources": [...]}` '
                "written as one atomic commit."
            ),
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            Reference(ref=REF.format(name="SourceRegistration")),
                            Reference(ref=REF.format(name="SourceRegistrations")),
                        ]
                    )
                )
            },
        )


@dataclass
class PlaceMergeOperation(Operation):
    """POST /v1/places/{id}/merges: the place to merge into this one."""

    def __post_init__(self) -> None:
        self.request_body = _json_body(
            "PlaceMerge",
            "The place to merge into this one (`merged`), and optionally `notes`, the "
            "merge's event `id` and `expect` (the version of its stream `place:<merged>`).",
        )


@dataclass
class PlaceUnmergeOperation(Operation):
    """POST /v1/places/{id}/unmerges: the place to take out of this one again."""

    def __post_init__(self) -> None:
        self.request_body = _json_body(
            "PlaceUnmerge",
            "The place merged into this one whose merge is retracted (`merged`), optionally "
            "the merge's event id (`retracts`), `notes`, the retraction's `id` and `expect`.",
        )


def _json_body(name: str, description: str) -> RequestBody:
    """A required JSON body of the contract's schema ``name``."""
    return RequestBody(
        required=True,
        description=description,
        content={"application/json": OpenAPIMediaType(schema=Reference(ref=REF.format(name=name)))},
    )


@dataclass
class IngestOperation(Operation):
    """POST /v1/events: its three bodies."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                'One event, or an atomic batch `{"events": [...], "expect": [...]}`; '
                "or, as `application/x-ndjson`, a bulk import of one event per line."
            ),
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            Reference(ref=REF.format(name="Event")),
                            Reference(ref=REF.format(name="Batch")),
                        ]
                    )
                ),
                "application/x-ndjson": OpenAPIMediaType(
                    schema=Schema(
                        description="One Event object per line; blank lines are skipped.",
                    )
                ),
            },
        )


TAGS: Final = {
    "events": "The log: append one event, a batch, an NDJSON stream or a source file; replay "
    "it; follow it live.",
    "front": "The front derived from the log: state at a valid time as known at a position, "
    "areas, changes, disputes, places.",
    "audit": "Proof that the log was not altered: the signed head, verification, exports.",
    "registries": "Which names are one side or one source, and how a source is graded: the "
    "side and source registries as known at a position, and their edits.",
    "admin": "Rebuilding the projections.",
    "operations": "Liveness, readiness and metrics.",
}
"""Every operation's tags are among these (tests/api/test_openapi_document.py)."""


def openapi_config(version: str) -> OpenAPIConfig:
    """Litestar's OpenAPI at /schema, with the contract's schemas."""
    return OpenAPIConfig(
        title="Frontline",
        version=version,
        description=(
            "Event-sourced conflict database: an append-only log of reported changes on the "
            "ground. Errors are RFC 9457 problem details (application/problem+json) whose "
            f"`type` is `{TYPE_BASE}` followed by one of these slugs (the catalogue, "
            "`contracts/problems.py`; a type never changes meaning):\n\n" + catalogue_markdown()
        ),
        path="/schema",
        tags=[Tag(name=name, description=text) for name, text in TAGS.items()],
        # Served offline: the vendored Swagger UI and ReDoc (service/api/static/vendor), no
        # favicon or font from a CDN. /schema is ReDoc; the JSON document /schema/openapi.json.
        render_plugins=[
            RedocRenderPlugin(
                path="/redoc",
                js_url=f"{DOCS_ASSETS}/{REDOC}/redoc.standalone.js",
                google_fonts=False,
                favicon=NO_FAVICON,
            ),
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=f"{DOCS_ASSETS}/{SWAGGER_UI}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/{SWAGGER_UI}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/{SWAGGER_UI}/swagger-ui-standalone-preset.js",
                favicon=NO_FAVICON,
            ),
            JsonRenderPlugin(),
        ],
    )


def add_problem_catalogue(app: Litestar) -> None:
    """State the problem types in ``components.schemas.Problem``: ``type`` is one of the
    catalogue's (an enum of their URIs)."""
    schemas = app.openapi_schema.components.schemas or {}
    problem = schemas.get("Problem")
    assert isinstance(problem, Schema)
    assert problem.properties is not None
    kind = problem.properties["type"]
    assert isinstance(kind, Schema)
    kind.enum = [TYPE_BASE + slug for slug in CATALOGUE]
    kind.description = "The problem's type: one of the catalogue's (see the description above)."


def add_contract_schemas(app: Litestar) -> None:
    """Add the contract's schemas to the app's OpenAPI document.

    Litestar writes ``components.schemas`` from the types its handlers declare, replacing any
    given in the config; the contract's types are not declared by a handler (the ingest
    handler reads its body itself), so they are added to the built document, once.
    """
    document = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas.update(contract_components())


_ACCESS_ANSWERS: Final = {
    "401": "No API key, or an unknown or revoked one (`Authorization: Bearer <key>`).",
    "403": "The key's role may not use this route.",
    "429": (
        "Over a rate limit: `FRONTLINE_RATE_LIMIT` a minute for a key, "
        "`FRONTLINE_ANONYMOUS_RATE_LIMIT` a minute for an address without a valid key "
        "(see `Retry-After`)."
    ),
}

#: What the server's connection guard (``service/server.py``) answers before any route.
_SERVER_ANSWERS: Final = {
    "408": "The request head did not arrive within `FRONTLINE_HEADER_TIMEOUT` seconds.",
    "414": "The request line is over `FRONTLINE_MAX_HEADER_LINE` bytes.",
    "431": (
        "The request head is over `FRONTLINE_MAX_HEADER_BYTES` bytes, or a header line over "
        "`FRONTLINE_MAX_HEADER_LINE`."
    ),
}


def add_access(app: Litestar) -> None:
    """Document the key check (``service/api/access.py``): a bearer scheme, and on every
    operation that needs a key, the security requirement and its 401, 403 and 429; and on
    every operation, what the connection guard answers before routing (408, 414, 431)."""
    document = app.openapi_schema
    document.components.security_schemes = {
        "bearer": SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key from `frontline keys create` (see the README's table).",
        )
    }
    problem = {
        "application/problem+json": OpenAPIMediaType(schema=Reference(REF.format(name="Problem")))
    }
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            answers = dict(_SERVER_ANSWERS)
            if route_access(method.upper(), path) != "open":
                operation.security = [{"bearer": []}]
                answers.update(_ACCESS_ANSWERS)
            for status, description in answers.items():
                responses.setdefault(
                    status, OpenAPIResponse(description=description, content=problem)
                )
            operation.responses = responses


NDJSON: Final = "application/x-ndjson"
_TEXT: Final = {"type": "string"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


#: The media types each streaming or multi-format answer really has (Litestar documents
#: them all as application/json, from the handlers' return types).
_ANSWERS: Final[dict[tuple[str, str], dict[str, dict[str, Any]]]] = {
    ("get", "/v1/events"): {
        "application/json": _ref("EventPage"),
        NDJSON: {
            **_TEXT,
            "description": "With `Accept: application/x-ndjson`: one stored event per line.",
        },
    },
    ("get", "/v1/events/stream"): {
        "text/event-stream": {
            "description": "Server-Sent Events (the default): each message's `id` is the "
            "event's position, `event` is `event`, `data` the stored event's JSON; heartbeats "
            "are comments.",
            "type": "object",
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "event": {"const": "event"},
                "data": {"type": "string", "contentMediaType": "application/json"},
            },
            "required": ["id", "event", "data"],
        },
        NDJSON: {**_TEXT, "description": "With `Accept: application/x-ndjson`."},
    },
    ("get", "/v1/state"): {
        "application/json": _ref("StatePage"),
        "application/geo+json": _ref("GeoState"),
        "text/csv": {**_TEXT, "description": "With `format=csv`: RFC 4180 CSV."},
    },
    ("get", "/v1/export"): {
        NDJSON: {**_TEXT, "description": "`format=ndjson` (the default)."},
        "text/csv": {**_TEXT, "description": "`format=csv`."},
    },
}


NOT_MODIFIED: Final = OpenAPIResponse(
    description=(
        "`If-None-Match` names this answer's `ETag` (service/api/caching.py): no body. Every "
        "read answer carries an `ETag` (naming the format version, the policy and the content "
        "coding) and a `Cache-Control` (`immutable` when pinned to `known_at=position:N` at "
        "or below the head)."
    )
)


_STRING: Final = Schema(type=OpenAPIType.STRING)
READ_HEADERS: Final = {
    "ETag": OpenAPIHeader(
        schema=_STRING,
        description="The answer's tag (format version, policy, content coding): send it back "
        "as `If-None-Match` for a 304.",
    ),
    "Cache-Control": OpenAPIHeader(
        schema=_STRING,
        description="`public` when the read needed no key, `private` when it did; then "
        "`max-age=31536000, immutable` when pinned to `known_at=position:N` at or below the "
        "projections' position, `no-cache` (stored, checked again) otherwise.",
    ),
}
"""The headers every read answer carries (service/api/caching.py)."""
LINK_HEADER: Final = OpenAPIHeader(
    schema=_STRING,
    description='`<next>; rel="next"` (RFC 8288) when there is a next page; the body\'s `next` '
    "says the same.",
)
"""The header of every paginated answer (service/api/pages.py)."""


def refine(app: Litestar, max_page: int) -> None:
    """Make the document say exactly what the service does (schemathesis checks it):

    * the media types of the NDJSON, SSE, GeoJSON and CSV answers (:data:`_ANSWERS`);
    * a 304 on every read (``If-None-Match``, service/api/caching.py), and the ``ETag`` and
      ``Cache-Control`` headers of its 200 (``Link`` too on the paginated ones);
    * every ``limit`` at most ``max_page`` (FRONTLINE_MAX_PAGE; the handlers refuse more);
    * position bounds as the integers 0 and 2**63 - 1: Litestar writes ``le`` of a plain
      ``int`` parameter as a float, 9.223372036854776e18, which is more than a bigint
      holds, and leaves out ``ge=0`` of an optional one.
    """
    document = app.openapi_schema
    schemas = document.components.schemas
    assert schemas is not None  # add_contract_schemas ran first
    (_,), extra = msgspec.json.schema_components((EventPage,), ref_template=REF)
    for name, schema in extra.items():
        schemas.setdefault(name, RawSchema(raw=schema))
    for path, item in (document.paths or {}).items():
        for method in ("get", "post"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            for parameter in operation.parameters or []:
                schema = getattr(parameter, "schema", None)
                if not isinstance(schema, Schema):
                    continue
                if parameter.name == "limit":
                    schema.maximum = max_page
                if isinstance(schema.maximum, float) and schema.maximum >= MAX_POSITION:
                    schema.maximum = MAX_POSITION
                if isinstance(schema.minimum, float) and schema.minimum.is_integer():
                    schema.minimum = int(schema.minimum)
                if schema.minimum is None and schema.maximum == MAX_POSITION:
                    # Litestar drops `ge=0` of an optional int (0 is falsy); every position
                    # parameter of this API is declared with ge=0 or more.
                    schema.minimum = 0
            if method == "get" and path.startswith("/v1/") and path != "/v1/events/stream":
                operation.responses.setdefault("304", NOT_MODIFIED)
                ok = operation.responses.get("200")
                if isinstance(ok, OpenAPIResponse):
                    paged = any(
                        getattr(p, "name", None) == "cursor" for p in operation.parameters or []
                    )
                    ok.headers = {
                        **(ok.headers or {}),
                        **READ_HEADERS,
                        **({"Link": LINK_HEADER} if paged else {}),
                    }
            answers = _ANSWERS.get((method, path))
            if answers is not None:
                ok = operation.responses["200"]
                assert isinstance(ok, OpenAPIResponse)
                ok.content = {
                    media: OpenAPIMediaType(schema=RawSchema(raw=schema))
                    for media, schema in answers.items()
                }
