"""alembic, driven from Python: upgrade, downgrade, and the revision the code expects."""

from __future__ import annotations

from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


def _async_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def alembic_config(url: str, app_role: str = "frontline_app") -> Config:
    """An alembic Config for the migrations shipped in the ``migrations`` package."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    # '%' is alembic's interpolation character: escape it in passwords.
    config.set_main_option("sqlalchemy.url", _async_url(url).replace("%", "%%"))
    config.attributes["app_role"] = app_role
    return config


def upgrade(url: str, revision: str = "head", app_role: str = "frontline_app") -> None:
    """Bring the schema up to ``revision``."""
    command.upgrade(alembic_config(url, app_role), revision)


def downgrade(url: str, revision: str, app_role: str = "frontline_app") -> None:
    """Take the schema down to ``revision`` (refused while it would drop events)."""
    command.downgrade(alembic_config(url, app_role), revision)


@cache
def head_revision() -> str:
    """The revision this code expects the database to be at."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head
