"""The unit tests run with no database and no browser (``make unit``, the fast loop).

The root conftest starts PostgreSQL only when a test asks for it, through ``server_url``;
here that fixture refuses instead, so a unit test that reaches for the database fails at
once, naming where it belongs, rather than quietly making ``make unit`` slow.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def server_url() -> str:
    """Refused under tests/unit: a test that needs PostgreSQL belongs in tests/integration
    (the store) or tests/api (over HTTP)."""
    pytest.fail(
        "tests/unit runs without a database (make unit): move this test to "
        "tests/integration or tests/api",
        pytrace=False,
    )
