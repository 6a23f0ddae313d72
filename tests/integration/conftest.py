"""Fixtures of the integration tests: a started group committer over the test's store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.store.appender import GroupCommitter
from service.store.events import EventStore


@pytest.fixture
async def committer(store: EventStore) -> AsyncIterator[GroupCommitter]:
    """The group committer production uses, started on the test's loop, stopped after."""
    started = GroupCommitter(store, group_max=64)
    started.start()
    yield started
    await started.stop()
