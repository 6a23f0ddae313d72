"""Event ids derived from an ``Idempotency-Key`` (IETF draft-ietf-httpapi-idempotency-key-header).

A client that sends events without an ``id`` may send the header ``Idempotency-Key: "<key>"``
with ``POST /v1/events``: each event of the request without an ``id`` then gets the id
:func:`keyed_event_id` derives from the key and the event's index in the request (0 for a
single event; its index in ``events`` for a batch; its line number minus one for an NDJSON
import). A retry with the same key and the same body gets the original receipts; the same key
with other content is a 422, as for an id reused with other content. The derivation is
defined here, once, so that every client can compute the ids it will get.
"""

from __future__ import annotations

import uuid
from typing import Final

NAMESPACE: Final = uuid.UUID("6f9d3c2a-4b1e-5a7f-8c0d-2e4f6a8b0c1d")
"""The namespace of every keyed event id (a fixed UUID; never change it)."""

MAX_KEY_LENGTH: Final = 255
"""The longest key accepted, in characters: printable ASCII (a Structured Field String's)."""


def keyed_event_id(key: str, index: int) -> uuid.UUID:
    """The id of the event at ``index`` (0-based) of a request sent with ``key``:
    ``uuid5(NAMESPACE, f"{index}:{key}")`` (the index first, so no two pairs spell the same
    name)."""
    return uuid.uuid5(NAMESPACE, f"{index}:{key}")
