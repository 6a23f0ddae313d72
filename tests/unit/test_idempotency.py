"""The derivation of event ids from an Idempotency-Key, pinned: clients compute it too."""

from __future__ import annotations

import uuid

from contracts.idempotency import NAMESPACE, keyed_event_id


def test_the_derivation_is_uuid5_over_the_index_and_the_key() -> None:
    """keyed_event_id is uuid5(NAMESPACE, "<index>:<key>"), with this exact namespace: a
    change would give every client's retries new ids (stored twice)."""
    assert uuid.UUID("6f9d3c2a-4b1e-5a7f-8c0d-2e4f6a8b0c1d") == NAMESPACE
    assert keyed_event_id("abc", 0) == uuid.uuid5(NAMESPACE, "0:abc")
    assert str(keyed_event_id("8e03978e-40d5-43e8-bc93-6894a57f9324", 3)) == (
        "7052e1b6-8f10-55e5-b633-1a2bcaec603f"
    )


def test_index_and_key_never_collide() -> None:
    """Different (key, index) pairs give different ids, even where key and index could run
    together: the index comes first and holds no ':', so the first ':' ends it."""
    pairs = [("2", 1), ("1:2", 0), ("12", 0), ("2", 11), (":2", 1)]
    assert len({keyed_event_id(key, index) for key, index in pairs}) == len(pairs)
