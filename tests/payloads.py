"""JSON bodies of events, as clients send them, for the store and API tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any


def event_json(**changes: Any) -> dict[str, Any]:
    """A valid capture of Maskanah by the government; keyword arguments replace fields.

    ``place=``, ``source=`` and ``occurred=`` given as dicts are merged into the defaults;
    a value of ``None`` removes the field.
    """
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "capture",
        "place": {
            "id": "sy-maskanah",
            "name": "Maskanah",
            "kind": "town",
            "lat": 35.96,
            "lon": 38.04,
        },
        "side": "syrian-government",
        "actor": "Tiger Forces",
        "opponent": "isis",
        "occurred": {"start": "2017-06-03", "precision": "day"},
        "source": {
            "name": "South Front",
            "reliability": "C",
            "alignment": "syrian-government",
            "published_at": "2017-06-05",
        },
        "credibility": 3,
        "hedge": "reported",
        "quote": "On Saturday, army troops liberated Maskanah itself",
    }
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        elif isinstance(value, dict) and isinstance(event.get(key), dict):
            merged = copy.deepcopy(event[key])
            merged.update(value)
            event[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            event[key] = value
    return event


def at_place(place_id: str, **changes: Any) -> dict[str, Any]:
    """An event about another place (named after its id)."""
    return event_json(place={"id": place_id, "name": place_id, "lat": None, "lon": None}, **changes)
