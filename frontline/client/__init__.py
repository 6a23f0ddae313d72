"""Frontline's Python client: :class:`Client` (sync) and :class:`AsyncClient` (asyncio).

Typed with the wire contract's msgspec structs (``contracts.events``, ``contracts.responses``,
``contracts.front``, ``contracts.audit``)::

    from contracts.events import Capture, Occurred, Place, Source
    from frontline.client import Client

    with Client("http://127.0.0.1:8000", key) as frontline:
        receipt = frontline.append(Capture(
            place=Place(id="sy-maskanah", name="Maskanah", kind="town"),
            side="syrian-government", occurred=Occurred(start="2017-06-03"),
            source=Source(name="South Front", reliability="C"),
        ))
        for item in frontline.state(valid_at="2017-06-05"):
            print(item.place.id, item.segment.controller)

Retries are safe: an event without an id gets the contract's derived id
(:func:`contracts.idempotency.keyed_event_id`) before it is first sent.
"""

from frontline.client.aio import AsyncClient, AsyncLiveEvents, AsyncPages
from frontline.client.calls import Exported
from frontline.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    FrontlineClientError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)
from frontline.client.retry import NO_RETRY, Retry
from frontline.client.sync import Client, LiveEvents, Pages
from frontline.client.tables import Casualty, MissingDependency

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "AsyncLiveEvents",
    "AsyncPages",
    "BadRequest",
    "Casualty",
    "Client",
    "Conflict",
    "Exported",
    "Forbidden",
    "FrontlineClientError",
    "InvalidInput",
    "LiveEvents",
    "MissingDependency",
    "NotFound",
    "Pages",
    "PayloadTooLarge",
    "ProblemError",
    "RateLimited",
    "Retry",
    "ServerError",
    "TransportError",
    "Unauthorized",
]
