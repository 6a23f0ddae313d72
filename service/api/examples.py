"""An example answer for every operation of the OpenAPI document.

The examples are answers the service gave (``examples.json``): the demo seed imported, then
one request per operation, each list cut to its first two items and each text answer to its
first lines. ``tests/api/test_openapi_examples.py`` checks that every operation has one for
every media type of its success answer, that each fits the document's schema, and that the
service still answers those requests in that shape; ``make openapi-examples`` captures them
again (after a change of an answer's shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.openapi.spec import Example, OpenAPIResponse

EXAMPLES_FILE: Final = Path(str(resources.files("service.api") / "examples.json"))


def load_examples() -> dict[str, dict[str, Any]]:
    """By operation id: ``request`` (what was asked) and ``answers`` (status, then media type,
    then the answer)."""
    examples: dict[str, dict[str, Any]] = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return examples


def add_examples(app: Litestar) -> None:
    """Put each operation's example answers in the document, under their status and media
    type, named by the request that gave them."""
    examples = load_examples()
    for item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "post"):
            operation = getattr(item, method, None)
            if operation is None or operation.operation_id not in examples:
                continue
            given = examples[operation.operation_id]
            for status, media_types in given["answers"].items():
                response = (operation.responses or {}).get(status)
                if not isinstance(response, OpenAPIResponse) or not response.content:
                    continue
                for media, value in media_types.items():
                    content = response.content.get(media)
                    if content is None:
                        continue
                    content.examples = {
                        "example": RawExample(summary=given["request"], value=value),
                    }


@dataclass
class RawExample(Example):
    """An example written out as given: Litestar's own drops every null inside ``value``
    (``"before": null`` of a change), which the schema requires."""

    def to_schema(self) -> dict[str, Any]:
        return {"summary": self.summary, "value": self.value}
